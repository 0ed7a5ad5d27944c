//! Torrent creation: v1 (BEP 3), v2 (BEP 52) and hybrid torrents of a file or
//! a directory, hashed on all cores.
//!
//! The work is split in two steps so a caller can show progress against a known
//! total: [`CreatePlan::new`] walks the input and fixes the layout (file order,
//! piece length, pad files), then [`CreatePlan::build`] hashes and encodes.
//! [`create`] does both.
//!
//! Rules, chosen for determinism and for compatibility with libtorrent 2.0:
//! - A file gives a single-file torrent named after the file; a directory gives a
//!   multi-file torrent named after the directory, its files sorted by path
//!   (component by component, byte order), which is also the order of the v2
//!   `file tree`.
//! - Symbolic links in the input are **followed**: a link to a file is hashed as
//!   that file's contents under the link's name; a link to a directory is walked,
//!   and a link back to one of its own ancestors is refused
//!   ([`CreateError::SymlinkLoop`]). Sockets, FIFOs and devices are refused
//!   ([`CreateError::UnsupportedFileType`]), names that are not UTF-8 are refused
//!   ([`CreateError::NonUtf8Name`]); nothing is skipped silently. Empty directories
//!   hold no file and so do not appear in the torrent.
//! - Hybrid torrents with more than one file get a BEP 47 pad file (`attr` `p`,
//!   path `.pad/<N>`) after every non-empty file whose end is not on a piece
//!   boundary, the last file included, exactly as libtorrent's `create_torrent`
//!   does, so both give the same `info` dictionary for the same input and piece
//!   length. v1-only torrents have no pad files (like mktorrent).
//! - Empty files are listed with `length` 0 and, in v2, without `pieces root`.
//!   A torrent whose files are all empty is refused ([`CreateError::NoData`]).
//! - No `creation date` unless given, so the same input and options give the same
//!   bytes. File modes and times are not recorded.
//! - Files are read in chunks of at most [`READ_CHUNK`] bytes per worker
//!   thread, so memory stays bounded whatever the input size; a file that
//!   shrinks meanwhile is [`CreateError::FileChanged`].
use std::fmt;
use std::path::{Path, PathBuf};

mod encode;
mod hashing;
mod layout;
mod paired;
mod scan;

pub use layout::{Layout, Segment, SegmentKind};
pub use scan::InputFile;

/// Smallest piece length accepted (and the BEP 52 minimum): 16 KiB.
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;
/// Largest piece length accepted: 64 MiB.
pub const MAX_PIECE_LENGTH: u64 = 64 * 1024 * 1024;
/// Largest piece length [`default_piece_length`] picks: 16 MiB.
pub const MAX_DEFAULT_PIECE_LENGTH: u64 = 16 * 1024 * 1024;
/// [`default_piece_length`] picks the smallest piece length giving at most this
/// many pieces (so between about 1000 and 2000 for most sizes).
pub const TARGET_MAX_PIECES: u64 = 2000;
/// Most files a created torrent may hold (half the parser's file limit, leaving
/// room for the pad files of a hybrid torrent).
pub const MAX_FILES: usize = 500_000;
/// Most pieces a created torrent may hold (the parser's limit, 2^21).
pub const MAX_PIECES: u64 = 1 << 21;
/// Deepest directory nesting a created torrent may hold (the parser's limit).
pub const MAX_PATH_DEPTH: usize = 64;
/// Largest read a worker thread makes at once, and so its buffer size.
pub const READ_CHUNK: usize = 64 * 1024;

/// Which halves a created torrent has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// BEP 3 only: `pieces` with SHA-1 piece hashes. The default.
    #[default]
    V1,
    /// BEP 52 only: `file tree`, `meta version` 2 and `piece layers` (SHA-256 merkle trees).
    V2,
    /// Both, describing the same piece-aligned layout (v1 half with pad files).
    Hybrid,
}

impl Version {
    /// Whether the torrent has a v1 half (`pieces`).
    pub fn has_v1(self) -> bool {
        matches!(self, Version::V1 | Version::Hybrid)
    }

    /// Whether the torrent has a v2 half (`file tree`).
    pub fn has_v2(self) -> bool {
        matches!(self, Version::V2 | Version::Hybrid)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::Hybrid => "hybrid",
        })
    }
}

/// What to put in a created torrent besides the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Tracker URLs by tier (BEP 12). The first URL becomes `announce`;
    /// `announce-list` is written when there is more than one URL. Empty tiers are ignored.
    pub trackers: Vec<Vec<String>>,
    /// Web seed URLs (BEP 19 `url-list`), written as a list.
    pub web_seeds: Vec<String>,
    /// Piece length in bytes: a power of two in
    /// [`MIN_PIECE_LENGTH`]..=[`MAX_PIECE_LENGTH`]; `None` picks [`default_piece_length`].
    pub piece_length: Option<u64>,
    /// Sets `private` to 1 in `info` (BEP 27).
    pub private: bool,
    /// Top-level `comment`.
    pub comment: Option<String>,
    /// Top-level `created by`.
    pub created_by: Option<String>,
    /// Top-level `creation date` (seconds since the Unix epoch); omitted when `None`.
    pub creation_date: Option<i64>,
    /// v1, v2 or hybrid.
    pub version: Version,
    /// Hashing threads; `None` (or 0) uses [`default_threads`]. Does not change the output.
    pub threads: Option<usize>,
}

/// The default number of hashing threads: twice the available cores, so that
/// while some threads wait for the disk the others keep hashing.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// Why a torrent could not be created. Every variant names the path or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// Reading metadata or contents of a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory name is not valid UTF-8 (torrent paths are UTF-8).
    #[error("{}: name is not valid UTF-8", path.display())]
    NonUtf8Name {
        /// The offending path.
        path: PathBuf,
    },
    /// The input holds something that is neither a regular file nor a directory.
    #[error("{}: not a regular file or directory", path.display())]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// A symbolic link leads back to one of its own ancestor directories.
    #[error("{}: symbolic link loop (points to an ancestor directory)", path.display())]
    SymlinkLoop {
        /// The link.
        path: PathBuf,
    },
    /// The input has no name to use for the torrent (e.g. `/`).
    #[error("{}: cannot name a torrent after this path", path.display())]
    NoName {
        /// The input path.
        path: PathBuf,
    },
    /// The input directory holds no file.
    #[error("{}: no files to put in the torrent", path.display())]
    NoFiles {
        /// The input path.
        path: PathBuf,
    },
    /// All input files are empty: there is nothing to hash.
    #[error("{}: all files are empty, nothing to hash", path.display())]
    NoData {
        /// The input path.
        path: PathBuf,
    },
    /// Directories nested deeper than [`MAX_PATH_DEPTH`].
    #[error("{}: nested deeper than {max} directories", path.display())]
    TooDeep {
        /// The first path found too deep.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// More files than [`MAX_FILES`].
    #[error("{}: more than {max} files", path.display())]
    TooManyFiles {
        /// The input path.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// The piece length option is not usable.
    #[error("piece length {value}: {reason}")]
    BadPieceLength {
        /// The value given.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The piece count would exceed [`MAX_PIECES`] (choose a larger piece length).
    #[error("{count} pieces is more than {max}; use a larger piece length")]
    TooManyPieces {
        /// Pieces the layout would have.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The total size overflows 64 bits.
    #[error("total size is too large")]
    TooLarge,
    /// A file got shorter while it was being hashed.
    #[error("{}: file changed while hashing (expected {expected} bytes)", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// The length seen when the input was scanned.
        expected: u64,
    },
    /// A tracker or web seed URL is empty or holds control characters.
    #[error("{what} {url:?}: not a usable URL")]
    BadUrl {
        /// `tracker` or `web seed`.
        what: &'static str,
        /// The URL as given.
        url: String,
    },
}

/// The default piece length for `total` bytes of content: the smallest power of
/// two from 16 KiB up to 16 MiB giving at most [`TARGET_MAX_PIECES`] pieces.
pub fn default_piece_length(total: u64) -> u64 {
    let mut pl = MIN_PIECE_LENGTH;
    while pl < MAX_DEFAULT_PIECE_LENGTH && total.div_ceil(pl) > TARGET_MAX_PIECES {
        pl *= 2;
    }
    pl
}

/// Checks a user-chosen piece length.
fn check_piece_length(pl: u64) -> Result<u64, CreateError> {
    let bad = |reason| Err(CreateError::BadPieceLength { value: pl, reason });
    if !pl.is_power_of_two() {
        return bad("must be a power of two");
    }
    if pl < MIN_PIECE_LENGTH {
        return bad("must be at least 16384 (16 KiB)");
    }
    if pl > MAX_PIECE_LENGTH {
        return bad("must be at most 67108864 (64 MiB)");
    }
    Ok(pl)
}

fn check_url(what: &'static str, url: &str) -> Result<(), CreateError> {
    if url.is_empty() || url.chars().any(char::is_control) {
        return Err(CreateError::BadUrl {
            what,
            url: url.to_owned(),
        });
    }
    Ok(())
}

/// A torrent about to be made: the input scanned, files ordered, layout fixed.
///
/// Invariants: at least one file, at least one byte of content, piece length a
/// power of two within limits, piece count at most [`MAX_PIECES`].
#[derive(Debug, Clone)]
pub struct CreatePlan {
    input: PathBuf,
    name: String,
    single_file: bool,
    files: Vec<InputFile>,
    layout: Layout,
    opts: CreateOptions,
}

impl CreatePlan {
    /// Scans `path` (a file or a directory) and fixes the layout for `opts`.
    pub fn new(path: &Path, opts: CreateOptions) -> Result<Self, CreateError> {
        for url in opts.trackers.iter().flatten() {
            check_url("tracker", url)?;
        }
        for url in &opts.web_seeds {
            check_url("web seed", url)?;
        }
        if let Some(pl) = opts.piece_length {
            check_piece_length(pl)?;
        }
        let scanned = scan::scan(path, MAX_FILES)?;
        let total = scanned
            .files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.length))
            .ok_or(CreateError::TooLarge)?;
        if total == 0 {
            return Err(CreateError::NoData {
                path: path.to_owned(),
            });
        }
        let piece_length = opts
            .piece_length
            .unwrap_or_else(|| default_piece_length(total));
        let lengths: Vec<u64> = scanned.files.iter().map(|f| f.length).collect();
        let layout = Layout::new(&lengths, piece_length, opts.version, !scanned.single_file)?;
        if layout.num_pieces() > MAX_PIECES {
            return Err(CreateError::TooManyPieces {
                count: layout.num_pieces(),
                max: MAX_PIECES,
            });
        }
        Ok(CreatePlan {
            input: path.to_owned(),
            name: scanned.name,
            single_file: scanned.single_file,
            files: scanned.files,
            layout,
            opts,
        })
    }

    /// The input path as given.
    pub fn input(&self) -> &Path {
        &self.input
    }

    /// The torrent name: the input file's or directory's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a single-file torrent (the input was a file).
    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// The files in torrent order (pad files not included).
    pub fn files(&self) -> &[InputFile] {
        &self.files
    }

    /// The piece layout (segments of files and pad files in the piece stream).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Bytes of file content to hash (pad files not included): the total the
    /// progress callback of [`CreatePlan::build`] counts up to.
    pub fn total_length(&self) -> u64 {
        self.layout.data_length()
    }

    /// The piece length in bytes.
    pub fn piece_length(&self) -> u64 {
        self.layout.piece_length()
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u64 {
        self.layout.num_pieces()
    }

    /// The options this plan was made with.
    pub fn options(&self) -> &CreateOptions {
        &self.opts
    }

    /// Hashes every file on all cores and returns the bencoded torrent.
    ///
    /// `progress` is called from worker threads with the number of content bytes
    /// hashed so far (monotonic per call site, possibly out of order between threads).
    pub fn build(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<u8>, CreateError> {
        let threads = self
            .opts
            .threads
            .filter(|&n| n > 0)
            .unwrap_or_else(default_threads);
        let run = || hashing::hash_all(&self.files, &self.layout, self.opts.version, progress);
        let hashes = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(run)?,
            // No threads to be had: use rayon's global pool.
            Err(_) => run()?,
        };
        Ok(encode::encode_torrent(self, &hashes))
    }
}

/// Makes a torrent of `path` (a file or a directory): scans, hashes on all
/// cores and returns the bencoded `.torrent` bytes. See the module docs for the rules.
///
/// `progress` receives the number of content bytes hashed so far.
pub fn create(
    path: &Path,
    opts: &CreateOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, CreateError> {
    CreatePlan::new(path, opts.clone())?.build(progress)
}

#[cfg(test)]
mod tests;
