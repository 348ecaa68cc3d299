//! One HTTP GET over one TCP connection, with a deadline: the only code of podports that
//! connects to anything. Only ever called by `probe::run`, inside the target's namespace, on an
//! address `probe::plan` allowed; the request and the parsing of the answer are
//! `probe::http`'s (pure).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::parse::http::{Answer, ResponseError, parse_status, request};

/// Why a GET got no status.
#[derive(Debug)]
pub enum GetError {
    /// Connecting failed (refused: nothing listens any more).
    Connect(io::Error),
    /// The deadline passed while connecting or waiting for the status line.
    Timeout,
    /// Sending or receiving failed.
    Io(io::Error),
    /// The connection was closed before a complete status line.
    Closed,
    /// The answer is not HTTP.
    Response(ResponseError),
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.write_str("connection refused")
            }
            GetError::Connect(e) => write!(f, "cannot connect: {e}"),
            GetError::Timeout => f.write_str("timed out"),
            GetError::Io(e) => write!(f, "{e}"),
            GetError::Closed => f.write_str("closed the connection without an answer"),
            GetError::Response(e) => write!(f, "{e}"),
        }
    }
}

/// GET `path` from `addr`, all of it (connect, send, status line) within `timeout`. Reads no
/// more than the head of the answer; the connection is closed as soon as the status line is
/// in.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Answer, GetError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        (!d.is_zero()).then_some(d).ok_or(GetError::Timeout)
    };
    let timed_out = |e: io::Error| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => GetError::Timeout,
        _ => GetError::Io(e),
    };
    let mut stream = TcpStream::connect_timeout(&addr, left()?).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => GetError::Timeout,
        _ => GetError::Connect(e),
    })?;
    stream.set_nodelay(true).map_err(GetError::Io)?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(GetError::Io)?;
    stream.write_all(&request(addr, path)).map_err(timed_out)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(GetError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                return match parse_status(&buf) {
                    Err(e) => Err(GetError::Response(e)),
                    Ok(_) => Err(GetError::Closed),
                };
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(timed_out(e)),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(status) = parse_status(&buf).map_err(GetError::Response)? {
            let latency = start.elapsed();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Ok(Answer { status, latency });
        }
    }
}
