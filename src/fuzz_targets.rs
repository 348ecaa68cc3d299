//! Entry points shared by the `cargo fuzz` targets in `fuzz/` and by the corpus replay test
//! (`tests/fuzz_corpus.rs`): each feeds arbitrary bytes to one pure parser. They must never
//! panic; a panic here is a bug in the parser, not in the harness. Compiled only with the
//! `fuzzing` feature (the fuzz crate and the tests turn it on), never into a release build.

use crate::model::{Family, Proto};
use crate::parse::{proc_net, proc_pid, sock_diag};

/// A NETLINK_SOCK_DIAG reply, as each kind of dump would read it.
pub fn sock_diag_reply(data: &[u8]) {
    for proto in [Proto::Tcp, Proto::Udp, Proto::Unix] {
        for seq in [0, 1, 5] {
            let _ = sock_diag::parse_batch(data, proto, seq);
        }
    }
}

/// `/proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}` text.
pub fn proc_net_table(data: &[u8]) {
    let _ = proc_net::parse_inet(data, Proto::Tcp, Family::Ipv4);
    let _ = proc_net::parse_inet(data, Proto::Udp, Family::Ipv6);
    let _ = proc_net::parse_unix(data);
}

/// `/proc/<pid>/{stat,status,cmdline}` and fd link targets.
pub fn proc_pid_text(data: &[u8]) {
    let _ = proc_pid::parse_stat(data);
    let _ = proc_pid::parse_status_uids(data);
    let _ = proc_pid::parse_status_cap_eff(data);
    let _ = proc_pid::parse_cmdline(data);
    let _ = proc_pid::socket_inode(data);
}

/// A `check` expectation file, as YAML and as JSON.
pub fn expect_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::check::expect::parse(&text, crate::check::expect::Format::Yaml);
    let _ = crate::check::expect::parse(&text, crate::check::expect::Format::Json);
}

/// `/proc/<pid>/cgroup` text and single cgroup paths.
pub fn cgroup_file(data: &[u8]) {
    let _ = crate::parse::cgroup::parse_file(data);
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = crate::parse::cgroup::parse_path(line);
        let _ = crate::parse::cgroup::normalize_uid(line);
    }
}

/// kubelet log directory names, container log links and their targets, one per line.
pub fn kubelet_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = crate::parse::kubelet::parse_pod_dir(line);
        let (name, target) = line.split_once(" -> ").unwrap_or((line, ""));
        let _ = crate::parse::kubelet::parse_container_link(name, Some(target));
        let _ = crate::parse::kubelet::parse_container_link(line, None);
        let _ = crate::parse::kubelet::parse_log_target(line);
    }
}

/// The kernel's BTF (the fd walk reads offsets out of it, the connection tracing its attach
/// id), the fd walk's output records, and the connection tracing's map values.
pub fn btf_blob(data: &[u8]) {
    if let Ok(btf) = crate::parse::btf::Btf::parse(data) {
        let _ = btf.func_id(crate::parse::fd_iter::ATTACH_FUNC);
        let _ = btf.typedef_id(crate::parse::sock_create::ATTACH_TYPEDEF);
        let _ = btf.member("file", &["f_inode"]);
        let _ = btf.member("task_struct", &["tgid"]);
        let _ = btf.member("a", &["b", "c"]);
        if let Ok(layout) = crate::parse::fd_iter::Layout::from_btf(&btf) {
            let _ = crate::parse::fd_iter::program(&layout);
        }
    }
    let _ = crate::parse::fd_iter::decode(data);
    let _ = crate::parse::sock_create::decode(data);
    if let Some(v) = data.get(..crate::parse::sock_create::RECORD) {
        let _ = crate::parse::sock_create::decode(v);
    }
}

/// A container runtime's `config.json` (containerd's or CRI-O's annotations).
pub fn runtime_config(data: &[u8]) {
    let _ = crate::parse::runtime::parse_config(data);
}
