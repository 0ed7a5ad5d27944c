//! `shoal dht sample`: BEP 51 info-hash sampling. A `sample_infohashes` lookup walks
//! towards the target collecting samples; its result does not carry the `num` and
//! `interval` each node reports, so the closest nodes are then asked once more
//! directly (from a separate UDP socket, one query each, bounded wait) and their
//! answers are shown per node.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use shoal_dht::krpc::{Body, Message, Query, QueryKind, Response, Want, MAX_PACKET};
use shoal_dht::{Id20, LookupKind, NodeInfo};
use tokio::net::UdpSocket;

use super::ops::{lookup, SampleArgs};
use super::{input, with_node, NetPlan};

/// Most nodes asked directly for their counters.
const MAX_DIRECT: usize = 8;
/// How long to wait for the direct answers.
const DIRECT_WAIT: Duration = Duration::from_secs(2);

/// What one node reported for `sample_infohashes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSample {
    /// The node.
    pub node: NodeInfo,
    /// Info-hashes it stores (`num`), if reported.
    pub num: Option<i64>,
    /// Seconds before it should be asked again (`interval`), if reported.
    pub interval: Option<i64>,
    /// Its samples.
    pub samples: Vec<Id20>,
}

/// Runs `shoal dht sample`.
pub fn run(plan: &NetPlan, a: SampleArgs) -> anyhow::Result<(Value, String)> {
    let target = input::parse_prefix("INFOHASH-PREFIX", &a.prefix)?;
    let bind_ip = plan.bind.ip();
    let (r, direct) = with_node(plan, move |dht, boot| {
        Box::pin(async move {
            let r = lookup(dht, LookupKind::Sample, target, &boot).await?;
            let nodes: Vec<NodeInfo> = r.closest.iter().take(MAX_DIRECT).map(|c| c.node).collect();
            let direct = query_direct(
                SocketAddr::new(bind_ip, 0),
                dht.id(),
                target,
                &nodes,
                DIRECT_WAIT,
            )
            .await?;
            Ok((r, direct))
        })
    })?;
    let mut samples: Vec<Id20> = r.samples.clone();
    for d in &direct {
        for s in &d.samples {
            if !samples.contains(s) {
                samples.push(*s);
            }
        }
    }
    samples.sort();
    let num = direct.iter().filter_map(|d| d.num).max();
    let interval = direct.iter().filter_map(|d| d.interval).max();
    let nodes: Vec<Value> = direct
        .iter()
        .map(|d| {
            json!({
                "id": d.node.id.to_hex(),
                "addr": d.node.addr.to_string(),
                "num": d.num,
                "interval": d.interval,
                "samples": d.samples.len(),
            })
        })
        .collect();
    let mut text = format!(
        "{} samples; largest num {}, interval {} s\n",
        samples.len(),
        num.map_or("-".into(), |n| n.to_string()),
        interval.map_or("-".into(), |n| n.to_string())
    );
    for s in &samples {
        let _ = writeln!(text, "{s}");
    }
    let v = json!({
        "target": target.to_hex(),
        "samples": samples.iter().map(Id20::to_hex).collect::<Vec<_>>(),
        "num": num,
        "interval": interval,
        "nodes": nodes,
        "queries": r.messages,
    });
    Ok((v, text))
}

/// Sends one `sample_infohashes` to each of `nodes` from a fresh socket bound to
/// `bind` and collects the answers that arrive within `wait` (matched by address and
/// transaction id; anything else is ignored).
pub async fn query_direct(
    bind: SocketAddr,
    own: Id20,
    target: Id20,
    nodes: &[NodeInfo],
    wait: Duration,
) -> anyhow::Result<Vec<NodeSample>> {
    let sock = UdpSocket::bind(bind).await?;
    let mut waiting: HashMap<(SocketAddr, Vec<u8>), NodeInfo> = HashMap::new();
    for (i, n) in nodes.iter().take(usize::from(u8::MAX)).enumerate() {
        let tid = vec![b's', i as u8];
        let msg = Message {
            tid: tid.clone(),
            version: Some(b"SH01".to_vec()),
            ip: None,
            read_only: true,
            body: Body::Query(Query {
                id: own,
                kind: QueryKind::SampleInfohashes { target },
                want: Want::default(),
            }),
        };
        if let Err(e) = sock.send_to(&msg.encode(), n.addr).await {
            tracing::debug!(to = %n.addr, error = %e, "dht sample: send failed");
            continue;
        }
        waiting.insert((n.addr, tid), *n);
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let deadline = tokio::time::Instant::now() + wait;
    while !waiting.is_empty() {
        let Ok(r) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await else {
            break;
        };
        let (len, from) = match r {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "dht sample: recv failed");
                continue;
            }
        };
        let Some(data) = buf.get(..len) else { continue };
        let Ok(msg) = Message::decode(data) else {
            continue;
        };
        let Some(node) = waiting.remove(&(from, msg.tid.clone())) else {
            continue;
        };
        if let Body::Response(Response {
            num,
            interval,
            samples,
            ..
        }) = msg.body
        {
            out.push(NodeSample {
                node,
                num,
                interval,
                samples: samples.unwrap_or_default(),
            });
        }
    }
    out.sort_by_key(|s| s.node.id.distance(&target));
    Ok(out)
}
