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
///
/// clap's scripts complete `--profile` with the built-in names and `-o` with its formats;
/// `--netns` gets the names under /run/netns, looked up when completing (and files, for a
/// path), from the small shell functions added here.
pub fn completions(shell: Shell, out: &mut impl Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "podports", &mut script);
    let script = String::from_utf8_lossy(&script);
    let script = match shell {
        Shell::Bash => format!("{script}{BASH_NETNS}"),
        Shell::Zsh => zsh_with_netns(&script),
        Shell::Fish => format!("{}{FISH_NETNS}", fish_top_level_values(&script)),
        _ => script.into_owned(),
    };
    out.write_all(script.as_bytes())
}

/// bash: `--netns` completes the names under /run/netns and files; anything else is clap's.
const BASH_NETNS: &str = r#"
# --netns: the names under /run/netns (as `ip netns` makes them), or a path.
_podports_netns() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ "$prev" == "--netns" ]]; then
        local names=""
        [[ -d /run/netns ]] && names="$(command ls -A /run/netns 2>/dev/null)"
        COMPREPLY=( $(compgen -W "${names}" -- "${cur}") $(compgen -f -- "${cur}") )
        return 0
    fi
    _podports "$@"
}
complete -F _podports_netns -o bashdefault -o default podports
"#;

/// fish: a second completion for `--netns`, evaluated when completing.
const FISH_NETNS: &str = r#"
# --netns: the names under /run/netns (as `ip netns` makes them), or a path.
function __fish_podports_netns
    command ls -A /run/netns 2>/dev/null
end
complete -c podports -l netns -r -a '(__fish_podports_netns)'
"#;

/// fish: clap's `__fish_podports_needs_command` parses the words typed so far with `argparse`,
/// which fails while the last word is an option still waiting for its value (`podports -o `),
/// and then no top-level completion applies: `-o` offered files, not its formats. A parse
/// that fails there still means no subcommand was typed.
fn fish_top_level_values(script: &str) -> String {
    script.replace(
        "argparse -s (__fish_podports_global_optspecs) -- $cmd 2>/dev/null\n    or return\n",
        "argparse -s (__fish_podports_global_optspecs) -- $cmd 2>/dev/null\n    or return 0\n",
    )
}

/// zsh: `--netns` offers the names under /run/netns beside files.
fn zsh_with_netns(script: &str) -> String {
    const FUNCTION: &str = "\n# --netns: the names under /run/netns (as `ip netns` makes them), or \
        a path.\n_podports_netns() {\n    local -a names\n    names=(/run/netns/*(N:t))\n    \
        _alternative 'names:netns name:compadd -a names' 'files:netns file:_files'\n}\n";
    let script = script.replace(":NAME|PATH:_default'", ":NAME|PATH:_podports_netns'");
    match script.split_once('\n') {
        Some((first, rest)) if first.starts_with("#compdef") => {
            format!("{first}\n{FUNCTION}{rest}")
        }
        _ => format!("{FUNCTION}{script}"),
    }
}

/// The command tree the man pages describe: built (so every subcommand has its full name,
/// `podports-check`), without clap's `help` subcommand, which has no page.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The main man page, section 1, in roff: `podports man | man -l -`. Its SUBCOMMANDS name
/// the pages `man_pages` writes.
pub fn man(out: &mut impl Write) -> io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(man_command()).render(&mut page)?;
    out.write_all(&page)
}

/// Every man page: `podports.1`, then `podports-COMMAND.1` for each command, each with its
/// own options (`podports man --dir DIR` writes them).
pub fn man_pages() -> io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        pages.push((man.get_filename(), page));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, pages)?;
        }
        Ok(())
    }
    let mut pages = Vec::new();
    walk(&man_command(), &mut pages)?;
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_complete_profiles_formats_and_netns_names() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for p in crate::check::profiles::ALL {
                assert!(text.contains(p.name), "{shell}: no profile {}", p.name);
            }
            assert!(text.contains("wide"), "{shell}: no -o wide");
            assert!(text.contains("/run/netns"), "{shell}: no /run/netns lookup");
        }
        let mut zsh = Vec::new();
        completions(Shell::Zsh, &mut zsh).unwrap();
        let zsh = String::from_utf8(zsh).unwrap();
        assert!(zsh.starts_with("#compdef podports\n"), "{zsh}");
        assert!(
            !zsh.contains(":NAME|PATH:_default"),
            "every --netns is completed"
        );
    }

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
