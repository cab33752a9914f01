//! `power-loss`: SIGKILL a set of nodes (leaning toward the leader) *and* lose every write they
//! had not fsynced, then restart them from what is left when the fault stops.
//!
//! SIGKILL alone keeps the page cache: a node that skips fsync, or replies before it, loses
//! nothing to `kill`. With `power-loss` among the nemeses every node runs with the
//! `faultline-powerloss` shim preloaded (`LD_PRELOAD`, composed with libfaketime when the clock
//! nemesis is on too). The shim keeps `nodes/<id>/.durable/`, a shadow of the data directory
//! holding only what fsync made durable (see `powerloss/src/lib.rs` for the exact rules on
//! ranges, renames and directory fsync). This fault kills the node, replaces its data directory
//! with the shadow, and records what was lost.
//!
//! Why a shim and not a FUSE file system: a FUSE mount needs `/dev/fuse`, `fusermount` and
//! usually root; the shim needs nothing but a dynamically linked node (Rust's std calls libc's
//! `open64`, `write`, `fsync`, ... through the dynamic linker). It does not see `mmap` writes, static
//! binaries or raw system calls (Go's runtime): for such nodes `power-loss` loses nothing more
//! than `kill`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Errors, Fault, Step};
use crate::run::nemesis::{plan, Nemesis};

/// The shim's file name (`cargo build --release` puts it next to `faultline`).
pub const LIB_NAME: &str = "libfaultline_powerloss.so";
/// The message when the shim cannot be found.
pub const MISSING: &str = "--nemesis power-loss: the power-loss shim (libfaultline_powerloss.so) was not found next to faultline; \
build it with `cargo build --release -p faultline-powerloss` (or `cargo build --release --workspace`), or name it with FAULTLINE_POWERLOSS_LIB";

/// Where the shim lives: `FAULTLINE_POWERLOSS_LIB`, else next to the running `faultline`
/// binary (or one directory up, for test binaries in `deps/`).
pub fn find_lib() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_POWERLOSS_LIB") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(LIB_NAME), dir.parent()?.join(LIB_NAME)].into_iter().find(|p| p.is_file())
}

/// The shadow directory of a node's data directory: `<data dir>/../.durable`.
pub fn shadow_dir(data_dir: &Path) -> PathBuf {
    data_dir.parent().unwrap_or(Path::new(".")).join(".durable")
}

/// Adds the shim to a node's environment: its `LD_PRELOAD` entry (after any already there,
/// e.g. libfaketime's: the two interpose different functions) and the directories it watches,
/// made absolute so the node's working directory does not matter.
pub fn add_env(env: &mut Vec<(String, String)>, lib: &Path, data_dir: &Path) {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let lib = abs(lib);
    match env.iter_mut().find(|(k, _)| k == "LD_PRELOAD") {
        Some((_, v)) if !v.is_empty() => *v = format!("{v}:{lib}"),
        Some((_, v)) => *v = lib,
        None => env.push(("LD_PRELOAD".into(), lib)),
    }
    env.push(("FAULTLINE_POWERLOSS_DIR".into(), abs(data_dir)));
    env.push(("FAULTLINE_POWERLOSS_SHADOW".into(), abs(&shadow_dir(data_dir))));
}

/// What a restore changed, for the history.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Files that vanished (their name was never durable).
    pub vanished: Vec<String>,
    /// Files that came back shorter or with other bytes.
    pub changed: Vec<String>,
    /// Bytes that were in the data directory and are not after the restore.
    pub bytes_lost: u64,
}

impl Loss {
    pub fn json(&self) -> Value {
        json!({"vanished": self.vanished, "changed": self.changed, "bytes_lost": self.bytes_lost})
    }
}

fn files(dir: &Path, prefix: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let rel = prefix.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            files(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Replaces the data directory of a node that is no longer running with its shadow: what a
/// power loss at this instant would have left. Fails, touching nothing, when there is no shadow
/// (the shim was not loaded).
pub fn restore(data_dir: &Path) -> io::Result<Loss> {
    let shadow = shadow_dir(data_dir);
    if !shadow.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no shadow at {}: was the node started with the power-loss shim preloaded?", shadow.display()),
        ));
    }
    let mut loss = Loss::default();
    let mut present = Vec::new();
    files(data_dir, Path::new(""), &mut present)?;
    present.sort();
    for rel in &present {
        let now = fs::read(data_dir.join(rel)).unwrap_or_default();
        match fs::read(shadow.join(rel)) {
            Err(_) => {
                loss.vanished.push(rel.display().to_string());
                loss.bytes_lost += now.len() as u64;
            }
            Ok(durable) if durable != now => {
                loss.changed.push(rel.display().to_string());
                let common = now.iter().zip(&durable).take_while(|(a, b)| a == b).count();
                loss.bytes_lost += (now.len() - common) as u64;
            }
            Ok(_) => {}
        }
    }
    if data_dir.exists() {
        fs::remove_dir_all(data_dir)?;
    }
    copy_tree(&shadow, data_dir)?;
    Ok(loss)
}

#[derive(Default)]
pub struct PowerLoss {
    nodes: Vec<String>,
}

impl Fault for PowerLoss {
    fn name(&self) -> &'static str {
        "power-loss"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            self.nodes = plan::targets(&mut n.rng, &n.cluster.ids(), leader.as_deref());
            let mut errors = Errors::default();
            let mut lost = serde_json::Map::new();
            for id in &self.nodes {
                let killed = n.cluster.kill(id);
                let ok = killed.is_ok();
                errors.note(killed);
                if !ok {
                    continue;
                }
                let Some(dir) = n.cluster.data_dir(id) else { continue };
                match restore(&dir) {
                    Ok(loss) => {
                        lost.insert(id.clone(), loss.json());
                    }
                    Err(e) => errors.note::<()>(Err(anyhow::anyhow!("power loss of {id}: {e}"))),
                }
            }
            n.event("power-loss", "power-loss", "start", json!({"nodes": self.nodes, "leader": leader, "lost": lost, "errors": errors.json()}));
            errors.into_result("power loss")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.restart(id).await);
            }
            n.event("restart", "power-loss", "stop", json!({"nodes": self.nodes, "errors": errors.json()}));
            errors.into_result("restarting")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_replaces_the_data_dir_with_its_shadow_and_counts_the_loss() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("n1").join("data");
        let shadow = shadow_dir(&data);
        fs::create_dir_all(&data).unwrap();
        fs::create_dir_all(&shadow).unwrap();
        fs::write(data.join("log-log"), b"AAAABBB").unwrap();
        fs::write(shadow.join("log-log"), b"AAAA").unwrap();
        fs::write(data.join("file-meta"), b"same").unwrap();
        fs::write(shadow.join("file-meta"), b"same").unwrap();
        fs::write(data.join("file-new"), b"never synced").unwrap();
        let loss = restore(&data).unwrap();
        assert_eq!(loss.vanished, vec!["file-new"]);
        assert_eq!(loss.changed, vec!["log-log"]);
        assert_eq!(loss.bytes_lost, 3 + 12);
        assert_eq!(fs::read(data.join("log-log")).unwrap(), b"AAAA");
        assert!(!data.join("file-new").exists());
        assert!(shadow.join("log-log").exists(), "the shadow stays");
    }

    #[test]
    fn restore_without_a_shadow_touches_nothing() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("n1").join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("x"), b"keep").unwrap();
        assert!(restore(&data).is_err());
        assert_eq!(fs::read(data.join("x")).unwrap(), b"keep");
    }

    #[test]
    fn env_composes_ld_preload() {
        let mut env = vec![("LD_PRELOAD".to_string(), "/lib/libfaketimeMT.so.1".to_string())];
        add_env(&mut env, Path::new("/x/libfaultline_powerloss.so"), Path::new("/r/nodes/n1/data"));
        assert_eq!(env[0].1, "/lib/libfaketimeMT.so.1:/x/libfaultline_powerloss.so");
        assert!(env.contains(&("FAULTLINE_POWERLOSS_SHADOW".to_string(), "/r/nodes/n1/.durable".to_string())));
        let mut env = Vec::new();
        add_env(&mut env, Path::new("/x/l.so"), Path::new("/d/data"));
        assert_eq!(env[0], ("LD_PRELOAD".to_string(), "/x/l.so".to_string()));
    }
}
