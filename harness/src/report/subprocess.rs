//! Running one `faultline test` (or `faultline check`) of a suite as a child process that can
//! neither outlive the suite nor hang it.
//!
//! - The child gets its own process group, so a signal meant for it (and whatever it forked)
//!   reaches exactly that, and a Ctrl-C at the terminal reaches only the suite.
//! - It carries `PR_SET_PDEATHSIG(SIGKILL)`: if the suite dies, even by SIGKILL, the kernel
//!   kills the run, and the run's own guardian then kills its nodes. The signal is tied to the
//!   thread that forked, so callers spawn from the main thread (which lives as long as the
//!   suite). A suite that died between the fork and the prctl would go unnoticed, so the child
//!   checks its parent is still the one that forked it and kills itself otherwise.
//! - Past its timeout it is sent SIGTERM, which a run treats like Ctrl-C: it heals, reads,
//!   checks and writes results marked interrupted. Past a grace period after that, its whole
//!   group gets SIGKILL.
//! - Its stdout and stderr are echoed with a prefix as they come and kept (stdout whole, the
//!   tail of stderr), so a crash can be reported with its last words.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of stderr kept for the report of a failed run.
pub const STDERR_TAIL_LINES: usize = 40;
/// Longest stderr line kept, in characters (a node log dumped on one line must not bloat it).
const LINE_MAX_CHARS: usize = 2000;
/// How long the output readers may lag behind the exit (a grandchild holding the pipe open).
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// How often the child is polled.
const POLL: Duration = Duration::from_millis(50);

/// The children now running (a hunt runs several side by side), so the parent's signal thread
/// can pass an interruption on to them (see [`forward_interrupt`]).
static RUNNING: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<libc::pid_t>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends SIGTERM to every child now running, which each treats like Ctrl-C: it stops in order
/// and writes results marked interrupted.
pub fn forward_interrupt() {
    for &pid in running().iter() {
        // SAFETY: a plain kill(2); the pid is our unreaped child while RUNNING lists it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Registers the parent's signal handling for a loop of child runs: the first SIGINT/SIGTERM is
/// passed on to the running child and sets the returned flag (the caller stops after that run);
/// a second one kills everything and exits 2.
pub fn interrupt_children() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    crate::lifecycle::handle_signals(
        move |_| {
            f.store(true, std::sync::atomic::Ordering::SeqCst);
            forward_interrupt();
        },
        crate::exit::UNKNOWN,
    );
    flag
}

/// When to stop a child.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Run time after which the child is sent SIGTERM.
    pub timeout: Duration,
    /// Time after the SIGTERM after which its group is sent SIGKILL.
    pub grace: Duration,
}

/// What the parent had to do to end the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was sent SIGTERM and ended within the grace period.
    Term,
    /// It was still running after the grace period and its group got SIGKILL.
    Kill,
}

/// How a child ended.
#[derive(Debug, Default)]
pub struct Finished {
    /// Its exit code; `None` when a signal ended it or it never started.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stopped: Option<Stopped>,
    /// Why it could not be started, if it could not.
    pub spawn_error: Option<String>,
    pub stdout: Vec<String>,
    /// The last [`STDERR_TAIL_LINES`] lines of stderr.
    pub stderr_tail: Vec<String>,
    pub elapsed: Duration,
}

/// Sets up the child between fork and exec: its own process group, killed with its parent.
fn isolate(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, getppid, kill, getpid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// Where a reader echoes each line: a prefix and the function that prints it.
type Echo = (String, fn(&str, &str));

/// Reads lines from `pipe` on a thread, echoing each with `prefix` through `echo` and
/// keeping at most `keep` of the newest (all when `keep` is `usize::MAX`).
fn reader<R: Read + Send + 'static>(
    pipe: Option<R>,
    keep: usize,
    echo: Option<Echo>,
) -> (Arc<Mutex<VecDeque<String>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(VecDeque::new()));
    let shared = buf.clone();
    let handle = std::thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some((prefix, f)) = &echo {
                f(prefix, &line);
            }
            // Only a tail is capped: stdout is kept whole, lines included (a check's JSON verdict
            // is one long line).
            let line: String = if keep == usize::MAX { line } else { line.chars().take(LINE_MAX_CHARS).collect() };
            let mut b = shared.lock().unwrap_or_else(|e| e.into_inner());
            if b.len() == keep {
                b.pop_front();
            }
            b.push_back(line);
        }
    });
    (buf, handle)
}

fn echo_out(prefix: &str, line: &str) {
    crate::out!("{prefix}{line}");
}

/// Like `eprintln!`, but a closed stderr does not panic the suite.
fn echo_err(prefix: &str, line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{prefix}{line}");
}

/// Waits for `handle` at most until `deadline`, then takes what the reader has kept.
fn drain(buf: &Arc<Mutex<VecDeque<String>>>, handle: JoinHandle<()>, deadline: Instant) -> Vec<String> {
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if handle.is_finished() {
        let _ = handle.join();
    }
    buf.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
}

/// Runs `exe args` under `limits`; echoes its output with `prefix` unless `prefix` is `None`.
pub fn run(exe: &Path, args: &[String], limits: Limits, prefix: Option<&str>) -> Finished {
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    isolate(&mut cmd);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Finished { spawn_error: Some(format!("cannot start {}: {e}", exe.display())), ..Finished::default() },
    };
    let echo = |f: fn(&str, &str)| prefix.map(|p| (p.to_string(), f));
    let (out_buf, out_thread) = reader(child.stdout.take(), usize::MAX, echo(echo_out));
    let (err_buf, err_thread) = reader(child.stderr.take(), STDERR_TAIL_LINES, echo(echo_err));
    let pid = child.id() as libc::pid_t;
    running().push(pid);
    let mut stopped = None;
    let mut termed_at = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        let now = Instant::now();
        match termed_at {
            None if now - started > limits.timeout => {
                // SAFETY: `pid` is our unreaped child, so it cannot name another process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                termed_at = Some(now);
                stopped = Some(Stopped::Term);
            }
            Some(t) if now - t > limits.grace && stopped == Some(Stopped::Term) => {
                // The group id is the child's pid, held while the child is unreaped.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                stopped = Some(Stopped::Kill);
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    };
    running().retain(|&p| p != pid);
    let deadline = Instant::now() + DRAIN_WAIT;
    Finished {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stopped,
        spawn_error: None,
        stdout: drain(&out_buf, out_thread, deadline),
        stderr_tail: drain(&err_buf, err_thread, deadline),
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64, grace_ms: u64) -> Finished {
        let limits = Limits { timeout: Duration::from_millis(timeout_ms), grace: Duration::from_millis(grace_ms) };
        run(Path::new("/bin/sh"), &["-c".to_string(), script.to_string()], limits, None)
    }

    #[test]
    fn long_stdout_lines_are_kept_whole_and_long_stderr_lines_capped() {
        let f = sh("head -c 30000 /dev/zero | tr '\\0' a; echo; head -c 30000 /dev/zero | tr '\\0' b >&2; echo >&2", 10_000, 10_000);
        assert_eq!(f.stdout.len(), 1);
        assert_eq!(f.stdout[0].len(), 30_000, "a JSON verdict on one line must survive");
        assert_eq!(f.stderr_tail[0].len(), LINE_MAX_CHARS);
    }

    #[test]
    fn a_quick_child_keeps_its_code_and_output() {
        let f = sh("echo out; echo err >&2; exit 3", 10_000, 10_000);
        assert_eq!((f.code, f.signal, f.stopped), (Some(3), None, None));
        assert_eq!(f.stdout, vec!["out"]);
        assert_eq!(f.stderr_tail, vec!["err"]);
    }

    #[test]
    fn the_child_leads_its_own_process_group() {
        // Field 5 of /proc/PID/stat is the process group.
        let f = sh("echo $$; cut -d' ' -f5 /proc/$$/stat", 10_000, 10_000);
        assert_eq!(f.stdout.len(), 2, "{f:?}");
        assert_eq!(f.stdout[0], f.stdout[1], "the child is not a group leader");
        assert_ne!(f.stdout[1], std::process::id().to_string());
    }

    #[test]
    fn sigterm_first_and_the_child_may_finish() {
        let f = sh("trap 'echo interrupted; exit 2' TERM; while :; do sleep 0.05; done", 300, 10_000);
        assert_eq!(f.stopped, Some(Stopped::Term));
        assert_eq!(f.code, Some(2));
        assert_eq!(f.stdout, vec!["interrupted"]);
        assert!(f.elapsed < Duration::from_secs(5), "{:?}", f.elapsed);
    }

    #[test]
    fn sigkill_after_the_grace_period() {
        let f = sh("trap '' TERM; echo started; while :; do sleep 0.05; done", 200, 300);
        assert_eq!(f.stopped, Some(Stopped::Kill));
        assert_eq!((f.code, f.signal), (None, Some(libc::SIGKILL)));
        assert_eq!(f.stdout, vec!["started"]);
    }

    #[test]
    fn stderr_keeps_only_the_tail() {
        let f = sh("i=0; while [ $i -lt 100 ]; do echo line$i >&2; i=$((i+1)); done", 10_000, 10_000);
        assert_eq!(f.stderr_tail.len(), STDERR_TAIL_LINES);
        assert_eq!(f.stderr_tail.last().map(String::as_str), Some("line99"));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let f = run(Path::new("/no/such/program"), &[], Limits { timeout: Duration::from_secs(1), grace: Duration::from_secs(1) }, None);
        assert!(f.spawn_error.as_deref().is_some_and(|e| e.contains("/no/such/program")), "{f:?}");
        assert_eq!(f.code, None);
    }
}
