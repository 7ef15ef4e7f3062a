//! The only place that starts task and gate commands. A command runs as
//! `sh -c` in its own process group, so a timeout or a crashed runner's
//! successor can kill it together with everything it spawned. Output is
//! streamed line by line to a callback (live display) and kept whole for
//! the log stored in the state branch.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
    if let Some(file) = &job.pgid_file {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(file, pgid.to_string());
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
        // pipes: a task must not leave processes behind.
        if let Ok(Some(_)) = child.try_wait() {
            kill_group(pgid);
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait();
    kill_group(pgid);
    if let Some(file) = &job.pgid_file {
        let _ = std::fs::remove_file(file);
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

/// Sends SIGKILL to a whole process group; a group already gone is fine.
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) takes plain integers and has no memory effects.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Whether a process with this pid exists (and, when given, started at
/// `start_time`, so a recycled pid does not count).
pub fn is_alive(pid: u32, start_time: Option<u64>) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: signal 0 only checks for existence and permission.
    let exists = unsafe { libc::kill(pid as i32, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    match (start_time, process_start_time(pid)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    }
}

/// The kernel's start time of a process (Linux `/proc/<pid>/stat`, field 22).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
