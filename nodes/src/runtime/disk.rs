//! The data directory: what a core asked to keep, made durable.
//!
//! Two kinds of durable objects, both named by the core:
//! - *files* (`Effect::Save`), replaced atomically: written to a temporary file, fsynced, renamed
//!   over the old one, and the directory fsynced, so a crash leaves either the old or the new bytes;
//! - *logs* (`Effect::Append`, `Effect::Rewrite`), sequences of records framed as
//!   `[u32 length][u32 crc32][bytes]` (little endian). A crash in the middle of an append leaves a
//!   torn or corrupt last record: recovery drops it and truncates the file there, so the next
//!   append starts on a clean boundary.
//!
//! [`Disk::commit`] performs the durable effects of a whole batch of steps (group commit): the
//! last `Save` of each file wins, the appends of each log are written together, and every touched
//! file is fsynced once. Files are written before logs, so a core that saves a snapshot and
//! rewrites its log in one step can never lose entries to a crash in between.

use crate::core::{Effect, Storage};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest record recovery accepts; a bigger length field means corruption.
const MAX_RECORD_BYTES: usize = 256 << 20;
const FILE_PREFIX: &str = "file-";
const LOG_PREFIX: &str = "log-";

/// The open data directory of one node.
pub struct Disk {
    dir: PathBuf,
    /// Open append handles of the logs, by name.
    logs: BTreeMap<String, File>,
    /// `false` only with the known bug `--bug no-fsync`: every fsync is skipped.
    fsync: bool,
}

/// What one log must become after a batch: optionally rewritten, then appended to.
#[derive(Default)]
struct LogPlan<'a> {
    rewrite: Option<Vec<&'a [u8]>>,
    append: Vec<&'a [u8]>,
}

impl Disk {
    /// Opens (creating) the directory; nothing is read yet.
    pub fn open(dir: &Path) -> Result<Disk> {
        fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
        Ok(Disk { dir: dir.to_path_buf(), logs: BTreeMap::new(), fsync: true })
    }

    /// BUG(no-fsync): skip every fsync of this directory's files, logs and the directory itself.
    /// Nothing changes for SIGKILL (the page cache survives); a power loss loses what the node
    /// already answered for.
    pub fn without_fsync(mut self) -> Disk {
        self.fsync = false;
        self
    }

    /// fsync (data and metadata) unless the no-fsync bug is on.
    fn sync(&self, file: &File, data_only: bool) -> std::io::Result<()> {
        match (self.fsync, data_only) {
            (false, _) => Ok(()),
            (true, true) => file.sync_data(),
            (true, false) => file.sync_all(),
        }
    }

    /// Reads every file and log that survived, repairing torn log tails.
    pub fn load(&mut self) -> Result<Storage> {
        let mut storage = Storage::default();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            if fname.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            } else if let Some(name) = fname.strip_prefix(FILE_PREFIX) {
                let bytes = fs::read(entry.path()).with_context(|| format!("reading {fname}"))?;
                storage.files.insert(name.to_string(), bytes);
            } else if let Some(name) = fname.strip_prefix(LOG_PREFIX) {
                let records = read_log(&entry.path())?;
                storage.logs.insert(name.to_string(), records);
            }
        }
        Ok(storage)
    }

    /// Makes the durable effects among `effects` durable, in one fsync per touched file.
    pub fn commit<M>(&mut self, effects: &[Effect<M>]) -> Result<()> {
        let mut files: BTreeMap<&str, &[u8]> = BTreeMap::new();
        let mut logs: BTreeMap<&str, LogPlan> = BTreeMap::new();
        for effect in effects {
            match effect {
                Effect::Save { name, bytes } => {
                    files.insert(name, bytes);
                }
                Effect::Append { name, record } => logs.entry(name).or_default().append.push(record),
                Effect::Rewrite { name, records } => {
                    let plan = logs.entry(name).or_default();
                    plan.rewrite = Some(records.iter().map(|r| r.as_slice()).collect());
                    plan.append.clear();
                }
                _ => {}
            }
        }
        let mut renamed = false;
        for (name, bytes) in files {
            check_name(name)?;
            self.replace(&format!("{FILE_PREFIX}{name}"), bytes)?;
            renamed = true;
        }
        for (name, plan) in logs {
            check_name(name)?;
            renamed |= self.commit_log(name, plan)?;
        }
        if renamed {
            self.sync(&File::open(&self.dir)?, false).context("fsync of the data dir")?;
        }
        Ok(())
    }

    /// Applies one log's plan; returns whether a file was renamed (the dir needs an fsync).
    fn commit_log(&mut self, name: &str, plan: LogPlan) -> Result<bool> {
        let fname = format!("{LOG_PREFIX}{name}");
        let mut renamed = false;
        if let Some(records) = plan.rewrite {
            let mut bytes = Vec::new();
            for record in records.iter().chain(plan.append.iter()) {
                frame(record, &mut bytes);
            }
            self.logs.remove(name);
            self.replace(&fname, &bytes)?;
            renamed = true;
        } else if !plan.append.is_empty() {
            let mut bytes = Vec::new();
            for record in &plan.append {
                frame(record, &mut bytes);
            }
            let created = self.log_handle(name, &fname)?;
            let file = &self.logs[name];
            (&*file).write_all(&bytes).with_context(|| format!("appending to {fname}"))?;
            self.sync(file, true).with_context(|| format!("fsync of {fname}"))?;
            // A log file just created has a name the directory must make durable too.
            renamed |= created;
        }
        Ok(renamed)
    }

    /// Opens the log's append handle if it is not open; returns whether the file was created.
    fn log_handle(&mut self, name: &str, fname: &str) -> Result<bool> {
        if self.logs.contains_key(name) {
            return Ok(false);
        }
        let path = self.dir.join(fname);
        let created = !path.exists();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.logs.insert(name.to_string(), file);
        Ok(created)
    }

    /// Atomic replace: tmp file, fsync, rename (the caller fsyncs the directory).
    fn replace(&self, fname: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.dir.join(format!("{fname}.tmp"));
        let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)?;
        self.sync(&file, false).with_context(|| format!("fsync of {}", tmp.display()))?;
        fs::rename(&tmp, self.dir.join(fname)).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }
}

/// Names become file names: keep them to a safe alphabet.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !ok || name.starts_with('.') {
        bail!("invalid durable object name {name:?}");
    }
    Ok(())
}

fn frame(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(record).to_le_bytes());
    out.extend_from_slice(record);
}

/// Reads a log's records; a torn or corrupt tail is cut off (and the file truncated there).
fn read_log(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let (records, good_len) = parse_records(&bytes);
    if good_len < bytes.len() {
        tracing::warn!(log = %path.display(), dropped_bytes = bytes.len() - good_len, "dropping a torn log tail");
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(good_len as u64)?;
        file.sync_all()?;
    }
    Ok(records)
}

/// Splits framed bytes into records; returns them and the length of the valid prefix.
pub fn parse_records(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES || bytes.len() - pos - 8 < len {
            break;
        }
        let record = &bytes[pos + 8..pos + 8 + len];
        if crc32(record) != crc {
            break;
        }
        records.push(record.to_vec());
        pos += 8 + len;
    }
    (records, pos)
}

/// CRC-32 (IEEE), bitwise: records are small and fsync dominates, so no table is needed.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    type E = Effect<()>;

    #[test]
    fn crc_matches_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn torn_tail_is_dropped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = Disk::open(dir.path()).unwrap();
        let effects: Vec<E> = vec![
            Effect::Append { name: "log".into(), record: b"one".to_vec() },
            Effect::Append { name: "log".into(), record: b"two".to_vec() },
            Effect::Save { name: "meta".into(), bytes: b"m1".to_vec() },
            Effect::Save { name: "meta".into(), bytes: b"m2".to_vec() },
        ];
        disk.commit(&effects).unwrap();
        drop(disk);
        // A crash in the middle of the next append: half a frame.
        let path = dir.path().join("log-log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut disk = Disk::open(dir.path()).unwrap();
        let storage = disk.load().unwrap();
        assert_eq!(storage.log("log"), &[b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(storage.file("meta"), Some(&b"m2"[..]));
        disk.commit(&[E::Append { name: "log".into(), record: b"three".to_vec() }]).unwrap();
        let storage = Disk::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(storage.log("log").len(), 3);
    }

    #[test]
    fn corrupt_record_ends_the_log_and_rewrite_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = Disk::open(dir.path()).unwrap();
        disk.commit(&[
            E::Append { name: "l".into(), record: b"a".to_vec() },
            E::Append { name: "l".into(), record: b"b".to_vec() },
        ])
        .unwrap();
        let path = dir.path().join("log-l");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let storage = Disk::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(storage.log("l"), &[b"a".to_vec()]);
        let mut disk = Disk::open(dir.path()).unwrap();
        disk.commit(&[
            E::Append { name: "l".into(), record: b"x".to_vec() },
            E::Rewrite { name: "l".into(), records: vec![b"r".to_vec()] },
            E::Append { name: "l".into(), record: b"s".to_vec() },
        ])
        .unwrap();
        let storage = Disk::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(storage.log("l"), &[b"r".to_vec(), b"s".to_vec()]);
        assert!(disk.commit(&[E::Save { name: "../x".into(), bytes: vec![] }]).is_err());
    }
}
