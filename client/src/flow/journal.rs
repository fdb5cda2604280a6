//! The journal: every workflow run's records, in order, in an embedded database.
//!
//! [`Journal`] is the seam; [`RedbJournal`] is the real one, on [redb](https://docs.rs/redb)
//! (pure Rust, a durability choice per transaction, and a small storage-backend trait, so the
//! simulator runs this same journal on its simulated disk). Chosen over SQLite for those last
//! two: on this kind of machine both are bound by one fsync per durable commit (~3.5 ms), and a
//! misspelt SQLite pragma would fail silently.

use std::collections::BTreeMap;
use std::path::Path;

use gauntlet_core::workflow::Record;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// A run's records: key (run, sequence number) → the record as JSON.
const RECORDS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("records");

/// The most records one run may have (a run of [`MAX_STEPS`](gauntlet_core::workflow::definition::MAX_STEPS)
/// steps writes at most about six per step).
pub const MAX_RECORDS: u32 = 100_000;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database failed.
    #[error("journal storage: {0}")]
    Storage(#[from] redb::Error),
    /// A record is not a record.
    #[error("journal record {seq} of run {run:016x} is corrupt: {error}")]
    Corrupt {
        /// The run.
        run: u64,
        /// The record's number.
        seq: u32,
        /// What is wrong.
        error: String,
    },
    /// A run wrote more than [`MAX_RECORDS`].
    #[error("run {0:016x} has more than {MAX_RECORDS} records")]
    Full(u64),
}

/// Where workflow runs keep their records. `append` with `sync` returns once the record is
/// durable; without, it may be lost in a crash along with every unsynced record after it.
pub trait Journal: Send {
    /// Appends `record` to run `run`'s records.
    fn append(&mut self, run: u64, record: &Record, sync: bool) -> Result<(), JournalError>;
    /// Run `run`'s records, in order.
    fn records(&mut self, run: u64) -> Result<Vec<Record>, JournalError>;
    /// Every run with records, ascending.
    fn runs(&mut self) -> Result<Vec<u64>, JournalError>;
}

/// A journal shared by the workflows of one process.
pub type SharedJournal = std::sync::Arc<std::sync::Mutex<dyn Journal>>;

/// The journal on redb. A record that must be durable is committed with
/// [`Durability::Immediate`] (one fsync) together with the records before it that need not be,
/// which wait in memory until then: lost in a crash, as an unsynced write would be, and written
/// without a transaction of their own.
#[derive(Debug)]
pub struct RedbJournal {
    db: Database,
    /// Each run's next record number.
    next: BTreeMap<u64, u32>,
    /// Records not yet committed: (run, number, JSON).
    pending: Vec<(u64, u32, Vec<u8>)>,
}

fn storage(e: impl Into<redb::Error>) -> JournalError {
    JournalError::Storage(e.into())
}

impl RedbJournal {
    /// Opens (or creates) the journal file at `path`.
    pub fn open(path: &Path) -> Result<RedbJournal, JournalError> {
        RedbJournal::with(Database::create(path).map_err(storage)?)
    }

    /// A journal on a storage backend (the simulator's disk).
    pub fn on(backend: impl redb::StorageBackend) -> Result<RedbJournal, JournalError> {
        RedbJournal::with(Database::builder().create_with_backend(backend).map_err(storage)?)
    }

    fn with(db: Database) -> Result<RedbJournal, JournalError> {
        let tx = db.begin_write().map_err(storage)?;
        tx.open_table(RECORDS).map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(RedbJournal { db, next: BTreeMap::new(), pending: Vec::new() })
    }

    fn next_seq(&mut self, run: u64) -> Result<u32, JournalError> {
        if let Some(&n) = self.next.get(&run) {
            return Ok(n);
        }
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(RECORDS).map_err(storage)?;
        let last = table.range((run, 0)..=(run, u32::MAX)).map_err(storage)?.next_back();
        let n = match last {
            Some(entry) => entry.map_err(storage)?.0.value().1.saturating_add(1),
            None => 0,
        };
        self.next.insert(run, n);
        Ok(n)
    }
}

impl Journal for RedbJournal {
    fn append(&mut self, run: u64, record: &Record, sync: bool) -> Result<(), JournalError> {
        let seq = self.next_seq(run)?;
        if seq >= MAX_RECORDS {
            return Err(JournalError::Full(run));
        }
        let bytes = serde_json::to_vec(record).expect("a record serializes");
        self.next.insert(run, seq + 1);
        self.pending.push((run, seq, bytes));
        if !sync {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(storage)?;
        tx.set_durability(Durability::Immediate).map_err(storage)?;
        {
            let mut table = tx.open_table(RECORDS).map_err(storage)?;
            for (run, seq, bytes) in &self.pending {
                table.insert((*run, *seq), bytes.as_slice()).map_err(storage)?;
            }
        }
        tx.commit().map_err(storage)?;
        self.pending.clear();
        Ok(())
    }

    fn records(&mut self, run: u64) -> Result<Vec<Record>, JournalError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(RECORDS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.range((run, 0)..=(run, u32::MAX)).map_err(storage)? {
            let (key, value) = entry.map_err(storage)?;
            let seq = key.value().1;
            let record = serde_json::from_slice(value.value()).map_err(|e| JournalError::Corrupt {
                run,
                seq,
                error: e.to_string(),
            })?;
            out.push(record);
        }
        for (_, seq, bytes) in self.pending.iter().filter(|(r, ..)| *r == run) {
            let record = serde_json::from_slice(bytes).map_err(|e| JournalError::Corrupt {
                run,
                seq: *seq,
                error: e.to_string(),
            })?;
            out.push(record);
        }
        Ok(out)
    }

    fn runs(&mut self) -> Result<Vec<u64>, JournalError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(RECORDS).map_err(storage)?;
        let mut runs = Vec::new();
        let mut from = 0u64;
        // One seek per run, not one read per record.
        loop {
            let Some(entry) = table.range((from, 0)..).map_err(storage)?.next() else { break };
            let run = entry.map_err(storage)?.0.value().0;
            runs.push(run);
            let Some(next) = run.checked_add(1) else { break };
            from = next;
        }
        runs.extend(self.pending.iter().map(|(run, ..)| *run));
        runs.sort_unstable();
        runs.dedup();
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_come_back_in_order_per_run_across_a_reopen() {
        let dir = std::env::temp_dir().join(format!("gauntlet-journal-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let started = Record::Started { workflow: "w".into(), digest: 7, inputs: json!({"a": 1}) };
        {
            let mut j = RedbJournal::open(&dir).expect("opens");
            j.append(9, &started, true).expect("appends");
            j.append(3, &Record::Intent { step: 0 }, false).expect("appends");
            j.append(9, &Record::Intent { step: 1 }, true).expect("appends");
        }
        let mut j = RedbJournal::open(&dir).expect("reopens");
        assert_eq!(j.runs().expect("runs"), [3, 9]);
        assert_eq!(j.records(9).expect("records"), [started, Record::Intent { step: 1 }]);
        j.append(9, &Record::Skipped { step: 2 }, true).expect("appends after a reopen");
        assert_eq!(j.records(9).expect("records").len(), 3);
        let _ = std::fs::remove_file(&dir);
    }
}
