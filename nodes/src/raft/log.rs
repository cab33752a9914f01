//! The in-memory Raft log: entries after the last snapshot, and the snapshot's index and term.
//!
//! Indexes start at 1; index 0 with term 0 is the empty prefix every log shares (§5.3).

use super::Entry;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// The last index and term covered by the snapshot (0, 0 without one).
    pub snap_index: u64,
    pub snap_term: u64,
    /// `entries[i].index == snap_index + 1 + i`.
    entries: Vec<Entry>,
}

impl Log {
    pub fn last_index(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.last().map(|e| e.term).unwrap_or(self.snap_term)
    }

    /// The term of the entry at `index`, when the log still knows it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snap_index {
            return Some(self.snap_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index <= self.snap_index {
            return None;
        }
        self.entries.get((index - self.snap_index - 1) as usize)
    }

    /// Entries `from..=to` that are still in the log.
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        let lo = from.max(self.snap_index + 1);
        let hi = to.min(self.last_index());
        if lo > hi {
            return &[];
        }
        let base = self.snap_index + 1;
        &self.entries[(lo - base) as usize..=(hi - base) as usize]
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn push(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log entries must be contiguous");
        self.entries.push(entry);
    }

    /// Removes the entries at `index` and after.
    pub fn truncate_from(&mut self, index: u64) {
        assert!(index > self.snap_index, "cannot truncate into the snapshot");
        self.entries.truncate((index - self.snap_index - 1) as usize);
    }

    /// Forgets the entries up to `index` (now covered by a snapshot of term `term`).
    pub fn compact(&mut self, index: u64, term: u64) {
        assert!(index >= self.snap_index && index <= self.last_index());
        let drop = (index - self.snap_index) as usize;
        self.entries.drain(..drop);
        self.snap_index = index;
        self.snap_term = term;
    }

    /// Starts over after an installed snapshot that the log does not match.
    pub fn reset(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.snap_index = index;
        self.snap_term = term;
    }

    /// The first index of the run of entries that share the term at `index` (a rejection hint:
    /// the leader can skip a whole conflicting term in one round trip, §5.3).
    pub fn first_of_term(&self, index: u64, floor: u64) -> u64 {
        let Some(term) = self.term_at(index) else { return index };
        let mut i = index;
        while i > floor + 1 && i > self.snap_index + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }
}
