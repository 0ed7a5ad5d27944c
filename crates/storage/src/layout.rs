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
/// v1 and hybrid torrents carry SHA-1 piece hashes; v2-only torrents (BEP 52)
/// carry one merkle subtree root per piece ([`PieceHashes::V2`]). The mapping
/// is the same for both: a v2 torrent's files are aligned to piece boundaries
/// by pad files (the metainfo layer synthesises them), which never touch disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLayout {
    /// Nominal piece length in bytes (> 0).
    pub piece_length: u64,
    /// Sum of all file lengths, pad files included.
    pub total_length: u64,
    /// Files in torrent order.
    pub files: Vec<FileSpec>,
    /// Expected hash of every piece, `ceil(total_length / piece_length)` entries.
    pub piece_hashes: PieceHashes,
}

/// The expected hashes of a torrent's pieces, one entry per piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceHashes {
    /// SHA-1 of the whole piece, pad bytes included (v1 and hybrid torrents).
    V1(Vec<[u8; 20]>),
    /// BEP 52 merkle roots (v2-only torrents); build with
    /// [`PieceHashes::v2_from_files`].
    V2(Vec<V2Piece>),
}

/// How to verify one piece of a v2 torrent.
///
/// The piece's file bytes (its first `data_len` bytes; the rest of the piece,
/// if any, is alignment padding and not hashed) are cut into 16 KiB leaves,
/// each hashed with SHA-256 (the last one may be short and is hashed as is);
/// the leaf layer is padded with zero hashes to `leaves` entries and reduced
/// pairwise to a root that must equal `root`.
///
/// Invariants (checked by [`PieceMap::new`]): `0 < data_len <=` the piece's
/// length, `leaves` is a power of two with `leaves * 16 KiB >= data_len` and
/// `leaves <= piece_length / 16 KiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Piece {
    /// The expected root: the file's piece-layer entry for files longer than
    /// one piece, else the file's `pieces root`.
    pub root: [u8; 32],
    /// Bytes of file data in the piece.
    pub data_len: u64,
    /// Leaf count of the piece's subtree: `piece_length / 16 KiB` for pieces
    /// of files longer than one piece, else the next power of two of the
    /// file's block count.
    pub leaves: u32,
}

/// The v2 hashes of one non-empty file, input to [`PieceHashes::v2_from_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2FileHashes<'a> {
    /// The file's `pieces root` (BEP 52 `file tree`).
    pub pieces_root: [u8; 32],
    /// The file's piece layer (`piece layers[pieces root]`), required when the
    /// file is longer than one piece, ignored otherwise.
    pub layer: Option<&'a [[u8; 32]]>,
}

impl PieceHashes {
    /// Number of entries (should equal the piece count).
    pub fn len(&self) -> usize {
        match self {
            PieceHashes::V1(v) => v.len(),
            PieceHashes::V2(v) => v.len(),
        }
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the per-piece v2 entries of a v2-only torrent.
    ///
    /// `files` is the piece-space file list (pad files included) and `hashes`
    /// is aligned with it: `Some` for every non-pad file of non-zero length,
    /// anything for the others (ignored). Every such file must start on a
    /// piece boundary, and a file longer than one piece must come with a
    /// piece layer of `ceil(length / piece_length)` hashes whose merkle root is
    /// its pieces root (re-checked here). `piece_length` must be a power of
    /// two of at least 16 KiB.
    pub fn v2_from_files(
        piece_length: u64,
        files: &[FileSpec],
        hashes: &[Option<V2FileHashes<'_>>],
    ) -> Result<PieceHashes, LayoutError> {
        use shoal_metainfo::merkle::{merkle_root_with_pad, num_blocks, BLOCK_SIZE};
        let block = BLOCK_SIZE as u64;
        if piece_length < block || !piece_length.is_power_of_two() {
            return Err(LayoutError::V2PieceLength { piece_length });
        }
        let per_piece = piece_length / block;
        let level = per_piece.trailing_zeros();
        let mut out = Vec::new();
        let mut pos: u64 = 0;
        for (index, f) in files.iter().enumerate() {
            let start = pos;
            pos = pos
                .checked_add(f.length)
                .ok_or(LayoutError::LengthOverflow { index })?;
            if f.pad || f.length == 0 {
                continue;
            }
            if (out.len() as u64).checked_mul(piece_length) != Some(start) {
                return Err(LayoutError::V2Unaligned {
                    index,
                    offset: start,
                });
            }
            let h = hashes
                .get(index)
                .copied()
                .flatten()
                .ok_or(LayoutError::V2MissingHashes { index })?;
            if f.length <= piece_length {
                let leaves = num_blocks(f.length).next_power_of_two();
                out.push(V2Piece {
                    root: h.pieces_root,
                    data_len: f.length,
                    leaves: u32::try_from(leaves)
                        .map_err(|_| LayoutError::V2PieceLength { piece_length })?,
                });
                continue;
            }
            let layer = h.layer.ok_or(LayoutError::V2MissingHashes { index })?;
            let pieces = f.length.div_ceil(piece_length);
            if layer.len() as u64 != pieces
                || merkle_root_with_pad(layer, layer.len(), level) != h.pieces_root
            {
                return Err(LayoutError::V2BadLayer { index });
            }
            let leaves = u32::try_from(per_piece)
                .map_err(|_| LayoutError::V2PieceLength { piece_length })?;
            for (k, root) in layer.iter().enumerate() {
                let off = k as u64 * piece_length;
                out.push(V2Piece {
                    root: *root,
                    data_len: (f.length - off).min(piece_length),
                    leaves,
                });
            }
        }
        Ok(PieceHashes::V2(out))
    }
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
        if layout.piece_hashes.len() as u64 != expected {
            return Err(LayoutError::PieceCountMismatch {
                expected,
                got: layout.piece_hashes.len(),
            });
        }
        if let PieceHashes::V2(v2) = &layout.piece_hashes {
            check_v2(&layout, v2)?;
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

    /// Expected SHA-1 of `piece` (`None` for v2 torrents or past the end).
    pub fn piece_hash(&self, piece: u32) -> Option<&[u8; 20]> {
        match &self.layout.piece_hashes {
            PieceHashes::V1(v) => v.get(piece as usize),
            PieceHashes::V2(_) => None,
        }
    }

    /// How to verify `piece` of a v2 torrent (`None` for v1 or past the end).
    pub fn piece_hash_v2(&self, piece: u32) -> Option<&V2Piece> {
        match &self.layout.piece_hashes {
            PieceHashes::V2(v) => v.get(piece as usize),
            PieceHashes::V1(_) => None,
        }
    }

    /// Whether the concatenation of `chunks` (the whole piece) matches the
    /// expected hash of `piece`, SHA-1 or v2 merkle root. Blocking CPU work:
    /// call it off the async threads.
    pub fn verify_piece(&self, piece: u32, chunks: &[&[u8]]) -> bool {
        match &self.layout.piece_hashes {
            PieceHashes::V1(v) => v
                .get(piece as usize)
                .is_some_and(|h| crate::hash::verify_v1(h, chunks.iter().copied())),
            PieceHashes::V2(v) => v
                .get(piece as usize)
                .is_some_and(|e| crate::hash::verify_v2(e, chunks.iter().copied())),
        }
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

/// Checks the [`V2Piece`] invariants against the piece lengths.
fn check_v2(layout: &StorageLayout, v2: &[V2Piece]) -> Result<(), LayoutError> {
    use shoal_metainfo::merkle::BLOCK_SIZE;
    let pl = layout.piece_length;
    let block = BLOCK_SIZE as u64;
    if pl < block || !pl.is_power_of_two() {
        return Err(LayoutError::V2PieceLength { piece_length: pl });
    }
    for (i, e) in v2.iter().enumerate() {
        let start = i as u64 * pl;
        let plen = layout.total_length.saturating_sub(start).min(pl);
        let leaves = u64::from(e.leaves);
        let ok = e.data_len > 0
            && e.data_len <= plen
            && leaves.is_power_of_two()
            && leaves <= pl / block
            && leaves * block >= e.data_len;
        if !ok {
            return Err(LayoutError::V2BadPiece {
                piece: u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
    }
    Ok(())
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
            piece_hashes: PieceHashes::V1(vec![[0; 20]; n]),
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
        if let PieceHashes::V1(v) = &mut l.piece_hashes {
            v.pop();
        }
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
