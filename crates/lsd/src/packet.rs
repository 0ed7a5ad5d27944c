//! The BEP 14 announce: an HTTP-like `BT-SEARCH` request in one UDP
//! datagram. [`encode`] writes what libtorrent writes (several `Infohash`
//! headers when they fit in [`MAX_DATAGRAM`] bytes); [`parse`] reads any
//! client's announce with limits on size and header count, ignoring headers
//! it does not know and info hashes that are not 40 hex digits.
use shoal_base::InfoHash;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// The LSD UDP port, on both groups.
pub const PORT: u16 = 6771;
/// The IPv4 group (organisation-local scope).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
/// The IPv6 group (site-local scope).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f);
/// Largest datagram we send (BEP 14: stay under 1400 bytes with several
/// info hashes).
pub const MAX_DATAGRAM: usize = 1400;
/// Largest datagram we parse; anything longer is refused unread.
pub const MAX_INPUT: usize = 4096;
/// Most header lines we read in one announce.
pub const MAX_HEADERS: usize = 100;
/// Most info hashes we take from one announce (the rest are ignored).
pub const MAX_INFO_HASHES: usize = 64;

/// One of the two multicast groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// 239.192.152.143:6771.
    V4,
    /// [ff15::efc0:988f]:6771.
    V6,
}

impl Group {
    /// The group's address and port, where announces are sent.
    pub fn addr(self) -> SocketAddr {
        match self {
            Group::V4 => SocketAddr::from((GROUP_V4, PORT)),
            Group::V6 => SocketAddr::from((GROUP_V6, PORT)),
        }
    }

    /// The `Host` header value (RFC 2732 brackets for IPv6).
    pub fn host(self) -> &'static str {
        match self {
            Group::V4 => "239.192.152.143:6771",
            Group::V6 => "[ff15::efc0:988f]:6771",
        }
    }
}

/// A parsed announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The port the announcing client listens on (its address is the
    /// datagram's source).
    pub port: u16,
    /// The swarms it is in (valid, non-zero hashes only, at most
    /// [`MAX_INFO_HASHES`]).
    pub info_hashes: Vec<InfoHash>,
    /// The sender's cookie, if any, as sent (at most 64 bytes).
    pub cookie: Option<String>,
}

impl Announce {
    /// The cookie read as hexadecimal, as libtorrent writes and compares it.
    pub fn cookie_value(&self) -> Option<u32> {
        let c = self.cookie.as_deref()?;
        let c = c
            .strip_prefix("0x")
            .or_else(|| c.strip_prefix("0X"))
            .unwrap_or(c);
        u32::from_str_radix(c, 16).ok()
    }
}

/// Why a datagram is not an announce we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Longer than [`MAX_INPUT`].
    #[error("lsd: datagram of {0} bytes is too long")]
    TooLong(usize),
    /// Not text, or the request line is not `BT-SEARCH`.
    #[error("lsd: not a BT-SEARCH request")]
    NotBtSearch,
    /// More than [`MAX_HEADERS`] header lines.
    #[error("lsd: more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// A header line without a colon.
    #[error("lsd: malformed header line")]
    BadHeader,
    /// No `Port` header.
    #[error("lsd: no Port header")]
    MissingPort,
    /// A `Port` that is not a number in 1..=65535.
    #[error("lsd: bad Port {0:?}")]
    BadPort(String),
    /// No usable `Infohash` header.
    #[error("lsd: no valid Infohash")]
    NoInfoHash,
}

const HEAD: &str = "BT-SEARCH * HTTP/1.1\r\n";
const INFOHASH_LINE: usize = "Infohash: \r\n".len() + 40;

/// Writes an announce for `info_hashes` to `group`, as many as fit in
/// [`MAX_DATAGRAM`] bytes (at least one); returns the datagram and how many
/// hashes it carries. The cookie is written in lowercase hex.
pub fn encode(
    group: Group,
    port: u16,
    cookie: Option<u32>,
    info_hashes: &[InfoHash],
) -> (Vec<u8>, usize) {
    let mut head = format!("{HEAD}Host: {}\r\nPort: {port}\r\n", group.host());
    let tail = match cookie {
        Some(c) => format!("cookie: {c:x}\r\n\r\n\r\n"),
        None => "\r\n\r\n".to_string(),
    };
    let room = MAX_DATAGRAM.saturating_sub(head.len() + tail.len()) / INFOHASH_LINE;
    let n = info_hashes.len().min(room.max(1));
    for ih in &info_hashes[..n] {
        head.push_str("Infohash: ");
        head.push_str(&hex::encode(ih));
        head.push_str("\r\n");
    }
    head.push_str(&tail);
    (head.into_bytes(), n)
}

/// How many info hashes one datagram to `group` carries at most.
pub fn hashes_per_datagram(group: Group, port: u16, cookie: Option<u32>) -> usize {
    let many = [InfoHash([0u8; 20]); MAX_DATAGRAM / INFOHASH_LINE + 1];
    encode(group, port, cookie, &many).1
}

/// Reads an announce. Header names are case-insensitive, lines end in CRLF
/// or LF, unknown headers are ignored, and so are `Infohash` values that are
/// not 40 hex digits or are all zeros (as libtorrent does).
pub fn parse(data: &[u8]) -> Result<Announce, ParseError> {
    if data.len() > MAX_INPUT {
        return Err(ParseError::TooLong(data.len()));
    }
    let text = std::str::from_utf8(data).map_err(|_| ParseError::NotBtSearch)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request = lines.next().unwrap_or("");
    let method = request.split_ascii_whitespace().next().unwrap_or("");
    if !method.eq_ignore_ascii_case("BT-SEARCH") {
        return Err(ParseError::NotBtSearch);
    }
    let mut port = None;
    let mut cookie = None;
    let mut info_hashes = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            break;
        }
        if i >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::BadHeader)?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("port") {
            let p: u16 = value
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| ParseError::BadPort(value.chars().take(16).collect()))?;
            port = Some(p);
        } else if name.eq_ignore_ascii_case("infohash") {
            let mut ih = [0u8; 20];
            if info_hashes.len() < MAX_INFO_HASHES
                && value.len() == 40
                && hex::decode_to_slice(value, &mut ih).is_ok()
                && ih != [0u8; 20]
                && !info_hashes.contains(&InfoHash(ih))
            {
                info_hashes.push(InfoHash(ih));
            }
        } else if name.eq_ignore_ascii_case("cookie") && value.len() <= 64 {
            cookie = Some(value.to_string());
        }
    }
    let port = port.ok_or(ParseError::MissingPort)?;
    if info_hashes.is_empty() {
        return Err(ParseError::NoInfoHash);
    }
    Ok(Announce {
        port,
        info_hashes,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ih(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn encodes_what_libtorrent_sends() {
        let (d, n) = encode(Group::V4, 6881, Some(0xbeef), &[ih(0xab)]);
        assert_eq!(n, 1);
        let want = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: {}\r\ncookie: beef\r\n\r\n\r\n",
            "ab".repeat(20)
        );
        assert_eq!(String::from_utf8(d).unwrap(), want);
        let (d6, _) = encode(Group::V6, 1, None, &[ih(1)]);
        let s = String::from_utf8(d6).unwrap();
        assert!(s.contains("\r\nHost: [ff15::efc0:988f]:6771\r\n"), "{s}");
        assert!(!s.contains("cookie"));
        assert_eq!(Group::V6.addr().to_string(), "[ff15::efc0:988f]:6771");
        assert_eq!(Group::V4.addr().to_string(), "239.192.152.143:6771");
    }

    #[test]
    fn round_trips_and_splits_at_the_size_limit() {
        let hashes: Vec<InfoHash> = (1..=60).map(ih).collect();
        let mut rest = &hashes[..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let (d, n) = encode(Group::V6, 65535, Some(u32::MAX), rest);
            assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
            assert!(n >= 1);
            let a = parse(&d).unwrap();
            assert_eq!(a.port, 65535);
            assert_eq!(a.cookie_value(), Some(u32::MAX));
            assert_eq!(a.info_hashes, rest[..n]);
            seen.extend(a.info_hashes);
            rest = &rest[n..];
        }
        assert_eq!(seen, hashes);
        let per = hashes_per_datagram(Group::V6, 65535, Some(u32::MAX));
        assert!(per > 1 && per < 60, "{per}");
        // One more line would not fit.
        let (d, _) = encode(Group::V6, 65535, Some(u32::MAX), &hashes[..per]);
        assert!(d.len() + INFOHASH_LINE > MAX_DATAGRAM);
    }

    #[test]
    fn parses_other_spellings_and_ignores_the_unknown() {
        let text = format!(
            "bt-search * HTTP/1.1\nhost: 239.192.152.143:6771\nX-Other: 1\nPORT:  51413 \ninfohash: {}\ninfohash: {}\ninfohash: nothex\ninfohash: {}\nCookie: 0x1F\n\n",
            "AB".repeat(20),
            "00".repeat(20),
            "ab".repeat(20),
        );
        let a = parse(text.as_bytes()).unwrap();
        assert_eq!(a.port, 51413);
        assert_eq!(
            a.info_hashes,
            vec![ih(0xab)],
            "zeros, junk and repeats ignored"
        );
        assert_eq!(a.cookie_value(), Some(0x1f));
        // Without the final blank line (the datagram is the message).
        let a = parse(
            format!(
                "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {}",
                "01".repeat(20)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(a.port, 1);
        assert_eq!(a.cookie, None);
    }

    #[test]
    fn refuses_what_is_not_an_announce() {
        let ok_ih = format!("Infohash: {}\r\n", "01".repeat(20));
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (
                vec![b'x'; MAX_INPUT + 1],
                ParseError::TooLong(MAX_INPUT + 1),
            ),
            (b"d1:ad2:id20:".to_vec(), ParseError::NotBtSearch),
            (vec![0xff, 0xfe], ParseError::NotBtSearch),
            (
                format!("M-SEARCH * HTTP/1.1\r\nPort: 1\r\n{ok_ih}\r\n").into_bytes(),
                ParseError::NotBtSearch,
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\n{ok_ih}\r\n").into_bytes(),
                ParseError::MissingPort,
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n{ok_ih}\r\n").into_bytes(),
                ParseError::BadPort("0".into()),
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\n{ok_ih}\r\n").into_bytes(),
                ParseError::BadPort("70000".into()),
            ),
            (
                b"BT-SEARCH * HTTP/1.1\r\nPort: 5\r\nInfohash: 12\r\n\r\n".to_vec(),
                ParseError::NoInfoHash,
            ),
            (
                b"BT-SEARCH * HTTP/1.1\r\nPort 5\r\n\r\n".to_vec(),
                ParseError::BadHeader,
            ),
            (
                format!(
                    "BT-SEARCH * HTTP/1.1\r\n{}",
                    "A: b\r\n".repeat(MAX_HEADERS + 1)
                )
                .into_bytes(),
                ParseError::TooManyHeaders,
            ),
        ];
        for (data, want) in cases {
            assert_eq!(
                parse(&data),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    #[test]
    fn takes_at_most_the_limit_of_info_hashes() {
        let mut text = String::from("BT-SEARCH * HTTP/1.1\r\nPort: 9\r\n");
        for i in 0..(MAX_INFO_HASHES + 10) {
            let mut h = [1u8; 20];
            h[..8].copy_from_slice(&(i as u64).to_be_bytes());
            text.push_str(&format!("Infohash: {}\r\n", hex::encode(h)));
        }
        assert_eq!(
            parse(text.as_bytes()).unwrap().info_hashes.len(),
            MAX_INFO_HASHES
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let _ = parse(&data);
        }

        #[test]
        fn encode_parse_round_trip(
            port in 1u16..,
            cookie in proptest::option::of(proptest::num::u32::ANY),
            hashes in proptest::collection::vec(proptest::array::uniform20(1u8..), 1..40),
            v6 in proptest::bool::ANY,
        ) {
            let mut hashes: Vec<InfoHash> = hashes.into_iter().map(InfoHash).collect();
            hashes.dedup();
            let group = if v6 { Group::V6 } else { Group::V4 };
            let (d, n) = encode(group, port, cookie, &hashes);
            proptest::prop_assert!(d.len() <= MAX_DATAGRAM);
            let a = parse(&d).unwrap();
            proptest::prop_assert_eq!(a.port, port);
            proptest::prop_assert_eq!(a.cookie_value(), cookie);
            let mut want = hashes[..n].to_vec();
            let mut seen = Vec::new();
            want.retain(|h| if seen.contains(h) { false } else { seen.push(*h); true });
            proptest::prop_assert_eq!(a.info_hashes, want);
        }
    }
}
