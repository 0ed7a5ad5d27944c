//! Transmission's RPC at `/transmission/rpc`: what transmission-remote,
//! the *arr apps and Transmission's own clients speak. [`request`] decodes
//! a body (classic or JSON-RPC 2.0), [`handle`] runs each call and writes
//! the answer in the format it came in. The methods live in
//! [`torrent_get`] (`torrent-get`), [`torrents`] (every other torrent
//! method) and [`session`] (`session-get`/`-set`/`-stats`, `free-space`,
//! `port-test`...). The HTTP side (session-id handshake, auth, Host check)
//! is [`crate::http`]'s.
mod groups;
pub mod keys;
mod peer_tracker_lists;
pub mod request;
mod session;
mod torrent_get;
pub use torrent_get::{status_code, tiers};
mod torrents;

use crate::Shared;
pub use request::{decode, Args, Call, CallError, DecodeError, Decoded, Protocol};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use shoal_engine::{TorrentHandle, TorrentId};
use shoal_metainfo::Torrent;

/// The version reported to clients: Transmission's number (the *arr apps
/// and transmission-remote compare it), then shoal's.
pub const VERSION: &str = concat!("4.1.0 (shoal ", env!("CARGO_PKG_VERSION"), ")");
/// The RPC version (Transmission 4.1's).
pub const RPC_VERSION: u64 = 18;
/// The oldest RPC version whose clients still work.
pub const RPC_VERSION_MINIMUM: u64 = 14;
/// The RPC version as semver (sent in the 409 handshake as well).
pub const RPC_VERSION_SEMVER: &str = "6.0.0";

/// Transmission's JSON-RPC error codes.
pub mod code {
    /// Not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Wrong arguments.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Anything else that failed inside.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A tracker list that does not parse.
    pub const INVALID_TRACKER_LIST: i64 = 2;
    /// A relative path.
    pub const PATH_NOT_ABSOLUTE: i64 = 3;
    /// An unknown torrent or key.
    pub const UNRECOGNIZED_INFO: i64 = 4;
    /// The system refused (disk, permissions).
    pub const SYSTEM_ERROR: i64 = 5;
    /// A file index past the end.
    pub const FILE_IDX_OOR: i64 = 6;
    /// Fetching a URL failed.
    pub const HTTP_ERROR: i64 = 8;
    /// A .torrent that does not parse.
    pub const CORRUPT_TORRENT: i64 = 9;
}

/// A call that failed: its JSON-RPC code and a message (the classic
/// format's `result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The JSON-RPC code.
    pub code: i64,
    /// What went wrong.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// Wrong arguments.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }
}

impl From<request::ArgError> for RpcError {
    fn from(e: request::ArgError) -> Self {
        RpcError::params(e.to_string())
    }
}

fn code_message(c: i64) -> &'static str {
    match c {
        code::PARSE_ERROR => "Parse error",
        code::INVALID_REQUEST => "Invalid Request",
        code::METHOD_NOT_FOUND => "Method not found",
        code::INVALID_PARAMS => "Invalid params",
        code::INVALID_TRACKER_LIST => "Invalid tracker list",
        code::PATH_NOT_ABSOLUTE => "path is not absolute",
        code::UNRECOGNIZED_INFO => "unrecognized info",
        code::SYSTEM_ERROR => "system error",
        code::FILE_IDX_OOR => "file index out of range",
        code::HTTP_ERROR => "HTTP error from backend service",
        code::CORRUPT_TORRENT => "invalid or corrupt torrent file",
        _ => "Internal error",
    }
}

/// File priorities: the engine's numbers (0 skips a file, higher first)
/// for Transmission's low, normal and high. A torrent whose wanted files
/// all have one priority reads as all normal (the engine adds files at 1).
pub mod prio {
    /// Low.
    pub const LOW: u8 = 1;
    /// Normal.
    pub const NORMAL: u8 = 2;
    /// High.
    pub const HIGH: u8 = 3;

    /// Transmission's priority (-1, 0, 1) of each engine priority.
    pub fn to_tr(p: &[u8]) -> Vec<i64> {
        let wanted = p.iter().filter(|&&x| x > 0);
        let uniform = wanted.clone().min() == wanted.max();
        p.iter()
            .map(|&x| match x {
                _ if uniform => 0,
                0 | NORMAL => 0,
                LOW => -1,
                _ => 1,
            })
            .collect()
    }

    /// The engine priority of a wanted file with Transmission priority `tr`.
    pub fn from_tr(tr: i64) -> u8 {
        match tr {
            i64::MIN..=-1 => LOW,
            0 => NORMAL,
            _ => HIGH,
        }
    }
}

/// The files a client sees: every file but BEP 47 pad files, by their
/// index in the torrent.
pub fn visible_files(t: &Torrent) -> Vec<usize> {
    t.files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.pad)
        .map(|(i, _)| i)
        .collect()
}

/// The torrents named by `ids` (absent: all), in id order; `true` when
/// `recently-active` was asked.
pub fn select(shared: &Shared, args: &Args) -> Result<(Vec<TorrentHandle>, bool), RpcError> {
    let by_key = |v: &Value| -> Result<Option<TorrentHandle>, RpcError> {
        match v {
            Value::Number(n) => Ok(n
                .as_u64()
                .and_then(|n| shared.session.torrent(TorrentId(n)))),
            Value::String(s) => match hex::decode(s) {
                Ok(b) if b.len() == 20 || b.len() == 32 => Ok(shared.session.find(&b)),
                _ => Err(RpcError::params(format!(
                    "ids: {s:?} is neither a torrent id nor an info-hash"
                ))),
            },
            _ => Err(RpcError::params("ids: expected numbers or hash strings")),
        }
    };
    let mut out: Vec<TorrentHandle> = match args.get("ids") {
        None | Some(Value::Null) => shared.session.torrents(),
        Some(Value::String(s)) if keys::canon(s) == "recentlyactive" => {
            let now = crate::service::unix_now();
            let recent = |h: &TorrentHandle| {
                let a = shared.activity.get(h.id());
                let m = h.subscribe_meta().borrow().added_at;
                now.saturating_sub(a.acc.activity_date) <= 60
                    || now.saturating_sub(a.start_date) <= 60
                    || now.saturating_sub(m) <= 60
            };
            let all = shared.session.torrents();
            return Ok((all.into_iter().filter(recent).collect(), true));
        }
        Some(Value::Array(a)) => {
            if a.len() > request::MAX_LIST {
                return Err(RpcError::params("ids: too many"));
            }
            let mut v = Vec::new();
            for x in a {
                v.extend(by_key(x)?);
            }
            v
        }
        Some(x) => by_key(x)?.into_iter().collect(),
    };
    out.sort_by_key(|h| h.id());
    out.dedup_by_key(|h| h.id());
    Ok((out, false))
}

/// A method's answer (its arguments): an object, or one already serialized (the
/// torrent lists of `torrent-get`, written straight from the torrents'
/// status without a `Value` tree: 10,000 torrents list in a fraction of
/// the time).
#[derive(Debug)]
pub enum Answer {
    /// An object built as a `Value` map.
    Map(Map<String, Value>),
    /// A JSON object, serialized.
    Raw(Box<RawValue>),
}

impl From<Map<String, Value>> for Answer {
    fn from(m: Map<String, Value>) -> Self {
        Answer::Map(m)
    }
}

impl Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Map(m) => m.serialize(s),
            Answer::Raw(r) => r.serialize(s),
        }
    }
}

/// Runs one call.
async fn dispatch(shared: &Shared, call: &Call) -> Result<Answer, RpcError> {
    if call.method_key == "torrentget" {
        return torrent_get::torrent_get(shared, call)
            .await
            .map(Answer::Raw);
    }
    dispatch_map(shared, call).await.map(Answer::Map)
}

/// Runs one call whose answer is built as a map.
async fn dispatch_map(shared: &Shared, call: &Call) -> Result<Map<String, Value>, RpcError> {
    let p = call.protocol;
    let a = &call.args;
    match call.method_key.as_str() {
        "sessionget" => session::get(shared, p, a),
        "sessionset" => session::set(shared, a).await,
        "sessionstats" => Ok(session::stats(shared, p)),
        "sessionclose" => {
            shared.cancel.cancel();
            Ok(Map::new())
        }
        "freespace" => session::free_space(p, a),
        "porttest" => Ok(session::port_test(shared, p)),
        "blocklistupdate" => Ok(Map::from_iter([(
            keys::name(p, "blocklist_size"),
            json!(0),
        )])),
        "groupget" => groups::get(shared, p, a),
        "groupset" => groups::set(shared, a).await,
        "torrentadd" => torrents::add(shared, p, a).await,
        "torrentset" => torrents::set(shared, a).await,
        "torrentremove" => torrents::remove(shared, a).await,
        "torrentstart" | "torrentstartnow" | "torrentstop" | "torrentverify"
        | "torrentreannounce" => torrents::action(shared, &call.method_key, a).await,
        "torrentsetlocation" => torrents::set_location(shared, a).await,
        "torrentrenamepath" => torrents::rename_path(shared, a),
        "queuemovetop" | "queuemoveup" | "queuemovedown" | "queuemovebottom" => {
            torrents::queue_move(shared, &call.method_key, a).await
        }
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("method name not recognized: {}", call.method),
        )),
    }
}

/// The classic format's answer.
#[derive(Serialize)]
struct LegacyAnswer<'a> {
    arguments: &'a Answer,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<Value>,
}

/// A JSON-RPC 2.0 success.
#[derive(Serialize)]
struct JsonRpcAnswer<'a> {
    jsonrpc: &'static str,
    result: &'a Answer,
    id: Option<Value>,
}

/// The answer to one call in its format, serialized.
pub fn answer(
    protocol: Protocol,
    tag: Option<Value>,
    result: Result<Answer, RpcError>,
) -> Box<RawValue> {
    let raw = match (protocol, &result) {
        (Protocol::Legacy, Ok(args)) => serde_json::value::to_raw_value(&LegacyAnswer {
            arguments: args,
            result: "success",
            tag,
        }),
        (Protocol::Legacy, Err(e)) => serde_json::value::to_raw_value(&LegacyAnswer {
            arguments: &Answer::Map(Map::new()),
            result: &e.message,
            tag,
        }),
        (Protocol::JsonRpc, Ok(args)) => serde_json::value::to_raw_value(&JsonRpcAnswer {
            jsonrpc: "2.0",
            result: args,
            id: tag,
        }),
        (Protocol::JsonRpc, Err(e)) => serde_json::value::to_raw_value(&json!({
            "jsonrpc": "2.0",
            "error": {
                "code": e.code,
                "message": code_message(e.code),
                "data": {"error_string": e.message},
            },
            "id": tag,
        })),
    };
    // Serializing maps of strings and numbers cannot fail.
    raw.unwrap_or_else(|_| RawValue::NULL.to_owned())
}

fn call_error(e: &CallError) -> Box<RawValue> {
    let (protocol, tag, code) = match e {
        CallError::NoMethod { tag, protocol } => (*protocol, tag.clone(), code::INVALID_REQUEST),
        CallError::BadArguments { tag, protocol } => (*protocol, tag.clone(), code::INVALID_PARAMS),
        CallError::Invalid => (Protocol::JsonRpc, None, code::INVALID_REQUEST),
    };
    answer(protocol, tag, Err(RpcError::new(code, e.to_string())))
}

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum Reply {
    /// A JSON body with status 200.
    Json(Box<RawValue>),
    /// A body that is not a request: status 400 with this JSON.
    BadRequest(Value),
    /// Only notifications: status 204, no body.
    NoContent,
}

async fn run(shared: &Shared, c: Result<Call, CallError>) -> Option<Box<RawValue>> {
    match c {
        Ok(call) => {
            let r = dispatch(shared, &call).await;
            if let Err(e) = &r {
                tracing::debug!(method = %call.method, error = %e.message, "rpc call failed");
            }
            (!call.notification).then(|| answer(call.protocol, call.tag.clone(), r))
        }
        Err(e) => Some(call_error(&e)),
    }
}

/// Runs a request body. See the module docs.
pub async fn handle(shared: &Shared, body: &[u8]) -> Reply {
    match decode(body) {
        Err(e) => {
            let c = match e {
                DecodeError::Json(_) => code::PARSE_ERROR,
                _ => code::INVALID_REQUEST,
            };
            // Both formats' error fields: a classic client reads `result`.
            let mut v = json!({
                "jsonrpc": "2.0",
                "error": {
                    "code": c,
                    "message": code_message(c),
                    "data": {"error_string": e.to_string()},
                },
                "id": null,
            });
            if let Value::Object(o) = &mut v {
                o.insert("result".into(), json!(e.to_string()));
            }
            Reply::BadRequest(v)
        }
        Ok(Decoded::One(c)) => match run(shared, c).await {
            Some(v) => Reply::Json(v),
            None => Reply::NoContent,
        },
        Ok(Decoded::Batch(calls)) => {
            let mut out = Vec::new();
            for c in calls {
                out.extend(run(shared, c).await);
            }
            if out.is_empty() {
                Reply::NoContent
            } else {
                Reply::Json(
                    serde_json::value::to_raw_value(&out)
                        .unwrap_or_else(|_| RawValue::NULL.to_owned()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(prio::to_tr(&[1, 1, 0]), vec![0, 0, 0]);
        assert_eq!(prio::to_tr(&[1, 2, 3, 0]), vec![-1, 0, 1, 0]);
        assert_eq!(prio::to_tr(&[2, 3]), vec![0, 1]);
        assert_eq!(prio::from_tr(-1), prio::LOW);
        assert_eq!(prio::from_tr(5), prio::HIGH);
    }

    #[test]
    fn answers_in_both_formats() {
        let parse = |r: Box<RawValue>| serde_json::from_str::<Value>(r.get()).unwrap();
        let ok = parse(answer(
            Protocol::Legacy,
            Some(json!(3)),
            Ok(Answer::Map(Map::new())),
        ));
        assert_eq!(ok, json!({"arguments": {}, "result": "success", "tag": 3}));
        let raw = RawValue::from_string(r#"{"torrents":[]}"#.to_owned()).unwrap();
        let ok = parse(answer(
            Protocol::JsonRpc,
            Some(json!(1)),
            Ok(Answer::Raw(raw)),
        ));
        assert_eq!(
            ok,
            json!({"jsonrpc": "2.0", "result": {"torrents": []}, "id": 1})
        );
        let e = parse(answer(
            Protocol::JsonRpc,
            Some(json!("x")),
            Err(RpcError::params("argument 'a': expected a string")),
        ));
        assert_eq!(e["error"]["code"], -32602);
        assert_eq!(e["id"], "x");
        assert_eq!(
            e["error"]["data"]["error_string"],
            "argument 'a': expected a string"
        );
    }
}
