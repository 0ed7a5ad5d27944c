//! Storage for shoal: where pieces meet files on disk.
//!
//! - [`layout`]: the plain-data [`StorageLayout`] a torrent is converted into,
//!   and [`PieceMap`], the O(log n) piece/block → (file, offset, length) mapping
//!   with pad files and zero-length files; [`PieceHashes`] holds the expected
//!   piece hashes, SHA-1 (v1, hybrid) or BEP 52 merkle roots (v2-only).
//! - [`Storage`]: synchronous positional I/O (`pread`/`pwrite`) through a
//!   bounded LRU of lazily opened files, confined to the root directory; file
//!   selection with a `.parts` side file for boundary pieces of unwanted files.
//! - [`hash_proof`]: BEP 52 hash requests answered from a piece layer and
//!   `hashes` answers checked against a pieces root (not wired in yet).
//! - [`verify`]: hash existing data on all cores, from the page cache or
//!   with `O_DIRECT`, piece by piece verdicts ([`PieceStatus`]);
//!   [`Storage::check`] is its yes/no form for the session.
//! - [`resume`]: the resume file, so a restart re-checks only changed files.
//! - [`Disk`] / [`DiskHandle`]: the async-facing actor with a write-back
//!   budget (backpressure), hashing of complete pieces from memory on rayon,
//!   and `PieceVerified` / `PieceFailed` outcomes.
//!
//! Errors are typed ([`LayoutError`], [`StorageError`], [`ResumeError`],
//! [`DiskError`]); disk-full and permission problems are errors for the engine
//! to pause the torrent on ([`StorageError::should_pause`]), never panics, and
//! no error path truncates or deletes existing data.
#![deny(missing_docs)]

pub mod check;
mod direct;
pub mod disk;
pub mod error;
pub mod files;
pub mod hash;
pub mod hash_proof;
pub mod layout;
pub mod resume;
pub mod store;
pub mod verify;
mod writer;

pub use check::CheckProgress;
pub use disk::{Disk, DiskConfig, DiskError, DiskHandle, DiskStats, PendingWrite, WriteOutcome};
pub use error::{IoOp, LayoutError, ResumeError, StorageError};
pub use files::Allocation;
pub use layout::{
    FileSpec, PieceHashes, PieceMap, Span, Spans, StorageLayout, V2FileHashes, V2Piece,
};
pub use resume::{FileStamp, ResumeData, ResumeOutcome};
pub use store::{Storage, StorageOptions};
pub use verify::{PieceStatus, ReadPath, VerifyOptions, VerifyOutcome, VerifyStats};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_direct;
#[cfg(test)]
mod tests_hash_paths;
#[cfg(test)]
mod tests_v2;
#[cfg(test)]
mod tests_verify;
