//! The client host's simulated disk: what the workflow journal (redb, the same code as in the
//! real client) writes to in a simulated run.
//!
//! A write lands in the disk's current image at once, as in an OS page cache; a sync makes
//! everything written so far durable. A crash of the client's host keeps only the durable image
//! — or, to model a write torn by the crash, the durable image plus the first `n` writes made
//! since the last sync (each whole). After a crash, the handles open before it fail every
//! operation: the crashed process's database cannot touch the disk the restarted one opens.

use std::sync::{Arc, Mutex};

use redb::{BackendError, StorageBackend};

/// The largest a simulated disk may grow (the journal of one run is far smaller).
pub const MAX_DISK_BYTES: u64 = 1 << 30;

/// A write at an offset, or a new length (`None` bytes).
type Write = (u64, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct State {
    /// What survives a crash.
    durable: Vec<u8>,
    /// What reads see.
    current: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Write>,
    /// Bumped by each crash; handles of an older generation are dead.
    generation: u64,
    syncs: u64,
    /// Operations left before the host crashes in the middle of whatever it is doing (tests).
    armed: Option<u64>,
    /// The armed crash happened: every operation fails until [`SimDisk::crash`].
    dead: bool,
}

/// A disk that survives the crashes of the host it belongs to.
#[derive(Clone, Debug, Default)]
pub struct SimDisk(Arc<Mutex<State>>);

/// A process's open handle on a [`SimDisk`].
#[derive(Debug)]
pub struct DiskHandle {
    disk: SimDisk,
    generation: u64,
}

fn apply(image: &mut Vec<u8>, offset: u64, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            let start = offset as usize;
            let end = start + b.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(b);
        }
        None => image.resize(offset as usize, 0),
    }
}

impl SimDisk {
    /// A new, empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Opens a handle for the process now running.
    pub fn handle(&self) -> DiskHandle {
        DiskHandle { disk: self.clone(), generation: self.0.lock().expect("disk").generation }
    }

    /// Writes since the last sync (what a crash may lose).
    pub fn unsynced(&self) -> usize {
        self.0.lock().expect("disk").pending.len()
    }

    /// Syncs so far.
    pub fn syncs(&self) -> u64 {
        self.0.lock().expect("disk").syncs
    }

    /// The host will crash at its `n`-th disk operation from now (a write, a resize or a sync),
    /// which fails, as does everything after it until [`crash`](Self::crash) is called: a crash
    /// in the middle of a commit.
    pub fn crash_after(&self, n: u64) {
        self.0.lock().expect("disk").armed = Some(n);
    }

    /// The host crashed: every handle dies; of the writes since the last sync, the first `keep`
    /// survive (all of them when `keep` exceeds their count), the rest are lost.
    pub fn crash(&self, keep: usize) {
        let mut s = self.0.lock().expect("disk");
        s.generation += 1;
        s.dead = false;
        s.armed = None;
        let mut image = s.durable.clone();
        for (offset, bytes) in s.pending.iter().take(keep) {
            apply(&mut image, *offset, bytes.as_deref());
        }
        s.pending.clear();
        s.durable.clone_from(&image);
        s.current = image;
    }
}

fn crashed() -> BackendError {
    BackendError::Io(std::io::Error::other("the host crashed: this handle is dead"))
}

impl DiskHandle {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, BackendError>) -> Result<T, BackendError> {
        let mut s = self.disk.0.lock().expect("disk");
        if s.generation != self.generation || s.dead {
            return Err(crashed());
        }
        f(&mut s)
    }

    /// Counts an operation that changes the disk against an armed crash.
    fn mutate(&self, f: impl FnOnce(&mut State)) -> Result<(), BackendError> {
        self.with(|s| {
            match s.armed {
                Some(0) => {
                    s.dead = true;
                    return Err(crashed());
                }
                Some(n) => s.armed = Some(n - 1),
                None => {}
            }
            f(s);
            Ok(())
        })
    }
}

impl StorageBackend for DiskHandle {
    fn len(&self) -> Result<u64, BackendError> {
        self.with(|s| Ok(s.current.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.with(|s| {
            let start =
                usize::try_from(offset).map_err(|_| BackendError::Io(std::io::ErrorKind::InvalidInput.into()))?;
            let end = start.checked_add(out.len()).filter(|&e| e <= s.current.len());
            let Some(end) = end else { return Err(BackendError::Io(std::io::ErrorKind::UnexpectedEof.into())) };
            out.copy_from_slice(&s.current[start..end]);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        if len > MAX_DISK_BYTES {
            return Err(BackendError::Io(std::io::Error::other("the simulated disk is full")));
        }
        self.mutate(|s| {
            apply(&mut s.current, len, None);
            s.pending.push((len, None));
        })
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        self.mutate(|s| {
            let pending = std::mem::take(&mut s.pending);
            for (offset, bytes) in &pending {
                apply(&mut s.durable, *offset, bytes.as_deref());
            }
            s.syncs += 1;
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let end = offset.checked_add(data.len() as u64).filter(|&e| e <= MAX_DISK_BYTES);
        if end.is_none() {
            return Err(BackendError::Io(std::io::Error::other("the simulated disk is full")));
        }
        self.mutate(|s| {
            apply(&mut s.current, offset, Some(data));
            s.pending.push((offset, Some(data.to_vec())));
        })
    }
}

#[cfg(test)]
mod tests {
    use gauntlet_client::flow::{Journal, RedbJournal};
    use gauntlet_core::workflow::Record;

    use super::*;

    fn record(step: u32) -> Record {
        Record::Intent { step }
    }

    #[test]
    fn a_synced_record_survives_a_crash_and_an_unsynced_one_does_not() {
        let disk = SimDisk::new();
        let mut j = RedbJournal::on(disk.handle()).expect("opens");
        j.append(1, &record(0), true).expect("durable");
        j.append(1, &record(1), false).expect("buffered");
        assert_eq!(j.records(1).expect("reads").len(), 2, "the live process reads both");
        disk.crash(0);
        // The dead process's handle fails; the restarted one reads what was durable.
        assert!(j.append(1, &record(2), true).is_err());
        drop(j);
        let mut j = RedbJournal::on(disk.handle()).expect("recovers");
        assert_eq!(j.records(1).expect("reads"), [record(0)]);
    }

    /// The disk's state, to replay one crash many ways.
    fn image(disk: &SimDisk) -> (Vec<u8>, Vec<u8>, Vec<Write>) {
        let s = disk.0.lock().expect("disk");
        (s.durable.clone(), s.current.clone(), s.pending.clone())
    }

    #[test]
    fn a_crash_at_any_write_of_a_durable_append_torn_any_way_recovers_to_before_or_after_it() {
        let before = [record(0), record(1)];
        // Crash at the n-th disk operation of the third (durable) append, for every n until the
        // append completes; then keep every prefix of the writes not yet synced.
        for n in 0.. {
            let disk = SimDisk::new();
            let mut j = RedbJournal::on(disk.handle()).expect("opens");
            j.append(7, &before[0], true).expect("durable");
            j.append(7, &before[1], true).expect("durable");
            disk.crash_after(n);
            if j.append(7, &record(2), true).is_ok() {
                assert!(n > 0, "the append touched the disk");
                break;
            }
            drop(j);
            let (durable, current, pending) = image(&disk);
            for keep in 0..=pending.len() {
                let torn = SimDisk::new();
                {
                    let mut s = torn.0.lock().expect("disk");
                    (s.durable, s.current, s.pending) = (durable.clone(), current.clone(), pending.clone());
                }
                torn.crash(keep);
                let mut j = RedbJournal::on(torn.handle()).unwrap_or_else(|e| panic!("crash at {n}, keep {keep}: {e}"));
                let records = j.records(7).unwrap_or_else(|e| panic!("crash at {n}, keep {keep}: {e}"));
                assert!(
                    records == before || records == [before[0].clone(), before[1].clone(), record(2)],
                    "crash at {n}, keep {keep}: {records:?}"
                );
                j.append(7, &record(9), true).expect("appends after recovery");
                assert_eq!(j.records(7).expect("reads").last(), Some(&record(9)));
            }
        }
    }
}
