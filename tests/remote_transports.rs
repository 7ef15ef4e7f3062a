//! One plan, many machines, over the transports people use (issue 22):
//! besides `git daemon` and `file://` (tests/remote.rs), a real OpenSSH
//! `sshd` and smart HTTP (`git http-backend` behind lighttpd, with basic
//! auth), each on 127.0.0.1 with its own config, keys and password made
//! for the test. Three runners land every task exactly once. A server that
//! cannot start makes its test print a loud `SKIP` saying why (`.ci/run`
//! installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::remote::{
    assert_landed_once, assert_no_overlap, free_port, grouped_plan, start_shared,
    trust_on_the_others, wait_ok, Cluster, Served,
};

/// A server process, killed when dropped (also when a test panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip(transport: &str, why: &str) {
    eprintln!("SKIP: the {transport} test did not run: {why}");
    println!("SKIP: the {transport} test did not run: {why}");
}

/// Runs `program` with `args`; its stderr when it fails or cannot start.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `{program}`: {e}")),
    }
}

/// Starts `cmd` and waits until `ready` says it serves; the child's log
/// is `log`. `None` when it exited first or never answered.
fn start_until(mut cmd: Command, log: &Path, ready: impl Fn() -> bool) -> Option<Server> {
    let out = std::fs::File::create(log).ok()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().ok()?)
        .stderr(out)
        .spawn()
        .ok()?;
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            return None;
        }
        if ready() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn user() -> Result<String, String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| format!("cannot run `id -un`: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `sshd` from OpenSSH on 127.0.0.1, run in the foreground with its own
/// config, host key and a throwaway client key; the clones reach it with
/// `core.sshCommand` (what `GIT_SSH_COMMAND` sets), as this user.
fn serve_ssh(base: &Path, bare: &Path) -> Result<Served, String> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err("no /usr/sbin/sshd (Debian: apt-get install openssh-server)".into());
    }
    let dir = base.join("ssh");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = |name: &str| dir.join(name).display().to_string();
    for name in ["host_key", "client_key"] {
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", &key(name)],
        )?;
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    // sshd's privilege separation directory (made by the package's
    // service, which is not running here).
    let _ = std::fs::create_dir_all("/run/sshd");
    let user = user()?;
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
                 PidFile {pid}\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\n",
                host = key("host_key"),
                auth = key("authorized_keys"),
                pid = key("sshd.pid"),
            ),
        )
        .map_err(|e| e.to_string())?;
        let ssh = format!(
            "ssh -i {} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            key("client_key")
        );
        let url = format!("ssh://{user}@127.0.0.1{}", bare.display());
        let mut cmd = Command::new(sshd);
        cmd.args(["-D", "-e", "-f", &config.display().to_string()]);
        let ready = || {
            Command::new("git")
                .args(["ls-remote", &url])
                .env("GIT_SSH_COMMAND", &ssh)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if let Some(server) = start_until(cmd, &dir.join("sshd.log"), ready) {
            return Ok(Served {
                url,
                config: vec![("core.sshCommand".into(), ssh)],
                guard: Box::new(server),
            });
        }
    }
    Err(format!(
        "sshd did not serve on 127.0.0.1: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    ))
}

/// lighttpd from Debian on 127.0.0.1 running `git http-backend` as CGI
/// under `/git/`, behind basic auth (user `orch`, password `secret`).
fn serve_http(repo: &TestRepo, base: &Path) -> Result<Served, String> {
    let lighttpd = ["/usr/sbin/lighttpd", "/usr/local/sbin/lighttpd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("no lighttpd (Debian: apt-get install lighttpd)")?;
    let backend = PathBuf::from(repo.git(&["--exec-path"]).trim()).join("git-http-backend");
    if !backend.exists() {
        return Err(format!("no {}", backend.display()));
    }
    let git_bin = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map_err(|e| e.to_string())?;
    let git_dir = Path::new(&git_bin)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let dir = base.join("http");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("users"), "orch:secret\n").map_err(|e| e.to_string())?;
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join("lighttpd.conf");
        std::fs::write(
            &config,
            format!(
                r#"server.document-root = "{www}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "{dir}/error.log"
server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_setenv", "mod_cgi")
auth.backend = "plain"
auth.backend.plain.userfile = "{dir}/users"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.set-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "1", "PATH" => "{git_dir}:/usr/bin:/bin")
}}
"#,
                www = www.display(),
                dir = dir.display(),
                backend = backend.display(),
                base = base.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let url = format!("http://orch:secret@127.0.0.1:{port}/git/server.git");
        let mut cmd = Command::new(&lighttpd);
        cmd.args(["-D", "-f", &config.display().to_string()]);
        let ready = || {
            Command::new("git")
                .args(["ls-remote", &url])
                .env("GIT_TERMINAL_PROMPT", "0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if let Some(server) = start_until(cmd, &dir.join("lighttpd.log"), ready) {
            return Ok(Served {
                url,
                config: Vec::new(),
                guard: Box::new(server),
            });
        }
    }
    Err(format!(
        "lighttpd did not serve on 127.0.0.1: {}{}",
        std::fs::read_to_string(dir.join("lighttpd.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    ))
}

/// Three runners share a 12-task plan through `cluster`: every task lands
/// once, no two overlapping tasks run at once, the server's repository
/// and every clone pass `git fsck`.
fn three_runners_land_every_task_once(cluster: &Cluster) {
    let log = cluster.clones[0].scratch().join("ran.log");
    start_shared(cluster, &grouped_plan(12, &log));
    trust_on_the_others(cluster);
    let runners = (0..3)
        .map(|i| cluster.spawn_run(i, &["--lease", "5", "-j", "1"]))
        .collect();
    wait_ok(runners);
    assert_landed_once(cluster, 12);
    let machines = assert_no_overlap(&log, 12);
    assert!(!machines.is_empty());
    let fsck = cluster.clones[0]
        .command("git", &cluster.bare)
        .args(["fsck", "--strict"])
        .output()
        .expect("git fsck on the server");
    assert!(fsck.status.success(), "server fsck: {}", both(&fsck));
}

#[test]
fn three_machines_over_a_real_sshd_land_every_task_once() {
    let mut why = String::new();
    let cluster = Cluster::serve(3, |_, base, bare| {
        serve_ssh(base, bare).map_err(|e| why = e).ok()
    });
    let Some(cluster) = cluster else {
        return skip("ssh", &why);
    };
    assert!(cluster.url.starts_with("ssh://"), "{}", cluster.url);
    three_runners_land_every_task_once(&cluster);
}

#[test]
fn three_machines_over_smart_http_with_basic_auth_land_every_task_once() {
    let mut why = String::new();
    let cluster = Cluster::serve(3, |first, base, _| {
        serve_http(first, base).map_err(|e| why = e).ok()
    });
    let Some(cluster) = cluster else {
        return skip("smart HTTP", &why);
    };
    // The password is needed: without it the server refuses.
    let anonymous = cluster.url.replace("orch:secret@", "");
    let c = &cluster.clones[0];
    let out = c
        .command("git", &c.path)
        .args(["ls-remote", &anonymous])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git ls-remote");
    assert!(!out.status.success(), "anonymous access must be refused");
    three_runners_land_every_task_once(&cluster);
}
