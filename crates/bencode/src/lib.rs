//! Bencode (BEP 3): a zero-copy decoder with limits and a canonical encoder.
//!
//! Decoding borrows from the input: byte strings are `Cow::Borrowed` slices
//! and every dictionary keeps the raw byte span it was decoded from, so an
//! info-hash is computed over the original bytes, never a re-encoding.
//!
//! The decoder is strict where BEP 3 is, and where a lenient reading would be
//! ambiguous: integers and string lengths with leading zeros, `-0`, duplicate
//! dictionary keys and truncated input are errors that say why. Unsorted keys
//! are accepted but recorded (see [`Dict::is_sorted`]); [`Value::check_canonical`]
//! finds them where canonical form is required (a v2 `info` dictionary) or
//! worth reporting. [`decode`] refuses bytes after the value; [`decode_prefix`]
//! returns where the value ended, for callers that accept such bytes (.torrent
//! files from the wild, BEP 9 data messages).
//!
//! Every error carries the byte offset where it was found.
#![deny(missing_docs)]

mod decode;
mod encode;
mod error;
mod value;

pub use decode::{decode, decode_prefix, Limits};
pub use encode::{encode, encode_into, Encoder};
pub use error::{Error, ErrorKind};
pub use value::{Dict, Value};

#[cfg(test)]
mod tests;
