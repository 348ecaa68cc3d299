//! The only place podports makes syscalls: namespace entry, netlink I/O, /proc reading, the
//! in-kernel fd walk (a BPF iterator that reads fd tables) and the node's pod records (kubelet
//! log directories, cgroups).
//! Everything here reads; nothing here ever writes to the target or the host.

pub mod bpf;
pub mod ifaddrs;
pub mod netlink;
pub mod netns;
pub mod node;
pub mod output;
pub mod procfs;
