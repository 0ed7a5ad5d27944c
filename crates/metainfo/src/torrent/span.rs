//! Where the v1 piece hashes lie in a torrent's info bytes (see
//! `Torrent::pieces_v1`).

/// Where `part` is in `whole`, where both are slices of the decoder's input
/// (`part` inside `whole`): found by address, else (never, while the decoder
/// lends its input) by search. Equal bytes either way.
pub(super) fn span_in(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let by_address = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .filter(|&i| whole.get(i..i + part.len()) == Some(part));
    let found = by_address.or_else(|| {
        whole
            .windows(part.len().max(1))
            .position(|w| w == part)
            .filter(|_| !part.is_empty())
    });
    match found {
        Some(i) => i..i + part.len(),
        None => 0..0,
    }
}

#[cfg(test)]
mod tests {
    use super::span_in;

    #[test]
    fn a_slice_is_found_by_address_and_a_copy_by_search() {
        let whole = b"d6:pieces4:abcd4:name4:abcde".to_vec();
        // The slice itself: by address (the name's equal bytes come later).
        assert_eq!(span_in(&whole, &whole[11..15]), 11..15);
        // A copy of the name's bytes: the first equal bytes, equal content.
        let copy = b"abcd".to_vec();
        let r = span_in(&whole, &copy);
        assert_eq!(&whole[r], b"abcd");
        assert_eq!(span_in(&whole, b"zz"), 0..0);
        assert_eq!(span_in(&whole, b""), 0..0);
    }

    #[test]
    fn piece_hashes_come_from_the_info_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let opts = crate::create::CreateOptions {
            piece_length: Some(16384),
            ..Default::default()
        };
        let t = crate::create::CreatePlan::new(&dir.path().join("f"), opts)
            .unwrap()
            .build(&|_| {})
            .unwrap();
        let t = crate::Torrent::from_bytes(&t).unwrap();
        for (i, chunk) in data.chunks(16384).enumerate() {
            let want: [u8; 20] = <sha1::Sha1 as sha1::Digest>::digest(chunk).into();
            assert_eq!(t.piece_hash_v1(i as u32), Some(want));
        }
        assert_eq!(t.piece_hash_v1(7), None);
    }
}
