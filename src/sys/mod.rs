//! The only place podports makes syscalls: namespace entry, netlink I/O, /proc reading and the
//! node's pod records (kubelet log directories, cgroups).
//! Everything here reads; nothing here ever writes to the target or the host.

pub mod ifaddrs;
pub mod netlink;
pub mod netns;
pub mod node;
pub mod output;
pub mod procfs;
