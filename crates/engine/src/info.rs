//! What a caller can ask a torrent beyond its status: its peers, its
//! trackers, its pieces and the progress of each file (the daemon's views).
//! Plain data, built by the torrent's task on request.
use shoal_wire::Bitfield;
use std::net::SocketAddr;

/// Where we learnt a peer's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerOrigin {
    /// It connected to us.
    Incoming,
    /// Given by the user, a magnet's `x.pe` or the DHT.
    Added,
    /// A tracker.
    Tracker,
    /// Peer exchange (BEP 11).
    Pex,
}

/// One connection of a torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its address.
    pub addr: SocketAddr,
    /// Its client, from its peer id (BEP 20) when known.
    pub client: String,
    /// Where we learnt of it.
    pub origin: PeerOrigin,
    /// The BitTorrent handshake is done.
    pub connected: bool,
    /// We choke it.
    pub am_choking: bool,
    /// We want pieces it has.
    pub am_interested: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It wants pieces we have.
    pub peer_interested: bool,
    /// It sends us nothing although we asked (snubbed).
    pub snubbed: bool,
    /// Payload bytes/s from it.
    pub download_rate: u64,
    /// Payload bytes/s to it.
    pub upload_rate: u64,
    /// Fraction of the pieces it has, `0.0..=1.0`.
    pub progress: f32,
    /// Our requests outstanding to it.
    pub requests: usize,
    /// Transport: `"tcp"` or `"utp"`.
    pub transport: &'static str,
    /// The payload is RC4-encrypted (MSE/PE). An MSE handshake that
    /// selected plaintext does not count.
    pub encrypted: bool,
}

/// What the torrent knows of one of its trackers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerInfo {
    /// Its announce URL.
    pub url: String,
    /// Its tier (0 first).
    pub tier: usize,
    /// Announces answered.
    pub announces_ok: u32,
    /// Announces that failed.
    pub announces_failed: u32,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// The tracker's warning message of the last answer.
    pub warning: Option<String>,
    /// Seeders it reported in its last answer.
    pub seeders: Option<u32>,
    /// Leechers it reported in its last answer.
    pub leechers: Option<u32>,
    /// Peers it gave in its last answer.
    pub last_peers: usize,
    /// When it last answered (or failed), seconds since the Unix epoch.
    pub last_announce: Option<u64>,
    /// When it is next asked, seconds since the Unix epoch (`None`: it is
    /// not the tracker its tier asks next, an announce is under way, or
    /// the torrent does not announce now).
    pub next_announce: Option<u64>,
    /// An announce to it is under way.
    pub announcing: bool,
}

impl TrackerInfo {
    /// A tracker nothing was heard from yet (or since the torrent stopped).
    pub(crate) fn listed(url: String, tier: usize) -> Self {
        TrackerInfo {
            url,
            tier,
            announces_ok: 0,
            announces_failed: 0,
            last_error: None,
            warning: None,
            seeders: None,
            leechers: None,
            last_peers: 0,
            last_announce: None,
            next_announce: None,
            announcing: false,
        }
    }

    /// What the announce service knows of a tracker; `now` and `unix_now`
    /// are the same instant, to date its last announce.
    pub(crate) fn from_status(
        s: shoal_tracker::TrackerStatus,
        now: std::time::Instant,
        unix_now: u64,
    ) -> Self {
        TrackerInfo {
            url: s.url.to_string(),
            tier: s.tier,
            announces_ok: s.announces_ok,
            announces_failed: s.announces_failed,
            last_error: s.last_error,
            warning: s.warning,
            seeders: s.seeders,
            leechers: s.leechers,
            last_peers: s.last_peers as usize,
            last_announce: s
                .last_announce
                .map(|t| unix_now.saturating_sub(now.saturating_duration_since(t).as_secs())),
            // Rounded up: "in 0 seconds" only when it is due.
            next_announce: s.next_announce.map(|t| {
                let d = t.saturating_duration_since(now);
                unix_now + d.as_secs() + u64::from(d.subsec_nanos() > 0)
            }),
            announcing: s.in_flight,
        }
    }
}

/// Bytes verified of each file of `t`, given the verified pieces `have`
/// (pad files count as complete).
pub fn file_progress(t: &shoal_metainfo::Torrent, have: &Bitfield) -> Vec<u64> {
    let pl = t.piece_length().max(1);
    t.files()
        .iter()
        .map(|f| {
            if f.pad || f.length == 0 {
                return f.length;
            }
            let first = f.offset / pl;
            let last = (f.end() - 1) / pl;
            (first..=last)
                .filter(|&p| u32::try_from(p).is_ok_and(|p| have.get(p)))
                .map(|p| {
                    let start = (p * pl).max(f.offset);
                    let end = ((p + 1) * pl).min(f.end());
                    end - start
                })
                .sum()
        })
        .collect()
}

/// A readable client name from a peer id: BEP 20 Azureus style
/// (`-LT2080-` → `libtorrent 2.0.8`), the few other styles in use, else the
/// printable prefix.
pub fn client_name(peer_id: &shoal_base::PeerId) -> String {
    let peer_id = &peer_id.0;
    if peer_id[0] == b'-' && peer_id[7] == b'-' {
        let code = &peer_id[1..3];
        let v = &peer_id[3..7];
        let name = match code {
            b"LT" => "libtorrent",
            b"lt" => "libTorrent (rakshasa)",
            b"TR" => "Transmission",
            b"qB" => "qBittorrent",
            b"DE" => "Deluge",
            b"UT" => "µTorrent",
            b"AZ" => "Vuze",
            b"SH" => "shoal",
            b"RQ" | b"rQ" => "rqbit",
            b"BC" => "BitComet",
            b"KT" => "KTorrent",
            b"FD" => "Free Download Manager",
            _ => "",
        };
        let digits: String = v
            .iter()
            .map(|&c| {
                if c.is_ascii_alphanumeric() {
                    c as char
                } else {
                    '?'
                }
            })
            .collect();
        let version = if code == b"TR" && digits.len() == 4 {
            // Transmission: -TR300Z- is 3.00.
            format!("{}.{}", &digits[..1], &digits[1..3])
        } else {
            digits
                .trim_end_matches('0')
                .chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(".")
        };
        let tag = String::from_utf8_lossy(code).into_owned();
        return if name.is_empty() {
            format!("{tag} {version}")
        } else {
            format!("{name} {version}").trim_end().to_owned()
        };
    }
    if peer_id.starts_with(b"A2-") {
        let v: String = peer_id[3..]
            .iter()
            .take_while(|&&c| c.is_ascii_digit() || c == b'-')
            .map(|&c| if c == b'-' { '.' } else { c as char })
            .collect();
        return format!("aria2 {}", v.trim_matches('.'));
    }
    peer_id
        .iter()
        .take_while(|c| c.is_ascii_graphic())
        .take(8)
        .map(|&c| c as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> shoal_base::PeerId {
        let mut a = [b'x'; 20];
        a[..s.len()].copy_from_slice(s.as_bytes());
        shoal_base::PeerId(a)
    }

    #[test]
    fn client_names() {
        assert_eq!(client_name(&id("-LT2080-")), "libtorrent 2.0.8");
        assert_eq!(client_name(&id("-TR300Z-")), "Transmission 3.00");
        assert_eq!(client_name(&id("-SH0100-")), "shoal 0.1");
        assert_eq!(client_name(&id("A2-1-36-0-")), "aria2 1.36.0");
        assert_eq!(client_name(&id("-ZZ1234-")), "ZZ 1.2.3.4");
    }

    #[test]
    fn progress_of_each_file() {
        use shoal_metainfo::create::{CreateOptions, Version};
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("t");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 40_000]).unwrap();
        std::fs::write(root.join("b"), vec![2u8; 10_000]).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            version: Version::V1,
            ..CreateOptions::default()
        };
        let t = shoal_metainfo::Torrent::from_bytes(
            &shoal_metainfo::create(&root, &opts, &|_| {}).unwrap(),
        )
        .unwrap();
        // Pieces: [0,16384) [16384,32768) [32768,49152) [49152,50000)
        let mut have = Bitfield::new(4);
        have.set(0).unwrap();
        have.set(2).unwrap();
        let p = file_progress(&t, &have);
        assert_eq!(p, vec![16384 + (40_000 - 32768), 49152 - 40_000]);
    }
}
