//! The graph as SVG, laid out and drawn by podports itself (no Graphviz: the static binary
//! stays self-contained). Pure: writes to any `impl Write`; never panics on any graph. Every
//! text is XML-escaped here, after the characters XML cannot hold were escaped.
//!
//! The layout follows the graph's fixed shape, in columns: clients from outside the pod, the
//! pod's processes (framed by container), the ports and paths each listens on (beside their
//! holder), the remote ends the pod connects to. Outside ends sit level with what they reach.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use super::style::{self, HOLDS, WARN};
use super::{Edge, EdgeKind, Graph, Node, What};

const FONT: f64 = 13.0;
const SMALL: f64 = 11.0;
/// A sans-serif character is about this much of the font size wide.
const CHAR_W: f64 = 0.6;
const LINE_H: f64 = 1.3;
const PAD: f64 = 8.0;
const COLUMN_GAP: f64 = 90.0;
const PORT_GAP: f64 = 6.0;
const BLOCK_GAP: f64 = 16.0;
const GROUP_HEADER: f64 = 22.0;
const MARGIN: f64 = 16.0;

/// Text as XML 1.0 can hold it: the graph's text has no control characters left; the two
/// non-characters XML forbids are written the way `escape` writes the others.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `xml_text`, then `&`, `<`, `>` and quotes as entities: safe in text and attributes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_text(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn bottom(&self) -> f64 {
        self.y + self.h
    }
    fn mid_y(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

fn font_of(n: &Node) -> f64 {
    match n.what {
        What::Process { .. } | What::Hidden { .. } | What::Closed => FONT,
        _ => SMALL,
    }
}

fn size_of(lines: &[String], font: f64) -> (f64, f64) {
    let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (
        (chars as f64 * font * CHAR_W + 2.0 * PAD).max(40.0),
        lines.len().max(1) as f64 * font * LINE_H + PAD,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Clients,
    Owners,
    Ports,
    Servers,
}

fn column(g: &Graph, n: &Node) -> Column {
    match n.what {
        What::Process { .. } | What::Hidden { .. } | What::Closed => Column::Owners,
        What::Listener { .. } | What::UnixPath { .. } => Column::Ports,
        What::Remote { .. } | What::Remotes { .. } => {
            if g.edges.iter().any(|e| e.from == n.id) {
                Column::Clients
            } else {
                Column::Servers
            }
        }
    }
}

struct Layout {
    boxes: HashMap<usize, Rect>,
    /// Container frames: (rect, label, outside).
    frames: Vec<(Rect, String, bool)>,
    width: f64,
    height: f64,
}

fn layout(g: &Graph, top: f64) -> Layout {
    let lines: HashMap<usize, Vec<String>> = g.nodes.iter().map(|n| (n.id, n.lines())).collect();
    let size = |n: &Node| size_of(lines.get(&n.id).map_or(&[][..], |l| &l[..]), font_of(n));
    let width_of = |c: Column| {
        g.nodes
            .iter()
            .filter(|n| column(g, n) == c)
            .map(|n| size(n).0)
            .fold(0.0, f64::max)
    };
    let cols = [
        Column::Clients,
        Column::Owners,
        Column::Ports,
        Column::Servers,
    ];
    let mut x = MARGIN;
    let mut col_x: HashMap<u8, f64> = HashMap::new();
    for (i, c) in cols.iter().enumerate() {
        let w = width_of(*c);
        col_x.insert(i as u8, x);
        if w > 0.0 {
            // Frames around owners and ports need a little room.
            x += w + COLUMN_GAP;
        }
    }
    let x_of = |c: Column| {
        let i = cols.iter().position(|k| *k == c).unwrap_or(0) as u8;
        col_x.get(&i).copied().unwrap_or(MARGIN)
    };

    let mut boxes: HashMap<usize, Rect> = HashMap::new();
    let mut frames = Vec::new();
    let mut placed: HashSet<usize> = HashSet::new();
    let mut y = top;
    let owners: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| column(g, n) == Column::Owners)
        .collect();
    let mut group_start: Option<(Option<usize>, f64)> = None;
    let close_frame = |frames: &mut Vec<(Rect, String, bool)>,
                       start: Option<(Option<usize>, f64)>,
                       bottom: f64| {
        if let Some((Some(gi), top)) = start
            && let Some(grp) = g.groups.get(gi)
        {
            let x0 = x_of(Column::Owners) - PAD;
            let x1 = x_of(Column::Ports) + width_of(Column::Ports) + PAD;
            frames.push((
                Rect {
                    x: x0,
                    y: top,
                    w: x1 - x0,
                    h: bottom - top + PAD,
                },
                grp.label.clone(),
                grp.outside,
            ));
        }
    };
    for o in &owners {
        if group_start.map(|(gi, _)| gi) != Some(o.group) {
            close_frame(&mut frames, group_start, y - BLOCK_GAP);
            if group_start.is_some() {
                y += BLOCK_GAP;
            }
            group_start = Some((o.group, y));
            if o.group.is_some() {
                y += GROUP_HEADER;
            }
        }
        let ports: Vec<&Node> = g
            .edges
            .iter()
            .filter(|e| e.from == o.id && e.kind == EdgeKind::Holds)
            .filter_map(|e| g.node(e.to))
            .filter(|p| placed.insert(p.id))
            .collect();
        let ports_h: f64 = ports.iter().map(|p| size(p).1 + PORT_GAP).sum::<f64>() - PORT_GAP;
        let (ow, oh) = size(o);
        let block_h = oh.max(ports_h);
        boxes.insert(
            o.id,
            Rect {
                x: x_of(Column::Owners),
                y: y + (block_h - oh) / 2.0,
                w: ow,
                h: oh,
            },
        );
        let mut py = y + (block_h - ports_h.max(0.0)) / 2.0;
        for p in ports {
            let (pw, ph) = size(p);
            boxes.insert(
                p.id,
                Rect {
                    x: x_of(Column::Ports),
                    y: py,
                    w: pw,
                    h: ph,
                },
            );
            py += ph + PORT_GAP;
        }
        y += block_h + BLOCK_GAP;
    }
    close_frame(&mut frames, group_start, y - BLOCK_GAP);
    // Ports no owner holds (none in a built graph), below the rest.
    for p in g
        .nodes
        .iter()
        .filter(|n| column(g, n) == Column::Ports && !placed.contains(&n.id))
    {
        let (pw, ph) = size(p);
        boxes.insert(
            p.id,
            Rect {
                x: x_of(Column::Ports),
                y,
                w: pw,
                h: ph,
            },
        );
        y += ph + PORT_GAP;
    }
    let mut bottom = y;
    // Outside ends, level with what they reach, in that order, never overlapping.
    for c in [Column::Clients, Column::Servers] {
        let mut want: Vec<(f64, &Node)> = g
            .nodes
            .iter()
            .filter(|n| column(g, n) == c)
            .map(|n| {
                let ys: Vec<f64> = g
                    .edges
                    .iter()
                    .filter_map(|e| match (e.from == n.id, e.to == n.id) {
                        (true, _) => boxes.get(&e.to),
                        (_, true) => boxes.get(&e.from),
                        _ => None,
                    })
                    .map(Rect::mid_y)
                    .collect();
                let mid = if ys.is_empty() {
                    top
                } else {
                    ys.iter().sum::<f64>() / ys.len() as f64
                };
                (mid, n)
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        let mut next = top;
        for (mid, n) in want {
            let (w, h) = size(n);
            let ry = (mid - h / 2.0).max(next);
            boxes.insert(
                n.id,
                Rect {
                    x: x_of(c),
                    y: ry,
                    w,
                    h,
                },
            );
            next = ry + h + PORT_GAP;
        }
        bottom = bottom.max(next);
    }
    let width = boxes
        .values()
        .map(Rect::right)
        .chain(frames.iter().map(|f| f.0.right()))
        .fold(0.0, f64::max)
        + MARGIN;
    let height = boxes
        .values()
        .map(Rect::bottom)
        .chain(frames.iter().map(|f| f.0.bottom()))
        .fold(bottom, f64::max)
        + MARGIN;
    Layout {
        boxes,
        frames,
        width,
        height,
    }
}

pub fn write(out: &mut impl Write, g: &Graph) -> io::Result<()> {
    let mut legend = vec![g.title.clone()];
    legend.extend(g.notes.iter().map(|n| format!("note: {n}")));
    let legend_h = legend.len() as f64 * SMALL * LINE_H + PAD;
    let top = MARGIN + legend_h + PAD;
    let l = layout(g, top);
    let legend_w = size_of(&legend, SMALL).0 + 2.0 * MARGIN;
    let (w, h) = (l.width.max(legend_w), l.height);
    writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" \
         font-family=\"Helvetica, Arial, sans-serif\">"
    )?;
    writeln!(out, "<defs>")?;
    for (id, color) in [("dark", "#343a40"), ("warn", WARN), ("grey", HOLDS)] {
        writeln!(
            out,
            "<marker id=\"arrow-{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
             <path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{color}\"/></marker>"
        )?;
    }
    writeln!(out, "</defs>")?;
    writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    )?;
    for (i, line) in legend.iter().enumerate() {
        writeln!(
            out,
            "<text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"{SMALL}\" fill=\"#212529\">{}</text>",
            MARGIN + (i as f64 + 0.8) * SMALL * LINE_H,
            xml(line)
        )?;
    }
    for (r, label, outside) in &l.frames {
        let dash = if *outside {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        writeln!(
            out,
            "<g class=\"container\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             rx=\"10\" fill=\"#f8f9fa\" stroke=\"#adb5bd\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{SMALL}\" font-weight=\"bold\" \
             fill=\"#495057\">{}</text></g>",
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + PAD,
            r.y + SMALL + 4.0,
            xml(&if *outside {
                format!("{label} (another pod)")
            } else {
                label.clone()
            })
        )?;
    }
    let holds: HashSet<(usize, usize)> = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Holds)
        .map(|e| (e.from, e.to))
        .collect();
    for e in &g.edges {
        edge(
            out,
            &l,
            e,
            holds.contains(&(e.from, e.to)) && e.kind != EdgeKind::Holds,
        )?;
    }
    for n in &g.nodes {
        node(out, &l, n)?;
    }
    for e in g.edges.iter().filter(|e| e.kind != EdgeKind::Holds) {
        edge_label(out, &l, e, holds.contains(&(e.from, e.to)))?;
    }
    writeln!(out, "</svg>")
}

fn node(out: &mut impl Write, l: &Layout, n: &Node) -> io::Result<()> {
    let Some(r) = l.boxes.get(&n.id) else {
        return Ok(());
    };
    let class = n.class();
    let (fill, stroke) = style::colors(class);
    let (rx, width, dash) = match n.what {
        What::Process { outside, .. } => (8.0, 2.0, if outside { "6 4" } else { "" }),
        What::Hidden { .. } => (8.0, 1.5, "6 4"),
        What::Closed => (8.0, 1.0, "2 3"),
        What::Listener { .. } | What::UnixPath { .. } => (2.0, 1.0, ""),
        What::Remote { .. } | What::Remotes { .. } => (r.h / 2.0, 1.0, ""),
    };
    let dash = if dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{dash}\"")
    };
    let font = font_of(n);
    write!(
        out,
        "<g class=\"node {class}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
         rx=\"{rx:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>",
        r.x, r.y, r.w, r.h
    )?;
    for (i, line) in n.lines().iter().enumerate() {
        let weight = if i == 0 && font == FONT {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let color = if i >= n.lines().len().saturating_sub(n.warnings.len()) {
            WARN
        } else {
            "#212529"
        };
        write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font}\" text-anchor=\"middle\" \
             fill=\"{color}\"{weight}>{}</text>",
            r.x + r.w / 2.0,
            r.y + PAD / 2.0 + (i as f64 + 0.8) * font * LINE_H,
            xml(line)
        )?;
    }
    writeln!(out, "</g>")
}

/// The curve of an edge: from the source's right side to the target's left side (or right
/// side, for two owners), bowed when it would lie on a holder's line.
fn curve(l: &Layout, e: &Edge, bow: bool) -> Option<[(f64, f64); 4]> {
    let a = l.boxes.get(&e.from)?;
    let b = l.boxes.get(&e.to)?;
    let start = (a.right(), a.mid_y());
    let (end, back) = if b.x > a.x + 1.0 {
        ((b.x, b.mid_y()), false)
    } else {
        ((b.right(), b.mid_y()), true)
    };
    let dx = ((end.0 - start.0).abs() / 2.0).max(40.0);
    let lift = if bow { -18.0 } else { 0.0 };
    let c1 = (start.0 + dx, start.1 + lift);
    let c2 = if back {
        (end.0 + dx, end.1 + lift)
    } else {
        (end.0 - dx, end.1 + lift)
    };
    Some([start, c1, c2, end])
}

fn edge(out: &mut impl Write, l: &Layout, e: &Edge, bow: bool) -> io::Result<()> {
    let Some([p0, p1, p2, p3]) = curve(l, e, bow) else {
        return Ok(());
    };
    let (color, marker, width, dash) = match e.kind {
        EdgeKind::Holds => (HOLDS, "", 1.0, ""),
        EdgeKind::Connects if !e.warnings.is_empty() => (WARN, "warn", 1.5, ""),
        EdgeKind::Connects => ("#343a40", "dark", 1.0 + (e.count as f64).log10(), ""),
        EdgeKind::Closed => (HOLDS, "grey", 1.0, " stroke-dasharray=\"5 4\""),
    };
    let marker = if marker.is_empty() {
        String::new()
    } else {
        format!(" marker-end=\"url(#arrow-{marker})\"")
    };
    writeln!(
        out,
        "<path class=\"edge\" d=\"M {:.1} {:.1} C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}\" \
         fill=\"none\" stroke=\"{color}\" stroke-width=\"{width:.1}\"{dash}{marker}/>",
        p0.0, p0.1, p1.0, p1.1, p2.0, p2.1, p3.0, p3.1
    )
}

fn edge_label(out: &mut impl Write, l: &Layout, e: &Edge, bow: bool) -> io::Result<()> {
    let Some([p0, p1, p2, p3]) = curve(l, e, bow) else {
        return Ok(());
    };
    // The curve's midpoint.
    let x = (p0.0 + 3.0 * p1.0 + 3.0 * p2.0 + p3.0) / 8.0;
    let y = (p0.1 + 3.0 * p1.1 + 3.0 * p2.1 + p3.1) / 8.0;
    let text = e.label();
    let w = text.chars().count() as f64 * SMALL * CHAR_W + 6.0;
    let color = if e.warnings.is_empty() {
        "#212529"
    } else {
        WARN
    };
    writeln!(
        out,
        "<g class=\"edge-label\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" \
         rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.85\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
         font-size=\"{SMALL}\" text-anchor=\"middle\" fill=\"{color}\">{}</text></g>",
        x - w / 2.0,
        y - SMALL * 0.75,
        SMALL * 1.4,
        y + SMALL * 0.35,
        xml(&text)
    )?;
    if !e.warnings.is_empty() {
        writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{SMALL}\" text-anchor=\"middle\" \
             fill=\"{WARN}\">{}</text>",
            y + SMALL * 1.6,
            xml(&e.warnings.join("; "))
        )?;
    }
    Ok(())
}
