#![no_main]
//! Fuzz the .torrent parser: no panics; whatever is accepted has safe relative
//! paths inside the root and a consistent piece layout, and what it reports as
//! irregular (the lenient reading of files from the wild) is consistent too.
use libfuzzer_sys::fuzz_target;
use shoal_metainfo::{Irregularity, Torrent};
use std::path::Component;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Torrent::from_bytes(data) {
        assert!(t.total_length() > 0);
        assert_eq!(
            u64::from(t.piece_count()),
            t.total_length().div_ceil(t.piece_length())
        );
        let mut end = 0;
        for (i, f) in t.files().iter().enumerate() {
            assert_eq!(f.offset, end);
            end = f.end();
            for p in std::iter::once(&f.path).chain(f.symlink.as_ref()) {
                assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
            }
            if t.needs_piece_layer(i) {
                assert!(t.piece_layer(i).is_none());
            }
        }
        assert_eq!(end, t.total_length());
        for irr in t.irregularities() {
            assert!(!irr.to_string().contains('\n'));
            if let Irregularity::TrailingBytes { offset, len } = irr {
                assert_eq!(offset + len, data.len());
                // The same torrent without them loads the same, regularly there.
                let head = Torrent::from_bytes(&data[..*offset]).expect("prefix loads");
                assert_eq!(head.info_hashes(), t.info_hashes());
            }
        }
        let _ = t.magnet().to_uri();
    }
    if let Ok(t) = Torrent::from_info_bytes(data, &shoal_metainfo::ParseLimits::default()) {
        assert_eq!(t.info_bytes(), data);
    }
});
