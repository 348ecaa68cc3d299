//! `podports catalog`: the port catalog as a table or JSON. Pure: writes to any `impl Write`.

use std::io::{self, Write};

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;

use crate::catalog::{Catalog, Entry, Key};

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

/// The catalog as a table; `with_source` adds where each fact comes from.
pub fn write_table(out: &mut impl Write, catalog: &Catalog, with_source: bool) -> io::Result<()> {
    let mut b = Builder::default();
    let mut header = vec![
        "PORT/PATH",
        "PROTO",
        "MESH",
        "COMPONENT",
        "NAME",
        "BIND",
        "DESCRIPTION",
    ];
    if with_source {
        header.push("SOURCE");
    }
    b.push_record(header);
    for e in catalog.entries() {
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
            key,
            protos,
            e.mesh.clone(),
            e.process.clone().unwrap_or_else(|| e.component.to_string()),
            e.name.clone(),
            e.bind.map(|b| b.to_string()).unwrap_or_default(),
            description,
        ];
        if with_source {
            row.push(e.source.clone());
        }
        b.push_record(row);
    }
    let mut table = b.build();
    table.with(Style::blank());
    writeln!(out, "{table}")
}
