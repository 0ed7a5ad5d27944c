//! The piece stream of a torrent being created: where each file and pad file
//! sits, and which pieces cover which bytes.
//!
//! v1 torrents concatenate the files. v2 and hybrid torrents align every file
//! on a piece boundary; with more than one file a pad (zeros) follows every
//! non-empty file that does not end on a boundary, the last one included (as
//! libtorrent does), so the hybrid v1 half lists the same pad files.
use super::{CreateError, Version};

/// What a segment of the piece stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Bytes of the input file with this index (into [`super::CreatePlan::files`]).
    File(usize),
    /// Zeros of a pad file (BEP 47).
    Pad,
}

/// A non-empty run of the piece stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset of its first byte in the piece stream.
    pub start: u64,
    /// Length in bytes (> 0).
    pub length: u64,
    /// File or pad.
    pub kind: SegmentKind,
}

/// Where every byte of the piece stream comes from.
///
/// Invariants: segments are sorted, contiguous from 0, each non-empty; in an
/// aligned layout every file starts on a piece boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    piece_length: u64,
    segments: Vec<Segment>,
    file_offsets: Vec<u64>,
    pads_after: Vec<u64>,
    stream_length: u64,
    data_length: u64,
    aligned: bool,
}

impl Layout {
    /// Lays out files of the given `lengths` (in torrent order). `multi_file`
    /// is false for a single-file torrent.
    pub fn new(
        lengths: &[u64],
        piece_length: u64,
        version: Version,
        multi_file: bool,
    ) -> Result<Self, CreateError> {
        let aligned = version.has_v2();
        let pad_files = aligned && multi_file && lengths.len() > 1;
        let mut segments = Vec::with_capacity(lengths.len() * 2);
        let mut file_offsets = Vec::with_capacity(lengths.len());
        let mut pads_after = Vec::with_capacity(lengths.len());
        let mut off = 0u64;
        let mut data = 0u64;
        for (i, &len) in lengths.iter().enumerate() {
            file_offsets.push(off);
            if len > 0 {
                segments.push(Segment {
                    start: off,
                    length: len,
                    kind: SegmentKind::File(i),
                });
            }
            off = off.checked_add(len).ok_or(CreateError::TooLarge)?;
            data = data.checked_add(len).ok_or(CreateError::TooLarge)?;
            let rem = off % piece_length;
            let pad = if pad_files && len > 0 && rem != 0 {
                piece_length - rem
            } else {
                0
            };
            if pad > 0 {
                segments.push(Segment {
                    start: off,
                    length: pad,
                    kind: SegmentKind::Pad,
                });
                off = off.checked_add(pad).ok_or(CreateError::TooLarge)?;
            }
            pads_after.push(pad);
        }
        Ok(Layout {
            piece_length,
            segments,
            file_offsets,
            pads_after,
            stream_length: off,
            data_length: data,
            aligned,
        })
    }

    /// The piece length in bytes.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Total bytes of the piece stream (files and pad files).
    pub fn stream_length(&self) -> u64 {
        self.stream_length
    }

    /// Total bytes of file content (pad files excluded).
    pub fn data_length(&self) -> u64 {
        self.data_length
    }

    /// Whether files start on piece boundaries (v2 and hybrid).
    pub fn is_aligned(&self) -> bool {
        self.aligned
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u64 {
        self.stream_length.div_ceil(self.piece_length)
    }

    /// All segments in stream order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Offset of file `i` in the piece stream.
    pub fn file_offset(&self, i: usize) -> Option<u64> {
        self.file_offsets.get(i).copied()
    }

    /// Length of the pad file following file `i` (0 when there is none).
    pub fn pad_after(&self, i: usize) -> u64 {
        self.pads_after.get(i).copied().unwrap_or(0)
    }

    /// The byte range `[start, end)` of piece `p` in the stream.
    pub fn piece_range(&self, p: u64) -> (u64, u64) {
        let start = p.saturating_mul(self.piece_length).min(self.stream_length);
        let end = start
            .saturating_add(self.piece_length)
            .min(self.stream_length);
        (start, end)
    }

    /// The segments overlapping `[start, end)`.
    pub fn segments_in(&self, start: u64, end: u64) -> &[Segment] {
        let first = self
            .segments
            .partition_point(|s| s.start + s.length <= start);
        let last = self.segments.partition_point(|s| s.start < end);
        self.segments.get(first..last.max(first)).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: u64 = 32768;

    #[test]
    fn v1_concatenates_without_pads() {
        let l = Layout::new(&[100_000, 0, 70_000], PL, Version::V1, true).unwrap();
        assert_eq!(l.stream_length(), 170_000);
        assert_eq!(l.num_pieces(), 170_000u64.div_ceil(PL));
        assert_eq!(l.segments().len(), 2);
        assert_eq!(l.file_offset(2), Some(100_000));
        let (s, e) = l.piece_range(3);
        assert_eq!((s, e), (3 * PL, 4 * PL));
        // Piece 3 spans the end of file 0 and the start of file 2.
        let segs = l.segments_in(s, e);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].kind, SegmentKind::File(0));
        assert_eq!(segs[1].kind, SegmentKind::File(2));
    }

    #[test]
    fn hybrid_pads_like_libtorrent() {
        // Same layout libtorrent 2.0.8 produces for these sizes at 32 KiB:
        // a.bin, pad 31072, c.bin, pad 28304, empty, sub/b.bin, pad 15536.
        let l = Layout::new(&[100_000, 70_000, 0, 50_000], PL, Version::Hybrid, true).unwrap();
        assert_eq!(l.pad_after(0), 31_072);
        assert_eq!(l.pad_after(1), 28_304);
        assert_eq!(l.pad_after(2), 0);
        assert_eq!(l.pad_after(3), 15_536);
        assert_eq!(l.file_offset(3), Some(229_376));
        assert_eq!(l.stream_length() % PL, 0);
        for i in 0..4 {
            assert_eq!(l.file_offset(i).unwrap() % PL, 0);
        }
    }

    #[test]
    fn single_file_hybrid_has_no_pad() {
        let l = Layout::new(&[100_000], PL, Version::Hybrid, false).unwrap();
        assert_eq!(l.pad_after(0), 0);
        assert_eq!(l.stream_length(), 100_000);
        let l = Layout::new(&[100_000], PL, Version::Hybrid, true).unwrap();
        assert_eq!(l.pad_after(0), 0);
    }

    #[test]
    fn v2_aligns_without_pad_segments() {
        let l = Layout::new(&[100, 200], PL, Version::V2, true).unwrap();
        assert_eq!(l.file_offset(1), Some(PL));
        assert_eq!(l.num_pieces(), 2);
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(matches!(
            Layout::new(&[u64::MAX, 1], PL, Version::V1, true),
            Err(CreateError::TooLarge)
        ));
    }
}
