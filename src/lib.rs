//! podports: which sockets are open in a network namespace, who holds each, and what the port
//! is for in a service mesh. Data flows one way: target -> namespace entry -> socket dump ->
//! attribution -> annotation -> output. Only `sys` makes syscalls.

pub mod model;
