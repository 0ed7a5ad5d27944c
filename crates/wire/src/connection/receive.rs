//! Incoming messages: how each one the peer sends changes a [`PeerConnection`]
//! and which [`Event`]s it yields; also the late arrival of the piece count.

use super::{
    ConnectionError, Event, PeerConnection, PendingPieces, Phase, RequestFailure, DEFAULT_REQQ,
};
use crate::bitfield::{bitfield_bytes, Bitfield, BitfieldError};
use crate::extension::{ExtensionHandshake, UT_METADATA, UT_PEX};
use crate::message::{BlockRequest, Message, PieceIndex};
use crate::metadata::{MetadataMessage, MetadataMessageError};
use crate::pex::PexMessage;
use bytes::Bytes;
use std::time::Instant;

impl PeerConnection {
    fn require_fast(&self, m: &Message) -> Result<(), ConnectionError> {
        if self.supports_fast() {
            Ok(())
        } else {
            Err(ConnectionError::NotNegotiated {
                message: m.name(),
                extension: "the fast extension (BEP 6)",
            })
        }
    }

    fn check_index(&self, index: u32) -> Result<(), ConnectionError> {
        match self.num_pieces {
            Some(n) if index >= n => Err(BitfieldError::OutOfRange {
                index,
                num_pieces: n,
            }
            .into()),
            _ => Ok(()),
        }
    }

    pub(super) fn handle_message(
        &mut self,
        now: Instant,
        msg: Message,
    ) -> Result<(), ConnectionError> {
        match msg {
            Message::KeepAlive | Message::Unknown { .. } => {}
            Message::Choke => {
                self.peer_choking = true;
                self.events.push_back(Event::Choked);
                if !self.supports_fast() {
                    for (request, _) in std::mem::take(&mut self.our_requests) {
                        self.events.push_back(Event::RequestFailed {
                            request,
                            reason: RequestFailure::Choked,
                        });
                    }
                    self.waiting_since = None;
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.events.push_back(Event::Unchoked);
            }
            Message::Interested => {
                self.peer_interested = true;
                self.events.push_back(Event::Interested);
            }
            Message::NotInterested => {
                self.peer_interested = false;
                self.events.push_back(Event::NotInterested);
            }
            Message::Have(i) => self.on_have(i.0)?,
            Message::Bitfield(raw) => match self.num_pieces {
                Some(n) => {
                    self.their_pieces = Some(Bitfield::from_bytes(&raw, n)?);
                    self.events.push_back(Event::Bitfield);
                }
                None => {
                    self.pending = PendingPieces {
                        raw: Some(raw),
                        ..Default::default()
                    }
                }
            },
            m @ (Message::HaveAll | Message::HaveNone) => {
                self.require_fast(&m)?;
                let all = m == Message::HaveAll;
                match self.num_pieces {
                    Some(n) => {
                        self.their_pieces = Some(if all {
                            Bitfield::full(n)
                        } else {
                            Bitfield::new(n)
                        });
                        self.events.push_back(Event::Bitfield);
                    }
                    None => {
                        self.pending = PendingPieces {
                            all,
                            ..Default::default()
                        }
                    }
                }
            }
            Message::Request(r) => self.on_peer_request(now, r)?,
            Message::Cancel(r) => {
                if let Some(pos) = self.their_requests.iter().position(|x| *x == r) {
                    self.their_requests.remove(pos);
                    self.events.push_back(Event::RequestCancelled(r));
                    if self.supports_fast() {
                        self.queue(now, &Message::Reject(r));
                    }
                }
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => self.on_block(now, piece.0, offset, data),
            Message::Port(p) => self.events.push_back(Event::Port(p)),
            ref m @ Message::Suggest(i) => {
                self.require_fast(m)?;
                self.check_index(i.0)?;
                self.events.push_back(Event::Suggest(i));
            }
            ref m @ Message::Reject(r) => {
                self.require_fast(m)?;
                if let Some(pos) = self.our_requests.iter().position(|(x, _)| *x == r) {
                    self.our_requests.remove(pos);
                    if self.our_requests.is_empty() {
                        self.waiting_since = None;
                    }
                    self.events.push_back(Event::RequestFailed {
                        request: r,
                        reason: RequestFailure::Rejected,
                    });
                }
            }
            ref m @ Message::AllowedFast(i) => {
                self.require_fast(m)?;
                self.check_index(i.0)?;
                if self.allowed_fast_from_them.len() < self.config.max_allowed_fast
                    && self.allowed_fast_from_them.insert(i.0)
                {
                    self.events.push_back(Event::AllowedFast(i));
                }
            }
            ref m @ Message::Extended { id, ref payload } => {
                if !self.supports_extensions() {
                    return Err(ConnectionError::NotNegotiated {
                        message: m.name(),
                        extension: "the extension protocol (BEP 10)",
                    });
                }
                let payload = payload.clone();
                self.on_extended(id, payload)?;
            }
            Message::HashRequest(h) => self.events.push_back(Event::HashRequest(h)),
            Message::HashReject(h) => self.events.push_back(Event::HashReject(h)),
            Message::Hashes { request, hashes } => {
                self.events.push_back(Event::Hashes { request, hashes })
            }
        }
        Ok(())
    }

    fn on_have(&mut self, i: u32) -> Result<(), ConnectionError> {
        match self.their_pieces.as_mut() {
            Some(b) => {
                if b.set(i)? {
                    self.events.push_back(Event::Have(PieceIndex(i)));
                }
            }
            None => {
                let limit = self.config.max_pending_haves;
                if self.pending.haves.len() >= limit {
                    return Err(ConnectionError::TooManyPendingHaves { limit });
                }
                self.pending.haves.push(i);
            }
        }
        Ok(())
    }

    fn on_peer_request(&mut self, now: Instant, r: BlockRequest) -> Result<(), ConnectionError> {
        if r.length == 0 || r.length > self.config.limits.max_block_len {
            return Err(ConnectionError::InvalidRequest {
                request: r,
                reason: "block length zero or over the limit",
            });
        }
        if self.num_pieces.is_some_and(|n| r.piece.0 >= n) {
            return Err(ConnectionError::InvalidRequest {
                request: r,
                reason: "piece index out of range",
            });
        }
        let choked = self.am_choking && !self.allowed_fast_to_them.contains(&r.piece.0);
        let full = self.their_requests.len() >= self.config.max_peer_requests as usize;
        if choked || full {
            self.stats.peer_requests_refused += 1;
            if self.supports_fast() {
                self.queue(now, &Message::Reject(r));
            }
            return Ok(());
        }
        if self.their_requests.contains(&r) {
            return Ok(());
        }
        self.their_requests.push_back(r);
        self.events.push_back(Event::Request(r));
        Ok(())
    }

    fn on_block(&mut self, now: Instant, piece: u32, offset: u32, data: Bytes) {
        let r = BlockRequest {
            piece: PieceIndex(piece),
            offset,
            length: data.len() as u32,
        };
        let requested = if let Some(pos) = self.our_requests.iter().position(|(x, _)| *x == r) {
            self.our_requests.remove(pos);
            true
        } else if let Some(pos) = self.recently_cancelled.iter().position(|x| *x == r) {
            self.recently_cancelled.remove(pos);
            true
        } else {
            false
        };
        if !requested {
            self.stats.unrequested_blocks += 1;
            return;
        }
        self.stats.payload_downloaded += data.len() as u64;
        self.download.record(now, data.len() as u64);
        self.waiting_since = (!self.our_requests.is_empty()).then_some(now);
        if self.snubbed {
            self.snubbed = false;
            self.events.push_back(Event::Unsnubbed);
        }
        self.events.push_back(Event::Block {
            piece: PieceIndex(piece),
            offset,
            data,
        });
    }

    fn on_extended(&mut self, id: u8, payload: Bytes) -> Result<(), ConnectionError> {
        let ours = &self.config.extension_handshake;
        if id == 0 {
            let h = ExtensionHandshake::decode(&payload, self.config.max_metadata_size)?;
            let reqq = h.reqq.unwrap_or(DEFAULT_REQQ).max(1);
            self.pipeline_limit = self.config.max_outstanding_requests.min(reqq);
            self.their_ext = Some(h.clone());
            self.events
                .push_back(Event::ExtensionHandshake(Box::new(h)));
        } else if ours.id_of(UT_METADATA) == Some(id) {
            match MetadataMessage::decode(&payload, self.config.max_metadata_size) {
                Ok(m) => self.events.push_back(Event::Metadata(m)),
                Err(MetadataMessageError::UnknownType(_)) => {} // BEP 9: ignore
                Err(e) => return Err(e.into()),
            }
        } else if ours.id_of(UT_PEX) == Some(id) {
            // Peer lists are advisory: a malformed one is dropped, the
            // connection stays (the engine ignores that peer's PEX only).
            if let Ok(m) = PexMessage::decode(&payload, self.config.max_pex_peers) {
                self.events.push_back(Event::Pex(m));
            }
        } else {
            self.events.push_back(Event::Extended { id, payload });
        }
        Ok(())
    }

    /// The piece count became known (metadata fetched): validates what the peer
    /// sent so far and emits [`Event::Bitfield`]. On `Err` the connection is closed.
    pub fn set_num_pieces(&mut self, n: u32) -> Result<(), ConnectionError> {
        if self.phase == Phase::Closed {
            return Err(ConnectionError::Closed);
        }
        if self.num_pieces.is_some() {
            return Ok(());
        }
        let r = self.apply_num_pieces(n);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn apply_num_pieces(&mut self, n: u32) -> Result<(), ConnectionError> {
        self.num_pieces = Some(n);
        self.config.limits.max_bitfield_len = self
            .config
            .limits
            .max_bitfield_len
            .min(bitfield_bytes(n) as u32);
        let pending = std::mem::take(&mut self.pending);
        let mut b = match (pending.all, pending.raw) {
            (true, _) => Bitfield::full(n),
            (false, Some(raw)) => Bitfield::from_bytes(&raw, n)?,
            (false, None) => Bitfield::new(n),
        };
        for i in pending.haves {
            b.set(i)?;
        }
        if let Some(init) = self.initial_pieces.as_ref() {
            if init.len() != n {
                self.initial_pieces = None;
            }
        }
        self.their_pieces = Some(b);
        self.events.push_back(Event::Bitfield);
        Ok(())
    }
}
