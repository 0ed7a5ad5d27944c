//! Typed errors, one enum per operation, each carrying the context needed to
//! act on it (which file, which offset, which piece).

use std::io;
use std::path::PathBuf;

/// Why a [`crate::StorageLayout`] or a range inside it was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// `piece_length` is zero.
    #[error("storage layout: piece length is zero")]
    ZeroPieceLength,
    /// More files than [`crate::layout::MAX_FILES`].
    #[error("storage layout: {count} files, at most {max} allowed")]
    TooManyFiles {
        /// Files in the layout.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A file path is not a plain relative path.
    #[error("storage layout: file {index} has unsafe path {path:?}")]
    UnsafePath {
        /// File index.
        index: usize,
        /// The offending path.
        path: PathBuf,
    },
    /// Two files share a path.
    #[error("storage layout: file {index} repeats path {path:?}")]
    DuplicatePath {
        /// Index of the second file with that path.
        index: usize,
        /// The path.
        path: PathBuf,
    },
    /// File lengths overflow `u64`.
    #[error("storage layout: length overflow at file {index}")]
    LengthOverflow {
        /// File index.
        index: usize,
    },
    /// File lengths do not add up to `total_length`.
    #[error("storage layout: files sum to {sum} bytes but total length is {total}")]
    LengthMismatch {
        /// Sum of file lengths.
        sum: u64,
        /// Declared total.
        total: u64,
    },
    /// More pieces than fit in `u32`.
    #[error("storage layout: {count} pieces do not fit a u32 index")]
    TooManyPieces {
        /// Piece count.
        count: u64,
    },
    /// Number of hashes differs from the piece count.
    #[error("storage layout: {got} piece hashes for {expected} pieces")]
    PieceCountMismatch {
        /// Pieces implied by the lengths.
        expected: u64,
        /// Hashes given.
        got: usize,
    },
    /// A v2 layout's piece length is not a power of two of at least 16 KiB.
    #[error("storage layout: v2 piece length {piece_length} is not a power of two >= 16 KiB")]
    V2PieceLength {
        /// The piece length.
        piece_length: u64,
    },
    /// A non-empty file of a v2 layout does not start on (the next) piece boundary.
    #[error("storage layout: v2 file {index} starts at byte {offset}, not at its piece boundary")]
    V2Unaligned {
        /// File index.
        index: usize,
        /// Its offset in the piece space.
        offset: u64,
    },
    /// A non-empty file of a v2 layout has no pieces root, or no piece layer
    /// although it is longer than one piece.
    #[error("storage layout: v2 file {index} lacks its pieces root or piece layer")]
    V2MissingHashes {
        /// File index.
        index: usize,
    },
    /// A file's piece layer has the wrong length or does not hash to its
    /// pieces root.
    #[error(
        "storage layout: v2 file {index} has a piece layer that does not match its pieces root"
    )]
    V2BadLayer {
        /// File index.
        index: usize,
    },
    /// A v2 piece entry breaks the [`crate::layout::V2Piece`] invariants.
    #[error("storage layout: v2 hash entry of piece {piece} is inconsistent with the layout")]
    V2BadPiece {
        /// Piece index.
        piece: u32,
    },
    /// The piece index is past the end.
    #[error("piece {piece} does not exist ({count} pieces)")]
    NoSuchPiece {
        /// Requested piece.
        piece: u32,
        /// Piece count.
        count: u32,
    },
    /// The block leaves its piece.
    #[error("block at offset {offset} length {len} leaves piece {piece} of {piece_len} bytes")]
    BlockOutOfPiece {
        /// Piece.
        piece: u32,
        /// Offset inside the piece.
        offset: u64,
        /// Block length.
        len: u64,
        /// Length of that piece.
        piece_len: u64,
    },
    /// No file with that index.
    #[error("file {index} does not exist ({count} files)")]
    NoSuchFile {
        /// Requested file.
        index: usize,
        /// File count.
        count: usize,
    },
}

/// What the storage was doing when an I/O error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating a directory.
    CreateDir,
    /// Opening or creating a file.
    Open,
    /// Reading file metadata.
    Stat,
    /// Extending a file (preallocation or sparse sizing).
    Allocate,
    /// Positional read.
    Read,
    /// Positional write.
    Write,
    /// Flushing to stable storage.
    Sync,
    /// Removing a file or directory.
    Remove,
    /// Renaming (moving) a file.
    Rename,
    /// Copying a file to another filesystem.
    Copy,
}

/// An error from a storage operation (read, write, check, allocation).
///
/// [`StorageError::should_pause`] tells the engine to pause the torrent
/// (disk full, permission denied, any I/O error) rather than drop a peer.
/// Storage never truncates or deletes existing data on any error path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The layout or a requested range is invalid.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A file path would resolve outside the storage root.
    #[error("storage: path {path:?} escapes the storage root")]
    PathEscape {
        /// The offending path.
        path: PathBuf,
    },
    /// An operating-system I/O error, with where it happened.
    #[error("storage: {op:?} {path:?} at offset {offset}: {kind}: {source}")]
    Io {
        /// What was being done.
        op: IoOp,
        /// Which file (or directory).
        path: PathBuf,
        /// File offset (0 when not applicable).
        offset: u64,
        /// `source.kind()`, copied for easy matching (`StorageFull` = ENOSPC).
        kind: io::ErrorKind,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, offset: u64, source: io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            offset,
            kind: source.kind(),
            source,
        }
    }

    /// The disk (or quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Io { kind, source, .. } => {
                *kind == io::ErrorKind::StorageFull
                    || *kind == io::ErrorKind::QuotaExceeded
                    || *kind == io::ErrorKind::FileTooLarge
                    || source.raw_os_error() == Some(libc::ENOSPC)
            }
            _ => false,
        }
    }

    /// Permission to a file or directory was denied (or it is read-only).
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            StorageError::Io {
                kind: io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem,
                ..
            }
        )
    }

    /// The torrent should be paused (an environment problem, not a peer's
    /// fault): every I/O and path error. Layout errors are caller bugs.
    pub fn should_pause(&self) -> bool {
        matches!(
            self,
            StorageError::Io { .. } | StorageError::PathEscape { .. }
        )
    }
}

/// Why a resume file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// Not valid bencode (or over the decoder's limits).
    #[error("resume file: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// A field is missing or has the wrong type or value.
    #[error("resume file: field {field:?} is missing or invalid")]
    Field {
        /// Field name.
        field: &'static str,
    },
    /// The resume file describes a different layout.
    #[error("resume file: {what} does not match the torrent")]
    Mismatch {
        /// Which property differs.
        what: &'static str,
    },
    /// Reading or writing the resume file failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
