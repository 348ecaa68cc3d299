//! podports: which sockets are open in a network namespace, who holds each, and what the port
//! is for in a service mesh. Data flows one way: target -> namespace entry -> socket dump ->
//! attribution -> annotation -> output. Only `sys` makes syscalls.

pub mod annotate;
pub mod catalog;
pub mod classify;
pub mod cli;
pub mod error;
pub mod inspect;
pub mod model;
pub mod parse;
pub mod render;
pub mod sys;
