//! The orchestrator for one target: resolve -> dump (while the fd walk starts) -> attribute ->
//! place -> annotate -> sort. Takes a `Request`, gives an `Inspection`; holds no logic of its
//! own and decides nothing about presentation.

use crate::annotate;
use crate::attribute;
use crate::catalog::Catalog;
use crate::dump;
use crate::error::Error;
use crate::listing::{self, Inspection, NetnsInfo};
use crate::place;
use crate::request::Request;
use crate::resolve;
use crate::sys::procfs::ProcRoot;

pub fn inspect(req: &Request, catalog: &Catalog) -> Result<Inspection, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir()).with_fd_walk(req.fd_walk);
    let (target, pod) = resolve::resolve(req, &procfs)?;
    let mut warnings = Vec::new();

    // The /proc walk needs no list of sockets to read the target's processes: it runs while
    // they are dumped, and this thread joins it when the dump is done (issue 5).
    let walk = attribute::start(&procfs, target.inode);
    let dumped = std::thread::scope(|s| {
        for _ in 1..attribute::helpers() {
            s.spawn(|| walk.work());
        }
        let dumped = dump::dump(req, &target, &procfs, &mut warnings);
        walk.work();
        dumped
    });
    let (mut sockets, source) = dumped?;
    sockets.retain(|s| req.filters.keeps(s));

    let (hidden_owners, fd_walk) = attribute::finish(&procfs, walk, &mut sockets, &mut warnings)?;
    let placed = place::place(
        &req.host,
        &procfs,
        pod.as_ref().map(|p| &p.node),
        target.pid,
        target.inode,
        &mut sockets,
        &mut warnings,
    );
    annotate::annotate(&mut sockets, catalog);
    listing::sort(&mut sockets);

    Ok(Inspection {
        netns: NetnsInfo {
            inode: target.inode,
            target: target.label,
        },
        source,
        sockets,
        warnings,
        hidden_owners,
        fd_walk,
        pod: pod.map(|p| p.pod).or(placed.pod),
        host_network: placed.host_network,
        pods: Vec::new(),
    })
}
