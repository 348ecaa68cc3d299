use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use super::Walk;
use crate::model::FdWalk;
use crate::sys::procfs::ProcRoot;

fn inode_of(sock: &impl AsRawFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
        .unwrap()
        .ino()
}

/// A socket a target process makes after the walk's first pass read it (while the dump ran)
/// is found: the pass over the rest of the tree reads the target's processes again.
#[test]
fn a_socket_made_after_the_first_pass_is_found_with_its_holder() {
    let procfs = ProcRoot::new("/proc").with_fd_walk(FdWalk::Proc);
    let me = std::process::id() as i32;
    let before = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let walk = Walk::new(&procfs, procfs.netns_inode(me));
    // The first pass: every process of this namespace, this one among them.
    walk.work();
    let after = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let wanted: HashSet<u64> = [inode_of(&before), inode_of(&after)].into();
    let owners = walk.finish(&wanted).unwrap();
    for (name, sock) in [("before", &before), ("after", &after)] {
        let holders: Vec<(i32, i32)> = owners
            .of(inode_of(sock))
            .map(|(p, fd)| (p.pid, fd))
            .collect();
        assert_eq!(holders, [(me, sock.as_raw_fd())], "{name}");
    }
}
