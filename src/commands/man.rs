//! `git orch man`: the man pages, generated from the clap definitions by
//! `clap_mangen`. `git orch --help` is turned by git into `git help orch`,
//! which runs `man git-orch`; installing the pages is what makes it work.
//!
//! The default place is `<prefix>/share/man` for a binary in
//! `<prefix>/bin` (for `cargo install`, `~/.cargo/share/man`): man-db
//! derives that directory from `PATH` on its own, so no `MANPATH` is needed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::ui;

pub fn run(args: ManArgs) -> Result<u8> {
    match args.install {
        None => {
            let page = render(&command())?;
            ui::out(String::from_utf8_lossy(&page).trim_end_matches('\n'));
        }
        Some(dir) => {
            let root = match dir {
                Some(dir) => dir,
                None => default_root()?,
            };
            let man1 = root.join("man1");
            let pages = install(&man1)?;
            ui::note(&format!(
                "{} {} man pages in {}",
                ui::green("installed"),
                pages.len(),
                man1.display()
            ));
            if !on_manpath(&root) {
                ui::hint(&format!(
                    "`man` may not look there; add it with `export MANPATH=\"{}:$MANPATH\"`",
                    root.display()
                ));
            }
            ui::out(&man1.display().to_string());
        }
    }
    Ok(0)
}

/// The command as the pages show it: `git-orch`, the name `man` and
/// `git help orch` look for, with one page per subcommand
/// (`git-orch-run`, `git-orch-task-start`, …).
fn command() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}

/// Writes every page into `man1`; returns their paths. After `build`,
/// clap names a subcommand `git-orch-run` (its display name), which
/// `clap_mangen` uses for the title and the file name.
fn install(man1: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(man1).with_context(|| format!("cannot create `{}`", man1.display()))?;
    let mut cmd = command();
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, man1, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: &clap::Command, man1: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let path = man1.join(clap_mangen::Man::new(cmd.clone()).get_filename());
    let page = render(cmd)?;
    std::fs::write(&path, page).with_context(|| format!("cannot write `{}`", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, man1, written)?;
    }
    Ok(())
}

/// What the top page adds to the generated sections.
const TOP_EXTRA: &str = r#".SH EXAMPLES
.nf
git orch check plan.toml           # every problem, as plan.toml:12:5: error: ...
git orch start plan.toml           # work and state branches, the start tag
git orch run \-j 3                  # tasks in worktrees, phases checkpointed
git orch status
git orch report \-\-format html \-o report.html
git orch graph \-\-format dot | dot \-Tsvg > plan.svg
.fi
.SH FILES
The state of a plan lives in git, on the branch
\fBorch/\fR\fIplan\fR\fB/state\fR: read its history with
\fBgit orch log\fR or \fBgit log orch/\fR\fIplan\fR\fB/state\fR.
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
No colour, whatever \fBorch.color\fR says.
.TP
\fBORCH_SKIP_GATES=1\fR
The pre\-push hook lets the push through.
.SH CONFIGURATION
\fBorch.parallel\fR, \fBorch.worktreeDir\fR, \fBorch.prePush\fR and
\fBorch.color\fR (auto, always, never) are read from git config, \fBgit \-c\fR
included.
.SH SEE ALSO
\fBgit\-orch\-run\fR(1), \fBgit\-orch\-report\fR(1), \fBgit\-worktree\fR(1), \fBgithooks\fR(5)
"#;

/// One page; the top one gets examples, files and configuration.
fn render(cmd: &clap::Command) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    if cmd.get_name() == "git-orch" {
        page.extend_from_slice(TOP_EXTRA.as_bytes());
    }
    Ok(page)
}

/// `<exe dir>/../share/man`.
fn default_root() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find where git-orch is installed")?;
    let bin = exe
        .parent()
        .ok_or_else(|| anyhow!("cannot find the directory of `{}`", exe.display()))?;
    let prefix = bin.parent().unwrap_or(bin);
    Ok(prefix.join("share").join("man"))
}

/// Whether `man` will search `root` without help: it is in `MANPATH`, or
/// there is no `MANPATH` and `root` is `<dir>/../share/man` (or
/// `<dir>/../man`) of a `PATH` directory, which man-db derives itself.
fn on_manpath(root: &Path) -> bool {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if let Some(manpath) = std::env::var_os("MANPATH").filter(|m| !m.is_empty()) {
        let explicit = std::env::split_paths(&manpath).any(|p| same(&p, root));
        // A MANPATH with an empty element also gets the default search.
        let has_default = manpath.to_string_lossy().split(':').any(str::is_empty);
        if explicit || !has_default {
            return explicit;
        }
    }
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.parent().is_some_and(|prefix| {
                same(&prefix.join("share").join("man"), root) || same(&prefix.join("man"), root)
            })
        })
    })
}
