//! MSE/PE, the message stream encryption of BitTorrent connections, as
//! libtorrent, Transmission and aria2 speak it (the "Message Stream
//! Encryption" specification; there is no BEP).
//!
//! ```text
//! 1 A->B: Diffie Hellman Ya, PadA
//! 2 B->A: Diffie Hellman Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! SKEY is the torrent's 20-byte info-hash (v1, or v2 truncated), so only a
//! peer that knows the torrent can complete the handshake; the responder
//! finds it among all its torrents by `HASH('req2', SKEY)` through a
//! [`SkeyLookup`]. ENCRYPT is RC4 keyed `HASH('keyA', S, SKEY)` (A to B) or
//! `HASH('keyB', S, SKEY)` (B to A) with 1024 bytes discarded; ENCRYPT2 is
//! the same RC4 stream when RC4 is selected, nothing when plaintext is.
//!
//! - [`crypto`]: the DH group, the derived hashes and [`Rc4`].
//! - [`MseHandshake`]: the sans-IO handshake of either role — bytes and time
//!   in, bytes out, an [`MseOutcome`] at the end. Every step is bounded
//!   (padding of at most 512 bytes, so the sync markers must show up within
//!   512 bytes; the initial payload at most [`MAX_IA_LEN`]; a deadline for
//!   the whole handshake) and every failure is a typed [`MseError`].
//! - `io` (feature `tokio`): the handshake over a socket ([`io::run`]), and
//!   the listening side that tells plain BitTorrent from MSE ([`io::accept`]).
//! - `MseStream` (feature `tokio`): the connection after the handshake,
//!   decrypting in place as it reads and encrypting as it writes.

pub mod crypto;
mod handshake;
#[cfg(feature = "tokio")]
pub mod io;
#[cfg(feature = "tokio")]
mod stream;
#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "tokio"))]
mod tokio_tests;

pub use crypto::{DhKey, Rc4};
pub use handshake::{MseHandshake, MseOutcome, Rc4Pair};
#[cfg(feature = "tokio")]
pub use stream::{Encryption, MseStream};

use std::time::Duration;
use thiserror::Error;

/// The verification constant: 8 zero bytes.
pub const VC: [u8; 8] = [0; 8];
/// Most bytes of any padding (PadA, PadB, PadC, PadD), per the spec.
pub const MAX_PAD: usize = 512;
/// Most bytes of the initial payload a responder accepts. The initiator's
/// payload is its BitTorrent handshake (68 bytes) in every known client;
/// libtorrent refuses more than 68, shoal allows some room.
pub const MAX_IA_LEN: usize = 1024;

/// A crypto method of `crypto_provide` / `crypto_select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crypto {
    /// The payload stream stays plaintext after the handshake (0x01).
    Plaintext,
    /// The payload stream is RC4-encrypted (0x02).
    Rc4,
}

impl Crypto {
    /// The bit of this method in the crypto fields.
    pub fn bit(self) -> u32 {
        match self {
            Crypto::Plaintext => 0x01,
            Crypto::Rc4 => 0x02,
        }
    }
}

/// A set of crypto methods: the `crypto_provide` bit field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CryptoSet(u32);

impl CryptoSet {
    /// Plaintext only.
    pub const PLAINTEXT: CryptoSet = CryptoSet(0x01);
    /// RC4 only.
    pub const RC4: CryptoSet = CryptoSet(0x02);
    /// Both.
    pub const BOTH: CryptoSet = CryptoSet(0x03);

    /// The set a peer sent (unknown bits are kept, and never match).
    pub fn from_bits(bits: u32) -> Self {
        CryptoSet(bits)
    }
    /// The bits as sent.
    pub fn bits(self) -> u32 {
        self.0
    }
    /// Whether `c` is in the set.
    pub fn contains(self, c: Crypto) -> bool {
        self.0 & c.bit() != 0
    }
    /// The method to select from a peer's offer, given what we allow:
    /// RC4 before plaintext when `prefer_rc4` (and both are possible),
    /// plaintext before RC4 otherwise.
    pub fn select(self, allowed: CryptoSet, prefer_rc4: bool) -> Option<Crypto> {
        let both = CryptoSet(self.0 & allowed.0);
        let order = if prefer_rc4 {
            [Crypto::Rc4, Crypto::Plaintext]
        } else {
            [Crypto::Plaintext, Crypto::Rc4]
        };
        order.into_iter().find(|c| both.contains(*c))
    }
}

/// Settings of one handshake.
#[derive(Debug, Clone)]
pub struct MseConfig {
    /// Methods we offer (initiator) or accept (responder).
    pub allowed: CryptoSet,
    /// As responder, select RC4 when the peer offers both (Transmission
    /// does; libtorrent's `prefer_rc4` defaults to false).
    pub prefer_rc4: bool,
    /// Our paddings are random lengths in `0..=max_pad` (at most [`MAX_PAD`]).
    pub max_pad: usize,
    /// Deadline for the whole handshake, from its start.
    pub timeout: Duration,
}

impl Default for MseConfig {
    fn default() -> Self {
        MseConfig {
            allowed: CryptoSet::BOTH,
            prefer_rc4: true,
            max_pad: MAX_PAD,
            timeout: Duration::from_secs(10),
        }
    }
}

/// How a responder finds the torrent a connection is for: from
/// `HASH('req2', SKEY)` to SKEY (the 20-byte info-hash), across every
/// torrent it serves.
pub trait SkeyLookup {
    /// The info-hash whose `HASH('req2', ·)` is `req2`, if we serve it.
    fn find_skey(&self, req2: &[u8; 20]) -> Option<[u8; 20]>;
}

impl<F: Fn(&[u8; 20]) -> Option<[u8; 20]>> SkeyLookup for F {
    fn find_skey(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        self(req2)
    }
}

/// Why an MSE handshake failed. The connection is to be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MseError {
    /// The peer's DH public key is outside `[2, P-2]`.
    #[error("mse: degenerate DH public key")]
    BadPublicKey,
    /// `HASH('req1', S)` did not appear within PadA's 512 bytes.
    #[error("mse: sync hash not found after {scanned} bytes of padding")]
    SyncHashNotFound {
        /// Bytes looked through.
        scanned: usize,
    },
    /// `ENCRYPT(VC)` did not appear within PadB's 512 bytes.
    #[error("mse: verification constant not found after {scanned} bytes of padding")]
    VcNotFound {
        /// Bytes looked through.
        scanned: usize,
    },
    /// The obfuscated info-hash names no torrent we serve.
    #[error("mse: unknown torrent (obfuscated hash matches none)")]
    UnknownTorrent,
    /// The decrypted verification constant is not 8 zero bytes (wrong SKEY).
    #[error("mse: bad verification constant")]
    BadVc,
    /// The peer offers no crypto method we accept.
    #[error("mse: no common crypto method (offered {offered:#x}, allowed {allowed:#x})")]
    NoCommonCrypto {
        /// The peer's `crypto_provide`.
        offered: u32,
        /// What we accept.
        allowed: u32,
    },
    /// The responder selected something we did not offer, or not exactly one method.
    #[error("mse: bad crypto_select {selected:#x} (offered {offered:#x})")]
    BadCryptoSelect {
        /// The peer's `crypto_select`.
        selected: u32,
        /// What we offered.
        offered: u32,
    },
    /// A padding longer than 512 bytes was announced.
    #[error("mse: padding of {len} bytes (at most 512)")]
    PadTooLong {
        /// The announced length.
        len: usize,
    },
    /// The initial payload is longer than [`MAX_IA_LEN`].
    #[error("mse: initial payload of {len} bytes (at most {MAX_IA_LEN})")]
    InitialPayloadTooLong {
        /// The announced length.
        len: usize,
    },
    /// The handshake did not complete before its deadline.
    #[error("mse: handshake timed out")]
    TimedOut,
    /// The handshake already failed, or its outcome was taken.
    #[error("mse: handshake closed")]
    Closed,
}
