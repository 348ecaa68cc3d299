//! The command line's one meaning: raw clap args (`cli::Cli`) -> one validated `Plan`, as
//! ripgrep turns its flags into one mode. Every usage error is found here, before anything is
//! read; `main` has one `match` over the plan. Never reads the system.

use std::ffi::OsStr;
use std::time::Duration;

use crate::check::run::{self as check, Input};
use crate::cli::{Cli, Command, FdWalkArg, LookArgs, Output, SourceArg, TargetArgs};
use crate::error::Error;
use crate::model::{FdWalk, Proto};
use crate::probe::run as probe;
use crate::render::columns::Layout;
use crate::render::graph::Format as GraphFormat;
use crate::render::table::Detail;
use crate::render::watch::View;
use crate::request::{Filters, Request, Source, Target};
use crate::sys::node::HostRoot;

/// What one run of podports does.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The listing of one target.
    List { request: Request, show: Show },
    /// `--all-pods`: one listing per network namespace of the node's pods (of `namespace`).
    Sweep {
        request: Request,
        namespace: Option<String>,
        show: Show,
    },
    /// `check`: expectations against the target's listeners.
    Check { plan: check::Plan, show: Show },
    /// `probe`: one GET to each mesh HTTP port of the target.
    Probe { plan: probe::Plan, show: Show },
    /// `--watch`: the listing again every `every`.
    Watch {
        request: Request,
        every: Duration,
        view: View,
    },
    /// `graph`: the listing of one target drawn as processes, ports and connections.
    Graph {
        request: Request,
        format: GraphFormat,
        color: bool,
    },
    /// `catalog`: the ports podports knows.
    Catalog { show: Show },
    /// `completions SHELL`.
    Completions(clap_complete::Shell),
    /// `man`: the main page on stdout, or every command's page written into `dir`.
    Man { dir: Option<std::path::PathBuf> },
}

/// How a listing or a report is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Table { detail: Detail, layout: Layout },
    Json,
}

/// What podports knows of its stdout, read by `main` before the plan is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal {
    /// stdout is a terminal.
    pub is_terminal: bool,
    /// Its width: COLUMNS, else the terminal's own (only asked when it is one).
    pub width: Option<usize>,
}

impl Plan {
    /// The plan of this command line, given what stdout is and the value of NO_COLOR.
    /// Errors are usage errors (exit 2).
    pub fn new(cli: &Cli, term: Terminal, no_color: Option<&OsStr>) -> Result<Plan, Error> {
        let drawing = matches!(cli.command, Some(Command::Graph { .. }));
        if cli.watch.is_none() && drawing {
            return graph(cli, term, no_color);
        }
        if let Some(every) = cli.watch {
            let show = show(&cli.look, term, no_color)?;
            return watch(cli, every, term.is_terminal, show);
        }
        Ok(match &cli.command {
            Some(Command::Catalog { look }) => Plan::Catalog {
                show: show(look, term, no_color)?,
            },
            Some(Command::Check {
                profile,
                expect,
                expect_bundle,
                wait,
                junit,
                target,
                look,
            }) => Plan::Check {
                plan: check::Plan {
                    request: check_request(target)?,
                    inputs: profile
                        .iter()
                        .cloned()
                        .map(Input::Profile)
                        .chain(expect.iter().cloned().map(Input::File))
                        .collect(),
                    wait: *wait,
                    junit: junit.clone(),
                    bundle: expect_bundle.clone(),
                },
                show: show(look, term, no_color)?,
            },
            Some(Command::Probe {
                timeout,
                port,
                target,
                look,
            }) => Plan::Probe {
                plan: probe::Plan {
                    request: probe_request(target)?,
                    timeout: *timeout,
                    ports: port.clone(),
                },
                show: show(look, term, no_color)?,
            },
            // With --watch: `watch` above said no.
            Some(Command::Graph { .. }) => graph(cli, term, no_color)?,
            Some(Command::Completions { shell }) => Plan::Completions(*shell),
            Some(Command::Man { dir }) => Plan::Man { dir: dir.clone() },
            None => {
                let request = request(&cli.target, listing_filters(cli))?;
                let show = show(&cli.look, term, no_color)?;
                match &request.target {
                    Target::AllPods { namespace } => Plan::Sweep {
                        namespace: namespace.clone(),
                        request,
                        show,
                    },
                    _ => Plan::List { request, show },
                }
            }
        })
    }
}

/// How to show a table: fitted to `--width`, else to the terminal's width when stdout is one
/// (`-o wide` never is); colored as `--color` and NO_COLOR say.
fn show(look: &LookArgs, term: Terminal, no_color: Option<&OsStr>) -> Result<Show, Error> {
    let color = look.color.enabled(term.is_terminal, no_color);
    let width = look
        .width
        .map(usize::from)
        .or(if term.is_terminal { term.width } else { None });
    let detail = match look.output {
        Output::Table => Detail::Normal,
        Output::Wide => Detail::Wide,
        Output::Json => return Ok(Show::Json),
        Output::Dot | Output::Mermaid | Output::Svg => return Err(graph_only_elsewhere()),
    };
    Ok(Show::Table {
        detail,
        layout: Layout {
            width: if detail == Detail::Wide { None } else { width },
            headers: !look.no_headers,
            color,
        },
    })
}

/// `graph`: one target, the listing's filters given to `graph`, and the format (`-o table`,
/// the default, is the tree). The graph-only formats (`-o dot|mermaid|svg`) go with `graph`
/// only.
fn graph(cli: &Cli, term: Terminal, no_color: Option<&OsStr>) -> Result<Plan, Error> {
    let Some(Command::Graph {
        listening,
        tcp,
        udp,
        unix,
        port,
        target,
        look,
    }) = &cli.command
    else {
        return Err(graph_only_elsewhere());
    };
    let color = look.color.enabled(term.is_terminal, no_color);
    let format = match look.output {
        Output::Table => GraphFormat::Text,
        Output::Dot => GraphFormat::Dot,
        Output::Mermaid => GraphFormat::Mermaid,
        Output::Svg => GraphFormat::Svg,
        Output::Wide | Output::Json => {
            return Err(Error::Usage(
                "graph draws text (the default), -o dot, -o mermaid or -o svg; the listing \
                 itself is -o wide or -o json"
                    .into(),
            ));
        }
    };
    let mut protos = Vec::new();
    for (on, p) in [(*tcp, Proto::Tcp), (*udp, Proto::Udp), (*unix, Proto::Unix)] {
        if on {
            protos.push(p);
        }
    }
    let filters = Filters {
        listening: *listening,
        protos,
        ports: port.clone(),
    };
    let request = request(target, filters)?;
    if matches!(request.target, Target::AllPods { .. }) {
        return Err(Error::Usage(
            "graph draws one target: give --pod, --pid or --netns, not --all-pods".into(),
        ));
    }
    Ok(Plan::Graph {
        request,
        format,
        color,
    })
}

fn graph_only_elsewhere() -> Error {
    Error::Usage(
        "-o dot, -o mermaid and -o svg draw `podports graph`; the listing is -o table, wide or \
         json"
            .into(),
    )
}

/// `--watch`: how often and how to show it. It goes with the listing of one target only.
fn watch(cli: &Cli, every: Duration, terminal: bool, show: Show) -> Result<Plan, Error> {
    if cli.target.all_pods {
        return Err(Error::Usage(
            "--watch looks at one target: give --pod, --pid or --netns, not --all-pods".into(),
        ));
    }
    let view = match show {
        Show::Table { detail, layout } if terminal => View::Screen { detail, layout },
        _ => View::JsonLines,
    };
    Ok(Plan::Watch {
        request: request(&cli.target, listing_filters(cli))?,
        every,
        view,
    })
}

/// The listing's filters.
fn listing_filters(cli: &Cli) -> Filters {
    let mut protos = Vec::new();
    for (on, p) in [
        (cli.tcp, Proto::Tcp),
        (cli.udp, Proto::Udp),
        (cli.unix, Proto::Unix),
    ] {
        if on {
            protos.push(p);
        }
    }
    Filters {
        listening: cli.listening,
        protos,
        ports: cli.port.clone(),
    }
}

/// `check`'s target, as for the listing, with every listener of it.
fn check_request(t: &TargetArgs) -> Result<Request, Error> {
    let filters = Filters {
        listening: true,
        protos: Vec::new(),
        ports: Vec::new(),
    };
    request(t, filters)
}

/// `probe`'s target: its TCP listeners (`probe --port` picks the ports).
fn probe_request(t: &TargetArgs) -> Result<Request, Error> {
    let filters = Filters {
        listening: true,
        protos: vec![Proto::Tcp],
        ports: Vec::new(),
    };
    let request = request(t, filters)?;
    if matches!(request.target, Target::AllPods { .. }) {
        return Err(Error::Usage(
            "probe looks at one target: give --pod, --pid or --netns, not --all-pods".into(),
        ));
    }
    Ok(request)
}

/// The inspection of this target with these filters.
fn request(cli: &TargetArgs, filters: Filters) -> Result<Request, Error> {
    let target = target(cli)?;
    Ok(Request {
        target,
        source: match cli.source {
            SourceArg::Netlink => Source::Netlink,
            SourceArg::Proc => Source::Proc,
        },
        filters,
        host: match &cli.proc_root {
            Some(proc) => HostRoot::new(&cli.host_root).with_proc(proc),
            None => HostRoot::new(&cli.host_root),
        },
        fd_walk: match cli.fd_walk {
            FdWalkArg::Auto => FdWalk::Auto,
            FdWalkArg::Bpf => FdWalk::Bpf,
            FdWalkArg::Proc => FdWalk::Proc,
        },
    })
}

fn target(cli: &TargetArgs) -> Result<Target, Error> {
    let given: Vec<&str> = [
        (cli.pid.is_some(), "--pid"),
        (cli.netns.is_some(), "--netns"),
        (cli.pod.is_some(), "--pod"),
        (cli.pod_uid.is_some(), "--pod-uid"),
        (cli.container.is_some(), "--container"),
        (cli.all_pods, "--all-pods"),
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
    let namespace = match cli.namespace.as_deref() {
        Some("") => return Err(Error::Usage("--namespace needs a name".into())),
        Some(ns) if cli.pod.is_none() && !cli.all_pods => {
            return Err(Error::Usage(format!(
                "--namespace {ns} goes with --all-pods or --pod NAME"
            )));
        }
        ns => ns.map(String::from),
    };
    let empty = |flag: &str, what: &str| Error::Usage(format!("{flag} needs {what}"));
    Ok(if let Some(pid) = cli.pid {
        Target::Pid(pid)
    } else if let Some(ns) = &cli.netns {
        if ns.is_empty() {
            return Err(empty("--netns", "a name or a path"));
        }
        Target::Netns(ns.clone())
    } else if let Some(pod) = &cli.pod {
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
    } else if let Some(uid) = &cli.pod_uid {
        if uid.is_empty() {
            return Err(empty("--pod-uid", "a pod UID"));
        }
        Target::PodUid(uid.clone())
    } else if let Some(id) = &cli.container {
        if id.is_empty() {
            return Err(empty("--container", "a container ID or a prefix of one"));
        }
        Target::Container(id.clone())
    } else if cli.all_pods {
        Target::AllPods { namespace }
    } else {
        Target::Current
    })
}
