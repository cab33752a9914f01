//! Replacing a file that other processes read or write at the same time.
//!
//! `index.html`, `comparison.*`, `junit.xml`, summary caches and reports are rewritten by
//! whichever process gets there: a run finishing, a suite, a `faultline report` someone started
//! by hand. A reader must never see half a file, and two writers must never trip over each
//! other. So every write goes to a temporary file with a name no other writer uses (process id
//! plus a counter of this process) in the target's own directory (a rename is atomic only
//! within one file system), is flushed, and is renamed over the target: the last rename wins
//! and each version is whole. A fixed temporary name (`index.html.tmp`) is what made two
//! writers fail with "No such file or directory" when one renamed the other's file away.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of one process (threads included).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A sibling of `path` that no other writer uses: `.<name>.<pid>.<n>.tmp<ext>`, hidden so the
/// run scans and directory listings pass it by. `ext` (with its dot, or empty) is kept last
/// for writers that choose a format by extension (plotters' PNG encoder).
pub fn temp_sibling(path: &Path, ext: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_else(|| "file".as_ref()));
    name.push(format!(".{}.{n}.tmp{ext}", std::process::id()));
    path.with_file_name(name)
}

/// Renames a finished temporary file over `path`; removes it when the rename fails, so a
/// failure leaves no litter.
pub fn persist(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(tmp);
    })
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a mix,
/// and concurrent writers never fail because of each other.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path, "");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_data()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    persist(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("index.html");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![OsString::from("index.html")]);
    }

    #[test]
    fn temporary_names_are_unique_and_keep_the_extension() {
        let p = Path::new("/x/latency.png");
        let (a, b) = (temp_sibling(p, ".png"), temp_sibling(p, ".png"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), p.parent());
        assert!(a.to_string_lossy().ends_with(".png"), "{}", a.display());
    }

    #[test]
    fn concurrent_writers_never_fail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("shared.json");
        std::thread::scope(|s| {
            for t in 0..4 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..200 {
                        write_atomic(p, format!("{t}-{i}").as_bytes()).unwrap();
                    }
                });
            }
        });
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.ends_with("-199"), "{last}");
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        assert!(write_atomic(&d.path().join("no/such/dir/f"), b"x").is_err());
    }
}
