//! `libfaultline_powerloss.so`: an `LD_PRELOAD` shim that keeps, next to a node's data
//! directory, a *shadow* copy holding exactly what a power loss would leave behind.
//!
//! SIGKILL alone loses nothing the process wrote: the page cache survives, so a node that never
//! calls fsync, or answers before it does, still finds every byte after a restart. This shim
//! interposes libc's file calls (`open`, `write`, `fsync`, `rename`, ...) for files under the
//! directory named by `FAULTLINE_POWERLOSS_DIR` and mirrors into `FAULTLINE_POWERLOSS_SHADOW`
//! (default `<data dir>/../.durable`) only what has been made durable. The harness's
//! `power-loss` nemesis SIGKILLs the node, replaces the data directory with the shadow and
//! restarts it.
//!
//! The durability model (what the shadow holds at every instant):
//! - **Data.** Per open file, the byte ranges written since the last fsync and the lowest length
//!   it was truncated to are remembered. `fsync` or `fdatasync` of that file copies just those
//!   ranges from the file into its shadow and sets the shadow's length to the file's: the file's
//!   bytes are durable as of that call. Bytes written and never fsynced are not in the shadow.
//! - **Names.** Creating, renaming and unlinking a file are queued, in order. Any successful
//!   fsync under the data directory — of a file or of the directory itself — first applies the
//!   whole queue to the shadow (the behaviour of a journaling file system such as ext4, where an
//!   fsync commits every earlier metadata change). So a file created and never fsynced, with no
//!   fsync after its creation, vanishes; a file whose name became durable but whose data never
//!   did comes back empty; a rename survives only if some fsync followed it.
//! - **Start.** When a process loads the shim, the shadow is rebuilt from the files as they are
//!   (the page cache of a previous run counts as written back).
//!
//! Not covered: writes through `mmap`, statically linked programs and programs that make raw
//! system calls without libc (Go), `dup`ed descriptors (only the descriptor `open` returned is
//! tracked), writes to a file whose name was unlinked while it was open, `sync`/`syncfs`/`sync_file_range`, `O_DIRECT`/`O_SYNC` (treated like ordinary
//! writes), `truncate` by path, `chdir` after the start (relative paths are resolved against
//! the working directory of the start), and two threads writing one descriptor at the same
//! time (the written range is found from the offset after the call). A SIGKILL in the middle of
//! an fsync may leave part of that fsync's ranges in the shadow, as a power cut during a flush
//! may.
//!
//! Every interposed call first tests one bit (is this descriptor tracked?), so descriptors
//! outside the data directory — sockets, pipes, logs — pay one atomic load.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use libc::{c_char, c_int, c_uint, iovec, mode_t, off64_t, off_t, size_t, ssize_t};

/// The environment variable naming the data directory; without it the shim does nothing.
pub const ENV_DIR: &str = "FAULTLINE_POWERLOSS_DIR";
/// The environment variable naming the shadow directory (default `<data dir>/../.durable`).
pub const ENV_SHADOW: &str = "FAULTLINE_POWERLOSS_SHADOW";

/// Descriptors below this number can be tracked (a bit each).
const MAX_FD: usize = 1 << 16;
/// Ranges remembered per file before they are merged into one covering range.
const MAX_RANGES: usize = 256;

struct Config {
    data: PathBuf,
    shadow: PathBuf,
    cwd: PathBuf,
}

/// An open descriptor under the data directory.
struct Tracked {
    /// The path relative to the data directory; `None` once the name is gone (unlinked, or
    /// replaced by a rename).
    rel: Option<PathBuf>,
    is_dir: bool,
}

/// What a file holds that is not durable yet. Kept per file, not per descriptor: as in the
/// kernel, an fsync through any descriptor makes every earlier write to the file durable, also
/// writes made through a descriptor closed since.
#[derive(Default)]
struct Dirty {
    /// Byte ranges `[start, end)` written since the last fsync, in write order, merged when
    /// adjacent.
    ranges: Vec<(u64, u64)>,
    /// The lowest length the file was truncated to since the last fsync.
    truncated_to: Option<u64>,
}

enum NameOp {
    Create(PathBuf),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
}

#[derive(Default)]
struct State {
    fds: HashMap<c_int, Tracked>,
    /// By path relative to the data directory.
    files: HashMap<PathBuf, Dirty>,
    pending: Vec<NameOp>,
}

impl State {
    fn dirty(&mut self, fd: c_int) -> Option<&mut Dirty> {
        let rel = self.fds.get(&fd)?.rel.clone()?;
        Some(self.files.entry(rel).or_default())
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static STATE: Mutex<Option<State>> = Mutex::new(None);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static BITS: [AtomicU64; MAX_FD / 64] = [ZERO; MAX_FD / 64];

thread_local! {
    /// Set while the shim itself runs on this thread: its own file calls go straight to libc.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn tracked(fd: c_int) -> bool {
    fd >= 0 && (fd as usize) < MAX_FD && BITS[fd as usize / 64].load(Ordering::Acquire) & (1 << (fd as usize % 64)) != 0
}

fn set_bit(fd: c_int, on: bool) {
    if fd < 0 || fd as usize >= MAX_FD {
        return;
    }
    let bit = 1u64 << (fd as usize % 64);
    if on {
        BITS[fd as usize / 64].fetch_or(bit, Ordering::AcqRel);
    } else {
        BITS[fd as usize / 64].fetch_and(!bit, Ordering::AcqRel);
    }
}

/// Marks this thread busy for the guard's life; `None` when it already is (the shim is calling
/// itself) or when thread-local storage is gone (the thread is exiting).
struct Guard;

impl Guard {
    fn enter() -> Option<Guard> {
        BUSY.try_with(|b| if b.replace(true) { None } else { Some(Guard) }).ok().flatten()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

/// The next definition of a libc function (the one the shim shadows), looked up once.
macro_rules! real {
    ($name:ident : fn($($t:ty),*) -> $r:ty) => {{
        static P: AtomicUsize = AtomicUsize::new(0);
        let mut p = P.load(Ordering::Relaxed);
        if p == 0 {
            p = libc::dlsym(libc::RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr() as *const c_char) as usize;
            if p == 0 {
                libc::abort();
            }
            P.store(p, Ordering::Relaxed);
        }
        std::mem::transmute::<usize, unsafe extern "C" fn($($t),*) -> $r>(p)
    }};
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(State::default))
}

/// Lexical normalisation: `.` dropped, `..` pops (symbolic links are not followed).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn fd_path(fd: c_int) -> Option<PathBuf> {
    fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// The path relative to the data directory (empty for the directory itself), or `None` when it
/// lies outside.
fn relative(cfg: &Config, dirfd: c_int, path: *const c_char) -> Option<PathBuf> {
    if path.is_null() {
        return None;
    }
    let raw = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(path) }.to_bytes()));
    let abs = if raw.is_absolute() {
        normalise(raw)
    } else if dirfd == libc::AT_FDCWD {
        normalise(&cfg.cwd.join(raw))
    } else {
        normalise(&fd_path(dirfd)?.join(raw))
    };
    abs.strip_prefix(&cfg.data).ok().map(Path::to_path_buf)
}

fn shadow_of(cfg: &Config, rel: &Path) -> PathBuf {
    cfg.shadow.join(rel)
}

fn after_open(dirfd: c_int, path: *const c_char, flags: c_int, fd: c_int) {
    let Some(cfg) = CONFIG.get() else { return };
    let Some(_g) = Guard::enter() else { return };
    let Some(rel) = relative(cfg, dirfd, path) else { return };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return;
    }
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if !is_dir && st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return;
    }
    with_state(|s| {
        if flags & libc::O_CREAT != 0 && !is_dir {
            s.pending.push(NameOp::Create(rel.clone()));
        }
        if flags & libc::O_TRUNC != 0 && !is_dir {
            s.files.entry(rel.clone()).or_default().truncated_to = Some(0);
        }
        s.fds.insert(fd, Tracked { rel: Some(rel), is_dir });
        set_bit(fd, true);
    });
}

fn note_write(fd: c_int, start: u64, len: u64) {
    if len == 0 {
        return;
    }
    with_state(|s| {
        if let Some(d) = s.dirty(fd) {
            let end = start + len;
            match d.ranges.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                Some(last) if last.0 <= start && end <= last.1 => {}
                _ => d.ranges.push((start, end)),
            }
            if d.ranges.len() > MAX_RANGES {
                // A superset is safe: bytes outside every range still hold their durable value.
                let lo = d.ranges.iter().map(|r| r.0).min().unwrap_or(0);
                let hi = d.ranges.iter().map(|r| r.1).max().unwrap_or(0);
                d.ranges = vec![(lo, hi)];
            }
        }
    });
}

/// The range of a `write`-like call that returned `n`: it ended at the descriptor's offset.
fn after_write(fd: c_int, n: ssize_t) {
    if n <= 0 {
        return;
    }
    let Some(_g) = Guard::enter() else { return };
    let end = unsafe { libc::lseek64(fd, 0, libc::SEEK_CUR) };
    if end >= n as i64 {
        note_write(fd, (end - n as i64) as u64, n as u64);
    }
}

fn after_pwrite(fd: c_int, n: ssize_t, offset: i64) {
    if n <= 0 || offset < 0 {
        return;
    }
    let Some(_g) = Guard::enter() else { return };
    note_write(fd, offset as u64, n as u64);
}

fn apply_names(cfg: &Config, pending: Vec<NameOp>) {
    for op in pending {
        let _ = match op {
            NameOp::Create(rel) => {
                let p = shadow_of(cfg, &rel);
                if p.exists() {
                    Ok(())
                } else {
                    if let Some(parent) = p.parent() {
                        let _ = fs::create_dir_all(parent);
                    }
                    File::create(&p).map(|_| ())
                }
            }
            NameOp::Rename(from, to) => {
                let (a, b) = (shadow_of(cfg, &from), shadow_of(cfg, &to));
                if let Some(parent) = b.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                if a.exists() {
                    fs::rename(&a, &b)
                } else {
                    // The source's name was never durable: the target names a file whose data
                    // never was either.
                    File::create(&b).map(|_| ())
                }
            }
            NameOp::Unlink(rel) => {
                let p = shadow_of(cfg, &rel);
                if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                }
            }
        };
    }
}

/// Copies a file's dirty ranges and length into its shadow.
fn sync_data(cfg: &Config, fd: c_int, rel: &Path, dirty: &[(u64, u64)], truncated_to: Option<u64>) -> io::Result<()> {
    let shadow = shadow_of(cfg, rel);
    if let Some(parent) = shadow.parent() {
        fs::create_dir_all(parent)?;
    }
    let out = OpenOptions::new().write(true).create(true).truncate(false).open(&shadow)?;
    // The descriptor may be write-only: read the same file through /proc.
    let src = File::open(format!("/proc/self/fd/{fd}"))?;
    let len = src.metadata()?.len();
    if let Some(t) = truncated_to {
        out.set_len(t.min(len))?;
    }
    let mut buf = Vec::new();
    for &(a, b) in dirty {
        let b = b.min(len);
        if a >= b {
            continue;
        }
        buf.resize((b - a) as usize, 0);
        src.read_exact_at(&mut buf, a)?;
        out.write_all_at(&buf, a)?;
    }
    out.set_len(len)
}

/// After a successful fsync of `fd`: the queued name changes, then the file's data.
fn after_fsync(fd: c_int) {
    let Some(cfg) = CONFIG.get() else { return };
    let Some(_g) = Guard::enter() else { return };
    // Holding the lock through the copy keeps name changes and data in one order.
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let s = g.get_or_insert_with(State::default);
    let pending = std::mem::take(&mut s.pending);
    apply_names(cfg, pending);
    let file = s.fds.get(&fd).filter(|t| !t.is_dir).and_then(|t| t.rel.clone());
    if let Some(rel) = file {
        let d = s.files.remove(&rel).unwrap_or_default();
        {
            if let Err(e) = sync_data(cfg, fd, &rel, &d.ranges, d.truncated_to) {
                let msg = format!("faultline-powerloss: shadowing {}: {e}\n", rel.display());
                unsafe { real!(write: fn(c_int, *const libc::c_void, size_t) -> ssize_t)(2, msg.as_ptr().cast(), msg.len()) };
            }
        }
    }
}

fn after_rename(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char) {
    let Some(cfg) = CONFIG.get() else { return };
    let Some(_g) = Guard::enter() else { return };
    let from = relative(cfg, olddirfd, old);
    let to = relative(cfg, newdirfd, new);
    with_state(|s| {
        for t in s.fds.values_mut() {
            if t.rel.is_some() && t.rel == to {
                t.rel = None;
            }
        }
        for t in s.fds.values_mut() {
            if t.rel.is_some() && t.rel == from {
                t.rel = to.clone();
            }
        }
        if let Some(b) = &to {
            s.files.remove(b);
        }
        if let Some(d) = from.as_ref().and_then(|a| s.files.remove(a)) {
            if let Some(b) = &to {
                s.files.insert(b.clone(), d);
            }
        }
        match (from, to) {
            (Some(a), Some(b)) => s.pending.push(NameOp::Rename(a, b)),
            (Some(a), None) => s.pending.push(NameOp::Unlink(a)),
            (None, Some(b)) => s.pending.push(NameOp::Create(b)),
            (None, None) => {}
        }
    });
}

fn after_unlink(dirfd: c_int, path: *const c_char) {
    let Some(cfg) = CONFIG.get() else { return };
    let Some(_g) = Guard::enter() else { return };
    let Some(rel) = relative(cfg, dirfd, path) else { return };
    with_state(|s| {
        for t in s.fds.values_mut() {
            if t.rel.as_ref() == Some(&rel) {
                t.rel = None;
            }
        }
        s.files.remove(&rel);
        s.pending.push(NameOp::Unlink(rel));
    });
}

fn after_truncate(fd: c_int, len: i64) {
    let Some(_g) = Guard::enter() else { return };
    with_state(|s| {
        if let Some(d) = s.dirty(fd) {
            let len = len.max(0) as u64;
            d.truncated_to = Some(d.truncated_to.map_or(len, |old| old.min(len)));
        }
    });
}

fn before_close(fd: c_int) {
    let Some(_g) = Guard::enter() else { return };
    with_state(|s| {
        s.fds.remove(&fd);
        set_bit(fd, false);
    });
}

// ---- the interposed functions ----
//
// `open` and friends are variadic in C; the mode is read as a third fixed argument, which is
// where the x86-64 and AArch64 Linux calling conventions put it (it is only meaningful with
// O_CREAT or O_TMPFILE, as in libc itself).

macro_rules! open_like {
    ($name:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
            let fd = real!($name: fn(*const c_char, c_int, mode_t) -> c_int)(path, flags, mode);
            if fd >= 0 && CONFIG.get().is_some() {
                after_open(libc::AT_FDCWD, path, flags, fd);
            }
            fd
        }
    };
}
open_like!(open);
open_like!(open64);

macro_rules! openat_like {
    ($name:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
            let fd = real!($name: fn(c_int, *const c_char, c_int, mode_t) -> c_int)(dirfd, path, flags, mode);
            if fd >= 0 && CONFIG.get().is_some() {
                after_open(dirfd, path, flags, fd);
            }
            fd
        }
    };
}
openat_like!(openat);
openat_like!(openat64);

macro_rules! creat_like {
    ($name:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: mode_t) -> c_int {
            let fd = real!($name: fn(*const c_char, mode_t) -> c_int)(path, mode);
            if fd >= 0 && CONFIG.get().is_some() {
                after_open(libc::AT_FDCWD, path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, fd);
            }
            fd
        }
    };
}
creat_like!(creat);
creat_like!(creat64);

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const libc::c_void, n: size_t) -> ssize_t {
    let r = real!(write: fn(c_int, *const libc::c_void, size_t) -> ssize_t)(fd, buf, n);
    if tracked(fd) {
        after_write(fd, r);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let r = real!(writev: fn(c_int, *const iovec, c_int) -> ssize_t)(fd, iov, cnt);
    if tracked(fd) {
        after_write(fd, r);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const libc::c_void, n: size_t, off: off_t) -> ssize_t {
    let r = real!(pwrite: fn(c_int, *const libc::c_void, size_t, off_t) -> ssize_t)(fd, buf, n, off);
    if tracked(fd) {
        after_pwrite(fd, r, off as i64);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const libc::c_void, n: size_t, off: off64_t) -> ssize_t {
    let r = real!(pwrite64: fn(c_int, *const libc::c_void, size_t, off64_t) -> ssize_t)(fd, buf, n, off);
    if tracked(fd) {
        after_pwrite(fd, r, off);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t {
    let r = real!(pwritev: fn(c_int, *const iovec, c_int, off_t) -> ssize_t)(fd, iov, cnt, off);
    if tracked(fd) {
        after_pwrite(fd, r, off as i64);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const iovec, cnt: c_int, off: off64_t) -> ssize_t {
    let r = real!(pwritev64: fn(c_int, *const iovec, c_int, off64_t) -> ssize_t)(fd, iov, cnt, off);
    if tracked(fd) {
        after_pwrite(fd, r, off);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    let r = real!(ftruncate: fn(c_int, off_t) -> c_int)(fd, len);
    if r == 0 && tracked(fd) {
        after_truncate(fd, len as i64);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off64_t) -> c_int {
    let r = real!(ftruncate64: fn(c_int, off64_t) -> c_int)(fd, len);
    if r == 0 && tracked(fd) {
        after_truncate(fd, len);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let r = real!(fsync: fn(c_int) -> c_int)(fd);
    if r == 0 && tracked(fd) {
        after_fsync(fd);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let r = real!(fdatasync: fn(c_int) -> c_int)(fd);
    if r == 0 && tracked(fd) {
        after_fsync(fd);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let r = real!(rename: fn(*const c_char, *const c_char) -> c_int)(old, new);
    if r == 0 && CONFIG.get().is_some() {
        after_rename(libc::AT_FDCWD, old, libc::AT_FDCWD, new);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn renameat(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char) -> c_int {
    let r = real!(renameat: fn(c_int, *const c_char, c_int, *const c_char) -> c_int)(olddirfd, old, newdirfd, new);
    if r == 0 && CONFIG.get().is_some() {
        after_rename(olddirfd, old, newdirfd, new);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn renameat2(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char, flags: c_uint) -> c_int {
    let r = real!(renameat2: fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int)(olddirfd, old, newdirfd, new, flags);
    // RENAME_EXCHANGE swaps two names; modelled as a plain rename (the second name's shadow is
    // replaced), which no reference node uses.
    if r == 0 && CONFIG.get().is_some() {
        after_rename(olddirfd, old, newdirfd, new);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    let r = real!(unlink: fn(*const c_char) -> c_int)(path);
    if r == 0 && CONFIG.get().is_some() {
        after_unlink(libc::AT_FDCWD, path);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let r = real!(unlinkat: fn(c_int, *const c_char, c_int) -> c_int)(dirfd, path, flags);
    if r == 0 && CONFIG.get().is_some() {
        after_unlink(dirfd, path);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if tracked(fd) {
        before_close(fd);
    }
    real!(close: fn(c_int) -> c_int)(fd)
}

// ---- start ----

/// Rebuilds the shadow from the files as they are now.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn start() {
    let Some(dir) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) else { return };
    let Some(_g) = Guard::enter() else { return };
    let Ok(cwd) = std::env::current_dir() else { return };
    let data = normalise(&cwd.join(PathBuf::from(dir)));
    let shadow = match std::env::var_os(ENV_SHADOW).filter(|d| !d.is_empty()) {
        Some(s) => normalise(&cwd.join(PathBuf::from(s))),
        None => normalise(&data.join("..").join(".durable")),
    };
    if shadow.starts_with(&data) {
        eprintln!("faultline-powerloss: the shadow {} must lie outside the data dir {}", shadow.display(), data.display());
        return;
    }
    let _ = fs::remove_dir_all(&shadow);
    let rebuilt = if data.is_dir() { copy_tree(&data, &shadow) } else { fs::create_dir_all(&shadow) };
    if let Err(e) = rebuilt {
        eprintln!("faultline-powerloss: building the shadow {}: {e}", shadow.display());
        return;
    }
    let _ = CONFIG.set(Config { data, shadow, cwd });
}

extern "C" fn init() {
    start();
}

/// Runs [`start`] when the library is loaded, before the program's `main`.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
