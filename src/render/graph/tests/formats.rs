//! Every format from odd input: hostile names stay text, an empty listing renders.

use super::*;

fn hostile() -> Inspection {
    let names: [&[u8]; 4] = [
        b"ev\"il\\\n\x1b[31m<b>&amp;</b>",
        "bidi\u{202e}cod.exe\u{fffe}".as_bytes(),
        b"}; n0 -> n1 [label=x]; \"",
        b"end\n%%{init}%%\xff\xfe",
    ];
    let mut sockets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = process(100 + i as i32, name, NETNS);
        let path = UnixName::Path(RawText::new(*name));
        let inode = 10 * (i as u64 + 1);
        sockets.push(unix(inode, path.clone(), None, vec![holder(&p, Kind::App)]));
        sockets.push(unix(
            inode + 1,
            path,
            Some(inode + 2),
            vec![holder(&p, Kind::App)],
        ));
        sockets.push(unix(
            inode + 2,
            UnixName::Unnamed,
            Some(inode + 1),
            vec![holder(&p, Kind::App)],
        ));
        sockets.push(tcp(
            State::Listen,
            &format!("127.0.0.1:{}", 8000 + i),
            "0.0.0.0:0",
            inode + 3,
            vec![holder(&p, Kind::App)],
        ));
    }
    let mut ins = inspection(sockets);
    ins.netns.target = "netns \"x\x07\"".into();
    ins.warnings.push("bad\x1b]0;title\x07 <warning>".into());
    ins
}

#[test]
fn hostile_names_stay_text_in_every_format() {
    let g = build(&hostile());
    let [d, m, s, t] = render(&g);
    for (what, out) in [("dot", &d), ("mermaid", &m), ("svg", &s), ("text", &t)] {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: a raw control character in {out}"
        );
        assert!(!out.contains('\u{202e}'), "{what}: a raw bidi override");
    }
    // Every DOT string reads back to the escaped name, and the graph has exactly its nodes.
    let parsed = dotparse::parse(&d).unwrap_or_else(|e| panic!("{e}\n{d}"));
    assert_eq!(parsed.nodes.len(), g.nodes.len());
    assert_eq!(parsed.edges.len(), g.edges.len());
    let labels: Vec<&str> = parsed
        .nodes
        .values()
        .map(|n| n.attrs["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"app 100\nev\"il\\\\\\n\\x1b[31m<b>&amp;</b>"),
        "{labels:#?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.ends_with("\n}; n0 -> n1 [label=x]; \"")),
        "{labels:#?}"
    );
    // Mermaid: no quote or markup inside a label, entities instead.
    for line in m
        .lines()
        .filter(|l| l.contains('"') && !l.starts_with("%%"))
    {
        let inner: Vec<&str> = line.split('"').collect();
        assert_eq!(inner.len() % 2, 1, "unbalanced quotes: {line}");
        for label in inner.iter().skip(1).step_by(2) {
            assert!(
                !label.contains(['<', '>', '&', '|', '\\']) || label.contains("<br/>"),
                "{line}"
            );
            assert!(!label.replace("<br/>", "").contains(['<', '>']), "{line}");
        }
    }
    assert!(m.contains("#34;"), "{m}");
    assert!(!m.contains("%%{init}"), "{m}");
    // SVG: well-formed XML, every label's text in it.
    let doc = roxmltree::Document::parse(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for n in &g.nodes {
        for l in n.lines() {
            assert!(text.contains(&svg::xml_text(&l)), "{l:?} not in the SVG");
        }
    }
    assert!(text.contains("\\u{fffe}"), "U+FFFE escaped: {text}");
    // Text: names escaped, one line each.
    assert!(
        t.contains("app 100, ev\"il\\\\\\n\\x1b[31m<b>&amp;</b>"),
        "{t}"
    );
    assert!(t.contains("note: bad\\x1b]0;title\\x07 <warning>"), "{t}");
}

#[test]
fn an_empty_listing_renders_in_every_format() {
    let g = build(&inspection(Vec::new()));
    assert!(g.nodes.is_empty() && g.edges.is_empty());
    let [d, _, s, t] = render(&g);
    assert!(dotparse::parse(&d).unwrap().nodes.is_empty());
    roxmltree::Document::parse(&s).unwrap();
    assert!(t.starts_with("netns test"));
}
