//! Checking existing data: hash pieces already on disk, on all cores.
//!
//! Pieces are grouped into runs of consecutive pieces of about
//! [`CHECK_CHUNK`] bytes; each rayon task reads its run with one positional
//! read per file span and hashes every piece from that buffer. A run that
//! cannot be read whole (missing or short file) falls back to piece-by-piece
//! reads, so a short file only loses the pieces it does not cover. Missing
//! files mean missing pieces; I/O errors other than "not there" are returned.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::error::StorageError;
use crate::store::Storage;

/// Bytes read per checker task (several pieces when pieces are small).
pub const CHECK_CHUNK: u64 = 4 << 20;

/// Progress of a running check, passed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckProgress {
    /// Pieces hashed so far.
    pub pieces_done: u64,
    /// Pieces to hash in this check.
    pub pieces_total: u64,
    /// Bytes hashed so far.
    pub bytes_done: u64,
}

impl Storage {
    /// Hashes every piece; `result[i]` is true when piece `i` is on disk and
    /// matches its hash. `progress` is called from worker threads after each
    /// run of pieces.
    pub fn check(
        &self,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<Vec<bool>, StorageError> {
        let all: Vec<u32> = (0..self.map().piece_count()).collect();
        let mut out = vec![false; all.len()];
        self.check_pieces(&all, &mut out, progress)?;
        Ok(out)
    }

    /// Hashes the pieces listed in `pieces` (ascending, each `< piece_count`)
    /// and stores the verdict in `out[piece]`; other entries are untouched.
    pub fn check_pieces(
        &self,
        pieces: &[u32],
        out: &mut [bool],
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<(), StorageError> {
        let map = self.map();
        let pl = map.layout().piece_length;
        let per_run = (CHECK_CHUNK / pl).max(1) as usize;
        // Pieces whose wanted files are absent or too short cannot be on disk:
        // skip them without reading (a fresh download checks nothing).
        let sizes = self.on_disk_lengths();
        let could_be_there = |p: u32| {
            map.piece_spans(p).is_ok_and(|mut spans| {
                spans.all(|s| {
                    s.pad
                        || !self.is_wanted(s.file)
                        || sizes
                            .get(s.file)
                            .copied()
                            .flatten()
                            .is_some_and(|l| l >= s.file_offset + s.len)
                })
            })
        };
        let skipped = pieces.iter().filter(|&&p| !could_be_there(p)).count();
        let kept: Vec<u32>;
        let pieces = if skipped == 0 {
            pieces
        } else {
            for &p in pieces.iter().filter(|&&p| !could_be_there(p)) {
                if let Some(slot) = out.get_mut(p as usize) {
                    *slot = false;
                }
            }
            kept = pieces
                .iter()
                .copied()
                .filter(|&p| could_be_there(p))
                .collect();
            &kept
        };
        // Runs of consecutive pieces, at most `per_run` long.
        let mut runs: Vec<&[u32]> = Vec::new();
        let mut start = 0;
        for i in 1..=pieces.len() {
            let cut = i == pieces.len()
                || i - start >= per_run
                || pieces.get(i).copied() != pieces.get(i - 1).map(|p| p + 1);
            if cut {
                if let Some(r) = pieces.get(start..i) {
                    if !r.is_empty() {
                        runs.push(r);
                    }
                }
                start = i;
            }
        }
        let done = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let total = pieces.len() as u64;
        let results: Vec<Vec<(u32, bool)>> = runs
            .par_iter()
            .map_init(Vec::new, |buf, run| {
                let r = self.check_run(run, buf)?;
                let n = done.fetch_add(run.len() as u64, Ordering::Relaxed) + run.len() as u64;
                let b = bytes.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
                progress(CheckProgress {
                    pieces_done: n,
                    pieces_total: total,
                    bytes_done: b,
                });
                Ok(r)
            })
            .collect::<Result<_, StorageError>>()?;
        for (p, ok) in results.into_iter().flatten() {
            if let Some(slot) = out.get_mut(p as usize) {
                *slot = ok;
            }
        }
        Ok(())
    }

    /// Length on disk of each file (`None`: absent, or a pad file).
    fn on_disk_lengths(&self) -> Vec<Option<u64>> {
        (0..self.map().file_count())
            .map(|i| {
                self.file_path(i)
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
            })
            .collect()
    }

    fn check_run(&self, run: &[u32], buf: &mut Vec<u8>) -> Result<Vec<(u32, bool)>, StorageError> {
        let map = self.map();
        let pl = map.layout().piece_length;
        let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
            return Ok(Vec::new());
        };
        let start = u64::from(first) * pl;
        let len: u64 = run.iter().filter_map(|&p| map.piece_len(p)).sum();
        debug_assert_eq!(
            start + len,
            u64::from(last) * pl + map.piece_len(last).unwrap_or(0)
        );
        buf.clear();
        buf.resize(len as usize, 0);
        let whole = self.read_range(start, buf)?;
        let mut out = Vec::with_capacity(run.len());
        let mut off = 0usize;
        for &p in run {
            let plen = map.piece_len(p).unwrap_or(0) as usize;
            let piece_buf = buf.get_mut(off..off + plen).unwrap_or_default();
            let present = whole || self.read_into(p, 0, piece_buf)?;
            out.push((p, present && self.verify_data(p, &[piece_buf])));
            off += plen;
        }
        Ok(out)
    }
}
