//! What an index holds of a torrent: its info-hash, name, total size and a
//! bounded list of file paths, taken from a verified info dictionary or a
//! .torrent file (parsed by `shoal-metainfo` with its limits).
use shoal_metainfo::{MetainfoError, ParseLimits, Torrent};

/// Most file paths kept per torrent.
pub const MAX_FILES: usize = 1000;
/// Most bytes of file paths kept per torrent, in all.
pub const MAX_FILES_BYTES: usize = 64 * 1024;
/// Longest name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 512;

/// One torrent as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentDoc {
    /// The 20-byte info-hash used on the wire (v1, or the truncated v2).
    pub info_hash: [u8; 20],
    /// The torrent's name.
    pub name: String,
    /// Total size of its files, in bytes.
    pub size: u64,
    /// Number of files (pad files excluded).
    pub file_count: u64,
    /// File paths (`/`-joined), at most [`MAX_FILES`] and [`MAX_FILES_BYTES`].
    pub files: Vec<String>,
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn clip_str(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl TorrentDoc {
    /// From a parsed torrent.
    pub fn from_torrent(t: &Torrent) -> TorrentDoc {
        let mut files = Vec::new();
        let mut bytes = 0usize;
        let mut count = 0u64;
        for f in t.files().iter().filter(|f| !f.pad) {
            count += 1;
            if files.len() >= MAX_FILES {
                continue;
            }
            let p = f.path_string();
            if bytes + p.len() > MAX_FILES_BYTES {
                continue;
            }
            bytes += p.len();
            files.push(p);
        }
        TorrentDoc {
            info_hash: t.info_hashes().primary().0,
            name: clip_str(t.name(), MAX_NAME_BYTES),
            size: t.total_length(),
            file_count: count,
            files,
        }
    }

    /// From a bencoded info dictionary (already checked against its hash).
    pub fn from_info(info: &[u8]) -> Result<TorrentDoc, MetainfoError> {
        Ok(Self::from_torrent(&Torrent::from_info_bytes(
            info,
            &ParseLimits::default(),
        )?))
    }

    /// From a .torrent file.
    pub fn from_torrent_file(bytes: &[u8]) -> Result<TorrentDoc, MetainfoError> {
        Ok(Self::from_torrent(&Torrent::from_bytes(bytes)?))
    }

    /// The info-hash in lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.info_hash)
    }
}
