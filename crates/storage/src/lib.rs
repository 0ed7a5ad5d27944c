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
//! - [`FileBlock`]: a verified block whose pages are in the page cache,
//!   sent to a socket from its files by `sendfile(2)` (no copy through
//!   user space).
//! - [`resume`]: the resume file, so a restart re-checks only changed files.
//! - [`DiskPool`] / [`TorrentDisk`]: the session's disk pool: a fixed number
//!   of worker threads hashing and writing the blocks of every torrent (one
//!   piece per worker, pieces of one torrent on all workers), one memory
//!   budget for writes and upload reads, one open-file cache, one direct
//!   writer, a read cache of whole pieces; verdicts and storage errors go to
//!   each torrent's [`EventSink`]; delete and move of a torrent's data.
//! - [`Disk`] / [`DiskHandle`]: the older one-torrent actor (one thread per
//!   torrent) with the same per-piece rules, kept until the engine moves to
//!   the pool.
//!
//! Errors are typed ([`LayoutError`], [`StorageError`], [`ResumeError`],
//! [`DiskError`]); disk-full and permission problems are errors for the engine
//! to pause the torrent on ([`StorageError::should_pause`]), never panics, and
//! no error path truncates or deletes existing data.
#![deny(missing_docs)]

mod backend;
pub mod check;
mod direct;
pub mod disk;
pub mod error;
pub mod file_block;
pub mod files;
pub mod hash;
pub mod hash_proof;
pub mod layout;
mod page_cache;
pub mod pool;
pub mod resume;
pub mod store;
pub mod verify;
mod writer;

pub use check::CheckProgress;
pub use disk::{Disk, DiskConfig, DiskError, DiskHandle, DiskStats, PendingWrite, WriteOutcome};
pub use error::{IoOp, LayoutError, ResumeError, StorageError};
pub use file_block::FileBlock;
pub use files::Allocation;
pub use layout::{
    FileSpec, PieceHashes, PieceMap, Span, Spans, StorageLayout, V2FileHashes, V2Piece,
};
pub use pool::{
    BlockOutcome, DiskEvent, DiskPool, DiskPoolConfig, EventSink, PoolStats, QueuedBlocks,
    TorrentDisk,
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
mod tests_pool;
#[cfg(test)]
mod tests_pool_files;
#[cfg(test)]
mod tests_v2;
#[cfg(test)]
mod tests_verify;
