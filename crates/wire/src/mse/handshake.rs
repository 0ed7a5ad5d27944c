//! [`MseHandshake`]: the sans-IO MSE handshake of either role.
//!
//! The driver feeds received bytes ([`MseHandshake::handle_bytes`]) and the
//! deadline ([`MseHandshake::handle_timeout`] at
//! [`MseHandshake::poll_timeout`]), writes what
//! [`MseHandshake::poll_transmit`] returns, and once
//! [`MseHandshake::is_done`] takes the [`MseOutcome`]: the selected crypto,
//! the torrent, the ciphers and the BitTorrent bytes already received. Any
//! `Err` ends the handshake; the connection is to be closed. Randomness (the
//! private key, padding) is drawn from the caller's RNG at construction.

use super::crypto::{self, DhKey, Rc4, DH_LEN, PRIVATE_KEY_LEN};
use super::{Crypto, CryptoSet, MseConfig, MseError, SkeyLookup, MAX_IA_LEN, MAX_PAD, VC};
use rand::{Rng, RngCore};
use std::sync::Arc;
use std::time::Instant;

/// The two RC4 streams of an encrypted connection.
#[derive(Debug)]
pub struct Rc4Pair {
    /// Encrypts what we send.
    pub send: Rc4,
    /// Decrypts what we receive.
    pub recv: Rc4,
}

/// The result of a completed handshake.
#[derive(Debug)]
pub struct MseOutcome {
    /// The method selected for the payload stream.
    pub crypto: Crypto,
    /// SKEY: the 20-byte info-hash the connection is for.
    pub skey: [u8; 20],
    /// BitTorrent bytes already received, decrypted: the initiator's initial
    /// payload (responder side), then whatever followed the handshake.
    pub payload: Vec<u8>,
    /// The ciphers to continue with, when `crypto` is [`Crypto::Rc4`].
    pub cipher: Option<Rc4Pair>,
}

enum Role {
    Initiator {
        skey: [u8; 20],
        ia: Vec<u8>,
        selected: Option<Crypto>,
    },
    Responder {
        lookup: Arc<dyn SkeyLookup + Send + Sync>,
        skey: Option<[u8; 20]>,
        selected: Option<Crypto>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The peer's 96-byte public key.
    AwaitKey,
    /// Initiator: looking for `ENCRYPT(VC)` after PadB.
    SyncVc([u8; 8]),
    /// Responder: looking for `HASH('req1', S)` after PadA.
    SyncReq1([u8; 20]),
    /// Responder: the obfuscated hash and `ENCRYPT(VC)`, 28 bytes.
    SkeyVc,
    /// `crypto_provide`/`crypto_select` and the length of the padding, 6 bytes.
    CryptoField,
    /// Initiator: PadD; responder: PadC and `len(IA)`.
    Pad(usize),
    /// Responder: the initial payload.
    Ia(usize),
    Done,
    Failed,
}

/// One MSE handshake. See the module docs for the driving contract.
pub struct MseHandshake {
    config: MseConfig,
    role: Role,
    state: State,
    key: DhKey,
    secret: Option<[u8; DH_LEN]>,
    cipher: Option<Rc4Pair>,
    /// Our second padding (PadC or PadD), drawn at construction.
    pad2: Vec<u8>,
    /// Our first padding (PadB), for a responder until it answers.
    pad1: Vec<u8>,
    /// Received bytes not yet consumed.
    buf: Vec<u8>,
    /// Padding bytes skipped while looking for a sync marker.
    skipped: usize,
    /// Bytes to send.
    out: Vec<u8>,
    /// Decrypted BitTorrent bytes received (IA, then what followed).
    payload: Vec<u8>,
    deadline: Instant,
}

impl std::fmt::Debug for MseHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MseHandshake")
            .field("initiator", &matches!(self.role, Role::Initiator { .. }))
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn random_pad(rng: &mut impl RngCore, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max.min(MAX_PAD));
    let mut pad = vec![0u8; len];
    rng.fill_bytes(&mut pad);
    pad
}

impl MseHandshake {
    fn new(config: MseConfig, role: Role, rng: &mut impl RngCore, now: Instant) -> Self {
        let mut private = [0u8; PRIVATE_KEY_LEN];
        rng.fill_bytes(&mut private);
        let pad1 = random_pad(rng, config.max_pad);
        let pad2 = random_pad(rng, config.max_pad);
        MseHandshake {
            deadline: now + config.timeout,
            config,
            role,
            state: State::AwaitKey,
            key: DhKey::new(private),
            secret: None,
            cipher: None,
            pad2,
            pad1,
            buf: Vec::new(),
            skipped: 0,
            out: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// We connect for torrent `skey` (the info-hash as the handshake carries
    /// it): `Ya` and PadA are queued at once. `ia` is the initial payload,
    /// normally our BitTorrent handshake (at most [`MAX_IA_LEN`] bytes; more
    /// is cut, a caller error); it is sent encrypted with step 3, saving a
    /// round trip.
    pub fn initiator(
        config: MseConfig,
        skey: [u8; 20],
        ia: &[u8],
        rng: &mut impl RngCore,
        now: Instant,
    ) -> Self {
        let ia = ia[..ia.len().min(MAX_IA_LEN)].to_vec();
        let role = Role::Initiator {
            skey,
            ia,
            selected: None,
        };
        let mut h = Self::new(config, role, rng, now);
        h.out.extend_from_slice(h.key.public());
        let pad = std::mem::take(&mut h.pad1);
        h.out.extend_from_slice(&pad);
        h
    }

    /// A peer connected to us and its first bytes are not a plaintext
    /// BitTorrent handshake. `lookup` finds the torrent by its obfuscated
    /// hash among all we serve. Nothing is sent before the peer's key arrives.
    pub fn responder(
        config: MseConfig,
        lookup: Arc<dyn SkeyLookup + Send + Sync>,
        rng: &mut impl RngCore,
        now: Instant,
    ) -> Self {
        let role = Role::Responder {
            lookup,
            skey: None,
            selected: None,
        };
        Self::new(config, role, rng, now)
    }

    /// Whether the handshake completed; the outcome is then available.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes to write to the peer, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    /// When [`MseHandshake::handle_timeout`] is due; `None` once done or failed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done | State::Failed => None,
            _ => Some(self.deadline),
        }
    }

    /// Fails the handshake if its deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), MseError> {
        match self.state {
            State::Failed => Err(MseError::Closed),
            State::Done => Ok(()),
            _ if now >= self.deadline => {
                self.state = State::Failed;
                Err(MseError::TimedOut)
            }
            _ => Ok(()),
        }
    }

    /// Feeds bytes received from the peer. Bytes after the end of the
    /// handshake are BitTorrent payload: they are decrypted as the selected
    /// method says and kept for the outcome.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) -> Result<(), MseError> {
        if self.state == State::Failed {
            return Err(MseError::Closed);
        }
        if self.state != State::Done && now >= self.deadline {
            self.state = State::Failed;
            return Err(MseError::TimedOut);
        }
        self.buf.extend_from_slice(data);
        let r = self.process();
        if r.is_err() {
            self.state = State::Failed;
            self.buf = Vec::new();
            self.out = Vec::new();
        }
        r
    }

    /// The outcome, once done (`None` before; taking it ends the handshake).
    pub fn take_outcome(&mut self) -> Option<MseOutcome> {
        if self.state != State::Done {
            return None;
        }
        let (skey, selected) = match &self.role {
            Role::Initiator { skey, selected, .. } => (Some(*skey), *selected),
            Role::Responder { skey, selected, .. } => (*skey, *selected),
        };
        let (skey, crypto) = (skey?, selected?);
        self.state = State::Failed;
        Some(MseOutcome {
            crypto,
            skey,
            payload: std::mem::take(&mut self.payload),
            cipher: self.cipher.take().filter(|_| crypto == Crypto::Rc4),
        })
    }

    fn take_front(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.buf.len() >= n).then(|| self.buf.drain(..n).collect())
    }

    /// The ciphers, made once the secret and SKEY are known (every state
    /// that decrypts comes after that).
    fn rc4(&mut self) -> Result<&mut Rc4Pair, MseError> {
        self.cipher.as_mut().ok_or(MseError::Closed)
    }

    /// Looks for `marker` in the padding; `Ok(true)` once found and
    /// consumed, `Err(scanned)` when it cannot be within 512 bytes any more.
    fn sync(&mut self, marker: &[u8]) -> Result<bool, usize> {
        let m = marker.len();
        if let Some(i) = self.buf.windows(m).position(|w| w == marker) {
            if self.skipped + i <= MAX_PAD {
                self.buf.drain(..i + m);
                return Ok(true);
            }
        }
        let scanned = self.skipped + self.buf.len();
        if scanned >= MAX_PAD + m {
            return Err(scanned);
        }
        // Positions that can no longer start the marker are padding.
        let drop = self.buf.len().saturating_sub(m - 1);
        self.buf.drain(..drop);
        self.skipped += drop;
        Ok(false)
    }

    fn process(&mut self) -> Result<(), MseError> {
        loop {
            match self.state {
                State::AwaitKey => {
                    let Some(y) = self.take_front(DH_LEN) else {
                        return Ok(());
                    };
                    let mut remote = [0u8; DH_LEN];
                    remote.copy_from_slice(&y);
                    let s = self
                        .key
                        .shared_secret(&remote)
                        .ok_or(MseError::BadPublicKey)?;
                    self.secret = Some(s);
                    self.on_key(&s);
                }
                State::SyncVc(pattern) => {
                    if !self
                        .sync(&pattern)
                        .map_err(|scanned| MseError::VcNotFound { scanned })?
                    {
                        return Ok(());
                    }
                    self.state = State::CryptoField;
                }
                State::SyncReq1(marker) => {
                    if !self
                        .sync(&marker)
                        .map_err(|scanned| MseError::SyncHashNotFound { scanned })?
                    {
                        return Ok(());
                    }
                    self.skipped = 0;
                    self.state = State::SkeyVc;
                }
                State::SkeyVc => {
                    let Some(mut b) = self.take_front(28) else {
                        return Ok(());
                    };
                    self.on_skey(&mut b)?;
                }
                State::CryptoField => {
                    let Some(mut b) = self.take_front(6) else {
                        return Ok(());
                    };
                    self.rc4()?.recv.apply(&mut b);
                    let field = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    let pad = usize::from(u16::from_be_bytes([b[4], b[5]]));
                    if pad > MAX_PAD {
                        return Err(MseError::PadTooLong { len: pad });
                    }
                    self.on_crypto_field(field)?;
                    let extra = match self.role {
                        Role::Responder { .. } => 2, // len(IA)
                        Role::Initiator { .. } => 0,
                    };
                    self.state = State::Pad(pad + extra);
                }
                State::Pad(n) => {
                    let Some(mut b) = self.take_front(n) else {
                        return Ok(());
                    };
                    self.rc4()?.recv.apply(&mut b);
                    self.state = match self.role {
                        Role::Initiator { .. } => State::Done,
                        Role::Responder { .. } => {
                            let len = usize::from(u16::from_be_bytes([b[n - 2], b[n - 1]]));
                            if len > MAX_IA_LEN {
                                return Err(MseError::InitialPayloadTooLong { len });
                            }
                            State::Ia(len)
                        }
                    };
                }
                State::Ia(n) => {
                    let Some(mut b) = self.take_front(n) else {
                        return Ok(());
                    };
                    // The initial payload is always RC4, whatever was selected.
                    self.rc4()?.recv.apply(&mut b);
                    self.payload = b;
                    self.state = State::Done;
                }
                State::Done => {
                    let mut rest = std::mem::take(&mut self.buf);
                    if self.selected() == Some(Crypto::Rc4) {
                        self.rc4()?.recv.apply(&mut rest);
                    }
                    self.payload.extend_from_slice(&rest);
                    return Ok(());
                }
                State::Failed => return Err(MseError::Closed),
            }
        }
    }

    fn selected(&self) -> Option<Crypto> {
        match &self.role {
            Role::Initiator { selected, .. } | Role::Responder { selected, .. } => *selected,
        }
    }

    /// The peer's key arrived and `s` is the shared secret.
    fn on_key(&mut self, s: &[u8; DH_LEN]) {
        match &mut self.role {
            Role::Initiator { skey, ia, .. } => {
                // Step 3.
                let skey = *skey;
                let ia = std::mem::take(ia);
                let mut pair = {
                    let (send, recv) = Rc4::pair(s, &skey, true);
                    Rc4Pair { send, recv }
                };
                self.out.extend_from_slice(&crypto::req1(s));
                self.out
                    .extend_from_slice(&crypto::xor20(&crypto::req2(&skey), &crypto::req3(s)));
                let start = self.out.len();
                self.out.extend_from_slice(&VC);
                self.out
                    .extend_from_slice(&self.config.allowed.bits().to_be_bytes());
                self.out
                    .extend_from_slice(&(self.pad2.len() as u16).to_be_bytes());
                self.out.extend_from_slice(&self.pad2);
                self.out.extend_from_slice(&(ia.len() as u16).to_be_bytes());
                self.out.extend_from_slice(&ia);
                pair.send.apply(&mut self.out[start..]);
                // What ENCRYPT(VC) looks like from the responder.
                let mut pattern = VC;
                pair.recv.apply(&mut pattern);
                self.cipher = Some(pair);
                self.state = State::SyncVc(pattern);
            }
            Role::Responder { .. } => {
                // Step 2.
                self.out.extend_from_slice(self.key.public());
                let pad = std::mem::take(&mut self.pad1);
                self.out.extend_from_slice(&pad);
                self.state = State::SyncReq1(crypto::req1(s));
            }
        }
    }

    /// Responder: the obfuscated hash and the encrypted VC.
    fn on_skey(&mut self, b: &mut [u8]) -> Result<(), MseError> {
        let Some(s) = self.secret else {
            return Err(MseError::Closed);
        };
        let Role::Responder { lookup, skey, .. } = &mut self.role else {
            return Err(MseError::Closed);
        };
        let mut obf = [0u8; 20];
        obf.copy_from_slice(&b[..20]);
        let req2 = crypto::xor20(&obf, &crypto::req3(&s));
        let found = lookup.find_skey(&req2).ok_or(MseError::UnknownTorrent)?;
        *skey = Some(found);
        let (send, mut recv) = Rc4::pair(&s, &found, false);
        recv.apply(&mut b[20..28]);
        if b[20..28] != VC {
            return Err(MseError::BadVc);
        }
        self.cipher = Some(Rc4Pair { send, recv });
        self.state = State::CryptoField;
        Ok(())
    }

    /// `crypto_provide` (responder: select and answer with step 4) or
    /// `crypto_select` (initiator: check it).
    fn on_crypto_field(&mut self, field: u32) -> Result<(), MseError> {
        let allowed = self.config.allowed;
        let prefer_rc4 = self.config.prefer_rc4;
        match &mut self.role {
            Role::Responder { selected, .. } => {
                let offered = CryptoSet::from_bits(field);
                let c = offered
                    .select(allowed, prefer_rc4)
                    .ok_or(MseError::NoCommonCrypto {
                        offered: field,
                        allowed: allowed.bits(),
                    })?;
                *selected = Some(c);
                // Step 4: ENCRYPT(VC, crypto_select, len(PadD), PadD).
                let start = self.out.len();
                self.out.extend_from_slice(&VC);
                self.out.extend_from_slice(&c.bit().to_be_bytes());
                self.out
                    .extend_from_slice(&(self.pad2.len() as u16).to_be_bytes());
                self.out.extend_from_slice(&self.pad2);
                let mut enc = std::mem::take(&mut self.out);
                self.rc4()?.send.apply(&mut enc[start..]);
                self.out = enc;
                Ok(())
            }
            Role::Initiator { selected, .. } => {
                let c = [Crypto::Plaintext, Crypto::Rc4]
                    .into_iter()
                    .find(|c| c.bit() == field && allowed.contains(*c))
                    .ok_or(MseError::BadCryptoSelect {
                        selected: field,
                        offered: allowed.bits(),
                    })?;
                *selected = Some(c);
                Ok(())
            }
        }
    }
}
