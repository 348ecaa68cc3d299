//! Opens `--watch`'s source of closed sockets: the kernel's destroy events in the target's
//! namespace, or the reason there are none (then the watch polls, and says so). Resolves the
//! namespace as `inspect` does; the syscalls are `sys::sockevents`'.

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::model::ContainerRef;
use crate::place;
use crate::request::Request;
use crate::resolve;
use crate::sys::bpf::SockCreations;
use crate::sys::netns::NsError;
use crate::sys::node::HostRoot;
use crate::sys::sockevents::{DestroyFeed, FeedError, WANTED_BUFFER};
use crate::watch::closed::Created;

/// The connection tracing (who connected a socket, by its cookie), loaded for the watch and
/// unloaded with it; with the pod containers of the cgroups it names, each looked up once.
pub struct Tracing {
    creations: SockCreations,
    host: HostRoot,
    containers: HashMap<u64, Option<ContainerRef>>,
}

impl Tracing {
    /// Loads it, or says why it cannot be (to be said once, and under the frame).
    pub fn load(req: &Request) -> Result<Tracing, String> {
        SockCreations::load()
            .map(|creations| Tracing {
                creations,
                host: req.host.clone(),
                containers: HashMap::new(),
            })
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(nix::libc::EPERM) {
                    " (it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: `kubectl debug \
                     --profile=sysadmin`)"
                } else {
                    ""
                };
                format!("cannot trace connections: {e}{hint}")
            })
    }

    /// Who connected the socket `cookie`, if the tracing saw it.
    pub fn created(&mut self, cookie: u64) -> Option<Created> {
        let (r, at) = self.creations.lookup(cookie)?;
        let container = match self.containers.get(&r.cgroup_id) {
            Some(c) => c.clone(),
            None => {
                let ids = HashSet::from([r.cgroup_id]);
                let c = place::cgroup_containers(&self.host, &ids).remove(&r.cgroup_id);
                self.containers.insert(r.cgroup_id, c.clone());
                c
            }
        };
        Some(Created {
            at,
            pid: r.tgid,
            comm: r.comm,
            cgroup_id: r.cgroup_id,
            container,
        })
    }
}

/// The feed, or why there is none; and what the user should know either way.
pub struct Opened {
    pub feed: Result<DestroyFeed, String>,
    /// Said once at the start (stderr).
    pub warnings: Vec<String>,
    /// Said where losses are reported: how large the buffer is and what would make it larger.
    pub buffer_note: Option<String>,
}

/// What a polling-only watch misses, and what would let it see it.
const MISSED: &str = "connections that open and close between two looks are not seen";

/// A target that does not exist (or a bad one) is the first look's error to report, not a
/// reason to poll: it is returned as it is. Only a missing privilege falls back.
pub fn open(req: &Request) -> Result<Opened, Error> {
    let feed = match resolve::open_netns(req) {
        Ok(ns) => DestroyFeed::open(&ns).map_err(|e| why(&e)),
        Err(Error::Privilege(why)) => Err(why),
        Err(e) => return Err(e),
    };
    Ok(match feed {
        Ok(feed) => {
            let kib = feed.buffer.bytes / 1024;
            let buffer_note =
                (!feed.buffer.forced && feed.buffer.bytes < WANTED_BUFFER).then(|| {
                    format!(
                        "the events' receive buffer is {kib} KiB (net.core.rmem_max): a larger one \
                     (SO_RCVBUFFORCE) needs CAP_NET_ADMIN, e.g. `kubectl debug \
                     --profile=netadmin`"
                    )
                });
            Opened {
                feed: Ok(feed),
                warnings: buffer_note.iter().cloned().collect(),
                buffer_note,
            }
        }
        Err(why) => Opened {
            warnings: vec![format!(
                "polling only, {MISSED}: cannot listen to the kernel's socket-destroy events: \
                 {why}"
            )],
            feed: Err(why),
            buffer_note: None,
        },
    })
}

/// The reason, with what would help: the events need no capability once inside the
/// namespace, only the entering does.
fn why(e: &FeedError) -> String {
    match e {
        FeedError::Enter(NsError::Denied(..)) => format!(
            "{e}: entering the namespace needs CAP_SYS_ADMIN; or run podports inside the pod's \
             network namespace (`kubectl debug --target`), where joining the events needs no \
             capability"
        ),
        e => e.to_string(),
    }
}
