//! `--watch` output. On a terminal, a frame: the screen cleared, a line saying how often and
//! what changed, then the listing's own table with a marker column (`+` appeared, `-`
//! disappeared since the last look, shown once) and the listing's footer. Otherwise, JSON
//! Lines: one `{"event": "appeared"|"disappeared", "socket": {...}}` per change, the socket
//! exactly as in `-o json`. Pure: writes to any `impl Write`.

use std::collections::HashSet;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::listing::Inspection;
use crate::render::columns::Layout;
use crate::render::json::{SocketDoc, socket_doc};
use crate::render::table::{self, Detail};
use crate::watch::{Diff, Key};

/// How changes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Redraw the listing with markers (stdout is a terminal, `-o table|wide`).
    Screen { detail: Detail, layout: Layout },
    /// One JSON line per change (`-o json`, or stdout is not a terminal).
    JsonLines,
}

/// One line of `--watch` JSON Lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// `appeared` or `disappeared`.
    pub event: String,
    pub socket: SocketDoc,
}

/// One JSON line per change, the disappeared first, each in listing order.
pub fn write_events(out: &mut impl Write, diff: &Diff) -> io::Result<()> {
    for (event, s) in diff.changes() {
        let line = WatchEvent {
            event: event.as_str().to_string(),
            socket: socket_doc(s),
        };
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// What the frame's first line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `2s`, `500ms`.
    pub every: &'a str,
    /// `12:03:04 UTC`: when this look was taken.
    pub at: &'a str,
    /// The first look: nothing to compare with, so nothing is marked.
    pub first: bool,
}

/// Clears the screen, then writes the frame: the listing `ins` with what `diff` says appeared
/// marked `+`, and the sockets it says disappeared put back in their place, marked `-`.
///
/// The rows are the listing's own (`table::write`), so the view never drifts from `podports`
/// without `--watch`: each socket is one line there (the escaping guarantees it), and the
/// marker goes in front of it.
pub fn write_frame(
    out: &mut impl Write,
    ins: &Inspection,
    diff: &Diff,
    frame: &Frame,
    detail: Detail,
    layout: Layout,
) -> io::Result<()> {
    let color = layout.color;
    let mut shown = ins.clone();
    shown
        .sockets
        .extend(diff.disappeared.iter().map(|s| (*s).clone()));
    crate::listing::sort(&mut shown.sockets);
    let gone: HashSet<Key> = diff.disappeared.iter().map(|s| Key::of(s)).collect();
    let came: HashSet<Key> = diff.appeared.iter().map(|s| Key::of(s)).collect();
    let paint = |mark: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{mark}\x1b[0m")
        } else {
            mark.to_string()
        }
    };

    // Home, clear the screen, clear the scrollback's copy of it.
    write!(out, "\x1b[H\x1b[2J\x1b[3J")?;
    if frame.first {
        writeln!(
            out,
            "every {}, at {}; Ctrl-C to stop",
            frame.every, frame.at
        )?;
    } else {
        writeln!(
            out,
            "every {}, at {}: {} appeared (+), {} disappeared (-) since the last look; Ctrl-C \
             to stop",
            frame.every,
            frame.at,
            diff.appeared.len(),
            diff.disappeared.len()
        )?;
    }

    // The rows (and notes) of what is there and what just left; a column narrower for the
    // marker in front of each line.
    // Fitted tables have no blank column in front: the marker gets its own.
    let (layout, gap) = match layout.width {
        Some(w) => (
            Layout {
                width: Some(w.saturating_sub(2)),
                ..layout
            },
            " ",
        ),
        None => (layout, ""),
    };
    let mut rows = Vec::new();
    table::write_rows(&mut rows, &shown, detail, layout)?;
    let rows = String::from_utf8_lossy(&rows);
    let header = usize::from(layout.headers && !shown.sockets.is_empty());
    for (i, line) in rows.lines().enumerate() {
        let mark = match i.checked_sub(header).and_then(|i| shown.sockets.get(i)) {
            None => " ".to_string(),
            Some(s) => {
                let key = Key::of(s);
                if gone.contains(&key) {
                    paint("-", "31")
                } else if came.contains(&key) {
                    paint("+", "32")
                } else {
                    " ".to_string()
                }
            }
        };
        if line.is_empty() {
            writeln!(out)?;
        } else if shown.sockets.is_empty() {
            writeln!(out, "  {line}")?;
        } else if i >= header + shown.sockets.len() {
            // The notes under the table.
            writeln!(out, " {line}")?;
        } else {
            writeln!(out, "{mark}{gap}{line}")?;
        }
    }

    // The footer is the listing's (counts, namespace, warnings), without what disappeared.
    let mut footer = Vec::new();
    table::footer(&mut footer, ins, layout)?;
    for line in String::from_utf8_lossy(&footer).lines() {
        writeln!(out, " {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::listing::NetnsInfo;
    use crate::model::{Endpoint, Family, Proto, SockType, Socket, State};
    use crate::request::Source;
    use crate::watch::diff;

    fn listener(port: u16, inode: u64) -> Socket {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            State::Listen,
            Endpoint::Inet { addr: any, port },
            Endpoint::Inet { addr: any, port: 0 },
            inode,
        )
    }

    fn listing(sockets: Vec<Socket>) -> Inspection {
        Inspection {
            netns: NetnsInfo {
                inode: Some(9),
                target: "netns /run/netns/w".into(),
            },
            source: Source::Netlink,
            sockets,
            warnings: vec!["owners hidden".into()],
            hidden_owners: 0,
            fd_walk: None,
            pod: None,
            host_network: false,
            pods: Vec::new(),
        }
    }

    const COLOR: Layout = Layout {
        color: true,
        ..Layout::PLAIN
    };

    const FRAME: Frame = Frame {
        every: "2s",
        at: "12:00:00 UTC",
        first: false,
    };

    #[test]
    fn a_frame_marks_what_came_and_what_went() {
        let before = listing(vec![listener(15000, 1), listener(15021, 2)]);
        let after = listing(vec![listener(15000, 1), listener(15090, 3)]);
        let d = diff(&before.sockets, &after.sockets);
        let mut out = Vec::new();
        write_frame(&mut out, &after, &d, &FRAME, Detail::Normal, Layout::PLAIN).unwrap();
        let text = String::from_utf8(out).unwrap();
        let body = text
            .strip_prefix("\x1b[H\x1b[2J\x1b[3J")
            .expect("clears first");
        let lines: Vec<&str> = body.lines().collect();
        assert!(
            lines[0].contains("1 appeared (+), 1 disappeared (-)"),
            "{body}"
        );
        assert!(lines[1].starts_with("  PROTO"), "{body}");
        assert!(
            lines[2].starts_with("  tcp") && lines[2].contains(":15000"),
            "{body}"
        );
        assert!(
            lines[3].starts_with("- tcp") && lines[3].contains(":15021"),
            "{body}"
        );
        assert!(
            lines[4].starts_with("+ tcp") && lines[4].contains(":15090"),
            "{body}"
        );
        // The footer counts what is there now, not what went.
        assert!(lines[5].contains("2 sockets, 2 listening"), "{body}");
        assert_eq!(lines[6], " warning: owners hidden");
        assert_eq!(lines.len(), 7, "{body}");
    }

    #[test]
    fn the_first_frame_marks_nothing_and_an_empty_one_says_so() {
        let now = listing(vec![listener(15000, 1)]);
        let d = diff(&[], &[]);
        let mut out = Vec::new();
        let first = Frame {
            first: true,
            ..FRAME
        };
        write_frame(&mut out, &now, &d, &first, Detail::Wide, COLOR).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("every 2s, at 12:00:00 UTC; Ctrl-C to stop"));
        assert!(!text.contains("\x1b[32m+") && !text.contains("\x1b[31m-"));
        assert!(text.contains("INODE"), "wide columns: {text}");

        let empty = listing(Vec::new());
        let d = diff(&now.sockets, &empty.sockets);
        let mut out = Vec::new();
        write_frame(&mut out, &empty, &d, &FRAME, Detail::Normal, COLOR).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\x1b[31m-\x1b[0m tcp"), "{text}");
        assert!(text.contains("0 sockets, 0 listening"), "{text}");

        let mut out = Vec::new();
        write_frame(
            &mut out,
            &empty,
            &diff(&[], &[]),
            &FRAME,
            Detail::Normal,
            Layout::PLAIN,
        )
        .unwrap();
        assert!(String::from_utf8(out).unwrap().contains("\n  no sockets\n"));
    }

    #[test]
    fn events_are_json_lines_read_back_as_sockets() {
        let before = vec![listener(15021, 2)];
        let after = vec![listener(15090, 3)];
        let mut out = Vec::new();
        write_events(&mut out, &diff(&before, &after)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let events: Vec<WatchEvent> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "disappeared");
        assert_eq!(events[0].socket.inode, 2);
        assert_eq!(events[1].event, "appeared");
        assert_eq!(events[1].socket.state, "LISTEN");
        // Exactly the socket of `-o json`.
        assert_eq!(events[1].socket, socket_doc(&after[0]));
        let mut none = Vec::new();
        write_events(&mut none, &diff(&after, &after)).unwrap();
        assert!(none.is_empty());
    }
}
