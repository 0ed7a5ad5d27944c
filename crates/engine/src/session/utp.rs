//! uTP in the session: the uTP socket (on the session's UDP port, see
//! [`super::udp`]), what we know of which peers speak uTP, and the choice
//! of transport for an outgoing connection.
//!
//! libtorrent assumes every peer speaks uTP and dials it first, retrying
//! over TCP at once when the uTP connect fails. shoal dials TCP first
//! (most peers listen on TCP, and a uTP connect to a peer that does not
//! answer costs seconds) unless the peer is known to speak uTP: it reached
//! us over uTP, a uTP connection to it worked before, or peer exchange
//! flagged it (BEP 11 flag `0x04`). Either way, when the first transport
//! fails before the peer's BitTorrent handshake (refused, timed out, or
//! closed at once, as libtorrent does with incoming TCP off), the other one
//! is tried once, at once. With TCP off every connection is uTP; with uTP
//! off, TCP.
use shoal_utp::UtpSocket;
use shoal_wire::{PexFlags, PexMessage};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Addresses remembered as speaking uTP, at most (oldest forgotten first).
const MAX_KNOWN: usize = 4096;
/// Longest a uTP connect may take (libtorrent allows 3 s; our SYN is sent
/// three times, 1 s, 2 s and 4 s apart).
const UTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// A peer connection's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP.
    Tcp,
    /// uTP (BEP 29) on the session's UDP socket.
    Utp,
}

/// The session's uTP side. See the module docs.
pub(crate) struct SessionUtp {
    /// The endpoint on the session's UDP port.
    pub socket: UtpSocket,
    known: Mutex<Known>,
}

impl std::fmt::Debug for SessionUtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUtp")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Known {
    set: HashSet<SocketAddr>,
    order: VecDeque<SocketAddr>,
}

impl SessionUtp {
    pub(crate) fn new(socket: UtpSocket) -> Self {
        SessionUtp {
            socket,
            known: Mutex::new(Known::default()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `addr` speaks uTP.
    pub(crate) fn learn(&self, addr: SocketAddr) {
        let mut k = self.known();
        if k.set.insert(addr) {
            k.order.push_back(addr);
            while k.order.len() > MAX_KNOWN {
                if let Some(old) = k.order.pop_front() {
                    k.set.remove(&old);
                }
            }
        }
    }

    /// A uTP connect to `addr` failed.
    pub(crate) fn forget(&self, addr: SocketAddr) {
        let mut k = self.known();
        if k.set.remove(&addr) {
            k.order.retain(|a| *a != addr);
        }
    }

    /// Whether `addr` is known to speak uTP.
    pub(crate) fn speaks_utp(&self, addr: SocketAddr) -> bool {
        self.known().set.contains(&addr)
    }

    /// Remembers how a dial went, for the peer's next one.
    pub(crate) fn note(&self, addr: SocketAddr, d: Dialed) {
        if d.worked == Some(Transport::Utp) {
            self.learn(addr);
        } else if d.utp_failed {
            self.forget(addr);
        }
    }

    /// Learns the peers a `ut_pex` message flags as speaking uTP.
    pub(crate) fn learn_pex(&self, m: &PexMessage) {
        for (addr, flags) in &m.added {
            if flags.0 & PexFlags::UTP != 0 {
                self.learn(*addr);
            }
        }
    }
}

/// How a dial went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Dialed {
    /// The transport the peer's handshake came over, if any.
    pub worked: Option<Transport>,
    /// A uTP attempt failed before the handshake.
    pub utp_failed: bool,
}

/// How to reach one peer: the transports to try, in order, and how.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    /// Transports to try, in order (never empty).
    pub order: Vec<Transport>,
    /// The uTP socket (when uTP is on).
    pub utp: Option<UtpSocket>,
    /// Time allowed for a TCP connect.
    pub tcp_timeout: Duration,
    /// Time allowed for a uTP connect.
    pub utp_timeout: Duration,
}

impl Dial {
    /// The dial plan for `addr` given the session's settings.
    pub(crate) fn plan(
        tcp: bool,
        utp: Option<&SessionUtp>,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Dial {
        let order = match (tcp, utp) {
            (true, Some(u)) if u.speaks_utp(addr) => vec![Transport::Utp, Transport::Tcp],
            (true, Some(_)) => vec![Transport::Tcp, Transport::Utp],
            (false, Some(_)) => vec![Transport::Utp],
            (_, None) => vec![Transport::Tcp],
        };
        Dial {
            order,
            utp: utp.map(|u| u.socket.clone()),
            tcp_timeout: connect_timeout,
            utp_timeout: connect_timeout.min(UTP_CONNECT_TIMEOUT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_utp::UtpSocketConfig;

    #[tokio::test]
    async fn dial_order_follows_what_we_know() {
        let s = UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
            .await
            .unwrap();
        let u = SessionUtp::new(s);
        let a: SocketAddr = "127.0.0.2:6881".parse().unwrap();
        let t = Duration::from_secs(10);
        let order = |tcp, u: Option<&SessionUtp>| Dial::plan(tcp, u, a, t).order;
        assert_eq!(order(true, Some(&u)), [Transport::Tcp, Transport::Utp]);
        assert_eq!(order(false, Some(&u)), [Transport::Utp]);
        assert_eq!(order(true, None), [Transport::Tcp]);
        assert_eq!(order(false, None), [Transport::Tcp]);
        u.learn_pex(&PexMessage {
            added: vec![(a, PexFlags(PexFlags::UTP | PexFlags::SEED))],
            dropped: vec![],
        });
        assert_eq!(order(true, Some(&u)), [Transport::Utp, Transport::Tcp]);
        u.forget(a);
        assert_eq!(order(true, Some(&u)), [Transport::Tcp, Transport::Utp]);
        // A peer without the flag is not learnt.
        u.learn_pex(&PexMessage {
            added: vec![(a, PexFlags(PexFlags::SEED))],
            dropped: vec![],
        });
        assert!(!u.speaks_utp(a));
        assert_eq!(
            Dial::plan(true, Some(&u), a, t).utp_timeout,
            UTP_CONNECT_TIMEOUT
        );
    }

    #[tokio::test]
    async fn known_set_is_bounded() {
        let s = UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
            .await
            .unwrap();
        let u = SessionUtp::new(s);
        let addr = |i: usize| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000));
        for i in 0..MAX_KNOWN + 10 {
            u.learn(addr(i));
        }
        assert!(!u.speaks_utp(addr(0)));
        assert!(u.speaks_utp(addr(MAX_KNOWN + 9)));
        assert_eq!(u.known().set.len(), MAX_KNOWN);
    }
}
