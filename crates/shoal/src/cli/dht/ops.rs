//! The network commands of `shoal dht`: ping, find-node, get-peers, announce, put,
//! get and sample. Each parses its input first (exit 2 on bad input), then runs its
//! lookups on a short-lived node (see [`super::with_node`]), seeded with the
//! bootstrap addresses, and fails with exit 1 when no node answered.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use shoal_dht::{Dht, Id20, Item, LookupKind, LookupResult};

use super::{input, key, print_result, with_node, DhtCommand, NetOpts, NetPlan};

/// Arguments of `shoal dht ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// The node to ping, IP:PORT.
    pub addr: String,
}

/// Arguments of `shoal dht find-node`.
#[derive(Debug, Args)]
pub struct FindNodeArgs {
    /// The node ID to search for (40 hex digits).
    pub id: String,
}

/// Arguments of `shoal dht get-peers`.
#[derive(Debug, Args)]
pub struct GetPeersArgs {
    /// The torrent's info-hash (40 hex digits).
    pub info_hash: String,
}

/// Arguments of `shoal dht announce`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which_port").required(true).args(["port", "implied_port"])))]
pub struct AnnounceArgs {
    /// The torrent's info-hash (40 hex digits).
    pub info_hash: String,
    /// The TCP port peers should connect to.
    #[arg(long)]
    pub port: Option<u16>,
    /// Let the storing nodes use this node's UDP source port instead (`implied_port`).
    #[arg(long)]
    pub implied_port: bool,
}

/// Arguments of `shoal dht put`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["immutable", "mutable"])))]
#[command(group(clap::ArgGroup::new("what").required(true).args(["value", "bencoded"])))]
pub struct PutArgs {
    /// The value, stored as a bencoded string.
    pub value: Option<String>,
    /// The value as bencoded bytes in hex (any bencoded value).
    #[arg(long, value_name = "HEX")]
    pub bencoded: Option<String>,
    /// Store an immutable item (its target is the SHA-1 of the bencoded value).
    #[arg(long)]
    pub immutable: bool,
    /// Store a mutable item signed with --key (target: SHA-1 of public key + salt).
    #[arg(long, requires = "key")]
    pub mutable: bool,
    /// The ed25519 key file (created when missing).
    #[arg(long, value_name = "KEYFILE")]
    pub key: Option<PathBuf>,
    /// Mutable items: salt (at most 64 bytes).
    #[arg(long, requires = "mutable")]
    pub salt: Option<String>,
    /// Mutable items: sequence number (default: the current one plus 1).
    #[arg(long, requires = "mutable")]
    pub seq: Option<i64>,
    /// Mutable items: compare-and-swap, the seq the put must replace.
    #[arg(long, requires = "mutable")]
    pub cas: Option<i64>,
}

/// Arguments of `shoal dht get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The immutable item's target (40 hex digits), or with --mutable the public key (64 hex).
    pub target: String,
    /// Fetch a mutable item by public key and salt.
    #[arg(long)]
    pub mutable: bool,
    /// Mutable items: salt.
    #[arg(long, requires = "mutable")]
    pub salt: Option<String>,
}

/// Arguments of `shoal dht sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A hex prefix of the region to sample (1 to 40 digits, zero-padded to an ID).
    pub prefix: String,
}

/// Runs a network subcommand.
pub fn run(opts: NetOpts, cmd: DhtCommand) -> anyhow::Result<()> {
    let plan = NetPlan::from_opts(&opts)?;
    let (value, text) = match cmd {
        DhtCommand::Ping(a) => ping(&plan, a)?,
        DhtCommand::FindNode(a) => find_node(&plan, a)?,
        DhtCommand::GetPeers(a) => get_peers(&plan, a)?,
        DhtCommand::Announce(a) => announce(&plan, a)?,
        DhtCommand::Put(a) => put(&plan, a)?,
        DhtCommand::Get(a) => get(&plan, a)?,
        DhtCommand::Sample(a) => super::sample::run(&plan, a)?,
        DhtCommand::Keygen(_) | DhtCommand::Simulate(_) => {
            return Err(anyhow::anyhow!("dht: not a network command"))
        }
    };
    print_result(&opts, &value, &text);
    Ok(())
}

/// One lookup seeded with the bootstrap addresses; fails when no node answered.
pub async fn lookup(
    dht: &Dht,
    kind: LookupKind,
    target: Id20,
    boot: &[SocketAddr],
) -> anyhow::Result<LookupResult> {
    let r = dht.lookup(kind, target, boot.to_vec()).await?;
    if r.closest.is_empty() {
        let via = if boot.is_empty() {
            "no bootstrap node (give --bootstrap ADDR:PORT)".to_string()
        } else {
            format!(
                "bootstrap {}",
                boot.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        anyhow::bail!("dht: no node answered ({via})");
    }
    Ok(r)
}

/// Nodes that gave a real answer during a lookup (KRPC error replies, timeouts and
/// duplicate answers to retransmissions are not counted).
fn answered(r: &LookupResult) -> u32 {
    r.responses
}

/// The common lookup statistics as JSON fields.
fn stats(r: &LookupResult) -> Value {
    json!({
        "queries": r.messages,
        "timeouts": r.timeouts,
        "retransmits": r.retransmits,
        "responses": answered(r),
        "duration_ms": r.duration.as_secs_f64() * 1000.0,
    })
}

fn nodes_json(r: &LookupResult) -> Vec<Value> {
    r.closest
        .iter()
        .map(|c| json!({ "id": c.node.id.to_hex(), "addr": c.node.addr.to_string(), "hops": c.hops }))
        .collect()
}

fn store_errors(r: &LookupResult) -> Vec<Value> {
    r.store_errors
        .iter()
        .map(|(a, code)| json!({ "addr": a.to_string(), "code": code }))
        .collect()
}

fn ping(plan: &NetPlan, a: PingArgs) -> anyhow::Result<(Value, String)> {
    let addr = input::parse_socket_addr("ADDR", &a.addr)?;
    let (id, rtt) = with_node(plan, move |dht, _boot| {
        Box::pin(async move { Ok(dht.ping(addr).await?) })
    })?;
    let rtt_ms = rtt.as_secs_f64() * 1000.0;
    let v = json!({ "addr": addr.to_string(), "id": id.to_hex(), "rtt_ms": rtt_ms });
    Ok((v, format!("{addr}: id {id}, rtt {rtt_ms:.1} ms")))
}

fn find_node(plan: &NetPlan, a: FindNodeArgs) -> anyhow::Result<(Value, String)> {
    let target = input::parse_id("ID", &a.id)?;
    let r = with_node(plan, move |dht, boot| {
        Box::pin(async move { lookup(dht, LookupKind::FindNode, target, &boot).await })
    })?;
    let mut text = String::new();
    for c in &r.closest {
        let _ = writeln!(text, "{} {}", c.node.id, c.node.addr);
    }
    let v = json!({ "target": target.to_hex(), "nodes": nodes_json(&r), "stats": stats(&r) });
    Ok((v, text))
}

fn get_peers(plan: &NetPlan, a: GetPeersArgs) -> anyhow::Result<(Value, String)> {
    let ih = input::parse_id("INFOHASH", &a.info_hash)?;
    let kind = LookupKind::GetPeers {
        announce: None,
        implied_port: false,
    };
    let r = with_node(plan, move |dht, boot| {
        Box::pin(async move { lookup(dht, kind, ih, &boot).await })
    })?;
    let peers: Vec<String> = r.peers.iter().map(ToString::to_string).collect();
    let mut text = format!("{} peers, {} nodes answered\n", peers.len(), answered(&r));
    for p in &peers {
        let _ = writeln!(text, "{p}");
    }
    let v = json!({
        "info_hash": ih.to_hex(),
        "peers": peers,
        "nodes_answered": answered(&r),
        "closest": nodes_json(&r),
        "stats": stats(&r),
    });
    Ok((v, text))
}

fn announce(plan: &NetPlan, a: AnnounceArgs) -> anyhow::Result<(Value, String)> {
    let ih = input::parse_id("INFOHASH", &a.info_hash)?;
    if a.port == Some(0) {
        return Err(crate::cli::InvalidInput("--port 0".to_string()).into());
    }
    let (port, implied) = (a.port, a.implied_port);
    let (r, local) = with_node(plan, move |dht, boot| {
        Box::pin(async move {
            let kind = LookupKind::GetPeers {
                announce: Some(port.unwrap_or(dht.local_addr().port())),
                implied_port: implied,
            };
            Ok((lookup(dht, kind, ih, &boot).await?, dht.local_addr()))
        })
    })?;
    let port = port.unwrap_or(local.port());
    if r.stored == 0 {
        anyhow::bail!(
            "dht: no node stored the announce ({} answered, errors {:?})",
            answered(&r),
            r.store_errors
        );
    }
    let v = json!({
        "info_hash": ih.to_hex(),
        "port": port,
        "implied_port": implied,
        "stored": r.stored,
        "errors": store_errors(&r),
        "stats": stats(&r),
    });
    let text = format!("announced {ih} port {port}: stored by {} nodes", r.stored);
    Ok((v, text))
}

fn put(plan: &NetPlan, a: PutArgs) -> anyhow::Result<(Value, String)> {
    let v = input::value(a.value.as_deref(), a.bencoded.as_deref())?;
    if !a.mutable {
        let item = Item::immutable(v).map_err(|e| crate::cli::InvalidInput(e.to_string()))?;
        let target = item.target();
        let r = with_node(plan, move |dht, boot| {
            Box::pin(async move {
                lookup(dht, LookupKind::PutItem { item, cas: None }, target, &boot).await
            })
        })?;
        check_stored(&r)?;
        let v = json!({
            "target": target.to_hex(),
            "stored": r.stored,
            "errors": store_errors(&r),
            "stats": stats(&r),
        });
        return Ok((v, format!("{target}\nstored by {} nodes", r.stored)));
    }
    let salt = input::salt(a.salt.as_deref())?;
    let key_path = a
        .key
        .ok_or_else(|| crate::cli::InvalidInput("--mutable needs --key KEYFILE".into()))?;
    // Validate the signed item before creating anything.
    let probe = [0u8; 32];
    Item::mutable(
        &ed25519_dalek::SigningKey::from_bytes(&probe),
        salt.clone(),
        1,
        v.clone(),
    )
    .map_err(|e| crate::cli::InvalidInput(e.to_string()))?;
    let (sk, created) = key::load_or_create(&key_path, true)?;
    let pk = sk.verifying_key().to_bytes();
    let target = shoal_dht::item::mutable_target(&pk, &salt);
    let (seq_arg, cas) = (a.seq, a.cas);
    let salt2 = salt.clone();
    let (r, seq) = with_node(plan, move |dht, boot| {
        Box::pin(async move {
            let seq = match seq_arg {
                Some(s) => s,
                None => {
                    let kind = LookupKind::GetItem {
                        seq: None,
                        salt: salt2.clone(),
                    };
                    let got = lookup(dht, kind, target, &boot).await?;
                    let cur = got
                        .item
                        .filter(|i| i.mutable.as_ref().is_some_and(|m| m.k == pk))
                        .map_or(0, |i| i.seq());
                    cur.checked_add(1).ok_or_else(|| {
                        anyhow::anyhow!("dht: the current seq is already the largest")
                    })?
                }
            };
            let item = Item::mutable(&sk, salt2, seq, v)?;
            let r = lookup(dht, LookupKind::PutItem { item, cas }, target, &boot).await?;
            Ok((r, seq))
        })
    })?;
    check_stored(&r)?;
    let value = json!({
        "target": target.to_hex(),
        "public_key": hex::encode(pk),
        "salt": String::from_utf8_lossy(&salt),
        "seq": seq,
        "cas": cas,
        "stored": r.stored,
        "errors": store_errors(&r),
        "key_created": created,
        "stats": stats(&r),
    });
    let text = format!("{target}\nseq {seq}, stored by {} nodes", r.stored);
    Ok((value, text))
}

/// A put stored nowhere is a failure; the message carries the nodes' error codes.
fn check_stored(r: &LookupResult) -> anyhow::Result<()> {
    if r.stored > 0 {
        return Ok(());
    }
    let codes: Vec<String> = r
        .store_errors
        .iter()
        .map(|(a, c)| format!("{a}: {c}{}", code_meaning(*c)))
        .collect();
    anyhow::bail!(
        "dht: no node stored the item ({} answered; errors: [{}])",
        answered(r),
        codes.join(", ")
    )
}

fn code_meaning(code: i64) -> &'static str {
    match code {
        205 => " value too big",
        206 => " invalid signature",
        207 => " salt too big",
        301 => " CAS mismatch",
        302 => " sequence number not newer",
        _ => "",
    }
}

fn get(plan: &NetPlan, a: GetArgs) -> anyhow::Result<(Value, String)> {
    if !a.mutable {
        let target = input::parse_id("TARGET", &a.target)?;
        let kind = LookupKind::GetItem {
            seq: None,
            salt: Vec::new(),
        };
        let r = with_node(plan, move |dht, boot| {
            Box::pin(async move { lookup(dht, kind, target, &boot).await })
        })?;
        let item = r
            .item
            .as_ref()
            .filter(|i| i.mutable.is_none() && shoal_dht::item::immutable_target(&i.v) == target)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "dht: item {target} not found ({} nodes answered)",
                    answered(&r)
                )
            })?;
        let text = input::value_text(&item.v);
        let v = json!({
            "target": target.to_hex(),
            "value": text,
            "bencoded": hex::encode(&item.v),
            "stats": stats(&r),
        });
        let shown = text.unwrap_or_else(|| format!("bencoded {}", hex::encode(&item.v)));
        return Ok((v, shown));
    }
    let pk = input::parse_pubkey(&a.target)?;
    let salt = input::salt(a.salt.as_deref())?;
    let target = shoal_dht::item::mutable_target(&pk, &salt);
    let kind = LookupKind::GetItem {
        seq: None,
        salt: salt.clone(),
    };
    let r = with_node(plan, move |dht, boot| {
        Box::pin(async move { lookup(dht, kind, target, &boot).await })
    })?;
    let (item, m) = r
        .item
        .as_ref()
        .and_then(|i| {
            i.mutable
                .as_ref()
                .filter(|m| m.k == pk && m.salt == salt)
                .map(|m| (i, m))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "dht: mutable item {target} not found ({} nodes answered)",
                answered(&r)
            )
        })?;
    item.validate()?;
    let text = input::value_text(&item.v);
    let v = json!({
        "target": target.to_hex(),
        "public_key": hex::encode(pk),
        "salt": String::from_utf8_lossy(&salt),
        "seq": m.seq,
        "value": text,
        "bencoded": hex::encode(&item.v),
        "stats": stats(&r),
    });
    let shown = text.unwrap_or_else(|| format!("bencoded {}", hex::encode(&item.v)));
    Ok((v, format!("{shown}\nseq {}", m.seq)))
}
