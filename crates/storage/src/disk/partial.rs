//! Partial pieces in the disk actor: v1 pieces hashed as their blocks
//! arrive and written through in runs; v2 pieces kept until complete, then
//! hashed whole ([`hash_and_write`]).

use std::collections::BTreeMap;

use bytes::Bytes;
use sha1::{Digest, Sha1};
use tokio::sync::OwnedSemaphorePermit;

use super::{DiskError, WriteOutcome};
use crate::error::StorageError;
use crate::store::Storage;

/// Hashed blocks are written to disk in runs of at most this many bytes (one
/// `pwritev` per run instead of one `pwrite` per block).
const WRITE_RUN: u64 = 256 << 10;

pub(crate) struct Block {
    pub(crate) len: u64,
    /// `None` once flushed to disk.
    pub(crate) data: Option<(Bytes, OwnedSemaphorePermit)>,
}

/// A piece with some but not all blocks received.
#[derive(Default)]
pub(crate) struct Partial {
    /// Received blocks at or after `hashed`, by offset.
    pub(crate) blocks: BTreeMap<u64, Block>,
    /// Bytes received (the hashed prefix included).
    pub(crate) received: u64,
    /// Running SHA-1 of `[0, hashed)`; `None` for pieces hashed whole (v2).
    pub(crate) hasher: Option<Sha1>,
    /// End of the prefix that is hashed (and written, or in `run`).
    pub(crate) hashed: u64,
    /// Hashed blocks not written yet, contiguous, ending at `hashed`.
    pub(crate) run: Vec<(Bytes, OwnedSemaphorePermit)>,
    /// Bytes in `run`.
    pub(crate) run_len: u64,
    /// Some block was written to disk before it was hashed.
    pub(crate) flushed: bool,
    /// A flushed block could not be read back: the piece must fail.
    pub(crate) unreadable: bool,
    /// Arrival order of the first block, for flushing oldest first.
    pub(crate) born: u64,
}

/// How a new block stands against the blocks a partial piece holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Its range is free: take it.
    New,
    /// Exactly this block (or a range already hashed) was received.
    Duplicate,
    /// It overlaps a received block partially: a bad block.
    Overlaps,
}

impl Partial {
    /// Where the block `[off, off + len)` stands against the received ones.
    pub(crate) fn fit(&self, off: u64, len: u64) -> Fit {
        if off < self.hashed {
            return if off + len <= self.hashed {
                Fit::Duplicate
            } else {
                Fit::Overlaps
            };
        }
        if let Some((&po, pb)) = self.blocks.range(..=off).next_back() {
            if po == off && pb.len == len {
                return Fit::Duplicate;
            }
            if po + pb.len > off {
                return Fit::Overlaps;
            }
        }
        match self.blocks.range(off + 1..).next() {
            Some((&next, _)) if next < off + len => Fit::Overlaps,
            _ => Fit::New,
        }
    }

    /// Writes every block held in memory to disk, unhashed (they are read
    /// back when the hashed prefix reaches them), releasing their budget.
    /// Returns how many blocks were written.
    pub(crate) fn flush(&mut self, storage: &Storage, piece: u32) -> Result<u64, StorageError> {
        let mut n = self.run.len() as u64;
        self.write_run(storage, piece)?;
        for (&off, b) in self.blocks.iter_mut() {
            if let Some((data, _)) = &b.data {
                storage.write(piece, off, data)?;
                b.data = None; // releases the permit
                self.flushed = true;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes the hashed run to disk (its aligned part possibly still in
    /// flight: see [`Storage::wait_written`]), releasing its memory.
    pub(crate) fn write_run(&mut self, storage: &Storage, piece: u32) -> Result<(), StorageError> {
        if self.run.is_empty() {
            return Ok(());
        }
        let bufs: Vec<&[u8]> = self.run.iter().map(|(d, _)| &d[..]).collect();
        storage.write_vectored_behind(piece, self.hashed - self.run_len, &bufs)?;
        self.run.clear();
        self.run_len = 0;
        Ok(())
    }

    /// Hashes every block that extends the hashed prefix (reading flushed
    /// ones back), writing runs of [`WRITE_RUN`] bytes as they fill up.
    pub(crate) fn advance(&mut self, storage: &Storage, piece: u32) -> Result<(), StorageError> {
        let Some(mut h) = self.hasher.take() else {
            return Ok(());
        };
        let r = self.advance_with(&mut h, storage, piece);
        self.hasher = Some(h);
        r
    }

    fn advance_with(
        &mut self,
        h: &mut Sha1,
        storage: &Storage,
        piece: u32,
    ) -> Result<(), StorageError> {
        while let Some(entry) = self.blocks.first_entry() {
            if *entry.key() != self.hashed {
                break;
            }
            let b = entry.remove();
            match b.data {
                Some((data, permit)) => {
                    let next = self
                        .blocks
                        .first_key_value()
                        .filter(|(&off, _)| off == self.hashed + b.len)
                        .and_then(|(_, nb)| nb.data.as_ref())
                        .map(|(d, _)| &d[..]);
                    crate::hash::update_prefetched(h, &data, next);
                    self.run.push((data, permit));
                    self.run_len += b.len;
                    self.hashed += b.len;
                    if self.run_len >= WRITE_RUN {
                        self.write_run(storage, piece)?;
                    }
                }
                None => {
                    // Flushed earlier: on disk already, hash it from there.
                    self.write_run(storage, piece)?;
                    let mut buf = vec![0u8; b.len as usize];
                    if !storage.read_into(piece, self.hashed, &mut buf)? {
                        self.unreadable = true;
                    }
                    h.update(&buf);
                    self.hashed += b.len;
                }
            }
        }
        Ok(())
    }
}

/// Hashes a complete piece (from memory, or read back if parts of it were
/// flushed) and writes it when it matches.
pub(crate) fn hash_and_write(
    storage: &Storage,
    piece: u32,
    p: Partial,
) -> Result<WriteOutcome, DiskError> {
    if !p.flushed {
        // Not flushed: every block is in memory and, the piece being
        // complete, they are contiguous from offset 0.
        let bufs: Vec<&[u8]> = p
            .blocks
            .values()
            .filter_map(|b| b.data.as_ref().map(|(d, _)| &d[..]))
            .collect();
        if !storage.verify_data(piece, &bufs) {
            return Ok(WriteOutcome::PieceFailed(piece));
        }
        storage.write_vectored(piece, 0, &bufs)?;
        return Ok(WriteOutcome::PieceVerified(piece));
    }
    // Some blocks are on disk already: write the rest, then hash from disk.
    for (&off, b) in &p.blocks {
        if let Some((d, _)) = &b.data {
            storage.write(piece, off, d)?;
        }
    }
    drop(p);
    Ok(if storage.verify_on_disk(piece)? {
        WriteOutcome::PieceVerified(piece)
    } else {
        WriteOutcome::PieceFailed(piece)
    })
}
