//! One UDP socket per address family for every UDP tracker exchange of a
//! [`TrackerClient`](crate::TrackerClient), however many torrents announce:
//! each exchange is a [`UdpSession`]; a receiver task routes each reply to
//! the exchange that sent the request, by tracker address and transaction id.
//!
//! The socket of one family can instead be one the caller shares with other
//! protocols ([`SharedUdpSocket`]: a session's one UDP port, also used by the
//! DHT and uTP); its replies then arrive through the caller's demultiplexer.
//!
//! Invariants: a route lives exactly as long as its exchange (a guard
//! removes it, also when the caller's future is dropped); the receiver task
//! ends when the last clone of the mux is dropped.
use crate::error::{TrackerError, UdpTrackerError};
use crate::udp_codec::MAX_DATAGRAM;
use crate::udp_session::{UdpConfig, UdpOutcome, UdpSession};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, OnceCell};

/// Replies queued to one exchange before more are dropped (an exchange
/// expects one reply per request; a flood only loses datagrams).
const EXCHANGE_QUEUE: usize = 8;

/// Where replies go: (tracker address, transaction id) → the exchange.
type Routes = Arc<Mutex<HashMap<(SocketAddr, u32), mpsc::Sender<Vec<u8>>>>>;

/// A UDP socket the tracker client shares with other protocols: the client
/// sends its requests from `socket`, and its owner passes on `inbound` the
/// datagrams that are tracker replies (BEP 15 replies start with an action
/// of 0 to 3 as a big-endian `u32`, so they tell apart from KRPC and uTP).
#[derive(Debug)]
pub struct SharedUdpSocket {
    /// The socket, for sending.
    pub socket: Arc<UdpSocket>,
    /// Tracker replies received on it, with their source address.
    pub inbound: mpsc::Receiver<(SocketAddr, bytes::Bytes)>,
}

/// Whether `datagram` may be a BEP 15 reply (connect, announce, scrape or
/// error: an action of 0 to 3, then a transaction id).
pub fn is_udp_tracker_reply(datagram: &[u8]) -> bool {
    matches!(datagram, [0, 0, 0, 0..=3, _, _, _, _, ..])
}

/// The shared sockets of one tracker client. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct UdpMux {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    v4: OnceCell<Shared>,
    v6: OnceCell<Shared>,
}

/// One bound socket, its routes and its receiver task.
#[derive(Debug)]
struct Shared {
    socket: Arc<UdpSocket>,
    routes: Routes,
    receiver: tokio::task::AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Removes an exchange's routes when it ends.
struct Registered<'a> {
    routes: &'a Routes,
    keys: Vec<(SocketAddr, u32)>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut r = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        for k in &self.keys {
            r.remove(k);
        }
    }
}

impl UdpMux {
    /// A mux whose exchanges with trackers of `shared`'s address family go
    /// through `shared`; the other family binds its own socket when needed.
    pub(crate) fn with_shared(shared: SharedUdpSocket) -> std::io::Result<UdpMux> {
        let ipv6 = shared.socket.local_addr()?.is_ipv6();
        let routes = Routes::default();
        let receiver = tokio::spawn(receive_from(shared.inbound, routes.clone())).abort_handle();
        let cell = OnceCell::new_with(Some(Shared {
            socket: shared.socket,
            routes,
            receiver,
        }));
        let inner = if ipv6 {
            Inner {
                v4: OnceCell::new(),
                v6: cell,
            }
        } else {
            Inner {
                v4: cell,
                v6: OnceCell::new(),
            }
        };
        Ok(UdpMux {
            inner: Arc::new(inner),
        })
    }

    /// The local address of the socket for `family_of`'s address family,
    /// once an exchange has bound it.
    pub(crate) fn local_addr(&self, family_of: SocketAddr) -> Option<SocketAddr> {
        let cell = if family_of.is_ipv6() {
            &self.inner.v6
        } else {
            &self.inner.v4
        };
        cell.get().and_then(|s| s.socket.local_addr().ok())
    }

    /// Runs one exchange with the tracker at `addr` (`url` for errors):
    /// `start` begins it on a fresh session; returns its outcome.
    pub(crate) async fn exchange(
        &self,
        url: &str,
        addr: SocketAddr,
        config: UdpConfig,
        start: impl FnOnce(&mut UdpSession, Instant) -> Result<(), UdpTrackerError>,
    ) -> Result<UdpOutcome, TrackerError> {
        let io = |source| TrackerError::Io {
            url: url.to_owned(),
            source,
        };
        let udp = |source| TrackerError::Udp {
            url: url.to_owned(),
            source,
        };
        let shared = self.shared(addr.is_ipv6()).await.map_err(io)?;
        let mut session = UdpSession::new(config, addr.is_ipv6(), rand::random());
        start(&mut session, Instant::now()).map_err(udp)?;
        let (tx, mut rx) = mpsc::channel(EXCHANGE_QUEUE);
        let mut reg = Registered {
            routes: &shared.routes,
            keys: Vec::new(),
        };
        loop {
            while let Some(packet) = session.poll_transmit() {
                // Every BEP 15 request carries its transaction id at 12..16.
                if let Some(id) = packet.get(12..16) {
                    let key = (addr, u32::from_be_bytes([id[0], id[1], id[2], id[3]]));
                    if !reg.keys.contains(&key) {
                        reg.routes
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(key, tx.clone());
                        reg.keys.push(key);
                    }
                }
                if let Err(source) = shared.socket.send_to(&packet, addr).await {
                    session.cancel();
                    return Err(io(source));
                }
            }
            if let Some(result) = session.poll_result() {
                return result.map_err(udp);
            }
            let Some(deadline) = session.poll_timeout() else {
                // Not reachable: a running exchange always has a deadline.
                session.cancel();
                return Err(udp(UdpTrackerError::Busy));
            };
            tokio::select! {
                Some(d) = rx.recv() => session.handle_datagram(Instant::now(), &d),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    session.handle_timeout(Instant::now());
                }
            }
        }
    }

    async fn shared(&self, ipv6: bool) -> std::io::Result<&Shared> {
        let cell = if ipv6 { &self.inner.v6 } else { &self.inner.v4 };
        cell.get_or_try_init(|| async move {
            let bind: SocketAddr = if ipv6 {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let socket = Arc::new(UdpSocket::bind(bind).await?);
            let routes = Routes::default();
            let receiver = tokio::spawn(receive(socket.clone(), routes.clone())).abort_handle();
            Ok(Shared {
                socket,
                routes,
                receiver,
            })
        })
        .await
    }
}

/// Hands each datagram to the exchange waiting for its transaction id;
/// drops the rest (late replies, strangers).
async fn receive(socket: Arc<UdpSocket>, routes: Routes) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if let Some(d) = buf.get(..n) {
                    route(&routes, from, d);
                }
            }
            // ICMP errors and the like concern one exchange, whose
            // retransmission timer decides when to give up.
            Err(e) => {
                tracing::debug!(error = %e, "UDP tracker socket recv error");
                tokio::task::yield_now().await;
            }
        }
    }
}

/// As [`receive`], for the datagrams a shared socket's owner passes on;
/// ends when the owner drops its sender.
async fn receive_from(mut inbound: mpsc::Receiver<(SocketAddr, bytes::Bytes)>, routes: Routes) {
    while let Some((from, d)) = inbound.recv().await {
        route(&routes, from, &d);
    }
}

/// Hands datagram `d` from `from` to the exchange waiting for its
/// transaction id, if any (a full queue drops it, as a full socket would).
fn route(routes: &Routes, from: SocketAddr, d: &[u8]) {
    let Some(id) = d.get(4..8) else { return };
    let key = (from, u32::from_be_bytes([id[0], id[1], id[2], id[3]]));
    let to = routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .cloned();
    if let Some(to) = to {
        let _ = to.try_send(d.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AnnounceRequest;
    use crate::udp_codec::{Request, Response};
    use std::time::Duration;

    /// A fake tracker that answers every connect and announce and records
    /// the source address of each datagram.
    async fn fake_tracker() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                s2.lock().expect("lock").push(from);
                let resp = match Request::decode(&buf[..n]) {
                    Ok(Request::Connect { transaction_id }) => Response::Connect {
                        transaction_id,
                        connection_id: 7,
                    },
                    Ok(Request::Announce { transaction_id, .. }) => Response::Announce {
                        transaction_id,
                        interval: 60,
                        leechers: 1,
                        seeders: 2,
                        peers: vec![from],
                    },
                    _ => continue,
                };
                let _ = sock.send_to(&resp.encode(), from).await;
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn concurrent_announces_share_one_socket() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let (addr, seen) = fake_tracker().await;
            let url = format!("udp://{addr}");
            let mux = UdpMux::default();
            let mut jobs = tokio::task::JoinSet::new();
            for i in 0..50u8 {
                let (m, u) = (mux.clone(), url.clone());
                jobs.spawn(async move {
                    let req = AnnounceRequest::new([i; 20], [i; 20], 6881, 1);
                    m.exchange(&u, addr, UdpConfig::default(), |s, now| {
                        s.start_announce(now, req)
                    })
                    .await
                });
            }
            while let Some(r) = jobs.join_next().await {
                match r.expect("join").expect("announce") {
                    UdpOutcome::Announced(a) => assert_eq!(a.complete, Some(2)),
                    UdpOutcome::Scraped(_) => panic!("scrape outcome"),
                }
            }
            let ours = mux.local_addr(addr).expect("bound").port();
            let seen = seen.lock().expect("lock").clone();
            assert!(seen.len() >= 100, "{} datagrams", seen.len());
            assert!(seen.iter().all(|a| a.port() == ours), "{seen:?}");
            // Every route went with its exchange.
            let shared = mux.inner.v4.get().expect("v4");
            assert!(shared.routes.lock().expect("lock").is_empty());
        })
        .await
        .expect("bounded");
    }

    #[tokio::test]
    async fn a_shared_socket_carries_the_exchanges_of_its_family() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let (addr, seen) = fake_tracker().await;
            // The owner's socket and demultiplexer: tracker replies go to
            // the mux, anything else stays with the owner.
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
            let (tx, inbound) = mpsc::channel(16);
            let owner = socket.clone();
            let demux = tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = owner.recv_from(&mut buf).await {
                    if is_udp_tracker_reply(&buf[..n]) {
                        let _ = tx
                            .send((from, bytes::Bytes::copy_from_slice(&buf[..n])))
                            .await;
                    }
                }
            });
            let mux = UdpMux::with_shared(SharedUdpSocket {
                socket: socket.clone(),
                inbound,
            })
            .expect("mux");
            let ours = socket.local_addr().expect("addr");
            assert_eq!(mux.local_addr(addr), Some(ours));
            assert_eq!(mux.local_addr("[::1]:1".parse().expect("v6")), None);
            for i in 0..3u8 {
                let req = AnnounceRequest::new([i; 20], [i; 20], 6881, 1);
                let r = mux
                    .exchange("udp://t", addr, UdpConfig::default(), |s, now| {
                        s.start_announce(now, req)
                    })
                    .await
                    .expect("announce");
                assert!(matches!(r, UdpOutcome::Announced(_)), "{r:?}");
            }
            let seen = seen.lock().expect("lock").clone();
            assert!(seen.len() >= 4, "{seen:?}");
            assert!(seen.iter().all(|a| *a == ours), "{seen:?}");
            demux.abort();
        })
        .await
        .expect("bounded");
    }

    #[test]
    fn tracker_replies_tell_apart_from_krpc_and_utp() {
        assert!(is_udp_tracker_reply(&[0, 0, 0, 1, 9, 9, 9, 9, 0, 0]));
        assert!(is_udp_tracker_reply(&[0, 0, 0, 3, 1, 2, 3, 4]));
        assert!(!is_udp_tracker_reply(&[0, 0, 0, 4, 1, 2, 3, 4]));
        assert!(!is_udp_tracker_reply(&[0, 0, 0, 1, 1, 2, 3]));
        assert!(!is_udp_tracker_reply(b"d1:ad2:id20:"));
        // uTP: type << 4 | version 1.
        assert!(!is_udp_tracker_reply(&[0x41, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        assert!(!is_udp_tracker_reply(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    }

    #[tokio::test]
    async fn a_silent_tracker_times_out_and_leaves_no_route() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            let addr = silent.local_addr().expect("addr");
            let mux = UdpMux::default();
            let config = UdpConfig {
                base_timeout: Duration::from_millis(50),
                max_retries: 1,
                ..UdpConfig::default()
            };
            let req = AnnounceRequest::new([1; 20], [1; 20], 6881, 1);
            let r = mux
                .exchange("udp://x", addr, config, |s, now| s.start_announce(now, req))
                .await;
            assert!(matches!(r, Err(TrackerError::Udp { .. })), "{r:?}");
            let shared = mux.inner.v4.get().expect("v4");
            assert!(shared.routes.lock().expect("lock").is_empty());
        })
        .await
        .expect("bounded");
    }
}
