//! The session's TCP listener: reads each incoming connection's handshake
//! prefix (bounded in time and in number) and hands the stream to the
//! torrent it names — by v1 hash or truncated v2 hash, so a hybrid torrent
//! is found by either. Connections beyond the session's limit are refused.
//! A connection that does not start with a plain BitTorrent handshake is
//! taken as MSE/PE (when the session's policy allows it): the torrent is
//! found across the registry by its obfuscated hash, and the stream handed
//! over decrypts and encrypts from then on. Incoming uTP connections (from
//! the session's uTP socket) take the same path; with TCP off, incoming TCP
//! connections are closed at once.
use super::registry::Registry;
use super::utp::Transport;
use super::SessionCtx;
use crate::torrent::{Incoming, PeerStream, TorrentCmd};
use shoal_wire::mse::io::accept;
use shoal_wire::mse::{Encryption, SkeyLookup};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Most connections reading their handshake at once.
const MAX_HANDSHAKING: usize = 64;
/// Time allowed for an incoming connection's first 48 bytes (after the
/// MSE handshake, if any, which has its own deadline).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    ctx: Arc<SessionCtx>,
    cancel: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    let mut utp_open = ctx.utp.is_some();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            acc = listener.accept() => match acc {
                Ok((stream, addr)) => {
                    if !ctx.config.enable_tcp {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    route(&mut handshakes, stream, addr, Transport::Tcp, &registry, &ctx);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            acc = accept_utp(&ctx), if utp_open => match acc {
                Ok((stream, addr)) => {
                    if let Some(u) = &ctx.utp {
                        u.learn(addr);
                    }
                    route(&mut handshakes, stream, addr, Transport::Utp, &registry, &ctx);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "uTP accept failed; no more incoming uTP");
                    utp_open = false;
                }
            },
        }
    }
    handshakes.abort_all();
}

async fn accept_utp(ctx: &SessionCtx) -> std::io::Result<(shoal_utp::UtpStream, SocketAddr)> {
    match &ctx.utp {
        Some(u) => u.socket.accept().await,
        None => std::future::pending().await,
    }
}

/// Reads an incoming connection's handshake (MSE or plain) in a task of
/// `handshakes` and hands it to the torrent it names.
fn route<S: PeerStream>(
    handshakes: &mut JoinSet<()>,
    stream: S,
    addr: SocketAddr,
    transport: Transport,
    registry: &Arc<Registry>,
    ctx: &SessionCtx,
) {
    if handshakes.len() >= MAX_HANDSHAKING {
        return;
    }
    let Ok(permit) = ctx.conns.total.clone().try_acquire_owned() else {
        tracing::debug!(peer = %addr, "session connection limit: refused");
        return;
    };
    let registry = registry.clone();
    let policy = ctx.config.encryption.accept();
    let rng = ctx.torrent_rng();
    handshakes.spawn(async move {
        let lookup: Arc<dyn SkeyLookup + Send + Sync> = registry.clone();
        let r =
            tokio::time::timeout(HANDSHAKE_TIMEOUT * 2, accept(stream, &policy, lookup, rng)).await;
        let acc = match r {
            Ok(Ok(acc)) => acc,
            Ok(Err(e)) => {
                tracing::debug!(peer = %addr, error = %e, "incoming handshake");
                return;
            }
            Err(_) => return,
        };
        let Some(h) = registry.find(&acc.prefix.info_hash.0) else {
            tracing::debug!(peer = %addr, "incoming connection for an unknown torrent");
            return;
        };
        let encryption = acc.encryption();
        if encryption != Encryption::None {
            tracing::debug!(peer = %addr, ?encryption, ?transport, "incoming MSE connection");
        }
        // The permit is the connection's until its task ends.
        drop(permit);
        let _ = h.tx.try_send(TorrentCmd::Incoming(Box::new(Incoming {
            stream: Box::new(acc.stream),
            prefix: acc.prefix,
            addr,
            encrypted: encryption == Encryption::Rc4,
            utp: transport == Transport::Utp,
        })));
    });
}
