//! Decoder errors: what went wrong and at which byte offset.
use std::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended in the middle of a value (it is truncated).
    UnexpectedEof,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer with no digits (`ie`, `i-e`).
    InvalidInteger,
    /// An integer or a string length written with a leading zero (`i03e`,
    /// `03:abc`): BEP 3 forbids it, and clients read it differently.
    LeadingZero,
    /// The integer `-0`: BEP 3 forbids it.
    NegativeZero,
    /// An integer that does not fit in an `i64`.
    IntegerOverflow,
    /// A byte string longer than [`crate::Limits::max_string_len`].
    StringTooLong(u64),
    /// Nesting deeper than [`crate::Limits::max_depth`].
    TooDeep,
    /// More values than [`crate::Limits::max_elements`].
    TooManyElements,
    /// A dictionary key that is not a byte string.
    NonStringKey,
    /// The same key twice in one dictionary: which value counts would be a guess.
    DuplicateKey(String),
    /// Keys out of order where canonical form is required.
    UnsortedKey(String),
    /// Bytes after the end of the top-level value.
    TrailingData,
}

/// A decoding error with the byte offset (from the start of the input) where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// Offset of the offending byte in the input.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        Error { offset, kind }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnexpectedEof => write!(f, "unexpected end of input (truncated data)"),
            ErrorKind::UnexpectedByte(b) => {
                if b.is_ascii_graphic() {
                    write!(f, "unexpected byte '{}'", *b as char)
                } else {
                    write!(f, "unexpected byte 0x{b:02x}")
                }
            }
            ErrorKind::InvalidInteger => write!(f, "invalid integer (no digits)"),
            ErrorKind::LeadingZero => write!(
                f,
                "number with a leading zero (not bencode; clients read it differently)"
            ),
            ErrorKind::NegativeZero => write!(f, "integer -0 (not bencode)"),
            ErrorKind::IntegerOverflow => write!(f, "integer does not fit in 64 bits"),
            ErrorKind::StringTooLong(n) => write!(f, "string of {n} bytes is over the limit"),
            ErrorKind::TooDeep => write!(f, "nesting too deep"),
            ErrorKind::TooManyElements => write!(f, "too many elements"),
            ErrorKind::NonStringKey => write!(f, "dictionary key is not a string"),
            ErrorKind::DuplicateKey(k) => write!(
                f,
                "duplicate dictionary key {k:?} (ambiguous: which value counts would be a guess)"
            ),
            ErrorKind::UnsortedKey(k) => write!(f, "dictionary key {k:?} out of order"),
            ErrorKind::TrailingData => write!(f, "trailing data after the value"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode: {} at byte offset {}", self.kind, self.offset)
    }
}
