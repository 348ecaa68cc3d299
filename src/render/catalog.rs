//! `podports catalog`: the port catalog as a table or JSON. Pure: writes to any `impl Write`.

use std::io::{self, Write};

use crate::catalog::{Catalog, Entry, Key};
use crate::render::columns::{self, Cell, Column, Layout, Paint, Row};
use serde::Serialize;

/// The JSON document of `podports catalog -o json`.
#[derive(Serialize)]
struct CatalogDoc<'a> {
    version: u32,
    entries: Vec<&'a Entry>,
}

pub fn write_json(out: &mut impl Write, catalog: &Catalog) -> io::Result<()> {
    let doc = CatalogDoc {
        version: crate::render::json::VERSION,
        entries: catalog.entries().collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}

/// The catalog as a table; `with_source` (`-o wide`, never shortened) adds where each fact
/// comes from.
pub fn write_table(
    out: &mut impl Write,
    catalog: &Catalog,
    with_source: bool,
    layout: Layout,
) -> io::Result<()> {
    let mut header = vec![
        Column::long("PORT/PATH"),
        Column::fixed("PROTO"),
        Column::fixed("MESH"),
        Column::long("COMPONENT"),
        Column::long("NAME"),
        Column::fixed("BIND"),
        Column::long("DESCRIPTION"),
    ];
    let layout = if with_source {
        header.push(Column::long("SOURCE"));
        Layout {
            width: None,
            ..layout
        }
    } else {
        layout
    };
    let entries: Vec<&Entry> = catalog.entries().collect();
    let table = columns::Table {
        columns: &header,
        notes: None,
    };
    columns::write(out, table, layout, entries.len(), |i| {
        entries
            .get(i)
            .map(|e| row(e, with_source))
            .unwrap_or_default()
    })
}

fn row(e: &Entry, with_source: bool) -> Row {
    {
        let (key, protos) = match &e.key {
            Key::Port { port, protos } => (
                port.to_string(),
                protos
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
            ),
            Key::Unix { path } => (path.clone(), "unix".to_string()),
            Key::Address { addrs } => (
                addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                "source".to_string(),
            ),
        };
        let mut description = e.description.clone();
        if !e.versions.is_empty() {
            description.push_str(&format!(" [{}]", e.versions));
        }
        let mut row = vec![
            Cell::from(key),
            Cell::from(protos),
            Cell::from(e.mesh.clone()),
            Cell::from(e.process.clone().unwrap_or_else(|| e.component.to_string())),
            Cell::painted(e.name.clone(), Paint::Cyan),
            Cell::from(e.bind.map(|b| b.to_string()).unwrap_or_default()),
            Cell::from(description),
        ];
        if with_source {
            row.push(Cell::from(e.source.clone()));
        }
        Row::new(row)
    }
}
