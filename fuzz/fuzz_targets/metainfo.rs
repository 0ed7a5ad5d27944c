#![no_main]
//! Fuzz the .torrent parser: no panics; whatever is accepted has safe relative
//! paths inside the root and a consistent piece layout.
use libfuzzer_sys::fuzz_target;
use shoal_metainfo::Torrent;
use std::path::Component;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Torrent::from_bytes(data) {
        assert!(t.total_length() > 0);
        assert_eq!(
            u64::from(t.piece_count()),
            t.total_length().div_ceil(t.piece_length())
        );
        let mut end = 0;
        for f in t.files() {
            assert_eq!(f.offset, end);
            end = f.end();
            for p in std::iter::once(&f.path).chain(f.symlink.as_ref()) {
                assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
        assert_eq!(end, t.total_length());
        let _ = t.magnet().to_uri();
    }
    let _ = Torrent::from_info_bytes(data, &shoal_metainfo::ParseLimits::default());
});
