//! Stage 3, attribute: sockets -> every process holding each, and its kind. The one interface
//! to both walks of the fd tables, `/proc/*/fd` and the kernel's (BPF iterator): `walk` and
//! `kernel` decide the passes, what is kept and how it merges, `sys::procfs` does every read;
//! `FdWalk` picks. Never guesses a holder: a socket nobody is seen holding
//! stays unowned, with the reason `unowned` decides (hidden, outside the pid namespace, no
//! process), and hidden owners are counted and said with what would show them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::classify::{Classification, classify};
use crate::error::Error;
use crate::model::{FdWalk, Holder, Kind, Socket, Unowned};
use crate::sys::procfs::ProcRoot;
use crate::unowned;

mod kernel;
mod walk;

pub use walk::{Owners, Walk, threads};

/// Starts the walk of the target namespace's processes, which needs no list of sockets: it
/// may run (on `helpers()` threads, each calling `work`) while they are being dumped.
pub fn start(procfs: &ProcRoot, netns: Option<u64>) -> Walk<'_> {
    Walk::new(procfs, netns)
}

/// How many threads share the walk.
pub fn helpers() -> usize {
    threads()
}

/// One walk for the owners of sockets of many namespaces (the sweep): socket inodes are unique
/// node-wide.
pub fn owners(procfs: &ProcRoot, wanted: &HashSet<u64>) -> std::io::Result<Owners> {
    if wanted.is_empty() {
        return Ok(Owners::default());
    }
    walk::owners(procfs, wanted, None)
}

/// Completes the walk and fills in every socket's holders. Returns how many sockets stay
/// without a visible owner because some process's fds could not be read, and how the holders
/// were found. Only an explicit `--fd-walk bpf` that cannot be honoured is an error (exit 3).
pub fn finish(
    procfs: &ProcRoot,
    walk: Walk<'_>,
    sockets: &mut [Socket],
    warnings: &mut Vec<String>,
) -> Result<(usize, Option<FdWalk>), Error> {
    let wanted = wanted_inodes(sockets);
    if wanted.is_empty() {
        return Ok((0, None));
    }
    let owners = walk.finish(&wanted);
    if let Err(e) = &owners
        && procfs.fd_walk() == FdWalk::Bpf
    {
        return Err(Error::Privilege(e.to_string()));
    }
    let via = owners.as_ref().ok().map(|o| o.via);
    Ok((
        apply_owners(procfs, owners.as_ref(), sockets, warnings),
        via,
    ))
}

/// The inodes of the sockets a process may hold: TIME_WAIT and request sockets have inode 0.
pub fn wanted_inodes(sockets: &[Socket]) -> HashSet<u64> {
    sockets
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| s.inode)
        .collect()
}

/// Fill in the holders of `sockets` from a walk of `/proc/*/fd` (one walk may serve several
/// namespaces: `--all-pods`). Returns how many sockets stay without a visible owner because
/// some process's fds could not be read.
pub fn apply_owners(
    procfs: &ProcRoot,
    owners: Result<&Owners, &std::io::Error>,
    sockets: &mut [Socket],
    warnings: &mut Vec<String>,
) -> usize {
    let owners = match owners {
        Ok(o) => o,
        Err(e) => {
            warnings.push(format!(
                "cannot list processes in {}: {e}; owners are not shown",
                procfs.path().display()
            ));
            return 0;
        }
    };
    // Once per process, not per socket: Envoy holds thousands (issue 5).
    let mut kinds: HashMap<i32, (Kind, Arc<str>)> = HashMap::new();
    for s in sockets.iter_mut() {
        s.holders = owners
            .of(s.inode)
            .map(|(p, fd)| {
                let (kind, basis) = kinds.entry(p.pid).or_insert_with(|| {
                    let Classification { kind, basis } = classify(p);
                    (kind, basis.into())
                });
                Holder {
                    process: p.clone(),
                    fd,
                    kind: *kind,
                    basis: basis.clone(),
                    container: None,
                }
            })
            .collect();
    }
    // Only when some socket has no holder: the facts cost a few reads.
    if !sockets.iter().any(|s| s.holders.is_empty()) {
        return 0;
    }
    let facts = procfs.unowned_facts(&owners.unreadable);
    let (mut hidden, mut outside) = (0, 0);
    for s in sockets.iter_mut() {
        s.unowned = unowned::classify(s, &facts);
        match s.unowned {
            Some(Unowned::Hidden) => hidden += 1,
            Some(Unowned::OutsidePidNamespace) => outside += 1,
            Some(Unowned::NoProcess) | None => {}
        }
    }
    if hidden > 0 {
        warnings.push(unowned::hidden_warning(hidden, &facts));
    }
    if outside > 0 {
        warnings.push(unowned::outside_warning(outside));
    }
    hidden
}
