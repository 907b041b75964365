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
//! `[magic u32][len u32][crc u32][generation u64][seq u64][payload]`; the CRC covers
//! generation, seq and payload. With [`RECORD_MAGIC`] the payload is a postcard `Vec<Run>`:
//! the batch's readings as chunks ([`super::codec::chunk`]), one per run of consecutive
//! readings of one stage, a few bytes per reading. Records of an earlier release
//! ([`RECORD_MAGIC_V1`], a postcard `Vec<EntryV1>` of one encoded reading each) are still
//! read, so an upgrade after a power cut replays them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::{chunk, decode_reading};
use crate::reading::Reading;

/// File name of the journal inside `data_dir`.
pub const JOURNAL_FILE: &str = "biogestor.journal";

const MAGIC: &[u8; 4] = b"BGJ1";
const RECORD_MAGIC_V1: u32 = 0x5247_4a52; // "RJGR" little-endian
const RECORD_MAGIC: u32 = 0x3247_4a52; // "RJG2" little-endian
const VERSION: u32 = 1;
/// The header occupies the first page (the size of a page); records start after it.
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

/// One journaled reading: its stage and receive time, as the writer was given it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stage: u64,
    pub ts_us: i64,
    pub reading: Reading,
}

/// Consecutive readings of one stage, as a chunk.
#[derive(Serialize, Deserialize)]
struct Run {
    stage: u64,
    chunk: Vec<u8>,
}

/// One reading as records of the first version held it (its stored encoding).
#[derive(Deserialize)]
struct EntryV1 {
    stage: u64,
    ts_us: i64,
    reading: Vec<u8>,
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
        entries: impl Iterator<Item = (u64, i64, &'a Reading)>,
    ) -> Result<u64, JournalError> {
        let seq = self.last_seq + 1;
        let mut runs: Vec<(u64, Vec<(i64, &Reading)>)> = Vec::new();
        for (stage, ts, r) in entries {
            match runs.last_mut() {
                Some((s, rows)) if *s == stage => rows.push((ts, r)),
                _ => runs.push((stage, vec![(ts, r)])),
            }
        }
        let runs: Vec<Run> = runs
            .into_iter()
            .map(|(stage, rows)| {
                let mut chunk = Vec::new();
                chunk::encode(&rows, &mut chunk);
                Run { stage, chunk }
            })
            .collect();
        let buf = vec![0u8; RECORD_HEAD];
        let mut buf = postcard::to_extend(&runs, buf).map_err(|e| self.io(io::Error::other(e)))?;
        let len = (buf.len() - RECORD_HEAD) as u64;
        // A record of a page or more starts on a page of its own: appending after the partly
        // filled page of the previous record would write that page to the card again.
        let at = if buf.len() as u64 >= HEADER_LEN {
            self.write_at.next_multiple_of(HEADER_LEN)
        } else {
            self.write_at
        };
        if at + buf.len() as u64 > self.capacity || len > u64::from(u32::MAX) {
            return Err(JournalError::Full);
        }
        buf[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        buf[12..20].copy_from_slice(&self.generation.to_le_bytes());
        buf[20..28].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32fast::hash(&buf[12..]);
        buf[8..12].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all_at(&buf, at)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| self.io(e))?;
        self.write_at = at + buf.len() as u64;
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
    /// walk (everything after it was never acknowledged as durable). A record of a page or
    /// more may start at the next page boundary (see [`Journal::append`]).
    fn scan(&mut self, applied_seq: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let mut at = HEADER_LEN;
        let mut prev: Option<u64> = None;
        loop {
            let found = self.read_record(at, prev).or_else(|| {
                let aligned = at.next_multiple_of(HEADER_LEN);
                (aligned != at)
                    .then(|| self.read_record(aligned, prev))
                    .flatten()
            });
            let Some((record, end)) = found else {
                break;
            };
            prev = Some(record.seq);
            at = end;
            if record.seq > applied_seq {
                out.push(record);
            }
        }
        self.write_at = at;
        self.last_seq = self.last_seq.max(prev.unwrap_or(0)).max(applied_seq);
        out
    }

    /// The intact record of the current generation at `at` following `prev`, and its end.
    fn read_record(&self, at: u64, prev: Option<u64>) -> Option<(Record, u64)> {
        let mut head = [0u8; RECORD_HEAD];
        if at + RECORD_HEAD as u64 > self.capacity {
            return None;
        }
        self.file.read_exact_at(&mut head, at).ok()?;
        let word = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&head[r]);
            u64::from_le_bytes(b)
        };
        let (magic, len, crc) = (word(0..4) as u32, word(4..8), word(8..12) as u32);
        let (generation, seq) = (word(12..20), word(20..28));
        let end = at + RECORD_HEAD as u64 + len;
        if !matches!(magic, RECORD_MAGIC | RECORD_MAGIC_V1)
            || generation != self.generation
            || end > self.capacity
            || prev.is_some_and(|p| seq != p + 1)
        {
            return None;
        }
        let mut body = vec![0u8; RECORD_HEAD - 12 + len as usize];
        body[..16].copy_from_slice(&head[12..]);
        self.file
            .read_exact_at(&mut body[16..], at + RECORD_HEAD as u64)
            .ok()?;
        if crc32fast::hash(&body) != crc {
            return None;
        }
        let entries = decode_payload(magic, &body[16..])?;
        Some((Record { seq, entries }, end))
    }
}

/// The readings of a record's payload; `None` when it does not decode (a record written by
/// a damaged or different program ends the walk like a torn one).
fn decode_payload(magic: u32, payload: &[u8]) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    if magic == RECORD_MAGIC_V1 {
        for e in postcard::from_bytes::<Vec<EntryV1>>(payload).ok()? {
            out.push(Entry {
                stage: e.stage,
                ts_us: e.ts_us,
                reading: decode_reading(&e.reading).ok()?,
            });
        }
        return Some(out);
    }
    for run in postcard::from_bytes::<Vec<Run>>(payload).ok()? {
        for (ts_us, reading) in chunk::decode(&run.chunk).ok()? {
            out.push(Entry {
                stage: run.stage,
                ts_us,
                reading,
            });
        }
    }
    Some(out)
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
