//! Clock faults through libfaketime, without root and without touching the machine's clock.
//!
//! Every node of a run with the clock nemesis starts with `LD_PRELOAD=libfaketimeMT.so.1` and
//! its own `FAKETIME_TIMESTAMP_FILE`; with `FAKETIME_NO_CACHE=1` the library re-reads that file
//! on every wall-clock call, so writing an offset into it moves that node's clock at once.
//! `FAKETIME_DONT_FAKE_MONOTONIC=1` leaves the monotonic clock alone: tokio's timers run on it
//! and break when it jumps; protocols that read the wall clock (last-writer-wins timestamps,
//! leases) are the ones a clock fault is meant to hit.
//!
//! Offsets are written as signed seconds with decimals (`+0.250000`): libfaketime reads a bare
//! `+250ms`-style suffix as something else entirely. Drift is not written with libfaketime's
//! `x<rate>` modifier: measured on this libfaketime, a rate survives later files that do not name
//! one, and a change the node never happens to read is lost, so a reset could silently leave a
//! node running fast. Instead the harness ramps the offset itself, every [`DRIFT_STEP`], which
//! gives the same clock at a coarser grain and leaves nothing behind when reset to `+0`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a drifting or strobing clock is rewritten.
pub const DRIFT_STEP: Duration = Duration::from_millis(100);

/// Where distributions put libfaketime.
const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime",
    "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib/faketime",
    "/usr/lib64/faketime",
    "/usr/local/lib/faketime",
    "/usr/lib",
    "/usr/local/lib",
];

/// The multi-threaded libfaketime (`libfaketimeMT.so.1`), or `None` when it is not installed.
/// `FAULTLINE_FAKETIME_LIB` overrides the search.
pub fn find_lib() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_FAKETIME_LIB") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    LIB_DIRS.iter().map(|d| Path::new(d).join("libfaketimeMT.so.1")).find(|p| p.is_file())
}

/// The environment a node runs with under libfaketime.
pub fn env(lib: &Path, timestamp_file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE".into(), timestamp_file.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("FAKETIME_XRESET".into(), "1".into()),
    ]
}

/// The timestamp-file line for an offset in seconds: `+0.250000`, `-120.000000`.
pub fn spec(offset_s: f64) -> String {
    let s = if offset_s.is_finite() { offset_s } else { 0.0 };
    format!("{s:+.6}")
}

/// Writes an offset atomically (a temporary file renamed over the old one), so a node never
/// reads half a line.
pub fn write_offset(file: &Path, offset_s: f64) -> io::Result<()> {
    let tmp = file.with_extension("faketime.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{}", spec(offset_s))?;
    }
    fs::rename(&tmp, file)
}

/// The offset of a clock drifting at `rate` for `elapsed`: it gains `rate - 1` seconds a second.
pub fn drift_offset_s(rate: f64, elapsed: Duration) -> f64 {
    (rate - 1.0) * elapsed.as_secs_f64()
}

/// Removes the shared-memory segment and semaphore libfaketime leaves behind when a process
/// dies without running its destructor (SIGKILL).
pub fn cleanup_shm(pid: u32) {
    for name in [format!("/dev/shm/faketime_shm_{pid}"), format!("/dev/shm/sem.faketime_sem_{pid}")] {
        let _ = fs::remove_file(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_signed_seconds() {
        assert_eq!(spec(0.25), "+0.250000");
        assert_eq!(spec(-120.0), "-120.000000");
        assert_eq!(spec(0.0), "+0.000000");
        assert_eq!(spec(f64::NAN), "+0.000000");
        assert!((drift_offset_s(2.0, Duration::from_secs(3)) - 3.0).abs() < 1e-9);
        assert!((drift_offset_s(0.5, Duration::from_secs(2)) + 1.0).abs() < 1e-9);
    }

    #[test]
    fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n1.faketime");
        write_offset(&f, -1.5).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "-1.500000\n");
        assert!(!dir.path().join("n1.faketime.tmp").exists());
    }
}
