//! The only place podports makes syscalls: namespace entry, netlink I/O and /proc reading.
//! Everything here reads; nothing here ever writes to the target or the host.

pub mod netlink;
pub mod netns;
pub mod procfs;
