//! `torrent-get`: every field transmission-remote's list (`-l`) and
//! details (`-i`, `-if`, `-ip`, `-it`) views and the *arr apps read, as
//! objects or as a table. Fields are parsed once per request; per torrent
//! the answer comes from the status and metadata the engine publishes
//! (no message to the torrent) unless a field needs the torrent's peers,
//! pieces or trackers, which are asked for only then.
use super::keys::{canon, name};
use super::peer_tracker_lists::{peer_json, tracker_stats};
use super::{prio, select, visible_files, Call, Protocol, RpcError};
use crate::Shared;
use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use shoal_engine::{TorrentHandle, TorrentMeta, TorrentState, TorrentStatus};
use std::collections::HashMap;

/// The fields known, by canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    ActivityDate,
    AddedDate,
    Availability,
    BandwidthPriority,
    BytesCompleted,
    Comment,
    CorruptEver,
    Creator,
    DateCreated,
    DesiredAvailable,
    DoneDate,
    DownloadDir,
    DownloadedEver,
    DownloadLimit,
    DownloadLimited,
    EditDate,
    Error,
    ErrorString,
    Eta,
    EtaIdle,
    FileCount,
    Files,
    FileStats,
    Group,
    HashString,
    HaveUnchecked,
    HaveValid,
    HonorsSessionLimits,
    Id,
    IsFinished,
    IsPrivate,
    IsStalled,
    Labels,
    LeftUntilDone,
    MagnetLink,
    ManualAnnounceTime,
    MaxConnectedPeers,
    MetadataPercentComplete,
    Name,
    PeerLimit,
    Peers,
    PeersConnected,
    PeersFrom,
    PeersGettingFromUs,
    PeersSendingToUs,
    PercentComplete,
    PercentDone,
    Pieces,
    PieceCount,
    PieceSize,
    Priorities,
    PrimaryMimeType,
    QueuePosition,
    RateDownload,
    RateUpload,
    RecheckProgress,
    SecondsDownloading,
    SecondsSeeding,
    SeedIdleLimit,
    SeedIdleMode,
    SeedRatioLimit,
    SeedRatioMode,
    SequentialDownload,
    SequentialDownloadFromPiece,
    SizeWhenDone,
    StartDate,
    Status,
    TorrentFile,
    TotalSize,
    Trackers,
    TrackerList,
    TrackerStats,
    UploadedEver,
    UploadLimit,
    UploadLimited,
    UploadRatio,
    Wanted,
    Webseeds,
    WebseedsEx,
    WebseedsSendingToUs,
    /// shoal's own: the v2 info-hash.
    HashStringV2,
}

fn field(c: &str) -> Option<F> {
    use F::*;
    Some(match c {
        "activitydate" => ActivityDate,
        "addeddate" => AddedDate,
        "availability" => Availability,
        "bandwidthpriority" => BandwidthPriority,
        "bytescompleted" => BytesCompleted,
        "comment" => Comment,
        "corruptever" => CorruptEver,
        "creator" => Creator,
        "datecreated" => DateCreated,
        "desiredavailable" => DesiredAvailable,
        "donedate" => DoneDate,
        "downloaddir" => DownloadDir,
        "downloadedever" => DownloadedEver,
        "downloadlimit" => DownloadLimit,
        "downloadlimited" => DownloadLimited,
        "editdate" => EditDate,
        "error" => Error,
        "errorstring" => ErrorString,
        "eta" => Eta,
        "etaidle" => EtaIdle,
        "filecount" => FileCount,
        "files" => Files,
        "filestats" => FileStats,
        "group" => Group,
        "hashstring" => HashString,
        "haveunchecked" => HaveUnchecked,
        "havevalid" => HaveValid,
        "honorssessionlimits" => HonorsSessionLimits,
        "id" => Id,
        "isfinished" => IsFinished,
        "isprivate" => IsPrivate,
        "isstalled" => IsStalled,
        "labels" => Labels,
        "leftuntildone" => LeftUntilDone,
        "magnetlink" => MagnetLink,
        "manualannouncetime" => ManualAnnounceTime,
        "maxconnectedpeers" => MaxConnectedPeers,
        "metadatapercentcomplete" => MetadataPercentComplete,
        "name" => Name,
        "peerlimit" => PeerLimit,
        "peers" => Peers,
        "peersconnected" => PeersConnected,
        "peersfrom" => PeersFrom,
        "peersgettingfromus" => PeersGettingFromUs,
        "peerssendingtous" => PeersSendingToUs,
        "percentcomplete" => PercentComplete,
        "percentdone" => PercentDone,
        "pieces" => Pieces,
        "piececount" => PieceCount,
        "piecesize" => PieceSize,
        "priorities" => Priorities,
        "primarymimetype" => PrimaryMimeType,
        "queueposition" => QueuePosition,
        "ratedownload" => RateDownload,
        "rateupload" => RateUpload,
        "recheckprogress" => RecheckProgress,
        "secondsdownloading" => SecondsDownloading,
        "secondsseeding" => SecondsSeeding,
        "seedidlelimit" => SeedIdleLimit,
        "seedidlemode" => SeedIdleMode,
        "seedratiolimit" => SeedRatioLimit,
        "seedratiomode" => SeedRatioMode,
        "sequentialdownload" => SequentialDownload,
        "sequentialdownloadfrompiece" => SequentialDownloadFromPiece,
        "sizewhendone" => SizeWhenDone,
        "startdate" => StartDate,
        "status" => Status,
        "torrentfile" => TorrentFile,
        "totalsize" => TotalSize,
        "trackers" => Trackers,
        "trackerlist" => TrackerList,
        "trackerstats" => TrackerStats,
        "uploadedever" => UploadedEver,
        "uploadlimit" => UploadLimit,
        "uploadlimited" => UploadLimited,
        "uploadratio" => UploadRatio,
        "wanted" => Wanted,
        "webseeds" => Webseeds,
        "webseedsex" => WebseedsEx,
        "webseedssendingtous" => WebseedsSendingToUs,
        "hashstringv2" => HashStringV2,
        _ => return None,
    })
}

/// Transmission's status number of a state.
pub fn status_code(s: TorrentState) -> u64 {
    match s {
        TorrentState::Paused | TorrentState::Error | TorrentState::Stopped => 0,
        TorrentState::Checking => 2,
        TorrentState::Queued => 3,
        TorrentState::Downloading | TorrentState::FetchingMetadata => 4,
        TorrentState::Seeding => 6,
    }
}

/// What one request needs besides the status.
struct Ctx<'a> {
    p: Protocol,
    shared: &'a Shared,
    settings: crate::settings::Settings,
    ranks: HashMap<shoal_engine::TorrentId, usize>,
    peer_limit: usize,
}

/// Answers asked of a torrent's task (only when a field needs them).
#[derive(Default)]
struct Asked {
    peers: Option<Vec<shoal_engine::PeerInfo>>,
    pieces: Option<shoal_wire::Bitfield>,
    trackers: Option<Vec<shoal_engine::TrackerInfo>>,
}

/// The effective tracker tiers of a torrent.
pub fn tiers(m: &TorrentMeta) -> Vec<Vec<String>> {
    if let Some(l) = &m.tracker_list {
        return l.clone();
    }
    let mut t: Vec<Vec<String>> = m
        .torrent
        .as_ref()
        .map(|t| t.tracker_urls())
        .unwrap_or_default();
    let magnet_trackers = m
        .magnet
        .as_deref()
        .and_then(|u| shoal_metainfo::Magnet::parse(u).ok())
        .map(|m| m.trackers)
        .unwrap_or_default();
    for u in magnet_trackers.iter().chain(&m.extra_trackers) {
        if !t.iter().flatten().any(|x| x == u) {
            t.push(vec![u.clone()]);
        }
    }
    t.retain(|tier| !tier.is_empty());
    t
}

pub(super) fn scrape_url(announce: &str) -> String {
    match announce.rfind('/') {
        Some(i) if announce[i + 1..].starts_with("announce") => {
            format!("{}/scrape{}", &announce[..i], &announce[i + 1 + 8..])
        }
        _ => String::new(),
    }
}

pub(super) fn sitename(announce: &str) -> String {
    url::Url::parse(announce)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .map(|h| {
            let parts: Vec<&str> = h.split('.').collect();
            if parts.len() >= 2 && h.parse::<std::net::IpAddr>().is_err() {
                parts[parts.len() - 2].to_owned()
            } else {
                h
            }
        })
        .unwrap_or_default()
}

fn mime_of(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => "video/x-matroska",
        "mp4" | "m4v" => "video/mp4",
        "avi" => "video/x-msvideo",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "iso" => "application/x-iso9660-image",
        "zip" => "application/zip",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn ratio(up: u64, base: u64) -> f64 {
    if base > 0 {
        up as f64 / base as f64
    } else if up > 0 {
        -2.0
    } else {
        -1.0
    }
}

fn have_valid(s: &TorrentStatus, m: &TorrentMeta) -> u64 {
    let Some(t) = &m.torrent else { return 0 };
    if s.pieces > 0 && s.pieces_have >= s.pieces {
        return t.total_length();
    }
    (u64::from(s.pieces_have) * t.piece_length()).min(t.total_length())
}

fn value(
    f: F,
    ctx: &Ctx<'_>,
    h: &TorrentHandle,
    s: &TorrentStatus,
    m: &TorrentMeta,
    asked: &Asked,
) -> Value {
    use F::*;
    let p = ctx.p;
    let t = m.torrent.as_deref();
    let files = || t.map(visible_files).unwrap_or_default();
    // Before the first check ends the engine reports no wanted bytes yet:
    // count them from the metadata, so that nothing looks finished early.
    let wanted = match t {
        Some(t) if s.wanted_bytes == 0 => t
            .files()
            .iter()
            .enumerate()
            .filter(|(i, f)| !f.pad && m.file_priorities.get(*i).is_none_or(|&p| p > 0))
            .map(|(_, f)| f.length)
            .sum(),
        _ => s.wanted_bytes,
    };
    let left = wanted.saturating_sub(s.verified_wanted_bytes);
    let act = || ctx.shared.activity.get(h.id());
    let progress = || match (t, &asked.pieces) {
        (Some(t), Some(have)) => shoal_engine::info::file_progress(t, have),
        _ => Vec::new(),
    };
    let tr_prios = || prio::to_tr(&m.file_priorities);
    match f {
        ActivityDate => json!(act().acc.activity_date),
        AddedDate => json!(m.added_at),
        Availability => match (&asked.pieces, t) {
            (Some(have), Some(t)) => Value::Array(
                (0..t.piece_count())
                    .map(|i| if have.get(i) { json!(-1) } else { json!(0) })
                    .collect(),
            ),
            _ => json!([]),
        },
        BandwidthPriority => json!(0),
        BytesCompleted => {
            let pr = progress();
            json!(files()
                .iter()
                .map(|&i| pr.get(i).copied().unwrap_or(0))
                .collect::<Vec<_>>())
        }
        Comment => json!(t.and_then(|t| t.comment()).unwrap_or("")),
        CorruptEver => json!(s.corrupt),
        Creator => json!(t.and_then(|t| t.created_by()).unwrap_or("")),
        DateCreated => json!(t.and_then(|t| t.creation_date()).unwrap_or(0).max(0)),
        DesiredAvailable => json!(if s.seeds > 0 { left } else { 0 }),
        DoneDate => json!(act().acc.done_date),
        DownloadDir => json!(m.save_path.to_string_lossy()),
        DownloadedEver => json!(s.downloaded),
        DownloadLimit => json!(m
            .limits
            .max_download_rate
            .map_or(100, |r| r.div_ceil(crate::settings::KB))),
        DownloadLimited => json!(m.limits.max_download_rate.is_some()),
        EditDate => json!(0),
        Error => json!(if s.state == TorrentState::Error { 3 } else { 0 }),
        ErrorString => json!(s.error.as_ref().map(|e| e.to_string()).unwrap_or_default()),
        Eta => json!(match s.state {
            TorrentState::Downloading if s.download_rate > 0 => (left / s.download_rate) as i64,
            TorrentState::Downloading if left == 0 => 0,
            _ => -1,
        }),
        EtaIdle => json!(-1),
        FileCount => json!(files().len()),
        Files => {
            let pr = progress();
            let Some(t) = t else { return json!([]) };
            let pl = t.piece_length().max(1);
            Value::Array(
                files()
                    .iter()
                    .map(|&i| {
                        let f = &t.files()[i];
                        json!({
                            name(p, "bytes_completed"): pr.get(i).copied().unwrap_or(0),
                            "length": f.length,
                            "name": f.path_string(),
                            name(p, "begin_piece"): f.offset / pl,
                            name(p, "end_piece"): (f.end()).div_ceil(pl),
                        })
                    })
                    .collect(),
            )
        }
        FileStats => {
            let pr = progress();
            let tp = tr_prios();
            Value::Array(
                files()
                    .iter()
                    .map(|&i| {
                        json!({
                            name(p, "bytes_completed"): pr.get(i).copied().unwrap_or(0),
                            "wanted": m.file_priorities.get(i).is_none_or(|&x| x > 0),
                            "priority": tp.get(i).copied().unwrap_or(0),
                        })
                    })
                    .collect(),
            )
        }
        Group => json!(m.group.as_deref().unwrap_or("")),
        HashString => json!(h.info_hashes().primary().to_hex()),
        HashStringV2 => json!(h.info_hashes().v2.map(|v| v.to_hex())),
        HaveUnchecked => json!(0),
        HaveValid => json!(have_valid(s, m)),
        HonorsSessionLimits => json!(!m.limits.bypass_session_limits),
        Id => json!(h.id().0),
        IsFinished => json!(s.finished),
        IsPrivate => json!(t.is_some_and(|t| t.is_private())),
        IsStalled => json!(false),
        Labels => json!(m.labels),
        LeftUntilDone => json!(left),
        MagnetLink => json!(match t {
            Some(t) => t.magnet().to_uri(),
            None => m.magnet.clone().unwrap_or_default(),
        }),
        ManualAnnounceTime => json!(-1),
        MaxConnectedPeers | PeerLimit => json!(m.limits.max_peers.unwrap_or(ctx.peer_limit)),
        MetadataPercentComplete => json!(if t.is_some() { 1.0 } else { 0.0 }),
        Name => json!(m.name),
        Peers => match &asked.peers {
            Some(peers) => Value::Array(peers.iter().map(|x| peer_json(p, x)).collect()),
            None => json!([]),
        },
        PeersConnected => json!(s.peers),
        PeersFrom => {
            let mut from = [0u64; 4];
            for x in asked.peers.iter().flatten() {
                let i = match x.origin {
                    shoal_engine::PeerOrigin::Incoming => 0,
                    shoal_engine::PeerOrigin::Tracker => 1,
                    shoal_engine::PeerOrigin::Pex => 2,
                    _ => 3,
                };
                from[i] += 1;
            }
            json!({
                name(p, "from_cache"): 0,
                name(p, "from_dht"): from[3],
                name(p, "from_incoming"): from[0],
                name(p, "from_lpd"): 0,
                name(p, "from_ltep"): 0,
                name(p, "from_pex"): from[2],
                name(p, "from_tracker"): from[1],
            })
        }
        PeersGettingFromUs => json!(match &asked.peers {
            Some(v) => v.iter().filter(|x| x.upload_rate > 0).count(),
            None if s.upload_rate > 0 => s.peers.saturating_sub(s.seeds).max(1),
            None => 0,
        }),
        PeersSendingToUs => json!(match &asked.peers {
            Some(v) => v.iter().filter(|x| x.download_rate > 0).count(),
            None if s.download_rate > 0 => s.seeds.max(1),
            None => 0,
        }),
        PercentComplete => json!(if s.pieces > 0 {
            f64::from(s.pieces_have) / f64::from(s.pieces)
        } else {
            0.0
        }),
        PercentDone => json!(s.progress()),
        Pieces => match &asked.pieces {
            Some(b) => json!(base64::engine::general_purpose::STANDARD.encode(b.as_bytes())),
            None => json!(""),
        },
        PieceCount => json!(t.map_or(0, |t| t.piece_count())),
        PieceSize => json!(t.map_or(0, |t| t.piece_length())),
        Priorities => {
            let tp = tr_prios();
            json!(files()
                .iter()
                .map(|&i| tp.get(i).copied().unwrap_or(0))
                .collect::<Vec<_>>())
        }
        PrimaryMimeType => json!(t
            .and_then(|t| t.files().iter().filter(|f| !f.pad).max_by_key(|f| f.length))
            .map_or("application/octet-stream", |f| mime_of(&f.path))),
        QueuePosition => json!(ctx.ranks.get(&h.id()).copied().unwrap_or(0)),
        RateDownload => json!(s.download_rate),
        RateUpload => json!(s.upload_rate),
        RecheckProgress => json!(if s.state == TorrentState::Checking && s.pieces > 0 {
            s.pieces_checked as f64 / f64::from(s.pieces)
        } else {
            0.0
        }),
        SecondsDownloading => json!(act().acc.seconds_downloading),
        SecondsSeeding => json!(act().acc.seconds_seeding),
        SeedIdleLimit => json!(match m.limits.seed_idle {
            shoal_engine::SeedGoal::Limit(d) => d.as_secs() / 60,
            _ => ctx.settings.idle_seeding_limit,
        }),
        SeedIdleMode => json!(goal_mode(m.limits.seed_idle)),
        SeedRatioLimit => json!(match m.limits.seed_ratio {
            shoal_engine::SeedGoal::Limit(r) => r,
            _ => ctx.settings.seed_ratio_limit,
        }),
        SeedRatioMode => json!(goal_mode(m.limits.seed_ratio)),
        SequentialDownload => json!(false),
        SequentialDownloadFromPiece => json!(0),
        SizeWhenDone => json!(wanted),
        StartDate => json!(act().start_date),
        Status => json!(status_code(s.state)),
        TorrentFile => json!(""),
        TotalSize => json!(t.map_or(0, |t| t
            .files()
            .iter()
            .filter(|f| !f.pad)
            .map(|f| f.length)
            .sum::<u64>())),
        Trackers => {
            let mut id = 0;
            let mut out = Vec::new();
            for (tier, urls) in tiers(m).iter().enumerate() {
                for u in urls {
                    out.push(json!({
                        "announce": u, "id": id, "scrape": scrape_url(u),
                        "sitename": sitename(u), "tier": tier,
                    }));
                    id += 1;
                }
            }
            Value::Array(out)
        }
        TrackerList => json!(tiers(m)
            .iter()
            .map(|t| t.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")),
        TrackerStats => tracker_stats(p, m, asked.trackers.as_deref().unwrap_or(&[])),
        UploadedEver => json!(s.uploaded),
        UploadLimit => json!(m
            .limits
            .max_upload_rate
            .map_or(100, |r| r.div_ceil(crate::settings::KB))),
        UploadLimited => json!(m.limits.max_upload_rate.is_some()),
        UploadRatio => json!(ratio(
            s.uploaded,
            if s.downloaded > 0 {
                s.downloaded
            } else {
                have_valid(s, m)
            }
        )),
        Wanted => {
            let w = files()
                .iter()
                .map(|&i| m.file_priorities.get(i).is_none_or(|&x| x > 0))
                .collect::<Vec<_>>();
            match p {
                // The classic format: 0 or 1 (Transmission 3 and 4.0.2+).
                Protocol::Legacy => json!(w.iter().map(|&b| u8::from(b)).collect::<Vec<_>>()),
                Protocol::JsonRpc => json!(w),
            }
        }
        Webseeds => json!(t.map(|t| t.web_seeds().to_vec()).unwrap_or_default()),
        WebseedsEx => json!([]),
        WebseedsSendingToUs => json!(0),
    }
}

fn goal_mode<T>(g: shoal_engine::SeedGoal<T>) -> u64 {
    match g {
        shoal_engine::SeedGoal::Session => 0,
        shoal_engine::SeedGoal::Limit(_) => 1,
        shoal_engine::SeedGoal::Unlimited => 2,
    }
}

/// `torrent-get`: the answer object (`torrents`, and `removed` for
/// `recently-active`), serialized.
pub async fn torrent_get(shared: &Shared, call: &Call) -> Result<Box<RawValue>, RpcError> {
    let a = &call.args;
    let names = a
        .strings("fields")?
        .ok_or_else(|| RpcError::params("no fields specified"))?;
    let table = match a.str("format")? {
        None | Some("objects") => false,
        Some("table") => true,
        Some(other) => return Err(RpcError::params(format!("unknown format {other:?}"))),
    };
    // Unknown fields are left out, as Transmission does.
    let fields: Vec<(String, F)> = names
        .into_iter()
        .filter_map(|n| field(&canon(&n)).map(|f| (n, f)))
        .collect();
    let (handles, recent) = select(shared, a)?;
    let needs = |fs: &[F]| fields.iter().any(|(_, f)| fs.contains(f));
    let want_peers = needs(&[
        F::Peers,
        F::PeersFrom,
        F::PeersGettingFromUs,
        F::PeersSendingToUs,
    ]) && needs(&[F::Peers, F::PeersFrom]);
    let want_pieces = needs(&[
        F::Pieces,
        F::Availability,
        F::Files,
        F::FileStats,
        F::BytesCompleted,
    ]);
    let want_trackers = needs(&[F::TrackerStats]);
    let ranks = if needs(&[F::QueuePosition]) {
        let mut all: Vec<(i64, shoal_engine::TorrentId)> = shared
            .session
            .torrents()
            .iter()
            .map(|h| (h.status().queue_position, h.id()))
            .collect();
        all.sort();
        all.into_iter()
            .enumerate()
            .map(|(i, (_, id))| (id, i))
            .collect()
    } else {
        HashMap::new()
    };
    let ctx = Ctx {
        p: call.protocol,
        shared,
        settings: shared.settings(),
        ranks,
        peer_limit: shared.config.peer_limit_per_torrent,
    };
    let mut asked = Vec::new();
    if want_peers || want_pieces || want_trackers {
        for h in &handles {
            let mut x = Asked::default();
            if want_peers {
                x.peers = h.peers().await.ok();
            }
            if want_pieces {
                x.pieces = h.pieces().await.ok();
            }
            if want_trackers {
                x.trackers = h.trackers().await.ok();
            }
            asked.push(x);
        }
    }
    let removed = recent.then(|| {
        shared
            .recently_removed()
            .iter()
            .map(|id| id.0)
            .collect::<Vec<_>>()
    });
    let answer = Answer {
        torrents: Listing {
            ctx: &ctx,
            fields: &fields,
            handles: &handles,
            asked: &asked,
            table,
        },
        removed,
    };
    serde_json::value::to_raw_value(&answer)
        .map_err(|e| RpcError::new(super::code::INTERNAL_ERROR, e.to_string()))
}

/// The answer object of `torrent-get`.
#[derive(Serialize)]
struct Answer<'a> {
    torrents: Listing<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<Vec<u64>>,
}

/// The torrents, written one by one from their status and metadata (no
/// `Value` tree of the whole list: 10,000 torrents are listed in a
/// fraction of the time and memory).
struct Listing<'a> {
    ctx: &'a Ctx<'a>,
    fields: &'a [(String, F)],
    handles: &'a [TorrentHandle],
    /// Per handle when a field needs the task's answers; else empty.
    asked: &'a [Asked],
    table: bool,
}

impl Serialize for Listing<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let none = Asked::default();
        let mut seq = s.serialize_seq(Some(self.handles.len() + usize::from(self.table)))?;
        if self.table {
            seq.serialize_element(&self.fields.iter().map(|(n, _)| n).collect::<Vec<_>>())?;
        }
        for (i, h) in self.handles.iter().enumerate() {
            let st = h.status();
            let meta = h.subscribe_meta();
            let m = meta.borrow();
            seq.serialize_element(&Row {
                listing: self,
                h,
                s: &st,
                m: &m,
                asked: self.asked.get(i).unwrap_or(&none),
            })?;
        }
        seq.end()
    }
}

/// One torrent: an object of the fields asked for, or a table row.
struct Row<'a> {
    listing: &'a Listing<'a>,
    h: &'a TorrentHandle,
    s: &'a TorrentStatus,
    m: &'a TorrentMeta,
    asked: &'a Asked,
}

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.listing;
        let v = |f: F| value(f, l.ctx, self.h, self.s, self.m, self.asked);
        if l.table {
            let mut seq = s.serialize_seq(Some(l.fields.len()))?;
            for (_, f) in l.fields {
                seq.serialize_element(&v(*f))?;
            }
            seq.end()
        } else {
            let mut map = s.serialize_map(Some(l.fields.len()))?;
            for (n, f) in l.fields {
                map.serialize_entry(n, &v(*f))?;
            }
            map.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_urls() {
        assert_eq!(
            scrape_url("http://t.example/announce"),
            "http://t.example/scrape"
        );
        assert_eq!(
            scrape_url("http://t.example/announce.php?k=1"),
            "http://t.example/scrape.php?k=1"
        );
        assert_eq!(scrape_url("udp://t.example:80"), "");
        assert_eq!(
            sitename("http://tracker.example.org:80/announce"),
            "example"
        );
        assert_eq!(sitename("http://127.0.0.1:1/announce"), "127.0.0.1");
        assert_eq!(ratio(10, 5), 2.0);
        assert_eq!(ratio(0, 0), -1.0);
        assert_eq!(ratio(3, 0), -2.0);
        assert!(field(&canon("hash_string")).is_some() && field(&canon("hashString")).is_some());
        assert!(field(&canon("nope")).is_none());
    }
}
