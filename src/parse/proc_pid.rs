//! Parsers of per-process `/proc/<pid>` text: fd link targets, `stat`, `status`, `cmdline`.
//! Bytes in, values out: never touches the filesystem, and never panics on what a process
//! (which chooses its own comm and argv) put there.

use super::ParseError;
use crate::model::RawText;

/// The inode in an fd link target `socket:[12345]`, or `None` for anything else (`pipe:[1]`,
/// `anon_inode:[eventfd]`, a file whose path merely ends like one). Digits only: `u64`'s
/// parser alone would also take `socket:[+1]`.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The fields of `/proc/<pid>/stat` that attribution uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The comm between the parentheses, exactly (up to 15 bytes, any of them).
    pub comm: RawText,
    /// Field 3: `R`, `S`, `D`, `Z`, `T`, `I`, ...
    pub state: char,
    /// Field 4; 0 for the init of a pid namespace and for kthreadd.
    pub ppid: i32,
    /// Field 9: the kernel's PF_* flags (PF_KTHREAD marks a kernel thread).
    pub flags: u32,
    /// Field 22: start time in clock ticks after boot. With the pid, it tells a process from
    /// a later one that reused its pid.
    pub starttime: u64,
}

/// PF_KTHREAD (include/linux/sched.h): the task is a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid ... starttime ...`.
///
/// The comm is set by the process itself (prctl PR_SET_NAME, writes to `comm`) and may hold
/// `)`, spaces and newlines, so it runs from the first `(` to the LAST `)`; the numeric fields
/// follow that.
pub fn parse_stat(text: &[u8]) -> Result<Stat, ParseError> {
    let (pid, rest) = text
        .split_once_at(b'(')
        .ok_or_else(|| ParseError::new("stat: no '(' before the comm"))?;
    let pid = std::str::from_utf8(pid.trim_ascii())
        .ok()
        .and_then(dec::<i32>)
        .ok_or_else(|| ParseError::new("stat: pid is not a number"))?;
    let close = rest
        .iter()
        .rposition(|&b| b == b')')
        .ok_or_else(|| ParseError::new("stat: no ')' after the comm"))?;
    let (comm, after) = rest
        .split_at_checked(close)
        .ok_or_else(|| ParseError::new("stat: no ')' after the comm"))?;
    let after = after.get(1..).unwrap_or_default();
    let fields = std::str::from_utf8(after)
        .map_err(|_| ParseError::new("stat: fields after the comm are not UTF-8"))?;
    let fields: Vec<&str> = fields.split_ascii_whitespace().collect();
    let field = |n: usize| {
        // Field numbers as in proc(5): state is field 3, the first after the comm.
        n.checked_sub(3)
            .and_then(|i| fields.get(i))
            .copied()
            .ok_or_else(|| {
                ParseError::new(format!("stat: {} fields, no field {n}", fields.len() + 2))
            })
    };
    let state = field(3)?;
    let state = match state.as_bytes() {
        [c] if c.is_ascii_alphabetic() => char::from(*c),
        _ => {
            return Err(ParseError::new(format!(
                "stat: state {state:?} is not one letter"
            )));
        }
    };
    let ppid = field(4)?;
    let ppid = dec::<i32>(ppid)
        .ok_or_else(|| ParseError::new(format!("stat: ppid {ppid:?} is not a number")))?;
    let flags = field(9)?;
    let flags = dec::<u32>(flags)
        .ok_or_else(|| ParseError::new(format!("stat: flags {flags:?} is not a number")))?;
    let starttime = field(22)?;
    let starttime = dec::<u64>(starttime)
        .ok_or_else(|| ParseError::new(format!("stat: starttime {starttime:?} is not a number")))?;
    Ok(Stat {
        pid,
        comm: RawText::new(comm),
        state,
        ppid,
        flags,
        starttime,
    })
}

/// The four uids of the `Uid:` line of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub filesystem: u32,
}

/// The effective capability set (`CapEff:`, hex) from `/proc/<pid>/status`: bit N is
/// capability N (CAP_SYS_PTRACE is 19).
pub fn parse_status_cap_eff(text: &[u8]) -> Result<u64, ParseError> {
    parse_status_caps(text, "CapEff")
}

/// A capability set (`CapEff`, `CapPrm`, `CapBnd`, ...: hex) from `/proc/<pid>/status`.
pub fn parse_status_caps(text: &[u8], key: &str) -> Result<u64, ParseError> {
    let value = status_field(text, key)?;
    std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .ok_or_else(|| ParseError::new(format!("status: {key}: is not a hex number")))
}

/// What follows `KEY:` on its line of `/proc/<pid>/status`.
fn status_field<'t>(text: &'t [u8], key: &str) -> Result<&'t [u8], ParseError> {
    text.split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(key.as_bytes())?.strip_prefix(b":"))
        .ok_or_else(|| ParseError::new(format!("status: no {key}: line")))
}

/// Reads the `Uid:` line of `/proc/<pid>/status` (`Uid:\treal\teffective\tsaved\tfs`). The
/// other lines are skipped unread: `Name:` may hold any byte the process chose.
pub fn parse_status_uids(text: &[u8]) -> Result<Uids, ParseError> {
    parse_status_ids(text, "Uid")
}

/// The four gids of the `Gid:` line (same layout as `Uid:`).
pub fn parse_status_gids(text: &[u8]) -> Result<Uids, ParseError> {
    parse_status_ids(text, "Gid")
}

fn parse_status_ids(text: &[u8], key: &str) -> Result<Uids, ParseError> {
    let line = status_field(text, key)?;
    let line = std::str::from_utf8(line)
        .map_err(|_| ParseError::new(format!("status: {key}: line is not UTF-8")))?;
    let uids: Vec<u32> = line
        .split_ascii_whitespace()
        .map(dec::<u32>)
        .collect::<Option<_>>()
        .ok_or_else(|| ParseError::new(format!("status: {key}:{line} holds a non-number")))?;
    match uids.as_slice() {
        &[real, effective, saved, filesystem] => Ok(Uids {
            real,
            effective,
            saved,
            filesystem,
        }),
        _ => Err(ParseError::new(format!(
            "status: {key}: line has {} values, expected 4",
            uids.len()
        ))),
    }
}

/// Splits `/proc/<pid>/cmdline` at NUL into argv. Empty for kernel threads and zombies. The
/// one trailing NUL ends the last argument; empty arguments in between are kept (`a "" b`).
/// A process that rewrote its argv (setproctitle) may leave no trailing NUL and spaces
/// instead: that comes back as one argument, as written.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<RawText> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    bytes.split(|&b| b == 0).map(RawText::new).collect()
}

/// A decimal number of digits only (`str::parse` alone would take a leading `+`).
fn dec<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `split_once` for a byte slice, without the separator.
trait SplitOnceAt {
    fn split_once_at(&self, sep: u8) -> Option<(&[u8], &[u8])>;
}

impl SplitOnceAt for [u8] {
    fn split_once_at(&self, sep: u8) -> Option<(&[u8], &[u8])> {
        let at = self.iter().position(|&b| b == sep)?;
        let (before, after) = self.split_at_checked(at)?;
        Some((before, after.get(1..)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on Linux 6.18.44: see fixtures/proc/README.md.
    const PID_STAT: &[u8] = include_bytes!("../../fixtures/proc/pid-stat");
    const PID_STATUS: &[u8] = include_bytes!("../../fixtures/proc/pid-status");
    const PID_CMDLINE: &[u8] = include_bytes!("../../fixtures/proc/pid-cmdline");
    const KTHREADD_STAT: &[u8] = include_bytes!("../../fixtures/proc/kthreadd-stat");
    const KTHREADD_CMDLINE: &[u8] = include_bytes!("../../fixtures/proc/kthreadd-cmdline");

    #[test]
    fn socket_inode_takes_only_socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"socket:[0]"), Some(0));
        assert_eq!(
            socket_inode(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        for bad in [
            &b"pipe:[1]"[..],
            b"socket:[x]",
            b"/tmp/socket:[1]",
            b"socket:[]",
            b"socket:[+1]",
            b"socket:[-1]",
            b"socket:[1] ",
            b"socket:[1",
            b"socket:[ 1]",
            b"socket:[18446744073709551616]",
            b"anon_inode:[eventfd]",
            b"",
        ] {
            assert_eq!(socket_inode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn stat_comm_with_parens_spaces_and_newline() {
        // comm set with prctl(PR_SET_NAME, "a) b\nc) d").
        let s = parse_stat(PID_STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 5227,
                comm: RawText::new(&b"a) b\nc) d"[..]),
                state: 'S',
                ppid: 5186,
                flags: 4194304,
                starttime: 63157,
            }
        );
    }

    #[test]
    fn stat_of_kthreadd() {
        let s = parse_stat(KTHREADD_STAT).unwrap();
        assert_eq!((s.pid, s.ppid, s.state, s.starttime), (2, 0, 'S', 24));
        assert_eq!(s.comm, RawText::from("kthreadd"));
        assert_ne!(s.flags & PF_KTHREAD, 0, "kthreadd is a kernel thread");
        assert_eq!(parse_stat(PID_STAT).unwrap().flags & PF_KTHREAD, 0);
    }

    #[test]
    fn stat_malformed() {
        let full = "7 (x) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 99 0";
        assert_eq!(parse_stat(full.as_bytes()).unwrap().starttime, 99);
        for (bad, why) in [
            ("", "'('"),
            ("7 (x S 1", "')'"),
            ("x (x) S 1", "pid"),
            ("7 (x) S", "field 4"),
            (
                "7 (x) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0",
                "field 22",
            ),
            ("7 (x) SS 1", "state"),
            (
                "7 (x) S -1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 99",
                "ppid",
            ),
            (
                "7 (x) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 +9",
                "starttime",
            ),
        ] {
            let err = parse_stat(bad.as_bytes()).unwrap_err();
            assert!(err.reason.contains(why), "{bad:?}: {err}");
        }
        assert!(parse_stat(b"7 (x) S 1 \xff").is_err());
    }

    #[test]
    fn status_cap_eff() {
        // The fixture's process lacked capability 24 (CAP_SYS_RESOURCE).
        assert_eq!(parse_status_cap_eff(PID_STATUS), Ok(0x1fffeffffff));
        assert_eq!(
            parse_status_cap_eff(b"Uid:\t0\nCapEff:\t0000000000080000\n"),
            Ok(1 << 19)
        );
        for bad in [
            &b"CapEff:\t\n"[..],
            b"CapEff:\t-1\n",
            b"CapEff:\tzz\n",
            b"CapEff:\t+1\n",
            b"",
        ] {
            assert!(
                parse_status_cap_eff(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn status_uids() {
        let u = parse_status_uids(PID_STATUS).unwrap();
        assert_eq!((u.real, u.effective, u.saved, u.filesystem), (0, 0, 0, 0));
        let text = b"Name:\t\xffx\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\n";
        assert_eq!(
            parse_status_gids(text)
                .ok()
                .map(|g| (g.real, g.effective, g.saved, g.filesystem)),
            Some((5, 6, 7, 8))
        );
        assert_eq!(
            parse_status_caps(b"CapEff:\t0\nCapBnd:\t000001ffffffffff\n", "CapBnd").ok(),
            Some(0x1ff_ffff_ffff)
        );
        let u = parse_status_uids(text).unwrap();
        assert_eq!(
            u,
            Uids {
                real: 1000,
                effective: 1001,
                saved: 1002,
                filesystem: 1003
            }
        );
        for bad in [
            &b"Name:\tx\nGid:\t0\t0\t0\t0\n"[..],
            b"Uid:\t0\t0\t0\n",
            b"Uid:\t0\tx\t0\t0\n",
            b"Uid:\t0\t-1\t0\t0\n",
            b"",
        ] {
            assert!(
                parse_status_uids(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cmdline_split() {
        // argv as exec'd: ["pp) (fixture", "-c", CODE, "", "with space"].
        let argv = parse_cmdline(PID_CMDLINE);
        assert_eq!(argv.len(), 5);
        assert_eq!(argv[0], RawText::from("pp) (fixture"));
        assert_eq!(argv[1], RawText::from("-c"));
        assert!(argv[2].as_bytes().starts_with(b"import ctypes"));
        assert_eq!(argv[3], RawText::from(""));
        assert_eq!(argv[4], RawText::from("with space"));

        assert_eq!(parse_cmdline(KTHREADD_CMDLINE), vec![]);
        assert_eq!(
            parse_cmdline(b"nginx: master process"),
            vec![RawText::from("nginx: master process")]
        );
        assert_eq!(
            parse_cmdline(b"a\0\xff\0"),
            vec![RawText::from("a"), RawText::new(&b"\xff"[..])]
        );
        assert_eq!(parse_cmdline(b"\0"), vec![RawText::from("")]);
    }
}
