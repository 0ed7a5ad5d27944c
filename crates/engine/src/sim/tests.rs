//! Small swarms whose outcome can be worked out by hand, and the model's
//! building blocks.
use super::link::{latency, transfer_time};
use super::*;

fn small(leechers: usize) -> SwarmConfig {
    SwarmConfig {
        groups: vec![
            PeerGroup::seeds(1, MIB, 4 * MIB),
            PeerGroup::leechers(leechers, MIB, 4 * MIB),
        ],
        file_size: 4 * MIB,
        ..SwarmConfig::default()
    }
}

#[test]
fn one_leecher_downloads_at_the_seeds_upload_rate() {
    let r = simulate(&small(1));
    assert!(r.all_completed, "{r:?}");
    let t = r.last_completion_s.unwrap();
    // 4 MiB at 1 MiB/s, after a start within 0.5 s, a TCP and a BitTorrent
    // handshake, interest and unchoke (a few round trips of at most 0.2 s).
    assert!(t >= 4.0, "{t}");
    assert!(t < 4.0 + 0.5 + 1.0, "{t}");
    assert_eq!(r.seed_uploaded, 4 * MIB);
    assert_eq!(r.seed_distinct, 4 * MIB);
    assert_eq!(r.peers[1].downloaded, 4 * MIB);
}

#[test]
fn the_downlink_limits_too() {
    let mut cfg = small(1);
    cfg.groups[1].download = MIB / 2;
    let r = simulate(&cfg);
    let t = r.last_completion_s.unwrap();
    assert_eq!(cfg.fluid_bound(), 8.0);
    assert!((8.0..8.0 + 1.5).contains(&t), "{t}");
}

#[test]
fn two_seeds_share_the_work() {
    let mut cfg = small(1);
    cfg.groups[0].count = 2;
    let r = simulate(&cfg);
    let t = r.last_completion_s.unwrap();
    assert_eq!(cfg.fluid_bound(), 2.0);
    let (a, b) = (r.peers[0].uploaded, r.peers[1].uploaded);
    // Both super-seed (each shows the other no piece, so neither learns
    // that the other is a seed): the leecher fetches what each reveals,
    // a few pieces at a time, and the two may reveal the same piece.
    assert!((2.0..2.0 + 1.75).contains(&t), "{t}");
    assert!(a > MIB && b > MIB, "{a} {b}");
    // The run stops when the leecher is done, with endgame duplicates
    // still on the way; they are few.
    let got = r.peers[2].downloaded;
    assert!(got >= 4 * MIB && got <= a + b, "{got} {a} {b}");
    assert!(
        (4 * MIB..4 * MIB + 4 * MIB / 10).contains(&(a + b)),
        "uploaded {a} + {b}, downloaded {got}, done at {t} s"
    );
}

#[test]
fn a_free_rider_uploads_nothing_and_still_finishes() {
    let mut cfg = small(2);
    cfg.groups
        .push(PeerGroup::leechers(1, MIB, 4 * MIB).behaving(Behaviour::FreeRider));
    let r = simulate(&cfg);
    assert!(r.all_completed, "{r:?}");
    let free = &r.peers[3];
    assert_eq!(free.behaviour, Behaviour::FreeRider);
    assert_eq!(free.uploaded, 0);
    assert!(free.completed_s.is_some());
    assert!(r.peers[1].uploaded + r.peers[2].uploaded > 0);
}

#[test]
fn a_leaver_stops_counting_and_the_others_finish() {
    let cfg = SwarmConfig {
        churn: Some(Churn {
            leave: 0.34,
            join: 1,
            window: std::time::Duration::from_secs(2),
        }),
        ..small(3)
    };
    let r = simulate(&cfg);
    assert!(r.all_completed, "{r:?}");
    let left: Vec<&PeerReport> = r.peers.iter().filter(|p| p.left_s.is_some()).collect();
    assert_eq!(left.len(), 1, "{r:?}");
    assert!(left[0].completed_s.is_none(), "4 MiB take longer than 2 s");
    let joiner = r.peers.last().unwrap();
    assert_eq!(joiner.group, cfg.groups.len());
    assert!(
        joiner.joined_s < 2.0 && joiner.completed_s.is_some(),
        "{joiner:?}"
    );
    // Every leecher that stayed finished.
    let stayed = r.peers.iter().filter(|p| !p.seed && p.left_s.is_none());
    assert_eq!(stayed.clone().count(), 3);
    assert!(stayed.clone().all(|p| p.completed_s.is_some()));
}

#[test]
fn fluid_bound_takes_the_largest_term() {
    let mut cfg = SwarmConfig::default();
    // Seed-bound: F/u_s = 64 s > N·F/(u_s+Σu) = 6400/101 s.
    assert_eq!(cfg.fluid_bound(), 64.0);
    // Download-bound.
    cfg.groups[1].download = MIB / 4;
    assert_eq!(cfg.fluid_bound(), 256.0);
    // Swarm-bound: free riders add demand, not supply.
    cfg.groups[1].download = 4 * MIB;
    cfg.groups[0].upload = 100 * MIB;
    cfg.groups[1].behaviour = Behaviour::FreeRider;
    assert_eq!(cfg.fluid_bound(), 64.0);
    cfg.groups[1].behaviour = Behaviour::Honest;
    let t = cfg.fluid_bound();
    assert!((t - 6400.0 / 200.0).abs() < 1e-9, "{t}");
}

#[test]
fn latencies_are_symmetric_seeded_and_in_range() {
    let mut seen = std::collections::HashSet::new();
    for a in 0..30 {
        for b in 0..30 {
            let l = latency(5, a, b, (10, 100));
            assert_eq!(l, latency(5, b, a, (10, 100)));
            assert!((10_000..=100_000).contains(&l), "{l}");
            seen.insert(l / 10_000);
        }
    }
    assert!(seen.len() >= 9, "spread over the range: {seen:?}");
    assert_ne!(latency(5, 1, 2, (10, 100)), latency(6, 1, 2, (10, 100)));
    assert_eq!(transfer_time(16384, 1 << 20), 15_625);
    assert_eq!(transfer_time(1, 3), 333_334);
}
