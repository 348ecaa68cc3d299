use super::*;
use tabled::builder::Builder;
use tabled::settings::Style;

fn render(table: Table, layout: Layout, rows: &[Row]) -> String {
    let mut got = Vec::new();
    write(&mut got, table, layout, rows.len(), |i| rows[i].clone()).unwrap();
    String::from_utf8(got).unwrap()
}

/// tabled is the oracle: the same rows give the same bytes, but for the spaces tabled
/// leaves at the end of a line.
#[test]
fn same_bytes_as_tabled_blank_without_trailing_spaces() {
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
    let want: String = format!("{t}\n")
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    let cols = [
        Column::fixed("PROTO"),
        Column::long("LOCAL"),
        Column::long("PROCESS"),
    ];
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|mut r| {
            let w = r.pop().unwrap();
            Row {
                cells: r.into_iter().map(Cell::from).collect(),
                notes: if w.is_empty() { vec![] } else { vec![w] },
            }
        })
        .collect();
    let table = Table {
        columns: &cols,
        notes: Some("WARNINGS"),
    };
    assert_eq!(render(table, Layout::PLAIN, &rows), want);
}

#[test]
fn shortening_keeps_pids_and_ports() {
    let s = shorten_middle("pilot-agent[1234] istio-proxy", 16);
    assert!(s.contains("[1234]") && s.width() <= 16, "{s}");
    let s = shorten_middle("[fe80::1234:5678:9abc:def0]:15006", 14);
    assert!(s.ends_with(":15006") && s.width() <= 14, "{s}");
    let s = shorten_middle("/var/run/secrets/workload-spiffe-uds/socket", 20);
    assert_eq!(s.width(), 20);
    assert!(s.starts_with("/var/run") && s.ends_with("/socket"), "{s}");
    let s = shorten_middle("漢字のアプリ漢字のアプリ[22]", 10);
    assert!(s.ends_with("[22]") && s.width() <= 10, "{s}");
    // Already short: unchanged.
    assert_eq!(shorten_middle("envoy[1]", 20), "envoy[1]");
}

#[test]
fn fitted_tables_number_the_notes_and_drop_empty_columns() {
    let cols = [
        Column::fixed("PROTO"),
        Column::long("PATH"),
        Column::long("ROLE"),
    ];
    let long = "/var/run/secrets/workload-spiffe-uds/a-rather-long-socket-name";
    let rows = vec![
        Row {
            cells: vec!["unix".into(), long.into(), "".into()],
            notes: vec!["same warning".into()],
        },
        Row {
            cells: vec!["tcp".into(), "0.0.0.0:15006".into(), "".into()],
            notes: vec!["same warning".into(), "another".into()],
        },
    ];
    let table = Table {
        columns: &cols,
        notes: Some("WARNINGS"),
    };
    let fitted = Layout {
        width: Some(40),
        ..Layout::PLAIN
    };
    let text = render(table, fitted, &rows);
    for l in text.lines() {
        assert!(l.width() <= 40, "{l:?}");
        assert!(!l.ends_with(' '), "{l:?}");
    }
    assert!(!text.contains("ROLE"), "{text}");
    assert!(text.contains("[1]\n") && text.contains("[1,2]\n"), "{text}");
    assert!(text.contains("\n[1] same warning\n[2] another\n"), "{text}");
    assert!(text.contains("0.0.0.0:15006"), "{text}");
    // Off a terminal: whole values, warnings in a column, every column there.
    let whole = render(table, Layout::PLAIN, &rows);
    assert!(whole.contains(long) && whole.contains("ROLE"), "{whole}");
    assert!(whole.contains("same warning; another"), "{whole}");
    // No headers.
    let bare = render(
        table,
        Layout {
            headers: false,
            ..Layout::PLAIN
        },
        &rows,
    );
    assert_eq!(bare.lines().count(), 2, "{bare}");
}

#[test]
fn colour_never_counts_as_width() {
    let cols = [Column::fixed("STATE"), Column::fixed("X")];
    let rows = vec![
        Row::new(vec![Cell::painted("LISTEN", Paint::Green), "a".into()]),
        Row::new(vec![Cell::painted("ESTAB", Paint::Plain), "b".into()]),
    ];
    let table = Table {
        columns: &cols,
        notes: None,
    };
    let color = Layout {
        color: true,
        ..Layout::PLAIN
    };
    let text = render(table, color, &rows);
    assert!(text.contains(" \x1b[32mLISTEN\x1b[0m   a\n"), "{text:?}");
    assert!(text.contains(" ESTAB    b\n"), "{text:?}");
}
