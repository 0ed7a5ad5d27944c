//! Dialing a peer: uTP or TCP, MSE/PE or plain, with the fallbacks
//! between them, then driving the connection ([`PeerTask::connect_and_run`]).
use super::*;

/// The uTP connect timeout after the peer's host refused our TCP dial.
const REFUSED_UTP_TIMEOUT: Duration = Duration::from_millis(1500);

impl PeerTask {
    /// Connects to `addr` by the transports of `dial`, in order (each
    /// connect bounded in time, holding one of the session's half-open
    /// permits meanwhile), then runs: over MSE when `mse` is given — our
    /// BitTorrent handshake travels as its initial payload — and, when that
    /// fails and `fallback` allows, over a new plain connection. When a
    /// transport fails before the peer's handshake arrived, the next one is
    /// tried. Says which transport carried the connection.
    pub async fn connect_and_run(
        mut self,
        dial: &Dial,
        half_open: Arc<tokio::sync::Semaphore>,
        mse: Option<MseConfig>,
        fallback: bool,
        mut rng: StdRng,
    ) -> Dialed {
        // A fresh outgoing connection's first transmit is its handshake.
        let ia = self.conn.poll_transmit().unwrap_or_default();
        let mut dialed = Dialed::default();
        let mut reason = PeerClose::ConnectTimeout;
        let mut dial = dial.clone();
        for t in dial.order.clone() {
            let r = self
                .attempt(t, &dial, &half_open, mse.clone(), fallback, &ia, &mut rng)
                .await;
            match r {
                Ok(r) => {
                    dialed.worked = Some(t);
                    reason = r;
                    break;
                }
                Err(PeerClose::Cancelled) => {
                    reason = PeerClose::Cancelled;
                    break;
                }
                Err(r) => {
                    tracing::debug!(peer = %self.addr, transport = ?t, reason = %r, "connecting failed");
                    dialed.utp_failed |= t == Transport::Utp;
                    if t == Transport::Tcp && r.is_refused() {
                        // The host answered (a reset): a uTP peer there
                        // answers our SYN within a round trip, so a lost
                        // SYN gets one resend, not three (a client that is
                        // still starting is dialled again after the backoff).
                        dial.utp_timeout = dial.utp_timeout.min(REFUSED_UTP_TIMEOUT);
                    }
                    reason = r;
                }
            }
        }
        self.close(reason).await;
        dialed
    }

    /// One connection over `t`: `Ok` with the reason it closed once the
    /// peer's handshake arrived, else `Err` (the next transport may be
    /// tried).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        t: Transport,
        dial: &Dial,
        half_open: &Arc<tokio::sync::Semaphore>,
        mse: Option<MseConfig>,
        fallback: bool,
        ia: &[u8],
        rng: &mut StdRng,
    ) -> Result<PeerClose, PeerClose> {
        let stream = self.connect(t, dial, half_open).await?;
        self.utp = t == Transport::Utp;
        let _ = self
            .to_torrent
            .send(ToTorrent::Peer(self.key, PeerMsg::TcpConnected))
            .await;
        let reason = match mse {
            None => self.drive_plain(stream, ia).await?,
            Some(cfg) => {
                let hs =
                    MseHandshake::initiator(cfg, self.conn.info_hash().0, ia, rng, Instant::now());
                let cancel = self.cancel.clone();
                let r = tokio::select! {
                    _ = cancel.cancelled() => return Err(PeerClose::Cancelled),
                    r = shoal_wire::mse::io::run(stream, hs, &[]) => r,
                };
                match r {
                    Ok(s) => {
                        self.encrypted = s.encryption() == Encryption::Rc4;
                        tracing::debug!(peer = %self.addr, encryption = ?s.encryption(), transport = ?t, "outgoing MSE connection");
                        self.drive(s).await
                    }
                    Err(e) if fallback => {
                        tracing::debug!(peer = %self.addr, error = %e, "MSE failed; reconnecting in plaintext");
                        let stream = self.connect(t, dial, half_open).await?;
                        self.drive_plain(stream, ia).await?
                    }
                    Err(e) => return Err(PeerClose::Mse(Box::new(e))),
                }
            }
        };
        if self.conn.peer_id().is_some() || matches!(reason, PeerClose::Cancelled) {
            Ok(reason)
        } else {
            Err(reason)
        }
    }

    /// Runs a plain connection whose handshake `ia` is still to be sent.
    async fn drive_plain(
        &mut self,
        mut stream: Box<dyn PeerStream>,
        ia: &[u8],
    ) -> Result<PeerClose, PeerClose> {
        if stream.write_all(ia).await.is_err() {
            return Err(PeerClose::WriteClosed);
        }
        Ok(self.drive(stream).await)
    }

    /// One connection to the peer over `t`, bounded in time and by a
    /// half-open permit, or cancelled.
    async fn connect(
        &self,
        t: Transport,
        dial: &Dial,
        half_open: &Arc<tokio::sync::Semaphore>,
    ) -> Result<Box<dyn PeerStream>, PeerClose> {
        let addr = self.addr;
        let connect = async {
            let _permit = half_open.clone().acquire_owned().await;
            match (t, &dial.utp) {
                (Transport::Utp, Some(u)) => {
                    tokio::time::timeout(dial.utp_timeout, u.connect(addr))
                        .await
                        .map(|r| r.map(|s| Box::new(s) as Box<dyn PeerStream>))
                }
                _ => tokio::time::timeout(dial.tcp_timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map(|r| {
                        r.map(|s| {
                            let _ = s.set_nodelay(true);
                            Box::new(s) as Box<dyn PeerStream>
                        })
                    }),
            }
        };
        let r = tokio::select! {
            _ = self.cancel.cancelled() => return Err(PeerClose::Cancelled),
            r = connect => r,
        };
        match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(PeerClose::Connect(e)),
            Err(_) => Err(PeerClose::ConnectTimeout),
        }
    }
}
