//! The readings journal: a small preallocated file (`biogestor.journal` in `data_dir`) that
//! makes each batch of readings durable with one append and one `fdatasync`, so the database
//! itself can commit without syncing (redb's `Durability::None`, which keeps its pages in
//! memory) and be made durable only every few minutes (a *checkpoint*). One page rewritten per
//! commit instead of a dozen is what keeps a one-second durability window cheap for an SD card.
//!
//! Each record carries a sequence number; the database stores the last sequence it applied
//! (`meta.journal_seq`) in the same transaction, so after a power cut the records the database
//! lost are applied again and none is applied twice. After a durable checkpoint the journal is
//! reset: a new generation number is written in its header, and records of an older generation
//! (still physically present further on) are ignored.
//!
//! The file is allocated in full when created, so appends never need new disk space: when the
//! disk is full the journal still takes readings (the database cannot) until it is itself full.
//! It is tied to one store instance (a restored store does not replay another store's journal).
//!
//! Layout: a header page (`MAGIC`, version, store instance, generation, CRC), then records
//! `[RECORD_MAGIC u32][len u32][crc u32][generation u64][seq u64][payload]`; the CRC covers
//! generation, seq and payload; the payload is postcard `Vec<Entry>`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the journal inside `data_dir`.
pub const JOURNAL_FILE: &str = "biogestor.journal";

const MAGIC: &[u8; 4] = b"BGJ1";
const RECORD_MAGIC: u32 = 0x5247_4a52; // "RJGR" little-endian
const VERSION: u32 = 1;
/// The header occupies the first page; records start after it.
const HEADER_LEN: u64 = 4096;
const RECORD_HEAD: usize = 4 + 4 + 4 + 8 + 8;

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The record does not fit in what is left: a checkpoint (durable commit and reset) must
    /// come first.
    #[error("the journal is full")]
    Full,
    #[error("journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// One reading as journaled: its stage, receive time and stored (versioned) encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub stage: u64,
    pub ts_us: i64,
    pub reading: Vec<u8>,
}

/// A journaled batch.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub entries: Vec<Entry>,
}

/// The open journal file.
pub struct Journal {
    file: File,
    path: PathBuf,
    capacity: u64,
    instance: u64,
    generation: u64,
    write_at: u64,
    last_seq: u64,
}

impl Journal {
    /// Opens (creating and allocating it if needed) the journal of the store with id
    /// `instance`, whose database has applied every record up to `applied_seq`. Returns the
    /// journal and the records the database has not applied yet, in order.
    pub fn open(
        data_dir: &Path,
        capacity: u64,
        instance: u64,
        applied_seq: u64,
    ) -> Result<(Journal, Vec<Record>), JournalError> {
        let path = data_dir.join(JOURNAL_FILE);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let capacity = capacity.max(HEADER_LEN * 4);
        crate::fsmode::create_private_if_missing(&path).map_err(io_err)?;
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        allocate(&file, capacity).map_err(io_err)?;
        let mut journal = Journal {
            file,
            path: path.clone(),
            capacity,
            instance,
            generation: 0,
            write_at: HEADER_LEN,
            last_seq: applied_seq,
        };
        let pending = match journal.read_header() {
            Some((inst, generation)) if inst == instance => {
                journal.generation = generation;
                journal.scan(applied_seq)
            }
            Some(_) => {
                tracing::warn!(path = %path.display(), "journal of another store instance ignored");
                Vec::new()
            }
            None => Vec::new(),
        };
        if journal.generation == 0 {
            journal.reset().map_err(io_err)?;
        }
        Ok((journal, pending))
    }

    /// The last sequence number written (or applied, when the journal is empty).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Bytes used by records since the last reset.
    pub fn used(&self) -> u64 {
        self.write_at - HEADER_LEN
    }

    /// Bytes records may use in all.
    pub fn room(&self) -> u64 {
        self.capacity - HEADER_LEN
    }

    /// Appends a batch and syncs it; returns its sequence number. Nothing is written when it
    /// does not fit ([`JournalError::Full`]).
    pub fn append<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (u64, i64, &'a [u8])>,
    ) -> Result<u64, JournalError> {
        let seq = self.last_seq + 1;
        let mut buf = vec![0u8; RECORD_HEAD];
        let list: Vec<EntryRef<'a>> = entries
            .map(|(stage, ts_us, reading)| EntryRef {
                stage,
                ts_us,
                reading,
            })
            .collect();
        buf = postcard::to_extend(&list, buf).map_err(|e| self.io(io::Error::other(e)))?;
        let len = (buf.len() - RECORD_HEAD) as u64;
        if self.write_at + buf.len() as u64 > self.capacity || len > u64::from(u32::MAX) {
            return Err(JournalError::Full);
        }
        buf[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        buf[12..20].copy_from_slice(&self.generation.to_le_bytes());
        buf[20..28].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32fast::hash(&buf[12..]);
        buf[8..12].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all_at(&buf, self.write_at)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| self.io(e))?;
        self.write_at += buf.len() as u64;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Reads the records after `applied_seq` back from the file (after a failed database
    /// commit dropped them from memory).
    pub fn records_after(&self, applied_seq: u64) -> Vec<Record> {
        let mut probe = Journal {
            file: match self.file.try_clone() {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "journal cannot be read back");
                    return Vec::new();
                }
            },
            path: self.path.clone(),
            capacity: self.capacity,
            instance: self.instance,
            generation: self.generation,
            write_at: HEADER_LEN,
            last_seq: 0,
        };
        probe.scan(applied_seq)
    }

    /// Starts a new generation: every record written so far is treated as applied. Called
    /// after a durable commit that applied all of them.
    pub fn reset(&mut self) -> io::Result<()> {
        let generation = if self.generation == 0 {
            // A new or unreadable header: a random generation cannot match stale records.
            rand::random::<u64>() | 1
        } else {
            self.generation.wrapping_add(1).max(1)
        };
        let mut page = vec![0u8; HEADER_LEN as usize];
        page[0..4].copy_from_slice(MAGIC);
        page[4..8].copy_from_slice(&VERSION.to_le_bytes());
        page[8..16].copy_from_slice(&self.instance.to_le_bytes());
        page[16..24].copy_from_slice(&generation.to_le_bytes());
        let crc = crc32fast::hash(&page[0..24]);
        page[24..28].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&page, 0)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.write_at = HEADER_LEN;
        Ok(())
    }

    fn io(&self, source: io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The header's (store instance, generation) when it is intact.
    fn read_header(&self) -> Option<(u64, u64)> {
        let mut page = [0u8; 28];
        self.file.read_exact_at(&mut page, 0).ok()?;
        let crc = u32::from_le_bytes(page[24..28].try_into().ok()?);
        if &page[0..4] != MAGIC
            || u32::from_le_bytes(page[4..8].try_into().ok()?) != VERSION
            || crc32fast::hash(&page[0..24]) != crc
        {
            return None;
        }
        let instance = u64::from_le_bytes(page[8..16].try_into().ok()?);
        let generation = u64::from_le_bytes(page[16..24].try_into().ok()?);
        Some((instance, generation))
    }

    /// Walks the records of the current generation from the start, leaving `write_at` after
    /// the last intact one; returns those after `applied_seq`. A torn or stale record ends the
    /// walk (everything after it was never acknowledged as durable).
    fn scan(&mut self, applied_seq: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let mut at = HEADER_LEN;
        let mut prev: Option<u64> = None;
        let mut head = [0u8; RECORD_HEAD];
        while at + RECORD_HEAD as u64 <= self.capacity {
            if self.file.read_exact_at(&mut head, at).is_err() {
                break;
            }
            let word = |r: std::ops::Range<usize>| {
                let mut b = [0u8; 8];
                b[..r.len()].copy_from_slice(&head[r]);
                u64::from_le_bytes(b)
            };
            let (magic, len, crc) = (word(0..4) as u32, word(4..8), word(8..12) as u32);
            let (generation, seq) = (word(12..20), word(20..28));
            let end = at + RECORD_HEAD as u64 + len;
            if magic != RECORD_MAGIC
                || generation != self.generation
                || end > self.capacity
                || prev.is_some_and(|p| seq != p + 1)
            {
                break;
            }
            let mut body = vec![0u8; RECORD_HEAD - 12 + len as usize];
            body[..16].copy_from_slice(&head[12..]);
            if self
                .file
                .read_exact_at(&mut body[16..], at + RECORD_HEAD as u64)
                .is_err()
                || crc32fast::hash(&body) != crc
            {
                break;
            }
            let Ok(entries) = postcard::from_bytes::<Vec<Entry>>(&body[16..]) else {
                break;
            };
            prev = Some(seq);
            at = end;
            if seq > applied_seq {
                out.push(Record { seq, entries });
            }
        }
        self.write_at = at;
        self.last_seq = self.last_seq.max(prev.unwrap_or(0)).max(applied_seq);
        out
    }
}

/// Serialises exactly like [`Entry`] without copying the reading.
#[derive(Serialize)]
struct EntryRef<'a> {
    stage: u64,
    ts_us: i64,
    #[serde(with = "serde_bytes_ref")]
    reading: &'a [u8],
}

/// `&[u8]` serialised as serde's `Vec<u8>` is (a sequence of bytes), so [`Entry`] reads it.
mod serde_bytes_ref {
    use serde::Serializer;
    use serde::ser::SerializeSeq;

    pub fn serialize<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(bytes.len()))?;
        for b in *bytes {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
}

/// Gives the file its full size in real blocks (not a sparse hole), so later appends need no
/// free space. Filesystems without `fallocate` get zeros written instead.
fn allocate(file: &File, capacity: u64) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len >= capacity {
        return Ok(());
    }
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, capacity) {
        Ok(()) => {}
        Err(rustix::io::Errno::OPNOTSUPP) => {
            let zeros = vec![0u8; 64 * 1024];
            let mut at = len;
            while at < capacity {
                let n = (capacity - at).min(zeros.len() as u64) as usize;
                file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
        }
        Err(e) => return Err(e.into()),
    }
    file.sync_all()
}

#[cfg(test)]
mod tests;
