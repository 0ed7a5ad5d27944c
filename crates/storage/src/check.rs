//! Checking existing data: which pieces on disk match their hashes.
//!
//! A thin layer over [`crate::verify`], which does the reading and hashing on
//! all cores (page cache or `O_DIRECT`, whichever the data is in): here a
//! piece is either verified or not, as the session and the resume check
//! want it. Missing files mean missing pieces; I/O errors other than "not
//! there" are returned.

use crate::error::StorageError;
use crate::store::Storage;
use crate::verify::{PieceStatus, VerifyOptions};

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
        let v = self.verify_pieces(pieces, &VerifyOptions::default(), progress)?;
        for (&p, s) in pieces.iter().zip(v.status) {
            if let Some(slot) = out.get_mut(p as usize) {
                *slot = s == PieceStatus::Good;
            }
        }
        Ok(())
    }
}
