//! A generic hook for BEP 10 extensions the engine itself does not speak
//! (a search protocol, for instance): the session advertises the names of
//! [`crate::SessionConfig::extensions`] in the extension handshake of every
//! peer connection, delivers what peers send under those names to one
//! session-wide channel, and sends payloads to a given peer.
//!
//! The engine knows nothing of the payloads: layers above it (shoal-search)
//! bring the protocol, and dependencies keep pointing down.
//!
//! **Peers.** An [`ExtPeer`] is one connection: the peer's address and the
//! torrent it was opened for. A peer connected to us on two torrents is two
//! [`ExtPeer`]s. That keeps the hook free of cross-torrent bookkeeping (which
//! connection would carry a message, what happens when one of two closes)
//! and costs at most a duplicate message, which protocols that flood
//! already suppress by message id.
//!
//! **Bounds.** At most [`MAX_EXTENSIONS`] names; payloads of at most
//! [`MAX_PAYLOAD`] bytes both ways; the inbound channel holds
//! [`INBOX`] messages and each connection's outbound queue
//! [`PEER_OUTBOX`]: when either is full the message is dropped (these
//! extensions are best effort; a slow consumer must not stall a
//! connection). A message from a peer under a name it did not enable in
//! its own handshake is dropped.
use bytes::Bytes;
use shoal_wire::extension::{ExtensionHandshake, MAX_NAME_LEN, UT_METADATA, UT_PEX};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Most extra extension names a session advertises.
pub const MAX_EXTENSIONS: usize = 8;
/// Largest payload delivered or sent.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Messages the session-wide inbound channel holds.
pub const INBOX: usize = 256;
/// Messages queued to one connection.
pub const PEER_OUTBOX: usize = 64;
/// Bytes waiting for a connection's socket above which its extension
/// queue is not drained (so it fills, and further sends fail as `Full`).
pub(crate) const MAX_SEND_BACKLOG: usize = 256 * 1024;
/// Our message id of the first extra extension; the next ones follow. Well
/// above the ids shoal uses for `ut_pex` (1) and `ut_metadata` (3).
const FIRST_LOCAL_ID: u8 = 20;

/// One peer connection that may carry extension messages: the peer's
/// address and the (v1 or truncated v2) info-hash of the torrent the
/// connection belongs to. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtPeer {
    /// The peer's address (its listen address for connections we opened).
    pub addr: SocketAddr,
    /// The torrent of the connection.
    pub info_hash: shoal_base::InfoHash,
}

impl std::fmt::Display for ExtPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.addr, hex_prefix(&self.info_hash))
    }
}

fn hex_prefix(h: &shoal_base::InfoHash) -> String {
    h.0[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A message a peer sent under one of our extra extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtMessage {
    /// Who sent it.
    pub peer: ExtPeer,
    /// The extension's name.
    pub name: &'static str,
    /// The payload (at most [`MAX_PAYLOAD`] bytes).
    pub payload: Bytes,
}

/// Why [`Extensions::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtSendError {
    /// No live connection to this peer has the extension.
    #[error("{peer}: not connected, or it did not enable {name}")]
    NotNegotiated {
        /// The peer.
        peer: ExtPeer,
        /// The extension.
        name: String,
    },
    /// The payload is larger than [`MAX_PAYLOAD`].
    #[error("extension payload of {0} bytes (at most {MAX_PAYLOAD})")]
    TooLarge(usize),
    /// The connection's queue is full (or it just closed).
    #[error("{0}: its extension queue is full")]
    Full(ExtPeer),
}

/// A payload to send, with its extension's name.
type Outgoing = (&'static str, Bytes);

/// What the hub knows of one connection that enabled some of our names.
struct PeerEntry {
    /// Which link registered it (a newer connection may take the key).
    serial: u64,
    /// Our names the peer enabled.
    names: Vec<&'static str>,
    tx: mpsc::Sender<Outgoing>,
}

/// The session's side: names, the inbound channel, the live connections.
pub(crate) struct ExtHub {
    names: Vec<&'static str>,
    inbox: mpsc::Sender<ExtMessage>,
    inbox_rx: Mutex<Option<mpsc::Receiver<ExtMessage>>>,
    /// Held only to copy a sender out or to insert/remove, never across
    /// an await.
    peers: Mutex<HashMap<ExtPeer, PeerEntry>>,
    serial: AtomicU64,
}

impl ExtHub {
    /// A hub for `names` (deduplicated; names shoal handles itself, empty
    /// or over-long ones, and those past [`MAX_EXTENSIONS`] are left out),
    /// or `None` when none remains.
    pub(crate) fn new(names: &[&'static str]) -> Option<Arc<ExtHub>> {
        let mut ok: Vec<&'static str> = Vec::new();
        for &n in names {
            if n.is_empty()
                || n.len() > MAX_NAME_LEN
                || n == UT_PEX
                || n == UT_METADATA
                || ok.contains(&n)
            {
                tracing::warn!(name = n, "extension name left out");
                continue;
            }
            if ok.len() == MAX_EXTENSIONS {
                tracing::warn!(name = n, "too many extension names");
                break;
            }
            ok.push(n);
        }
        if ok.is_empty() {
            return None;
        }
        let (inbox, rx) = mpsc::channel(INBOX);
        Some(Arc::new(ExtHub {
            names: ok,
            inbox,
            inbox_rx: Mutex::new(Some(rx)),
            peers: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(0),
        }))
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<ExtPeer, PeerEntry>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Our message id for `names[i]`.
    fn local_id(i: usize) -> u8 {
        // i < MAX_EXTENSIONS, so this never saturates.
        FIRST_LOCAL_ID.saturating_add(u8::try_from(i).unwrap_or(u8::MAX))
    }

    /// Adds our names, at our ids, to the handshake we send.
    pub(crate) fn advertise(&self, h: &mut ExtensionHandshake) {
        for (i, n) in self.names.iter().enumerate() {
            h.m.insert((*n).to_string(), Self::local_id(i));
        }
    }

    /// The per-connection side of a new connection to `addr` on torrent
    /// `info_hash`.
    pub(crate) fn link(
        self: &Arc<Self>,
        addr: SocketAddr,
        info_hash: shoal_base::InfoHash,
    ) -> ExtLink {
        ExtLink {
            hub: self.clone(),
            peer: ExtPeer { addr, info_hash },
            serial: self.serial.fetch_add(1, Ordering::Relaxed),
            chan: None,
        }
    }
}

/// The handle callers use: see [`crate::Session::extensions`].
#[derive(Clone)]
pub struct Extensions {
    hub: Arc<ExtHub>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("names", &self.hub.names)
            .finish_non_exhaustive()
    }
}

impl Extensions {
    pub(crate) fn new(hub: Arc<ExtHub>) -> Self {
        Extensions { hub }
    }

    /// The names the session advertises.
    pub fn names(&self) -> &[&'static str] {
        &self.hub.names
    }

    /// The stream of inbound messages, all names and peers together. There
    /// is one: the first call gets it, later ones `None`.
    pub fn take_messages(&self) -> Option<mpsc::Receiver<ExtMessage>> {
        self.hub
            .inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Connected peers that enabled `name`, in a stable order.
    pub fn peers(&self, name: &str) -> Vec<ExtPeer> {
        let mut v: Vec<ExtPeer> = self
            .hub
            .peers()
            .iter()
            .filter(|(_, e)| e.names.contains(&name))
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    }

    /// Queues `payload` to `peer` under extension `name`. Does not wait:
    /// a full queue is an error, the message is not sent.
    pub fn send(&self, peer: ExtPeer, name: &str, payload: Bytes) -> Result<(), ExtSendError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(ExtSendError::TooLarge(payload.len()));
        }
        let found = self.hub.peers().get(&peer).and_then(|e| {
            let n = e.names.iter().find(|n| **n == name)?;
            Some((*n, e.tx.clone()))
        });
        let Some((name, tx)) = found else {
            return Err(ExtSendError::NotNegotiated {
                peer,
                name: name.to_string(),
            });
        };
        tx.try_send((name, payload))
            .map_err(|_| ExtSendError::Full(peer))
    }
}

/// One connection's side, owned by its peer task; unregisters itself when
/// dropped (the connection ended).
pub(crate) struct ExtLink {
    hub: Arc<ExtHub>,
    peer: ExtPeer,
    serial: u64,
    /// The outbound queue, made when the peer first enables one of our
    /// names (the sender half is copied into the hub).
    chan: Option<(mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>)>,
}

impl ExtLink {
    /// The peer's (first or updated) extension handshake: registers the
    /// connection under the names it enabled, or unregisters it.
    pub(crate) fn on_handshake(&mut self, theirs: &ExtensionHandshake) {
        let names: Vec<&'static str> = self
            .hub
            .names
            .iter()
            .copied()
            .filter(|n| theirs.id_of(n).is_some())
            .collect();
        if names.is_empty() {
            self.unregister();
            return;
        }
        let tx = self
            .chan
            .get_or_insert_with(|| mpsc::channel(PEER_OUTBOX))
            .0
            .clone();
        let entry = PeerEntry {
            serial: self.serial,
            names,
            tx,
        };
        self.hub.peers().insert(self.peer, entry);
    }

    /// An extended message under our id `id`: delivered when `id` is one
    /// of ours, the peer enabled that name too and the payload is within
    /// bounds; else dropped. Never waits (a full inbox drops it).
    pub(crate) fn on_message(&self, id: u8, payload: Bytes, theirs: Option<&ExtensionHandshake>) {
        let Some(i) = id.checked_sub(FIRST_LOCAL_ID).map(usize::from) else {
            return;
        };
        let Some(&name) = self.hub.names.get(i) else {
            return;
        };
        if theirs.and_then(|h| h.id_of(name)).is_none() {
            tracing::debug!(peer = %self.peer, name, "extension message without negotiation dropped");
            return;
        }
        if payload.len() > MAX_PAYLOAD {
            tracing::debug!(peer = %self.peer, name, len = payload.len(), "extension message too large");
            return;
        }
        let m = ExtMessage {
            peer: self.peer,
            name,
            payload,
        };
        if self.hub.inbox.try_send(m).is_err() {
            tracing::debug!(peer = %self.peer, name, "extension inbox full; message dropped");
        }
    }

    /// The next payload to send to the peer; pending while there is none
    /// (or the connection never enabled our names).
    pub(crate) async fn next_send(link: &mut Option<ExtLink>) -> Outgoing {
        let Some((_, rx)) = link.as_mut().and_then(|l| l.chan.as_mut()) else {
            return std::future::pending().await;
        };
        // The link holds a sender itself, so `recv` does not end while it
        // lives; pend rather than spin if it ever did.
        match rx.recv().await {
            Some(m) => m,
            None => std::future::pending().await,
        }
    }

    fn unregister(&self) {
        let mut peers = self.hub.peers();
        if peers
            .get(&self.peer)
            .is_some_and(|e| e.serial == self.serial)
        {
            peers.remove(&self.peer);
        }
    }
}

impl Drop for ExtLink {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theirs(names: &[(&str, u8)]) -> ExtensionHandshake {
        let mut h = ExtensionHandshake::default();
        for (n, i) in names {
            h.m.insert((*n).to_string(), *i);
        }
        h
    }

    #[tokio::test]
    async fn registers_delivers_and_unregisters() {
        let hub = ExtHub::new(&["x_a", "x_b", "ut_pex", "x_a"]).unwrap();
        assert_eq!(hub.names, ["x_a", "x_b"]);
        let ext = Extensions::new(hub.clone());
        let mut rx = ext.take_messages().unwrap();
        assert!(ext.take_messages().is_none());
        let mut mine = ExtensionHandshake::default();
        hub.advertise(&mut mine);
        assert_eq!(mine.id_of("x_a"), Some(FIRST_LOCAL_ID));
        assert_eq!(mine.id_of("x_b"), Some(FIRST_LOCAL_ID + 1));

        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut link = Some(hub.link(addr, shoal_base::InfoHash([7; 20])));
        let peer = ExtPeer {
            addr,
            info_hash: shoal_base::InfoHash([7; 20]),
        };
        // Not negotiated yet: nothing to send to, nothing delivered.
        assert!(matches!(
            ext.send(peer, "x_a", Bytes::from_static(b"hi")),
            Err(ExtSendError::NotNegotiated { .. })
        ));
        let h = theirs(&[("x_a", 9)]);
        let l = link.as_mut().unwrap();
        l.on_handshake(&h);
        assert_eq!(ext.peers("x_a"), [peer]);
        assert!(ext.peers("x_b").is_empty());
        // Ours under x_b, which the peer did not enable: dropped.
        l.on_message(FIRST_LOCAL_ID + 1, Bytes::from_static(b"no"), Some(&h));
        l.on_message(FIRST_LOCAL_ID, Bytes::from_static(b"yes"), Some(&h));
        l.on_message(
            FIRST_LOCAL_ID,
            Bytes::from(vec![0; MAX_PAYLOAD + 1]),
            Some(&h),
        );
        l.on_message(3, Bytes::from_static(b"not ours"), Some(&h));
        let m = rx.try_recv().unwrap();
        assert_eq!((m.peer, m.name, &m.payload[..]), (peer, "x_a", &b"yes"[..]));
        assert!(rx.try_recv().is_err());

        ext.send(peer, "x_a", Bytes::from_static(b"out")).unwrap();
        assert!(matches!(
            ext.send(peer, "x_b", Bytes::from_static(b"out")),
            Err(ExtSendError::NotNegotiated { .. })
        ));
        assert!(matches!(
            ext.send(peer, "x_a", Bytes::from(vec![0; MAX_PAYLOAD + 1])),
            Err(ExtSendError::TooLarge(_))
        ));
        let (n, p) = ExtLink::next_send(&mut link).await;
        assert_eq!((n, &p[..]), ("x_a", &b"out"[..]));
        // The queue is bounded.
        for _ in 0..PEER_OUTBOX {
            ext.send(peer, "x_a", Bytes::new()).unwrap();
        }
        assert_eq!(
            ext.send(peer, "x_a", Bytes::new()),
            Err(ExtSendError::Full(peer))
        );

        // A newer connection under the same key survives the old one's end.
        let mut newer = hub.link(addr, shoal_base::InfoHash([7; 20]));
        newer.on_handshake(&h);
        drop(link);
        assert_eq!(ext.peers("x_a"), [peer]);
        drop(newer);
        assert!(ext.peers("x_a").is_empty());
    }

    #[test]
    fn nothing_to_advertise_is_no_hub() {
        assert!(ExtHub::new(&[]).is_none());
        assert!(ExtHub::new(&["ut_metadata", ""]).is_none());
    }
}
