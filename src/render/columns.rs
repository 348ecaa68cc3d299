//! Every table podports prints, in the look of tabled's `Style::blank()` (columns padded to
//! their widest cell, a blank border between them) but with no space at the end of a line,
//! written row by row: widths are measured in a first pass over the rows and the rows made
//! again in a second, so that a listing of 40k sockets never holds its cells all at once
//! (tabled's builder does: 2.6x ss's memory, issue 5). Pure; never lets colour count as width.
//!
//! Off a terminal (`Layout::width` is `None`) every value is whole and warnings are a last
//! column, so `grep` and scripts see each row complete. Fitted to a width (a terminal), long
//! cells of the columns that allow it are shortened in the middle with `…`, keeping the pids
//! (`[1234]`) and the port (`:15006`) that tell rows apart; warnings become numbered notes
//! under the table (`[1]` in the row, identical warnings sharing a number); and columns empty
//! in every row are left out.

use std::collections::HashMap;
use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How a table is laid out for its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Fit every line into this many columns (a terminal's width, or `--width`). `None`: never
    /// shorten anything.
    pub width: Option<usize>,
    /// Print the header line (`--no-headers` turns it off).
    pub headers: bool,
    /// Colour warnings, states, roles and verdicts (escape codes never count as width).
    pub color: bool,
}

impl Layout {
    /// Whole values, headers, no colour: what a pipe or a file gets by default.
    pub const PLAIN: Layout = Layout {
        width: None,
        headers: true,
        color: false,
    };
}

/// A column: its header, whether its cells may be shortened to fit a width, and how narrow
/// it is made before any other column is made narrower than its own such width.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub shorten: bool,
    pub floor: usize,
}

impl Column {
    /// A column whose values are always whole (a protocol, a state, a number).
    pub const fn fixed(name: &'static str) -> Column {
        Column {
            name,
            shorten: false,
            floor: 0,
        }
    }

    /// A column whose long values may be shortened in the middle (paths, processes, roles).
    pub const fn long(name: &'static str) -> Column {
        Column {
            name,
            shorten: true,
            floor: 14,
        }
    }

    /// An address column: shortened last, as an IPv4 address and its port fit in 21.
    pub const fn address(name: &'static str) -> Column {
        Column::long_to(name, 21)
    }

    /// A long column narrowed to `floor` only after the others reached theirs.
    pub const fn long_to(name: &'static str, floor: usize) -> Column {
        Column {
            name,
            shorten: true,
            floor,
        }
    }
}

/// A colour for a cell's text; the padding is never coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Plain,
    Red,
    Green,
    Yellow,
    Cyan,
}

impl Paint {
    fn code(self) -> Option<&'static str> {
        match self {
            Paint::Plain => None,
            Paint::Red => Some("31"),
            Paint::Green => Some("32"),
            Paint::Yellow => Some("33"),
            Paint::Cyan => Some("36"),
        }
    }

    /// `text` in this colour when `color` is on.
    pub fn apply(self, text: &str, color: bool) -> String {
        match self.code() {
            Some(code) if color => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }
}

/// One cell: its text (escaped already: one line, no control byte) and its colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub paint: Paint,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell {
            text,
            paint: Paint::Plain,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

impl Cell {
    pub fn painted(text: impl Into<String>, paint: Paint) -> Cell {
        Cell {
            text: text.into(),
            paint,
        }
    }
}

/// One row: a cell per column, and the row's warnings (escaped), if the table has them.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(cells: Vec<Cell>) -> Row {
        Row {
            cells,
            notes: Vec::new(),
        }
    }
}

/// A table's columns, and the header of its warnings column if it has one.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    pub columns: &'a [Column],
    /// `Some("WARNINGS")`: the rows' notes are a last column off a terminal, numbered notes
    /// under the table when fitted to a width.
    pub notes: Option<&'static str>,
}

/// The header of the note markers' column when warnings are numbered notes.
const NOTE_HEADER: &str = "NOTE";

/// Writes the table: the header (unless `layout.headers` is off), the rows `row(0..n)`, and
/// when fitted to a width the numbered notes. `row` is called twice per row (measure, then
/// write) and must give the same cells both times, as many as there are columns.
pub fn write(
    out: &mut impl Write,
    table: Table,
    layout: Layout,
    n: usize,
    row: impl Fn(usize) -> Row,
) -> io::Result<()> {
    let fit = layout.width;
    let notes_as_column = table.notes.filter(|_| fit.is_none());
    let notes_numbered = table.notes.is_some() && fit.is_some();

    // The columns as written: the table's, then the warnings or the note markers.
    let mut names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let mut shorten: Vec<bool> = table.columns.iter().map(|c| c.shorten).collect();
    let mut floors: Vec<usize> = table.columns.iter().map(|c| c.floor).collect();
    if let Some(h) = notes_as_column {
        names.push(h);
        shorten.push(false);
        floors.push(0);
    } else if notes_numbered {
        names.push(NOTE_HEADER);
        shorten.push(false);
        floors.push(0);
    }
    let style = if fit.is_some() {
        Style::COMPACT
    } else {
        Style::BLANK
    };
    let k = names.len();

    // First pass: widths, the narrowest each column can be, which columns have anything,
    // and the notes' numbers.
    let mut widths: Vec<usize> = if layout.headers {
        names.iter().map(|h| h.width()).collect()
    } else {
        vec![0; k]
    };
    let mut mins: Vec<usize> = widths.clone();
    let mut used = vec![false; k];
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let mut notes: Vec<String> = Vec::new();
    for i in 0..n {
        let r = row(i);
        let extra = last_cell(&r, notes_as_column.is_some(), notes_numbered, |note| {
            if let Some(&at) = numbers.get(note) {
                return at;
            }
            notes.push(note.to_string());
            numbers.insert(note.to_string(), notes.len());
            notes.len()
        });
        for (c, cell) in r
            .cells
            .iter()
            .map(|c| c.text.as_str())
            .chain(extra.as_deref())
            .enumerate()
        {
            let (Some(w), Some(m), Some(u), Some(&s)) = (
                widths.get_mut(c),
                mins.get_mut(c),
                used.get_mut(c),
                shorten.get(c),
            ) else {
                continue;
            };
            *w = (*w).max(cell.width());
            *m = (*m).max(if s { min_width(cell) } else { cell.width() });
            *u |= !cell.is_empty();
        }
    }

    // Fitted: drop the empty columns, then narrow the widest shortenable ones until the
    // lines fit (or every column is as narrow as it may be).
    let shown: Vec<bool> = if fit.is_some() {
        used.clone()
    } else {
        vec![true; k]
    };
    if let Some(max) = fit {
        // First down to each column's floor, then down to what keeps pids and ports whole:
        // each step narrows the column with the most to give.
        let mut total = style.line_width(&widths, &shown);
        for phase in [Phase::Floor, Phase::Min] {
            while total > max {
                let give = |c: usize| -> usize {
                    let (Some(&w), Some(&m), Some(&f)) =
                        (widths.get(c), mins.get(c), floors.get(c))
                    else {
                        return 0;
                    };
                    let stop = match phase {
                        Phase::Floor => m.max(f),
                        Phase::Min => m,
                    };
                    w.saturating_sub(stop)
                };
                let widest = (0..k)
                    .filter(|&c| shown.get(c) == Some(&true) && shorten.get(c) == Some(&true))
                    .filter(|&c| give(c) > 0)
                    .max_by_key(|&c| give(c));
                let Some(w) = widest.and_then(|c| widths.get_mut(c)) else {
                    break;
                };
                *w -= 1;
                total -= 1;
            }
        }
    }

    let mut line = String::new();
    if layout.headers {
        let cells = names.iter().map(|h| Cell::from(*h));
        write_line(out, &mut line, cells, &widths, &shown, layout.color, style)?;
    }
    for i in 0..n {
        let r = row(i);
        let extra = last_cell(&r, notes_as_column.is_some(), notes_numbered, |note| {
            numbers.get(note).copied().unwrap_or(0)
        });
        let cells = r
            .cells
            .into_iter()
            .chain(extra.map(|t| Cell::painted(t, Paint::Yellow)));
        write_line(out, &mut line, cells, &widths, &shown, layout.color, style)?;
    }
    for (i, note) in notes.iter().enumerate() {
        let mark = format!("[{}] ", i + 1);
        let painted = Paint::Yellow.apply(mark.trim_end(), layout.color);
        let text = wrap(note, fit, mark.width());
        writeln!(out, "{painted} {text}")?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Phase {
    Floor,
    Min,
}

/// How columns are set apart.
#[derive(Clone, Copy)]
struct Style {
    /// Before the first column.
    lead: &'static str,
    /// Between two columns.
    gap: &'static str,
}

impl Style {
    /// tabled's blank style: a space of padding each side, and a blank border between.
    const BLANK: Style = Style {
        lead: " ",
        gap: "   ",
    };
    /// On a terminal, where every column counts: two spaces between columns, as ps and ss.
    const COMPACT: Style = Style {
        lead: "",
        gap: "  ",
    };

    fn line_width(self, widths: &[usize], shown: &[bool]) -> usize {
        let cols: Vec<usize> = widths
            .iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|(w, _)| *w)
            .collect();
        if cols.is_empty() {
            return 0;
        }
        self.lead.len() + cols.iter().sum::<usize>() + self.gap.len() * (cols.len() - 1)
    }
}

/// Each line of `text` wrapped to `width` (`wrap`, indented by 2), then written.
pub fn write_wrapped(out: &mut impl Write, text: &str, width: Option<usize>) -> io::Result<()> {
    for line in text.lines() {
        writeln!(out, "{}", wrap(line, width, 2))?;
    }
    Ok(())
}

/// `text` broken at spaces into lines of at most `width` columns (when there is a width),
/// the lines after the first indented by `indent`, as `[1] ` is before the first. A word
/// longer than a line is cut.
pub fn wrap(text: &str, width: Option<usize>, indent: usize) -> String {
    let Some(width) = width.filter(|w| *w > indent + 10) else {
        return text.to_string();
    };
    let room = width - indent;
    let mut out = String::with_capacity(text.len());
    let mut used = 0;
    for word in text.split(' ') {
        let mut word = word;
        loop {
            let w = word.width();
            if used > 0 && used + 1 + w <= room {
                out.push(' ');
                out.push_str(word);
                used += 1 + w;
                break;
            }
            if used > 0 {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                used = 0;
            }
            if w <= room {
                out.push_str(word);
                used = w;
                break;
            }
            // Longer than a line: cut it.
            let mut at = 0;
            let mut cols = 0;
            for (i, c) in word.char_indices() {
                let cw = c.width().unwrap_or(0);
                if cols + cw > room {
                    break;
                }
                cols += cw;
                at = i + c.len_utf8();
            }
            if at == 0 {
                out.push_str(word);
                break;
            }
            out.push_str(word.get(..at).unwrap_or(""));
            used = cols;
            word = word.get(at..).unwrap_or("");
            if word.is_empty() {
                break;
            }
        }
    }
    out
}

/// The warnings cell of a row: its notes joined (a column), or their numbers (`[1,3]`).
fn last_cell(
    r: &Row,
    as_column: bool,
    numbered: bool,
    mut number: impl FnMut(&str) -> usize,
) -> Option<String> {
    if as_column {
        Some(r.notes.join("; "))
    } else if numbered {
        if r.notes.is_empty() {
            return Some(String::new());
        }
        let mut ns: Vec<usize> = r.notes.iter().map(|n| number(n)).collect();
        ns.dedup();
        let ns: Vec<String> = ns.iter().map(usize::to_string).collect();
        Some(format!("[{}]", ns.join(",")))
    } else {
        None
    }
}

fn write_line(
    out: &mut impl Write,
    line: &mut String,
    cells: impl Iterator<Item = Cell>,
    widths: &[usize],
    shown: &[bool],
    color: bool,
    style: Style,
) -> io::Result<()> {
    use std::fmt::Write as _;
    line.clear();
    let mut first = true;
    for ((cell, &w), &s) in cells.zip(widths).zip(shown) {
        if !s {
            continue;
        }
        line.push_str(if first { style.lead } else { style.gap });
        first = false;
        let text = if cell.text.width() > w {
            shorten_middle(&cell.text, w)
        } else {
            cell.text
        };
        let pad = w.saturating_sub(text.width());
        match cell.paint.code() {
            Some(code) if color && !text.is_empty() => {
                let _ = write!(line, "\x1b[{code}m{text}\x1b[0m");
            }
            _ => line.push_str(&text),
        }
        line.extend(std::iter::repeat_n(' ', pad));
    }
    writeln!(out, "{}", line.trim_end_matches(' '))
}

/// A piece of a cell: kept whole when shortening (`[1234]`, `:15006`), or free to shorten.
fn pieces(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    // The port at the end of an address (`:15006`, `:*`).
    let (body, port) = match text.rfind(':') {
        Some(at)
            if text.get(at + 1..).is_some_and(|p| {
                p == "*" || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            (text.get(..at).unwrap_or(""), text.get(at..))
        }
        _ => (text, None),
    };
    // Pids (`[1234]`) and ports inside the text (`tcp/15000`, `:15000` before more text).
    let mut rest = body;
    loop {
        let next = rest.char_indices().find_map(|(i, c)| {
            let after = rest.get(i + 1..).unwrap_or("");
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            match c {
                '[' if digits > 0 && after.as_bytes().get(digits) == Some(&b']') => {
                    Some((i, digits + 2))
                }
                // A port ends a word: `tcp/15000 on`, not `fe80::1234:5678`.
                ':' | '/'
                    if digits > 0
                        && after
                            .as_bytes()
                            .get(digits)
                            .is_none_or(|b| b" ),;]".contains(b)) =>
                {
                    Some((i, digits + 1))
                }
                _ => None,
            }
        });
        let Some((at, len)) = next else {
            break;
        };
        out.push((rest.get(..at).unwrap_or(""), false));
        out.push((rest.get(at..at + len).unwrap_or(""), true));
        rest = rest.get(at + len..).unwrap_or("");
    }
    out.push((rest, false));
    if let Some(p) = port {
        out.push((p, true));
    }
    // Merge free neighbours, drop empty pieces.
    let mut merged: Vec<(&str, bool)> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for (i, (p, keep)) in out.iter().enumerate() {
        let next_keep = out.get(i + 1).map(|(_, k)| *k);
        at += p.len();
        if *keep || next_keep != Some(false) {
            if let Some(s) = text.get(start..at).filter(|s| !s.is_empty()) {
                merged.push((s, *keep));
            }
            start = at;
        }
    }
    merged
}

/// The narrowest `text` can be shortened to: its kept pieces whole, a `…` for each free one.
fn min_width(text: &str) -> usize {
    pieces(text)
        .iter()
        .map(|(p, keep)| if *keep { p.width() } else { p.width().min(1) })
        .sum()
}

/// `text` in at most `width` columns if it can be: the free pieces, widest first, shortened
/// in the middle with `…`; the pids and the port kept whole.
pub fn shorten_middle(text: &str, width: usize) -> String {
    let ps = pieces(text);
    let mut shown: Vec<usize> = ps.iter().map(|(p, _)| p.width()).collect();
    let mut total: usize = shown.iter().sum();
    while total > width {
        let widest = ps
            .iter()
            .enumerate()
            .filter(|(i, (_, keep))| !keep && shown.get(*i).is_some_and(|w| *w > 1))
            .max_by_key(|(i, _)| shown.get(*i).copied().unwrap_or(0))
            .map(|(i, _)| i);
        let Some(w) = widest.and_then(|i| shown.get_mut(i)) else {
            break;
        };
        *w -= 1;
        total -= 1;
    }
    let mut out = String::with_capacity(text.len());
    for ((p, _), w) in ps.iter().zip(shown) {
        if p.width() <= w {
            out.push_str(p);
        } else {
            squeeze(&mut out, p, w);
        }
    }
    out
}

/// `p` in `w` columns: its start and its end around a `…` (the end gets the odd column).
fn squeeze(out: &mut String, p: &str, w: usize) {
    let room = w.saturating_sub(1);
    let head_room = room / 2;
    let mut tail_room = room - head_room;
    let mut head = 0;
    let mut head_end = 0;
    for (i, c) in p.char_indices() {
        let cw = c.width().unwrap_or(0);
        if head + cw > head_room {
            break;
        }
        head += cw;
        head_end = i + c.len_utf8();
    }
    // A wide character that did not fit in the head leaves its column to the tail.
    tail_room += head_room - head;
    let mut tail_start = p.len();
    for (i, c) in p.char_indices().rev() {
        let cw = c.width().unwrap_or(0);
        if cw > tail_room || i < head_end {
            break;
        }
        tail_room -= cw;
        tail_start = i;
    }
    out.push_str(p.get(..head_end).unwrap_or(""));
    out.push('…');
    out.push_str(p.get(tail_start..).unwrap_or(""));
}

#[cfg(test)]
mod tests;
