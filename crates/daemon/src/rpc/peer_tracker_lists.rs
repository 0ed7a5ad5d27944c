//! The peers and tracker statistics of one torrent, as `torrent-get`
//! lists them (the `peers` and `trackerStats` fields).
use super::keys::name;
use super::torrent_get::{scrape_url, sitename, tiers};
use super::Protocol;
use serde_json::{json, Value};
use shoal_engine::TorrentMeta;

/// One peer as `torrent-get`'s `peers` lists it.
pub(super) fn peer_json(p: Protocol, x: &shoal_engine::PeerInfo) -> Value {
    let incoming = x.origin == shoal_engine::PeerOrigin::Incoming;
    let mut flags = String::new();
    if x.download_rate > 0 {
        flags.push('D');
    } else if x.am_interested && !x.peer_choking {
        flags.push('d');
    }
    if x.upload_rate > 0 {
        flags.push('U');
    } else if x.peer_interested && !x.am_choking {
        flags.push('u');
    }
    if !x.am_choking && !x.peer_interested {
        flags.push('?');
    }
    if x.snubbed {
        flags.push('K');
    }
    if x.encrypted {
        flags.push('E');
    }
    if incoming {
        flags.push('I');
    }
    if x.origin == shoal_engine::PeerOrigin::Pex {
        flags.push('X');
    }
    if x.transport == "utp" {
        flags.push('T');
    }
    json!({
        "address": x.addr.ip().to_string(),
        name(p, "client_name"): x.client,
        name(p, "client_is_choked"): x.peer_choking,
        name(p, "client_is_interested"): x.am_interested,
        name(p, "flag_str"): flags,
        name(p, "is_downloading_from"): x.download_rate > 0,
        name(p, "is_encrypted"): x.encrypted,
        name(p, "is_incoming"): incoming,
        name(p, "is_uploading_to"): x.upload_rate > 0,
        name(p, "is_utp"): x.transport == "utp",
        name(p, "peer_is_choked"): x.am_choking,
        name(p, "peer_is_interested"): x.peer_interested,
        "port": x.addr.port(),
        "progress": x.progress,
        name(p, "rate_to_client"): x.download_rate,
        name(p, "rate_to_peer"): x.upload_rate,
        name(p, "bytes_to_client"): 0,
        name(p, "bytes_to_peer"): 0,
        name(p, "peer_id"): "",
    })
}

/// The `trackerStats` of a torrent: one entry per tracker of every tier.
pub(super) fn tracker_stats(
    p: Protocol,
    m: &TorrentMeta,
    known: &[shoal_engine::TrackerInfo],
) -> Value {
    let mut id = 0;
    let mut out = Vec::new();
    for (tier, urls) in tiers(m).iter().enumerate() {
        for u in urls {
            let k = known.iter().find(|k| k.url == *u);
            let last = k.and_then(|k| k.last_announce).unwrap_or(0);
            let ok = k.is_some_and(|k| k.announces_ok > 0 && k.last_error.is_none());
            let result = match k {
                Some(k) => match &k.last_error {
                    Some(e) => e.clone(),
                    None if k.announces_ok > 0 => "Success".to_owned(),
                    None => String::new(),
                },
                None => String::new(),
            };
            let host = url::Url::parse(u)
                .ok()
                .map(|x| format!("{}://{}", x.scheme(), x.authority()))
                .unwrap_or_default();
            out.push(json!({
                "announce": u,
                // Transmission's tr_tracker_state: inactive, waiting
                // (until next_announce_time) or active (asking now).
                name(p, "announce_state"): match k {
                    Some(k) if k.announcing => 3,
                    Some(k) if k.next_announce.is_some() => 1,
                    _ => 0,
                },
                name(p, "download_count"): -1,
                name(p, "downloader_count"): -1,
                name(p, "has_announced"): last > 0,
                name(p, "has_scraped"): false,
                "host": host,
                "id": id,
                name(p, "is_backup"): false,
                name(p, "last_announce_peer_count"): k.map_or(0, |k| k.last_peers),
                name(p, "last_announce_result"): result,
                // While asking, Transmission shows the time since this.
                name(p, "last_announce_start_time"): match k {
                    Some(k) if k.announcing => unix_now(),
                    _ => last,
                },
                name(p, "last_announce_succeeded"): ok,
                name(p, "last_announce_time"): last,
                name(p, "last_announce_timed_out"): false,
                name(p, "last_scrape_result"): "",
                name(p, "last_scrape_start_time"): 0,
                name(p, "last_scrape_succeeded"): false,
                name(p, "last_scrape_time"): 0,
                name(p, "last_scrape_timed_out"): false,
                name(p, "leecher_count"): k.and_then(|k| k.leechers).map_or(-1, i64::from),
                name(p, "next_announce_time"): k.and_then(|k| k.next_announce).unwrap_or(0),
                name(p, "next_scrape_time"): 0,
                "scrape": scrape_url(u),
                name(p, "scrape_state"): 0,
                name(p, "seeder_count"): k.and_then(|k| k.seeders).map_or(-1, i64::from),
                "sitename": sitename(u),
                "tier": tier,
            }));
            id += 1;
        }
    }
    Value::Array(out)
}

/// Seconds since the Unix epoch now (the start of an announce under way,
/// whose own start the engine does not keep).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
