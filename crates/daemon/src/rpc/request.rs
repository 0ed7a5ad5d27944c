//! Decoding a Transmission RPC request body: the classic format
//! (`{"method": "torrent-get", "arguments": {...}, "tag": 7}`) or JSON-RPC
//! 2.0 (`{"jsonrpc": "2.0", "method": "torrent_get", "params": {...},
//! "id": 7}`, single or batch). Argument names are matched whatever their
//! spelling (`downloadDir`, `download-dir`, `download_dir`), so one table
//! serves both. Untrusted input: the body size is bounded by the HTTP layer,
//! nesting by serde_json (128 levels), batches and lists here; every
//! failure is a typed error, never a panic.
use super::keys::canon;
use serde_json::{Map, Value};

/// Most calls in a JSON-RPC batch.
pub const MAX_BATCH: usize = 64;
/// Most elements of one list argument (`ids`, `fields`, file indices).
pub const MAX_LIST: usize = 1_000_000;

/// Which request format a call came in (answers use the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Transmission's own format (transmission-remote 3/4.0, the *arr apps).
    Legacy,
    /// JSON-RPC 2.0 (Transmission 4.1).
    JsonRpc,
}

/// One decoded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Its format.
    pub protocol: Protocol,
    /// The method as sent.
    pub method: String,
    /// The method, canonical (lower case, no `-` or `_`).
    pub method_key: String,
    /// The arguments, by canonical name.
    pub args: Args,
    /// The classic `tag` or the JSON-RPC `id`, echoed back.
    pub tag: Option<Value>,
    /// A JSON-RPC notification (no `id`): nothing is answered.
    pub notification: bool,
}

/// A request body: one call or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// One call.
    One(Result<Call, CallError>),
    /// A JSON-RPC batch: one result per element.
    Batch(Vec<Result<Call, CallError>>),
}

/// Why a body is not a request at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON (or nested too deeply).
    #[error("parse error: {0}")]
    Json(String),
    /// JSON, but neither an object nor an array of objects.
    #[error("invalid request: the body must be a JSON object (or a JSON-RPC batch)")]
    NotObject,
    /// An empty or oversized batch.
    #[error("invalid request: a batch must hold 1 to {MAX_BATCH} calls")]
    Batch,
}

/// Why one call of a body is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No `method`, or not a string.
    #[error("invalid request: no method name")]
    NoMethod {
        /// The id to answer with (JSON-RPC), if any.
        tag: Option<Value>,
        /// The format.
        protocol: Protocol,
    },
    /// `arguments`/`params` is not an object.
    #[error("invalid params: arguments must be an object")]
    BadArguments {
        /// The id to answer with.
        tag: Option<Value>,
        /// The format.
        protocol: Protocol,
    },
    /// A JSON-RPC element that is not an object, or a wrong `jsonrpc`.
    #[error("invalid request")]
    Invalid,
}

/// Arguments by canonical name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(pub Map<String, Value>);

/// A wrongly typed argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument '{key}': expected {expected}")]
pub struct ArgError {
    /// The argument (canonical name).
    pub key: String,
    /// What it should be.
    pub expected: &'static str,
}

impl Args {
    /// From an object, keys made canonical (a later spelling wins).
    pub fn from_map(m: Map<String, Value>) -> Args {
        Args(m.into_iter().map(|(k, v)| (canon(&k), v)).collect())
    }

    /// The raw value of `key` (any spelling).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(&canon(key))
    }

    /// Whether `key` is there (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_null())
    }

    fn err(key: &str, expected: &'static str) -> ArgError {
        ArgError {
            key: key.to_owned(),
            expected,
        }
    }

    /// A string argument.
    pub fn str(&self, key: &str) -> Result<Option<&str>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::err(key, "a string")),
        }
    }

    /// A boolean (also 0/1, as old clients send).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(_) => Err(Self::err(key, "a boolean")),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                (Some(v), _) => Ok(Some(v)),
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(Some(f as u64)),
                _ => Err(Self::err(key, "a non-negative integer")),
            },
            Some(_) => Err(Self::err(key, "a non-negative integer")),
        }
    }

    /// An integer (may be negative).
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::err(key, "an integer")),
            Some(_) => Err(Self::err(key, "an integer")),
        }
    }

    /// A finite number.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| Self::err(key, "a number")),
            Some(_) => Err(Self::err(key, "a number")),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) if a.len() <= MAX_LIST => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| Self::err(key, "a list of strings")),
            Some(_) => Err(Self::err(key, "a list of strings")),
        }
    }

    /// A list of non-negative integers (file indices).
    pub fn indices(&self, key: &str) -> Result<Option<Vec<usize>>, ArgError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) if a.len() <= MAX_LIST => a
                .iter()
                .map(|v| v.as_u64().and_then(|n| usize::try_from(n).ok()))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| Self::err(key, "a list of file indices")),
            Some(_) => Err(Self::err(key, "a list of file indices")),
        }
    }
}

fn tag_of(o: &Map<String, Value>, protocol: Protocol) -> Option<Value> {
    match protocol {
        Protocol::Legacy => o.get("tag").filter(|t| t.is_number()).cloned(),
        Protocol::JsonRpc => o
            .get("id")
            .filter(|t| t.is_number() || t.is_string() || t.is_null())
            .cloned(),
    }
}

fn call(v: Value, in_batch: bool) -> Result<Call, CallError> {
    let Value::Object(mut o) = v else {
        return Err(CallError::Invalid);
    };
    let protocol = match o.get("jsonrpc") {
        Some(Value::String(s)) if s == "2.0" => Protocol::JsonRpc,
        Some(_) => return Err(CallError::Invalid),
        None if in_batch => return Err(CallError::Invalid),
        None => Protocol::Legacy,
    };
    let tag = tag_of(&o, protocol);
    let notification = protocol == Protocol::JsonRpc && !o.contains_key("id");
    let method = match o.remove("method") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= 64 => m,
        _ => return Err(CallError::NoMethod { tag, protocol }),
    };
    let key = if protocol == Protocol::Legacy {
        "arguments"
    } else {
        "params"
    };
    let args = match o.remove(key) {
        None | Some(Value::Null) => Args::default(),
        Some(Value::Object(m)) => Args::from_map(m),
        Some(_) => return Err(CallError::BadArguments { tag, protocol }),
    };
    Ok(Call {
        protocol,
        method_key: canon(&method),
        method,
        args,
        tag,
        notification,
    })
}

/// Decodes a request body. See the module docs.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    match v {
        Value::Object(_) => Ok(Decoded::One(call(v, false))),
        Value::Array(a) => {
            if a.is_empty() || a.len() > MAX_BATCH {
                return Err(DecodeError::Batch);
            }
            Ok(Decoded::Batch(
                a.into_iter().map(|v| call(v, true)).collect(),
            ))
        }
        _ => Err(DecodeError::NotObject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Call {
        match decode(s.as_bytes()).unwrap() {
            Decoded::One(c) => c.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_formats() {
        let c = one(r#"{"method":"torrent-get","arguments":{"fields":["id"],"ids":[1]},"tag":7}"#);
        assert_eq!(c.protocol, Protocol::Legacy);
        assert_eq!(c.method_key, "torrentget");
        assert_eq!(c.tag, Some(serde_json::json!(7)));
        assert!(!c.notification);
        assert_eq!(c.args.strings("fields").unwrap(), Some(vec!["id".into()]));
        let c = one(
            r#"{"jsonrpc":"2.0","method":"torrent_get","params":{"download_dir":"/x"},"id":"a"}"#,
        );
        assert_eq!(c.protocol, Protocol::JsonRpc);
        assert_eq!(c.method_key, "torrentget");
        assert_eq!(c.args.str("downloadDir").unwrap(), Some("/x"));
        assert_eq!(c.args.str("download-dir").unwrap(), Some("/x"));
        let c = one(r#"{"jsonrpc":"2.0","method":"session_stats"}"#);
        assert!(c.notification);
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        assert!(matches!(decode(b""), Err(DecodeError::Json(_))));
        assert!(matches!(decode(b"{"), Err(DecodeError::Json(_))));
        assert!(matches!(decode(b"7"), Err(DecodeError::NotObject)));
        assert!(matches!(decode(b"[]"), Err(DecodeError::Batch)));
        let deep = "[".repeat(100_000);
        assert!(matches!(decode(deep.as_bytes()), Err(DecodeError::Json(_))));
        let Decoded::One(Err(CallError::NoMethod { .. })) = decode(b"{}").unwrap() else {
            panic!()
        };
        let Decoded::One(Err(CallError::BadArguments { .. })) =
            decode(br#"{"method":"x","arguments":[1]}"#).unwrap()
        else {
            panic!()
        };
        let Decoded::Batch(b) =
            decode(br#"[{"jsonrpc":"2.0","method":"a","id":1}, 5, {"method":"b"}]"#).unwrap()
        else {
            panic!()
        };
        assert!(b[0].is_ok() && b[1].is_err() && b[2].is_err());
    }

    #[test]
    fn argument_types() {
        let c = one(
            r#"{"method":"m","arguments":{"a":"s","b":true,"c":1,"d":-1,"e":1.5,"f":[1,2],"g":2.0}}"#,
        );
        let a = &c.args;
        assert!(a.u64("a").is_err());
        assert_eq!(a.bool("b").unwrap(), Some(true));
        assert_eq!(a.bool("c").unwrap(), Some(true));
        assert!(a.u64("d").is_err());
        assert_eq!(a.i64("d").unwrap(), Some(-1));
        assert!(a.u64("e").is_err());
        assert_eq!(a.u64("g").unwrap(), Some(2));
        assert_eq!(a.f64("e").unwrap(), Some(1.5));
        assert_eq!(a.indices("f").unwrap(), Some(vec![1, 2]));
        assert!(a.strings("f").is_err());
        assert_eq!(a.str("missing").unwrap(), None);
        let e = a.str("b").unwrap_err();
        assert_eq!(e.to_string(), "argument 'b': expected a string");
    }
}
