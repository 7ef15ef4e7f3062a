//! What git-orch asks the operating system: a process's start time (so a
//! recycled pid is not mistaken for the process that had it), the host
//! name, whether a process is alive, and signals to a process group. One
//! implementation per system, chosen at compile time: `linux.rs` (`/proc`)
//! and `macos.rs` (`proc_pidinfo`, `gethostname`). The signal calls are
//! POSIX and shared. Only Linux is built and tested here; the macOS code is
//! written against libc's documented API (see the README).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as os;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!(
    "git-orch knows how to tell a live process from a recycled pid on Linux and macOS only"
);

/// The kernel's start time of a process, in a unit of the system's own
/// (only ever compared with another value from this function on the same
/// host); `None` if there is no such process or it cannot be read.
pub fn process_start_time(pid: u32) -> Option<u64> {
    os::process_start_time(pid)
}

/// This machine's name, for the claims a runner writes.
pub fn hostname() -> String {
    os::hostname()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process with this pid exists (and, when given, started at
/// `start_time`, so a recycled pid does not count).
pub fn is_alive(pid: u32, start_time: Option<u64>) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if !signal_reaches(pid_t) {
        return false;
    }
    match (start_time, process_start_time(pid)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    }
}

/// kill(pid, 0): whether the process exists (a process of another user
/// answers EPERM, and exists too).
fn signal_reaches(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes plain integers and has no memory effects;
    // signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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

/// Acknowledges a TCP socket's received data right away (see
/// `crate::git::relay`); nothing where the system has no such switch.
pub fn quick_ack(fd: std::os::fd::RawFd) {
    os::quick_ack(fd)
}
