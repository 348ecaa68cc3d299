//! The expectation bundle of `check --expect-bundle -`: the user's `--expect` files carried on
//! stdin into a container that cannot see them (the kubectl plugin's ephemeral container), each
//! under the name the user gave, so errors still say `deploy/podports.yaml:3:5: ...`.
//! Pure: reads from any `BufRead`, self-delimited (never waits for EOF, which an attached
//! container's stdin may never see), and bounded; it never opens a file.
//!
//! The format (docs/ci.md), bytes:
//!
//! ```text
//! podports-bundle v1\n
//! file <SIZE> <NAME>\n      SIZE: decimal byte count; NAME: the rest of the line, as given
//! <SIZE bytes>\n            the file's bytes, then one newline
//! ...                       (at most MAX_FILES files)
//! end\n
//! ```

use std::io::{self, BufRead, Read};

/// The largest file a bundle carries.
pub const MAX_FILE: usize = 1024 * 1024;
/// The most bytes of files a bundle carries in all.
pub const MAX_TOTAL: usize = 4 * 1024 * 1024;
/// The most files a bundle carries.
pub const MAX_FILES: usize = 64;
/// The first line.
pub const HEADER: &str = "podports-bundle v1";
/// The longest header line (`file SIZE NAME`) accepted.
const MAX_LINE: usize = 4096;

/// The files of one bundle, in order, by the names they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Bundle {
    /// The bytes of the file bundled under exactly `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The names it holds, for an error.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}

/// Reads one bundle from `r`, up to and including its `end` line; the error says what is
/// wrong and where.
pub fn read(r: &mut impl BufRead) -> Result<Bundle, String> {
    let header = line(r)?.ok_or("empty: no `podports-bundle v1` line")?;
    if header != HEADER {
        return Err(format!(
            "not a podports bundle: the first line is {:?}, not {HEADER:?}",
            short(&header)
        ));
    }
    let mut bundle = Bundle::default();
    let mut total = 0usize;
    loop {
        let l = line(r)?.ok_or("cut short: no `end` line")?;
        if l == "end" {
            return Ok(bundle);
        }
        let rest = l
            .strip_prefix("file ")
            .ok_or_else(|| format!("expected `file SIZE NAME` or `end`, got {:?}", short(&l)))?;
        let (size, name) = rest
            .split_once(' ')
            .ok_or_else(|| format!("`file {}`: want `file SIZE NAME`", short(rest)))?;
        if name.is_empty() {
            return Err("a file with an empty name".into());
        }
        let size: usize = size
            .parse()
            .ok()
            .filter(|_| size.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("{}: size {:?} is not a number", short(name), short(size)))?;
        if size > MAX_FILE {
            return Err(format!(
                "{}: {size} bytes, more than the {MAX_FILE} bytes (1 MiB) an expectation file may have",
                short(name)
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_TOTAL {
            return Err(format!(
                "more than {MAX_TOTAL} bytes (4 MiB) of files in all, at {}",
                short(name)
            ));
        }
        if bundle.files.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} files"));
        }
        if bundle.get(name).is_some() {
            return Err(format!("{} is bundled twice", short(name)));
        }
        let mut bytes = vec![0; size];
        r.read_exact(&mut bytes).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                format!("{}: cut short, less than {size} bytes", short(name))
            }
            _ => format!("{}: reading it: {e}", short(name)),
        })?;
        let mut nl = [0u8; 1];
        match r.read_exact(&mut nl) {
            Ok(()) if nl[0] == b'\n' => {}
            Ok(()) => return Err(format!("{}: not {size} bytes then a newline", short(name))),
            Err(e) => return Err(format!("{}: cut short after its bytes: {e}", short(name))),
        }
        bundle.files.push((name.to_string(), bytes));
    }
}

/// One line without its newline; `None` at EOF. Bounded; not UTF-8 is an error.
fn line(r: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|e| format!("reading it: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            format!("a line longer than {MAX_LINE} bytes")
        } else {
            "cut short in a line".into()
        });
    }
    buf.pop();
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| "a header line that is not UTF-8".into())
}

/// Enough of a line to name it in an error, escaped.
fn short(s: &str) -> String {
    let s: String = s.chars().take(80).collect();
    crate::escape::escape(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = format!("{HEADER}\n").into_bytes();
        for (name, bytes) in files {
            b.extend(format!("file {} {name}\n", bytes.len()).bytes());
            b.extend_from_slice(bytes);
            b.push(b'\n');
        }
        b.extend(b"end\n");
        b
    }

    #[test]
    fn reads_files_by_name_and_stops_at_end() {
        let mut b = bundle(&[
            ("deploy/podports.yaml", b"listen:\n  - tcp/15021\n"),
            ("a b.json", b""),
            ("no-newline", b"x"),
        ]);
        // What follows `end` is not read: stdin may stay open after it.
        b.extend(b"trailing garbage");
        let mut r = io::Cursor::new(b);
        let got = read(&mut r).unwrap();
        assert_eq!(
            got.get("deploy/podports.yaml"),
            Some(&b"listen:\n  - tcp/15021\n"[..])
        );
        assert_eq!(got.get("a b.json"), Some(&b""[..]));
        assert_eq!(got.get("no-newline"), Some(&b"x"[..]));
        assert_eq!(got.get("podports.yaml"), None);
        assert_eq!(got.names(), "deploy/podports.yaml, a b.json, no-newline");
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "trailing garbage");
        assert_eq!(
            read(&mut io::Cursor::new(bundle(&[]))).unwrap().names(),
            "none"
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let err = |b: &[u8]| read(&mut io::Cursor::new(b.to_vec())).unwrap_err();
        assert!(err(b"").contains("empty"));
        assert!(err(b"hello\n").contains("not a podports bundle"));
        assert!(err(b"podports-bundle v1\n").contains("no `end`"));
        assert!(err(b"podports-bundle v1\nfile 10 a\nshort\n").contains("a: cut short"));
        assert!(err(b"podports-bundle v1\nfile 1 a\nxy").contains("then a newline"));
        assert!(err(b"podports-bundle v1\nfile x a\n").contains("not a number"));
        assert!(err(b"podports-bundle v1\nfile +1 a\nx\nend\n").contains("not a number"));
        assert!(err(b"podports-bundle v1\nfile 1 \nx\nend\n").contains("empty name"));
        assert!(err(b"podports-bundle v1\nlol\n").contains("`file SIZE NAME` or `end`"));
        let big = format!("{HEADER}\nfile {} big.yaml\n", MAX_FILE + 1);
        let e = err(big.as_bytes());
        assert!(e.contains("big.yaml") && e.contains("1 MiB"), "{e}");
        let twice = bundle(&[("a", b"1"), ("a", b"2")]);
        assert!(err(&twice).contains("a is bundled twice"));
        let long = format!("{HEADER}\nfile 1 {}\n", "n".repeat(MAX_LINE));
        assert!(err(long.as_bytes()).contains("longer than"));
        let files: Vec<(String, Vec<u8>)> = (0..=MAX_FILES)
            .map(|i| (format!("f{i}"), vec![b'x']))
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert!(err(&bundle(&refs)).contains("more than 64 files"));
        let total: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| (format!("f{i}"), vec![b'x'; MAX_FILE]))
            .collect();
        let refs: Vec<(&str, &[u8])> = total
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert!(err(&bundle(&refs)).contains("4 MiB"));
    }
}
