//! What podports asks of its own stdout: the terminal's width (TIOCGWINSZ), and waiting
//! between two looks of `--watch` while keeping an eye on it: the wait ends early when the
//! reader of stdout is gone, so `podports --watch -o json | head -1` ends even when nothing
//! changes and nothing is written. Reads nothing of the target, writes nothing.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The number of columns of the terminal `out` is, from the TIOCGWINSZ ioctl; `None` when
/// `out` is not a terminal or the terminal does not say (a width of 0).
pub fn terminal_columns(out: BorrowedFd<'_>) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer it is given, which lives here.
    let got = unsafe { tiocgwinsz(out.as_raw_fd(), &mut size) };
    match got {
        Ok(_) if size.ws_col > 0 => Some(usize::from(size.ws_col)),
        _ => None,
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The whole time passed.
    Elapsed,
    /// The other end of `out` is gone: a pipe whose reader exited (POLLERR), a hung-up
    /// terminal or socket (POLLHUP).
    HungUp,
}

/// Sleeps for `d`, or less if `out` hangs up. Polls for no event at all: POLLERR and POLLHUP
/// are reported whatever is asked, and a pipe, terminal or file that is still there reports
/// nothing, so this is a plain sleep until the reader goes away. A poll that fails for another
/// reason than a signal falls back to sleeping.
pub fn wait_unless_hung_up(out: BorrowedFd<'_>, d: Duration) -> Waited {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::Elapsed;
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(out, PollFlags::empty())];
        match poll(&mut fds, timeout) {
            Ok(0) => {}
            Ok(_) => {
                let hung = fds.first().and_then(|f| f.revents()).is_some_and(|r| {
                    r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL)
                });
                if hung {
                    return Waited::HungUp;
                }
                // Anything else was not asked for; don't spin on it.
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
            Err(Errno::EINTR) => {}
            Err(_) => {
                std::thread::sleep(left);
                return Waited::Elapsed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_pipe_whose_reader_left_hangs_up_at_once() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let start = Instant::now();
        assert_eq!(
            wait_unless_hung_up(w.as_fd(), Duration::from_secs(10)),
            Waited::HungUp
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_pipe_with_a_reader_waits_the_whole_time() {
        let (_r, w) = nix::unistd::pipe().unwrap();
        let start = Instant::now();
        assert_eq!(
            wait_unless_hung_up(w.as_fd(), Duration::from_millis(150)),
            Waited::Elapsed
        );
        assert!(start.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn a_pipe_or_a_file_has_no_width() {
        let (_r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(terminal_columns(w.as_fd()), None);
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(terminal_columns(f.as_fd()), None);
    }

    #[test]
    fn a_file_waits_the_whole_time() {
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            wait_unless_hung_up(f.as_fd(), Duration::from_millis(50)),
            Waited::Elapsed
        );
    }
}
