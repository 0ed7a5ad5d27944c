//! KRPC messages (BEP 5 and extensions): typed queries, responses and errors, with a
//! decoder that enforces limits and a canonical encoder.
//!
//! Layers: bytes → [`shoal_bencode::Value`] (bounded by [`shoal_bencode::Limits`]) →
//! [`Message`]. Every length read from the wire is checked against the constants below.
use crate::compact::{self, NodeInfo};
use crate::id::Id20;
use shoal_bencode::{Dict, Encoder, Limits, Value};
use std::net::SocketAddr;

/// Largest datagram the decoder looks at.
pub const MAX_PACKET: usize = 4096;
/// Longest transaction id accepted.
pub const MAX_TID: usize = 16;
/// Longest `token` accepted.
pub const MAX_TOKEN: usize = 64;
/// Longest `v` (client version) accepted.
pub const MAX_VERSION: usize = 16;
/// Most nodes read from one `nodes`/`nodes6` string.
pub const MAX_NODES: usize = 64;
/// Most peers read from one `values` list.
pub const MAX_VALUES: usize = 200;
/// Most samples read from one BEP 51 `samples` string.
pub const MAX_SAMPLES: usize = 200;
/// Largest BEP 44 value (bencoded), per the spec.
pub const MAX_ITEM_V: usize = 1000;
/// Longest BEP 44 salt, per the spec.
pub const MAX_SALT: usize = 64;
/// Longest error message kept.
pub const MAX_ERROR_MSG: usize = 256;

/// Which address families a querier wants nodes for (BEP 32 `want`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`: IPv4 nodes.
    pub v4: bool,
    /// `n6`: IPv6 nodes.
    pub v6: bool,
}

/// BEP 44 `put` arguments (immutable when `k` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutArgs {
    /// Write token from a previous `get`.
    pub token: Vec<u8>,
    /// The bencoded value (at most [`MAX_ITEM_V`] bytes).
    pub v: Vec<u8>,
    /// Mutable items: ed25519 public key.
    pub k: Option<[u8; 32]>,
    /// Mutable items: signature over salt, seq and v.
    pub sig: Option<[u8; 64]>,
    /// Mutable items: sequence number.
    pub seq: Option<i64>,
    /// Compare-and-swap: the seq the writer expects to replace.
    pub cas: Option<i64>,
    /// Salt (at most [`MAX_SALT`] bytes; empty when absent).
    pub salt: Vec<u8>,
}

/// The method and arguments of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// `ping`.
    Ping,
    /// `find_node` with `target`.
    FindNode {
        /// The ID searched for.
        target: Id20,
    },
    /// `get_peers` with `info_hash`.
    GetPeers {
        /// The torrent searched for.
        info_hash: Id20,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The torrent announced.
        info_hash: Id20,
        /// The announced port (ignored when `implied_port`).
        port: u16,
        /// Use the UDP source port instead of `port`.
        implied_port: bool,
        /// Token from a previous `get_peers` response.
        token: Vec<u8>,
    },
    /// BEP 44 `get`.
    Get {
        /// Item target (SHA-1 of value, or of key + salt).
        target: Id20,
        /// Only return a mutable item with a larger seq.
        seq: Option<i64>,
    },
    /// BEP 44 `put`.
    Put(PutArgs),
    /// BEP 51 `sample_infohashes`.
    SampleInfohashes {
        /// The ID near which to return closest nodes.
        target: Id20,
    },
    /// A method this node does not implement (answered with error 204).
    Unknown {
        /// The method name (truncated to 32 bytes).
        method: Vec<u8>,
    },
}

impl QueryKind {
    /// The KRPC method name.
    pub fn method(&self) -> &[u8] {
        match self {
            QueryKind::Ping => b"ping",
            QueryKind::FindNode { .. } => b"find_node",
            QueryKind::GetPeers { .. } => b"get_peers",
            QueryKind::AnnouncePeer { .. } => b"announce_peer",
            QueryKind::Get { .. } => b"get",
            QueryKind::Put(_) => b"put",
            QueryKind::SampleInfohashes { .. } => b"sample_infohashes",
            QueryKind::Unknown { method } => method,
        }
    }
}

/// A query: sender ID, method and arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The querier's node ID.
    pub id: Id20,
    /// Method and arguments.
    pub kind: QueryKind,
    /// BEP 32 `want` (both false when absent).
    pub want: Want,
}

/// A response. KRPC responses do not name their method, so every optional field any
/// method may return is here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The responder's node ID.
    pub id: Id20,
    /// Compact IPv4 nodes.
    pub nodes: Vec<NodeInfo>,
    /// Compact IPv6 nodes (BEP 32).
    pub nodes6: Vec<NodeInfo>,
    /// Peers (`values`), `get_peers` only.
    pub values: Vec<SocketAddr>,
    /// Write token (`get_peers`, BEP 44 `get`).
    pub token: Option<Vec<u8>>,
    /// BEP 44 value (bencoded bytes).
    pub v: Option<Vec<u8>>,
    /// BEP 44 public key.
    pub k: Option<[u8; 32]>,
    /// BEP 44 signature.
    pub sig: Option<[u8; 64]>,
    /// BEP 44 sequence number.
    pub seq: Option<i64>,
    /// BEP 51 samples.
    pub samples: Option<Vec<Id20>>,
    /// BEP 51 interval (seconds).
    pub interval: Option<i64>,
    /// BEP 51 number of info-hashes stored.
    pub num: Option<i64>,
}

/// A KRPC error (`y` = `e`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    /// Error code (201 generic, 202 server, 203 protocol, 204 method unknown, BEP 44
    /// 205-207, 301, 302).
    pub code: i64,
    /// Human-readable message.
    pub message: String,
}

/// The three kinds of KRPC messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y` = `q`.
    Query(Query),
    /// `y` = `r`.
    Response(Response),
    /// `y` = `e`.
    Error(ErrorMsg),
}

/// A whole KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Transaction id (at most [`MAX_TID`] bytes).
    pub tid: Vec<u8>,
    /// Client version `v`, if any.
    pub version: Option<Vec<u8>>,
    /// BEP 42 `ip`: the address the sender sees for the recipient.
    pub ip: Option<SocketAddr>,
    /// BEP 43 `ro`: the sender is read-only (queries only).
    pub read_only: bool,
    /// The payload.
    pub body: Body,
}

/// Why a datagram could not be decoded as KRPC.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram is larger than [`MAX_PACKET`].
    #[error("krpc: packet of {0} bytes is too large")]
    TooLarge(usize),
    /// Not valid bencode (or over the bencode limits).
    #[error("krpc: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// The top level or an argument block is not a dictionary.
    #[error("krpc: {0} is not a dictionary")]
    NotADict(&'static str),
    /// A required field is absent.
    #[error("krpc: missing field `{0}`")]
    Missing(&'static str),
    /// A field has the wrong type or a bad length or value.
    #[error("krpc: invalid field `{0}`")]
    Invalid(&'static str),
    /// `y` is not `q`, `r` or `e`.
    #[error("krpc: unknown message type")]
    UnknownType,
}

fn limits() -> Limits {
    Limits {
        max_depth: 8,
        max_string_len: MAX_PACKET,
        max_elements: 1024,
    }
}

fn get_bytes<'a>(d: &'a Dict<'_>, key: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
    match d.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v.as_bytes().map(Some).ok_or(DecodeError::Invalid(key)),
    }
}

fn req_bytes<'a>(d: &'a Dict<'_>, key: &'static str) -> Result<&'a [u8], DecodeError> {
    get_bytes(d, key)?.ok_or(DecodeError::Missing(key))
}

fn get_int(d: &Dict<'_>, key: &'static str) -> Result<Option<i64>, DecodeError> {
    match d.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or(DecodeError::Invalid(key)),
    }
}

fn req_id(d: &Dict<'_>, key: &'static str) -> Result<Id20, DecodeError> {
    Id20::from_slice(req_bytes(d, key)?).ok_or(DecodeError::Invalid(key))
}

fn bounded(b: &[u8], max: usize, key: &'static str) -> Result<Vec<u8>, DecodeError> {
    if b.len() > max {
        return Err(DecodeError::Invalid(key));
    }
    Ok(b.to_vec())
}

fn fixed<const N: usize>(d: &Dict<'_>, key: &'static str) -> Result<Option<[u8; N]>, DecodeError> {
    match get_bytes(d, key)? {
        None => Ok(None),
        Some(b) => <[u8; N]>::try_from(b)
            .map(Some)
            .map_err(|_| DecodeError::Invalid(key)),
    }
}

/// The exact bencoded bytes of the value under `key` in `d`, sliced from `input`.
fn raw_value(
    input: &[u8],
    d: &Dict<'_>,
    key: &'static str,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let Some(off) = d.offset_of(key.as_bytes()) else {
        return Ok(None);
    };
    let rest = input.get(off..).ok_or(DecodeError::Invalid(key))?;
    let (_, end) = shoal_bencode::decode_prefix(rest, &limits())?;
    let raw = rest.get(..end).ok_or(DecodeError::Invalid(key))?;
    if raw.len() > MAX_ITEM_V {
        return Err(DecodeError::Invalid(key));
    }
    Ok(Some(raw.to_vec()))
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(input: &[u8]) -> Result<Message, DecodeError> {
        if input.len() > MAX_PACKET {
            return Err(DecodeError::TooLarge(input.len()));
        }
        let top = shoal_bencode::decode(input, &limits())?;
        let d = top.as_dict().ok_or(DecodeError::NotADict("message"))?;
        let tid = bounded(req_bytes(d, "t")?, MAX_TID, "t")?;
        let version = match get_bytes(d, "v")? {
            Some(v) => Some(bounded(v, MAX_VERSION, "v")?),
            None => None,
        };
        let ip = match get_bytes(d, "ip")? {
            Some(b) => Some(compact::read_addr(b).ok_or(DecodeError::Invalid("ip"))?),
            None => None,
        };
        let read_only = get_int(d, "ro")?.unwrap_or(0) == 1;
        let y = req_bytes(d, "y")?;
        let body = match y {
            b"q" => Body::Query(decode_query(input, d)?),
            b"r" => {
                let r = d
                    .get(b"r")
                    .ok_or(DecodeError::Missing("r"))?
                    .as_dict()
                    .ok_or(DecodeError::NotADict("r"))?;
                Body::Response(decode_response(input, r)?)
            }
            b"e" => {
                let l = d
                    .get(b"e")
                    .ok_or(DecodeError::Missing("e"))?
                    .as_list()
                    .ok_or(DecodeError::Invalid("e"))?;
                let code = l
                    .first()
                    .and_then(Value::as_int)
                    .ok_or(DecodeError::Invalid("e"))?;
                let msg = l.get(1).and_then(Value::as_bytes).unwrap_or(b"");
                let mut message =
                    String::from_utf8_lossy(&msg[..msg.len().min(MAX_ERROR_MSG)]).into_owned();
                let mut cut = message.len().min(MAX_ERROR_MSG);
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                Body::Error(ErrorMsg { code, message })
            }
            _ => return Err(DecodeError::UnknownType),
        };
        Ok(Message {
            tid,
            version,
            ip,
            read_only,
            body,
        })
    }

    /// Encodes canonically (sorted keys).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new(out);
        e.begin_dict();
        // Keys in order: a, e, ip, q, r, ro, t, v, y.
        if let Body::Query(q) = &self.body {
            e.bytes(b"a");
            encode_args(q, &mut e);
        }
        if let Body::Error(err) = &self.body {
            e.bytes(b"e").begin_list().int(err.code);
            e.bytes(err.message.as_bytes()).end();
        }
        if let Some(ip) = &self.ip {
            let mut b = Vec::with_capacity(18);
            compact::write_addr(ip, &mut b);
            e.bytes(b"ip").bytes(&b);
        }
        if let Body::Query(q) = &self.body {
            e.bytes(b"q").bytes(q.kind.method());
        }
        if let Body::Response(r) = &self.body {
            e.bytes(b"r");
            encode_response(r, &mut e);
        }
        if self.read_only {
            e.bytes(b"ro").int(1);
        }
        e.bytes(b"t").bytes(&self.tid);
        if let Some(v) = &self.version {
            e.bytes(b"v").bytes(v);
        }
        let y: &[u8] = match self.body {
            Body::Query(_) => b"q",
            Body::Response(_) => b"r",
            Body::Error(_) => b"e",
        };
        e.bytes(b"y").bytes(y);
        e.end();
    }
}

fn decode_query(input: &[u8], d: &Dict<'_>) -> Result<Query, DecodeError> {
    let q = req_bytes(d, "q")?;
    let a = d
        .get(b"a")
        .ok_or(DecodeError::Missing("a"))?
        .as_dict()
        .ok_or(DecodeError::NotADict("a"))?;
    let id = req_id(a, "id")?;
    let mut want = Want::default();
    if let Some(w) = a.get(b"want") {
        let l = w.as_list().ok_or(DecodeError::Invalid("want"))?;
        for item in l.iter().take(8) {
            match item.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
    }
    let kind = match q {
        b"ping" => QueryKind::Ping,
        b"find_node" => QueryKind::FindNode {
            target: req_id(a, "target")?,
        },
        b"get_peers" => QueryKind::GetPeers {
            info_hash: req_id(a, "info_hash")?,
        },
        b"announce_peer" => {
            let port = get_int(a, "port")?.unwrap_or(0);
            let implied_port = get_int(a, "implied_port")?.unwrap_or(0) != 0;
            if !implied_port && !(1..=65535).contains(&port) {
                return Err(DecodeError::Invalid("port"));
            }
            QueryKind::AnnouncePeer {
                info_hash: req_id(a, "info_hash")?,
                port: u16::try_from(port).unwrap_or(0),
                implied_port,
                token: bounded(req_bytes(a, "token")?, MAX_TOKEN, "token")?,
            }
        }
        b"get" => QueryKind::Get {
            target: req_id(a, "target")?,
            seq: get_int(a, "seq")?,
        },
        b"put" => {
            let v = raw_value(input, a, "v")?.ok_or(DecodeError::Missing("v"))?;
            let salt = bounded(get_bytes(a, "salt")?.unwrap_or(b""), MAX_SALT, "salt")?;
            QueryKind::Put(PutArgs {
                token: bounded(req_bytes(a, "token")?, MAX_TOKEN, "token")?,
                v,
                k: fixed::<32>(a, "k")?,
                sig: fixed::<64>(a, "sig")?,
                seq: get_int(a, "seq")?,
                cas: get_int(a, "cas")?,
                salt,
            })
        }
        b"sample_infohashes" => QueryKind::SampleInfohashes {
            target: req_id(a, "target")?,
        },
        other => QueryKind::Unknown {
            method: other[..other.len().min(32)].to_vec(),
        },
    };
    Ok(Query { id, kind, want })
}

fn decode_response(input: &[u8], r: &Dict<'_>) -> Result<Response, DecodeError> {
    let mut out = Response {
        id: req_id(r, "id")?,
        ..Response::default()
    };
    if let Some(b) = get_bytes(r, "nodes")? {
        out.nodes =
            compact::read_nodes(b, false, MAX_NODES).ok_or(DecodeError::Invalid("nodes"))?;
    }
    if let Some(b) = get_bytes(r, "nodes6")? {
        out.nodes6 =
            compact::read_nodes(b, true, MAX_NODES).ok_or(DecodeError::Invalid("nodes6"))?;
    }
    if let Some(v) = r.get(b"values") {
        let l = v.as_list().ok_or(DecodeError::Invalid("values"))?;
        for item in l.iter().take(MAX_VALUES) {
            let b = item.as_bytes().ok_or(DecodeError::Invalid("values"))?;
            if let Some(a) = compact::read_addr(b) {
                out.values.push(a);
            }
        }
    }
    if let Some(t) = get_bytes(r, "token")? {
        out.token = Some(bounded(t, MAX_TOKEN, "token")?);
    }
    out.v = raw_value(input, r, "v")?;
    out.k = fixed::<32>(r, "k")?;
    out.sig = fixed::<64>(r, "sig")?;
    out.seq = get_int(r, "seq")?;
    if let Some(s) = get_bytes(r, "samples")? {
        if s.len() % 20 != 0 {
            return Err(DecodeError::Invalid("samples"));
        }
        out.samples = Some(
            s.chunks_exact(20)
                .take(MAX_SAMPLES)
                .filter_map(Id20::from_slice)
                .collect(),
        );
    }
    out.interval = get_int(r, "interval")?;
    out.num = get_int(r, "num")?;
    Ok(out)
}

fn encode_args(q: &Query, e: &mut Encoder<'_>) {
    e.begin_dict();
    // Keys in order: cas, id, implied_port, info_hash, k, port, salt, seq, sig, target,
    // token, v, want.
    if let QueryKind::Put(p) = &q.kind {
        if let Some(cas) = p.cas {
            e.bytes(b"cas").int(cas);
        }
    }
    e.bytes(b"id").bytes(&q.id.0);
    match &q.kind {
        QueryKind::Ping | QueryKind::Unknown { .. } => {}
        QueryKind::FindNode { target } | QueryKind::SampleInfohashes { target } => {
            e.bytes(b"target").bytes(&target.0);
        }
        QueryKind::GetPeers { info_hash } => {
            e.bytes(b"info_hash").bytes(&info_hash.0);
        }
        QueryKind::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            if *implied_port {
                e.bytes(b"implied_port").int(1);
            }
            e.bytes(b"info_hash").bytes(&info_hash.0);
            e.bytes(b"port").int(i64::from(*port));
            e.bytes(b"token").bytes(token);
        }
        QueryKind::Get { target, seq } => {
            if let Some(s) = seq {
                e.bytes(b"seq").int(*s);
            }
            e.bytes(b"target").bytes(&target.0);
        }
        QueryKind::Put(p) => {
            if let Some(k) = &p.k {
                e.bytes(b"k").bytes(k);
            }
            if !p.salt.is_empty() {
                e.bytes(b"salt").bytes(&p.salt);
            }
            if let Some(s) = p.seq {
                e.bytes(b"seq").int(s);
            }
            if let Some(sig) = &p.sig {
                e.bytes(b"sig").bytes(sig);
            }
            e.bytes(b"token").bytes(&p.token);
            e.bytes(b"v").raw(&p.v);
        }
    }
    if q.want.v4 || q.want.v6 {
        e.bytes(b"want").begin_list();
        if q.want.v4 {
            e.bytes(b"n4");
        }
        if q.want.v6 {
            e.bytes(b"n6");
        }
        e.end();
    }
    e.end();
}

fn encode_response(r: &Response, e: &mut Encoder<'_>) {
    e.begin_dict();
    // Keys in order: id, interval, k, nodes, nodes6, num, samples, seq, sig, token, v,
    // values.
    e.bytes(b"id").bytes(&r.id.0);
    if let Some(i) = r.interval {
        e.bytes(b"interval").int(i);
    }
    if let Some(k) = &r.k {
        e.bytes(b"k").bytes(k);
    }
    let mut buf = Vec::new();
    if !r.nodes.is_empty() {
        compact::write_nodes(&r.nodes, false, &mut buf);
        e.bytes(b"nodes").bytes(&buf);
    }
    if !r.nodes6.is_empty() {
        buf.clear();
        compact::write_nodes(&r.nodes6, true, &mut buf);
        e.bytes(b"nodes6").bytes(&buf);
    }
    if let Some(n) = r.num {
        e.bytes(b"num").int(n);
    }
    if let Some(s) = &r.samples {
        buf.clear();
        for id in s {
            buf.extend_from_slice(&id.0);
        }
        e.bytes(b"samples").bytes(&buf);
    }
    if let Some(s) = r.seq {
        e.bytes(b"seq").int(s);
    }
    if let Some(sig) = &r.sig {
        e.bytes(b"sig").bytes(sig);
    }
    if let Some(t) = &r.token {
        e.bytes(b"token").bytes(t);
    }
    if let Some(v) = &r.v {
        e.bytes(b"v").raw(v);
    }
    if !r.values.is_empty() {
        e.bytes(b"values").begin_list();
        for a in &r.values {
            buf.clear();
            compact::write_addr(a, &mut buf);
            e.bytes(&buf);
        }
        e.end();
    }
    e.end();
}

#[cfg(test)]
#[path = "krpc_tests.rs"]
mod tests;
