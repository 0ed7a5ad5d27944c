//! The DHT keyword index (Kad, eMule), over plain BEP 44 mutable items, so
//! nodes that know nothing of it (libtorrent, older shoal) store and serve
//! its items like any other.
//!
//! # Scheme
//!
//! Everything is signed with one **well-known key pair** ([`index_key`], the
//! ed25519 key whose seed is SHA-256 of [`KEY_SEED`]): a mutable item's
//! target is SHA-1(public key ‖ salt), so with a fixed key a target depends
//! on the salt alone and a searcher can compute it from a keyword.
//!
//! - **Keyword slots**: salt `shoal-kw1:S:KEYWORD` (S = `0`..[`KadConfig::slots`],
//!   KEYWORD normalised by [`crate::keywords`], at most 40 bytes, so the salt
//!   stays under BEP 44's 64). Value `d1:h<20·n bytes>e`: at most
//!   [`MAX_SLOT_HASHES`] info-hashes, oldest first (≤ 810 bytes, under
//!   BEP 44's 1000). A torrent always goes to slot `info_hash[0] % slots` of
//!   each keyword of its name; when a slot is full the oldest entry is
//!   dropped (a republish moves a torrent to the end, so live torrents stay).
//!   Publishing is read-modify-write with BEP 44 `cas`, retried on 301/302.
//! - **Torrent records**: salt `shoal-tr1:` ‖ info-hash (raw 20 bytes),
//!   value `d1:fi<files>e1:li<size>e1:n<name>e` (name clipped to
//!   [`MAX_RECORD_NAME`] bytes): what a result shows.
//!
//! A search takes the query's keywords, looks up the slots of the (at most
//! [`KadConfig::lookup_keywords`]) longest ones, intersects the info-hash
//! sets, fetches the records of at most [`KadConfig::max_candidates`] of
//! them and keeps those whose record name holds **every** query keyword.
//!
//! Expiry and republishing: BEP 44 nodes drop an item two hours after its
//! last put; a publisher republishes (every [`REPUBLISH`]) the slots and
//! the record of each torrent it shares. A torrent nobody republishes loses
//! its record first (only its publisher writes it), so a stale slot entry
//! finds no record and is not shown.
//!
//! # Spam resistance
//!
//! The private key is public, so signatures do not say *who* wrote an item:
//! any node can write any slot. That is the price of finding content by
//! keyword alone (a per-publisher key would need the searcher to know the
//! publishers already). What bounds the damage:
//! - **sizes**: every node enforces BEP 44's 1000-byte values and its own
//!   item count and lifetime (shoal: 1000 items, 2 h); this scheme adds no
//!   state to nodes. A query costs at most `lookup_keywords × slots` slot
//!   lookups plus `max_candidates` record lookups, whatever is stored;
//!   decoders reject anything but the exact formats above ([`decode_slot`],
//!   [`decode_record`], fuzzed).
//! - **poisoned slots**: junk info-hashes without a matching record are
//!   dropped; a spammer must also write a record per junk hash whose name
//!   holds all the query's words, and must do it for each keyword's
//!   `slots` slots to push honest entries out, and again after every
//!   honest republish.
//! - **false names**: a record can be overwritten with another name. The
//!   content is still checked against the info-hash by `shoal download`,
//!   so the worst outcome is a wasted download; ranking merges the DHT's
//!   hits with the central index and crawled indexes, whose names come
//!   from verified metadata (BEP 9).
//! - **seq lock**: a slot written with a huge `seq` cannot be updated by
//!   honest publishers until it expires (2 h after the spammer's last put).
//!   Other slots of the keyword and other keywords of the name still work;
//!   this is the remaining weakness.
use crate::doc::{clip_str, TorrentDoc};
use crate::hit::SearchHit;
use crate::keywords::{keywords, query_keywords, MAX_NAME_KEYWORDS};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use shoal_bencode::{Limits, Value};
use shoal_dht::{Dht, DhtError, Id20};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::task::JoinSet;

/// The text whose SHA-256 is the seed of the index's key pair.
pub const KEY_SEED: &[u8] = b"shoal keyword index v1";
/// Salt prefix of keyword slots.
pub const SLOT_PREFIX: &[u8] = b"shoal-kw1:";
/// Salt prefix of torrent records.
pub const RECORD_PREFIX: &[u8] = b"shoal-tr1:";
/// Most info-hashes in one slot item.
pub const MAX_SLOT_HASHES: usize = 40;
/// Longest name kept in a record, in bytes.
pub const MAX_RECORD_NAME: usize = 400;
/// How often a publisher should put its items again (BEP 44 nodes keep them 2 h).
pub const REPUBLISH: Duration = Duration::from_secs(30 * 60);

/// Settings of the keyword index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KadConfig {
    /// Slots per keyword (publisher and searcher must agree; at most 10).
    pub slots: u8,
    /// Most query keywords looked up (the longest ones).
    pub lookup_keywords: usize,
    /// Most candidate records fetched per query.
    pub max_candidates: usize,
    /// Read-modify-write attempts per slot.
    pub put_attempts: u32,
    /// Most DHT lookups at once.
    pub concurrency: usize,
}

impl Default for KadConfig {
    fn default() -> Self {
        KadConfig {
            slots: 4,
            lookup_keywords: 3,
            max_candidates: 64,
            put_attempts: 3,
            concurrency: 8,
        }
    }
}

/// Why a keyword-index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KadError {
    /// The DHT failed.
    #[error("{0}")]
    Dht(#[from] DhtError),
    /// The query or name has no keyword.
    #[error("no keyword (words of 3 or more letters or digits that are not stop words)")]
    NoKeywords,
    /// Nothing was stored: no node accepted a put.
    #[error("no DHT node stored the items (is the DHT reachable?)")]
    NotStored,
}

/// Why an item's value is not a slot or a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemFormatError {
    /// Not bencode, or beyond the limits.
    #[error("keyword index item: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// Bencode of the wrong shape.
    #[error("keyword index item: {0}")]
    Shape(&'static str),
}

/// The key pair every publisher signs with (see the module docs).
pub fn index_key() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(KEY_SEED).into())
}

/// The salt of slot `slot` of `keyword`.
pub fn slot_salt(keyword: &str, slot: u8) -> Vec<u8> {
    let mut s = SLOT_PREFIX.to_vec();
    s.push(b'0' + slot % 10);
    s.push(b':');
    s.extend_from_slice(keyword.as_bytes());
    s
}

/// The salt of the record of `info_hash`.
pub fn record_salt(info_hash: &[u8; 20]) -> Vec<u8> {
    let mut s = RECORD_PREFIX.to_vec();
    s.extend_from_slice(info_hash);
    s
}

/// The slot a torrent goes to.
pub fn slot_of(info_hash: &[u8; 20], slots: u8) -> u8 {
    info_hash[0] % slots.clamp(1, 10)
}

/// Encodes a slot value (the last [`MAX_SLOT_HASHES`] hashes).
pub fn encode_slot(hashes: &[[u8; 20]]) -> Vec<u8> {
    let keep = &hashes[hashes.len().saturating_sub(MAX_SLOT_HASHES)..];
    let flat: Vec<u8> = keep.iter().flatten().copied().collect();
    let mut out = Vec::with_capacity(flat.len() + 12);
    shoal_bencode::Encoder::new(&mut out)
        .begin_dict()
        .bytes(b"h")
        .bytes(&flat)
        .end();
    out
}

fn limits() -> Limits {
    Limits {
        max_depth: 2,
        max_string_len: 1000,
        max_elements: 16,
    }
}

/// Decodes a slot value (strict: a dict whose `h` is a whole number of hashes).
pub fn decode_slot(v: &[u8]) -> Result<Vec<[u8; 20]>, ItemFormatError> {
    let v = shoal_bencode::decode(v, &limits())?;
    let h = v
        .as_dict()
        .ok_or(ItemFormatError::Shape("slot is not a dictionary"))?
        .get(b"h")
        .and_then(Value::as_bytes)
        .ok_or(ItemFormatError::Shape("slot without h"))?;
    if h.len() % 20 != 0 || h.len() > 20 * MAX_SLOT_HASHES {
        return Err(ItemFormatError::Shape("slot h is not a list of hashes"));
    }
    Ok(h.chunks_exact(20)
        .filter_map(|c| <[u8; 20]>::try_from(c).ok())
        .collect())
}

/// What a torrent record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name (clipped to [`MAX_RECORD_NAME`] bytes).
    pub name: String,
    /// Total size in bytes.
    pub size: u64,
    /// Number of files.
    pub files: u64,
}

/// Encodes the record of `doc`.
pub fn encode_record(doc: &TorrentDoc) -> Vec<u8> {
    let name = clip_str(&doc.name, MAX_RECORD_NAME);
    let mut out = Vec::with_capacity(name.len() + 48);
    shoal_bencode::Encoder::new(&mut out)
        .begin_dict()
        .bytes(b"f")
        .int(i64::try_from(doc.file_count).unwrap_or(i64::MAX))
        .bytes(b"l")
        .int(i64::try_from(doc.size).unwrap_or(i64::MAX))
        .bytes(b"n")
        .bytes(name.as_bytes())
        .end();
    out
}

/// Decodes a record value (name UTF-8, at most [`MAX_RECORD_NAME`] bytes; sizes ≥ 0).
pub fn decode_record(v: &[u8]) -> Result<Record, ItemFormatError> {
    let v = shoal_bencode::decode(v, &limits())?;
    let d = v
        .as_dict()
        .ok_or(ItemFormatError::Shape("record is not a dictionary"))?;
    let int = |k: &[u8], what| {
        d.get(k)
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
            .ok_or(ItemFormatError::Shape(what))
    };
    let name = d
        .get(b"n")
        .and_then(Value::as_bytes)
        .ok_or(ItemFormatError::Shape("record without n"))?;
    if name.len() > MAX_RECORD_NAME {
        return Err(ItemFormatError::Shape("record name too long"));
    }
    let name = std::str::from_utf8(name)
        .map_err(|_| ItemFormatError::Shape("record name not UTF-8"))?
        .to_string();
    Ok(Record {
        name,
        size: int(b"l", "record without l")?,
        files: int(b"f", "record without f")?,
    })
}

/// What [`publish`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// The keywords the torrent was filed under.
    pub keywords: Vec<String>,
    /// Slots written (at least one node stored them).
    pub slots_stored: usize,
    /// Whether the record was stored.
    pub record_stored: bool,
}

/// Puts `value` under `salt`, read-modify-write: `update` gets the current
/// value (None when absent or malformed) and returns the new one, or None
/// when nothing needs writing. Returns whether some node stored it.
async fn put_rmw(
    dht: &Dht,
    key: &SigningKey,
    salt: Vec<u8>,
    attempts: u32,
    update: impl Fn(Option<&[u8]>) -> Vec<u8>,
) -> Result<bool, KadError> {
    let pk = key.verifying_key().to_bytes();
    for _ in 0..attempts.max(1) {
        let cur = dht.get_mutable(pk, salt.clone()).await?;
        let (seq, cas, old) = match &cur {
            Some(i) => {
                let s = i.mutable.as_ref().map_or(0, |m| m.seq);
                (s.saturating_add(1), Some(s), Some(i.v.as_slice()))
            }
            None => (1, None, None),
        };
        let v = update(old);
        let (_, r) = dht.put_mutable(key, salt.clone(), seq, v, cas).await?;
        if r.stored > 0 {
            return Ok(true);
        }
        if !r.store_errors.iter().any(|(_, c)| *c == 301 || *c == 302) {
            return Ok(false);
        }
    }
    Ok(false)
}

/// Files `doc` under each keyword of its name and stores its record.
pub async fn publish(
    dht: &Dht,
    doc: &TorrentDoc,
    cfg: &KadConfig,
) -> Result<PublishReport, KadError> {
    let kws = keywords(&doc.name, MAX_NAME_KEYWORDS);
    if kws.is_empty() {
        return Err(KadError::NoKeywords);
    }
    let key = index_key();
    let ih = doc.info_hash;
    let slot = slot_of(&ih, cfg.slots);
    let mut set = JoinSet::new();
    for kw in &kws {
        let (dht, key, salt) = (dht.clone(), key.clone(), slot_salt(kw, slot));
        let attempts = cfg.put_attempts;
        set.spawn(async move {
            put_rmw(&dht, &key, salt, attempts, |old| {
                let mut hs = old.and_then(|v| decode_slot(v).ok()).unwrap_or_default();
                hs.retain(|h| *h != ih);
                hs.push(ih);
                encode_slot(&hs)
            })
            .await
        });
    }
    let record = encode_record(doc);
    let record_stored = put_rmw(dht, &key, record_salt(&ih), cfg.put_attempts, |_| {
        record.clone()
    })
    .await?;
    let mut slots_stored = 0;
    let mut last_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(true)) => slots_stored += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => last_err = Some(e),
            Err(e) => tracing::warn!(error = %e, "kad publish task"),
        }
    }
    if slots_stored == 0 && !record_stored {
        return Err(last_err.unwrap_or(KadError::NotStored));
    }
    Ok(PublishReport {
        keywords: kws,
        slots_stored,
        record_stored,
    })
}

/// The info-hashes filed under `keyword` (every slot; slots that fail twice
/// or hold junk count as empty).
async fn keyword_hashes(dht: &Dht, keyword: &str, slots: u8) -> HashSet<[u8; 20]> {
    let pk = index_key().verifying_key().to_bytes();
    let mut set = JoinSet::new();
    for s in 0..slots.clamp(1, 10) {
        let (dht, salt) = (dht.clone(), slot_salt(keyword, s));
        set.spawn(async move {
            // A lookup can miss under loss or rate limits: an empty answer
            // is asked once more.
            match dht.get_mutable(pk, salt.clone()).await {
                Ok(Some(i)) => Ok(Some(i)),
                _ => dht.get_mutable(pk, salt).await,
            }
        });
    }
    let mut out = HashSet::new();
    while let Some(r) = set.join_next().await {
        if let Ok(Ok(Some(item))) = r {
            match decode_slot(&item.v) {
                Ok(hs) => out.extend(hs),
                Err(e) => tracing::debug!(keyword, error = %e, "kad: bad slot"),
            }
        }
    }
    out
}

/// The record of `info_hash`, if any valid one is stored.
pub async fn get_record(dht: &Dht, info_hash: &[u8; 20]) -> Result<Option<Record>, KadError> {
    let pk = index_key().verifying_key().to_bytes();
    let item = dht.get_mutable(pk, record_salt(info_hash)).await?;
    Ok(item.and_then(|i| decode_record(&i.v).ok()))
}

/// Looks `query` up in the keyword index: hits (found `dht`) whose record
/// name holds every query keyword.
pub async fn search(dht: &Dht, query: &str, cfg: &KadConfig) -> Result<Vec<SearchHit>, KadError> {
    let q = query_keywords(query);
    if q.is_empty() {
        return Err(KadError::NoKeywords);
    }
    let mut looked: Vec<&String> = q.iter().collect();
    looked.sort_by_key(|k| std::cmp::Reverse(k.len()));
    looked.truncate(cfg.lookup_keywords.max(1));
    let mut per_kw = Vec::new();
    for chunk in looked.chunks(cfg.concurrency.max(1)) {
        let mut set = JoinSet::new();
        for kw in chunk {
            let (dht, kw, slots) = (dht.clone(), kw.to_string(), cfg.slots);
            set.spawn(async move { keyword_hashes(&dht, &kw, slots).await });
        }
        while let Some(r) = set.join_next().await {
            per_kw.push(r.unwrap_or_default());
        }
    }
    let mut sets = per_kw.into_iter();
    let Some(mut cands) = sets.next() else {
        return Ok(Vec::new());
    };
    for s in sets {
        cands.retain(|h| s.contains(h));
    }
    let mut cands: Vec<[u8; 20]> = cands.into_iter().collect();
    cands.sort_unstable();
    cands.truncate(cfg.max_candidates);
    let mut records = HashMap::new();
    for chunk in cands.chunks(cfg.concurrency.max(1)) {
        let mut set = JoinSet::new();
        for ih in chunk {
            let (dht, ih) = (dht.clone(), *ih);
            set.spawn(async move {
                let r = match get_record(&dht, &ih).await {
                    Ok(Some(r)) => Ok(Some(r)),
                    _ => get_record(&dht, &ih).await,
                };
                (ih, r)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok((ih, Ok(Some(rec)))) = r {
                records.insert(ih, rec);
            }
        }
    }
    let mut hits: Vec<SearchHit> = records
        .into_iter()
        .filter(|(_, rec)| {
            let words = crate::keywords::words(&rec.name);
            q.iter().all(|k| words.contains(k))
        })
        .map(|(ih, rec)| {
            let mut h = SearchHit::new(ih, rec.name, "dht".to_string());
            h.size = Some(rec.size);
            h.files = Some(rec.files);
            h
        })
        .collect();
    hits.sort_by(|a, b| a.info_hash.cmp(&b.info_hash));
    Ok(hits)
}

/// The target of slot `slot` of `keyword` (for tests and tools).
pub fn slot_target(keyword: &str, slot: u8) -> Id20 {
    shoal_dht::item::mutable_target(
        &index_key().verifying_key().to_bytes(),
        &slot_salt(keyword, slot),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8, name: &str) -> TorrentDoc {
        TorrentDoc {
            info_hash: [n; 20],
            name: name.to_string(),
            size: 1234,
            file_count: 2,
            files: Vec::new(),
        }
    }

    #[test]
    fn items_round_trip_and_fit_bep44() {
        let hs: Vec<[u8; 20]> = (0..60u8).map(|i| [i; 20]).collect();
        let v = encode_slot(&hs);
        assert!(v.len() <= 1000, "{}", v.len());
        let back = decode_slot(&v).unwrap();
        assert_eq!(back.len(), MAX_SLOT_HASHES);
        assert_eq!(back[0], [20; 20], "the oldest are dropped");
        assert_eq!(*back.last().unwrap(), [59; 20]);

        let long = "é".repeat(600);
        let v = encode_record(&doc(1, &long));
        assert!(v.len() <= 1000, "{}", v.len());
        let r = decode_record(&v).unwrap();
        assert!(r.name.len() <= MAX_RECORD_NAME && long.starts_with(&r.name));
        assert_eq!((r.size, r.files), (1234, 2));
        let salt = slot_salt(&"x".repeat(crate::keywords::MAX_KEYWORD_BYTES), 9);
        assert!(salt.len() <= 64);
    }

    #[test]
    fn decoders_reject_junk() {
        for bad in [
            &b""[..],
            b"le",
            b"d1:h3:abce",
            b"d1:hi5ee",
            b"d1:h20:aaaaaaaaaaaaaaaaaaaae trailing",
        ] {
            assert!(decode_slot(bad).is_err(), "{bad:?}");
        }
        assert!(decode_record(b"d1:fi1e1:li-1e1:n1:ae").is_err());
        assert!(decode_record(b"d1:fi1e1:li1e1:n1:\xffe").is_err());
        assert!(decode_record(b"d1:li1e1:n1:ae").is_err());
        let huge = format!("d1:h{}:{}e", 20 * 50, "a".repeat(1000));
        assert!(decode_slot(huge.as_bytes()).is_err());
    }

    #[test]
    fn key_and_slots_are_fixed() {
        // Publisher and searcher must agree byte for byte: the key is derived
        // from the seed text, and the salt layout is fixed.
        assert_eq!(
            index_key().to_bytes(),
            <[u8; 32]>::from(Sha256::digest(KEY_SEED))
        );
        assert_eq!(slot_salt("debian", 3), b"shoal-kw1:3:debian");
        assert_eq!(slot_of(&[7; 20], 4), 3);
        assert_ne!(slot_target("debian", 0), slot_target("debian", 1));
    }
}
