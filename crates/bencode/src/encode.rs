//! Canonical encoding: dictionary keys sorted, shortest integer and length forms.
use crate::value::Value;

/// Encodes `v` canonically into a new buffer.
pub fn encode(v: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

/// Encodes `v` canonically, appending to `out`. A decoded, unmodified dictionary
/// whose keys were already sorted is copied from its raw bytes.
pub fn encode_into(v: &Value<'_>, out: &mut Vec<u8>) {
    let mut e = Encoder::new(out);
    e.value(v);
}

/// A streaming writer for building messages without a [`Value`] tree.
///
/// The caller must emit dictionary keys in sorted order for canonical output.
pub struct Encoder<'b> {
    out: &'b mut Vec<u8>,
}

impl<'b> Encoder<'b> {
    /// A writer appending to `out`.
    pub fn new(out: &'b mut Vec<u8>) -> Self {
        Encoder { out }
    }

    /// Writes an integer.
    pub fn int(&mut self, i: i64) -> &mut Self {
        self.out.push(b'i');
        self.out.extend_from_slice(i.to_string().as_bytes());
        self.out.push(b'e');
        self
    }

    /// Writes a byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b.len().to_string().as_bytes());
        self.out.push(b':');
        self.out.extend_from_slice(b);
        self
    }

    /// Opens a list; close it with [`Encoder::end`].
    pub fn begin_list(&mut self) -> &mut Self {
        self.out.push(b'l');
        self
    }

    /// Opens a dictionary; write key, value, key, value ... then [`Encoder::end`].
    pub fn begin_dict(&mut self) -> &mut Self {
        self.out.push(b'd');
        self
    }

    /// Closes the innermost list or dictionary.
    pub fn end(&mut self) -> &mut Self {
        self.out.push(b'e');
        self
    }

    /// Appends already-encoded bytes (for example an `info` dictionary's raw span).
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.out.extend_from_slice(encoded);
        self
    }

    /// Writes a whole value canonically.
    pub fn value(&mut self, v: &Value<'_>) -> &mut Self {
        match v {
            Value::Int(i) => self.int(*i),
            Value::Bytes(b) => self.bytes(b),
            Value::List(l) => {
                self.begin_list();
                for item in l {
                    self.value(item);
                }
                self.end()
            }
            Value::Dict(d) => {
                if let (Some(raw), true) = (d.raw(), d.is_sorted()) {
                    if is_canonical_tree(v) {
                        return self.raw(raw);
                    }
                }
                let mut entries: Vec<_> = d.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                self.begin_dict();
                for (k, v) in entries {
                    self.bytes(k);
                    self.value(v);
                }
                self.end()
            }
        }
    }
}

fn is_canonical_tree(v: &Value<'_>) -> bool {
    v.check_canonical().is_ok()
}
