//! Assertions shared by the metainfo integration tests: a torrent is refused
//! with a one-line error, or accepted with every path safe inside its root.
#![allow(dead_code)]
use shoal_metainfo::{MetainfoError, Problem, Torrent};
use std::path::{Component, Path};

/// The error of a torrent that must be refused (its message on one line).
pub fn reject(bytes: &[u8]) -> MetainfoError {
    match Torrent::from_bytes(bytes) {
        Ok(t) => panic!("accepted a bad torrent: {:?}", t.files()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg}");
            e
        }
    }
}

/// The key and problem of an `Invalid` error.
pub fn problem(e: &MetainfoError) -> (&str, &Problem) {
    match e {
        MetainfoError::Invalid { key, problem, .. } => (key.as_str(), problem),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A torrent that must load, with every path safe.
pub fn accept(bytes: &[u8]) -> Torrent {
    let t = Torrent::from_bytes(bytes).unwrap_or_else(|e| panic!("rejected: {e}"));
    assert_safe(&t);
    t
}

/// Every path relative, made only of normal components, inside the root folder.
pub fn assert_safe(t: &Torrent) {
    for f in t.files() {
        assert_inside(&f.path, t);
        if let Some(target) = &f.symlink {
            assert_inside(target, t);
        }
    }
}

pub fn assert_inside(p: &Path, t: &Torrent) {
    assert!(p.is_relative(), "{p:?}");
    let comps: Vec<Component> = p.components().collect();
    assert!(!comps.is_empty());
    for c in &comps {
        match c {
            Component::Normal(n) => {
                let n = n.to_string_lossy();
                assert!(
                    n.len() <= 255 && !n.contains('\0') && !n.contains('\\') && !n.contains(':')
                );
            }
            other => panic!("bad component {other:?} in {p:?}"),
        }
    }
    if t.is_multi_file() {
        assert_eq!(
            comps.first(),
            Some(&Component::Normal(t.name().as_ref())),
            "{p:?}"
        );
    }
}
