//! The command line, as clap sees it, and its translation into plain validated options.
//! Nothing downstream of `Cli::into_config` sees clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::inspect::{Filters, Request, Source, Target};
use crate::model::Proto;
use crate::sys::node::HostRoot;
use crate::sys::procfs::FdWalk;

/// Which sockets are open in a pod's network namespace, which process holds each, and what
/// the port is for in an Istio or Linkerd mesh.
///
/// Without a target, podports looks at its own network namespace. Exit codes: 0 ok, 1 a check
/// or a probe failed, 2 usage or input error, 3 target unreachable or a privilege missing.
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

    /// Look at this pod on this node, found without an API server: its UID from
    /// /var/log/pods/NAMESPACE_NAME_UID, its processes from their cgroups. A bare NAME must
    /// be unique on the node (or give --namespace).
    #[arg(long, value_name = "NAMESPACE/NAME", global = true, group = "target")]
    pub pod: Option<String>,

    /// Look at the pod with this UID on this node (from `kubectl get pod -o
    /// jsonpath='{.metadata.uid}'`; systemd's `_` form is taken too).
    #[arg(long, value_name = "UID", global = true, group = "target")]
    pub pod_uid: Option<String>,

    /// Look at the pod of this container on this node: its runtime ID, or a unique prefix
    /// (as `crictl ps` shows it; `containerd://` and the like are dropped).
    #[arg(long, value_name = "ID", global = true, group = "target")]
    pub container: Option<String>,

    /// Every pod on this node, each network namespace once (hostNetwork pods share the
    /// node's, listed once for all of them). The table is grouped by pod; `-o json` prints
    /// JSON Lines, one object per listing.
    #[arg(long, global = true, group = "target")]
    pub all_pods: bool,

    /// With --all-pods: only the pods of this namespace. With --pod NAME: the pod's namespace.
    #[arg(long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,

    /// Where the host's / is: podports reads DIR/proc, DIR/var/log/pods,
    /// DIR/var/log/containers, DIR/sys/fs/cgroup and DIR/run/netns. In a privileged DaemonSet
    /// with hostPID and the host's / mounted at /host: --host-root /host.
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    pub host_root: PathBuf,

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

    /// How the processes holding each socket are found. `bpf`: one pass over every process's
    /// fd table inside the kernel (a BPF iterator that only reads; needs CAP_BPF and
    /// CAP_PERFMON or CAP_SYS_ADMIN, plus CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH or
    /// CAP_DAC_OVERRIDE, and the node's pid namespace, as root on a node has). `proc`: readlink every /proc/<pid>/fd/<n>, as ss and lsof do.
    /// `auto`: bpf when it is allowed and works, else proc.
    #[arg(long, value_enum, default_value_t = FdWalkArg::Auto)]
    pub fd_walk: FdWalkArg,

    /// Look again every INTERVAL (seconds as `watch -n` takes them, or 500ms, 2s; default 2)
    /// and show what appeared and disappeared since the last look: on a terminal the listing
    /// is redrawn with `+` and `-` markers; otherwise (or with -o json) each change is a JSON
    /// line, {"event": "appeared"|"disappeared", "socket": {...}}, starting with every socket
    /// there. Stops with Ctrl-C, or when the reader of stdout goes away.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1,
          default_missing_value = crate::watch::DEFAULT_INTERVAL,
          value_parser = crate::watch::parse_interval)]
    pub watch: Option<std::time::Duration>,

    /// Color: `auto` colors only on a terminal and never when NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, global = true)]
    pub color: ColorArg,

    /// The /proc to read, if not the host root's.
    #[arg(long, value_name = "DIR", hide = true)]
    pub proc_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the catalog of mesh ports and unix sockets podports knows, with sources.
    Catalog,
    /// Check that the target listens as it should; exit 1 with a readable diff when not.
    ///
    /// Expectations come from built-in profiles (istio-sidecar, istio-ambient, istio-gateway,
    /// istiod, ztunnel, linkerd-proxy) and from YAML or JSON files (see the README); all of
    /// them are checked. Exit codes: 0 every expectation holds, 1 one fails, 2 usage or input
    /// error (a malformed file), 3 the target is unreachable.
    Check {
        /// Check against a built-in profile (repeatable).
        #[arg(long, value_name = "NAME")]
        profile: Vec<String>,
        /// Check against an expectation file, YAML or JSON (repeatable).
        #[arg(long, value_name = "FILE")]
        expect: Vec<PathBuf>,
        /// Look again every 500ms until every expectation holds or DURATION has passed
        /// (30s, 2m, 500ms, 1m30s): a CI step right after a rollout.
        #[arg(long, value_name = "DURATION", value_parser = crate::check::duration::parse)]
        wait: Option<std::time::Duration>,
        /// Also write the results as JUnit XML to FILE, one test case per expectation.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Ask the mesh's HTTP ports that listen in the target whether they answer as they should,
    /// from inside its network namespace; exit 1 when one does not.
    ///
    /// Envoy admin (15000, /server_info, on loopback only), pilot-agent status (15020,
    /// /healthz/ready), Envoy readiness (15021, /healthz/ready), Envoy stats (15090,
    /// /stats/prometheus), ztunnel readiness (15021), linkerd-proxy admin (4191, /ready) and
    /// istiod (8080, /ready): one GET each, connecting only to loopback or the pod's own
    /// addresses. A 2xx answer within the timeout passes. Exit codes: 0 every port answered,
    /// 1 one did not, 2 usage error, 3 the target is unreachable.
    Probe {
        /// How long each port may take: connect, send, and the status line (2, 0.5, 500ms).
        #[arg(long, value_name = "DURATION", default_value = crate::probe::run::DEFAULT_TIMEOUT,
              value_parser = crate::watch::parse_interval)]
        timeout: std::time::Duration,
        /// Only these ports (repeat or separate with commas).
        #[arg(long, value_name = "N", value_delimiter = ',')]
        port: Vec<u16>,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `podports completions bash > /etc/bash_completion.d/podports`;
    /// zsh: `podports completions zsh > "${fpath[1]}/_podports"`;
    /// fish: `podports completions fish > ~/.config/fish/completions/podports.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `podports man > /usr/local/share/man/man1/podports.1`.
    Man,
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
pub enum FdWalkArg {
    Auto,
    Bpf,
    Proc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Netlink,
    Proc,
}

impl Cli {
    /// The inspection this command line asks for.
    pub fn request(&self) -> Result<Request, Error> {
        let target = self.target()?;
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
            host: match &self.proc_root {
                Some(proc) => HostRoot::new(&self.host_root).with_proc(proc),
                None => HostRoot::new(&self.host_root),
            },
            fd_walk: match self.fd_walk {
                FdWalkArg::Auto => FdWalk::Auto,
                FdWalkArg::Bpf => FdWalk::Bpf,
                FdWalkArg::Proc => FdWalk::Proc,
            },
        })
    }

    fn target(&self) -> Result<Target, Error> {
        let given: Vec<&str> = [
            (self.pid.is_some(), "--pid"),
            (self.netns.is_some(), "--netns"),
            (self.pod.is_some(), "--pod"),
            (self.pod_uid.is_some(), "--pod-uid"),
            (self.container.is_some(), "--container"),
            (self.all_pods, "--all-pods"),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect();
        if given.len() > 1 {
            return Err(Error::Usage(format!(
                "give at most one target: {}",
                given.join(" or ")
            )));
        }
        let namespace = match self.namespace.as_deref() {
            Some("") => return Err(Error::Usage("--namespace needs a name".into())),
            Some(ns) if self.pod.is_none() && !self.all_pods => {
                return Err(Error::Usage(format!(
                    "--namespace {ns} goes with --all-pods or --pod NAME"
                )));
            }
            ns => ns.map(String::from),
        };
        let empty = |flag: &str, what: &str| Error::Usage(format!("{flag} needs {what}"));
        Ok(if let Some(pid) = self.pid {
            Target::Pid(pid)
        } else if let Some(ns) = &self.netns {
            if ns.is_empty() {
                return Err(empty("--netns", "a name or a path"));
            }
            Target::Netns(ns.clone())
        } else if let Some(pod) = &self.pod {
            let (ns, name) = match pod.split_once('/') {
                Some((ns, name)) => (Some(ns.to_string()), name),
                None => (None, pod.as_str()),
            };
            if name.is_empty() || ns.as_deref() == Some("") || name.contains('/') {
                return Err(Error::Usage(format!(
                    "--pod {pod:?}: give NAMESPACE/NAME (or NAME and --namespace)"
                )));
            }
            if let (Some(a), Some(b)) = (&ns, &namespace)
                && a != b
            {
                return Err(Error::Usage(format!(
                    "--pod {pod} and --namespace {b} disagree on the namespace"
                )));
            }
            Target::Pod {
                namespace: ns.or(namespace),
                name: name.to_string(),
            }
        } else if let Some(uid) = &self.pod_uid {
            if uid.is_empty() {
                return Err(empty("--pod-uid", "a pod UID"));
            }
            Target::PodUid(uid.clone())
        } else if let Some(id) = &self.container {
            if id.is_empty() {
                return Err(empty("--container", "a container ID or a prefix of one"));
            }
            Target::Container(id.clone())
        } else if self.all_pods {
            Target::AllPods { namespace }
        } else {
            Target::Current
        })
    }
}

impl Cli {
    /// The check this command line asks for: the target as for the listing (every listener
    /// of it), the profiles and files (profiles first), and where the verdict goes.
    pub fn check_plan(&self) -> Result<crate::check::run::Plan, Error> {
        use crate::check::run::{Input, Output as CheckOutput, Plan};
        let Some(Command::Check {
            profile,
            expect,
            wait,
            junit,
        }) = &self.command
        else {
            return Err(Error::Usage("not a check command line".into()));
        };
        let filters: Vec<&str> = [
            (self.listening, "-l"),
            (self.tcp, "-t"),
            (self.udp, "-u"),
            (self.unix, "-x"),
            (!self.port.is_empty(), "--port"),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect();
        if !filters.is_empty() {
            return Err(Error::Usage(format!(
                "{} filter the listing; check looks at every listener of the target",
                filters.join(", ")
            )));
        }
        let mut request = self.request()?;
        if matches!(request.target, Target::AllPods { .. }) {
            return Err(Error::Usage(
                "check looks at one target: give --pod, --pid or --netns, not --all-pods".into(),
            ));
        }
        request.filters = Filters {
            listening: true,
            protos: Vec::new(),
            ports: Vec::new(),
        };
        Ok(Plan {
            request,
            inputs: profile
                .iter()
                .cloned()
                .map(Input::Profile)
                .chain(expect.iter().cloned().map(Input::File))
                .collect(),
            wait: *wait,
            junit: junit.clone(),
            output: match self.output {
                Output::Table => CheckOutput::Table,
                Output::Wide => CheckOutput::Wide,
                Output::Json => CheckOutput::Json,
            },
        })
    }
}

impl Cli {
    /// The probe this command line asks for: the target's TCP listeners, the timeout, the
    /// ports (`--port`, given before or after `probe`).
    pub fn probe_plan(&self) -> Result<crate::probe::run::Plan, Error> {
        let Some(Command::Probe { timeout, port }) = &self.command else {
            return Err(Error::Usage("not a probe command line".into()));
        };
        let filters: Vec<&str> = [
            (self.listening, "-l"),
            (self.tcp, "-t"),
            (self.udp, "-u"),
            (self.unix, "-x"),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect();
        if !filters.is_empty() {
            return Err(Error::Usage(format!(
                "{} filter the listing; probe looks at the TCP listeners of the target (choose \
                 ports with --port)",
                filters.join(", ")
            )));
        }
        let mut request = self.request()?;
        if matches!(request.target, Target::AllPods { .. }) {
            return Err(Error::Usage(
                "probe looks at one target: give --pod, --pid or --netns, not --all-pods".into(),
            ));
        }
        request.filters = Filters {
            listening: true,
            protos: vec![Proto::Tcp],
            ports: Vec::new(),
        };
        Ok(crate::probe::run::Plan {
            request,
            timeout: *timeout,
            ports: port.iter().chain(&self.port).copied().collect(),
        })
    }

    /// `--watch`: how often and how to show it, or None without `--watch`. It goes with the
    /// listing of one target only.
    pub fn watch_plan(
        &self,
        terminal: bool,
        color: bool,
    ) -> Result<Option<(std::time::Duration, crate::watch::run::View)>, Error> {
        use crate::render::table::Detail;
        use crate::watch::run::View;
        let Some(every) = self.watch else {
            return Ok(None);
        };
        if self.command.is_some() {
            return Err(Error::Usage(
                "--watch goes with the listing, not with a subcommand (`check --wait` waits \
                 for a pod to be ready)"
                    .into(),
            ));
        }
        if self.all_pods {
            return Err(Error::Usage(
                "--watch looks at one target: give --pod, --pid or --netns, not --all-pods".into(),
            ));
        }
        let view = match self.output {
            Output::Table if terminal => View::Screen {
                detail: Detail::Normal,
                color,
            },
            Output::Wide if terminal => View::Screen {
                detail: Detail::Wide,
                color,
            },
            _ => View::JsonLines,
        };
        Ok(Some((every, view)))
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
