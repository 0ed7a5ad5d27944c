//! The session's one UDP port: a socket bound on the listen address's IP
//! and port (another port when that one is taken, with a warning: incoming
//! uTP then cannot reach us), run by the uTP driver, which keeps the uTP
//! datagrams (version 1, type ≤ 4: [`shoal_utp::is_utp`]) and hands every
//! other one here. [`bind`]'s demultiplexer passes DHT messages (bencoded
//! dictionaries: they start with `d`) to the DHT node and UDP tracker
//! replies (an action of 0 to 3: [`shoal_tracker::is_udp_tracker_reply`]) to
//! the tracker client, and drops the rest. The DHT node and the tracker
//! client send from the same socket, so trackers, DHT nodes and uTP peers
//! all see the one port we announce.
use bytes::Bytes;
use shoal_tracker::{is_udp_tracker_reply, SharedUdpSocket};
use shoal_utp::{Datagram, UtpSocket, UtpSocketConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Non-uTP datagrams queued for the DHT at most; more are dropped.
const DHT_QUEUE: usize = 1024;

/// Tracker replies queued for the tracker client at most; more are dropped.
const TRACKER_QUEUE: usize = 256;

/// What the DHT node gets of the shared socket.
pub(crate) struct DhtPort {
    /// The socket, for sending.
    pub socket: Arc<UdpSocket>,
    /// DHT datagrams received on it.
    pub inbound: mpsc::Receiver<(SocketAddr, Bytes)>,
}

impl std::fmt::Debug for DhtPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtPort").finish_non_exhaustive()
    }
}

/// Whether a non-uTP datagram is for the DHT (a KRPC message is a
/// bencoded dictionary).
pub(crate) fn is_dht(data: &[u8]) -> bool {
    data.first() == Some(&b'd')
}

/// Binds the session's UDP socket at `addr` (port 0 when that fails) and
/// starts uTP on it; returns the uTP socket, the DHT's share and the
/// tracker client's.
pub(crate) async fn bind(
    addr: SocketAddr,
    seed: Option<u64>,
) -> std::io::Result<(UtpSocket, DhtPort, SharedUdpSocket)> {
    let socket = match UdpSocket::bind(addr).await {
        Ok(s) => s,
        Err(e) if addr.port() != 0 => {
            tracing::warn!(%addr, error = %e,
                "UDP port taken: uTP and the DHT use another port (incoming uTP will not reach us)");
            UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await?
        }
        Err(e) => return Err(e),
    };
    let (other_tx, other_rx) = mpsc::channel(DHT_QUEUE);
    let cfg = UtpSocketConfig {
        seed,
        ..UtpSocketConfig::default()
    };
    let utp = UtpSocket::from_socket(socket, cfg, Some(other_tx));
    let (dht_tx, dht_rx) = mpsc::channel(DHT_QUEUE);
    let (tracker_tx, tracker_rx) = mpsc::channel(TRACKER_QUEUE);
    tokio::spawn(demux(other_rx, dht_tx, tracker_tx));
    Ok((
        utp.clone(),
        DhtPort {
            socket: utp.udp(),
            inbound: dht_rx,
        },
        SharedUdpSocket {
            socket: utp.udp(),
            inbound: tracker_rx,
        },
    ))
}

/// Passes DHT datagrams and tracker replies on; ends with the uTP driver.
async fn demux(
    mut other: mpsc::Receiver<Datagram>,
    dht: mpsc::Sender<(SocketAddr, Bytes)>,
    tracker: mpsc::Sender<(SocketAddr, Bytes)>,
) {
    while let Some(d) = other.recv().await {
        // A full queue drops, as a full socket buffer would.
        if is_dht(&d.data) {
            let _ = dht.try_send((d.from, d.data));
        } else if is_udp_tracker_reply(&d.data) {
            let _ = tracker.try_send((d.from, d.data));
        } else {
            tracing::trace!(from = %d.from, len = d.data.len(), "udp: unknown datagram dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dht_datagrams_reach_the_dht_and_utp_still_connects() {
        let (utp, mut dht, _tracker) = bind("127.0.0.1:0".parse().unwrap(), Some(1)).await.unwrap();
        let at = utp.local_addr();
        let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        probe.send_to(b"junk", at).await.unwrap();
        probe.send_to(b"d1:y1:qe", at).await.unwrap();
        let (from, data) =
            tokio::time::timeout(std::time::Duration::from_secs(5), dht.inbound.recv())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(from, probe.local_addr().unwrap());
        assert_eq!(&data[..], b"d1:y1:qe");
        // The DHT sends from the shared socket.
        dht.socket
            .send_to(b"d1:y1:re", probe.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, src) = probe.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], src), (&b"d1:y1:re"[..], at));
        // uTP on the same port.
        let other = UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
            .await
            .unwrap();
        let dial = tokio::spawn(async move { other.connect(at).await.map(|_| ()) });
        let (_s, _) = tokio::time::timeout(std::time::Duration::from_secs(5), utp.accept())
            .await
            .unwrap()
            .unwrap();
        dial.await.unwrap().unwrap();
    }
}
