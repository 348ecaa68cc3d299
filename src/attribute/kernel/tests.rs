use super::*;

/// The kernel walk keeps what /proc would show: a process whose fd links are refused
/// (an LSM policy) is dropped and counted as unreadable; an fd closed since the walk
/// (ENOENT) defers to the process's next fd, and then to its exe link.
#[test]
fn drop_unreadable_asks_once_per_process() {
    let fds = vec![
        (100, 7, 3),
        (101, 7, 4),
        (102, 8, 3),
        (103, 9, 5),
        (104, 9, 6),
        (105, 10, 3),
        (106, 11, 3),
        (107, 12, 4),
    ];
    let mut asked = Vec::new();
    let found = drop_unreadable(fds, |pid, fd| {
        asked.push((pid, fd));
        match (pid, fd) {
            (8, _) => Err(Errno::EACCES),
            (9, Some(5)) => Err(Errno::ENOENT),
            (10, _) => Err(Errno::EPERM),
            // Every fd gone from /proc/<pid>/fd (main thread exited): the exe link decides.
            (11 | 12, Some(_)) => Err(Errno::ENOENT),
            (11, None) => Err(Errno::ENOENT),
            (12, None) => Err(Errno::EACCES),
            _ => Ok(()),
        }
    });
    assert_eq!(
        asked,
        vec![
            (7, Some(3)),
            (8, Some(3)),
            (9, Some(5)),
            (9, Some(6)),
            (10, Some(3)),
            (11, Some(3)),
            (11, None),
            (12, Some(4)),
            (12, None)
        ]
    );
    assert_eq!(
        found.fds,
        vec![
            (100, 7, 3),
            (101, 7, 4),
            (103, 9, 5),
            (104, 9, 6),
            (106, 11, 3)
        ]
    );
    assert_eq!(found.unreadable, vec![8, 10, 12]);
    assert_eq!(found.scanned, 6);
}
