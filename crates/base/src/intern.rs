//! One shared copy of each tracker URL in a process.
//!
//! A daemon holds thousands of torrents, and most name the same handful of
//! trackers: each torrent's metainfo and each torrent's announcer would
//! otherwise keep a copy of every URL (about 56 bytes each with the
//! allocator's header). [`intern`] hands out one [`Arc<str>`] per distinct
//! string instead, so a copy costs a pointer.
//!
//! Invariants: the table holds one strong reference to each string it
//! knows; a string no one else holds any more is dropped from it by a sweep,
//! which runs when the table has grown to twice its size after the last
//! sweep (so sweeps cost O(1) per call, amortised). The table is a global
//! behind a mutex: interning happens when torrents are loaded, never on a
//! hot path.
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Size under which the table is never swept.
const SWEEP_FLOOR: usize = 64;

#[derive(Default)]
struct Table {
    set: HashSet<Arc<str>>,
    /// The size that triggers the next sweep.
    sweep_at: usize,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// The shared copy of `s` (made on first use).
pub fn intern(s: &str) -> Arc<str> {
    // A panic while the lock was held cannot leave the set inconsistent
    // (each operation is one call on it): a poisoned lock is used as is.
    let mut t = table().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(a) = t.set.get(s) {
        return a.clone();
    }
    if t.set.len() >= t.sweep_at.max(SWEEP_FLOOR) {
        t.set.retain(|a| Arc::strong_count(a) > 1);
        t.set.shrink_to_fit();
        t.sweep_at = t.set.len() * 2;
    }
    let a: Arc<str> = Arc::from(s);
    t.set.insert(a.clone());
    a
}

/// Strings the table holds now (live or not yet swept); for tests.
pub fn interned_count() -> usize {
    table()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_allocation() {
        let a = intern("udp://tracker.example:1337/announce");
        let owned = String::from("udp://tracker.example:1337/announce");
        let b = intern(&owned);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "udp://tracker.example:1337/announce");
        let c = intern("http://other.example/announce");
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn strings_no_one_holds_are_swept() {
        // Other tests share the global table: count only our own strings.
        let ours = |prefix: &str| {
            table()
                .lock()
                .unwrap()
                .set
                .iter()
                .filter(|s| s.starts_with(prefix))
                .count()
        };
        let kept: Vec<Arc<str>> = (0..10).map(|i| intern(&format!("kept-{i}"))).collect();
        for i in 0..5000 {
            // Dropped at once: only the table holds them.
            intern(&format!("gone-{i}"));
        }
        // Sweeps ran while the table grew: it is far below 5,000 of them.
        assert!(ours("gone-") < 2500, "{}", ours("gone-"));
        assert_eq!(ours("kept-"), 10);
        for (i, k) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(k, &intern(&format!("kept-{i}"))));
        }
        assert!(interned_count() >= 10);
    }
}
