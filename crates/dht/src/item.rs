//! BEP 44 items: targets, the signed buffer, signing and verification.
use crate::id::Id20;
use crate::krpc::{MAX_ITEM_V, MAX_SALT};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha1::{Digest, Sha1};

/// Why an item is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ItemError {
    /// The bencoded value is larger than 1000 bytes (BEP 44 error 205).
    #[error("bep44: value of {0} bytes exceeds 1000")]
    TooBig(usize),
    /// The salt is longer than 64 bytes (BEP 44 error 207).
    #[error("bep44: salt of {0} bytes exceeds 64")]
    SaltTooBig(usize),
    /// The signature does not verify (BEP 44 error 206).
    #[error("bep44: invalid signature")]
    BadSignature,
    /// The value is not valid bencode.
    #[error("bep44: value is not bencode: {0}")]
    NotBencode(String),
    /// The value does not hash to the requested target.
    #[error("bep44: item does not match target {0}")]
    WrongTarget(Id20),
}

/// Target of an immutable item: SHA-1 of its bencoded value.
pub fn immutable_target(v: &[u8]) -> Id20 {
    Id20(Sha1::digest(v).into())
}

/// Target of a mutable item: SHA-1 of the public key followed by the salt.
pub fn mutable_target(k: &[u8; 32], salt: &[u8]) -> Id20 {
    let mut h = Sha1::new();
    h.update(k);
    h.update(salt);
    Id20(h.finalize().into())
}

/// The buffer a mutable item's signature covers:
/// `[4:salt<len>:<salt>]3:seqi<seq>e1:v<v>`.
pub fn signable(salt: &[u8], seq: i64, v: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() + salt.len() + 32);
    if !salt.is_empty() {
        b.extend_from_slice(b"4:salt");
        b.extend_from_slice(salt.len().to_string().as_bytes());
        b.push(b':');
        b.extend_from_slice(salt);
    }
    b.extend_from_slice(b"3:seqi");
    b.extend_from_slice(seq.to_string().as_bytes());
    b.extend_from_slice(b"e1:v");
    b.extend_from_slice(v);
    b
}

/// Checks size limits and that `v` is one bencoded value.
pub fn check_value(v: &[u8], salt: &[u8]) -> Result<(), ItemError> {
    if v.len() > MAX_ITEM_V {
        return Err(ItemError::TooBig(v.len()));
    }
    if salt.len() > MAX_SALT {
        return Err(ItemError::SaltTooBig(salt.len()));
    }
    let lim = shoal_bencode::Limits {
        max_depth: 32,
        max_string_len: MAX_ITEM_V,
        max_elements: MAX_ITEM_V,
    };
    shoal_bencode::decode(v, &lim).map_err(|e| ItemError::NotBencode(e.to_string()))?;
    Ok(())
}

/// Signs a mutable item.
pub fn sign(key: &SigningKey, salt: &[u8], seq: i64, v: &[u8]) -> [u8; 64] {
    key.sign(&signable(salt, seq, v)).to_bytes()
}

/// Verifies a mutable item's signature.
pub fn verify(k: &[u8; 32], sig: &[u8; 64], salt: &[u8], seq: i64, v: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(k) else {
        return false;
    };
    vk.verify(&signable(salt, seq, v), &Signature::from_bytes(sig))
        .is_ok()
}

/// A BEP 44 item as stored and returned by lookups.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// The bencoded value.
    pub v: Vec<u8>,
    /// Mutable: public key and signature.
    pub mutable: Option<MutableFields>,
}

/// The signed part of a mutable item.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MutableFields {
    /// ed25519 public key.
    pub k: [u8; 32],
    /// Signature (64 bytes; serde has no array impl that large, so a Vec).
    pub sig: Vec<u8>,
    /// Sequence number.
    pub seq: i64,
    /// Salt (possibly empty).
    pub salt: Vec<u8>,
}

impl Item {
    /// An immutable item; checks the value.
    pub fn immutable(v: Vec<u8>) -> Result<Item, ItemError> {
        check_value(&v, b"")?;
        Ok(Item { v, mutable: None })
    }

    /// A signed mutable item; checks the value and salt.
    pub fn mutable(
        key: &SigningKey,
        salt: Vec<u8>,
        seq: i64,
        v: Vec<u8>,
    ) -> Result<Item, ItemError> {
        check_value(&v, &salt)?;
        let sig = sign(key, &salt, seq, &v).to_vec();
        Ok(Item {
            v,
            mutable: Some(MutableFields {
                k: key.verifying_key().to_bytes(),
                sig,
                seq,
                salt,
            }),
        })
    }

    /// The item's target.
    pub fn target(&self) -> Id20 {
        match &self.mutable {
            None => immutable_target(&self.v),
            Some(m) => mutable_target(&m.k, &m.salt),
        }
    }

    /// Checks limits, and the signature of a mutable item.
    pub fn validate(&self) -> Result<(), ItemError> {
        match &self.mutable {
            None => check_value(&self.v, b""),
            Some(m) => {
                check_value(&self.v, &m.salt)?;
                let sig: [u8; 64] = m
                    .sig
                    .as_slice()
                    .try_into()
                    .map_err(|_| ItemError::BadSignature)?;
                if verify(&m.k, &sig, &m.salt, m.seq, &self.v) {
                    Ok(())
                } else {
                    Err(ItemError::BadSignature)
                }
            }
        }
    }

    /// The sequence number (0 for immutable items).
    pub fn seq(&self) -> i64 {
        self.mutable.as_ref().map_or(0, |m| m.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const PK: &str = "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548";
    const SK: &str = "e06d3183d14159228433ed599221b80bd0a5ce8352e4bdf0262f76786ef1c74db7e7a9fea2c0eb269d61e3b38e450a22e754941ac78479d6c54e1faf6037881d";

    fn check_vector(salt: &[u8], buffer: &[u8], target: &str, sig: &str) {
        let v = b"12:Hello World!";
        assert_eq!(signable(salt, 1, v), buffer);
        let k: [u8; 32] = h(PK).try_into().unwrap();
        assert_eq!(mutable_target(&k, salt).to_hex(), target);
        let sig: [u8; 64] = h(sig).try_into().unwrap();
        assert!(verify(&k, &sig, salt, 1, v));
        assert!(!verify(&k, &sig, salt, 2, v));
        // The spec's private key is an expanded (scalar || prefix) key: signing with it
        // must reproduce the exact signature (ed25519 is deterministic).
        let sk: [u8; 64] = h(SK).try_into().unwrap();
        let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from_bytes(&sk);
        let vk = VerifyingKey::from_bytes(&k).unwrap();
        let ours = ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&esk, buffer, &vk);
        assert_eq!(ours.to_bytes(), sig);
    }

    #[test]
    fn bep44_vector_mutable() {
        check_vector(
            b"",
            b"3:seqi1e1:v12:Hello World!",
            "4a533d47ec9c7d95b1ad75f576cffc641853b750",
            "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
        );
    }

    #[test]
    fn bep44_vector_salted() {
        check_vector(
            b"foobar",
            b"4:salt6:foobar3:seqi1e1:v12:Hello World!",
            "411eba73b6f087ca51a3795d9c8c938d365e32c1",
            "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
        );
    }

    #[test]
    fn bep44_vector_immutable() {
        assert_eq!(
            immutable_target(b"12:Hello World!").to_hex(),
            "e5f96f6f38320f0f33959cb4d3d656452117aadb"
        );
    }

    #[test]
    fn item_limits_and_validation() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let it = Item::mutable(&key, b"s".to_vec(), 5, b"i42e".to_vec()).unwrap();
        assert!(it.validate().is_ok());
        let mut bad = it.clone();
        bad.v = b"i43e".to_vec();
        assert_eq!(bad.validate(), Err(ItemError::BadSignature));
        let big = format!("1001:{}", "x".repeat(1001)).into_bytes();
        assert!(matches!(Item::immutable(big), Err(ItemError::TooBig(_))));
        assert!(matches!(
            Item::mutable(&key, vec![0; 65], 1, b"i1e".to_vec()),
            Err(ItemError::SaltTooBig(65))
        ));
        assert!(matches!(
            Item::immutable(b"x".to_vec()),
            Err(ItemError::NotBencode(_))
        ));
    }
}
