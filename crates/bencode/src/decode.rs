//! The decoder: recursive descent over a byte slice, bounded by [`Limits`].
use crate::error::{Error, ErrorKind};
use crate::value::{Dict, Value};
use std::borrow::Cow;
use std::collections::HashSet;

/// Bounds on what the decoder accepts, so hostile input costs bounded time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of lists and dictionaries (the top level counts as 1).
    pub max_depth: usize,
    /// Maximum length of one byte string.
    pub max_string_len: usize,
    /// Maximum number of values in the whole input (every int, string, list, dict).
    pub max_elements: usize,
}

impl Default for Limits {
    /// Generous limits for .torrent files: depth 100, 64 MiB strings, 4 million values.
    fn default() -> Self {
        Limits {
            max_depth: 100,
            max_string_len: 64 << 20,
            max_elements: 4_000_000,
        }
    }
}

impl Limits {
    /// Tight limits for small network messages (KRPC, extension messages, tracker replies).
    pub fn message() -> Self {
        Limits {
            max_depth: 16,
            max_string_len: 1 << 20,
            max_elements: 20_000,
        }
    }
}

/// Decodes exactly one value occupying the whole of `input`.
pub fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Value<'a>, Error> {
    let (v, end) = decode_prefix(input, limits)?;
    if end != input.len() {
        return Err(Error::new(end, ErrorKind::TrailingData));
    }
    Ok(v)
}

/// Decodes one value at the start of `input`; returns it and the offset just past it.
/// Used where bencode is followed by raw bytes (BEP 9 `ut_metadata` data messages).
pub fn decode_prefix<'a>(input: &'a [u8], limits: &Limits) -> Result<(Value<'a>, usize), Error> {
    let mut d = Decoder {
        input,
        pos: 0,
        elements: 0,
        limits,
    };
    let v = d.value(1)?;
    Ok((v, d.pos))
}

struct Decoder<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    elements: usize,
    limits: &'l Limits,
}

impl<'a> Decoder<'a, '_> {
    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(self.pos, kind)
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(ErrorKind::UnexpectedEof))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.err(ErrorKind::TooManyElements));
        }
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.string().map(|s| Value::Bytes(Cow::Borrowed(s))),
            b'l' => {
                if depth > self.limits.max_depth {
                    return Err(self.err(ErrorKind::TooDeep));
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth > self.limits.max_depth {
                    return Err(self.err(ErrorKind::TooDeep));
                }
                self.dict(depth).map(Value::Dict)
            }
            b => Err(self.err(ErrorKind::UnexpectedByte(b))),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Dict<'a>, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut entries: Vec<(Cow<'a, [u8]>, Value<'a>, usize, usize)> = Vec::new();
        let mut sorted = true;
        let mut seen: Option<HashSet<&'a [u8]>> = None;
        loop {
            let b = self.peek()?;
            if b == b'e' {
                break;
            }
            if !b.is_ascii_digit() {
                return Err(self.err(ErrorKind::NonStringKey));
            }
            let key_at = self.pos;
            self.elements += 1;
            if self.elements > self.limits.max_elements {
                return Err(self.err(ErrorKind::TooManyElements));
            }
            let key = self.string()?;
            let dup = || Error::new(key_at, ErrorKind::DuplicateKey(lossy(key)));
            if let Some(set) = seen.as_mut() {
                if !set.insert(key) {
                    return Err(dup());
                }
            } else if let Some((prev, ..)) = entries.last() {
                match prev.as_ref().cmp(key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Err(dup()),
                    std::cmp::Ordering::Greater => {
                        // Unsorted from here on: fall back to a set for duplicate detection.
                        sorted = false;
                        let mut set: HashSet<&'a [u8]> = HashSet::with_capacity(entries.len() * 2);
                        for (k, ..) in &entries {
                            if let Cow::Borrowed(k) = k {
                                set.insert(k);
                            }
                        }
                        if !set.insert(key) {
                            return Err(dup());
                        }
                        seen = Some(set);
                    }
                }
            }
            let value_at = self.pos;
            let value = self.value(depth + 1)?;
            entries.push((Cow::Borrowed(key), value, key_at, value_at));
        }
        self.pos += 1;
        Ok(Dict::from_decoded(
            entries,
            &self.input[start..self.pos],
            start,
            sorted,
        ))
    }

    /// Parses `i<digits>e` strictly: no leading zeros, no `-0`, no empty digits.
    fn int(&mut self) -> Result<i64, Error> {
        let start = self.pos;
        self.pos += 1;
        let neg = self.peek()? == b'-';
        if neg {
            self.pos += 1;
        }
        let digits_at = self.pos;
        let mut v: i64 = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    let d = (b - b'0') as i64;
                    v = v
                        .checked_mul(10)
                        .and_then(|v| {
                            if neg {
                                v.checked_sub(d)
                            } else {
                                v.checked_add(d)
                            }
                        })
                        .ok_or_else(|| Error::new(start, ErrorKind::IntegerOverflow))?;
                    self.pos += 1;
                }
                b'e' => break,
                _ => return Err(self.err(ErrorKind::UnexpectedByte(b))),
            }
        }
        let n = self.pos - digits_at;
        if n == 0 {
            return Err(Error::new(start, ErrorKind::InvalidInteger));
        }
        if n > 1 && self.input[digits_at] == b'0' {
            return Err(Error::new(start, ErrorKind::LeadingZero));
        }
        if neg && v == 0 {
            return Err(Error::new(start, ErrorKind::NegativeZero));
        }
        self.pos += 1;
        Ok(v)
    }

    /// Parses `<len>:<bytes>` with a canonical length and the string limit.
    fn string(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let mut len: u64 = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    len = len * 10 + (b - b'0') as u64;
                    if len > self.limits.max_string_len as u64 {
                        return Err(Error::new(start, ErrorKind::StringTooLong(len)));
                    }
                    self.pos += 1;
                }
                b':' => break,
                _ => return Err(self.err(ErrorKind::UnexpectedByte(b))),
            }
        }
        // The caller saw a digit first, so there is at least one.
        if self.pos - start > 1 && self.input[start] == b'0' {
            return Err(Error::new(start, ErrorKind::LeadingZero));
        }
        self.pos += 1;
        let len = len as usize;
        if self.input.len() - self.pos < len {
            return Err(Error::new(self.input.len(), ErrorKind::UnexpectedEof));
        }
        let s = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
