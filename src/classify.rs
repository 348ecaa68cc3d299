//! Which kind of mesh process a socket holder is, from its comm, exe, cmdline and parent
//! together. Pure: facts in, a kind and the reasons out. A name alone is never proof (any
//! process can call itself `envoy`), and neither is uid 1337.

use crate::model::{Kind, ProcessInfo};

/// The binary names each mesh kind runs as (comm is the first 15 bytes of the exe name).
struct Signature {
    kind: Kind,
    binary: &'static str,
    /// Arguments that corroborate the kind, any of which counts.
    args: &'static [&'static str],
}

const SIGNATURES: &[Signature] = &[
    Signature {
        kind: Kind::PilotAgent,
        binary: "pilot-agent",
        args: &["proxy"],
    },
    Signature {
        kind: Kind::Envoy,
        binary: "envoy",
        args: &["-c", "--config-path", "--config-yaml"],
    },
    Signature {
        kind: Kind::Ztunnel,
        binary: "ztunnel",
        args: &["proxy"],
    },
    Signature {
        kind: Kind::Istiod,
        binary: "pilot-discovery",
        args: &["discovery"],
    },
    Signature {
        kind: Kind::LinkerdProxy,
        binary: "linkerd2-proxy",
        args: &[],
    },
];

/// A process's kind and what that conclusion rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub basis: String,
}

/// Classify one process.
///
/// The exe link is the strongest evidence: it names the file the kernel runs. When it is
/// readable it decides; a comm that claims a mesh name while the exe says otherwise makes an
/// `app` (and the basis says why). When the exe cannot be read (no CAP_SYS_PTRACE), comm and
/// argv[0] must agree, and a corroborating parent or argument is noted.
pub fn classify(p: &ProcessInfo) -> Classification {
    let comm = p.comm.as_bytes();
    let exe = p
        .exe
        .as_ref()
        .map(|e| basename(strip_deleted(e.as_bytes())));
    let argv0 = p.cmdline.first().map(|a| basename(a.as_bytes()));
    let parent = parent_kind(p);

    for sig in SIGNATURES {
        let name = sig.binary.as_bytes();
        let comm_matches = comm == truncate_comm(name);
        let exe_matches = exe == Some(name);
        let argv0_matches = argv0 == Some(name);
        let args_match = p
            .cmdline
            .iter()
            .skip(1)
            .any(|a| sig.args.iter().any(|want| a.as_bytes() == want.as_bytes()));
        let parent_note = match (sig.kind, parent) {
            (Kind::Envoy, Some(Kind::PilotAgent)) => Some("parent pilot-agent"),
            _ => None,
        };

        let decided = match exe {
            Some(_) => exe_matches,
            None => comm_matches && argv0_matches,
        };
        if decided {
            let mut why = Vec::new();
            if exe_matches {
                why.push(format!("exe {}", sig.binary));
            } else {
                why.push("exe unreadable".to_string());
            }
            if comm_matches {
                why.push(format!("comm {}", sig.binary));
            }
            if argv0_matches && !exe_matches {
                why.push(format!("argv[0] {}", sig.binary));
            }
            if let Some(note) = parent_note {
                why.push(note.to_string());
            }
            if args_match {
                why.push("args".to_string());
            }
            return Classification {
                kind: sig.kind,
                basis: why.join(", "),
            };
        }
        if comm_matches {
            // A mesh name on a process whose exe or argv[0] says otherwise.
            let exe_text = exe.map(|e| String::from_utf8_lossy(e).into_owned());
            let basis = match exe_text {
                Some(e) => format!("comm {} but exe {}", sig.binary, e),
                None => format!("comm {} but argv[0] differs, exe unreadable", sig.binary),
            };
            return Classification {
                kind: Kind::App,
                basis,
            };
        }
    }
    Classification {
        kind: Kind::App,
        basis: "no mesh signature".to_string(),
    }
}

/// The parent's kind, judged by its exe when readable, else by its comm.
fn parent_kind(p: &ProcessInfo) -> Option<Kind> {
    let name = match (&p.parent_exe, &p.parent_comm) {
        (Some(exe), _) => basename(strip_deleted(exe.as_bytes())),
        (None, Some(comm)) => comm.as_bytes(),
        (None, None) => return None,
    };
    SIGNATURES
        .iter()
        .find(|s| truncate_comm(s.binary.as_bytes()) == truncate_comm(name))
        .map(|s| s.kind)
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => path.get(i + 1..).unwrap_or_default(),
        None => path,
    }
}

/// `/proc/<pid>/exe` of a replaced binary reads `/usr/local/bin/envoy (deleted)`.
fn strip_deleted(path: &[u8]) -> &[u8] {
    path.strip_suffix(b" (deleted)").unwrap_or(path)
}

/// The kernel keeps 15 bytes of a task name.
fn truncate_comm(name: &[u8]) -> &[u8] {
    name.get(..15).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RawText;

    fn text(s: &str) -> RawText {
        RawText::from(s)
    }

    fn proc(
        comm: &str,
        exe: Option<&str>,
        argv: &[&str],
        parent: Option<(&str, &str)>,
    ) -> ProcessInfo {
        ProcessInfo {
            pid: 10,
            ppid: 1,
            comm: text(comm),
            exe: exe.map(text),
            cmdline: argv.iter().map(|a| text(a)).collect(),
            uid: Some(1337),
            parent_comm: parent.map(|p| text(p.0)),
            parent_exe: parent.map(|p| text(p.1)),
            netns_inode: None,
        }
    }

    #[test]
    fn istio_envoy_child_of_pilot_agent() {
        let p = proc(
            "envoy",
            Some("/usr/local/bin/envoy"),
            &[
                "/usr/local/bin/envoy",
                "-c",
                "etc/istio/proxy/envoy-rev.json",
            ],
            Some(("pilot-agent", "/usr/local/bin/pilot-agent")),
        );
        let c = classify(&p);
        assert_eq!(c.kind, Kind::Envoy);
        assert!(c.basis.contains("parent pilot-agent"), "{}", c.basis);
    }

    #[test]
    fn app_calling_itself_envoy_is_an_app() {
        let p = proc(
            "envoy",
            Some("/usr/bin/python3.11"),
            &["python3", "server.py"],
            Some(("bash", "/bin/bash")),
        );
        let c = classify(&p);
        assert_eq!(c.kind, Kind::App);
        assert!(c.basis.contains("but exe python3.11"), "{}", c.basis);
    }

    #[test]
    fn without_exe_comm_and_argv0_must_agree() {
        let ok = proc(
            "pilot-agent",
            None,
            &["/usr/local/bin/pilot-agent", "proxy", "sidecar"],
            None,
        );
        assert_eq!(classify(&ok).kind, Kind::PilotAgent);
        let fake = proc("pilot-agent", None, &["/app/server"], None);
        assert_eq!(classify(&fake).kind, Kind::App);
    }

    #[test]
    fn deleted_exe_still_counts() {
        let p = proc(
            "ztunnel",
            Some("/usr/local/bin/ztunnel (deleted)"),
            &["/usr/local/bin/ztunnel", "proxy", "ztunnel"],
            None,
        );
        assert_eq!(classify(&p).kind, Kind::Ztunnel);
    }

    #[test]
    fn istiod_and_linkerd() {
        let p = proc(
            "pilot-discovery",
            Some("/usr/local/bin/pilot-discovery"),
            &["pilot-discovery", "discovery"],
            None,
        );
        assert_eq!(classify(&p).kind, Kind::Istiod);
        let l = proc(
            "linkerd2-proxy",
            Some("/usr/lib/linkerd/linkerd2-proxy"),
            &[],
            None,
        );
        assert_eq!(classify(&l).kind, Kind::LinkerdProxy);
    }

    #[test]
    fn uid_1337_is_not_proof() {
        let p = proc("nginx", Some("/usr/sbin/nginx"), &["nginx"], None);
        assert_eq!(classify(&p).kind, Kind::App);
    }
}
