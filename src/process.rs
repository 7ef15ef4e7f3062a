//! The only place that starts task and gate commands. A command runs as
//! `sh -c` in its own process group, so a timeout or a crashed runner's
//! successor can kill it together with everything it spawned. Output is
//! streamed line by line to a callback (live display) and kept whole for
//! the log stored in the state branch.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::git::scrub_git_env;

pub struct Job<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// Written with the process group id once the command has started, so
    /// a later `resume` can stop a command whose runner died.
    pub pgid_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(Duration),
    /// The shell itself could not be started.
    NotStarted(String),
}

impl Exit {
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    pub fn describe(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit code {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut(d) => {
                format!("timed out after {}", crate::ui::duration(d.as_secs_f64()))
            }
            Exit::NotStarted(e) => format!("could not start: {e}"),
        }
    }
}

pub struct Finished {
    pub exit: Exit,
    pub seconds: f64,
    pub log: Vec<u8>,
}

/// Runs `job` to completion, calling `on_line` with each line of output
/// (stdout and stderr interleaved as they arrive).
pub fn run(job: &Job<'_>, mut on_line: impl FnMut(&str)) -> Finished {
    let started = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(job.command)
        .current_dir(job.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    scrub_git_env(&mut cmd);
    for (k, v) in &job.env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Finished {
                exit: Exit::NotStarted(e.to_string()),
                seconds: 0.0,
                log: Vec::new(),
            }
        }
    };
    let pgid = child.id() as i32;
    register(pgid);
    if let Some(file) = &job.pgid_file {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // With the leader's start time, so a successor never kills a
        // recycled process group.
        let start = process_start_time(child.id()).map_or(String::new(), |t| t.to_string());
        let _ = std::fs::write(file, format!("{pgid} {start}"));
    }

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);

    let mut log = Vec::new();
    let mut timed_out = false;
    let mut shell_gone: Option<Instant> = None;
    let deadline = job.timeout.map(|t| started + t);
    let mut emit = |bytes: Vec<u8>, log: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(&bytes);
        on_line(text.trim_end_matches(['\n', '\r']));
        log.extend_from_slice(&bytes);
        if !bytes.ends_with(b"\n") {
            log.push(b'\n');
        }
    };
    loop {
        let wait = deadline.map_or(Duration::from_millis(200), |d| {
            d.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200))
        });
        match rx.recv_timeout(wait) {
            Ok(bytes) => emit(bytes, &mut log),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) && !timed_out {
            timed_out = true;
            kill_group(pgid);
        }
        // The shell is gone but something it started still holds the
        // pipes: a task must not leave processes behind. The shell is not
        // reaped yet, so its group id cannot have been recycled.
        if exited_unreaped(pgid) {
            kill_group(pgid);
            let since = *shell_gone.get_or_insert_with(Instant::now);
            // Something that left the group (setsid) still holds the
            // pipes: stop waiting for its output rather than hang.
            if since.elapsed() > ESCAPED_GRACE {
                break;
            }
        }
    }
    while let Ok(bytes) = rx.try_recv() {
        emit(bytes, &mut log);
    }
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    kill_group(pgid);
    let status = child.wait();
    unregister(pgid);
    if let Some(file) = &job.pgid_file {
        let _ = std::fs::remove_file(file);
    }
    if interrupted() {
        // The interrupt handler killed this command and is ending the
        // process: record nothing, the claim is recovered by `resume`.
        loop {
            thread::sleep(Duration::from_secs(1));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let exit = if timed_out {
        Exit::TimedOut(job.timeout.unwrap_or_default())
    } else {
        match status {
            Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(sig)) => Exit::Signal(sig),
                _ => Exit::Code(-1),
            },
            Err(e) => Exit::NotStarted(e.to_string()),
        }
    };
    Finished { exit, seconds, log }
}

/// How long output is still awaited from processes that left the command's
/// process group once the command itself has exited.
const ESCAPED_GRACE: Duration = Duration::from_secs(1);

/// Process groups of the commands running now, for the interrupt handler.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// The signal that interrupted this process, 0 if none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

fn register(pgid: i32) {
    if let Ok(mut r) = RUNNING.lock() {
        r.push(pgid);
    }
}

fn unregister(pgid: i32) {
    if let Ok(mut r) = RUNNING.lock() {
        r.retain(|p| *p != pgid);
    }
}

fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP stop every command started here (they
/// run in their own process groups, so a Ctrl-C on the terminal does not
/// reach them) before this process exits with 128 + the signal. Nothing is
/// recorded: the state keeps the claims of the dead runner, which the next
/// `run` or `resume` recovers, exactly as after a `kill -9`.
pub fn stop_commands_on_interrupt(on_exit: fn(i32)) {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        #[allow(unsafe_code)]
        // SAFETY: the handler only stores into an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    thread::spawn(move || loop {
        let sig = SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            let groups = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
            for pgid in groups {
                kill_group(pgid);
            }
            on_exit(sig);
            std::process::exit(128 + sig);
        }
        thread::sleep(Duration::from_millis(50));
    });
}

/// Whether the child `pid` has exited, without reaping it (so its pid and
/// process group id stay reserved until we do).
fn exited_unreaped(pid: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: waitid writes only into the zeroed siginfo we own; WNOWAIT
    // leaves the child waitable for `Child::wait`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc == 0 && info.si_pid() != 0
    }
}

/// Stops what a dead runner left running, from its pgid file (`pgid` and
/// the leader's start time). A group whose leader id now belongs to another
/// process (the id was recycled) is left alone.
pub fn kill_recorded_group(record: &str) {
    let mut fields = record.split_whitespace();
    let Some(pgid) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
        return;
    };
    let start = fields.next().and_then(|s| s.parse::<u64>().ok());
    if let (Some(want), Some(now)) = (start, process_start_time(pgid as u32)) {
        if want != now {
            return;
        }
    }
    kill_group(pgid);
}

// What the operating system answers lives in `crate::platform`; these
// names stay here, where the engine has always found them.
pub use crate::platform::{hostname, is_alive, kill_group, process_start_time};
