//! git-orch: parse the command line, dispatch, and turn the outcome into
//! one `error:` line and an exit code (SPEC §7: 0 done, 1 the work failed,
//! 2 bad input or a refused operation).

mod agent;
mod cli;
mod commands;
mod config;
mod engine;
mod failpoint;
mod git;
mod hooks;
mod notify;
mod platform;
mod process;
mod render;
mod sandbox;
mod schema;
mod secret;
mod state;
mod trace;
mod trust;
mod ui;

// The plan model and the error type live in the library (src/lib.rs) so the
// fuzz targets can link them; `crate::plan` and `crate::error` resolve here.
use git_orch::{error, plan};

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, HookCommand, PlanCommand, TaskCommand};
use error::{AfterCommit, Refusal, EXIT_REFUSED};

fn main() -> ExitCode {
    // git started this binary as the relay of a `git://` connection.
    if let Some((host, port)) = git::relay::invoked() {
        return ExitCode::from(git::relay::run(&host, port));
    }
    trace::on(); // starts the trace's clock
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_REFUSED } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // tests/docs.rs: every `git orch …` line of the docs parses.
    #[cfg(feature = "parse-only")]
    if std::env::var_os("GIT_ORCH_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            report(&err);
            // A command stopped by a signal or a closed output unwinds to
            // here like any error, with its own exit code.
            let stopped = err
                .chain()
                .find_map(|c| c.downcast_ref::<process::Stopped>());
            ExitCode::from(stopped.map_or_else(|| error::exit_code(&err), |s| s.0.exit_code()))
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<u8> {
    use commands::*;
    match command {
        Command::Check(args) => check::run(args),
        Command::Start(args) => start::run(args),
        Command::Status(args) => status::run(args),
        Command::Run(args) => run::run(args, false),
        Command::Resume(args) => run::run(args, true),
        Command::Task(TaskCommand::Start(args)) => task::start(args),
        Command::Task(TaskCommand::Done(args)) => task::done(args),
        Command::Task(TaskCommand::Diff(args)) => task::diff(args),
        Command::Task(TaskCommand::Show(args)) => agents::show_task(args),
        Command::Task(TaskCommand::Fail(args)) => task::fail(args),
        Command::Task(TaskCommand::Reset(args)) => task::reset(args),
        Command::Task(TaskCommand::Skip(args)) => task::skip(args),
        Command::Task(TaskCommand::Reopen(args)) => task::reopen(args),
        Command::Task(TaskCommand::Retry(args)) => task::retry(args),
        Command::Task(TaskCommand::Next(args)) => task::next(args),
        Command::Task(TaskCommand::Approve(args)) => task::approve(args),
        Command::Task(TaskCommand::Reject(args)) => task::reject(args),
        Command::Checkpoint(args) => checkpoint::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Log(args) => log::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Hook(HookCommand::Install { force }) => hook::install(force),
        Command::Hook(HookCommand::Uninstall) => hook::uninstall(),
        Command::Hook(HookCommand::Status { json }) => hook::status(json),
        Command::List(args) => list::run(args),
        Command::Finish(args) => finish::run(args),
        Command::Plan(PlanCommand::Amend(args)) => amend::run(args),
        Command::Abandon(args) => abandon::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Import(args) => import::run(args),
        Command::Init(args) => init::run(args),
        Command::Report(args) => report::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Trust(args) => trust::run(args),
        Command::SynthLand(args) => synth::run(args),
        Command::Guard(args) => agents::guard(args),
        Command::Agents(args) => agents::run(args),
    }
}

/// One `error:` line with the causes joined, then a `hint:` when known.
/// After a state commit the line says first what was recorded (exit 1).
fn report(err: &anyhow::Error) {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    if error::is_internal(err) {
        ui::error(&format!(
            "internal error: {}",
            line.lines().next().unwrap_or("")
        ));
        ui::hint(error::REPORT_AT);
        return;
    }
    ui::error(line.lines().next().unwrap_or(""));
    if let Some(hint) = err.chain().find_map(|c| {
        c.downcast_ref::<Refusal>()
            .and_then(|r| r.hint.as_deref())
            .or_else(|| c.downcast_ref::<error::Failure>()?.hint.as_deref())
    }) {
        ui::hint(hint);
    } else if err.chain().any(|c| c.is::<AfterCommit>()) {
        ui::hint("`git orch status` repairs what is left behind once the cause is fixed");
    }
}
