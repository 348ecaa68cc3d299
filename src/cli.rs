//! The command line, as clap sees it, and its translation into plain validated options.
//! Nothing downstream of `Cli::into_config` sees clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::inspect::{Filters, Request, Source, Target};
use crate::model::Proto;

/// Which sockets are open in a pod's network namespace, which process holds each, and what
/// the port is for in an Istio or Linkerd mesh.
///
/// Without a target, podports looks at its own network namespace. Exit codes: 0 ok, 1 a check
/// failed, 2 usage or input error, 3 target unreachable or a privilege missing.
#[derive(Debug, Parser)]
#[command(name = "podports", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Look at the network namespace of this process.
    #[arg(long, value_name = "PID", global = true, group = "target")]
    pub pid: Option<i32>,

    /// Look at this network namespace: a name under /run/netns (as `ip netns` makes them) or a
    /// path to a netns file such as /proc/PID/ns/net or /var/run/netns/cni-....
    #[arg(long, value_name = "NAME|PATH", global = true, group = "target")]
    pub netns: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,

    /// Only listening sockets (and unconnected UDP and unix datagram sockets, as `ss -l`).
    #[arg(short, long)]
    pub listening: bool,

    /// TCP sockets (combine with -u, -x; none of them means all).
    #[arg(short, long)]
    pub tcp: bool,

    /// UDP sockets.
    #[arg(short, long)]
    pub udp: bool,

    /// Unix sockets.
    #[arg(short = 'x', long)]
    pub unix: bool,

    /// Only sockets whose local or remote port is N (repeat or separate with commas).
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub port: Vec<u16>,

    /// Where sockets come from: netlink sock_diag, or /proc/<pid>/net text.
    #[arg(long, value_enum, default_value_t = SourceArg::Netlink)]
    pub source: SourceArg,

    /// Color: `auto` colors only on a terminal and never when NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, global = true)]
    pub color: ColorArg,

    /// The /proc to read (for a host's /proc mounted elsewhere).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the catalog of mesh ports and unix sockets podports knows, with sources.
    Catalog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people.
    Table,
    /// The table with inode, uid, queues, cmdline and what each owner's kind rests on.
    Wide,
    /// One JSON document (see the README for its schema).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// Whether to color, given whether stdout is a terminal and the value of NO_COLOR.
    pub fn enabled(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            // https://no-color.org: set and not empty disables color.
            ColorArg::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Netlink,
    Proc,
}

impl Cli {
    /// The inspection this command line asks for.
    pub fn request(&self) -> Result<Request, Error> {
        let target = match (self.pid, &self.netns) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(
                    "give at most one target: --pid or --netns".into(),
                ));
            }
            (Some(pid), None) => Target::Pid(pid),
            (None, Some(ns)) if ns.is_empty() => {
                return Err(Error::Usage("--netns needs a name or a path".into()));
            }
            (None, Some(ns)) => Target::Netns(ns.clone()),
            (None, None) => Target::Current,
        };
        let mut protos = Vec::new();
        for (on, p) in [
            (self.tcp, Proto::Tcp),
            (self.udp, Proto::Udp),
            (self.unix, Proto::Unix),
        ] {
            if on {
                protos.push(p);
            }
        }
        Ok(Request {
            target,
            source: match self.source {
                SourceArg::Netlink => Source::Netlink,
                SourceArg::Proc => Source::Proc,
            },
            filters: Filters {
                listening: self.listening,
                protos,
                ports: self.port.clone(),
            },
            proc_root: self.proc_root.clone(),
            netns_dir: PathBuf::from("/run/netns"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ColorArg;
    use std::ffi::OsStr;

    #[test]
    fn color_follows_the_terminal_and_no_color() {
        assert!(ColorArg::Auto.enabled(true, None));
        assert!(!ColorArg::Auto.enabled(false, None));
        assert!(!ColorArg::Auto.enabled(true, Some(OsStr::new("1"))));
        // NO_COLOR set but empty does not disable color.
        assert!(ColorArg::Auto.enabled(true, Some(OsStr::new(""))));
        assert!(ColorArg::Always.enabled(false, Some(OsStr::new("1"))));
        assert!(!ColorArg::Never.enabled(true, None));
    }
}
