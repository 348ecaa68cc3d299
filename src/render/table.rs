//! The human view: one row per socket, listeners first, with owners, roles and warnings, and
//! a footer of what the user must know. Pure: writes to any `impl Write`. Every byte from the
//! target goes through `escape` first.

use std::io::{self, Write};

use std::net::IpAddr;

use crate::escape::{endpoint, escape};
use crate::listing::Inspection;
use crate::model::{ContainerRef, Endpoint, FdWalk, Holder, PodRef, Role, Socket, State};
use crate::render::columns::{self, Cell, Column, Layout, Paint, Row};
use crate::request::Source;

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Normal,
    /// Adds inode, uid, queues, fds, cmdline and what each owner's kind rests on.
    Wide,
}

const NORMAL: [Column; 6] = [
    Column::fixed("PROTO"),
    Column::fixed("STATE"),
    Column::address("LOCAL"),
    Column::address("REMOTE"),
    Column::long("PROCESS"),
    Column::long("ROLE"),
];
const WIDE: [Column; 12] = [
    Column::fixed("PROTO"),
    Column::fixed("STATE"),
    Column::address("LOCAL"),
    Column::address("REMOTE"),
    Column::long("PROCESS"),
    Column::long("ROLE"),
    Column::fixed("INODE"),
    Column::fixed("UID"),
    Column::fixed("RECV-Q"),
    Column::fixed("SEND-Q"),
    Column::long("CMDLINE"),
    Column::long("KIND"),
];

/// Write the table (`write_rows`), then the footer.
pub fn write(
    out: &mut impl Write,
    ins: &Inspection,
    detail: Detail,
    layout: Layout,
) -> io::Result<()> {
    write_rows(out, ins, detail, layout)?;
    let layout = match detail {
        Detail::Normal => layout,
        Detail::Wide => Layout {
            width: None,
            ..layout
        },
    };
    footer(out, ins, layout)
}

/// The header and one line per socket (or `no sockets`), then the numbered notes when the
/// layout fits a width. `-o wide` is never shortened: its layout's width is ignored.
pub fn write_rows(
    out: &mut impl Write,
    ins: &Inspection,
    detail: Detail,
    layout: Layout,
) -> io::Result<()> {
    if ins.sockets.is_empty() {
        return writeln!(out, "no sockets");
    }
    let (columns, layout) = match detail {
        Detail::Normal => (&NORMAL[..], layout),
        Detail::Wide => (
            &WIDE[..],
            Layout {
                width: None,
                ..layout
            },
        ),
    };
    let table = columns::Table {
        columns,
        notes: Some("WARNINGS"),
    };
    // Row by row, not through tabled's builder, which holds every cell (issue 5).
    columns::write(out, table, layout, ins.sockets.len(), |i| {
        ins.sockets
            .get(i)
            .map(|s| row(s, detail, ins.pod.as_ref(), layout.width.is_some()))
            .unwrap_or_default()
    })
}

/// `fitted`: on a terminal, where ss's short `ESTAB` saves six columns.
fn row(s: &Socket, detail: Detail, pod: Option<&PodRef>, fitted: bool) -> Row {
    let owner = match &s.cgroup_owner {
        Some(c) if s.holders.is_empty() => format!("- (cgroup of {})", container_label(c, pod)),
        _ => holders(&s.holders, detail, pod),
    };
    let state = Cell::painted(
        match s.state {
            State::Established if fitted => "ESTAB".to_string(),
            st => st.to_string(),
        },
        match s.state {
            State::Listen => Paint::Green,
            State::Established => Paint::Plain,
            _ => Paint::Yellow,
        },
    );
    let mut cells = vec![
        Cell::from(s.proto.to_string()),
        state,
        Cell::from(local(s)),
        Cell::from(endpoint(&s.remote)),
        Cell::from(owner),
        Cell::painted(role_cell(s), Paint::Cyan),
    ];
    if detail == Detail::Wide {
        cells.push(Cell::from(s.inode.to_string()));
        cells.push(Cell::from(
            s.uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
        ));
        cells.push(Cell::from(s.recv_q.to_string()));
        cells.push(Cell::from(s.send_q.to_string()));
        cells.push(Cell::from(cmdlines(&s.holders)));
        cells.push(Cell::from(kinds(&s.holders)));
    }
    Row {
        cells,
        notes: s.warnings.iter().map(|w| escape(w.as_bytes())).collect(),
    }
}

/// The local end as ss prints it: `*:15001` for a dual-stack `[::]` listener (v6only off),
/// `[::]:15001` for one that takes IPv6 only (or when the kernel did not say).
pub fn local(s: &Socket) -> String {
    match &s.local {
        Endpoint::Inet {
            addr: IpAddr::V6(a),
            port,
        } if a.is_unspecified() && s.v6only == Some(false) => {
            format!("*:{}", crate::escape::port_text(*port))
        }
        e => endpoint(e),
    }
}

/// A container as the PROCESS column names it: `istio-proxy` in the listing's own pod,
/// `istio-system/ztunnel-x7k2p/istio-proxy` in another (ambient ztunnel), `?` for a name the
/// node does not record.
fn container_label(c: &ContainerRef, pod: Option<&PodRef>) -> String {
    let name = escape(c.name.as_deref().unwrap_or("?").as_bytes());
    if pod.is_some_and(|p| p.uid == c.pod.uid) {
        name
    } else {
        format!("{}/{name}", escape(c.pod.to_string().as_bytes()))
    }
}

/// `envoy[1234]` for each holding process (once per process, with its fds in wide view),
/// followed by its container on a node (`envoy[1234] istio-proxy`).
fn holders(hs: &[Holder], detail: Detail, pod: Option<&PodRef>) -> String {
    if hs.is_empty() {
        return "-".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<i32> = Vec::new();
    for h in hs {
        if seen.contains(&h.process.pid) {
            if detail == Detail::Wide
                && let Some(last) = parts.last_mut()
            {
                last.push_str(&format!(",{}", h.fd));
            }
            continue;
        }
        seen.push(h.process.pid);
        let mut text = format!("{}[{}]", escape(h.process.comm.as_bytes()), h.process.pid);
        if detail == Detail::Wide {
            text.push_str(&format!(":fd{}", h.fd));
        }
        if let Some(c) = &h.container {
            text.push(' ');
            text.push_str(&container_label(c, pod));
        }
        parts.push(text);
    }
    parts.join(" ")
}

fn role_cell(s: &Socket) -> String {
    match (&s.role, &s.peer_role) {
        (Some(r), _) => role_name(r),
        (None, Some(p)) => format!("-> {}", role_name(p)),
        (None, None) => String::new(),
    }
}

/// `envoy admin`, `istiod xds-tls`.
pub fn role_name(r: &Role) -> String {
    format!("{} {}", r.component, r.name)
}

fn cmdlines(hs: &[Holder]) -> String {
    let mut seen: Vec<i32> = Vec::new();
    let mut parts = Vec::new();
    for h in hs {
        if seen.contains(&h.process.pid) {
            continue;
        }
        seen.push(h.process.pid);
        let args: Vec<String> = h
            .process
            .cmdline
            .iter()
            .map(|a| escape(a.as_bytes()))
            .collect();
        parts.push(args.join(" "));
    }
    parts.join(" | ")
}

fn kinds(hs: &[Holder]) -> String {
    let mut seen: Vec<i32> = Vec::new();
    let mut parts = Vec::new();
    for h in hs {
        if seen.contains(&h.process.pid) {
            continue;
        }
        seen.push(h.process.pid);
        // The basis quotes the exe's name: the target's bytes.
        parts.push(format!("{} ({})", h.kind, escape(h.basis.as_bytes())));
    }
    parts.join(" | ")
}

/// `1 socket`, `2 sockets`, `0 sockets`.
pub fn plural_n(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `socket` for one, `sockets` for any other count.
pub fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// The lines under the table: counts, the namespace, the pod, the listing's warnings.
pub fn footer(out: &mut impl Write, ins: &Inspection, layout: Layout) -> io::Result<()> {
    let listening = ins.sockets.iter().filter(|s| s.is_listening()).count();
    let source = match ins.source {
        Source::Netlink => "netlink sock_diag",
        Source::Proc => "/proc/net text",
    };
    let inode = ins
        .netns
        .inode
        .map(|i| format!(" (netns inode {i})"))
        .unwrap_or_default();
    let owners = match ins.fd_walk {
        Some(FdWalk::Bpf) => ", owners from the kernel's fd tables (BPF iterator)",
        Some(FdWalk::Proc) => ", owners from /proc/*/fd",
        Some(FdWalk::Auto) | None => "",
    };
    let n = ins.sockets.len();
    let wrap = |text: String| columns::wrap(&text, layout.width, 2);
    writeln!(
        out,
        "{}",
        wrap(format!(
            "{n} {}, {listening} listening; {}{inode}; from {source}{owners}",
            plural(n, "socket", "sockets"),
            escape(ins.netns.target.as_bytes()),
        ))
    )?;
    if let Some(pod) = &ins.pod {
        writeln!(
            out,
            "{}",
            wrap(format!(
                "pod {}, uid {}",
                escape(pod.to_string().as_bytes()),
                pod.uid
            ))
        )?;
    }
    if !ins.pods.is_empty() {
        let pods: Vec<String> = ins
            .pods
            .iter()
            .map(|p| escape(p.to_string().as_bytes()))
            .collect();
        let what = if ins.host_network {
            "hostNetwork pods"
        } else {
            "pods"
        };
        writeln!(out, "{}", wrap(format!("{what}: {}", pods.join(", "))))?;
    }
    for w in &ins.warnings {
        let text = wrap(format!("warning: {}", escape(w.as_bytes())));
        let label = Paint::Yellow.apply("warning:", layout.color);
        writeln!(
            out,
            "{label}{}",
            text.strip_prefix("warning:").unwrap_or(&text)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::listing::NetnsInfo;
    use crate::model::{Endpoint, Family, Kind, ProcessInfo, RawText, SockType, State, UnixName};

    fn hostile_inspection() -> Inspection {
        let evil = RawText::new(&b"ev\x1b[2Jil\nname\xff"[..]);
        let mut s = Socket::new(
            crate::model::Proto::Unix,
            Family::Unix,
            SockType::Stream,
            State::Listen,
            Endpoint::UnixLocal(UnixName::Path(RawText::new(&b"/tmp/a\nb\x07c"[..]))),
            Endpoint::UnixPeer { peer_inode: None },
            7,
        );
        s.holders.push(Holder {
            process: Arc::new(ProcessInfo {
                pid: 9,
                comm: evil.clone(),
                cmdline: vec![evil, RawText::from("--flag\r")],
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind: Kind::App,
            basis: "comm envoy but exe ev\x1b[2Jil\nx".into(),
            container: None,
        });
        Inspection {
            netns: NetnsInfo {
                inode: Some(1),
                target: "pid 9".into(),
            },
            source: Source::Netlink,
            sockets: vec![s],
            warnings: vec!["owners hidden\x1b]0;pwned\x07".into()],
            hidden_owners: 0,
            fd_walk: None,
            pod: None,
            host_network: false,
            pods: Vec::new(),
        }
    }

    fn render(detail: Detail, color: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let layout = Layout {
            color,
            ..Layout::PLAIN
        };
        write(&mut out, &hostile_inspection(), detail, layout).unwrap();
        out
    }

    #[test]
    fn no_raw_control_byte_from_the_target_reaches_the_table() {
        for detail in [Detail::Normal, Detail::Wide] {
            let out = render(detail, false);
            let bad: Vec<u8> = out
                .iter()
                .copied()
                .filter(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f)
                .collect();
            assert!(
                bad.is_empty(),
                "{bad:?} in {}",
                String::from_utf8_lossy(&out)
            );
            let text = String::from_utf8(out).expect("the table is UTF-8");
            // Header, one row, footer, one warning: a newline in a name never splits a row.
            assert_eq!(text.lines().count(), 4, "{text}");
            assert!(text.contains("ev\\x1b[2Jil\\nname\\xff[9]"), "{text}");
            assert!(text.contains("/tmp/a\\nb\\x07c"), "{text}");
        }
    }

    #[test]
    fn the_footer_says_where_owners_came_from() {
        let footer = |fd_walk| {
            let mut out = Vec::new();
            let ins = Inspection {
                fd_walk,
                ..hostile_inspection()
            };
            write(&mut out, &ins, Detail::Normal, Layout::PLAIN).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(
            footer(Some(FdWalk::Bpf))
                .contains("from netlink sock_diag, owners from the kernel's fd tables")
        );
        assert!(
            footer(Some(FdWalk::Proc)).contains("from netlink sock_diag, owners from /proc/*/fd")
        );
        assert!(footer(None).contains("from netlink sock_diag\n"));
        // One socket is "1 socket", never "1 sockets".
        let one = footer(None);
        assert!(one.contains("\n1 socket, 1 listening; pid 9"), "{one}");
        assert!(!one.contains("1 sockets"), "{one}");
        let mut two = hostile_inspection();
        two.sockets.push(two.sockets[0].clone());
        let mut out = Vec::new();
        write(&mut out, &two, Detail::Normal, Layout::PLAIN).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("2 sockets, 2 listening")
        );
    }

    #[test]
    fn color_only_when_asked() {
        let plain = String::from_utf8(render(Detail::Normal, false)).unwrap();
        assert!(!plain.contains('\x1b'));
        let colored = String::from_utf8(render(Detail::Normal, true)).unwrap();
        assert!(colored.contains("\x1b[33mwarning:\x1b[0m owners hidden\\x1b]0;pwned\\x07"));
    }
}
