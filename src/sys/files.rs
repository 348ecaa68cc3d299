//! The files the user names on the command line, and only those: `check --expect FILE` is
//! read, `check --junit FILE` and `man --dir DIR`'s pages are written. Nothing here reads or
//! writes the target; the callers turn the `io::Error` into a message naming the flag.

use std::io;
use std::path::Path;

/// The whole of a file the user named (`--expect`).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Creates or replaces a file the user named (`--junit`, `man --dir`) with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_then_reads_back_and_names_a_missing_file() {
        let dir = std::env::temp_dir().join(format!("podports-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.xml");
        write(&path, b"<x/>\n").unwrap();
        assert_eq!(read(&path).unwrap(), b"<x/>\n");
        write(&path, b"y").unwrap();
        assert_eq!(read(&path).unwrap(), b"y", "write replaces, never appends");
        let missing = read(&dir.join("absent")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
