//! podports: which sockets are open in a network namespace, who holds each, and what the port
//! is for in a service mesh. Data flows one way: target -> namespace entry -> socket dump ->
//! attribution -> annotation -> output. Only `sys` makes syscalls.
//!
//! Nothing outside tests may panic on what it reads: the lints below keep unwrap, expect,
//! panicking indexing and explicit panics out of the library. No `unsafe` either, but in the
//! few `sys` modules that allow it for their syscalls, each block with its SAFETY note.
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
// Purity: clippy.toml keeps file, socket and process I/O in `sys` (whose mod.rs allows it);
// unit tests may make fixtures and read them anywhere.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod annotate;
pub mod attribute;
pub mod catalog;
pub mod check;
pub mod classify;
pub mod cli;
pub mod command;
pub mod dump;
pub mod duration;
pub mod error;
pub mod escape;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_targets;
pub mod generate;
pub mod inspect;
pub mod listing;
pub mod model;
pub mod parse;
pub mod place;
pub mod plan;
pub mod pods;
pub mod probe;
pub mod render;
pub mod request;
pub mod resolve;
pub mod sweep;
pub mod sys;
pub mod unowned;
pub mod watch;
