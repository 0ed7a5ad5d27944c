//! Tests of the piece picker.
use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

#[test]
fn geometry() {
    let p = PiecePicker::new(32768, 100_000);
    assert_eq!(p.num_pieces(), 4);
    assert_eq!(p.piece_len(3), 100_000 - 3 * 32768);
    assert_eq!(p.blocks_in(3), 1);
    assert!(p.is_valid_block(&Block {
        piece: 3,
        offset: 0,
        len: 1696
    }));
    assert!(!p.is_valid_block(&Block {
        piece: 3,
        offset: 0,
        len: 16384
    }));
    assert!(!p.is_valid_block(&Block {
        piece: 4,
        offset: 0,
        len: 16384
    }));
    assert!(!p.is_valid_block(&Block {
        piece: 0,
        offset: 100,
        len: 16384
    }));
}

#[test]
fn a_chosen_piece_is_given_then_duplicated_once() {
    let mut p = PiecePicker::new(32768, 4 * 32768);
    assert!(p.has_free_blocks(3));
    assert_eq!(p.pick_in(1, 3, 10), vec![block(3, 0), block(3, 1)]);
    assert!(!p.has_free_blocks(3) && p.holds_in(3, 1) && !p.holds_in(3, 2));
    assert!(p.pick_in(2, 3, 10).is_empty(), "nothing free left");
    assert_eq!(p.duplicate_in(2, 3, 10), vec![block(3, 0), block(3, 1)]);
    assert!(
        p.duplicate_in(2, 3, 10).is_empty(),
        "not twice from one peer"
    );
    assert!(
        p.duplicate_in(3, 3, 10).is_empty(),
        "at most two peers a block"
    );
    let out = p.on_block(2, &block(3, 0));
    assert_eq!(out.cancel, vec![1], "the first copy wins");
    p.set_have(2);
    assert!(p.pick_in(1, 2, 10).is_empty() && !p.has_free_blocks(2));
}

#[test]
fn rarest_first_and_finish_started() {
    let mut p = PiecePicker::new(32768, 4 * 32768);
    // piece 2 is rarest (1 peer), others 3 peers.
    for piece in 0..4 {
        let n = if piece == 2 { 1 } else { 3 };
        for _ in 0..n {
            p.add_availability(piece);
        }
    }
    let got = p.pick(1, |_| true, 1, &mut rng());
    assert_eq!(
        got,
        vec![Block {
            piece: 2,
            offset: 0,
            len: 16384
        }]
    );
    // Next pick continues the started piece before opening another.
    let got = p.pick(2, |_| true, 2, &mut rng());
    assert_eq!(
        got[0],
        Block {
            piece: 2,
            offset: 16384,
            len: 16384
        }
    );
    assert_ne!(got[1].piece, 2);
}

fn block(piece: u32, index: u32) -> Block {
    Block {
        piece,
        offset: index * 16384,
        len: 16384,
    }
}

#[test]
fn a_peer_with_rarer_pieces_is_not_asked_for_the_rest_of_common_ones() {
    // Pieces of 2 blocks; piece 0 is held by 3 peers, 1..=3 by nobody
    // but the seed.
    let mut p = PiecePicker::new(32768, 4 * 32768);
    for _ in 0..3 {
        p.add_availability(0);
    }
    p.add_seed();
    // Peer 1 has piece 0 only: one block asked from it, one left free.
    assert_eq!(p.pick(1, |i| i == 0, 1, &mut rng()), vec![block(0, 0)]);
    // The seed (2) is asked for the rare pieces first...
    let b = p.pick(2, |_| true, 6, &mut rng());
    assert_eq!(b.len(), 6);
    assert!(b.iter().all(|x| x.piece != 0), "{b:?}");
    // ...and for the rest of piece 0 once nothing rarer is left.
    assert_eq!(p.pick(2, |_| true, 1, &mut rng()), vec![block(0, 1)]);
}

#[test]
fn a_peer_continues_the_piece_it_is_sending() {
    let mut p = PiecePicker::new(3 * 16384, 2 * 3 * 16384);
    p.add_availability(1);
    p.add_availability(1);
    p.add_availability(0);
    // Piece 0 is the rarer: opened for peer 1.
    assert_eq!(p.pick(1, |_| true, 1, &mut rng()), vec![block(0, 0)]);
    // Now piece 0 is the more common, but peer 1 still holds a request
    // in it: it goes on with it before opening piece 1.
    for _ in 0..3 {
        p.add_availability(0);
    }
    let got = p.pick(1, |_| true, 3, &mut rng());
    assert_eq!(got, vec![block(0, 1), block(0, 2), block(1, 0)]);
}

#[test]
fn random_ties_cover_all_pieces() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..64 {
        let mut p = PiecePicker::new(16384, 8 * 16384);
        let mut r = StdRng::seed_from_u64(seed);
        seen.insert(p.pick(1, |_| true, 1, &mut r)[0].piece);
    }
    assert!(seen.len() >= 6, "ties should be broken at random: {seen:?}");
}

#[test]
fn priorities_and_completion() {
    let mut p = PiecePicker::new(16384, 3 * 16384);
    p.set_priority(0, 0);
    p.set_priority(2, 7);
    let got = p.pick(1, |_| true, 3, &mut rng());
    assert_eq!(got.iter().map(|b| b.piece).collect::<Vec<_>>(), vec![2, 1]);
    assert!(!p.is_complete());
    for b in &got {
        assert!(p.on_block(1, b).piece_complete);
        p.on_piece_verified(b.piece);
    }
    assert!(p.is_complete());
    assert_eq!(p.wanted_left(), 0);
}

#[test]
fn only_pieces_the_peer_has() {
    let mut p = PiecePicker::new(16384, 4 * 16384);
    let got = p.pick(1, |i| i == 3, 10, &mut rng());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].piece, 3);
    assert!(p.pick(2, |i| i == 3, 10, &mut rng()).is_empty() || p.in_endgame());
}

#[test]
fn endgame_duplicates_and_cancels() {
    let mut p = PiecePicker::new(32768, 32768);
    let a = p.pick(1, |_| true, 10, &mut rng());
    assert_eq!(a.len(), 2);
    assert!(p.in_endgame());
    let b = p.pick(2, |_| true, 10, &mut rng());
    assert_eq!(b, a, "endgame requests the same blocks from another peer");
    // A third peer gets nothing: two copies per block at most.
    assert!(p.pick(3, |_| true, 10, &mut rng()).is_empty());
    let out = p.on_block(2, &a[0]);
    assert!(out.new);
    assert_eq!(out.cancel, vec![1]);
    let dup = p.on_block(1, &a[0]);
    assert!(!dup.new);
    let out = p.on_block(1, &a[1]);
    assert!(out.piece_complete);
}

#[test]
fn failures_release_blocks() {
    let mut p = PiecePicker::new(32768, 65536);
    let a = p.pick(1, |_| true, 2, &mut rng());
    p.on_request_failed(1, &a[0]);
    let b = p.pick(2, |_| true, 1, &mut rng());
    assert_eq!(b[0], a[0]);
    p.release_peer(1);
    let c = p.pick(3, |_| true, 1, &mut rng());
    assert_eq!(c[0], a[1]);
    // A failed hash makes the piece pickable from scratch.
    p.on_block(2, &b[0]);
    p.on_block(3, &c[0]);
    assert_eq!(p.on_piece_failed(0), Vec::<PeerKey>::new());
    let d = p.pick(4, |i| i == 0, 5, &mut rng());
    assert_eq!(d.len(), 2);
}

proptest::proptest! {
    /// Random sequences of picks and deliveries always end with every block
    /// delivered exactly once as `new`, and the torrent complete.
    #[test]
    fn every_block_delivered_once(seed in 0u64..1000, len in 1u64..200_000, peers in 1u64..4) {
        let mut r = StdRng::seed_from_u64(seed);
        let mut p = PiecePicker::new(32768, len);
        let mut news = std::collections::HashSet::new();
        let mut rounds = 0;
        while !p.is_complete() {
            rounds += 1;
            proptest::prop_assert!(rounds < 10_000);
            let peer = r.gen_range(0..peers);
            for b in p.pick(peer, |_| true, r.gen_range(1..5), &mut r) {
                if r.gen_bool(0.2) {
                    p.on_request_failed(peer, &b);
                    continue;
                }
                let o = p.on_block(peer, &b);
                if o.new {
                    proptest::prop_assert!(news.insert(b));
                }
                if o.piece_complete {
                    p.on_piece_verified(b.piece);
                }
            }
        }
        let total: u64 = news.iter().map(|b| b.len as u64).sum();
        proptest::prop_assert_eq!(total, len);
    }
}

#[test]
fn an_idle_peer_takes_over_held_blocks_once_fullest_piece_and_last_blocks_first() {
    let mut p = PiecePicker::new(4 * 16384, 4 * 4 * 16384);
    // Peer 1 holds piece 0 and half of piece 1; peer 2 the other half.
    assert_eq!(p.pick_in(1, 0, 4).len(), 4);
    assert_eq!(p.pick_in(1, 1, 2), vec![block(1, 0), block(1, 1)]);
    assert_eq!(p.pick_in(2, 1, 2), vec![block(1, 2), block(1, 3)]);
    assert!(p.on_block(1, &block(0, 0)).new);
    // Piece 1 has the most blocks outstanding; its last blocks go first.
    assert_eq!(
        p.steal_busy(3, |_| true, 2),
        vec![(block(1, 3), 2), (block(1, 2), 2)]
    );
    assert!(p.is_requested_by(&block(1, 3), 3) && !p.is_requested_by(&block(1, 3), 2));
    // A block moves once: the next idle peer gets the rest, not those.
    assert_eq!(
        p.steal_busy(4, |_| true, 10),
        vec![
            (block(1, 1), 1),
            (block(1, 0), 1),
            (block(0, 3), 1),
            (block(0, 2), 1),
            (block(0, 1), 1)
        ]
    );
    assert!(p.steal_busy(3, |_| true, 10).is_empty());
    assert!(
        p.steal_busy(5, |i| i >= 2, 10).is_empty(),
        "only pieces it has"
    );
    // The old holder's copy still counts if it comes first; the new holder
    // is then cancelled.
    let out = p.on_block(2, &block(1, 3));
    assert!(out.new);
    assert_eq!(out.cancel, vec![3]);
}
