//! The engine's torrent cores in a simulated swarm (`shoal_engine::sim`):
//! against the fluid-model bound, against free riders, against a peer that
//! sends corrupt data, and run twice with the same seed.
use shoal_engine::sim::{simulate, Behaviour, Churn, PeerGroup, SwarmConfig, SwarmReport, MIB};
use std::time::Duration;

fn summary(r: &SwarmReport) -> String {
    format!(
        "bound {:.1} s, last {:?} s, ratio {:?}, seed uploaded {:.2} x F, events {}, wall {:.1} s",
        r.fluid_bound_s,
        r.last_completion_s,
        r.ratio(),
        r.seed_uploaded as f64 / (64 * MIB) as f64,
        r.events,
        r.wall_s
    )
}

/// 1 seed and 100 leechers, everyone 1 MiB/s up and 4 MiB/s down, 64 MiB in
/// 256 KiB pieces, one-way latencies of 10–100 ms: the fluid bound is
/// F/u_s = 64 s.
///
/// Issue 9 asks for 1.15 × the bound; the engine gets 1.155, 1.144 and
/// 1.142 with seeds 1-3, a mean of 1.147 (seeds 1-6: 1.142-1.162, mean
/// 1.149; `bench/swarmsim.sh`). Before the request pipeline's slow start
/// (see `torrent/core/slow_start.rs`): 1.148, 1.139 and 1.160 (seeds 1-6
/// mean 1.147). The seed
/// super-seeds (BEP 16), so it sends every piece once before it sends any
/// twice; 4 upload slots and request pipelines of one second's worth of
/// blocks make pieces complete, and be relayed, sooner. Between rechokes
/// slots are refilled, not reshuffled (1.189 → 1.168), and a peer that
/// unchoked us but has nothing free to give takes over blocks another peer
/// holds and has not sent (1.168 → 1.148): in the first 15 s, while the
/// leechers have few pieces, half of the unchoked slots had no request to
/// serve. What is left: those first seconds (the swarm uploads at 55-75%
/// of its capacity at 5-12 s) and a tail of a few seconds while the last
/// pieces the seed sent spread. Earlier: 1.63 (before the picker stopped
/// asking seeds for the rest of pieces started from other peers), 1.325
/// (before super-seeding, 4 slots and the shorter pipelines).
#[test]
fn one_seed_hundred_leechers_against_the_fluid_bound() {
    // Three seeds, run side by side: one seed alone decides little, as
    // any change to the cores moves a single run by about ±1%.
    let runs: Vec<SwarmReport> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=3u64)
            .map(|seed| {
                s.spawn(move || {
                    simulate(&SwarmConfig {
                        seed,
                        ..SwarmConfig::default()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("simulation"))
            .collect()
    });
    let mut sum = 0.0;
    for (i, r) in runs.iter().enumerate() {
        eprintln!("1+100, seed {}: {}", i + 1, summary(r));
        assert!(r.all_completed, "{}", summary(r));
        assert_eq!(r.fluid_bound_s, 64.0);
        let ratio = r.ratio().expect("all completed");
        // Nobody can beat the bound: a faster run means the network model
        // hands out bandwidth it does not have.
        assert!(ratio >= 1.0, "{}", summary(r));
        assert!(ratio <= 1.2, "{}", summary(r));
        assert_eq!(r.seed_distinct, 64 * MIB, "every block left the seed");
        assert!(
            r.uploaded >= 100 * 64 * MIB,
            "every leecher got every byte: {}",
            summary(r)
        );
        sum += ratio;
    }
    let mean = sum / runs.len() as f64;
    assert!(mean <= 1.15, "mean ratio {mean:.4}");
}

/// 90 honest leechers and 10 that never upload, with a seed fast enough
/// (4 MiB/s) that the leechers' upload, shared by tit-for-tat, is what
/// limits the swarm. (When the seed is the bottleneck everybody waits for
/// its last pieces and free riders finish with the others.)
#[test]
fn free_riders_finish_later() {
    let cfg = SwarmConfig {
        groups: vec![
            PeerGroup::seeds(1, 4 * MIB, 4 * MIB),
            PeerGroup::leechers(90, MIB, 4 * MIB),
            PeerGroup::leechers(10, MIB, 4 * MIB).behaving(Behaviour::FreeRider),
        ],
        ..SwarmConfig::default()
    };
    let r = simulate(&cfg);
    let honest = r.mean_completion(Behaviour::Honest);
    let free = r.mean_completion(Behaviour::FreeRider);
    eprintln!(
        "90+10 free riders: {}; honest {honest:?} s, free riders {free:?} s",
        summary(&r)
    );
    assert!(r.all_completed, "{}", summary(&r));
    let (honest, free) = (honest.unwrap(), free.unwrap());
    assert!(free > honest, "honest {honest} s, free riders {free} s");
    for p in r
        .peers
        .iter()
        .filter(|p| p.behaviour == Behaviour::FreeRider)
    {
        assert_eq!(p.uploaded, 0, "a free rider uploaded");
        assert!(p.downloaded >= 64 * MIB);
    }
}

/// A leecher that sends wrong bytes for every block: each piece it spoils
/// fails its hash check, every peer whose smart ban holds the proof bans
/// it, and every honest peer still completes.
#[test]
fn corrupt_peer_is_banned_and_the_swarm_completes() {
    let cfg = SwarmConfig {
        groups: vec![
            PeerGroup::seeds(1, MIB, 4 * MIB),
            PeerGroup::leechers(50, MIB, 4 * MIB),
            PeerGroup::leechers(1, MIB, 4 * MIB).behaving(Behaviour::Corrupt),
        ],
        file_size: 32 * MIB,
        ..SwarmConfig::default()
    };
    let r = simulate(&cfg);
    let bad = r
        .peers
        .iter()
        .find(|p| p.behaviour == Behaviour::Corrupt)
        .expect("the corrupt peer");
    eprintln!(
        "corrupt: {}; victims {} (with proof {}), banned by {} victims ({} with proof), by {} peers, pieces failed {}",
        summary(&r),
        bad.victims,
        bad.provable_victims,
        bad.banned_by_victims,
        bad.banned_by_provable_victims,
        bad.banned_by,
        r.pieces_failed
    );
    assert!(r.all_completed, "{}", summary(&r));
    assert!(r.pieces_failed > 0);
    assert!(bad.provable_victims > 0, "{bad:?}");
    assert_eq!(
        bad.banned_by_provable_victims, bad.provable_victims,
        "{bad:?}"
    );
    // The honest peers never ban each other.
    for p in r.peers.iter().filter(|p| p.behaviour == Behaviour::Honest) {
        assert_eq!(p.banned_by, 0, "{p:?}");
        assert_eq!(p.victims, 0, "{p:?}");
    }
}

/// Same configuration (churn included), same completion times; another
/// seed, other times.
#[test]
fn same_seed_same_result() {
    let cfg = SwarmConfig {
        groups: vec![
            PeerGroup::seeds(1, MIB, 4 * MIB),
            PeerGroup::leechers(24, MIB, 4 * MIB),
            PeerGroup::leechers(4, MIB, 4 * MIB).behaving(Behaviour::FreeRider),
        ],
        file_size: 8 * MIB,
        churn: Some(Churn {
            leave: 0.2,
            join: 6,
            window: Duration::from_secs(10),
        }),
        seed: 7,
        ..SwarmConfig::default()
    };
    let a = simulate(&cfg);
    let b = simulate(&cfg);
    assert!(a.all_completed, "{}", summary(&a));
    assert_eq!(a.completion_times(), b.completion_times());
    assert_eq!(a.events, b.events);
    assert_eq!((a.uploaded, a.seed_uploaded), (b.uploaded, b.seed_uploaded));
    let left = a.peers.iter().filter(|p| p.left_s.is_some()).count();
    let joined = a
        .peers
        .iter()
        .filter(|p| p.group == cfg.groups.len())
        .count();
    assert_eq!(left, 6, "20% of the 28 starting leechers left");
    assert_eq!(joined, 6);
    let c = simulate(&SwarmConfig { seed: 8, ..cfg });
    assert_ne!(a.completion_times(), c.completion_times());
}
