//! `git orch completions bash|zsh|fish`: the shell completion script,
//! generated from the clap definitions by `clap_complete` so it can never
//! drift from the real flags.
//!
//! The script completes the `git-orch` command, and `git orch …` too:
//! git's bash completion calls a function named `_git_orch` for
//! `git orch`, so the bash script adds one that hands the words after
//! `orch` to the generated function; zsh's `_git` calls `_git-orch`, the
//! name the generated zsh function already has; fish's git completion
//! delegates `git orch` to the completions of `git-orch` by itself.

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::refuse;
use crate::ui;

const BASH_GIT_SHIM: &str = r#"
# `git orch <TAB>`: git's completion calls _git_orch; complete the words
# after `orch` as if `git-orch` had been typed.
_git_orch() {
    local i orch=-1
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == orch ]]; then orch=$i; break; fi
    done
    ((orch < 0)) && return 0
    local COMP_WORDS=(git-orch "${COMP_WORDS[@]:orch+1}")
    local COMP_CWORD=$((COMP_CWORD - orch))
    local COMP_LINE="${COMP_WORDS[*]}"
    local COMP_POINT=${#COMP_LINE}
    FUNCTION git-orch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
"#;

pub fn run(args: CompletionsArgs) -> Result<u8> {
    let shell = match args.shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => return Err(refuse(format!("no completions for shell `{other}`"))),
    };
    let mut script = Vec::new();
    let mut cmd = Cli::command().bin_name("git-orch");
    clap_complete::generate(shell, &mut cmd, "git-orch", &mut script);
    let mut text = String::from_utf8_lossy(&script).into_owned();
    if shell == Shell::Bash {
        // clap_complete spells the case labels of a hyphenated bin name's
        // subcommands differently from the state it computes, so options
        // after a subcommand never complete (clap-rs/clap#6421, open).
        // Spell them the way the dispatch loop does.
        text = text.replace("git__subcmd__orch", "git__orch");
        // The generated function's name (`_git__orch`) is clap_complete's
        // choice; read it from the script rather than assume it.
        let function = text
            .lines()
            .find_map(|l| l.strip_suffix("() {"))
            .unwrap_or("_git__orch")
            .to_string();
        text.push_str(&BASH_GIT_SHIM.replace("FUNCTION", &function));
    }
    ui::out(text.trim_end_matches('\n'));
    Ok(0)
}
