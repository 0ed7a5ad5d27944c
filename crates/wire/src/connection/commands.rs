//! Commands from the engine to a [`PeerConnection`]: each checks the state,
//! updates it and queues the message. Errors leave the connection open.

use super::{CommandError, Event, OutChunk, PeerConnection, Phase};
use crate::extension::{ExtensionHandshake, UT_METADATA, UT_PEX};
use crate::message::{encode_piece_header, BlockRequest, HashRequest, Message, PieceIndex};
use crate::metadata::MetadataMessage;
use crate::pex::PexMessage;
use bytes::Bytes;
use std::time::Instant;

impl PeerConnection {
    fn connected(&self) -> Result<(), CommandError> {
        if self.phase == Phase::Connected {
            Ok(())
        } else {
            Err(CommandError::NotConnected)
        }
    }

    /// Requests a block. Checks the piece index and block length, that the
    /// peer has the piece (when known), choking (allowed-fast pieces pass),
    /// duplicates and the pipeline limit.
    pub fn send_request(&mut self, now: Instant, r: BlockRequest) -> Result<(), CommandError> {
        self.connected()?;
        if r.length == 0 || r.length > self.config.limits.max_block_len {
            return Err(CommandError::InvalidBlock {
                request: r,
                reason: "length zero or over the block limit",
            });
        }
        if self.num_pieces.is_some_and(|n| r.piece.0 >= n) {
            return Err(CommandError::InvalidBlock {
                request: r,
                reason: "piece index out of range",
            });
        }
        if self.their_pieces.is_some() && !self.peer_has(r.piece.0) {
            return Err(CommandError::PeerLacksPiece(r.piece.0));
        }
        if !self.can_request(r.piece.0) {
            return Err(CommandError::Choked);
        }
        if self.our_requests.iter().any(|(x, _)| *x == r) {
            return Err(CommandError::Duplicate);
        }
        if self.our_requests.len() as u32 >= self.pipeline_limit {
            return Err(CommandError::PipelineFull {
                limit: self.pipeline_limit,
            });
        }
        if self.our_requests.is_empty() {
            self.waiting_since = Some(now);
        }
        self.our_requests.push((r, now));
        self.queue(now, &Message::Request(r));
        Ok(())
    }

    /// Withdraws one of our requests; returns false when it was not outstanding.
    /// A block that still arrives for it is delivered.
    pub fn cancel(&mut self, now: Instant, r: BlockRequest) -> bool {
        if self.phase != Phase::Connected {
            return false;
        }
        let Some(pos) = self.our_requests.iter().position(|(x, _)| *x == r) else {
            return false;
        };
        self.our_requests.remove(pos);
        if self.our_requests.is_empty() {
            self.waiting_since = None;
        }
        self.remember_cancelled(r);
        self.queue(now, &Message::Cancel(r));
        true
    }

    /// Sets our pipeline limit (for example sized to the link); the peer's
    /// `reqq` still caps it. At least 1.
    pub fn set_max_outstanding_requests(&mut self, n: u32) {
        self.config.max_outstanding_requests = n.max(1);
        let reqq = self
            .their_ext
            .as_ref()
            .and_then(|h| h.reqq)
            .unwrap_or(super::DEFAULT_REQQ)
            .max(1);
        self.pipeline_limit = self.config.max_outstanding_requests.min(reqq);
    }

    /// Tells the peer whether we are interested (sends only on change).
    pub fn set_interested(&mut self, now: Instant, interested: bool) -> Result<(), CommandError> {
        self.connected()?;
        if self.am_interested != interested {
            self.am_interested = interested;
            let m = if interested {
                Message::Interested
            } else {
                Message::NotInterested
            };
            self.queue(now, &m);
        }
        Ok(())
    }

    /// Chokes the peer. Its queued requests are void: with the fast extension
    /// they are rejected, except allowed-fast pieces, which stay queued. Each
    /// dropped request is reported as [`Event::RequestCancelled`].
    pub fn choke(&mut self, now: Instant) -> Result<(), CommandError> {
        self.connected()?;
        if self.am_choking {
            return Ok(());
        }
        self.am_choking = true;
        self.queue(now, &Message::Choke);
        let fast = self.supports_fast();
        let requests = std::mem::take(&mut self.their_requests);
        for r in requests {
            if fast && self.allowed_fast_to_them.contains(&r.piece.0) {
                self.their_requests.push_back(r);
                continue;
            }
            if fast {
                self.queue(now, &Message::Reject(r));
            }
            self.events.push_back(Event::RequestCancelled(r));
        }
        Ok(())
    }

    /// Unchokes the peer (sends only on change).
    pub fn unchoke(&mut self, now: Instant) -> Result<(), CommandError> {
        self.connected()?;
        if self.am_choking {
            self.am_choking = false;
            self.queue(now, &Message::Unchoke);
        }
        Ok(())
    }

    /// Announces a newly verified piece. Before the handshake completes it is
    /// sent right after the initial pieces message.
    pub fn have(&mut self, now: Instant, piece: u32) -> Result<(), CommandError> {
        match self.phase {
            Phase::Connected => {
                self.queue(now, &Message::Have(PieceIndex(piece)));
                Ok(())
            }
            Phase::AwaitHandshake | Phase::AwaitPeerId => {
                let applied = self
                    .initial_pieces
                    .as_mut()
                    .is_some_and(|b| b.set(piece).is_ok());
                if !applied {
                    self.pre_connect_haves.push(piece);
                }
                Ok(())
            }
            Phase::Closed => Err(CommandError::NotConnected),
        }
    }

    /// Serves a block the peer requested. `data` is sent without copying.
    pub fn send_piece(
        &mut self,
        now: Instant,
        piece: u32,
        offset: u32,
        data: Bytes,
    ) -> Result<(), CommandError> {
        self.queue_piece_header(now, piece, offset, data.len() as u32)?;
        self.out_len += data.len();
        self.out.push_back(OutChunk::Bytes {
            data,
            payload: true,
        });
        Ok(())
    }

    /// Serves a block the peer requested whose `len` bytes of data the
    /// driver writes itself (from a file, say): the header is queued, then
    /// an [`OutChunk::Extern`] marks where the data goes. Such a connection
    /// must be drained with [`PeerConnection::poll_transmit_chunk`].
    pub fn send_piece_extern(
        &mut self,
        now: Instant,
        piece: u32,
        offset: u32,
        len: u32,
    ) -> Result<(), CommandError> {
        self.queue_piece_header(now, piece, offset, len)?;
        self.out_len += len as usize;
        self.out.push_back(OutChunk::Extern { len });
        Ok(())
    }

    /// Takes the peer's request for the block and queues its `piece`
    /// header, counting the block as sent.
    fn queue_piece_header(
        &mut self,
        now: Instant,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<(), CommandError> {
        self.connected()?;
        let r = BlockRequest {
            piece: PieceIndex(piece),
            offset,
            length,
        };
        let Some(pos) = self.their_requests.iter().position(|x| *x == r) else {
            return Err(CommandError::NotRequested(r));
        };
        self.their_requests.remove(pos);
        let before = self.send.len();
        encode_piece_header(&mut self.send, piece, offset, length);
        let header = self.send.len() - before;
        self.out_len += header;
        self.out.push_back(OutChunk::Bytes {
            data: self.send.split().freeze(),
            payload: false,
        });
        self.stats.bytes_sent += (header + length as usize) as u64;
        self.stats.payload_uploaded += u64::from(length);
        self.upload.record(now, u64::from(length));
        self.last_send = now;
        Ok(())
    }

    /// Declines a request the peer made (for example a piece we lack): sends a
    /// reject when the fast extension is on, else drops it silently.
    pub fn reject_request(&mut self, now: Instant, r: BlockRequest) -> Result<(), CommandError> {
        self.connected()?;
        let Some(pos) = self.their_requests.iter().position(|x| *x == r) else {
            return Err(CommandError::NotRequested(r));
        };
        self.their_requests.remove(pos);
        self.stats.peer_requests_refused += 1;
        if self.supports_fast() {
            self.queue(now, &Message::Reject(r));
        }
        Ok(())
    }

    /// Lets the peer request `piece` while choked (BEP 6 allowed fast).
    pub fn allow_fast(&mut self, now: Instant, piece: u32) -> Result<(), CommandError> {
        self.connected()?;
        if !self.supports_fast() {
            return Err(CommandError::NotSupported("the fast extension"));
        }
        if self.allowed_fast_to_them.insert(piece) {
            self.queue(now, &Message::AllowedFast(PieceIndex(piece)));
        }
        Ok(())
    }

    /// Suggests a piece (BEP 6).
    pub fn suggest(&mut self, now: Instant, piece: u32) -> Result<(), CommandError> {
        self.connected()?;
        if !self.supports_fast() {
            return Err(CommandError::NotSupported("the fast extension"));
        }
        self.queue(now, &Message::Suggest(PieceIndex(piece)));
        Ok(())
    }

    /// Tells the peer our DHT port (BEP 5), when it advertises DHT.
    pub fn send_port(&mut self, now: Instant, port: u16) -> Result<(), CommandError> {
        self.connected()?;
        if !self.their_reserved.dht() {
            return Err(CommandError::NotSupported("the DHT (BEP 5)"));
        }
        self.queue(now, &Message::Port(port));
        Ok(())
    }

    /// Sends an updated extension handshake (for example with `metadata_size`
    /// once known, or `upload_only`). Our receive ids in `m` must not change.
    pub fn send_extension_handshake(
        &mut self,
        now: Instant,
        h: ExtensionHandshake,
    ) -> Result<(), CommandError> {
        self.connected()?;
        if !self.supports_extensions() {
            return Err(CommandError::NotSupported("the extension protocol"));
        }
        let payload = h.encode();
        self.config.extension_handshake = h;
        self.queue(now, &Message::Extended { id: 0, payload });
        Ok(())
    }

    /// Sends an extended message under the peer's id for extension `name`.
    pub fn send_extended(
        &mut self,
        now: Instant,
        name: &'static str,
        payload: Bytes,
    ) -> Result<(), CommandError> {
        self.connected()?;
        let id = self
            .their_ext
            .as_ref()
            .and_then(|h| h.id_of(name))
            .ok_or(CommandError::NotSupported(name))?;
        self.queue(now, &Message::Extended { id, payload });
        Ok(())
    }

    /// Sends a `ut_metadata` message.
    pub fn send_metadata(&mut self, now: Instant, m: &MetadataMessage) -> Result<(), CommandError> {
        self.send_extended(now, UT_METADATA, m.encode())
    }

    /// Sends a `ut_pex` message.
    pub fn send_pex(&mut self, now: Instant, m: &PexMessage) -> Result<(), CommandError> {
        self.send_extended(now, UT_PEX, m.encode())
    }

    /// Sends a BEP 52 hash request. Needs the v2 bit on both sides, or
    /// [`crate::ConnectionConfig::v2_messages`] (libtorrent does not set the
    /// bit for v2-only torrents, whose truncated info-hash already means v2).
    pub fn send_hash_request(&mut self, now: Instant, h: HashRequest) -> Result<(), CommandError> {
        self.connected()?;
        if !self.common.v2() && !self.config.v2_messages {
            return Err(CommandError::NotSupported("BitTorrent v2 (BEP 52)"));
        }
        self.queue(now, &Message::HashRequest(h));
        Ok(())
    }

    /// Sends BEP 52 hashes answering `request` (allowed without the v2 bit).
    pub fn send_hashes(
        &mut self,
        now: Instant,
        request: HashRequest,
        hashes: Bytes,
    ) -> Result<(), CommandError> {
        self.send_v2(now, Message::Hashes { request, hashes })
    }

    /// Sends a BEP 52 hash reject (allowed without the v2 bit).
    pub fn send_hash_reject(&mut self, now: Instant, h: HashRequest) -> Result<(), CommandError> {
        self.send_v2(now, Message::HashReject(h))
    }

    /// Queues an answer to a peer's hash request: the peer asked, so it
    /// speaks v2 whatever its handshake bits say.
    fn send_v2(&mut self, now: Instant, m: Message) -> Result<(), CommandError> {
        self.connected()?;
        self.queue(now, &m);
        Ok(())
    }
}
