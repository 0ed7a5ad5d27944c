//! Readers (streaming): deadlines and the peers their pieces go to.
use super::*;

/// Priorities with a reader at `at`: `window` pieces counting down from
/// the top, the rest at 1.
fn reader_prio(pieces: u32, at: u32, window: u32) -> Vec<u8> {
    (0..pieces)
        .map(|p| {
            if p >= at && p < at + window {
                255 - (p - at) as u8
            } else {
                1
            }
        })
        .collect()
}

#[test]
fn a_reader_piece_goes_to_the_peer_expected_soonest() {
    let mut h = Harness::new(8, &[], 4);
    let slow = h.peer(1, &all(8));
    let fast = h.peer(2, &all(8));
    h.feed(slow, PeerMsg::Unchoked);
    h.feed(fast, PeerMsg::Unchoked);
    for (k, rate) in [(slow, 20_000), (fast, 2_000_000)] {
        h.feed(
            k,
            PeerMsg::Stats {
                down_rate: rate,
                recent_down_rate: rate,
                up_rate: 0,
                uploaded: 0,
                snubbed: false,
            },
        );
    }
    let _ = h.actions();
    // A reader opens at piece 6 (nobody was asked for it yet).
    let now = h.now;
    h.core.set_priorities(now, &reader_prio(8, 6, 1));
    let acts = h.actions();
    let asked = |k: PeerKey| {
        acts.iter().any(|a| {
            matches!(a, Action::Peer(p, PeerCmd::Request(b)) if *p == k && b.iter().any(|x| x.piece == 6))
        })
    };
    assert!(asked(fast), "{acts:?}");
    assert!(!asked(slow), "{acts:?}");
}

#[test]
fn a_late_reader_piece_is_duplicated_to_a_faster_peer() {
    let mut h = Harness::new(32, &[], 4);
    let now = h.now;
    h.core.set_priorities(now, &reader_prio(32, 0, 1));
    let slow = h.peer(1, &all(32));
    h.feed(slow, PeerMsg::Unchoked);
    let from_slow = h.requested(slow);
    let piece0: Vec<Block> = from_slow.iter().copied().filter(|b| b.piece == 0).collect();
    assert_eq!(
        piece0.len(),
        4,
        "the reader's piece is asked first: {from_slow:?}"
    );
    // A second peer arrives: not endgame (other pieces are free), so it is
    // given other pieces while piece 0's deadline has not passed.
    let fast = h.peer(2, &all(32));
    h.feed(fast, PeerMsg::Unchoked);
    h.feed(
        fast,
        PeerMsg::Stats {
            down_rate: 200_000,
            recent_down_rate: 200_000,
            up_rate: 0,
            uploaded: 0,
            snubbed: false,
        },
    );
    let first = h.requested(fast);
    assert!(first.iter().all(|b| b.piece != 0), "{first:?}");
    // Its blocks arrive: room again in its pipeline.
    h.deliver(fast, &first);
    let _ = h.actions();
    // The deadline (one piece time at the assumed rate) passes.
    let deadline = h.core.deadlines.at[&0];
    h.advance(deadline.saturating_duration_since(h.now) + Duration::from_millis(300));
    let again = h.requested(fast);
    let dup: Vec<Block> = again.iter().copied().filter(|b| b.piece == 0).collect();
    assert_eq!(
        dup.len(),
        4,
        "late piece 0 asked again from the fast peer: {again:?}"
    );
    // The fast copy arrives first: the slow peer is told to cancel.
    h.deliver(fast, &dup[..1]);
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Cancel(b)) if *k == slow && *b == dup[0])));
    // Not duplicated again at the next tick.
    h.advance(Duration::from_millis(300));
    assert!(h.requested(fast).iter().all(|b| b.piece != 0));
}

#[test]
fn reader_deadlines_stretch_with_the_rate() {
    let spacing = |rate: u64| {
        let mut h = Harness::new(8, &[], 4);
        h.core.status.download_rate = rate;
        let now = h.now;
        h.core.set_priorities(now, &reader_prio(8, 2, 4));
        let at: Vec<Instant> = (2..6).map(|p| h.core.deadlines.at[&p]).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "nearest first");
        assert!(!h.core.deadlines.at.contains_key(&6), "outside the window");
        at[1] - at[0]
    };
    let piece = Duration::from_secs_f64(f64::from(PIECE) / 1_000_000.0);
    let d = spacing(1_000_000);
    assert!(d.abs_diff(piece) < Duration::from_millis(1), "{d:?}");
    assert!(spacing(100_000) > spacing(1_000_000) * 9);
}

/// A reader opened during the check (or while the metadata was fetched)
/// raised priorities in the picker the core starts from: its pieces have
/// deadlines from the start, not only after the next priority change.
#[test]
fn readers_open_before_the_start_get_deadlines() {
    let mut picker = PiecePicker::new(PIECE, 8 * u64::from(PIECE));
    for (p, prio) in reader_prio(8, 3, 2).into_iter().enumerate() {
        picker.set_priority(p as u32, prio);
    }
    let core = Harness::with_picker(picker, 4, 50, false).core;
    let mut with: Vec<u32> = core.deadlines.at.keys().copied().collect();
    with.sort_unstable();
    assert_eq!(with, vec![3, 4]);
}
