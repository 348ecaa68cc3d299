//! `podports probe` end to end: `probe::run` asks each mesh HTTP port from inside the target's
//! namespace; this writes the report (table or JSON). A port that did not answer is exit 1,
//! whatever became of the output.

use std::io::Write;

use crate::catalog::Catalog;
use crate::command::Failure;
use crate::plan::Show;
use crate::probe::run::{self, Plan};
use crate::render;

/// `probe`: the report, then exit 1 when a port did not answer (a closed stdout does not
/// change that).
pub fn run(
    plan: &Plan,
    show: Show,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let report = run::probe(plan, catalog)?;
    let written = match show {
        Show::Json => render::probe::write_json(out, &report),
        Show::Table { detail, layout } => render::probe::write_table(out, &report, detail, layout),
    }
    .and_then(|()| out.flush());
    if !report.passed() {
        return Err(Failure::ChecksFailed);
    }
    Ok(written?)
}
