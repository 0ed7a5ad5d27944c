//! What was irregular in a .torrent file that was loaded anyway.
//!
//! Real torrent files are not always canonical bencode, and libtorrent,
//! Transmission and aria2 load them. shoal loads what libtorrent 2.0.8 loads,
//! computing the info-hash over the original bytes of `info` as libtorrent
//! does, and records what it tolerated so `shoal info` can say so. What is
//! truly ambiguous (duplicate keys, leading zeros, `-0`, truncated data,
//! unsorted keys in a v2 `info`, whose file-tree order is the piece order)
//! stays an error. The crate's `tests/wild.rs` and the shoal crate's
//! `interop_wild` test hold the cases, the latter beside the reference clients.
use shoal_bencode::Dict;
use std::fmt;

/// One irregularity of a loaded torrent file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Irregularity {
    /// Dictionary keys out of order inside a v1 `info`. The info-hash is over
    /// the bytes as they are, as libtorrent computes it; Transmission 3.00 and
    /// aria2 1.36 hash their own sorted re-encoding, so they join another swarm.
    UnsortedInfoKeys {
        /// The first key found out of order.
        key: String,
        /// Its byte offset in the file.
        offset: usize,
    },
    /// Dictionary keys out of order outside `info` (no hash depends on them).
    UnsortedKeys {
        /// The first key found out of order.
        key: String,
        /// Its byte offset in the file.
        offset: usize,
    },
    /// Bytes after the end of the top-level dictionary, ignored.
    TrailingBytes {
        /// Where they start.
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// v2 piece layers missing for some files longer than one piece: they can
    /// be fetched from peers with BEP 52 hash requests
    /// (see [`crate::Torrent::needs_piece_layer`]).
    MissingPieceLayers {
        /// Files whose layer is missing.
        missing: usize,
        /// Files that need a layer (longer than one piece).
        of: usize,
    },
    /// `piece layers` is not a dictionary; ignored (as libtorrent does), so
    /// every layer counts as missing.
    PieceLayersNotDict {
        /// The bencode type found instead.
        got: &'static str,
    },
}

impl Irregularity {
    /// A stable snake_case name, for JSON and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Irregularity::UnsortedInfoKeys { .. } => "unsorted_info_keys",
            Irregularity::UnsortedKeys { .. } => "unsorted_keys",
            Irregularity::TrailingBytes { .. } => "trailing_bytes",
            Irregularity::MissingPieceLayers { .. } => "missing_piece_layers",
            Irregularity::PieceLayersNotDict { .. } => "piece_layers_not_a_dict",
        }
    }
}

/// The key and offset of an [`shoal_bencode::ErrorKind::UnsortedKey`] error.
pub(crate) fn unsorted_key(e: &shoal_bencode::Error) -> (String, usize) {
    let key = match &e.kind {
        shoal_bencode::ErrorKind::UnsortedKey(k) => k.clone(),
        other => other.to_string(),
    };
    (key, e.offset)
}

/// The first key out of order anywhere in the top-level dictionary outside `info`.
pub(crate) fn unsorted_outside_info(top: &Dict<'_>) -> Option<Irregularity> {
    let first = top.check_sorted().err().or_else(|| {
        top.iter()
            .filter(|(k, _)| *k != b"info")
            .find_map(|(_, v)| v.check_canonical().err())
    })?;
    let (key, offset) = unsorted_key(&first);
    Some(Irregularity::UnsortedKeys { key, offset })
}

impl fmt::Display for Irregularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Irregularity::UnsortedInfoKeys { key, offset } => write!(
                f,
                "keys out of order inside info (key {key:?} at byte offset {offset}); \
                 the info-hash is over the bytes as they are, as libtorrent computes it \
                 (Transmission and aria2 sort them first and get another)"
            ),
            Irregularity::UnsortedKeys { key, offset } => write!(
                f,
                "keys out of order outside info (key {key:?} at byte offset {offset})"
            ),
            Irregularity::TrailingBytes { offset, len } => {
                let s = if *len == 1 { "" } else { "s" };
                write!(
                    f,
                    "{len} byte{s} after the end of the torrent (at byte offset {offset}), ignored"
                )
            }
            Irregularity::MissingPieceLayers { missing, of } => {
                let s = if *of == 1 { "" } else { "s" };
                write!(
                    f,
                    "no piece layer for {missing} of {of} file{s} longer than a piece \
                     (to be fetched from peers)"
                )
            }
            Irregularity::PieceLayersNotDict { got } => {
                write!(f, "piece layers is not a dictionary (a {got}), ignored")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_each_with_a_distinct_code() {
        let all = [
            Irregularity::UnsortedInfoKeys {
                key: "length".into(),
                offset: 9,
            },
            Irregularity::UnsortedKeys {
                key: "announce".into(),
                offset: 3,
            },
            Irregularity::TrailingBytes {
                offset: 100,
                len: 1,
            },
            Irregularity::MissingPieceLayers { missing: 1, of: 2 },
            Irregularity::PieceLayersNotDict { got: "string" },
        ];
        let mut codes: Vec<&str> = all.iter().map(Irregularity::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for i in &all {
            let s = i.to_string();
            assert!(!s.contains('\n') && !s.is_empty(), "{s}");
        }
        assert_eq!(
            all[2].to_string(),
            "1 byte after the end of the torrent (at byte offset 100), ignored"
        );
        assert_eq!(
            Irregularity::TrailingBytes { offset: 7, len: 22 }.to_string(),
            "22 bytes after the end of the torrent (at byte offset 7), ignored"
        );
        assert_eq!(
            all[3].to_string(),
            "no piece layer for 1 of 2 files longer than a piece (to be fetched from peers)"
        );
    }
}
