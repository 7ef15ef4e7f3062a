//! A relay for git's `git://` connections (a `git daemon`), set as
//! `core.gitProxy` on the fetches and pushes of a shared plan.
//!
//! Why: every request/response turn of git's protocol over a bare TCP
//! socket stalls on the delayed-ACK timer (git sets no `TCP_NODELAY`, and
//! a small write waits for the ACK of the one before it): measured here,
//! 40 ms per turn, so an empty `git fetch` took 50 ms and a small one or a
//! `git push` 60 to 100 ms, against 10 to 20 ms without the stalls. A
//! shared run fetches and pushes around every claim and landing, so the
//! stalls were most of its time between tasks. The relay is this same
//! binary, started by git with the host and the port (`core.gitProxy`
//! runs `<command> <host> <port>`): it connects with `TCP_NODELAY`, copies
//! both ways as the bytes come, and acknowledges what it receives at once
//! (`TCP_QUICKACK` on Linux). git speaks the same protocol through it;
//! only the timing changes. ssh and https connections are not touched
//! (their clients set `TCP_NODELAY` themselves).
//!
//! A user's own proxy wins: `core.gitProxy` in any config file (git takes
//! the first value that matches a host, and the files are read before the
//! command line) or `GIT_PROXY_COMMAND`; `orch.relay = false` turns the
//! relay off.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;

/// Set on the git commands that may start the relay, so that the binary
/// knows, when git starts it with a host and a port, what it is for.
const MARK: &str = "GIT_ORCH_RELAY";

/// Sets the relay up on a `git fetch`/`push`/`ls-remote` command: `-c
/// core.gitProxy=<this binary>` before the subcommand (the caller puts
/// its subcommand after these), and the mark. Nothing when the user has
/// a proxy of their own or turned the relay off.
pub fn args(enabled: bool) -> Vec<String> {
    if !enabled || std::env::var_os("GIT_PROXY_COMMAND").is_some() {
        return Vec::new();
    }
    // This binary, looked up once per process.
    static EXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .filter(|p| p.is_file())
            .and_then(|p| p.to_str().map(str::to_string))
            // git reads `<command> for <domain>` in this key.
            .filter(|p| !p.contains(" for "))
    });
    match exe {
        Some(exe) => vec!["-c".into(), format!("core.gitProxy={exe}")],
        None => Vec::new(),
    }
}

/// Marks a command that [`args`] set up.
pub fn mark(cmd: &mut Command) {
    cmd.env(MARK, "1");
}

/// When git started this binary as the relay: the host and the port.
pub fn invoked() -> Option<(String, u16)> {
    std::env::var_os(MARK)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [host, port] => Some((host.clone(), port.parse().ok()?)),
        _ => None,
    }
}

/// Connects to `host:port` and copies git's stdin to the socket and the
/// socket to git's stdout until both ends are done. Exit code 1 (with a
/// line git shows) when the server cannot be reached.
pub fn run(host: &str, port: u16) -> u8 {
    let socket = match TcpStream::connect((host, port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fatal: unable to connect to {host}:{port}: {e}");
            return 1;
        }
    };
    let _ = socket.set_nodelay(true);
    crate::platform::quick_ack(socket.as_raw_fd());
    let Ok(mut upstream) = socket.try_clone() else {
        eprintln!("fatal: cannot relay the connection to {host}:{port}");
        return 1;
    };
    // git's requests: sent as they come; the end of them ends our half.
    std::thread::spawn(move || {
        pump(&mut std::io::stdin().lock(), &mut upstream, || {});
        let _ = upstream.shutdown(Shutdown::Write);
    });
    // The server's answers, acknowledged at once, until it closes.
    let mut downstream = socket;
    let fd = downstream.as_raw_fd();
    pump(&mut downstream, &mut std::io::stdout().lock(), || {
        crate::platform::quick_ack(fd)
    });
    0
}

/// Copies `from` to `to` as the bytes come (each read written and flushed
/// at once), calling `after_read` after every read, until either end is
/// done.
fn pump(from: &mut impl Read, to: &mut impl Write, after_read: impl Fn()) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return,
            Ok(n) => {
                after_read();
                if to.write_all(&buf[..n]).is_err() || to.flush().is_err() {
                    return;
                }
            }
        }
    }
}
