//! Limits against hostile .torrent files and magnet links.
//!
//! Every bound the parser enforces is a named constant here, gathered in
//! [`ParseLimits`] (whose `Default` uses them). The total size is checked before
//! anything is decoded, so a huge garbage file is rejected without reading it.

/// Largest .torrent file accepted, in bytes (64 MiB).
pub const MAX_TORRENT_SIZE: usize = 64 << 20;
/// Most pieces a torrent may have (as libtorrent: 2^21).
pub const MAX_PIECE_COUNT: u64 = 1 << 21;
/// Most files (including pad files) a torrent may list.
pub const MAX_FILE_COUNT: usize = 1_000_000;
/// Most components in one file path (directories + file name).
pub const MAX_PATH_DEPTH: usize = 64;
/// Longest path component after sanitising, in bytes (common filesystem limit).
pub const MAX_NAME_LEN: usize = 255;
/// Largest piece length accepted (256 MiB).
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;
/// Most trackers, over all tiers, kept from `announce-list`.
pub const MAX_TRACKERS: usize = 1000;
/// Most web seeds kept from `url-list` and most DHT `nodes`.
pub const MAX_URLS: usize = 1000;
/// Longest magnet URI accepted, in bytes.
pub const MAX_MAGNET_LEN: usize = 64 << 10;

/// Bounds applied by [`crate::Torrent::from_bytes_with`]. `Default` uses the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input in bytes; checked first.
    pub max_torrent_size: usize,
    /// Most pieces.
    pub max_pieces: u64,
    /// Most file entries (pad files included).
    pub max_files: usize,
    /// Most components in one path.
    pub max_path_depth: usize,
    /// Longest path component in bytes after sanitising (truncated to this).
    pub max_name_len: usize,
    /// Largest piece length.
    pub max_piece_length: u64,
    /// Most trackers kept (the rest is an error, not silently dropped).
    pub max_trackers: usize,
    /// Most web seeds and DHT nodes each.
    pub max_urls: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_torrent_size: MAX_TORRENT_SIZE,
            max_pieces: MAX_PIECE_COUNT,
            max_files: MAX_FILE_COUNT,
            max_path_depth: MAX_PATH_DEPTH,
            max_name_len: MAX_NAME_LEN,
            max_piece_length: MAX_PIECE_LENGTH,
            max_trackers: MAX_TRACKERS,
            max_urls: MAX_URLS,
        }
    }
}

impl ParseLimits {
    /// Bencode decoder limits matching these: nesting deep enough for a file
    /// tree of `max_path_depth` levels, strings up to the whole file.
    pub fn bencode(&self) -> shoal_bencode::Limits {
        shoal_bencode::Limits {
            max_depth: self.max_path_depth * 2 + 8,
            max_string_len: self.max_torrent_size,
            max_elements: 4_000_000,
        }
    }
}
