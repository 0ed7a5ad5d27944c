//! The torrent's byte space and how it maps onto files.
//!
//! A torrent is one contiguous byte space cut into pieces of `piece_length`
//! bytes (the last one shorter) and, independently, into files laid end to end.
//! [`StorageLayout`] is the plain-data description (the integrator converts a
//! parsed `.torrent` into it); [`PieceMap`] is its validated form with the
//! cumulative file offsets that make every lookup a binary search
//! (`O(log files)`), and [`Spans`] walks the (file, offset, length) pieces of any
//! byte range without allocating.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::error::LayoutError;

/// Upper bound on the number of files a layout may hold (bounded everything).
pub const MAX_FILES: usize = 1 << 20;

/// One file of the torrent, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Path relative to the storage root, already sanitised by the metainfo
    /// layer; re-checked here (only normal components are accepted).
    /// Ignored for pad files.
    pub path: PathBuf,
    /// Length in bytes (may be zero).
    pub length: u64,
    /// A BEP 47 pad file: its bytes are zeros, never written to disk and read
    /// back as zeros.
    pub pad: bool,
}

/// Everything storage needs to know about a torrent's data, as plain data.
///
/// Extension point for v2 (BEP 52): per-file merkle roots would be added as
/// another optional field (e.g. `piece_layers_v2`), verified by a second
/// hasher beside [`crate::hash::verify_v1`]; the mapping does not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLayout {
    /// Nominal piece length in bytes (> 0).
    pub piece_length: u64,
    /// Sum of all file lengths, pad files included.
    pub total_length: u64,
    /// Files in torrent order.
    pub files: Vec<FileSpec>,
    /// SHA-1 of every piece (v1), `ceil(total_length / piece_length)` entries.
    pub piece_hashes_v1: Vec<[u8; 20]>,
}

/// A contiguous run of bytes of one file (or pad) inside a requested range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Index of the file in [`StorageLayout::files`].
    pub file: usize,
    /// Byte offset inside that file.
    pub file_offset: u64,
    /// Number of bytes (> 0).
    pub len: u64,
    /// Offset of this span inside the requested range (spans are contiguous:
    /// each starts where the previous ended).
    pub buf_offset: u64,
    /// The file is a pad file: zeros, not on disk.
    pub pad: bool,
}

/// A validated [`StorageLayout`] with precomputed file offsets.
///
/// Invariants: `starts[i] + files[i].length == ends[i]`, `starts` is
/// non-decreasing, `ends.last() == total_length`, piece count equals the
/// number of hashes and fits in `u32`.
#[derive(Debug, Clone)]
pub struct PieceMap {
    layout: StorageLayout,
    starts: Vec<u64>,
    ends: Vec<u64>,
    piece_count: u32,
}

/// Checks that `rel` is a non-empty relative path made only of normal
/// components (no `..`, no root, no prefix, no `.`).
pub fn is_safe_relative(rel: &Path) -> bool {
    let mut any = false;
    for c in rel.components() {
        match c {
            Component::Normal(_) => any = true,
            _ => return false,
        }
    }
    any
}

impl PieceMap {
    /// Validates `layout` and builds the lookup tables.
    pub fn new(layout: StorageLayout) -> Result<Self, LayoutError> {
        if layout.piece_length == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        if layout.files.len() > MAX_FILES {
            return Err(LayoutError::TooManyFiles {
                count: layout.files.len(),
                max: MAX_FILES,
            });
        }
        let mut starts = Vec::with_capacity(layout.files.len());
        let mut ends = Vec::with_capacity(layout.files.len());
        let mut pos: u64 = 0;
        let mut seen = HashSet::new();
        for (index, f) in layout.files.iter().enumerate() {
            if !f.pad {
                if !is_safe_relative(&f.path) {
                    return Err(LayoutError::UnsafePath {
                        index,
                        path: f.path.clone(),
                    });
                }
                if !seen.insert(f.path.as_path()) {
                    return Err(LayoutError::DuplicatePath {
                        index,
                        path: f.path.clone(),
                    });
                }
            }
            starts.push(pos);
            pos = pos
                .checked_add(f.length)
                .ok_or(LayoutError::LengthOverflow { index })?;
            ends.push(pos);
        }
        if pos != layout.total_length {
            return Err(LayoutError::LengthMismatch {
                sum: pos,
                total: layout.total_length,
            });
        }
        let expected = layout.total_length.div_ceil(layout.piece_length);
        let piece_count =
            u32::try_from(expected).map_err(|_| LayoutError::TooManyPieces { count: expected })?;
        if layout.piece_hashes_v1.len() as u64 != expected {
            return Err(LayoutError::PieceCountMismatch {
                expected,
                got: layout.piece_hashes_v1.len(),
            });
        }
        Ok(Self {
            layout,
            starts,
            ends,
            piece_count,
        })
    }

    /// The validated layout.
    pub fn layout(&self) -> &StorageLayout {
        &self.layout
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Number of files (pad files included).
    pub fn file_count(&self) -> usize {
        self.layout.files.len()
    }

    /// Byte offset of file `i` in the torrent space, if it exists.
    pub fn file_start(&self, i: usize) -> Option<u64> {
        self.starts.get(i).copied()
    }

    /// Length of piece `piece` (the last one may be shorter), if it exists.
    pub fn piece_len(&self, piece: u32) -> Option<u64> {
        if piece >= self.piece_count {
            return None;
        }
        let start = u64::from(piece) * self.layout.piece_length;
        Some((self.layout.total_length - start).min(self.layout.piece_length))
    }

    /// Expected SHA-1 of `piece`.
    pub fn piece_hash(&self, piece: u32) -> Option<&[u8; 20]> {
        self.layout.piece_hashes_v1.get(piece as usize)
    }

    /// The spans of `len` bytes at `offset` inside `piece`.
    ///
    /// Fails when the piece does not exist or the range leaves it.
    pub fn block_spans(&self, piece: u32, offset: u64, len: u64) -> Result<Spans<'_>, LayoutError> {
        let plen = self.piece_len(piece).ok_or(LayoutError::NoSuchPiece {
            piece,
            count: self.piece_count,
        })?;
        if offset.checked_add(len).is_none_or(|e| e > plen) {
            return Err(LayoutError::BlockOutOfPiece {
                piece,
                offset,
                len,
                piece_len: plen,
            });
        }
        let start = u64::from(piece) * self.layout.piece_length + offset;
        Ok(self.range_spans(start, len))
    }

    /// The spans of a whole piece.
    pub fn piece_spans(&self, piece: u32) -> Result<Spans<'_>, LayoutError> {
        let plen = self.piece_len(piece).ok_or(LayoutError::NoSuchPiece {
            piece,
            count: self.piece_count,
        })?;
        self.block_spans(piece, 0, plen)
    }

    /// Spans of the torrent byte range `[start, start + len)`, clipped to the
    /// torrent's end.
    pub fn range_spans(&self, start: u64, len: u64) -> Spans<'_> {
        let end = start.saturating_add(len).min(self.layout.total_length);
        // First file whose end lies beyond `start` (skips zero-length files
        // sitting exactly at `start`).
        let file = self.ends.partition_point(|&e| e <= start);
        Spans {
            map: self,
            file,
            pos: start,
            origin: start,
            end,
        }
    }

    /// The pieces that hold at least one byte of file `i` (empty for
    /// zero-length files).
    pub fn pieces_of_file(&self, i: usize) -> std::ops::Range<u32> {
        match (self.starts.get(i), self.ends.get(i)) {
            (Some(&s), Some(&e)) if e > s => {
                let pl = self.layout.piece_length;
                // Both fit in u32 because piece_count does.
                let first = (s / pl) as u32;
                let last = ((e - 1) / pl) as u32;
                first..last + 1
            }
            _ => 0..0,
        }
    }
}

/// Iterator over the [`Span`]s of a byte range; see [`PieceMap::range_spans`].
#[derive(Debug, Clone)]
pub struct Spans<'a> {
    map: &'a PieceMap,
    file: usize,
    pos: u64,
    origin: u64,
    end: u64,
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        while self.pos < self.end {
            let i = self.file;
            let (s, e) = (*self.map.starts.get(i)?, *self.map.ends.get(i)?);
            self.file += 1;
            if e <= self.pos {
                continue; // zero-length file
            }
            let stop = e.min(self.end);
            let span = Span {
                file: i,
                file_offset: self.pos - s,
                len: stop - self.pos,
                buf_offset: self.pos - self.origin,
                pad: self.map.layout.files.get(i).is_some_and(|f| f.pad),
            };
            self.pos = stop;
            return Some(span);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(p: &str, len: u64) -> FileSpec {
        FileSpec {
            path: PathBuf::from(p),
            length: len,
            pad: false,
        }
    }

    fn layout(piece_length: u64, files: Vec<FileSpec>) -> StorageLayout {
        let total: u64 = files.iter().map(|f| f.length).sum();
        let n = total.div_ceil(piece_length.max(1)) as usize;
        StorageLayout {
            piece_length,
            total_length: total,
            files,
            piece_hashes_v1: vec![[0; 20]; n],
        }
    }

    #[test]
    fn piece_spanning_files_and_zero_length() {
        let m = PieceMap::new(layout(
            10,
            vec![file("a", 4), file("empty", 0), file("b", 3), file("c", 20)],
        ))
        .unwrap();
        assert_eq!(m.piece_count(), 3);
        let s: Vec<_> = m.piece_spans(0).unwrap().collect();
        assert_eq!(
            s,
            vec![
                Span {
                    file: 0,
                    file_offset: 0,
                    len: 4,
                    buf_offset: 0,
                    pad: false
                },
                Span {
                    file: 2,
                    file_offset: 0,
                    len: 3,
                    buf_offset: 4,
                    pad: false
                },
                Span {
                    file: 3,
                    file_offset: 0,
                    len: 3,
                    buf_offset: 7,
                    pad: false
                },
            ]
        );
        let s: Vec<_> = m.piece_spans(2).unwrap().collect();
        assert_eq!(
            s,
            vec![Span {
                file: 3,
                file_offset: 13,
                len: 7,
                buf_offset: 0,
                pad: false
            }]
        );
        assert_eq!(m.pieces_of_file(1), 0..0);
        assert_eq!(m.pieces_of_file(3), 0..3);
    }

    #[test]
    fn block_out_of_range_rejected() {
        let m = PieceMap::new(layout(10, vec![file("a", 25)])).unwrap();
        assert_eq!(m.piece_len(2), Some(5));
        assert!(m.block_spans(2, 0, 6).is_err());
        assert!(m.block_spans(3, 0, 1).is_err());
        assert!(m.block_spans(0, u64::MAX, 2).is_err());
        assert!(m.block_spans(2, 0, 5).is_ok());
    }

    #[test]
    fn validation() {
        assert!(matches!(
            PieceMap::new(layout(0, vec![file("a", 1)])),
            Err(LayoutError::ZeroPieceLength)
        ));
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./a"] {
            assert!(
                matches!(
                    PieceMap::new(layout(4, vec![file(bad, 1)])),
                    Err(LayoutError::UnsafePath { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            PieceMap::new(layout(4, vec![file("a", 1), file("a", 1)])),
            Err(LayoutError::DuplicatePath { .. })
        ));
        let mut l = layout(4, vec![file("a", 9)]);
        l.total_length = 10;
        assert!(matches!(
            PieceMap::new(l),
            Err(LayoutError::LengthMismatch { .. })
        ));
        let mut l = layout(4, vec![file("a", 9)]);
        l.piece_hashes_v1.pop();
        assert!(matches!(
            PieceMap::new(l),
            Err(LayoutError::PieceCountMismatch { .. })
        ));
    }

    fn arb_layout() -> impl Strategy<Value = StorageLayout> {
        (
            1u64..64,
            proptest::collection::vec((0u64..200, any::<bool>()), 1..12),
        )
            .prop_filter_map("non-empty", |(pl, fs)| {
                let files: Vec<_> = fs
                    .iter()
                    .enumerate()
                    .map(|(i, &(len, pad))| FileSpec {
                        path: PathBuf::from(format!("d/f{i}")),
                        length: len,
                        pad,
                    })
                    .collect();
                let l = layout(pl, files);
                (l.total_length > 0).then_some(l)
            })
    }

    proptest! {
        /// Every byte of every piece maps to exactly one (file, offset), spans
        /// are contiguous and complete, and agree with the file offsets.
        #[test]
        fn every_byte_maps_once(l in arb_layout()) {
            let m = PieceMap::new(l.clone()).unwrap();
            let mut covered = vec![0u32; l.total_length as usize];
            for p in 0..m.piece_count() {
                let plen = m.piece_len(p).unwrap();
                let mut next = 0;
                for s in m.piece_spans(p).unwrap() {
                    prop_assert_eq!(s.buf_offset, next);
                    prop_assert!(s.len > 0);
                    let f = &l.files[s.file];
                    prop_assert!(s.file_offset + s.len <= f.length);
                    prop_assert_eq!(s.pad, f.pad);
                    let abs = m.file_start(s.file).unwrap() + s.file_offset;
                    prop_assert_eq!(abs, u64::from(p) * l.piece_length + s.buf_offset);
                    for b in abs..abs + s.len {
                        covered[b as usize] += 1;
                    }
                    next += s.len;
                }
                prop_assert_eq!(next, plen);
            }
            prop_assert!(covered.iter().all(|&c| c == 1));
        }

        /// Any block inside a piece yields the sub-range of the piece's spans.
        #[test]
        fn block_spans_match_piece(l in arb_layout(), a in 0u64..64, b in 0u64..64) {
            let m = PieceMap::new(l.clone()).unwrap();
            let p = m.piece_count() - 1;
            let plen = m.piece_len(p).unwrap();
            let (lo, hi) = (a.min(b) % (plen + 1), a.max(b) % (plen + 1));
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let total: u64 = m.block_spans(p, lo, hi - lo).unwrap().map(|s| s.len).sum();
            prop_assert_eq!(total, hi - lo);
            for f in 0..l.files.len() {
                for piece in m.pieces_of_file(f) {
                    prop_assert!(m.piece_spans(piece).unwrap().any(|s| s.file == f));
                }
            }
        }
    }
}
