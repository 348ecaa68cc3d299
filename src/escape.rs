//! Making target-controlled bytes (process names, cmdlines, unix paths) safe for a terminal.
//! Pure. Never lets a control byte, an invalid UTF-8 byte or a bidi override through raw.
//! Below every stage and renderer: `annotate`, `check` and `render` all write text with it.

use std::net::IpAddr;

use crate::model::{Endpoint, UnixName};

/// Escape `bytes` for one table cell: printable text stays, a backslash doubles, control
/// characters become `\n`, `\t`, `\e`-style `\x1b`, invalid UTF-8 bytes `\xNN`, and Unicode
/// controls and bidi overrides `\u{202e}`. The result never contains a newline.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() || is_invisible_format(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32))
        }
        c => out.push(c),
    }
}

/// Bidi embeddings, overrides and isolates, and zero-width characters: they can make a name
/// read as something it is not.
fn is_invisible_format(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
}

/// `127.0.0.1:15000`, `[::]:15001`, a unix path, `@abstract`, `*` for unnamed.
pub fn endpoint(e: &Endpoint) -> String {
    match e {
        Endpoint::Inet {
            addr: IpAddr::V4(a),
            port,
        } => format!("{a}:{}", port_text(*port)),
        Endpoint::Inet {
            addr: IpAddr::V6(a),
            port,
        } => format!("[{a}]:{}", port_text(*port)),
        Endpoint::UnixLocal(UnixName::Unnamed) => "*".into(),
        Endpoint::UnixLocal(UnixName::Path(p)) => escape(p.as_bytes()),
        Endpoint::UnixLocal(UnixName::Abstract(p)) => format!("@{}", escape(p.as_bytes())),
        Endpoint::UnixPeer {
            peer_inode: Some(i),
        } => format!("peer:{i}"),
        Endpoint::UnixPeer { peer_inode: None } => "*".into(),
    }
}

pub fn port_text(port: u16) -> String {
    if port == 0 {
        "*".into()
    } else {
        port.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape(b"envoy"), "envoy");
        assert_eq!(escape("café/日本".as_bytes()), "café/日本");
    }

    #[test]
    fn control_bytes_are_visible() {
        assert_eq!(escape(b"evil\x1b[31mred"), "evil\\x1b[31mred");
        assert_eq!(escape(b"two\nlines"), "two\\nlines");
        assert_eq!(escape(b"a\tb\rc\x7f"), "a\\tb\\rc\\x7f");
        assert_eq!(escape(b"nul\0"), "nul\\x00");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_are_unambiguous() {
        assert_eq!(escape(b"a\\x1b"), "a\\\\x1b");
    }

    #[test]
    fn invalid_utf8_bytes_are_hex() {
        assert_eq!(escape(b"bad\xff\xfeend"), "bad\\xff\\xfeend");
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(escape("x\u{9b}y".as_bytes()), "x\\u{9b}y");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
    }

    #[test]
    fn output_never_contains_a_raw_control_character() {
        let all: Vec<u8> = (0u8..=255).collect();
        let out = escape(&all);
        assert!(!out.chars().any(|c| c.is_control()), "{out}");
    }
}
