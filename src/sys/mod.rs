//! The only place podports makes syscalls: namespace entry, netlink I/O, /proc reading, the
//! in-kernel fd walk (a BPF iterator that reads fd tables), the kernel's socket-destroy events
//! (`--watch`, sockevents.rs), the node's pod records (kubelet log directories, cgroups) and
//! `probe`'s one GET per port (http.rs).
//! Everything here reads; nothing here ever writes to the target or the host, but for the
//! GET that `probe`, and only `probe`, sends to the pod's own HTTP ports, and the files the
//! user names on the command line (files.rs: `--expect` read, `--junit` and `man --dir` written).
//!
//! Purity is checked, not hoped for: clippy.toml disallows std::fs, sockets, process spawning
//! and namespace entry everywhere, and this module alone allows them (tests/purity.rs).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod bpf;
pub mod files;
pub mod http;
pub mod ifaddrs;
pub mod netlink;
pub mod netns;
pub mod node;
pub mod output;
pub mod procfs;
pub mod sockevents;
