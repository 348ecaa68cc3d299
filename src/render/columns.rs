//! A table in the look of tabled's `Style::blank()` (columns padded to their widest cell, one
//! space each side, a blank border between columns), written row by row: the widths are measured in a first pass
//! over the rows and the rows made again in a second, so that a listing of 40k sockets never
//! holds its cells all at once (tabled's builder does: 2.6x ss's memory, issue 5). Pure.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

/// Writes `header` and the rows `row(0..n)`. `row` is called twice per row (measure, then
/// write) and must give the same cells both times, as many as the header has, each on one
/// line (escaped: no newline, no control byte).
pub fn write_blank(
    out: &mut impl Write,
    header: &[&str],
    n: usize,
    row: impl Fn(usize) -> Vec<String>,
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for i in 0..n {
        for (w, cell) in widths.iter_mut().zip(row(i)) {
            *w = (*w).max(cell.width());
        }
    }
    line(out, header.iter().copied(), &widths)?;
    for i in 0..n {
        let cells = row(i);
        debug_assert_eq!(
            cells.len(),
            widths.len(),
            "row {i} has not the header's columns"
        );
        line(out, cells.iter().map(String::as_str), &widths)?;
    }
    Ok(())
}

fn line<'c>(
    out: &mut impl Write,
    cells: impl Iterator<Item = &'c str>,
    widths: &[usize],
) -> io::Result<()> {
    for (i, (cell, w)) in cells.zip(widths).enumerate() {
        // Blank style: a space of padding each side, and a blank border between columns.
        let sep = if i == 0 { "" } else { " " };
        write!(
            out,
            "{sep} {cell}{:pad$} ",
            "",
            pad = w.saturating_sub(cell.width())
        )?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabled::builder::Builder;
    use tabled::settings::Style;

    /// tabled is the oracle: the same rows give the same bytes.
    #[test]
    fn same_bytes_as_tabled_blank() {
        let header = ["PROTO", "LOCAL", "PROCESS", "WARNINGS"];
        let rows: Vec<Vec<String>> = vec![
            vec![
                "tcp".into(),
                "127.0.0.1:15000".into(),
                "envoy[1]".into(),
                "".into(),
            ],
            vec![
                "unix".into(),
                "@\\x1b[2J".into(),
                "漢字のアプリ[22]".into(),
                "w".into(),
            ],
            vec![
                "udp".into(),
                "".into(),
                "emoji😀[3]".into(),
                "long warning text".into(),
            ],
            vec![
                "x".into(),
                "combining e\u{301}".into(),
                "-".into(),
                "".into(),
            ],
        ];
        let mut b = Builder::default();
        b.push_record(header);
        for r in &rows {
            b.push_record(r.clone());
        }
        let mut t = b.build();
        t.with(Style::blank());
        let want = format!("{t}\n");
        let mut got = Vec::new();
        write_blank(&mut got, &header, rows.len(), |i| rows[i].clone()).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
}
