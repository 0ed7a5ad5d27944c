//! Which blocks are asked of whom: endgame, failures, rare pieces first,
//! and blocks taken over by an idle peer.
use super::*;

#[test]
fn endgame_duplicates_a_slow_block_and_cancels_the_loser() {
    let mut h = Harness::new(1, &[], 4);
    let a = h.peer(1, &[0]);
    let b = h.peer(2, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    assert_eq!(from_a.len(), 4);
    // Every block is requested: endgame lets b ask for the same ones.
    h.feed(b, PeerMsg::Unchoked);
    let from_b = h.requested(b);
    assert!(!from_b.is_empty());
    assert!(from_b.iter().all(|x| from_a.contains(x)));
    // b delivers first: a is told to cancel.
    h.deliver(b, &from_b[..1]);
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Peer(k, PeerCmd::Cancel(bl)) if *k == a && *bl == from_b[0])));
}

#[test]
fn failed_requests_go_to_another_peer() {
    let mut h = Harness::new(1, &[], 4);
    let a = h.peer(1, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    // a times out on everything (the wire layer reports it) and chokes us.
    h.feed(a, PeerMsg::RequestsFailed(from_a.clone()));
    h.feed(a, PeerMsg::Choked);
    let b = h.peer(2, &[0]);
    h.feed(b, PeerMsg::Unchoked);
    let mut from_b = h.requested(b);
    from_b.sort();
    let mut want = from_a;
    want.sort();
    assert_eq!(from_b, want);
}

#[test]
fn a_seed_is_asked_for_rare_pieces_before_the_rest_of_common_ones() {
    let mut h = Harness::new(8, &[], 4);
    // Piece 0 is common: three leechers have it.
    let a = h.peer(1, &[0]);
    let _ = h.peer(2, &[0]);
    let _ = h.peer(3, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    assert_eq!(from_a.len(), 4);
    // a chokes us and rejects half of them: piece 0 is half free again.
    h.feed(a, PeerMsg::Choked);
    h.feed(a, PeerMsg::RequestsFailed(from_a[2..].to_vec()));
    // The seed is asked for pieces only it has, not for the rest of piece 0.
    let seed = h.peer(4, &all(8));
    h.feed(seed, PeerMsg::Unchoked);
    let from_seed = h.requested(seed);
    assert_eq!(from_seed.len(), 4, "{from_seed:?}");
    assert!(from_seed.iter().all(|b| b.piece != 0), "{from_seed:?}");
    // Another leecher with piece 0 takes its rest over.
    let d = h.peer(5, &[0]);
    h.feed(d, PeerMsg::Unchoked);
    let mut from_d = h.requested(d);
    from_d.sort();
    assert_eq!(from_d, from_a[2..].to_vec());
}

#[test]
fn an_idle_peer_takes_over_the_last_blocks_a_busy_peer_holds() {
    // Eight pieces: asking for piece 0 alone is not the endgame.
    let mut h = Harness::new(8, &[], 4);
    let a = h.peer(1, &[0]);
    let b = h.peer(2, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    assert_eq!(from_a.len(), 4, "all of piece 0");
    // b has piece 0 only, and all of it is asked of a: b takes over a's
    // last blocks (a would send them last) and a is told to cancel them.
    h.feed(b, PeerMsg::Unchoked);
    let acts = h.actions();
    let from_b: Vec<Block> = acts
        .iter()
        .filter_map(|x| match x {
            Action::Peer(k, PeerCmd::Request(bl)) if *k == b => Some(bl.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let cancelled: Vec<Block> = acts
        .iter()
        .filter_map(|x| match x {
            Action::Peer(k, PeerCmd::Cancel(bl)) if *k == a => Some(*bl),
            _ => None,
        })
        .collect();
    let mut want: Vec<Block> = from_a.clone();
    want.reverse();
    assert_eq!(from_b, want);
    assert_eq!(cancelled, want);
    // a's copy of a block still counts if it comes first: b is cancelled.
    h.deliver(a, &from_a[..1]);
    assert!(h
        .actions()
        .iter()
        .any(|x| matches!(x, Action::Peer(k, PeerCmd::Cancel(bl)) if *k == b && *bl == from_a[0])));
    // b delivers the rest; a is not asked for those blocks again.
    h.deliver(b, &from_a[1..]);
    assert!(h.requested(a).iter().all(|bl| bl.piece != 0));
}

#[test]
fn slow_start_doubles_the_pipeline_until_the_rate_stops_growing() {
    let mut h = Harness::new(64, &[], 4);
    let key = h.peer(1, &all(64));
    h.feed(key, PeerMsg::Unchoked);
    let stats = |rate| PeerMsg::Stats {
        down_rate: rate,
        recent_down_rate: rate,
        up_rate: 0,
        uploaded: 0,
        snubbed: false,
    };
    // No rate measured yet: every block delivered adds one request, so a
    // round trip that delivers the whole pipeline doubles it.
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let blocks = h.requested(key);
        rounds.push(blocks.len());
        h.deliver(key, &blocks);
    }
    assert_eq!(rounds, [4, 8, 16, 32]);
    // A report with no rate (nothing delivered in its window) ends nothing.
    h.feed(key, stats(0));
    let blocks = h.requested(key);
    assert_eq!(blocks.len(), 64);
    // The first measured rate ends slow start: from now on the rate alone
    // sizes the pipeline, one second's worth (10 blocks).
    h.feed(key, stats(10 * u64::from(BLOCK_SIZE)));
    h.deliver(key, &blocks);
    let blocks = h.requested(key);
    assert_eq!(blocks.len(), 10);
}

#[test]
fn a_choke_ends_slow_start() {
    let mut h = Harness::new(64, &[], 4);
    let key = h.peer(1, &all(64));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    h.deliver(key, &blocks);
    let held = h.requested(key);
    assert_eq!(held.len(), 8);
    // Choked: the wire layer drops what was asked.
    h.feed(key, PeerMsg::Choked);
    h.feed(key, PeerMsg::RequestsFailed(held));
    h.feed(key, PeerMsg::Unchoked);
    // Back to the rate's sizing, which knows of no rate yet: MIN_PIPELINE.
    assert_eq!(h.requested(key).len(), MIN_PIPELINE);
}
