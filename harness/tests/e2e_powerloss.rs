//! The power-loss nemesis: the `faultline-powerloss` shim keeps only what fsync made durable, and
//! the harness restores exactly that.
//!
//! - The shim on its own: a child process (this test binary again, with the shim preloaded)
//!   writes A, fsyncs, writes B without an fsync, creates files it never fsyncs, renames; after
//!   SIGKILL the harness's restore leaves A only, and the rename rules of the shim's model.
//! - End to end: raft with `--bug no-fsync` is caught under `--nemesis power-loss` (exit 1) on a
//!   fixed seed, and the unmodified nodes stay valid (exit 0) on the same seed.
//!
//! Release build in CI: `cargo test --release -p faultline --test e2e_powerloss`.

mod common;
use common::*;

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use faultline::run::faults::power;

/// The shim, built (or brought up to date) once, next to `faultline`.
fn shim() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            node_bin(); // the workspace binaries first, with the usual selection
            let exe = faultline();
            let profile_dir = exe.parent().unwrap().to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "faultline-powerloss"]);
            if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
                cmd.arg("--release");
            }
            cmd.env("CARGO_TARGET_DIR", profile_dir.parent().unwrap()).current_dir(env!("CARGO_MANIFEST_DIR"));
            assert!(cmd.status().expect("running cargo").success(), "building the power-loss shim failed");
            let lib = profile_dir.join(power::LIB_NAME);
            assert!(lib.is_file(), "{} missing after the build", lib.display());
            lib
        })
        .clone()
}

const CHILD_ENV: &str = "FAULTLINE_TEST_POWERLOSS_CHILD";

/// Not a test of its own: the body of the child process [`shim_keeps_only_what_was_fsynced`]
/// starts. Without the variable it does nothing.
#[test]
fn powerloss_child_writer() {
    let Some(root) = std::env::var_os(CHILD_ENV) else { return };
    let root = PathBuf::from(root);
    let data = root.join("data");
    let sync_dir = || fs::File::open(&data).unwrap().sync_all().unwrap();
    // A log: A fsynced, then B not.
    let mut log = fs::OpenOptions::new().create(true).append(true).open(data.join("log")).unwrap();
    log.write_all(b"AAAA").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"BBBB").unwrap();
    // Written through one descriptor, fsynced through another (opened after the first closed),
    // then truncated and fsynced again: the shorter content is durable.
    fs::write(data.join("short"), b"0123456789").unwrap();
    let f = fs::OpenOptions::new().write(true).open(data.join("short")).unwrap();
    f.sync_all().unwrap();
    f.set_len(3).unwrap();
    f.sync_data().unwrap();
    drop(f);
    // An atomic replace done right: tmp, fsync, rename, fsync of the directory.
    let mut tmp = fs::File::create(data.join("meta.tmp")).unwrap();
    tmp.write_all(b"meta-1").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(data.join("meta.tmp"), data.join("meta")).unwrap();
    sync_dir();
    // From here on nothing is fsynced. A replace without fsyncs: the rename is never durable.
    let mut tmp = fs::File::create(data.join("meta.tmp")).unwrap();
    tmp.write_all(b"meta-2").unwrap();
    drop(tmp);
    fs::rename(data.join("meta.tmp"), data.join("meta")).unwrap();
    // A file created and written: it vanishes.
    let mut never = fs::OpenOptions::new().create(true).write(true).mode(0o644).open(data.join("never")).unwrap();
    never.write_all(b"lost").unwrap();
    fs::write(root.join("ready"), b"1").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn shim_keeps_only_what_was_fsynced() {
    let lib = shim();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    fs::create_dir_all(&data).unwrap();
    // A file from before the start counts as durable (the shadow starts from the files).
    fs::write(data.join("old"), b"from an earlier life").unwrap();
    let mut env = Vec::new();
    power::add_env(&mut env, &lib, &data);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "powerloss_child_writer", "--nocapture", "--test-threads", "1"]).env(CHILD_ENV, root.path());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().expect("starting the child");
    let ready = wait_until(Duration::from_secs(30), || root.path().join("ready").exists());
    // SIGKILL, as the nemesis does: nothing of the child's runs after this.
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the child never finished writing");
    let before: Vec<u8> = fs::read(data.join("log")).unwrap();
    assert_eq!(before, b"AAAABBBB", "the page cache holds everything before the power loss");
    let loss = power::restore(&data).expect("restore");
    assert_eq!(fs::read(data.join("log")).unwrap(), b"AAAA", "only the fsynced write survives");
    assert_eq!(fs::read(data.join("meta")).unwrap(), b"meta-1", "the unsynced rename is undone");
    assert!(!data.join("never").exists(), "a file never fsynced, with no fsync after its creation, vanishes");
    assert!(!data.join("meta.tmp").exists(), "the first tmp was renamed durably; the second never had a durable name");
    assert_eq!(fs::read(data.join("short")).unwrap(), b"012", "a durable truncation");
    assert_eq!(fs::read(data.join("old")).unwrap(), b"from an earlier life");
    assert!(loss.vanished.contains(&"never".to_string()), "{loss:?}");
    assert!(loss.changed.contains(&"log".to_string()) && loss.changed.contains(&"meta".to_string()), "{loss:?}");
    // Counted from the first byte that differs: 4 of the log, 1 of meta (`meta-2` to `meta-1`), 4 of `never`.
    assert_eq!(loss.bytes_lost, 4 + 1 + 4, "{loss:?}");
}

#[test]
fn the_reference_node_calls_libc_dynamically() {
    // The shim can only see calls that go through the dynamic linker.
    let Ok(out) = Command::new("ldd").arg(node_bin()).output() else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libc.so"), "faultline-node is not linked against libc dynamically:\n{text}");
}

fn raft_power_loss(seed: &str, bug: bool) -> Run {
    shim();
    let mut args = vec![
        "--protocol", "raft", "--workload", "append", "--nemesis", "power-loss", "--nodes", "3", "--seed", seed,
        "--time-limit", "6", "--nemesis-interval", "1", "--rate", "150", "--concurrency", "10",
    ];
    if bug {
        args.extend(["--node-arg=--bug", "--node-arg=no-fsync"]);
    }
    faultline_test(&args)
}

/// Seed 1: a power loss of the whole cluster while it runs without fsync loses acknowledged
/// appends, which linearizable and agreement both see.
const SEED: &str = "1";

#[test]
fn power_loss_catches_a_node_that_never_fsyncs() {
    let _g = serial();
    let run = raft_power_loss(SEED, true);
    assert_eq!(run.code, 1, "no-fsync under power-loss must be caught\n{}", run.explain());
    let results = run.results.as_ref().expect("results.json");
    assert_eq!(results["checkers"]["linearizable"]["valid"], false, "{}", run.explain());
    let fs = run.nemesis_fs();
    assert!(fs.iter().any(|f| f == "power-loss"), "{fs:?}");
    // The history says what each power loss took.
    let text = fs::read_to_string(history(run.run_dir.as_ref().unwrap())).unwrap();
    let lost = text.lines().filter(|l| l.contains("\"f\":\"power-loss\"")).any(|l| l.contains("\"bytes_lost\":") && !l.contains("\"bytes_lost\":0,"));
    assert!(lost, "some power loss lost bytes");
}

#[test]
fn unmodified_nodes_survive_power_loss() {
    let _g = serial();
    let run = raft_power_loss(SEED, false);
    assert_valid_with_faults(&run, &["power-loss", "restart"]);
}

#[test]
fn power_loss_without_the_shim_is_a_usage_error() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(faultline())
        .args(["test", "--protocol", "raft", "--nemesis", "power-loss", "--time-limit", "1", "--node-bin"])
        .arg(node_bin())
        .arg("--results")
        .arg(results.path())
        .env("FAULTLINE_POWERLOSS_LIB", Path::new("/nonexistent/libfaultline_powerloss.so"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("faultline-powerloss"));
}
