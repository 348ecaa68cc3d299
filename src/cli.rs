//! The command line as clap sees it: flags, subcommands, help text. Raw: nothing here
//! validates beyond clap's own rules; `plan::Plan::new` turns a `Cli` into the one validated
//! `Plan` that `main` runs, and nothing downstream of it sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

/// Which sockets are open in a pod's network namespace, which process holds each, and what
/// the port is for in an Istio or Linkerd mesh.
///
/// Without a target, podports looks at its own network namespace. Exit codes: 0 ok, 1 a check
/// or a probe failed, 2 usage or input error, 3 target unreachable or a privilege missing.
#[derive(Debug, Parser)]
#[command(
    name = "podports",
    version,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub look: LookArgs,

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

    /// Look again every INTERVAL (seconds as `watch -n` takes them, or 500ms, 2s; default 2)
    /// and show what appeared and disappeared since the last look: on a terminal the listing
    /// is redrawn with `+` and `-` markers; otherwise (or with -o json) each change is a JSON
    /// line, {"event": "appeared"|"disappeared", "socket": {...}}, starting with every socket
    /// there. Stops with Ctrl-C, or when the reader of stdout goes away.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1,
          default_missing_value = crate::watch::DEFAULT_INTERVAL,
          value_parser = crate::watch::parse_interval)]
    pub watch: Option<std::time::Duration>,
}

/// The target and how to look at it: the listing's, `check`'s and `probe`'s.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Look at the network namespace of this process.
    #[arg(long, value_name = "PID", group = "target")]
    pub pid: Option<i32>,

    /// Look at this network namespace: a name under /run/netns (as `ip netns` makes them) or a
    /// path to a netns file such as /proc/PID/ns/net or /var/run/netns/cni-....
    #[arg(long, value_name = "NAME|PATH", group = "target")]
    pub netns: Option<String>,

    /// Look at this pod on this node, found without an API server: its UID from
    /// /var/log/pods/NAMESPACE_NAME_UID, its processes from their cgroups. A bare NAME must
    /// be unique on the node (or give --namespace).
    #[arg(long, value_name = "NAMESPACE/NAME", group = "target")]
    pub pod: Option<String>,

    /// Look at the pod with this UID on this node (from `kubectl get pod -o
    /// jsonpath='{.metadata.uid}'`; systemd's `_` form is taken too).
    #[arg(long, value_name = "UID", group = "target")]
    pub pod_uid: Option<String>,

    /// Look at the pod of this container on this node: its runtime ID, or a unique prefix
    /// (as `crictl ps` shows it; `containerd://` and the like are dropped).
    #[arg(long, value_name = "ID", group = "target")]
    pub container: Option<String>,

    /// Every pod on this node, each network namespace once (hostNetwork pods share the
    /// node's, listed once for all of them). The table is grouped by pod; `-o json` prints
    /// JSON Lines, one object per listing.
    #[arg(long, group = "target")]
    pub all_pods: bool,

    /// With --all-pods: only the pods of this namespace. With --pod NAME: the pod's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Where the host's / is: podports reads DIR/proc, DIR/var/log/pods,
    /// DIR/var/log/containers, DIR/sys/fs/cgroup and DIR/run/netns. In a privileged DaemonSet
    /// with hostPID and the host's / mounted at /host: --host-root /host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,

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

    /// The /proc to read, if not the host root's.
    #[arg(long, value_name = "DIR", hide = true)]
    pub proc_root: Option<PathBuf>,
}

/// How a report is shown: the listing's, `check`'s, `probe`'s and `catalog`'s.
#[derive(Debug, Clone, Args)]
pub struct LookArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Color warnings, states, roles and verdicts: `auto` colors only on a terminal and never
    /// when NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// Fit the table into N columns, as on a terminal of that width: long cells shortened in
    /// the middle with an ellipsis (pids and ports kept), warnings as numbered notes under the table,
    /// empty columns left out. On a terminal the width is COLUMNS, else the terminal's; off a
    /// terminal (a pipe, a file) nothing is shortened unless this is given. `-o wide` is never
    /// shortened.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,

    /// Leave out the table's header line (for scripts).
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the catalog of mesh ports and unix sockets podports knows (`-o wide` adds where
    /// each fact comes from).
    Catalog {
        #[command(flatten)]
        look: LookArgs,
    },
    /// Check that the target listens as it should; exit 1 with a readable diff when not.
    ///
    /// Expectations come from built-in profiles (istio-sidecar, istio-ambient, istio-gateway,
    /// istiod, ztunnel, linkerd-proxy) and from YAML or JSON files (their format:
    /// docs/check.md); all of them are checked. Exit codes: 0 every expectation holds, 1 one fails, 2 usage or input
    /// error (a malformed file), 3 the target is unreachable.
    ///
    /// With --all-pods (and --namespace NS), every pod of the node is checked in one sweep: a
    /// table section per pod, `-o json` one JSON line per pod, `--junit` one testsuite per pod;
    /// hostNetwork pods are skipped and said so; exit 1 when any pod fails, 3 when the node
    /// cannot be read.
    Check {
        /// Check against a built-in profile (repeatable). With --all-pods, `auto` checks each
        /// pod against the profile its mesh processes call for (pods with none are listed as
        /// unchecked).
        #[arg(long, value_name = "NAME", value_parser = ProfileName)]
        profile: Vec<String>,
        /// Check against an expectation file, YAML or JSON (repeatable).
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        expect: Vec<PathBuf>,
        /// Take the --expect files from this bundle instead of the file system, by the names
        /// given; `-`: stdin. The kubectl plugin streams one into its container (docs/ci.md).
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        expect_bundle: Option<PathBuf>,
        /// Look again every 500ms until every expectation holds or DURATION has passed
        /// (30s, 2m, 500ms, 1m30s): a CI step right after a rollout.
        #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
        wait: Option<std::time::Duration>,
        /// Also write the results as JUnit XML to FILE, one test case per expectation; `-`: on
        /// stdout after the report, base64 between two marker lines (docs/ci.md).
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        junit: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        look: LookArgs,
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
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        look: LookArgs,
    },
    /// Draw the target as a graph: its processes (by container), the ports and unix paths each
    /// listens on, and who connects to whom, with counts.
    ///
    /// `-o dot` for Graphviz, `-o mermaid` for a Markdown issue (GitHub and GitLab draw it),
    /// `-o svg` drawn by podports itself; by default an indented tree for the terminal. The
    /// listing's target and filters apply (`podports graph --pod NS/NAME -t`).
    Graph {
        /// Only listening sockets (no connections).
        #[arg(short = 'l', long = "listening", id = "graph_listening")]
        listening: bool,
        /// TCP sockets (combine with -u, -x; none of them means all).
        #[arg(short = 't', long = "tcp", id = "graph_tcp")]
        tcp: bool,
        /// UDP sockets.
        #[arg(short = 'u', long = "udp", id = "graph_udp")]
        udp: bool,
        /// Unix sockets.
        #[arg(short = 'x', long = "unix", id = "graph_unix")]
        unix: bool,
        /// Only sockets whose local or remote port is N (repeat or separate with commas).
        #[arg(
            long = "port",
            id = "graph_port",
            value_name = "N",
            value_delimiter = ','
        )]
        port: Vec<u16>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        look: LookArgs,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `podports completions bash > /etc/bash_completion.d/podports`;
    /// zsh: `podports completions zsh > "${fpath[1]}/_podports"`;
    /// fish: `podports completions fish > ~/.config/fish/completions/podports.fish`.
    /// `--profile` completes the built-in profiles, `-o` its formats, `--netns` the names
    /// under /run/netns.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write one page per command there:
    /// `podports man --dir /usr/local/share/man/man1`.
    Man {
        /// Write podports.1 and podports-COMMAND.1 for every command into DIR.
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        dir: Option<PathBuf>,
    },
}

/// A profile's name: any text (an unknown one is `check`'s error, with the names it knows),
/// but the built-in names are the possible values help, man pages and completions offer.
#[derive(Debug, Clone, Copy)]
pub struct ProfileName;

impl clap::builder::TypedValueParser for ProfileName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::check::profiles::ALL
                .iter()
                .map(|p| clap::builder::PossibleValue::new(p.name))
                .chain(std::iter::once(
                    clap::builder::PossibleValue::new(crate::check::profiles::AUTO)
                        .help("with --all-pods: each pod's profile from what runs in it"),
                )),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people.
    Table,
    /// The table with inode, uid, queues, cmdline and what each owner's kind rests on.
    Wide,
    /// One JSON document: the listing's schema in docs/json.md, check's and probe's in
    /// docs/check.md and docs/watch-and-probe.md.
    Json,
    /// `graph` only: Graphviz DOT.
    Dot,
    /// `graph` only: a Mermaid flowchart.
    Mermaid,
    /// `graph` only: SVG, laid out by podports.
    Svg,
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
