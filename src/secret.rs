//! The repository's secret: 32 random bytes in `<git-common-dir>/orch/secret`
//! (mode 0600), made on first use, never committed and never pushed. What
//! git-orch writes into the state branch that a task must not be able to
//! forge (the gate cache) is keyed with an HMAC of it: a task can write any
//! blob into the state branch, but cannot compute the key without reading
//! the secret, which the sandbox (`isolation = "sandbox"`) hides from it.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::git::Repo;

const LEN: usize = 32;

pub fn secret_file(repo: &Repo) -> PathBuf {
    repo.orch_dir().join("secret")
}

/// The secret, made if there is none yet (two processes making it at once
/// agree: it is written aside and linked into place, never overwritten).
pub fn load(repo: &Repo) -> Result<Vec<u8>> {
    let file = secret_file(repo);
    if let Some(key) = read(&file)? {
        return Ok(key);
    }
    let dir = repo.orch_dir_created()?;
    let mut key = vec![0u8; LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut r| r.read_exact(&mut key))
        .context("cannot read /dev/urandom for the repository's secret")?;
    // Unique to this process and call: threads of one runner race here too.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let aside = dir.join(format!("secret.{}.{call}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&aside);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .with_context(|| format!("cannot write `{}`", aside.display()))?;
    out.write_all(&key)?;
    out.sync_all()?;
    drop(out);
    let linked = std::fs::hard_link(&aside, &file);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&file)?.ok_or_else(|| anyhow!("`{}` vanished", file.display()))
        }
        Err(e) => Err(anyhow!("cannot write `{}`: {e}", file.display())),
    }
}

fn read(file: &std::path::Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(file) {
        Ok(key) if key.len() == LEN => Ok(Some(key)),
        Ok(_) => Err(anyhow!(
            "`{}` is not a git-orch secret ({LEN} bytes); remove it and git-orch makes a new one \
             (cached gate results are then run again)",
            file.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read `{}`: {e}", file.display())),
    }
}

/// HMAC-SHA-256 of the parts (each length-prefixed, so no two lists of
/// parts give the same input), as hex.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mac;

    #[test]
    fn the_mac_depends_on_the_key_and_on_how_parts_split() {
        let a = mac(b"k1", &[b"ab", b"c"]);
        assert_eq!(a.len(), 64);
        assert_eq!(a, mac(b"k1", &[b"ab", b"c"]));
        assert_ne!(a, mac(b"k2", &[b"ab", b"c"]));
        assert_ne!(a, mac(b"k1", &[b"a", b"bc"]));
    }
}
