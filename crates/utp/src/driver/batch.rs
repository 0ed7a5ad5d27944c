//! Batched datagram I/O of the driver: receive many datagrams per system
//! call (`recvmmsg`, and on Linux UDP GRO: one buffer carries a run of
//! same-sized datagrams from one sender) and, when enabled, send runs of
//! same-sized datagrams to one address in one call (UDP GSO), through
//! `quinn-udp`.
//!
//! At a few hundred thousand packets a second one system call per packet
//! is most of the driver's time; on loopback GSO + GRO move up to 64 KiB per
//! call in each direction. A peer that does not enable GRO (libtorrent)
//! still gets ordinary datagrams: the kernel cuts the GSO run at its socket,
//! but the whole run lands in its socket buffer at once, and on loopback
//! libtorrent then loses packets and slows down (shoal -> libtorrent fell
//! from ~42 to ~19 MiB/s with 44-datagram runs, ~32 with 4). GSO runs
//! therefore go only to peers that said in the handshake that they read
//! with GRO (`Transmit::coalesce`, [`crate::packet::BIT_COALESCED_READS`]).
//!
//! Where `quinn-udp` cannot set the socket up, or batching is switched off
//! ([`super::UtpSocketConfig::batch_io`]), the plain one-datagram calls of
//! tokio's socket are used instead.
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Receive buffers per system call.
const RECV_SLOTS: usize = 32;
/// Size of a receive buffer with GRO: the largest UDP payload, which a
/// coalesced run never exceeds.
const GRO_BUF: usize = 64 * 1024;
/// Size of a receive buffer without GRO (a larger datagram is truncated).
const PLAIN_BUF: usize = 8192;
/// Most bytes one GSO send carries (the UDP length field's limit, less
/// headers, rounded down).
const MAX_GSO_BYTES: usize = 64_000;

/// The socket's I/O strategy.
pub(super) struct UdpIo {
    /// `None`: plain one-datagram calls.
    state: Option<quinn_udp::UdpSocketState>,
    /// Most datagrams per GSO send (see [`super::UtpSocketConfig::gso_segments`]).
    gso_cap: usize,
}

/// One received datagram: where it is in [`RecvBufs::data`], and its sender.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received {
    pub start: usize,
    pub len: usize,
    pub from: SocketAddr,
}

/// Receive buffers and what the last receive put in them.
pub(super) struct RecvBufs {
    data: Vec<u8>,
    slot: usize,
    metas: Vec<quinn_udp::RecvMeta>,
    /// Datagrams of the last receive, in order.
    pub received: Vec<Received>,
}

impl RecvBufs {
    /// The bytes of datagram `r`.
    pub fn get(&self, r: &Received) -> &[u8] {
        &self.data[r.start..r.start + r.len]
    }
}

impl UdpIo {
    /// Sets `socket` up for batched I/O when `batch` and the platform allow;
    /// a send carries at most `gso_cap` datagrams.
    pub fn new(socket: &UdpSocket, batch: bool, gso_cap: usize) -> UdpIo {
        let state = if batch {
            match quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(socket)) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::debug!(error = %e, "utp: no batched UDP I/O, one datagram per call");
                    None
                }
            }
        } else {
            None
        };
        UdpIo {
            state,
            gso_cap: gso_cap.max(1),
        }
    }

    /// Whether batched calls are in use.
    #[cfg(test)]
    pub fn is_batched(&self) -> bool {
        self.state.is_some()
    }

    /// Most datagrams one send may carry.
    pub fn max_segments(&self) -> usize {
        self.state
            .as_ref()
            .map_or(1, |s| s.max_gso_segments().min(self.gso_cap))
    }

    /// Whether receives coalesce runs of datagrams (UDP GRO).
    pub fn reads_coalesced(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.gro_segments() > 1)
    }

    /// Buffers sized for this socket's receives.
    pub fn recv_bufs(&self) -> RecvBufs {
        let slot = match &self.state {
            Some(s) if s.gro_segments() > 1 => GRO_BUF,
            _ => PLAIN_BUF,
        };
        RecvBufs {
            data: vec![0; slot * RECV_SLOTS],
            slot,
            metas: vec![quinn_udp::RecvMeta::default(); RECV_SLOTS],
            received: Vec::with_capacity(RECV_SLOTS),
        }
    }

    /// Reads what the socket holds, without waiting, into `bufs.received`
    /// (empty when nothing was there).
    pub fn recv(&self, socket: &UdpSocket, bufs: &mut RecvBufs) {
        bufs.received.clear();
        match &self.state {
            Some(state) => {
                let RecvBufs {
                    data,
                    slot,
                    metas,
                    received,
                } = bufs;
                let mut slices: Vec<IoSliceMut<'_>> =
                    data.chunks_mut(*slot).map(IoSliceMut::new).collect();
                let r = socket.try_io(Interest::READABLE, || {
                    state.recv(quinn_udp::UdpSockRef::from(socket), &mut slices, metas)
                });
                let n = match r {
                    Ok(n) => n,
                    Err(e) => {
                        // WouldBlock: nothing left. Anything else is an ICMP
                        // error of an earlier send (port unreachable): the
                        // next wake-up reads on.
                        if e.kind() != io::ErrorKind::WouldBlock {
                            tracing::trace!(error = %e, "utp: receive error");
                        }
                        return;
                    }
                };
                for (i, m) in metas.iter().take(n).enumerate() {
                    split_gro(i * *slot, m.len, m.stride, m.addr, received);
                }
            }
            None => {
                for i in 0..RECV_SLOTS {
                    let start = i * bufs.slot;
                    let buf = &mut bufs.data[start..start + bufs.slot];
                    match socket.try_recv_from(buf) {
                        Ok((len, from)) => bufs.received.push(Received { start, len, from }),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // ICMP errors surface here (port unreachable): skip.
                        Err(_) => continue,
                    }
                }
            }
        }
    }

    /// Sends `data`, `segment` bytes a datagram (the last may be shorter),
    /// to `to`, waiting while the socket buffer is full. `data` holds at
    /// most [`UdpIo::max_segments`] datagrams.
    pub async fn send(
        &self,
        socket: &UdpSocket,
        to: SocketAddr,
        data: &[u8],
        segment: usize,
    ) -> io::Result<()> {
        let Some(state) = &self.state else {
            for d in data.chunks(segment.max(1)) {
                send_plain(socket, to, d).await?;
            }
            return Ok(());
        };
        let transmit = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: (data.len() > segment).then_some(segment),
            src_ip: None,
        };
        loop {
            let r = socket.try_io(Interest::WRITABLE, || {
                state.try_send(quinn_udp::UdpSockRef::from(socket), &transmit)
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
                r => return r,
            }
        }
    }

    /// Most bytes one send of `segment`-byte datagrams may carry.
    pub fn max_send_bytes(&self, segment: usize) -> usize {
        let segs = self
            .max_segments()
            .min(MAX_GSO_BYTES / segment.max(1))
            .max(1);
        segs * segment
    }
}

/// Sends one datagram with a plain call, waiting while the buffer is full.
pub(super) async fn send_plain(socket: &UdpSocket, to: SocketAddr, data: &[u8]) -> io::Result<()> {
    loop {
        match socket.try_send_to(data, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            r => return r.map(|_| ()),
        }
    }
}

/// Cuts one receive buffer (`len` bytes at `start`) into its datagrams,
/// `stride` bytes apart (GRO; one datagram when `stride` is 0 or `len`).
fn split_gro(start: usize, len: usize, stride: usize, from: SocketAddr, out: &mut Vec<Received>) {
    let stride = if stride == 0 { len } else { stride };
    let mut at = 0;
    while at < len {
        let n = stride.min(len - at);
        out.push(Received {
            start: start + at,
            len: n,
            from,
        });
        at += n;
    }
}

/// Groups a batch of datagrams for sending: consecutive ones to the same
/// address, all of one size but the last (which may be shorter), at most
/// `max_bytes(size)` bytes together, become one send, when their peer reads
/// coalesced datagrams (else each goes alone). `items` are `(offset in the
/// batch buffer, length, address, the peer reads coalesced)`, contiguous in
/// order; `f` gets the index range of each group.
pub(super) fn group_runs(
    items: &[(usize, usize, SocketAddr, bool)],
    max_bytes: impl Fn(usize) -> usize,
    mut f: impl FnMut(std::ops::Range<usize>),
) {
    let mut i = 0;
    while i < items.len() {
        let (_, size, to, coalesce) = items[i];
        let limit = if coalesce {
            max_bytes(size).max(size)
        } else {
            size
        };
        let mut j = i + 1;
        let mut bytes = size;
        while j < items.len() {
            let (_, len, addr, also) = items[j];
            if addr != to || !also || len > size || bytes + len > limit {
                break;
            }
            bytes += len;
            j += 1;
            if len < size {
                // A shorter datagram ends the run.
                break;
            }
        }
        f(i..j);
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn runs(items: &[(usize, SocketAddr)], max: usize) -> Vec<std::ops::Range<usize>> {
        runs_of(items, max, |_| true)
    }

    fn runs_of(
        items: &[(usize, SocketAddr)],
        max: usize,
        coalesce: impl Fn(SocketAddr) -> bool,
    ) -> Vec<std::ops::Range<usize>> {
        let mut at = 0;
        let items: Vec<_> = items
            .iter()
            .map(|&(len, a)| {
                let it = (at, len, a, coalesce(a));
                at += len;
                it
            })
            .collect();
        let mut out = Vec::new();
        group_runs(&items, |_| max, |r| out.push(r));
        out
    }

    #[test]
    fn runs_of_one_size_to_one_address_go_together() {
        let (a, b) = (addr(1), addr(2));
        let items = [
            (1000, a),
            (1000, a),
            (1000, a),
            (400, a), // a short one ends the run
            (1000, a),
            (1000, b), // another address starts a new one
            (1000, b),
            (1200, b), // a larger one too
            (20, b),
        ];
        assert_eq!(
            runs(&items, 64_000),
            vec![0..4, 4..5, 5..7, 7..9],
            "grouped by address and size"
        );
    }

    #[test]
    fn only_peers_that_read_coalesced_get_runs() {
        let (a, b) = (addr(1), addr(2));
        let items = [(1000, a), (1000, a), (1000, b), (1000, b), (1000, b)];
        assert_eq!(
            runs_of(&items, 64_000, |x| x == b),
            vec![0..1, 1..2, 2..5],
            "a peer that reads one datagram per call gets one per send"
        );
    }

    #[test]
    fn runs_are_capped_in_bytes() {
        let a = addr(1);
        let items = vec![(1000, a); 7];
        assert_eq!(runs(&items, 3000), vec![0..3, 3..6, 6..7]);
        // Without GSO every datagram goes alone.
        assert_eq!(runs(&items, 1000).len(), 7);
    }

    #[test]
    fn gro_buffers_are_cut_at_the_stride() {
        let mut out = Vec::new();
        split_gro(100, 2500, 1000, addr(1), &mut out);
        let cuts: Vec<_> = out.iter().map(|r| (r.start, r.len)).collect();
        assert_eq!(cuts, vec![(100, 1000), (1100, 1000), (2100, 500)]);
        out.clear();
        split_gro(0, 700, 0, addr(1), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len, 700);
    }

    async fn pair(batch: bool) -> (UdpSocket, UdpIo, UdpSocket, UdpIo) {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (ia, ib) = (UdpIo::new(&a, batch, 64), UdpIo::new(&b, batch, 64));
        (a, ia, b, ib)
    }

    /// Sends 3 full datagrams and a short one in one call; the receiver gets
    /// them back as four, whichever way it reads.
    async fn round_trip(batch_send: bool, batch_recv: bool) {
        let (a, _, b, ib) = pair(batch_recv).await;
        let ia = UdpIo::new(&a, batch_send, 64);
        assert_eq!(ia.is_batched(), batch_send);
        let data: Vec<u8> = (0..3500u32).map(|i| (i % 251) as u8).collect();
        ia.send(&a, b.local_addr().unwrap(), &data, 1000)
            .await
            .unwrap();
        let mut bufs = ib.recv_bufs();
        let mut got = Vec::new();
        while got.len() < 4 {
            b.readable().await.unwrap();
            ib.recv(&b, &mut bufs);
            for r in &bufs.received {
                assert_eq!(r.from, a.local_addr().unwrap());
                got.push(bufs.get(r).to_vec());
            }
        }
        let lens: Vec<_> = got.iter().map(|d| d.len()).collect();
        assert_eq!(lens, vec![1000, 1000, 1000, 500]);
        assert_eq!(got.concat(), data);
    }

    #[tokio::test]
    async fn batched_and_plain_calls_interoperate() {
        round_trip(true, true).await;
        round_trip(true, false).await;
        round_trip(false, true).await;
        round_trip(false, false).await;
    }
}
