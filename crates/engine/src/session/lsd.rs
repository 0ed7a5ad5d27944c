//! Local Service Discovery (BEP 14) in the session: one task owns the
//! multicast sockets (IPv4 239.192.152.143:6771, IPv6 [ff15::efc0:988f]:6771
//! when the host allows) and the sans-IO [`shoal_lsd::Lsd`], which decides
//! what to announce when (rate-limited: one datagram a minute, each torrent
//! every 5 minutes), ignores our own announces by their cookie and never
//! touches a private torrent. Peers heard go to their torrent as `AddPeers`,
//! as the DHT's do. Torrents join and leave with the DHT scheduler's calls
//! (a torrent the DHT would not announce is not announced here either).
//!
//! LSD does not start on a session that listens on a loopback address: the
//! LAN could not reach it.
use crate::torrent::TorrentCmd;
use crate::TorrentId;
use shoal_lsd::packet::{Group, GROUP_V4, GROUP_V6, PORT};
use shoal_lsd::{Event, Lsd, LsdConfig};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest datagram read (announces are far smaller; see
/// [`shoal_lsd::MAX_DATAGRAM`]).
const RECV_BUF: usize = 2048;

enum LsdCmd {
    Set {
        id: TorrentId,
        info_hash: shoal_base::InfoHash,
        private: bool,
        sink: crate::torrent::CmdSender<TorrentCmd>,
    },
    Remove(TorrentId),
}

/// The session's LSD task. See the module docs.
pub(crate) struct SessionLsd {
    cmds: mpsc::UnboundedSender<LsdCmd>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SessionLsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLsd").finish_non_exhaustive()
    }
}

impl SessionLsd {
    /// Joins the groups on the interface of `listen`'s IP (any, when
    /// unspecified) and announces `listen`'s port. `Ok(None)` for a
    /// loopback address.
    pub(crate) fn start(listen: SocketAddr, cfg: LsdConfig) -> io::Result<Option<SessionLsd>> {
        if listen.ip().is_loopback() {
            return Ok(None);
        }
        let (v4, v6) = match listen.ip() {
            IpAddr::V4(ip) => (Some(socket_v4(ip)?), None),
            IpAddr::V6(ip) if ip.is_unspecified() => {
                // A dual-stack listener: both groups, the IPv4 one required.
                let v6 = socket_v6()
                    .map_err(|e| tracing::debug!(error = %e, "lsd: no IPv6 group"))
                    .ok();
                (Some(socket_v4(Ipv4Addr::UNSPECIFIED)?), v6)
            }
            IpAddr::V6(_) => (None, Some(socket_v6()?)),
        };
        let cfg = LsdConfig {
            v4: v4.is_some(),
            v6: v6.is_some(),
            ..cfg
        };
        let mut lsd = Lsd::new(cfg, rand::random());
        lsd.set_port(listen.port());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(lsd, v4, v6, rx));
        Ok(Some(SessionLsd { cmds: tx, task }))
    }

    /// Announces a torrent (`private` ones never are) and sends the peers
    /// heard for it to `sink`.
    pub(crate) fn set(
        &self,
        id: TorrentId,
        info_hash: shoal_base::InfoHash,
        private: bool,
        sink: crate::torrent::CmdSender<TorrentCmd>,
    ) {
        let _ = self.cmds.send(LsdCmd::Set {
            id,
            info_hash,
            private,
            sink,
        });
    }

    /// Stops announcing a torrent.
    pub(crate) fn remove(&self, id: TorrentId) {
        let _ = self.cmds.send(LsdCmd::Remove(id));
    }

    /// Stops the task.
    pub(crate) fn shutdown(&self) {
        self.task.abort();
    }
}

fn socket_v4(iface: Ipv4Addr) -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    s.join_multicast_v4(&GROUP_V4, &iface)?;
    if !iface.is_unspecified() {
        s.set_multicast_if_v4(&iface)?;
    }
    s.set_multicast_ttl_v4(1)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

fn socket_v6() -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
    s.set_only_v6(true)?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, PORT)).into())?;
    s.join_multicast_v6(&GROUP_V6, 0)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

async fn recv(s: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn run(
    mut lsd: Lsd,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    mut cmds: mpsc::UnboundedReceiver<LsdCmd>,
) {
    let start = Instant::now();
    let mut torrents: HashMap<
        TorrentId,
        (shoal_base::InfoHash, crate::torrent::CmdSender<TorrentCmd>),
    > = HashMap::new();
    let mut buf4 = vec![0u8; RECV_BUF];
    let mut buf6 = vec![0u8; RECV_BUF];
    loop {
        let deadline = lsd
            .poll_timeout()
            .map(|t| start + t)
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            c = cmds.recv() => match c {
                None => return,
                Some(LsdCmd::Set { id, info_hash, private, sink }) => {
                    if let Some((old, _)) = torrents.insert(id, (info_hash, sink)) {
                        if old != info_hash {
                            lsd.remove_torrent(&old);
                        }
                    }
                    if !lsd.contains(&info_hash) {
                        lsd.add_torrent(info_hash, private, start.elapsed());
                    }
                }
                Some(LsdCmd::Remove(id)) => {
                    if let Some((h, _)) = torrents.remove(&id) {
                        lsd.remove_torrent(&h);
                    }
                }
            },
            r = recv(v4.as_ref(), &mut buf4) => {
                if let Ok((n, from)) = r {
                    lsd.handle_datagram(start.elapsed(), from, &buf4[..n]);
                }
            }
            r = recv(v6.as_ref(), &mut buf6) => {
                if let Ok((n, from)) = r {
                    lsd.handle_datagram(start.elapsed(), from, &buf6[..n]);
                }
            }
            _ = tokio::time::sleep_until(deadline) => lsd.handle_timeout(start.elapsed()),
        }
        while let Some(t) = lsd.poll_transmit() {
            let s = match t.group {
                Group::V4 => v4.as_ref(),
                Group::V6 => v6.as_ref(),
            };
            if let Some(s) = s {
                if let Err(e) = s.send_to(&t.payload, t.group.addr()).await {
                    tracing::debug!(group = ?t.group, error = %e, "lsd: send failed");
                }
            }
        }
        while let Some(ev) = lsd.poll_event() {
            let Event::Peer { info_hash, addr } = ev else {
                continue;
            };
            tracing::debug!(peer = %addr, "lsd: peer heard");
            for (h, sink) in torrents.values() {
                if *h == info_hash {
                    let _ = sink.try_send(TorrentCmd::AddPeers(vec![addr]));
                }
            }
        }
    }
}
