//! The node's pod records, read: kubelet log directories, container links, the processes in
//! pod cgroups and the runtimes' config of containers those leave unnamed -> one `Node`.
//! Reads through `sys` only, never an API server or a runtime socket.

use crate::error::Error;
use crate::parse::runtime;
use crate::pods::Node;
use crate::sys::node::{self as sysnode, HostRoot};
use crate::sys::procfs::ProcRoot;

/// Reads the node's pod records: log directories, container links, one walk of
/// `<proc>/*/cgroup`, and the runtime's config of any container those leave unnamed.
pub fn scan(host: &HostRoot, procfs: &ProcRoot) -> Result<Node, Error> {
    let dirs = match sysnode::pod_dirs(host) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Unreachable(format!(
                "{}: {e}; reading the kubelet's pod directories needs root",
                host.pod_logs().display()
            )));
        }
    };
    let links = sysnode::container_links(host);
    let procs = sysnode::pod_processes(procfs).map_err(|e| {
        Error::Unreachable(format!(
            "cannot list processes in {}: {e}; give --host-root the directory the host's / is \
             mounted at (with hostPID, so that its proc is the host's)",
            procfs.path().display()
        ))
    })?;
    let node = Node::new(dirs, links, procs);
    // The runtime's records, only for containers the kubelet's names leave unnamed.
    let runtime = node
        .ids_needing_runtime()
        .into_iter()
        .filter_map(|id| {
            let record = runtime::parse_config(&sysnode::runtime_config(host, &id)?).ok()?;
            Some((id, record))
        })
        .collect();
    Ok(node.with_runtime(runtime))
}
