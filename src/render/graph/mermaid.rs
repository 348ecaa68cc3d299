//! The graph as a Mermaid flowchart, which GitHub and GitLab draw inline from a ```mermaid
//! block: one subgraph per container, nodes `n<id>`. Pure; every character of a label that
//! Mermaid could read as syntax or markup is written as an entity code (`#34;`).

use std::io::{self, Write};

use super::style::{self, HOLDS, WARN};
use super::{EdgeKind, Graph, Node, What};

/// A Mermaid label: letters, digits and plain punctuation as they are, everything else (quotes,
/// `<`, `#`, `|`, backslashes, any non-ASCII character) as `#<decimal>;`, lines joined with
/// `<br/>`, all in double quotes.
pub fn quote(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("<br/>");
        }
        for c in l.chars() {
            if c.is_ascii_alphanumeric() || " .,:/_-+=@()[]*?!".contains(c) {
                out.push(c);
            } else {
                out.push_str(&format!("#{};", c as u32));
            }
        }
    }
    out.push('"');
    out
}

/// The class name Mermaid knows a node class by (`pilot_agent`).
fn class_name(class: &str) -> String {
    class.replace('-', "_")
}

pub fn write(out: &mut impl Write, g: &Graph) -> io::Result<()> {
    // Comments carry the title and notes: a front-matter title would be YAML to quote.
    writeln!(out, "%% podports graph: {}", g.title)?;
    for n in &g.notes {
        writeln!(out, "%% note: {n}")?;
    }
    writeln!(out, "flowchart LR")?;
    for (gi, grp) in g.groups.iter().enumerate() {
        let label = if grp.outside {
            vec![grp.label.clone(), "another pod".into()]
        } else {
            vec![grp.label.clone()]
        };
        writeln!(out, "  subgraph g{gi}[{}]", quote(&label))?;
        for n in g.nodes.iter().filter(|n| n.group == Some(gi)) {
            node(out, n, "    ")?;
        }
        writeln!(out, "  end")?;
    }
    for n in g.nodes.iter().filter(|n| n.group.is_none()) {
        node(out, n, "  ")?;
    }
    let mut link_styles = Vec::new();
    for (i, e) in g.edges.iter().enumerate() {
        match e.kind {
            EdgeKind::Holds => {
                writeln!(out, "  n{} --- n{}", e.from, e.to)?;
                link_styles.push((i, HOLDS));
            }
            EdgeKind::Connects => {
                writeln!(out, "  n{} -->|{}| n{}", e.from, quote(&[e.label()]), e.to)?
            }
            EdgeKind::Closed => {
                writeln!(out, "  n{} -.->|{}| n{}", e.from, quote(&[e.label()]), e.to)?
            }
        }
        if e.kind != EdgeKind::Holds && !e.warnings.is_empty() {
            link_styles.push((i, WARN));
        }
    }
    for color in [HOLDS, WARN] {
        let links: Vec<String> = link_styles
            .iter()
            .filter(|(_, c)| *c == color)
            .map(|(i, _)| i.to_string())
            .collect();
        if !links.is_empty() {
            writeln!(out, "  linkStyle {} stroke:{color}", links.join(","))?;
        }
    }
    let mut classes: Vec<&str> = g.nodes.iter().map(Node::class).collect();
    classes.sort_unstable();
    classes.dedup();
    for c in classes {
        let (fill, stroke) = style::colors(c);
        let dash = match c {
            "hidden" | "closed" => ",stroke-dasharray:4 3",
            _ => "",
        };
        writeln!(
            out,
            "  classDef {} fill:{fill},stroke:{stroke},color:#212529{dash}",
            class_name(c)
        )?;
    }
    Ok(())
}

fn node(out: &mut impl Write, n: &Node, indent: &str) -> io::Result<()> {
    let label = quote(&n.lines());
    let shaped = match &n.what {
        What::Process { .. } | What::Hidden { .. } | What::Closed => format!("({label})"),
        What::Listener { .. } => format!("[{label}]"),
        What::UnixPath { .. } => format!("[[{label}]]"),
        What::Remote { .. } | What::Remotes { .. } => format!("([{label}])"),
    };
    writeln!(out, "{indent}n{}{shaped}:::{}", n.id, class_name(n.class()))
}
