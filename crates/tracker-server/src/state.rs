//! The tracker's state on disk (`--state FILE`): torrents with their
//! completed counts and peers with their age, so a restart keeps the swarms.
//! Written atomically (temporary file, fsync, rename, fsync of the
//! directory); read whole, checked (magic, version, CRC-32C, every length
//! against what is left), and a corrupt file is an error, never an empty
//! tracker.
//!
//! Format (big-endian): `SHOALTRK`, version u32 (1), unix time of the save
//! u64; then records, each a tag byte: 1 = torrent (info-hash 20,
//! completed u32, seconds since its last announce u32, IPv4 peer count u32,
//! IPv6 peer count u32, then per peer its packed address (6 or 18 bytes), a
//! flags byte (bit 0: seeder) and its age in seconds u32), 0 = end; then the
//! CRC-32C of everything before it, u32.
use crate::peers::Entry;
use crate::swarm::{Swarms, TorrentRecord};
use shoal_base::InfoHash;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SHOALTRK";
const VERSION: u32 = 1;
const TAG_END: u8 = 0;
const TAG_TORRENT: u8 = 1;
/// Largest state file read (4 GiB: about 300 million IPv4 peers).
pub const MAX_STATE_BYTES: u64 = 4 << 30;

/// Why the state could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_STATE_BYTES`].
    #[error("state file is {len} bytes, more than the {MAX_STATE_BYTES} accepted")]
    TooLarge {
        /// Its length.
        len: u64,
    },
    /// The file does not start with the magic bytes: not a shoal tracker state.
    #[error("not a shoal tracker state file (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("state file version {version} is not supported (this build reads {VERSION})")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The checksum does not match: the file is damaged.
    #[error("state file is corrupt: checksum {stored:08x} stored, {computed:08x} computed")]
    Checksum {
        /// The stored CRC-32C.
        stored: u32,
        /// The CRC-32C of the contents.
        computed: u32,
    },
    /// The contents end early or a count runs past the end.
    #[error("state file is corrupt: truncated at byte {offset}")]
    Truncated {
        /// Where.
        offset: usize,
    },
    /// An unknown record tag.
    #[error("state file is corrupt: unknown record tag {tag} at byte {offset}")]
    BadTag {
        /// The tag.
        tag: u8,
        /// Where.
        offset: usize,
    },
    /// Bytes after the end record.
    #[error("state file is corrupt: {extra} bytes after the end record")]
    Trailing {
        /// How many.
        extra: usize,
    },
}

/// What a load restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Restored {
    /// Torrents restored.
    pub torrents: usize,
    /// Peers restored.
    pub peers: usize,
    /// Peers and torrents dropped as expired while the tracker was down.
    pub expired: usize,
}

fn put32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}

/// Serialises the table at tracker time `now` and unix time `unix_now`.
pub fn encode_state(swarms: &Swarms, now: u32, unix_now: u64) -> Vec<u8> {
    let t = swarms.totals();
    let mut o = Vec::with_capacity(32 + t.torrents * 40 + t.peers * 12);
    o.extend_from_slice(MAGIC);
    put32(&mut o, VERSION);
    o.extend_from_slice(&unix_now.to_be_bytes());
    swarms.for_each(|r| {
        o.push(TAG_TORRENT);
        o.extend_from_slice(&r.info_hash.0);
        put32(&mut o, r.completed);
        put32(&mut o, now.saturating_sub(r.last_seen));
        put32(&mut o, u32::try_from(r.peers4.len()).unwrap_or(u32::MAX));
        put32(&mut o, u32::try_from(r.peers6.len()).unwrap_or(u32::MAX));
        for e in &r.peers4 {
            o.extend_from_slice(&e.addr);
            o.push(u8::from(e.seeder));
            put32(&mut o, now.saturating_sub(e.seen));
        }
        for e in &r.peers6 {
            o.extend_from_slice(&e.addr);
            o.push(u8::from(e.seeder));
            put32(&mut o, now.saturating_sub(e.seen));
        }
    });
    o.push(TAG_END);
    let crc = crc32c::crc32c(&o);
    put32(&mut o, crc);
    o
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let s = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(StateError::Truncated { offset: self.pos })?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }
    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

fn peers<const N: usize>(
    c: &mut Cursor<'_>,
    count: u32,
    now: u32,
    elapsed: u32,
    timeout: u32,
    expired: &mut usize,
) -> Result<Vec<Entry<N>>, StateError> {
    let count = count as usize;
    if count.saturating_mul(N + 5) > c.left() {
        return Err(StateError::Truncated { offset: c.pos });
    }
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        let addr = c.arr::<N>()?;
        let flags = c.u8()?;
        let age = c.u32()?.saturating_add(elapsed);
        if age > timeout {
            *expired += 1;
            continue;
        }
        v.push(Entry {
            addr,
            seeder: flags & 1 == 1,
            seen: now.saturating_sub(age),
        });
    }
    Ok(v)
}

/// Parses a state file's bytes, handing each torrent still alive at tracker
/// time `now` (unix time `unix_now`) to `restore`. Peers older than
/// `peer_timeout` counting the time since the save are dropped, and so are
/// torrents left without peers whose last announce is that old.
pub fn decode_state(
    bytes: &[u8],
    now: u32,
    unix_now: u64,
    peer_timeout: u32,
    mut restore: impl FnMut(TorrentRecord) -> bool,
) -> Result<Restored, StateError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(StateError::BadMagic);
    }
    let mut c = Cursor { buf: bytes, pos: 8 };
    let version = c.u32()?;
    if version != VERSION {
        return Err(StateError::UnsupportedVersion { version });
    }
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or(StateError::Truncated { offset: 0 })?;
    let mut stored = [0u8; 4];
    stored.copy_from_slice(
        bytes
            .get(body_len..)
            .ok_or(StateError::Truncated { offset: body_len })?,
    );
    let stored = u32::from_be_bytes(stored);
    let body = bytes
        .get(..body_len)
        .ok_or(StateError::Truncated { offset: 0 })?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(StateError::Checksum { stored, computed });
    }
    let mut c = Cursor {
        buf: body,
        pos: c.pos,
    };
    let saved = u64::from_be_bytes(c.arr::<8>()?);
    let elapsed = u32::try_from(unix_now.saturating_sub(saved)).unwrap_or(u32::MAX);
    let mut out = Restored::default();
    loop {
        let at = c.pos;
        match c.u8()? {
            TAG_END => break,
            TAG_TORRENT => {
                let info_hash = c.arr::<20>()?;
                let completed = c.u32()?;
                let idle = c.u32()?.saturating_add(elapsed);
                let (n4, n6) = (c.u32()?, c.u32()?);
                let peers4 = peers::<6>(&mut c, n4, now, elapsed, peer_timeout, &mut out.expired)?;
                let peers6 = peers::<18>(&mut c, n6, now, elapsed, peer_timeout, &mut out.expired)?;
                if peers4.is_empty() && peers6.is_empty() && idle > peer_timeout {
                    out.expired += 1;
                    continue;
                }
                let n = peers4.len() + peers6.len();
                let rec = TorrentRecord {
                    info_hash: InfoHash(info_hash),
                    completed,
                    last_seen: now.saturating_sub(idle),
                    peers4,
                    peers6,
                };
                if restore(rec) {
                    out.torrents += 1;
                    out.peers += n;
                }
            }
            tag => return Err(StateError::BadTag { tag, offset: at }),
        }
    }
    if c.left() > 0 {
        return Err(StateError::Trailing { extra: c.left() });
    }
    Ok(out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The unix time now, in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes the table to `path` atomically: `PATH.tmp`, fsync, rename over
/// `path`, fsync of the directory. Returns the bytes written.
pub fn save_state(swarms: &Swarms, now: u32, path: &Path) -> Result<usize, StateError> {
    let bytes = encode_state(swarms, now, unix_now());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        // Not every filesystem can sync a directory; the rename is done anyway.
        let _ = d.sync_all();
    }
    Ok(bytes.len())
}

/// Loads `path` into `swarms` at tracker time `now`. A missing file is
/// `Ok(None)` (a first start); anything unreadable or corrupt is an error.
pub fn load_state(swarms: &Swarms, now: u32, path: &Path) -> Result<Option<Restored>, StateError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge { len: meta.len() });
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let timeout = swarms.config().peer_timeout;
    decode_state(&bytes, now, unix_now(), timeout, |r| swarms.restore(r)).map(Some)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
