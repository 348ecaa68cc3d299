//! The docs' examples as golden files: `golden(NAME, got)` compares what a test rendered with
//! tests/golden/NAME and with every `<!-- example NAME -->` block of README.md and docs/*.md,
//! and rewrites both under `PODPORTS_BLESS=1`. Used by tests/docs_examples.rs and tests/node.rs.

use std::fs;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bless() -> bool {
    std::env::var_os("PODPORTS_BLESS").is_some_and(|v| v == "1")
}

/// The Markdown files that may show examples: README.md and docs/*.md.
pub fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

pub const END: &str = "<!-- end -->";

pub fn begin(name: &str) -> String {
    format!("<!-- example {name} -->\n")
}

/// The fence a golden file is shown in, from its extension.
pub fn fence(name: &str) -> &'static str {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("json") => "json",
        Some("jsonl") => "json",
        _ => "text",
    }
}

/// Compares `got` with tests/golden/NAME, or writes it under PODPORTS_BLESS=1; then checks
/// that every Markdown file showing NAME shows exactly it (rewriting the block when blessing),
/// and that at least one does.
pub fn golden(name: &str, got: &str) {
    assert!(
        got.ends_with('\n') && !got.is_empty(),
        "{name}: want whole lines"
    );
    let path = root().join("tests/golden").join(name);
    if bless() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, got).unwrap();
    }
    let want = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PODPORTS_BLESS=1 writes it)", path.display()));
    assert_eq!(
        got, want,
        "{name} changed: `PODPORTS_BLESS=1 cargo test --locked --test docs_examples` refreshes it and the docs"
    );
    let block = format!("{}```{}\n{got}```\n{END}", begin(name), fence(name));
    let mut shown = 0;
    for md in markdown_files() {
        let text = fs::read_to_string(&md).unwrap();
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&begin(name)) {
            let end = rest[start..]
                .find(END)
                .map(|i| start + i + END.len())
                .unwrap_or_else(|| panic!("{}: {name} has no {END} after it", md.display()));
            out.push_str(&rest[..start]);
            if bless() {
                out.push_str(&block);
            } else {
                assert_eq!(
                    &rest[start..end],
                    block,
                    "{}'s {name} example differs from tests/golden (PODPORTS_BLESS=1)",
                    md.display()
                );
            }
            shown += 1;
            rest = &rest[end..];
        }
        out.push_str(rest);
        if bless() && out != text {
            fs::write(&md, out).unwrap();
        }
    }
    assert!(shown > 0, "no Markdown file shows {name}");
}
