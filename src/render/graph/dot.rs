//! The graph as Graphviz DOT (`podports graph -o dot | dot -Tsvg`): one cluster per container,
//! nodes `n<id>`, every label a quoted string. Pure; never lets a quote or backslash from the
//! target end a string early.

use std::io::{self, Write};

use super::style::{self, HOLDS, WARN};
use super::{EdgeKind, Graph, Node, What};

/// A DOT quoted string: `"` and `\` escaped, lines joined with DOT's `\n`. The text is already
/// free of control characters (the graph escaped it).
pub fn quote(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\\n");
        }
        for c in l.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                // Never in the graph's text; kept out of the string all the same.
                c if c.is_control() => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

pub fn write(out: &mut impl Write, g: &Graph) -> io::Result<()> {
    writeln!(out, "digraph podports {{")?;
    let mut title = vec![g.title.clone()];
    title.extend(g.notes.iter().map(|n| format!("note: {n}")));
    writeln!(
        out,
        "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", fontsize=12, label={}];",
        quote(&title)
    )?;
    writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11];")?;
    writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];")?;
    for (gi, grp) in g.groups.iter().enumerate() {
        writeln!(out, "  subgraph cluster_{gi} {{")?;
        let label = if grp.outside {
            vec![grp.label.clone(), "another pod".into()]
        } else {
            vec![grp.label.clone()]
        };
        let style = if grp.outside {
            "dashed,rounded"
        } else {
            "rounded"
        };
        writeln!(
            out,
            "    graph [label={}, style=\"{style}\", color=\"#adb5bd\"];",
            quote(&label)
        )?;
        for n in g.nodes.iter().filter(|n| n.group == Some(gi)) {
            node(out, n, "    ")?;
        }
        writeln!(out, "  }}")?;
    }
    for n in g.nodes.iter().filter(|n| n.group.is_none()) {
        node(out, n, "  ")?;
    }
    for e in &g.edges {
        let mut attrs = Vec::new();
        match e.kind {
            EdgeKind::Holds => {
                attrs.push("arrowhead=none".to_string());
                attrs.push(format!("color=\"{HOLDS}\""));
            }
            EdgeKind::Connects | EdgeKind::Closed => {
                attrs.push(format!("label={}", quote(&[e.label()])));
                let width = 1.0 + (e.count as f64).log10();
                attrs.push(format!("penwidth={width:.1}"));
                if e.kind == EdgeKind::Closed {
                    attrs.push("style=dashed".into());
                }
                if !e.warnings.is_empty() {
                    attrs.push(format!("color=\"{WARN}\""));
                    attrs.push(format!("tooltip={}", quote(&e.warnings)));
                }
            }
        }
        writeln!(out, "  n{} -> n{} [{}];", e.from, e.to, attrs.join(", "))?;
    }
    writeln!(out, "}}")
}

fn node(out: &mut impl Write, n: &Node, indent: &str) -> io::Result<()> {
    let class = n.class();
    let (fill, stroke) = style::colors(class);
    let (shape, mut styles, size) = match &n.what {
        What::Process { outside, .. } => (
            "box",
            vec!["filled", "rounded"],
            if *outside { "" } else { ", penwidth=1.5" },
        ),
        What::Hidden { .. } => ("box", vec!["filled", "rounded", "dashed"], ""),
        What::Closed => ("box", vec!["filled", "rounded", "dotted"], ""),
        What::Listener { .. } => ("box", vec!["filled"], ", fontsize=9, height=0.3"),
        What::UnixPath { .. } => ("note", vec!["filled"], ", fontsize=9, height=0.3"),
        What::Remote { .. } | What::Remotes { .. } => ("ellipse", vec!["filled"], ", fontsize=9"),
    };
    if let What::Process { outside: true, .. } = n.what {
        styles.push("dashed");
    }
    writeln!(
        out,
        "{indent}n{} [label={}, shape={shape}, style=\"{}\", fillcolor=\"{fill}\", color=\"{stroke}\", class=\"{class}\"{size}];",
        n.id,
        quote(&n.lines()),
        styles.join(","),
    )
}
