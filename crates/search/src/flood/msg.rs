//! The `shoal_search` BEP 10 extension messages (bencoded dictionaries):
//!
//! - query: `{"m": "q", "id": <8 bytes>, "ttl": N, "q": <query text>}`;
//! - results: `{"m": "r", "id": <8 bytes>, "r": [{"ih": <20 bytes>, "l": SIZE, "n": NAME}, …]}`.
//!
//! Decoding is strict and bounded: a message is at most [`MAX_MESSAGE`]
//! bytes, a query at most [`MAX_QUERY_BYTES`], at most [`MAX_RESULTS_PER_MSG`]
//! results with names of at most [`MAX_NAME_BYTES`] (UTF-8); a TTL above
//! [`MAX_TTL`] is clamped.
use shoal_bencode::{Encoder, Limits, Value};

/// The BEP 10 extension name.
pub const EXTENSION_NAME: &str = "shoal_search";
/// Largest message accepted.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Longest query text.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most results in one message.
pub const MAX_RESULTS_PER_MSG: usize = 25;
/// Longest name in a result.
pub const MAX_NAME_BYTES: usize = 256;
/// Highest TTL honoured.
pub const MAX_TTL: u8 = 7;

/// A query id (random, chosen by the originator).
pub type QueryId = [u8; 8];

/// One result: a torrent of the answering peer's library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodResult {
    /// Info-hash (v1).
    pub info_hash: [u8; 20],
    /// Name.
    pub name: String,
    /// Total size in bytes.
    pub size: u64,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloodMsg {
    /// A query to answer and forward.
    Query {
        /// Query id.
        id: QueryId,
        /// Hops left.
        ttl: u8,
        /// The query text.
        query: String,
    },
    /// Results travelling back towards the originator.
    Results {
        /// The query they answer.
        id: QueryId,
        /// The results.
        results: Vec<FloodResult>,
    },
}

/// Why a message was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FloodMsgError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("shoal_search: message of {0} bytes")]
    TooLarge(usize),
    /// Not bencode, or beyond the limits.
    #[error("shoal_search: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// Bencode of the wrong shape.
    #[error("shoal_search: {0}")]
    Shape(&'static str),
}

impl FloodMsg {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        match self {
            FloodMsg::Query { id, ttl, query } => {
                e.begin_dict()
                    .bytes(b"id")
                    .bytes(id)
                    .bytes(b"m")
                    .bytes(b"q")
                    .bytes(b"q")
                    .bytes(query.as_bytes())
                    .bytes(b"ttl")
                    .int(i64::from(*ttl))
                    .end();
            }
            FloodMsg::Results { id, results } => {
                e.begin_dict()
                    .bytes(b"id")
                    .bytes(id)
                    .bytes(b"m")
                    .bytes(b"r")
                    .bytes(b"r")
                    .begin_list();
                for r in results.iter().take(MAX_RESULTS_PER_MSG) {
                    let name = crate::doc::clip_str(&r.name, MAX_NAME_BYTES);
                    e.begin_dict()
                        .bytes(b"ih")
                        .bytes(&r.info_hash)
                        .bytes(b"l")
                        .int(i64::try_from(r.size).unwrap_or(i64::MAX))
                        .bytes(b"n")
                        .bytes(name.as_bytes())
                        .end();
                }
                e.end().end();
            }
        }
        out
    }

    /// Decodes one message (see the module docs for the limits).
    pub fn decode(b: &[u8]) -> Result<FloodMsg, FloodMsgError> {
        if b.len() > MAX_MESSAGE {
            return Err(FloodMsgError::TooLarge(b.len()));
        }
        let limits = Limits {
            max_depth: 4,
            max_string_len: MAX_MESSAGE,
            max_elements: 8 + 8 * MAX_RESULTS_PER_MSG,
        };
        let v = shoal_bencode::decode(b, &limits)?;
        let d = v
            .as_dict()
            .ok_or(FloodMsgError::Shape("not a dictionary"))?;
        let id: QueryId = d
            .get(b"id")
            .and_then(Value::as_bytes)
            .and_then(|b| b.try_into().ok())
            .ok_or(FloodMsgError::Shape("bad id"))?;
        match d.get(b"m").and_then(Value::as_bytes) {
            Some(b"q") => {
                let q = d
                    .get(b"q")
                    .and_then(Value::as_bytes)
                    .ok_or(FloodMsgError::Shape("query without q"))?;
                if q.len() > MAX_QUERY_BYTES {
                    return Err(FloodMsgError::Shape("query too long"));
                }
                let query = std::str::from_utf8(q)
                    .map_err(|_| FloodMsgError::Shape("query not UTF-8"))?
                    .to_string();
                let ttl = d
                    .get(b"ttl")
                    .and_then(Value::as_int)
                    .ok_or(FloodMsgError::Shape("query without ttl"))?;
                let ttl = u8::try_from(ttl.clamp(0, i64::from(MAX_TTL))).unwrap_or(0);
                Ok(FloodMsg::Query { id, ttl, query })
            }
            Some(b"r") => {
                let list = d
                    .get(b"r")
                    .and_then(Value::as_list)
                    .ok_or(FloodMsgError::Shape("results without r"))?;
                if list.len() > MAX_RESULTS_PER_MSG {
                    return Err(FloodMsgError::Shape("too many results"));
                }
                let mut results = Vec::with_capacity(list.len());
                for r in list {
                    let r = r
                        .as_dict()
                        .ok_or(FloodMsgError::Shape("result not a dict"))?;
                    let info_hash = r
                        .get(b"ih")
                        .and_then(Value::as_bytes)
                        .and_then(|b| b.try_into().ok())
                        .ok_or(FloodMsgError::Shape("result without ih"))?;
                    let size = r
                        .get(b"l")
                        .and_then(Value::as_int)
                        .and_then(|l| u64::try_from(l).ok())
                        .ok_or(FloodMsgError::Shape("result without l"))?;
                    let n = r
                        .get(b"n")
                        .and_then(Value::as_bytes)
                        .ok_or(FloodMsgError::Shape("result without n"))?;
                    if n.len() > MAX_NAME_BYTES {
                        return Err(FloodMsgError::Shape("result name too long"));
                    }
                    let name = std::str::from_utf8(n)
                        .map_err(|_| FloodMsgError::Shape("result name not UTF-8"))?
                        .to_string();
                    results.push(FloodResult {
                        info_hash,
                        name,
                        size,
                    });
                }
                Ok(FloodMsg::Results { id, results })
            }
            _ => Err(FloodMsgError::Shape("unknown m")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let q = FloodMsg::Query {
            id: [1; 8],
            ttl: 4,
            query: "debian netinst".into(),
        };
        assert_eq!(FloodMsg::decode(&q.encode()).unwrap(), q);
        let r = FloodMsg::Results {
            id: [2; 8],
            results: vec![FloodResult {
                info_hash: [3; 20],
                name: "Debian 12 netinst".into(),
                size: 660 << 20,
            }],
        };
        assert_eq!(FloodMsg::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn hostile_messages_are_rejected_or_clamped() {
        let big_ttl = b"d2:id8:aaaaaaaa1:m1:q1:q3:abc3:ttli99999ee";
        match FloodMsg::decode(big_ttl).unwrap() {
            FloodMsg::Query { ttl, .. } => assert_eq!(ttl, MAX_TTL),
            m => panic!("{m:?}"),
        }
        let long = format!("d2:id8:aaaaaaaa1:m1:q1:q300:{}3:ttli1ee", "a".repeat(300));
        assert!(FloodMsg::decode(long.as_bytes()).is_err());
        assert!(FloodMsg::decode(b"d2:id8:aaaaaaaa1:m1:q1:q2:\xff\xfe3:ttli1ee").is_err());
        assert!(FloodMsg::decode(b"d2:id3:abc1:m1:q1:q1:a3:ttli1ee").is_err());
        assert!(FloodMsg::decode(&vec![b'x'; MAX_MESSAGE + 1]).is_err());
        let many: String = (0..30)
            .map(|_| "d2:ih20:aaaaaaaaaaaaaaaaaaaa1:li1e1:n1:ae")
            .collect();
        let m = format!("d2:id8:aaaaaaaa1:m1:r1:rl{many}ee");
        assert!(FloodMsg::decode(m.as_bytes()).is_err());
        // Encoding clips what would not decode.
        let r = FloodMsg::Results {
            id: [0; 8],
            results: vec![
                FloodResult {
                    info_hash: [0; 20],
                    name: "é".repeat(300),
                    size: 1,
                };
                40
            ],
        };
        match FloodMsg::decode(&r.encode()).unwrap() {
            FloodMsg::Results { results, .. } => {
                assert_eq!(results.len(), MAX_RESULTS_PER_MSG);
                assert!(results[0].name.len() <= MAX_NAME_BYTES);
            }
            m => panic!("{m:?}"),
        }
    }
}
