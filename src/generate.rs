//! Shell completions and the man page, generated from the clap definition in `cli`, so they
//! never drift from the flags (`podports completions SHELL`, `podports man`). Pure: writes to
//! any `impl Write`.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`. clap_complete panics when its writer fails, so the
/// script is made in memory and written here, where a closed stdout is an error like any
/// other.
pub fn completions(shell: Shell, out: &mut impl Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "podports", &mut script);
    out.write_all(&script)
}

/// The man page, section 1, in roff: `podports man | man -l -`.
pub fn man(out: &mut impl Write) -> io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    out.write_all(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_names_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for word in ["podports", "catalog", "probe", "watch", "netns"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_man_page_is_roff_with_the_options() {
        let mut out = Vec::new();
        man(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{}", &text[..80]);
        assert!(text.contains(".TH podports 1"));
        for word in ["\\-\\-watch", "\\-\\-netns", "probe", "completions"] {
            assert!(text.contains(word), "no {word}");
        }
    }
}
