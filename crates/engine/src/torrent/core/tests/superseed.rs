//! Super-seeding (BEP 16): what an initial seed reveals, and when it stops.
use super::*;

/// The pieces revealed to `key` by `have` messages among `acts`.
fn haves_to(acts: &[Action], key: PeerKey) -> Vec<u32> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Peer(k, PeerCmd::Have(p)) if *k == key => Some(*p),
            _ => None,
        })
        .collect()
}

#[test]
fn initial_seed_super_seeds_until_another_seed_connects() {
    let mut h = Harness::with_limits(8, &all(8), 4, 50, true);
    let a = h.peer(1, &[]);
    assert!(h.core.is_super_seeded(a));
    // Choked: one piece keeps it interested; it is all it was told of.
    let shown = haves_to(&h.actions(), a);
    assert_eq!(shown.len(), 1, "{shown:?}");
    let told: Vec<u32> = h.core.announce_to(a).iter_ones().collect();
    assert_eq!(told, shown);
    // Unchoked: two pieces to fetch, the one it was shown among them.
    h.feed(a, PeerMsg::Interest(true));
    let acts = h.actions();
    assert!(h.unchoked.contains(&a));
    let more = haves_to(&acts, a);
    assert_eq!(more.len(), 1, "{more:?}");
    assert_ne!(more[0], shown[0]);
    // A second peer is shown other pieces than the first one's.
    let b = h.peer(2, &[]);
    h.feed(b, PeerMsg::Interest(true));
    let acts = h.actions();
    assert!(h.unchoked.contains(&b));
    let to_b = haves_to(&acts, b);
    assert_eq!(to_b.len(), 2, "{to_b:?}");
    assert!(
        to_b.iter().all(|p| *p != more[0] && *p != shown[0]),
        "{to_b:?}"
    );
    // A reports a piece it was shown: it gets another one.
    h.feed(a, PeerMsg::Have(shown[0]));
    let next = haves_to(&h.actions(), a);
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(![shown[0], more[0]].contains(&next[0]));
    // A peer that reports a piece it was not shown gets nothing new.
    let other = (0..8)
        .find(|p| ![shown[0], more[0], next[0]].contains(p))
        .unwrap();
    h.feed(a, PeerMsg::Have(other));
    assert!(haves_to(&h.actions(), a).is_empty());
    // Another seed: every connection hears of what it was not shown.
    let _c = h.peer(3, &all(8));
    let acts = h.actions();
    let mut rest = haves_to(&acts, a);
    rest.sort_unstable();
    let expect: Vec<u32> = (0..8)
        .filter(|p| ![shown[0], more[0], next[0], other].contains(p))
        .collect();
    assert_eq!(rest, expect);
    assert_eq!(haves_to(&acts, b).len(), 6);
    // New connections are told every piece from now on.
    let d = h.core.accept_incoming(addr(4)).unwrap();
    assert!(!h.core.is_super_seeded(d));
    assert!(h.core.announce_to(d).is_full());
}

#[test]
fn a_torrent_completed_by_download_does_not_super_seed() {
    let mut h = Harness::with_limits(2, &[0], 4, 50, true);
    let key = h.peer(1, &all(2));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    h.deliver(key, &blocks);
    h.core.on_disk(h.now, DiskVerdict::Verified(1));
    assert!(h.core.status().is_complete());
    let d = h.core.accept_incoming(addr(2)).unwrap();
    assert!(!h.core.is_super_seeded(d));
    assert!(h.core.announce_to(d).is_full());
}
