//! Why a socket has no holder, and what would show it: the decision and its words, from facts
//! `sys::procfs` gathers (who podports runs as, whose fds it could not read, whether its `/proc`
//! is the node's). Pure. It must never suggest a remedy the facts rule out: no kubectl profile
//! (the one in use cannot be known from inside), no capability a non-root uid cannot have
//! effective, no uid for a process that policy, not identity, keeps unread.

use std::collections::BTreeMap;

use crate::model::{Socket, State, Unowned};

/// Capabilities (include/uapi/linux/capability.h).
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_SYS_PTRACE: u32 = 19;

/// Who podports runs as (its own `/proc/self/status` and `uid_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Effective uid and gid.
    pub uid: u32,
    pub gid: u32,
    /// The effective and bounding capability sets.
    pub cap_eff: u64,
    pub cap_bnd: u64,
    /// In a user namespace of its own (its `uid_map` is not the node's identity map): its
    /// capabilities do not reach processes outside it.
    pub user_ns: bool,
}

impl Caller {
    fn ptrace_effective(&self) -> bool {
        self.cap_eff & (1 << CAP_SYS_PTRACE) != 0
    }

    /// Listing another uid's `/proc/<pid>/fd` (mode 0500) takes one of these.
    fn dac_read(&self) -> bool {
        self.cap_eff & ((1 << CAP_DAC_READ_SEARCH) | (1 << CAP_DAC_OVERRIDE)) != 0
    }

    fn ptrace_bounding(&self) -> bool {
        self.cap_bnd & (1 << CAP_SYS_PTRACE) != 0
    }
}

/// A process whose fd table could not be read, with its effective uid and gid when its
/// status could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    pub pid: i32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What the walk of the fd tables left to explain unowned sockets with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// None when podports could not read its own status.
    pub caller: Option<Caller>,
    pub unreadable: Vec<Unreadable>,
    /// The `/proc` walked is the node's pid namespace: every process is in it.
    pub node_wide: bool,
}

/// Why reading the unreadable processes' fds was refused: three different remedies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Root without CAP_SYS_PTRACE in its effective set.
    RootWithoutPtrace,
    /// A non-root uid without CAP_SYS_PTRACE effective; `bounding` when it is in the bounding
    /// set (kubectl's `general` profile): a non-root uid never gets it effective that way.
    UidWithoutPtrace { bounding: bool },
    /// CAP_SYS_PTRACE effective, but neither CAP_DAC_READ_SEARCH nor CAP_DAC_OVERRIDE: another
    /// uid's fd directory cannot be listed.
    PtraceWithoutDac,
    /// CAP_SYS_PTRACE (and a DAC capability) effective and still refused: a security policy,
    /// or a user namespace.
    Policy,
    /// Podports' own status could not be read.
    Unknown,
}

pub fn denial(caller: Option<&Caller>) -> Denial {
    match caller {
        None => Denial::Unknown,
        Some(c) if c.ptrace_effective() && !c.user_ns && !c.dac_read() => Denial::PtraceWithoutDac,
        Some(c) if c.ptrace_effective() => Denial::Policy,
        Some(c) if c.uid == 0 => Denial::RootWithoutPtrace,
        Some(c) => Denial::UidWithoutPtrace {
            bounding: c.ptrace_bounding(),
        },
    }
}

/// Why `s` has no holder; None when it has one.
pub fn classify(s: &Socket, facts: &Facts) -> Option<Unowned> {
    if !s.holders.is_empty() {
        None
    } else if s.inode == 0 || s.state == State::TimeWait {
        Some(Unowned::NoProcess)
    } else if !facts.unreadable.is_empty() {
        Some(Unowned::Hidden)
    } else if facts.node_wide {
        Some(Unowned::NoProcess)
    } else {
        Some(Unowned::OutsidePidNamespace)
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn id(v: Option<u32>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// The unreadable processes by (uid, gid): `uid 1337 gid 1337 (pids 7, 8)`.
fn groups(unreadable: &[Unreadable]) -> BTreeMap<(Option<u32>, Option<u32>), Vec<i32>> {
    let mut by: BTreeMap<(Option<u32>, Option<u32>), Vec<i32>> = BTreeMap::new();
    for u in unreadable {
        by.entry((u.uid, u.gid)).or_default().push(u.pid);
    }
    by
}

fn describe(by: &BTreeMap<(Option<u32>, Option<u32>), Vec<i32>>) -> String {
    let parts: Vec<String> = by
        .iter()
        .map(|((uid, gid), pids)| {
            const SHOWN: usize = 4;
            let mut list: Vec<String> = pids.iter().take(SHOWN).map(i32::to_string).collect();
            if pids.len() > SHOWN {
                list.push(format!("{} more", pids.len() - SHOWN));
            }
            format!(
                "uid {} gid {} ({} {})",
                id(*uid),
                id(*gid),
                if pids.len() == 1 { "pid" } else { "pids" },
                list.join(", ")
            )
        })
        .collect();
    parts.join("; ")
}

/// The `--run-as` remedy for the (uid, gid) pairs it can help: known ids, not root (root's
/// processes need CAP_SYS_PTRACE whoever reads them), not the caller's own pair (then the
/// process is not dumpable, and only CAP_SYS_PTRACE reads it).
fn run_as(
    by: &BTreeMap<(Option<u32>, Option<u32>), Vec<i32>>,
    caller: Option<&Caller>,
) -> Vec<String> {
    by.keys()
        .filter_map(|(u, g)| Some((u.filter(|&u| u != 0)?, (*g)?)))
        .filter(|&(u, g)| caller.is_none_or(|c| (c.uid, c.gid) != (u, g)))
        .map(|(u, g)| format!("{u}:{g}"))
        .collect()
}

/// The warning for `hidden` sockets whose holders may be among the unreadable processes:
/// which uids own those processes, why their fds were refused, and what would work here.
pub fn hidden_warning(hidden: usize, facts: &Facts) -> String {
    let by = groups(&facts.unreadable);
    let caller = facts.caller.as_ref();
    let mut text = format!(
        "owners hidden: {} no visible owner and the fds of {} could not be read: {}. ",
        count(hidden, "socket has", "sockets have"),
        count(facts.unreadable.len(), "process", "processes"),
        describe(&by)
    );
    let pairs = run_as(&by, caller);
    let run_as_text = |lead: &str| -> String {
        match pairs.as_slice() {
            [] => String::new(),
            [one] => format!(
                "{lead}run podports as uid {} gid {}, which needs no capability (the kubectl \
                 plugin: `kubectl podports --run-as {one}`)",
                one.split(':').next().unwrap_or_default(),
                one.split(':').nth(1).unwrap_or_default(),
            ),
            many => format!(
                "{lead}run podports as each pair of uid and gid in turn, which needs no \
                 capability (the kubectl plugin: {})",
                many.iter()
                    .map(|p| format!("`--run-as {p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let root_text = "root with CAP_SYS_PTRACE effective (the kubectl plugin: `--root`; a \
                     namespace enforcing Pod Security baseline or restricted refuses it)";
    match denial(caller) {
        Denial::RootWithoutPtrace => {
            text.push_str(
                "podports runs as root without CAP_SYS_PTRACE in its effective set, which \
                 reading other processes' fds needs. What shows them here: ",
            );
            text.push_str(root_text);
            text.push_str(&run_as_text(", or "));
        }
        Denial::UidWithoutPtrace { bounding } => {
            let c = caller.copied().unwrap_or(Caller {
                uid: 0,
                gid: 0,
                cap_eff: 0,
                cap_bnd: 0,
                user_ns: false,
            });
            text.push_str(&format!(
                "podports runs as uid {} gid {} without CAP_SYS_PTRACE effective: it reads \
                 the fds of dumpable processes of that same uid and gid only. ",
                c.uid, c.gid
            ));
            if bounding {
                text.push_str(
                    "CAP_SYS_PTRACE is in its bounding set only, which a non-root uid never \
                     gets effective (no ambient capabilities are set), so adding SYS_PTRACE \
                     to its container shows nothing more. ",
                );
            }
            let own: Vec<String> = by
                .iter()
                .filter(|((u, g), _)| (*u, *g) == (Some(c.uid), Some(c.gid)))
                .flat_map(|(_, pids)| pids.iter().map(i32::to_string))
                .collect();
            if !own.is_empty() {
                text.push_str(&format!(
                    "{} {} {} as this uid and gid but {} not dumpable (it changed credentials or \
                     cleared its dumpable flag): only CAP_SYS_PTRACE reads {}. ",
                    if own.len() == 1 { "Pid" } else { "Pids" },
                    own.join(", "),
                    if own.len() == 1 { "runs" } else { "run" },
                    if own.len() == 1 { "is" } else { "are" },
                    if own.len() == 1 { "it" } else { "them" },
                ));
            }
            text.push_str("What shows them here: ");
            let rest = run_as_text("");
            if rest.is_empty() {
                text.push_str(root_text);
            } else {
                text.push_str(&rest);
                text.push_str(", or ");
                text.push_str(root_text);
            }
        }
        Denial::PtraceWithoutDac => {
            text.push_str(
                "podports has CAP_SYS_PTRACE effective but neither CAP_DAC_READ_SEARCH nor \
                 CAP_DAC_OVERRIDE, and listing another uid's /proc/<pid>/fd takes one. What \
                 shows them here: add CAP_DAC_READ_SEARCH",
            );
            text.push_str(&run_as_text(", or "));
        }
        Denial::Policy => {
            let who = match caller {
                Some(c) if c.uid == 0 => "root".to_string(),
                Some(c) => format!("uid {}", c.uid),
                None => "podports".to_string(),
            };
            text.push_str(&format!(
                "podports runs as {who} with CAP_SYS_PTRACE effective and was still refused: "
            ));
            if caller.is_some_and(|c| c.user_ns) {
                text.push_str(
                    "it runs in a user namespace of its own, whose capabilities do not reach \
                     processes outside it (or a security policy denies the read). ",
                );
            } else {
                text.push_str(
                    "a security policy denies the read (an LSM such as AppArmor or SELinux, \
                     or Yama's ptrace_scope 3). ",
                );
            }
            text.push_str(
                "No uid or capability given to podports changes that: run it where the policy \
                 allows reading other processes' fds",
            );
        }
        Denial::Unknown => {
            text.push_str("What shows them: ");
            let rest = run_as_text("");
            if !rest.is_empty() {
                text.push_str(&rest);
                text.push_str(", or ");
            }
            text.push_str(root_text);
        }
    }
    text
}

/// The warning for sockets no process of this pid namespace holds although every one of
/// their fd tables was read.
pub fn outside_warning(n: usize) -> String {
    format!(
        "{} no holder in this pid namespace, whose processes' fds were all read: the holder \
         lives outside it (another container of the pod, or a node agent such as ztunnel), \
         not hidden for lack of privilege. To see it: target that container (the kubectl \
         plugin: `--target CONTAINER`), give the pod shareProcessNamespace, or use the node \
         view (`podports --pod NS/POD` on the node)",
        count(n, "socket has", "sockets have"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Proto, SockType};

    fn caller(uid: u32, eff: u64, bnd: u64) -> Caller {
        Caller {
            uid,
            gid: uid,
            cap_eff: eff,
            cap_bnd: bnd,
            user_ns: false,
        }
    }

    const PTRACE: u64 = 1 << CAP_SYS_PTRACE;
    const DAC: u64 = 1 << CAP_DAC_READ_SEARCH;

    fn facts(c: Caller, unreadable: &[(i32, u32, u32)]) -> Facts {
        Facts {
            caller: Some(c),
            unreadable: unreadable
                .iter()
                .map(|&(pid, uid, gid)| Unreadable {
                    pid,
                    uid: Some(uid),
                    gid: Some(gid),
                })
                .collect(),
            node_wide: false,
        }
    }

    fn sock(inode: u64, state: State) -> Socket {
        Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            state,
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 9080,
            },
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            inode,
        )
    }

    #[test]
    fn the_three_denials_are_told_apart() {
        assert_eq!(
            denial(Some(&caller(0, 0, u64::MAX))),
            Denial::RootWithoutPtrace
        );
        assert_eq!(
            denial(Some(&caller(65532, 0, PTRACE))),
            Denial::UidWithoutPtrace { bounding: true }
        );
        assert_eq!(
            denial(Some(&caller(1337, 0, 0))),
            Denial::UidWithoutPtrace { bounding: false }
        );
        assert_eq!(
            denial(Some(&caller(0, PTRACE | DAC, PTRACE))),
            Denial::Policy
        );
        assert_eq!(
            denial(Some(&caller(0, PTRACE, PTRACE))),
            Denial::PtraceWithoutDac
        );
        assert_eq!(denial(None), Denial::Unknown);
    }

    #[test]
    fn a_socket_is_hidden_only_when_some_fds_were_not_read() {
        let none = facts(caller(1337, 0, 0), &[]);
        let some = facts(caller(1337, 0, 0), &[(40, 1000, 1000)]);
        let listen = sock(77, State::Listen);
        assert_eq!(classify(&listen, &some), Some(Unowned::Hidden));
        assert_eq!(classify(&listen, &none), Some(Unowned::OutsidePidNamespace));
        let node = Facts {
            node_wide: true,
            ..none.clone()
        };
        assert_eq!(classify(&listen, &node), Some(Unowned::NoProcess));
        assert_eq!(
            classify(&sock(0, State::TimeWait), &some),
            Some(Unowned::NoProcess)
        );
    }

    #[test]
    fn root_without_ptrace_is_told_to_add_it_or_to_run_as_the_uid() {
        let w = hidden_warning(3, &facts(caller(0, 0, u64::MAX), &[(7, 1337, 1337)]));
        assert!(w.contains("uid 1337 gid 1337 (pid 7)"), "{w}");
        assert!(w.contains("root without CAP_SYS_PTRACE"), "{w}");
        assert!(
            w.contains("`--root`") && w.contains("--run-as 1337:1337"),
            "{w}"
        );
        assert!(!w.contains("profile"), "{w}");
    }

    #[test]
    fn a_uid_with_ptrace_in_its_bounding_set_only_is_told_it_cannot_be_effective() {
        let w = hidden_warning(
            2,
            &facts(
                caller(65532, 0, PTRACE),
                &[(7, 1337, 1337), (8, 1337, 1337), (9, 0, 0)],
            ),
        );
        assert!(w.contains("bounding set only"), "{w}");
        assert!(
            w.contains("uid 0 gid 0 (pid 9); uid 1337 gid 1337 (pids 7, 8)"),
            "{w}"
        );
        // Root's processes are not readable by running as root without the capability.
        assert!(w.contains("`kubectl podports --run-as 1337:1337`"), "{w}");
        assert!(!w.contains("--run-as 0"), "{w}");
        assert!(!w.contains("general"), "{w}");
        let w = hidden_warning(1, &facts(caller(1337, 0, 0), &[(7, 1000, 1000)]));
        assert!(!w.contains("bounding"), "{w}");
        assert!(
            w.contains("--run-as 1000:1000") && w.contains("`--root`"),
            "{w}"
        );
    }

    #[test]
    fn the_callers_own_uid_is_not_suggested_for_a_process_that_is_not_dumpable() {
        let w = hidden_warning(1, &facts(caller(1337, 0, 0), &[(7, 1337, 1337)]));
        assert!(!w.contains("--run-as"), "{w}");
        assert!(
            w.contains("Pid 7 runs as this uid and gid but is not dumpable"),
            "{w}"
        );
        assert!(w.contains("`--root`"), "{w}");
    }

    #[test]
    fn a_policy_denial_suggests_no_uid_and_no_capability() {
        let w = hidden_warning(
            1,
            &facts(caller(0, PTRACE | DAC, PTRACE), &[(7, 1337, 1337)]),
        );
        assert!(w.contains("was still refused"), "{w}");
        assert!(w.contains("security policy"), "{w}");
        assert!(!w.contains("--run-as") && !w.contains("`--root`"), "{w}");
        let mut f = facts(caller(0, PTRACE, PTRACE), &[(7, 65534, 65534)]);
        let w = hidden_warning(1, &f);
        assert!(w.contains("neither CAP_DAC_READ_SEARCH"), "{w}");
        assert!(w.contains("--run-as 65534:65534"), "{w}");
        if let Some(c) = f.caller.as_mut() {
            c.user_ns = true;
        }
        assert!(hidden_warning(1, &f).contains("user namespace"));
    }

    #[test]
    fn outside_says_where_the_holder_is_and_how_to_see_it() {
        let w = outside_warning(1);
        assert!(
            w.starts_with("1 socket has no holder in this pid namespace"),
            "{w}"
        );
        assert!(
            w.contains("--target") && w.contains("shareProcessNamespace"),
            "{w}"
        );
    }
}
