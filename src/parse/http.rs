//! One HTTP/1.1 GET, written by hand: `probe` needs the status line and nothing else, and a
//! client library would bring TLS, redirects and pools it must not use. Pure: the request's
//! bytes and the status line's parser; `sys::http::get` sends the one and reads with the other.

use std::net::SocketAddr;
use std::time::Duration;

/// At most this much of the answer is read: the status line and some headers.
const MAX_HEAD: usize = 8 * 1024;

/// A status line: `HTTP/1.1 503 Service Unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    /// The reason phrase as sent (target-controlled bytes: escape before showing).
    pub reason: Vec<u8>,
}

/// Why bytes are not the start of an HTTP/1.x answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// Not `HTTP/1.0` or `HTTP/1.1` followed by a space.
    NotHttp,
    /// The status code is not three digits (100-999).
    BadCode,
    /// No end of the status line within the bytes podports reads.
    TooLong,
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResponseError::NotHttp => "the answer is not HTTP/1.x",
            ResponseError::BadCode => "the status code is not three digits",
            ResponseError::TooLong => "no status line in the first 8 KiB of the answer",
        })
    }
}

/// The request: `GET path HTTP/1.1` with `Host` and `Connection: close`.
pub fn request(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: podports/{}\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// The status line at the start of `buf`: `Ok(None)` while it is not complete (read more),
/// `Ok(Some(status))` once it is. A bare `\n` ends the line too (RFC 9112 2.2 lets a client
/// take it).
pub fn parse_status(buf: &[u8]) -> Result<Option<Status>, ResponseError> {
    const PREFIXES: [&[u8]; 2] = [b"HTTP/1.1 ", b"HTTP/1.0 "];
    // A prefix that is still being received may become valid; anything else cannot.
    let n = buf.len().min(9);
    let head = buf.get(..n).unwrap_or_default();
    if !PREFIXES.iter().any(|p| p.starts_with(head)) {
        return Err(ResponseError::NotHttp);
    }
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_HEAD {
            Err(ResponseError::TooLong)
        } else {
            Ok(None)
        };
    };
    let line = buf.get(..eol).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.get(9..).ok_or(ResponseError::NotHttp)?;
    let code = rest.get(..3).ok_or(ResponseError::BadCode)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::BadCode);
    }
    let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if code < 100 {
        return Err(ResponseError::BadCode);
    }
    let reason = match rest.get(3..) {
        None | Some([]) => Vec::new(),
        Some([b' ', reason @ ..]) => reason.to_vec(),
        Some(_) => return Err(ResponseError::BadCode),
    };
    Ok(Some(Status { code, reason }))
}

/// What a GET got: the status line and how long it took (connect to status line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    pub latency: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(code: u16, reason: &str) -> Result<Option<Status>, ResponseError> {
        Ok(Some(Status {
            code,
            reason: reason.as_bytes().to_vec(),
        }))
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), st(200, "OK"));
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"),
            st(503, "Service Unavailable")
        );
        assert_eq!(
            parse_status(b"HTTP/1.0 404 Not Found\n"),
            st(404, "Not Found")
        );
        // The reason phrase may be empty, with or without its space.
        assert_eq!(parse_status(b"HTTP/1.1 200\r\n"), st(200, ""));
        assert_eq!(parse_status(b"HTTP/1.1 200 \r\n"), st(200, ""));
        // Kept as bytes, whatever they are.
        assert_eq!(
            parse_status(b"HTTP/1.1 200 \x1b[2J\xff\r\n"),
            Ok(Some(Status {
                code: 200,
                reason: b"\x1b[2J\xff".to_vec()
            }))
        );
    }

    #[test]
    fn an_incomplete_status_line_asks_for_more() {
        for partial in [
            &b""[..],
            b"H",
            b"HTTP/1.",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 200 OK\r",
        ] {
            assert_eq!(parse_status(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn what_is_not_an_http_answer() {
        assert_eq!(
            parse_status(b"SSH-2.0-OpenSSH\r\n"),
            Err(ResponseError::NotHttp)
        );
        assert_eq!(parse_status(b"HTTP/2 200\r\n"), Err(ResponseError::NotHttp));
        assert_eq!(parse_status(b"\x16\x03\x01"), Err(ResponseError::NotHttp));
        assert_eq!(parse_status(b"HTTP/1.1\r\n"), Err(ResponseError::NotHttp));
        assert_eq!(parse_status(b"HTTP/1.1 \r\n"), Err(ResponseError::BadCode));
        assert_eq!(
            parse_status(b"HTTP/1.1 2x0 OK\r\n"),
            Err(ResponseError::BadCode)
        );
        assert_eq!(
            parse_status(b"HTTP/1.1 20\r\n"),
            Err(ResponseError::BadCode)
        );
        assert_eq!(
            parse_status(b"HTTP/1.1 099 Low\r\n"),
            Err(ResponseError::BadCode)
        );
        assert_eq!(
            parse_status(b"HTTP/1.1 2000 OK\r\n"),
            Err(ResponseError::BadCode)
        );
        assert_eq!(
            parse_status(&[b"HTTP/1.1 200 ".as_slice(), &[b'a'; MAX_HEAD]].concat()),
            Err(ResponseError::TooLong)
        );
    }

    #[test]
    fn the_request_names_the_path_and_closes() {
        let r = request("127.0.0.1:15021".parse().unwrap(), "/healthz/ready");
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("GET /healthz/ready HTTP/1.1\r\nHost: 127.0.0.1:15021\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        let r6 = request("[::1]:15000".parse().unwrap(), "/server_info");
        assert!(
            String::from_utf8(r6)
                .unwrap()
                .contains("Host: [::1]:15000\r\n")
        );
    }

    #[test]
    fn parse_status_never_panics() {
        // Every prefix of some answers, and every single byte value in every position.
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.0 503 x\n",
            b"HTTP/1.1 \xff\xfe\r\n",
        ];
        for a in answers {
            for i in 0..=a.len() {
                let _ = parse_status(&a[..i]);
                for b in 0..=255u8 {
                    let mut v = a[..i].to_vec();
                    v.push(b);
                    let _ = parse_status(&v);
                }
            }
        }
    }
}
