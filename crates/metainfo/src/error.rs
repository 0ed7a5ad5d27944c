//! Errors of [`crate::Torrent::from_bytes`]: which key, what is wrong, at which byte offset.
//!
//! Keys are written as paths from the top of the file: `info.files[3].length`,
//! `info.file tree/docs/a.txt.pieces root`, `piece layers`. The byte offset is
//! where the offending value starts (or, for a missing key, where the dictionary
//! that should hold it starts). Also the field-reading helpers the parser uses.
use shoal_bencode::{Dict, Value};
use std::fmt;

/// Everything that can make a .torrent file unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The input is larger than [`crate::ParseLimits::max_torrent_size`]; nothing was decoded.
    #[error("torrent file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The input is not valid bencode (or exceeds a decoder limit).
    #[error(transparent)]
    Bencode(#[from] shoal_bencode::Error),
    /// The `info` dictionary of a v2 or hybrid torrent has keys out of order.
    /// BEP 52 file trees are read in key order, which is the order of the
    /// files in the piece space, so this is ambiguous; libtorrent refuses it too.
    /// (A v1 `info` with unsorted keys is loaded, see [`crate::Irregularity`].)
    #[error(
        "info: not canonical, as a v2 info dictionary must be (the file order depends on it): {0}"
    )]
    NotCanonical(shoal_bencode::Error),
    /// A key is missing, has the wrong type or an unacceptable value.
    #[error("{key}: {problem} at byte offset {offset}")]
    Invalid {
        /// Path of the key, e.g. `info.files[3].length`.
        key: String,
        /// What is wrong with it.
        problem: Problem,
        /// Byte offset in the input of the value (or of the dictionary missing it).
        offset: usize,
    },
}

/// What is wrong with one key of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A required key is absent.
    Missing,
    /// The value has another bencode type.
    WrongType {
        /// Type required here.
        expected: &'static str,
        /// Type found.
        got: &'static str,
    },
    /// A length or size below zero.
    Negative(i64),
    /// A value that must be strictly positive is zero.
    Zero,
    /// A value above a limit.
    TooLarge {
        /// The value found.
        value: u64,
        /// The largest accepted.
        limit: u64,
    },
    /// A v2 piece length that is not a power of two of at least 16 KiB.
    NotPowerOfTwo(u64),
    /// A `meta version` other than 2.
    UnsupportedVersion(i64),
    /// A hash (or concatenation of hashes) of the wrong byte length.
    HashLength {
        /// Length found.
        len: usize,
        /// Required length, or the multiple it must be of.
        unit: usize,
    },
    /// `pieces` holds a number of hashes that does not match the total length.
    PieceCount {
        /// Hashes found.
        got: u64,
        /// Hashes required: ceil(total length / piece length).
        expected: u64,
        /// Total length of the piece stream.
        total: u64,
    },
    /// A piece layer is missing for a file longer than one piece (only when
    /// attaching one to a file that needs none).
    MissingLayer,
    /// A `piece layers` key that is not a 32-byte pieces root.
    LayerKey {
        /// Its length in bytes.
        len: usize,
    },
    /// A file inside a v2 `file tree` with the pad attribute: BEP 52 has no
    /// pad files there (libtorrent refuses them too).
    PadInFileTree,
    /// A non-empty v2 file whose `pieces root` is all zeros: no data can match it.
    ZeroPiecesRoot,
    /// A piece layer that does not hash up to the file's `pieces root`.
    LayerMismatch,
    /// The torrent holds no data (no files, or only empty ones).
    Empty,
    /// Both `length` and `files`, or neither.
    LengthAndFiles,
    /// A file-tree node that is both a file (`""` key) and a directory.
    FileAndDirectory,
    /// A path component that is empty where it cannot be.
    EmptyComponent,
    /// A path with more components than allowed.
    PathTooDeep {
        /// Components found.
        depth: usize,
        /// Most allowed.
        limit: usize,
    },
    /// More entries than allowed.
    TooMany {
        /// What is counted (files, pieces, trackers, ...).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A symlink target that would leave the torrent.
    SymlinkEscapes,
    /// The two halves of a hybrid torrent disagree.
    HybridMismatch(String),
    /// A file of a v2 or hybrid torrent not starting on a piece boundary.
    Unaligned {
        /// Its offset in the v1 piece stream.
        offset: u64,
    },
    /// Sum of lengths overflows 64 bits.
    Overflow,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing"),
            Problem::WrongType { expected, got } => write!(f, "expected {expected}, got {got}"),
            Problem::Negative(v) => write!(f, "negative value {v}"),
            Problem::Zero => write!(f, "must be > 0"),
            Problem::TooLarge { value, limit } => write!(f, "{value} is over the limit of {limit}"),
            Problem::NotPowerOfTwo(v) => {
                write!(f, "{v} is not a power of two of at least 16384")
            }
            Problem::UnsupportedVersion(v) => write!(f, "unsupported meta version {v} (only 2)"),
            Problem::HashLength { len, unit } => {
                write!(f, "{len} bytes is not a whole number of {unit}-byte hashes")
            }
            Problem::PieceCount {
                got,
                expected,
                total,
            } => write!(
                f,
                "{got} piece hashes, expected {expected} for {total} bytes of data"
            ),
            Problem::MissingLayer => write!(f, "no piece layer for a file longer than one piece"),
            Problem::LayerMismatch => write!(f, "piece layer does not hash to the pieces root"),
            Problem::LayerKey { len } => {
                write!(f, "key of {len} bytes is not a 32-byte pieces root")
            }
            Problem::PadInFileTree => write!(f, "pad file inside a v2 file tree"),
            Problem::ZeroPiecesRoot => write!(f, "all-zero pieces root for a non-empty file"),
            Problem::Empty => write!(f, "torrent has no data (total length 0)"),
            Problem::LengthAndFiles => write!(f, "needs exactly one of `length` and `files`"),
            Problem::FileAndDirectory => write!(f, "node is both a file and a directory"),
            Problem::EmptyComponent => write!(f, "empty path component"),
            Problem::PathTooDeep { depth, limit } => {
                write!(f, "path of {depth} components, over the limit of {limit}")
            }
            Problem::TooMany { what, limit } => write!(f, "more than {limit} {what}"),
            Problem::SymlinkEscapes => write!(f, "symlink target leaves the torrent"),
            Problem::HybridMismatch(what) => write!(f, "v1 and v2 halves differ: {what}"),
            Problem::Unaligned { offset } => {
                write!(
                    f,
                    "file at offset {offset} does not start on a piece boundary"
                )
            }
            Problem::Overflow => write!(f, "total length overflows"),
        }
    }
}

/// Shorthand for an [`MetainfoError::Invalid`].
pub(crate) fn invalid(key: impl Into<String>, problem: Problem, offset: usize) -> MetainfoError {
    MetainfoError::Invalid {
        key: key.into(),
        problem,
        offset,
    }
}

/// `parent.key` (or `key` at the top level).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A value read from a dictionary with its key path and byte offset, for errors.
pub(crate) struct Field<'d, 'a> {
    pub value: &'d Value<'a>,
    pub key: String,
    pub offset: usize,
}

impl<'d, 'a> Field<'d, 'a> {
    pub fn err(&self, problem: Problem) -> MetainfoError {
        invalid(self.key.clone(), problem, self.offset)
    }

    fn wrong(&self, expected: &'static str) -> MetainfoError {
        self.err(Problem::WrongType {
            expected,
            got: self.value.type_name(),
        })
    }

    pub fn int(&self) -> Result<i64, MetainfoError> {
        self.value.as_int().ok_or_else(|| self.wrong("integer"))
    }

    /// A non-negative integer.
    pub fn u64(&self) -> Result<u64, MetainfoError> {
        let v = self.int()?;
        u64::try_from(v).map_err(|_| self.err(Problem::Negative(v)))
    }

    pub fn bytes(&self) -> Result<&'d [u8], MetainfoError> {
        self.value
            .as_bytes()
            .ok_or_else(|| self.wrong("byte string"))
    }

    pub fn list(&self) -> Result<&'d [Value<'a>], MetainfoError> {
        self.value.as_list().ok_or_else(|| self.wrong("list"))
    }

    pub fn dict(&self) -> Result<&'d Dict<'a>, MetainfoError> {
        self.value.as_dict().ok_or_else(|| self.wrong("dictionary"))
    }
}

/// The value under `key` in `d`, if present.
pub(crate) fn opt<'d, 'a>(d: &'d Dict<'a>, parent: &str, key: &str) -> Option<Field<'d, 'a>> {
    let value = d.get(key.as_bytes())?;
    Some(Field {
        value,
        key: join(parent, key),
        offset: d.offset_of(key.as_bytes()).unwrap_or(d.offset()),
    })
}

/// The value under `key` in `d`; [`Problem::Missing`] (at the dict's offset) if absent.
pub(crate) fn req<'d, 'a>(
    d: &'d Dict<'a>,
    parent: &str,
    key: &str,
) -> Result<Field<'d, 'a>, MetainfoError> {
    opt(d, parent, key).ok_or_else(|| invalid(join(parent, key), Problem::Missing, d.offset()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_key_and_offset() {
        let e = invalid("info.files[3].length", Problem::Negative(-5), 1234);
        assert_eq!(
            e.to_string(),
            "info.files[3].length: negative value -5 at byte offset 1234"
        );
        let e = invalid("info.piece length", Problem::Zero, 12);
        assert_eq!(
            e.to_string(),
            "info.piece length: must be > 0 at byte offset 12"
        );
    }

    #[test]
    fn fields_report_types_and_offsets() {
        let input = b"d1:ai-3e1:b3:xyze";
        let v = shoal_bencode::decode(input, &shoal_bencode::Limits::default()).unwrap();
        let d = v.as_dict().unwrap();
        let a = req(d, "info", "a").unwrap();
        assert_eq!(a.offset, 4);
        match a.u64() {
            Err(MetainfoError::Invalid {
                key,
                problem,
                offset,
            }) => {
                assert_eq!(key, "info.a");
                assert_eq!(problem, Problem::Negative(-3));
                assert_eq!(offset, 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(req(d, "info", "b").unwrap().int().is_err());
        assert!(req(d, "", "c").is_err());
    }
}
