//! Parsing and checking what the user typed for `shoal dht`: IDs, prefixes,
//! addresses, BEP 44 values and salts. Every failure is an [`InvalidInput`] naming the
//! option and the reason, so the command exits with 2 before sending anything.
use std::net::SocketAddr;

use shoal_dht::item::check_value;
use shoal_dht::krpc::{MAX_ITEM_V, MAX_SALT};
use shoal_dht::Id20;

use crate::cli::InvalidInput;

/// Longest hex string accepted where a bencoded value is expected (2 digits a byte).
const MAX_VALUE_HEX: usize = 2 * MAX_ITEM_V;

fn invalid(what: String) -> anyhow::Error {
    InvalidInput(what).into()
}

/// Shows at most 80 characters of user input in an error message.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// A 20-byte ID given as exactly 40 hex digits.
pub fn parse_id(what: &str, s: &str) -> anyhow::Result<Id20> {
    if s.len() != 40 {
        return Err(invalid(format!(
            "{what} {}: expected 40 hex digits, got {}",
            shown(s),
            s.len()
        )));
    }
    Id20::from_hex(s).ok_or_else(|| invalid(format!("{what} {}: not hex", shown(s))))
}

/// A hex prefix of 1 to 40 digits, padded with zeros to a 20-byte target (BEP 51).
pub fn parse_prefix(what: &str, s: &str) -> anyhow::Result<Id20> {
    if s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "{what} {}: expected 1 to 40 hex digits",
            shown(s)
        )));
    }
    let padded = format!("{s:0<40}");
    Id20::from_hex(&padded).ok_or_else(|| invalid(format!("{what} {}: not hex", shown(s))))
}

/// A 32-byte ed25519 public key given as 64 hex digits.
pub fn parse_pubkey(s: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = (s.len() == 64)
        .then(|| hex::decode(s).ok())
        .flatten()
        .ok_or_else(|| invalid(format!("public key {}: expected 64 hex digits", shown(s))))?;
    bytes
        .try_into()
        .map_err(|_| invalid(format!("public key {}: expected 32 bytes", shown(s))))
}

/// A socket address `IP:PORT` (`[v6]:PORT` for IPv6); port 0 is refused except for `--bind`.
pub fn parse_socket_addr(what: &str, s: &str) -> anyhow::Result<SocketAddr> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| invalid(format!("{what} {}: expected IP:PORT", shown(s))))?;
    if a.port() == 0 && what != "--bind" {
        return Err(invalid(format!("{what} {}: port 0", shown(s))));
    }
    Ok(a)
}

/// The bencoded BEP 44 value: the string `text` as a bencoded byte string, or the
/// bencoded value given in hex; at most 1000 bytes, and one valid bencoded value.
pub fn value(text: Option<&str>, bencoded_hex: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let v = match (text, bencoded_hex) {
        (Some(t), None) => {
            let mut v = format!("{}:", t.len()).into_bytes();
            v.extend_from_slice(t.as_bytes());
            v
        }
        (None, Some(h)) => {
            if h.len() > MAX_VALUE_HEX {
                return Err(invalid(format!(
                    "--bencoded: value of {} bytes exceeds {MAX_ITEM_V}",
                    h.len() / 2
                )));
            }
            hex::decode(h).map_err(|e| invalid(format!("--bencoded {}: {e}", shown(h))))?
        }
        _ => return Err(invalid("give either VALUE or --bencoded HEX".to_string())),
    };
    if v.len() > MAX_ITEM_V {
        return Err(invalid(format!(
            "value of {} bytes (bencoded) exceeds {MAX_ITEM_V}",
            v.len()
        )));
    }
    check_value(&v, b"").map_err(|e| invalid(e.to_string()))?;
    Ok(v)
}

/// A BEP 44 salt (its UTF-8 bytes), at most 64 bytes.
pub fn salt(s: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let salt = s.unwrap_or("").as_bytes().to_vec();
    if salt.len() > MAX_SALT {
        return Err(invalid(format!(
            "--salt: {} bytes exceeds {MAX_SALT}",
            salt.len()
        )));
    }
    Ok(salt)
}

/// `A..B` (or `A`) milliseconds, `A <= B <= 60000`.
pub fn parse_rtt(s: &str) -> anyhow::Result<(u32, u32)> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let num = |x: &str| x.trim().parse::<u32>().ok();
    match (num(a), num(b)) {
        (Some(a), Some(b)) if a <= b && b <= 60_000 => Ok((a, b)),
        _ => Err(invalid(format!(
            "--rtt-ms {}: expected A..B milliseconds with A <= B <= 60000",
            shown(s)
        ))),
    }
}

/// The bencoded value as text when it is a UTF-8 byte string (what `put VALUE` stores).
pub fn value_text(v: &[u8]) -> Option<String> {
    let lim = shoal_bencode::Limits::message();
    match shoal_bencode::decode(v, &lim).ok()? {
        shoal_bencode::Value::Bytes(b) => String::from_utf8(b.into_owned()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_invalid(r: anyhow::Result<impl std::fmt::Debug>) -> bool {
        r.err().is_some_and(|e| e.is::<InvalidInput>())
    }

    #[test]
    fn ids_and_prefixes() {
        let h = "00112233445566778899aabbccddeeff00112233";
        assert_eq!(parse_id("ID", h).unwrap().to_hex(), h);
        assert!(is_invalid(parse_id("ID", &h[..39])));
        assert!(is_invalid(parse_id("ID", &h.replace('a', "g"))));
        assert_eq!(
            parse_prefix("P", "abc").unwrap().to_hex(),
            format!("abc{}", "0".repeat(37))
        );
        assert!(is_invalid(parse_prefix("P", "")));
        assert!(is_invalid(parse_prefix("P", "xyz")));
        assert!(is_invalid(parse_prefix("P", &"a".repeat(41))));
    }

    #[test]
    fn addresses_and_keys() {
        assert_eq!(
            parse_socket_addr("--bootstrap", "127.0.0.1:6881").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 6881))
        );
        assert!(parse_socket_addr("--bootstrap", "[::1]:1")
            .unwrap()
            .is_ipv6());
        assert!(is_invalid(parse_socket_addr("--bootstrap", "127.0.0.1")));
        assert!(is_invalid(parse_socket_addr("--bootstrap", "127.0.0.1:0")));
        assert!(parse_socket_addr("--bind", "127.0.0.1:0").is_ok());
        assert!(is_invalid(parse_pubkey("ab")));
        assert_eq!(parse_pubkey(&"01".repeat(32)).unwrap(), [1u8; 32]);
    }

    #[test]
    fn values_and_salts() {
        assert_eq!(
            value(Some("Hello World!"), None).unwrap(),
            b"12:Hello World!"
        );
        assert_eq!(value(None, Some("69343265")).unwrap(), b"i42e");
        assert!(is_invalid(value(None, Some("6934")))); // "i4": not bencode
        assert!(is_invalid(value(None, Some("zz"))));
        assert!(is_invalid(value(None, None)));
        assert!(is_invalid(value(Some(&"x".repeat(997)), None))); // 4 + 997 bytes
        assert!(value(Some(&"x".repeat(996)), None).is_ok()); // 4 + 996 = 1000
        assert!(salt(Some(&"s".repeat(64))).is_ok());
        assert!(is_invalid(salt(Some(&"s".repeat(65)))));
        assert_eq!(parse_rtt("100..200").unwrap(), (100, 200));
        assert_eq!(parse_rtt("100").unwrap(), (100, 100));
        assert!(is_invalid(parse_rtt("200..100")));
        assert!(is_invalid(parse_rtt("a..b")));
    }

    proptest! {
        #[test]
        fn text_values_round_trip(s in ".{0,300}") {
            if let Ok(v) = value(Some(&s), None) {
                prop_assert_eq!(value_text(&v), Some(s));
            }
        }

        #[test]
        fn prefix_keeps_its_digits(p in "[0-9a-f]{1,40}") {
            let id = parse_prefix("P", &p).unwrap();
            prop_assert!(id.to_hex().starts_with(&p));
        }
    }
}
