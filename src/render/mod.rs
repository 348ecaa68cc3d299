//! Presentation: the table and the JSON document, written to any `impl Write`. Pure: never
//! reads the system, and never lets a raw control byte from the target reach a terminal.

pub mod catalog;
pub mod check;
pub mod closed;
pub mod columns;
pub mod graph;
pub mod json;
pub mod junit;
pub mod pods;
pub mod probe;
pub mod table;
pub mod watch;
