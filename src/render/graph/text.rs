//! The graph as an indented tree for a terminal (the default of `podports graph`): each
//! container, its processes, the ports and paths each listens on with who reached them, and
//! where each process connects to. Pure; its text is the graph's, escaped when it was built.

use std::io::{self, Write};

use super::{EdgeKind, Graph, Node, What};

/// Write the tree. `color` marks warnings in yellow (only ever on a terminal).
pub fn write(out: &mut impl Write, g: &Graph, color: bool) -> io::Result<()> {
    let (warn, reset) = if color {
        ("\x1b[33m", "\x1b[0m")
    } else {
        ("", "")
    };
    writeln!(out, "{}", g.title)?;
    // Owners: processes, and the stand-ins for owners not seen; each under its container.
    let owners: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.what,
                What::Process { .. } | What::Hidden { .. } | What::Closed
            )
        })
        .collect();
    let mut last_group: Option<Option<usize>> = None;
    for n in &owners {
        if last_group != Some(n.group) {
            last_group = Some(n.group);
            match n.group.and_then(|i| g.groups.get(i)) {
                Some(grp) if grp.outside => writeln!(out, "container {} (another pod)", grp.label)?,
                Some(grp) => writeln!(out, "container {}", grp.label)?,
                None if g.groups.is_empty() => {}
                None => writeln!(out, "no container")?,
            }
        }
        let indent = if g.groups.is_empty() { "" } else { "  " };
        writeln!(out, "{indent}{}", n.lines().join(", "))?;
        // Its ports and paths, with the clients that reached each.
        for e in g
            .edges
            .iter()
            .filter(|e| e.from == n.id && e.kind == EdgeKind::Holds)
        {
            let Some(port) = g.node(e.to) else { continue };
            let (head, warnings) = split_warnings(port);
            writeln!(out, "{indent}  listens {}", head.join(", "))?;
            for w in warnings {
                writeln!(out, "{indent}    {warn}! {w}{reset}")?;
            }
            for c in g
                .edges
                .iter()
                .filter(|c| c.to == port.id && c.kind != EdgeKind::Holds)
            {
                let Some(client) = g.node(c.from) else {
                    continue;
                };
                writeln!(out, "{indent}    <- {} ({})", one_line(client), c.label())?;
            }
        }
        // Where it connects to.
        for e in g
            .edges
            .iter()
            .filter(|e| e.from == n.id && e.kind != EdgeKind::Holds)
        {
            let Some(to) = g.node(e.to) else { continue };
            writeln!(out, "{indent}  -> {} ({})", target(g, to), e.label())?;
            for w in &e.warnings {
                writeln!(out, "{indent}    {warn}! {w}{reset}")?;
            }
        }
    }
    // Clients from outside the pod that only appear as the source of a connection.
    for n in g
        .nodes
        .iter()
        .filter(|n| matches!(n.what, What::Remote { .. } | What::Remotes { .. }))
    {
        if !g.edges.iter().any(|e| e.from == n.id) {
            continue;
        }
        writeln!(out, "from outside: {}", one_line(n))?;
        for e in g.edges.iter().filter(|e| e.from == n.id) {
            let Some(to) = g.node(e.to) else { continue };
            writeln!(out, "  -> {} ({})", target(g, to), e.label())?;
        }
    }
    for note in &g.notes {
        writeln!(out, "{warn}note:{reset} {note}")?;
    }
    Ok(())
}

fn split_warnings(n: &Node) -> (Vec<String>, Vec<String>) {
    let lines = n.lines();
    let keep = lines.len() - n.warnings.len();
    let head = lines.iter().take(keep).cloned().collect();
    (head, n.warnings.clone())
}

fn one_line(n: &Node) -> String {
    split_warnings(n).0.join(", ")
}

/// A connection's end: a port or path after its holder (`istiod 100: 15012/tcp wildcard v6,
/// istiod xds-tls`), a remote end as it is.
fn target(g: &Graph, to: &Node) -> String {
    let holders: Vec<String> = g
        .edges
        .iter()
        .filter(|e| e.to == to.id && e.kind == EdgeKind::Holds)
        .filter_map(|e| g.node(e.from))
        .map(|h| h.lines().first().cloned().unwrap_or_default())
        .collect();
    if holders.is_empty() {
        one_line(to)
    } else {
        format!("{}: {}", holders.join(", "), one_line(to))
    }
}
