//! Settings of a session and of a torrent being added.
use super::dht::DhtSettings;
use crate::layout::FileSelection;
use crate::persist::TorrentLimits;
use shoal_metainfo::{InfoHashes, Magnet, Torrent};
use shoal_wire::mse::io::AcceptPolicy;
use shoal_wire::mse::{CryptoSet, MseConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of a [`super::Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// TCP address to accept peers on (port 0 picks one; see
    /// [`super::Session::local_addr`]).
    pub listen: SocketAddr,
    /// Session-wide upload limit in bytes/s (`None`: unlimited).
    pub max_upload_rate: Option<u64>,
    /// Session-wide download limit in bytes/s (`None`: unlimited).
    pub max_download_rate: Option<u64>,
    /// Most connections per torrent.
    pub max_peers_per_torrent: usize,
    /// Most connections of the whole session.
    pub max_connections: usize,
    /// Most outgoing connections being set up at once, whole session.
    pub max_half_open: usize,
    /// Time allowed to set up an outgoing TCP connection.
    pub connect_timeout: Duration,
    /// Regular upload slots per torrent (plus one optimistic). The default,
    /// 4 (as the original BitTorrent client), gives each unchoked peer a
    /// quarter of the upload, so a piece reaches it, and it can pass the
    /// piece on, twice as soon as with 8 (the swarm simulator's 1 seed +
    /// 100 leechers finishes 4–7% sooner).
    pub upload_slots: usize,
    /// Super-seed (BEP 16) a torrent that starts complete, until another
    /// seed connects: each peer is shown a few pieces at a time, the ones
    /// the swarm has least, so an initial seed sends every piece once
    /// before it sends any twice. Off by default, as in libtorrent,
    /// qBittorrent and Transmission: a leecher that wants only some files
    /// waits (up to 10 s per connection) before it is told everything. The
    /// swarm simulator measures the initial-seed case with it on.
    pub super_seed: bool,
    /// Time between two saves of a downloading torrent's resume data (its
    /// verified pieces). After a crash, at most about this much transfer is
    /// fetched again. A save waits for the pieces' writes to finish, so a
    /// piece is never recorded before its data is on disk.
    pub resume_interval: Duration,
    /// Bytes of block data (received, being hashed) and upload reads in
    /// memory at once, all torrents together (the disk pool's budget).
    pub disk_budget: usize,
    /// Disk threads (hashing and I/O), all torrents together.
    pub disk_threads: usize,
    /// Bytes of whole pieces kept in memory for uploads, all torrents together.
    pub read_cache: usize,
    /// Open file handles, all torrents together.
    pub max_open_files: usize,
    /// Seed for the session's RNG (peer id, tie-breaking); random when `None`.
    pub seed: Option<u64>,
    /// Time between two BEP 11 `ut_pex` messages to one peer (60 s; BEP 11
    /// allows no less against real clients, tests shorten it). Incoming
    /// messages are honoured at most every 3/4 of it.
    pub pex_interval: Duration,
    /// Write downloaded data with `O_DIRECT` where the filesystem allows it,
    /// bypassing the page cache (see `shoal_storage::StorageOptions`).
    /// Default `true`; `false` writes everything through the page cache.
    pub direct_io: bool,
    /// Reserve each file's space when it is first written (`fallocate`):
    /// direct writes into reserved space run two at a time on ext4. Where
    /// the space is not there, the file is sparse and the download goes as
    /// far as the disk allows. Default `true`; `false` makes sparse files
    /// (see `shoal_storage::Allocation`).
    pub preallocate: bool,
    /// Run a DHT node (`None`: no DHT at all).
    pub dht: Option<DhtSettings>,
    /// Downloads transferring at once; the others wait in
    /// [`crate::TorrentState::Queued`] by queue position (`None`: no limit).
    pub max_active_downloads: Option<usize>,
    /// Stop seeding a torrent at this ratio (its own goal wins).
    pub seed_ratio: Option<f64>,
    /// Stop seeding a torrent idle (nothing uploaded) this long.
    pub seed_idle: Option<Duration>,
    /// MSE/PE, the encryption of peer connections.
    pub encryption: EncryptionPolicy,
    /// uTP (BEP 29) on the listen port's UDP socket, shared with the DHT:
    /// incoming uTP connections are accepted; outgoing ones go over TCP
    /// first unless the peer is known to speak uTP, and over the other
    /// transport when the first fails. Default `true`.
    pub enable_utp: bool,
    /// TCP connections, incoming and outgoing. Default `true`. With both
    /// transports off, outgoing connections use TCP anyway.
    pub enable_tcp: bool,
    /// Local Service Discovery (BEP 14): announce public torrents by
    /// multicast on the LAN and connect to the peers heard. Default `true`,
    /// as in libtorrent; never on a loopback listen address.
    pub enable_lsd: bool,
    /// Extra BEP 10 extensions to advertise on every peer connection; what
    /// peers send under them is reached through
    /// [`super::Session::extensions`] (see [`crate::extension`]). Names are
    /// protocol constants, hence `'static`. Default none.
    pub extensions: Vec<&'static str>,
    /// A seeding or paused torrent with no connection and nothing to do
    /// goes dormant after this long without peers (at once when it never
    /// had one since it started): its transfer state, storage and the
    /// large part of its task are dropped until a peer, a command, an
    /// announce or a reader needs them. `None`: never. Default 30 s.
    pub dormant_after: Option<Duration>,
}

/// Whether peer connections use MSE/PE (message stream encryption).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EncryptionPolicy {
    /// Outgoing connections try MSE (offering RC4 and plaintext) and fall
    /// back to a plain connection when it fails; incoming ones may be
    /// either. As responder, plaintext is selected when the peer offers
    /// both, as libtorrent does (`prefer_rc4` off): the handshake is
    /// obfuscated, the payload is not, and RC4 is not paid for (it caps a
    /// loopback transfer at about 170 MiB/s against 450 plain). `Require`
    /// encrypts the payload.
    #[default]
    Prefer,
    /// MSE with RC4 both ways; plain connections are refused.
    Require,
    /// Plain BitTorrent only; incoming MSE is refused.
    Disable,
}

impl EncryptionPolicy {
    /// Time allowed for one MSE handshake.
    const MSE_TIMEOUT: Duration = Duration::from_secs(10);

    /// The MSE settings of an outgoing connection (`None`: plaintext only).
    pub(crate) fn outgoing(self) -> Option<MseConfig> {
        let allowed = match self {
            EncryptionPolicy::Prefer => CryptoSet::BOTH,
            EncryptionPolicy::Require => CryptoSet::RC4,
            EncryptionPolicy::Disable => return None,
        };
        Some(MseConfig {
            allowed,
            timeout: Self::MSE_TIMEOUT,
            ..MseConfig::default()
        })
    }

    /// What the listener accepts.
    pub(crate) fn accept(self) -> AcceptPolicy {
        AcceptPolicy {
            plaintext: self != EncryptionPolicy::Require,
            mse: self.outgoing().map(|c| MseConfig {
                prefer_rc4: false,
                ..c
            }),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            max_upload_rate: None,
            max_download_rate: None,
            max_peers_per_torrent: 50,
            max_connections: 500,
            max_half_open: 50,
            connect_timeout: Duration::from_secs(10),
            upload_slots: 4,
            super_seed: false,
            resume_interval: Duration::from_secs(1),
            disk_budget: 16 << 20,
            disk_threads: 2,
            read_cache: 8 << 20,
            max_open_files: 512,
            seed: None,
            pex_interval: Duration::from_secs(60),
            direct_io: true,
            preallocate: true,
            dht: None,
            max_active_downloads: None,
            seed_ratio: None,
            seed_idle: None,
            encryption: EncryptionPolicy::Prefer,
            enable_utp: true,
            enable_tcp: true,
            enable_lsd: true,
            extensions: Vec::new(),
            dormant_after: Some(Duration::from_secs(30)),
        }
    }
}

/// What a torrent is added from.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// A parsed .torrent.
    Torrent(Arc<Torrent>),
    /// A magnet link: the metadata is fetched from peers (BEP 9).
    Magnet(Box<Magnet>),
    /// A bare info-hash: as a magnet link with nothing but the hash.
    InfoHash(InfoHashes),
}

impl TorrentSource {
    /// The info-hashes it names.
    pub fn info_hashes(&self) -> InfoHashes {
        match self {
            TorrentSource::Torrent(t) => t.info_hashes(),
            TorrentSource::Magnet(m) => m.info_hashes(),
            TorrentSource::InfoHash(h) => *h,
        }
    }
}

/// What to add to a session.
#[derive(Debug, Clone)]
pub struct AddTorrentParams {
    /// The torrent, magnet link or info-hash.
    pub source: TorrentSource,
    /// Directory the torrent's files live under (libtorrent's save path).
    pub save_path: PathBuf,
    /// Which files to fetch (for a magnet link: applied once the metadata
    /// arrived; the magnet's `so` when [`FileSelection::All`]).
    pub selection: FileSelection,
    /// Peers to connect to at once.
    pub peers: Vec<SocketAddr>,
    /// Trackers to use besides the torrent's own (each its own tier).
    pub extra_trackers: Vec<String>,
    /// Add it paused.
    pub paused: bool,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// Per-torrent limits.
    pub limits: TorrentLimits,
    /// Give up a magnet link whose metadata no peer gave in this time (the
    /// torrent goes to the error state); `None`: keep trying.
    pub metadata_timeout: Option<Duration>,
}

impl AddTorrentParams {
    /// Every file of `source` under `save_path`, started at once.
    pub fn new(source: TorrentSource, save_path: impl Into<PathBuf>) -> Self {
        AddTorrentParams {
            source,
            save_path: save_path.into(),
            selection: FileSelection::All,
            peers: Vec::new(),
            extra_trackers: Vec::new(),
            paused: false,
            labels: Vec::new(),
            limits: TorrentLimits::default(),
            metadata_timeout: None,
        }
    }

    /// A parsed torrent under `save_path`.
    pub fn torrent(t: Arc<Torrent>, save_path: impl Into<PathBuf>) -> Self {
        Self::new(TorrentSource::Torrent(t), save_path)
    }
}

#[cfg(test)]
mod tests {
    use super::EncryptionPolicy::{self, Prefer, Require};
    use rand::SeedableRng;
    use shoal_wire::mse::{crypto, Crypto, MseHandshake};
    use std::sync::Arc;
    use std::time::Instant;

    /// The payload crypto an MSE handshake settles on when a session with
    /// policy `dialer` dials one with policy `listener`.
    fn negotiated(dialer: EncryptionPolicy, listener: EncryptionPolicy) -> Crypto {
        let skey = [7u8; 20];
        let req2 = crypto::req2(&skey);
        let lookup = Arc::new(move |h: &[u8; 20]| (*h == req2).then_some(skey));
        let now = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let out_cfg = dialer.outgoing().expect("MSE outgoing");
        let in_cfg = listener.accept().mse.expect("MSE accepted");
        let mut a = MseHandshake::initiator(out_cfg, skey, b"\x13BitTorrent", &mut rng, now);
        let mut b = MseHandshake::responder(in_cfg, lookup, &mut rng, now);
        for _ in 0..10 {
            if let Some(bytes) = a.poll_transmit() {
                b.handle_bytes(now, &bytes).unwrap();
            }
            if let Some(bytes) = b.poll_transmit() {
                a.handle_bytes(now, &bytes).unwrap();
            }
        }
        let (oa, ob) = (a.take_outcome().unwrap(), b.take_outcome().unwrap());
        assert_eq!(oa.crypto, ob.crypto);
        oa.crypto
    }

    #[test]
    fn prefer_picks_plaintext_when_offered_both_and_require_gets_rc4() {
        // Two default sessions: an obfuscated handshake, a plaintext payload
        // (libtorrent's choice; RC4 would cost 2.6x the CPU on loopback).
        assert_eq!(negotiated(Prefer, Prefer), Crypto::Plaintext);
        // Either side requiring encryption gets RC4.
        assert_eq!(negotiated(Require, Prefer), Crypto::Rc4);
        assert_eq!(negotiated(Prefer, Require), Crypto::Rc4);
        assert_eq!(negotiated(Require, Require), Crypto::Rc4);
    }
}
