//! [`FileReader`]: reads one file of a torrent while it downloads, the way
//! a media player does. A read whose bytes are not verified yet waits for
//! them (bounded by a time limit) and never returns zeros or unverified
//! data.
//!
//! Each open reader steers the piece picker: the pieces under its position
//! and a read-ahead window after it, plus the file's first and last pieces
//! (players read container indexes there: MP4 `moov`, MKV cues), get
//! priorities above every file priority, highest nearest the position, so
//! they are requested first and in order while rarest-first goes on for the
//! rest. Several readers share the torrent: the windows add up.
use super::cmd::{Query, TorrentCmd};
use super::handle::TorrentHandle;
use crate::error::TorrentOpError;
use bytes::Bytes;
use shoal_storage::{DiskError, TorrentDisk};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// Largest piece of data one [`FileReader::read_at`] returns.
pub const MAX_READ: usize = 256 * 1024;
/// Pieces after the reader's position fetched ahead by default.
pub const DEFAULT_READ_AHEAD: u32 = 8;
/// The priority of the piece under a reader; the read-ahead window counts
/// down from it, never below [`READER_PRIORITY_FLOOR`]. File priorities are
/// far below (0 to 7 in practice).
pub(crate) const READER_PRIORITY: u8 = 255;
/// The lowest priority a reader's window gives.
pub(crate) const READER_PRIORITY_FLOOR: u8 = 128;

static NEXT_READER: AtomicU64 = AtomicU64::new(1);

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The torrent's metadata is not known yet (a magnet link).
    #[error("the torrent's metadata is not known yet")]
    NoMetadata,
    /// No file with this index.
    #[error("the torrent has no file {index}")]
    NoSuchFile {
        /// The index asked for.
        index: usize,
    },
    /// The piece holding the bytes did not arrive in time.
    #[error("piece {piece} did not arrive within {after:?}")]
    Timeout {
        /// The piece waited for.
        piece: u32,
        /// How long the read waited.
        after: Duration,
    },
    /// The torrent is not transferring (paused, queued, in error): the
    /// bytes are not verified and nothing will fetch them.
    #[error("the torrent is not running")]
    NotRunning,
    /// The torrent was removed or the session stopped.
    #[error(transparent)]
    Torrent(#[from] TorrentOpError),
    /// Reading verified data from the disk failed.
    #[error("reading from disk: {0}")]
    Disk(#[from] DiskError),
}

/// One reader's wishes, as the torrent's task keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReaderWindows {
    /// Piece ranges, each ordered from most to least urgent.
    pub ranges: Vec<Range<u32>>,
}

/// Raises `prio` (one priority per piece) for every window of `readers`:
/// the first piece of a range gets [`READER_PRIORITY`], each next one less,
/// down to [`READER_PRIORITY_FLOOR`]; a piece keeps the highest it is given.
pub(crate) fn overlay<'a>(prio: &mut [u8], readers: impl Iterator<Item = &'a ReaderWindows>) {
    for w in readers {
        for r in &w.ranges {
            for (i, p) in r.clone().enumerate() {
                let Some(slot) = prio.get_mut(p as usize) else {
                    break;
                };
                let step = u8::try_from(i).unwrap_or(u8::MAX);
                let level = READER_PRIORITY
                    .saturating_sub(step)
                    .max(READER_PRIORITY_FLOOR);
                *slot = (*slot).max(level);
            }
        }
    }
}

/// Reads one file of a torrent while it downloads. Dropping it releases
/// its pieces' priorities.
#[derive(Debug)]
pub struct FileReader {
    handle: TorrentHandle,
    id: u64,
    /// The file's first byte in the torrent's piece space.
    start: u64,
    len: u64,
    piece_len: u64,
    /// The torrent's piece count.
    pieces: u32,
    read_ahead: u32,
    /// The piece the window was last set at.
    window_at: Option<u32>,
    disk: Option<TorrentDisk>,
}

impl TorrentHandle {
    /// Opens file `index` (as `shoal info` numbers them) for reading while
    /// it downloads. Fails while the metadata is missing.
    pub fn open_file(&self, index: usize) -> Result<FileReader, ReadError> {
        let t = self.torrent().ok_or(ReadError::NoMetadata)?;
        let files = t.files();
        let f = files.get(index).ok_or(ReadError::NoSuchFile { index })?;
        if f.pad {
            return Err(ReadError::NoSuchFile { index });
        }
        let start: u64 = files.iter().take(index).map(|f| f.length).sum();
        Ok(FileReader {
            handle: self.clone(),
            id: NEXT_READER.fetch_add(1, Ordering::Relaxed),
            start,
            len: f.length,
            piece_len: t.piece_length().max(1),
            pieces: t.piece_count(),
            read_ahead: DEFAULT_READ_AHEAD,
            window_at: None,
            disk: None,
        })
    }

    /// The torrent's handle in the disk pool (registered on demand), while
    /// its task transfers.
    async fn disk(&self) -> Result<Option<TorrentDisk>, TorrentOpError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(TorrentCmd::Query(Query::Disk(tx)))
            .await
            .map_err(|_| TorrentOpError::Stopped)?;
        rx.await.map_err(|_| TorrentOpError::Stopped)
    }
}

impl FileReader {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets how many pieces after the position are fetched ahead (at least
    /// one); a caller that measures its rate sizes it from that.
    pub fn set_read_ahead(&mut self, pieces: u32) {
        self.read_ahead = pieces.max(1);
        self.window_at = None;
    }

    /// Reads up to `max` bytes at `offset` of the file (at most
    /// [`MAX_READ`], never across a piece boundary), waiting up to `limit`
    /// for them to be downloaded and verified. Empty at or past the end.
    pub async fn read_at(
        &mut self,
        offset: u64,
        max: usize,
        limit: Duration,
    ) -> Result<Bytes, ReadError> {
        if offset >= self.len || max == 0 {
            return Ok(Bytes::new());
        }
        let abs = self.start + offset;
        let piece = (abs / self.piece_len) as u32;
        let within = abs % self.piece_len;
        let n = (max.min(MAX_READ) as u64)
            .min(self.piece_len - within)
            .min(self.len - offset) as usize;
        self.steer(piece).await?;
        let deadline = tokio::time::Instant::now() + limit;
        let mut status = self.handle.subscribe();
        loop {
            drop(status.borrow_and_update());
            if self.handle.pieces().await?.get(piece) {
                match self.read_verified(piece, within as u32, n).await {
                    Ok(Some(b)) => return Ok(b),
                    // Verified but not readable yet: wait for the next change.
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            tokio::select! {
                r = status.changed() => {
                    if r.is_err() {
                        return Err(TorrentOpError::Stopped.into());
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ReadError::Timeout { piece, after: limit });
                }
            }
        }
    }

    /// Reads verified bytes through the disk pool; `None` when the pool
    /// does not have them on disk yet.
    async fn read_verified(
        &mut self,
        piece: u32,
        offset: u32,
        len: usize,
    ) -> Result<Option<Bytes>, ReadError> {
        if self.disk.is_none() {
            self.disk = self.handle.disk().await?;
        }
        let Some(disk) = &self.disk else {
            return Err(ReadError::NotRunning);
        };
        match disk.read(piece, offset, len).await {
            Ok(b) => Ok(Some(b)),
            Err(DiskError::NotOnDisk { .. }) => Ok(None),
            Err(e) => {
                // The torrent may have stopped and started again (a new
                // registration in the pool): ask once more next time.
                self.disk = None;
                Err(e.into())
            }
        }
    }

    /// Moves this reader's window to `piece` (no message when unchanged).
    async fn steer(&mut self, piece: u32) -> Result<(), TorrentOpError> {
        if self.window_at == Some(piece) {
            return Ok(());
        }
        self.window_at = Some(piece);
        let end = piece.saturating_add(self.read_ahead).min(self.pieces);
        let first = (self.start / self.piece_len) as u32;
        let last = ((self.start + self.len).saturating_sub(1) / self.piece_len) as u32;
        let mut ranges = Vec::with_capacity(3);
        ranges.push(piece..end);
        if !ranges[0].contains(&last) {
            ranges.push(last..last + 1);
        }
        if piece != first && !ranges.iter().any(|r| r.contains(&first)) {
            ranges.push(first..first + 1);
        }
        let w = ReaderWindows { ranges };
        self.handle
            .tx
            .send(TorrentCmd::Reader(self.id, Some(Box::new(w))))
            .await
            .map_err(|_| TorrentOpError::Stopped)
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        if self.window_at.is_some() {
            // Best effort: a full queue leaves the window until the next
            // change of any reader of the torrent's readers or a restart.
            let _ = self.handle.tx.try_send(TorrentCmd::Reader(self.id, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_down_from_the_position_and_keep_the_highest() {
        let mut prio = vec![1u8; 10];
        let a = ReaderWindows {
            ranges: vec![2..5, 9..10],
        };
        let b = ReaderWindows {
            ranges: std::iter::once(3..4).collect(),
        };
        overlay(&mut prio, [&a, &b].into_iter());
        assert_eq!(prio, vec![1, 1, 255, 255, 253, 1, 1, 1, 1, 255]);
    }

    #[test]
    fn long_windows_stop_at_the_floor_and_the_end() {
        let mut prio = vec![0u8; 300];
        let a = ReaderWindows {
            ranges: std::iter::once(0..400).collect(),
        };
        overlay(&mut prio, std::iter::once(&a));
        assert_eq!(prio[0], READER_PRIORITY);
        assert_eq!(prio[299], READER_PRIORITY_FLOOR);
        assert!(prio.windows(2).all(|w| w[0] >= w[1]));
    }
}
