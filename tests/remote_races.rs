//! Lost races on a shared plan's remote are backed off and counted (issue
//! 22): in `run --json` (`lost_races`), the end-of-run line and
//! `ORCH_TRACE`. The race is made, not hoped for: the first clone's
//! `remote.origin.receivepack` is a wrapper that, on its first push, lets
//! the other clone change the plan on the server before the push goes on,
//! so that push's lease on the state is stale.

use std::process::Stdio;

use crate::common::*;
use crate::remote::{finish, grouped_plan, start_shared, trust_on_the_others, Cluster};

#[test]
fn a_claim_that_loses_its_race_on_the_remote_is_made_again_and_counted() {
    let cluster = Cluster::new(2, false);
    let log = cluster.clones[0].scratch().join("ran.log");
    start_shared(&cluster, &grouped_plan(4, &log));
    trust_on_the_others(&cluster);
    let (m0, m1) = (&cluster.clones[0], &cluster.clones[1]);
    let flag = m0.scratch().join("raced");
    let wrapper = m0.scratch().join("receive-pack");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             if [ ! -e {flag} ]; then\n\
               touch {flag}\n\
               ( unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX GIT_QUARANTINE_PATH\n\
                 cd {m1} && {bin} task skip t3 --plan p && {bin} sync p --remote origin ) >{flag}.log 2>&1\n\
             fi\n\
             exec git-receive-pack \"$@\"\n",
            flag = flag.display(),
            m1 = m1.path.display(),
            bin = BIN,
        ),
    )
    .expect("write the wrapper");
    m0.command("chmod", &m0.path)
        .args(["+x", &wrapper.display().to_string()])
        .status()
        .expect("chmod");
    m0.git(&[
        "config",
        "remote.origin.receivepack",
        &wrapper.display().to_string(),
    ]);

    let child = m0
        .command(BIN, &m0.path)
        .args(["run", "p", "--remote", "origin", "--lease", "5", "--json"])
        .env("ORCH_TRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a runner");
    let out = finish(child, 120);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let side = std::fs::read_to_string(format!("{}.log", flag.display())).unwrap_or_default();
    assert!(flag.exists(), "the wrapper ran: {}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run --json");
    let lost = doc["lost_races"].as_u64().expect("lost_races");
    assert!(lost >= 1, "the claim lost its race once: {doc}\n{side}");
    let err = stderr(&out);
    assert_eq!(
        err.matches("trace: lost race").count() as u64,
        lost,
        "each lost race traced: {err}"
    );
    assert!(
        err.contains(&format!(
            "shared through origin: {lost} lost race(s) on the remote"
        )),
        "{err}"
    );
    // The claim was made again: every task but the skipped one landed.
    m0.orch_ok(&["sync", "p", "--remote", "origin"]);
    let st = status_json(m0);
    for t in ["t0", "t1", "t2"] {
        assert_eq!(task_state(&st, t), "done", "{st}");
    }
    assert_eq!(task_state(&st, "t3"), "skipped");
    m0.fsck();
}
