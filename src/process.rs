//! The only place that starts task and gate commands. A command runs as
//! `sh -c` in its own process group, so a timeout or a crashed runner's
//! successor can kill it together with everything it spawned. Output is
//! streamed line by line to a callback (live display); the last
//! [`LOG_TAIL`] bytes of it are kept for the log stored in the state branch.

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
    /// Written with the process group id (and the leader's start time) by
    /// the child itself before it runs the command, so a later `resume` can
    /// stop a command whose runner died at any moment; a record that cannot
    /// be written stops the command from starting.
    pub pgid_file: Option<PathBuf>,
    /// Run the command in a pid namespace of its own (see [`containment`])
    /// so that nothing it starts, a `setsid` daemon included, outlives it.
    pub contain: bool,
    /// A wrapper of its own instead (the sandbox's `bwrap …`), which must
    /// contain the command itself.
    pub wrap: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(Duration),
    /// The shell itself could not be started.
    NotStarted(String),
    /// Killed because this process is stopping (a signal, or its output
    /// closed); see [`stop_requested`].
    Stopped(Stop),
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
            Exit::Stopped(stop) => stop.describe(),
        }
    }
}

/// How much of a command's output its log keeps: the last 4 MiB. What came
/// before is cut, with a note saying how much, so a command that prints
/// without end cannot exhaust memory or bloat the state branch.
pub const LOG_TAIL: usize = 4 << 20;

/// Output is read in lines of at most this many bytes: a command that
/// prints a gigabyte without a newline is shown and logged in pieces.
const MAX_LINE: u64 = 64 << 10;

/// The log of a command: the tail of its output, and how much was cut.
struct Tail {
    bytes: Vec<u8>,
    cut: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in batches (at 2 × LOG_TAIL) so the copying stays linear.
        if self.bytes.len() > 2 * LOG_TAIL {
            self.trim();
        }
    }

    /// Keeps the last [`LOG_TAIL`] bytes, from the start of a line if one
    /// starts soon after the cut.
    fn trim(&mut self) {
        let Some(mut drop) = self.bytes.len().checked_sub(LOG_TAIL) else {
            return;
        };
        if let Some(nl) = self.bytes[drop..]
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
        {
            drop += nl + 1;
        }
        self.bytes.drain(..drop);
        self.cut += drop as u64;
    }

    fn finish(mut self) -> Vec<u8> {
        self.trim();
        if self.cut == 0 {
            return self.bytes;
        }
        let mut out = format!(
            "[git-orch: {} bytes of earlier output cut; the log keeps the last {} MiB]\n",
            self.cut,
            LOG_TAIL >> 20
        )
        .into_bytes();
        out.extend_from_slice(&self.bytes);
        out
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
    if let Some(stop) = stop_requested() {
        return Finished {
            exit: Exit::Stopped(stop),
            seconds: 0.0,
            log: Vec::new(),
        };
    }
    let not_started = |why: String| Finished {
        exit: Exit::NotStarted(why),
        seconds: 0.0,
        log: Vec::new(),
    };
    let wrapper = match &job.wrap {
        Some(wrap) => wrap.as_slice(),
        None if job.contain => containment().prefix(),
        None => &[],
    };
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg("sh");
            cmd
        }
        None => Command::new("sh"),
    };
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
    let record = match &job.pgid_file {
        Some(file) => {
            if let Some(dir) = file.parent() {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return not_started(format!(
                        "cannot record its process group in `{}`: {e}",
                        dir.display()
                    ));
                }
            }
            match std::ffi::CString::new(file.as_os_str().as_encoded_bytes()) {
                Ok(path) => Some(path),
                Err(_) => return not_started(format!("bad pid file `{}`", file.display())),
            }
        }
        None => None,
    };
    let runner = std::process::id() as libc::pid_t;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || child_setup(runner, record.as_deref()));
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            // The child writes the record first: without it, that failed.
            let why = match &job.pgid_file {
                Some(file) if !file.exists() => format!(
                    "cannot record its process group in `{}`: {e}",
                    file.display()
                ),
                Some(file) => {
                    let _ = std::fs::remove_file(file);
                    e.to_string()
                }
                None => e.to_string(),
            };
            return not_started(why);
        }
    };
    let pgid = child.id() as i32;
    register(pgid);

    // Bounded: a command that prints faster than the output is shown waits.
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(256);
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
            while matches!(reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);

    let mut log = Tail {
        bytes: Vec::new(),
        cut: 0,
    };
    let mut timed_out = false;
    let mut stopped = None;
    let mut shell_gone: Option<Instant> = None;
    let deadline = job.timeout.map(|t| started + t);
    let mut emit = |bytes: Vec<u8>, log: &mut Tail| {
        let text = String::from_utf8_lossy(&bytes);
        on_line(text.trim_end_matches(['\n', '\r']));
        log.push(&bytes);
        if !bytes.ends_with(b"\n") {
            log.push(b"\n");
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
        if stopped.is_none() {
            stopped = stop_requested();
            if stopped.is_some() {
                kill_group(pgid);
            }
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
    let seconds = started.elapsed().as_secs_f64();
    let exit = if let Some(stop) = stopped {
        Exit::Stopped(stop)
    } else if timed_out {
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
    Finished {
        exit,
        seconds,
        log: log.finish(),
    }
}

/// In the child, before it runs the command: die with the runner (and if
/// the runner is already gone, die now), then write the record of the
/// process group, `<pgid> <start time>`, failing the start if it cannot be
/// written. Only async-signal-safe calls, no allocation.
fn child_setup(runner: libc::pid_t, record: Option<&std::ffi::CStr>) -> std::io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: plain system calls on stack buffers and a C string that
    // outlives the call.
    unsafe {
        // Linux only; elsewhere the pid namespace or the runner's own
        // clean-up stops the command (README, known limits).
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != runner {
            libc::_exit(137);
        }
        let Some(path) = record else {
            return Ok(());
        };
        let mut line = [0u8; 48];
        let mut len = put_number(&mut line, 0, libc::getpid() as u64);
        line[len] = b' ';
        len += 1;
        let mut stat = [0u8; 1024];
        let fd = libc::open(
            c"/proc/self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            let n = libc::read(fd, stat.as_mut_ptr().cast(), stat.len());
            libc::close(fd);
            if n > 0 {
                if let Some(start) = start_time_field(&stat[..n as usize]) {
                    len = put_number(&mut line, len, start);
                }
            }
        }
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, line.as_ptr().cast(), len);
        let closed = libc::close(fd);
        if written != len as isize || closed != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes `n` in decimal at `at`; returns the end.
fn put_number(buf: &mut [u8], at: usize, mut n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 || count == digits.len() {
            break;
        }
    }
    let mut end = at;
    for d in digits[..count].iter().rev() {
        if end < buf.len() {
            buf[end] = *d;
            end += 1;
        }
    }
    end
}

/// Field 22 (start time) of a `/proc/<pid>/stat` line, without allocating.
fn start_time_field(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = stat.get(close + 2..)?;
    let field = rest.split(|b| *b == b' ').nth(19)?;
    let mut n: u64 = 0;
    for b in field.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// How a command is kept from outliving its run: a pid namespace whose
/// init is the command's wrapper, so when the command ends (or the runner
/// dies: the wrapper dies with its parent) the kernel kills everything left
/// in it, daemons that called `setsid` included.
#[derive(Debug, Clone, PartialEq)]
pub enum Containment {
    /// `bwrap --unshare-pid --die-with-parent` (works without root).
    Bwrap(Vec<String>),
    /// `unshare --pid --fork --kill-child` (as root, or with a user namespace).
    Unshare(Vec<String>),
    /// Neither works here: only the process group, which a `setsid` escapes.
    ProcessGroup,
}

impl Containment {
    pub fn prefix(&self) -> &[String] {
        match self {
            Containment::Bwrap(p) | Containment::Unshare(p) => p,
            Containment::ProcessGroup => &[],
        }
    }
}

/// The containment this machine allows, found once per process by trying.
pub fn containment() -> &'static Containment {
    static FOUND: std::sync::OnceLock<Containment> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        let owned = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let bwrap = owned(&[
            "bwrap",
            "--dev-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--unshare-pid",
            "--die-with-parent",
        ]);
        if works(&bwrap) {
            return Containment::Bwrap(bwrap);
        }
        for user in [false, true] {
            let mut unshare = owned(&["unshare"]);
            if user {
                unshare.extend(owned(&["--user", "--map-current-user"]));
            }
            unshare.extend(owned(&["--pid", "--fork", "--kill-child"]));
            if works(&unshare) {
                return Containment::Unshare(unshare);
            }
        }
        Containment::ProcessGroup
    })
}

fn works(prefix: &[String]) -> bool {
    let Some((program, args)) = prefix.split_first() else {
        return false;
    };
    Command::new(program)
        .args(args)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How long output is still awaited from processes that left the command's
/// process group once the command itself has exited.
const ESCAPED_GRACE: Duration = Duration::from_secs(1);

/// Process groups of the commands running now, for the interrupt handler.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Why this process is stopping early: 0 if it is not, a signal number, or
/// [`OUTPUT_CLOSED`]. The first reason wins.
static STOP: AtomicI32 = AtomicI32::new(0);
/// How many stopping signals arrived (a second Ctrl-C ends the process at once).
static SIGNALS: AtomicI32 = AtomicI32::new(0);
/// The latest of them.
static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Signals this close after the first are the same interrupt: the
/// terminal signals the whole foreground group, and `git` forwards the one
/// it got to `git-orch` too.
const SAME_INTERRUPT: Duration = Duration::from_millis(500);
const OUTPUT_CLOSED: i32 = -1;
const ABANDONED: i32 = -2;

/// Why a run stops before its work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Signal(i32),
    /// Standard output was closed (`git orch run | head -1`).
    OutputClosed,
    /// The plan was abandoned (`git orch abandon`) while it ran.
    Abandoned,
}

impl Stop {
    /// `interrupted (SIGINT)`, `output closed`: the reason recorded on the
    /// tasks it stopped.
    pub fn describe(&self) -> String {
        match self {
            Stop::Signal(sig) => format!("interrupted ({})", signal_name(*sig)),
            Stop::OutputClosed => "output closed".to_string(),
            Stop::Abandoned => "the plan was abandoned".to_string(),
        }
    }

    /// 128 + the signal, as a shell reports a process the signal ended; 1
    /// for a closed output (the work was not done).
    pub fn exit_code(&self) -> u8 {
        match self {
            Stop::Signal(sig) => u8::try_from(128 + sig).unwrap_or(1),
            Stop::OutputClosed | Stop::Abandoned => 1,
        }
    }
}

/// The error a command returns when it stopped for a [`Stop`]: it unwinds
/// like any other, and `main` exits with [`Stop::exit_code`].
#[derive(Debug)]
pub struct Stopped(pub Stop);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.describe())
    }
}

impl std::error::Error for Stopped {}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        other => format!("signal {other}"),
    }
}

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

/// Whether (and why) this process is stopping: every command it runs is
/// then killed, and no new one starts.
pub fn stop_requested() -> Option<Stop> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        OUTPUT_CLOSED => Some(Stop::OutputClosed),
        ABANDONED => Some(Stop::Abandoned),
        sig => Some(Stop::Signal(sig)),
    }
}

/// Asks every command started here to stop, and the run to wind down.
pub fn request_stop(stop: Stop) {
    let code = match stop {
        Stop::Signal(sig) => sig,
        Stop::OutputClosed => OUTPUT_CLOSED,
        Stop::Abandoned => ABANDONED,
    };
    let _ = STOP.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic operations: async-signal-safe.
    let _ = STOP.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    LAST_SIGNAL.store(sig, Ordering::SeqCst);
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// How long a run may take to wind down after a signal (its commands are
/// killed at once; what remains is recording them) before it is ended.
const WIND_DOWN: Duration = Duration::from_secs(20);

/// Makes SIGINT, SIGTERM and SIGHUP stop the run cleanly: every command
/// started here is killed at once (they run in their own process groups,
/// so a Ctrl-C on the terminal does not reach them), the runner records
/// the tasks it stopped and returns [`Stop`] as its outcome. A second
/// signal, or a wind-down that takes too long, ends the process at once
/// with 128 + the signal after `on_exit`; the claims it leaves are then
/// recovered by the next `run` or `resume`, as after a `kill -9`.
pub fn stop_commands_on_interrupt(on_exit: fn(i32)) {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        #[allow(unsafe_code)]
        // SAFETY: the handler only touches atomics.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    thread::spawn(move || {
        let mut since: Option<Instant> = None;
        let mut signals_then: Option<i32> = None;
        let mut killed = false;
        loop {
            if let Some(stop) = stop_requested() {
                if !killed {
                    killed = true;
                    let groups = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
                    for pgid in groups {
                        kill_group(pgid);
                    }
                }
                let since = *since.get_or_insert_with(Instant::now);
                if since.elapsed() >= SAME_INTERRUPT && signals_then.is_none() {
                    signals_then = Some(SIGNALS.load(Ordering::SeqCst));
                }
                // A signal while already stopping (after a closed output
                // too), or a signal's wind-down taking too long.
                let again = signals_then.is_some_and(|n| SIGNALS.load(Ordering::SeqCst) > n);
                let slow = matches!(stop, Stop::Signal(_)) && since.elapsed() > WIND_DOWN;
                if again || slow {
                    let groups = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
                    for pgid in groups {
                        kill_group(pgid);
                    }
                    let sig = LAST_SIGNAL.load(Ordering::SeqCst);
                    on_exit(sig);
                    std::process::exit(128 + sig);
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
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
    // SIGKILL is delivered asynchronously: wait a moment for the group to
    // go, so that what it held (an index lock) is free once this returns
    // (not long: where nothing reaps orphans, their zombies stay).
    let until = Instant::now() + Duration::from_millis(300);
    while group_exists(pgid) && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
}

fn group_exists(pgid: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0
}

// What the operating system answers lives in `crate::platform`; these
// names stay here, where the engine has always found them.
pub use crate::platform::{hostname, is_alive, kill_group, process_start_time};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_a_bounded_tail_and_says_what_was_cut() {
        let mut tail = Tail {
            bytes: Vec::new(),
            cut: 0,
        };
        let line = [b'a'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..100_000 {
            tail.push(&line);
            assert!(tail.bytes.len() <= 2 * LOG_TAIL + line.len());
        }
        tail.push(b"last\n");
        let log = tail.finish();
        let note_end = log.iter().position(|&b| b == b'\n').expect("note") + 1;
        let note = String::from_utf8_lossy(&log[..note_end]).into_owned();
        let cut: u64 = note
            .strip_prefix("[git-orch: ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{note}"));
        assert_eq!(cut + (log.len() - note_end) as u64, 10_000_005, "{note}");
        assert_eq!(cut % 100, 0, "cut at a line: {note}");
        assert!(log.ends_with(b"a\nlast\n"));
        assert!(log.len() <= LOG_TAIL + 200);
        let small = Tail {
            bytes: b"x\n".to_vec(),
            cut: 0,
        };
        assert_eq!(small.finish(), b"x\n");
    }
}
