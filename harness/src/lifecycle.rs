//! One cleanup path for every way a `faultline` process can end: normally, on an error, on a
//! second Ctrl-C, by the watchdog, by a panic, or by SIGKILL.
//!
//! Four mechanisms work together:
//! - **Process groups, registered.** Every node runs in its own process group, and the group is
//!   registered here while it may be alive, so [`kill_everything`] can SIGKILL each group —
//!   including grandchildren a `--node-bin` wrapper script started without `exec`, which
//!   `PR_SET_PDEATHSIG` (aimed at the direct child only) would miss.
//! - **Child subreaper.** The harness marks itself `PR_SET_CHILD_SUBREAPER`: a node orphaned by
//!   its wrapper is re-parented to the harness rather than to init, so [`kill_descendants`] finds
//!   it through `/proc` and reaps it before the harness exits.
//! - **A guardian process** (`faultline __guard`, started first) that outlives nothing but the
//!   harness: it reads `+PGID` / `-PGID` lines on its stdin, and when that pipe reaches end of
//!   file — the harness is gone, even by SIGKILL — it SIGKILLs every group still registered. It
//!   sits in a process group of its own and ignores terminal signals, so a Ctrl-C or a CI job
//!   killing the harness's group cannot take it down first.
//! - **Signals, handled until exit** on a dedicated thread: the first SIGINT/SIGTERM asks the
//!   run to stop (heal, read, check, write results, marked interrupted); a second one kills every
//!   node, writes what it can and exits, in any phase.
//!
//! libfaketime leaves `/dev/shm/faketime_*` behind when a process dies by SIGKILL;
//! [`sweep_faketime_shm`] removes those of processes that no longer exist.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The hidden subcommand that runs the guardian.
pub const GUARD_ARG: &str = "__guard";

/// Process groups of nodes that may still be alive.
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// The guardian's stdin and the guardian itself (its pid is excluded from [`kill_descendants`]).
static GUARDIAN: OnceLock<Mutex<Option<(ChildStdin, Child)>>> = OnceLock::new();
/// What to do in an emergency exit after the nodes are dead (write results of an aborted run).
static ON_ABORT: Mutex<Option<Box<dyn Fn(&str) + Send>>> = Mutex::new(None);

/// Why the run stopped early: 0 not interrupted, else the signal number.
static INTERRUPTED: AtomicU8 = AtomicU8::new(0);
/// A watchdog expiry is recorded as this pseudo signal number.
const WATCHDOG: u8 = 255;

/// Marks this process a child subreaper (Linux); orphaned descendants come back to it.
pub fn become_subreaper() {
    // SAFETY: a plain prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Starts the guardian (see the module documentation). Best effort: without it the other
/// mechanisms still cover every exit but SIGKILL of the harness.
pub fn start_guardian() {
    let Ok(exe) = std::env::current_exe() else { return };
    let spawned = Command::new(exe).arg(GUARD_ARG).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit()).process_group(0).spawn();
    if let Ok(mut child) = spawned {
        if let Some(stdin) = child.stdin.take() {
            let _ = GUARDIAN.set(Mutex::new(Some((stdin, child))));
        }
    }
}

fn tell_guardian(line: &str) {
    let Some(g) = GUARDIAN.get() else { return };
    if let Ok(mut g) = g.lock() {
        if let Some((stdin, _)) = g.as_mut() {
            let _ = writeln!(stdin, "{line}").and_then(|_| stdin.flush());
        }
    }
}

fn guardian_pid() -> Option<i32> {
    let g = GUARDIAN.get()?.lock().ok()?;
    g.as_ref().map(|(_, c)| c.id() as i32)
}

/// Registers a node's process group (call right after spawning it).
pub fn register_group(pgid: i32) {
    if let Ok(mut g) = GROUPS.lock() {
        g.insert(pgid);
    }
    tell_guardian(&format!("+{pgid}"));
}

/// Forgets a process group once it is known dead.
pub fn unregister_group(pgid: i32) {
    if let Ok(mut g) = GROUPS.lock() {
        g.remove(&pgid);
    }
    tell_guardian(&format!("-{pgid}"));
}

/// SIGKILLs every registered group (paused members die too: SIGKILL needs no SIGCONT).
pub fn kill_groups() {
    let groups: Vec<i32> = GROUPS.lock().map(|g| g.iter().copied().collect()).unwrap_or_default();
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// The direct children of `pid`, read from `/proc`.
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // The command name in parentheses may contain spaces; fields resume after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut fields = rest.split_whitespace();
        let (_state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse::<i32>().ok()));
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Kills and reaps every child of this process but the guardian (and, through the subreaper,
/// every orphaned grandchild), with their process groups. Bounded: gives up after ~2 s.
pub fn kill_descendants() {
    let me = std::process::id() as i32;
    let guardian = guardian_pid();
    for _ in 0..40 {
        let kids: Vec<i32> = children_of(me).into_iter().filter(|p| Some(*p) != guardian).collect();
        if kids.is_empty() {
            return;
        }
        for pid in kids {
            if let Ok(pgid) = nix::unistd::getpgid(Some(Pid::from_raw(pid))) {
                // Never our own group: that would kill the harness.
                if pgid.as_raw() != nix::unistd::getpgrp().as_raw() {
                    let _ = killpg(pgid, Signal::SIGKILL);
                }
            }
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills every node group and every descendant, and removes stale libfaketime files.
pub fn kill_everything() {
    kill_groups();
    kill_descendants();
    sweep_faketime_shm();
}

/// Removes `/dev/shm/faketime_shm_PID` and `/dev/shm/sem.faketime_sem_PID` of processes that
/// no longer exist (left by nodes killed with SIGKILL, by this or an earlier harness).
pub fn sweep_faketime_shm() {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("faketime_shm_").or_else(|| name.strip_prefix("sem.faketime_sem_"));
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Sets what an emergency exit does after the nodes are dead (e.g. write results.json of an
/// aborted run). Runs at most once.
pub fn on_abort(f: impl Fn(&str) + Send + 'static) {
    if let Ok(mut g) = ON_ABORT.lock() {
        *g = Some(Box::new(f));
    }
}

/// Kills everything, runs the abort hook with `why`, and exits with `code`.
pub fn emergency_exit(code: i32, why: &str) -> ! {
    kill_everything();
    let hook = ON_ABORT.lock().ok().and_then(|mut g| g.take());
    if let Some(hook) = hook {
        hook(why);
    }
    std::process::exit(code)
}

/// Why the run was interrupted, if it was: "SIGINT", "SIGTERM" or "watchdog".
pub fn interrupted() -> Option<&'static str> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s if s as i32 == libc::SIGINT => Some("SIGINT"),
        s if s as i32 == libc::SIGTERM => Some("SIGTERM"),
        WATCHDOG => Some("watchdog"),
        _ => Some("a signal"),
    }
}

/// Records a watchdog expiry as an interruption.
pub fn mark_watchdog() {
    let _ = INTERRUPTED.compare_exchange(0, WATCHDOG, Ordering::SeqCst, Ordering::SeqCst);
}

/// Handles SIGINT, SIGTERM and SIGHUP on a dedicated thread until the process exits. The first
/// calls `first` (the run stops in order); the second kills every node and exits with `code`.
pub fn handle_signals(first: impl Fn(&'static str) + Send + 'static, abort_code: i32) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    let _ = std::thread::Builder::new().name("faultline-signals".into()).spawn(move || {
        for sig in signals.forever() {
            let fresh = INTERRUPTED.compare_exchange(0, sig as u8, Ordering::SeqCst, Ordering::SeqCst).is_ok();
            if fresh {
                let name = interrupted().unwrap_or("a signal");
                eprintln!("faultline: {name}: stopping: healing, final reads, then checking (signal again to abort)");
                first(name);
            } else {
                eprintln!("faultline: second signal: killing every node and aborting");
                emergency_exit(abort_code, "aborted by a second signal");
            }
        }
    });
}

/// The guardian's main loop (`faultline __guard`): see the module documentation.
pub fn guard_main() -> i32 {
    use nix::sys::signal::{signal, SigHandler};
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGPIPE] {
        // SAFETY: setting a signal to be ignored installs no handler code.
        unsafe {
            let _ = signal(sig, SigHandler::SigIgn);
        }
    }
    let mut groups = BTreeSet::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let (sign, num) = line.split_at(line.len().min(1));
        let Ok(pgid) = num.trim().parse::<i32>() else { continue };
        match sign {
            "+" if pgid > 1 => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    sweep_faketime_shm();
    0
}

use std::os::unix::process::CommandExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_found_through_proc() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let kids = children_of(std::process::id() as i32);
        assert!(kids.contains(&(child.id() as i32)), "{kids:?}");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn sweeps_only_files_of_dead_processes() {
        let dir = PathBuf::from("/dev/shm");
        if !dir.is_dir() {
            return;
        }
        // A pid above the kernel's maximum cannot be alive.
        let dead = dir.join("faketime_shm_99999999");
        let alive = dir.join(format!("faketime_shm_{}", std::process::id()));
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&alive, b"x").unwrap();
        sweep_faketime_shm();
        assert!(!dead.exists());
        assert!(alive.exists());
        let _ = std::fs::remove_file(alive);
    }
}
