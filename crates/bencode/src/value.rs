//! The decoded value tree. Byte strings borrow from the input when decoded
//! and can be owned when built by hand; dictionaries remember where they came from.
use std::borrow::Cow;
use std::fmt;

/// One bencoded value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`); not necessarily UTF-8.
    Bytes(Cow<'a, [u8]>),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

/// A dictionary: entries in input order (canonical input is sorted), the raw
/// bytes it was decoded from, and the byte offsets of its values.
///
/// Invariant: keys are unique (the decoder rejects duplicates; [`Dict::insert`] replaces).
#[derive(Clone, Default)]
pub struct Dict<'a> {
    entries: Vec<Entry<'a>>,
    raw: Option<&'a [u8]>,
    offset: usize,
    sorted: bool,
}

#[derive(Clone)]
struct Entry<'a> {
    key: Cow<'a, [u8]>,
    value: Value<'a>,
    key_offset: usize,
    offset: usize,
}

impl PartialEq for Dict<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}
impl Eq for Dict<'_> {}

impl<'a> Dict<'a> {
    /// An empty dictionary, for building values to encode.
    pub fn new() -> Self {
        Dict {
            entries: Vec::new(),
            raw: None,
            offset: 0,
            sorted: true,
        }
    }

    pub(crate) fn from_decoded(
        entries: Vec<(Cow<'a, [u8]>, Value<'a>, usize, usize)>,
        raw: &'a [u8],
        offset: usize,
        sorted: bool,
    ) -> Self {
        Dict {
            entries: entries
                .into_iter()
                .map(|(key, value, key_offset, offset)| Entry {
                    key,
                    value,
                    key_offset,
                    offset,
                })
                .collect(),
            raw: Some(raw),
            offset,
            sorted,
        }
    }

    /// Inserts or replaces `key`. Building by hand drops the raw span.
    pub fn insert(&mut self, key: impl Into<Cow<'a, [u8]>>, value: Value<'a>) {
        let key = key.into();
        self.raw = None;
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.value = value;
            return;
        }
        if let Some(last) = self.entries.last() {
            if last.key.as_ref() > key.as_ref() {
                self.sorted = false;
            }
        }
        self.entries.push(Entry {
            key,
            value,
            key_offset: 0,
            offset: 0,
        });
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries
            .iter()
            .find(|e| e.key.as_ref() == key)
            .map(|e| &e.value)
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value<'a>> {
        let i = self.entries.iter().position(|e| e.key.as_ref() == key)?;
        self.raw = None;
        Some(self.entries.remove(i).value)
    }

    /// Byte offset in the input where the value under `key` starts (0 when built by hand).
    pub fn offset_of(&self, key: &[u8]) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.key.as_ref() == key)
            .map(|e| e.offset)
    }

    /// Entries in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value<'a>)> {
        self.entries.iter().map(|e| (e.key.as_ref(), &e.value))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exact bytes this dictionary was decoded from (`d...e`), if it was decoded
    /// and not modified since. Hash these for an info-hash.
    pub fn raw(&self) -> Option<&'a [u8]> {
        self.raw
    }

    /// Byte offset in the input where this dictionary starts (0 when built by hand).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the keys appeared in strictly increasing byte order.
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Checks that this dictionary's own keys (not those of nested values) are
    /// strictly sorted; the error names the first key out of order and its offset.
    pub fn check_sorted(&self) -> Result<(), crate::Error> {
        if self.sorted {
            return Ok(());
        }
        for w in self.entries.windows(2) {
            if let [a, b] = w {
                if a.key.as_ref() >= b.key.as_ref() {
                    return Err(crate::Error::new(
                        b.key_offset,
                        crate::ErrorKind::UnsortedKey(String::from_utf8_lossy(&b.key).into_owned()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Copies every borrowed byte string, detaching the dictionary from its input.
    pub fn into_owned(self) -> Dict<'static> {
        Dict {
            entries: self
                .entries
                .into_iter()
                .map(|e| Entry {
                    key: Cow::Owned(e.key.into_owned()),
                    value: e.value.into_owned(),
                    key_offset: e.key_offset,
                    offset: e.offset,
                })
                .collect(),
            raw: None,
            offset: self.offset,
            sorted: self.sorted,
        }
    }
}

impl<'a> Value<'a> {
    /// A byte string value borrowing `b`.
    pub fn bytes(b: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(b))
    }

    /// A byte string value owning `b`.
    pub fn owned_bytes(b: impl Into<Vec<u8>>) -> Value<'static> {
        Value::Bytes(Cow::Owned(b.into()))
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }

    /// Copies every borrowed byte string, detaching the value from its input.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Int(i) => Value::Int(i),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::List(l) => Value::List(l.into_iter().map(Value::into_owned).collect()),
            Value::Dict(d) => Value::Dict(d.into_owned()),
        }
    }

    /// Checks that this value is in canonical form throughout: every dictionary's
    /// keys are strictly sorted. Integers and lengths are always canonical once decoded.
    pub fn check_canonical(&self) -> Result<(), crate::Error> {
        match self {
            Value::Int(_) | Value::Bytes(_) => Ok(()),
            Value::List(l) => l.iter().try_for_each(Value::check_canonical),
            Value::Dict(d) => {
                d.check_sorted()?;
                d.entries.iter().try_for_each(|e| e.value.check_canonical())
            }
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if s.len() <= 128 => write!(f, "{s:?}"),
                _ => write!(f, "<{} bytes>", b.len()),
            },
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => d.fmt(f),
        }
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (String::from_utf8_lossy(&e.key), &e.value)),
            )
            .finish()
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(b))
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}
impl From<Vec<u8>> for Value<'_> {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(Cow::Owned(b))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Bytes(Cow::Owned(s.into_bytes()))
    }
}
impl<'a> From<Dict<'a>> for Value<'a> {
    fn from(d: Dict<'a>) -> Self {
        Value::Dict(d)
    }
}
impl<'a> From<Vec<Value<'a>>> for Value<'a> {
    fn from(l: Vec<Value<'a>>) -> Self {
        Value::List(l)
    }
}
