//! Decoder errors: what went wrong and at which byte offset.
use std::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEof,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer that is not canonical (leading zero, `-0`) or not a number.
    InvalidInteger,
    /// An integer that does not fit in an `i64`.
    IntegerOverflow,
    /// A string length prefix that is malformed.
    InvalidLength,
    /// A byte string longer than [`crate::Limits::max_string_len`].
    StringTooLong(u64),
    /// Nesting deeper than [`crate::Limits::max_depth`].
    TooDeep,
    /// More values than [`crate::Limits::max_elements`].
    TooManyElements,
    /// A dictionary key that is not a byte string.
    NonStringKey,
    /// The same key twice in one dictionary.
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
            ErrorKind::UnexpectedEof => write!(f, "unexpected end of input"),
            ErrorKind::UnexpectedByte(b) => {
                if b.is_ascii_graphic() {
                    write!(f, "unexpected byte '{}'", *b as char)
                } else {
                    write!(f, "unexpected byte 0x{b:02x}")
                }
            }
            ErrorKind::InvalidInteger => write!(f, "invalid integer (not canonical)"),
            ErrorKind::IntegerOverflow => write!(f, "integer does not fit in 64 bits"),
            ErrorKind::InvalidLength => write!(f, "invalid string length"),
            ErrorKind::StringTooLong(n) => write!(f, "string of {n} bytes is over the limit"),
            ErrorKind::TooDeep => write!(f, "nesting too deep"),
            ErrorKind::TooManyElements => write!(f, "too many elements"),
            ErrorKind::NonStringKey => write!(f, "dictionary key is not a string"),
            ErrorKind::DuplicateKey(k) => write!(f, "duplicate dictionary key {k:?}"),
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
