//! Runs the swarm simulator once and prints the result against the
//! fluid-model bound. See `bench/swarmsim.sh`.
//!
//! ```sh
//! cargo run --release -p shoal-engine --example swarmsim -- \
//!     --seeds 1 --leechers 100 --size-mib 64 --piece-kib 256 \
//!     --up-kib 1024 --down-kib 4096 --latency-ms 10-100 --seed 1
//! ```
//! Other options: `--free-riders N`, `--corrupt N` (taken from the
//! leechers), `--seed-up-kib N`, `--slots N`, `--max-peers N`, `--leave F --join N
//! --churn-window-s S`, `--times` (every completion time), `--timeline`
//! (the swarm's upload in each second against its capacity).
use shoal_engine::sim::{simulate, Behaviour, Churn, PeerGroup, SwarmConfig};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cfg = SwarmConfig::default();
    let (mut seeds, mut leechers, mut free, mut corrupt) = (1usize, 100usize, 0usize, 0usize);
    let (mut up, mut down) = (1024u64 * 1024, 4096u64 * 1024);
    let mut seed_up: Option<u64> = None;
    let mut churn: Option<Churn> = None;
    let mut times = false;
    let mut timeline = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seeds" => seeds = val().parse().expect("--seeds N"),
            "--leechers" => leechers = val().parse().expect("--leechers N"),
            "--free-riders" => free = val().parse().expect("--free-riders N"),
            "--corrupt" => corrupt = val().parse().expect("--corrupt N"),
            "--size-mib" => cfg.file_size = val().parse::<u64>().expect("MiB") << 20,
            "--piece-kib" => cfg.piece_size = val().parse::<u32>().expect("KiB") << 10,
            "--up-kib" => up = val().parse::<u64>().expect("KiB/s") << 10,
            "--seed-up-kib" => seed_up = Some(val().parse::<u64>().expect("KiB/s") << 10),
            "--down-kib" => down = val().parse::<u64>().expect("KiB/s") << 10,
            "--latency-ms" => {
                let v = val();
                let (lo, hi) = v.split_once('-').expect("--latency-ms LO-HI");
                cfg.latency_ms = (lo.parse().expect("ms"), hi.parse().expect("ms"));
            }
            "--slots" => cfg.upload_slots = val().parse().expect("--slots N"),
            "--max-peers" => cfg.max_peers = val().parse().expect("--max-peers N"),
            "--seed" => cfg.seed = val().parse().expect("--seed N"),
            "--leave" => churn.get_or_insert_with(default_churn).leave = val().parse().expect("F"),
            "--join" => churn.get_or_insert_with(default_churn).join = val().parse().expect("N"),
            "--churn-window-s" => {
                churn.get_or_insert_with(default_churn).window =
                    Duration::from_secs(val().parse().expect("seconds"))
            }
            "--times" => times = true,
            "--timeline" => timeline = true,
            other => panic!("unknown option {other}"),
        }
    }
    let honest = leechers.saturating_sub(free + corrupt);
    cfg.groups = vec![
        PeerGroup::seeds(seeds, seed_up.unwrap_or(up), down),
        PeerGroup::leechers(honest, up, down),
        PeerGroup::leechers(free, up, down).behaving(Behaviour::FreeRider),
        PeerGroup::leechers(corrupt, up, down).behaving(Behaviour::Corrupt),
    ];
    cfg.churn = churn;
    let r = simulate(&cfg);
    if timeline {
        let capacity: u64 = cfg.groups.iter().map(|g| g.count as u64 * g.upload).sum();
        for (s, b) in r.upload_timeline.iter().enumerate() {
            println!(
                "t {s:>4} s  uploaded {:>7.1} MiB  {:.3} of capacity",
                *b as f64 / 1048576.0,
                *b as f64 / capacity as f64
            );
        }
    }
    let t_min = r.fluid_bound_s;
    println!(
        "seeds {seeds} (up {} KiB/s) leechers {leechers} (free riders {free}, corrupt {corrupt}) F {} MiB piece {} KiB up {} KiB/s down {} KiB/s latency {:?} ms slots {} max_peers {} seed {}",
        seed_up.unwrap_or(up) >> 10,
        cfg.file_size >> 20,
        cfg.piece_size >> 10,
        up >> 10,
        down >> 10,
        cfg.latency_ms,
        cfg.upload_slots,
        cfg.max_peers,
        cfg.seed
    );
    match (r.last_completion_s, r.ratio()) {
        (Some(last), Some(ratio)) => {
            println!("T_min {t_min:.2} s  last completion {last:.2} s  ratio {ratio:.3}")
        }
        _ => println!(
            "T_min {t_min:.2} s  NOT ALL COMPLETED by {:.1} s",
            r.virtual_s
        ),
    }
    let mean = |b| {
        r.mean_completion(b)
            .map_or("-".into(), |m| format!("{m:.2} s"))
    };
    println!(
        "mean completion: honest {}  free riders {}  corrupt {}",
        mean(Behaviour::Honest),
        mean(Behaviour::FreeRider),
        mean(Behaviour::Corrupt)
    );
    println!(
        "seed uploaded {:.1} MiB ({:.3} x F; distinct {:.1} MiB)  pieces failed {}  events {}  wall {:.2} s",
        r.seed_uploaded as f64 / 1048576.0,
        r.seed_uploaded as f64 / cfg.file_size as f64,
        r.seed_distinct as f64 / 1048576.0,
        r.pieces_failed,
        r.events,
        r.wall_s
    );
    let cap: u64 = r
        .peers
        .iter()
        .map(|p| {
            if p.behaviour == Behaviour::Honest {
                up
            } else {
                0
            }
        })
        .sum();
    println!(
        "every block left a seed by {:?} s; swarm uploaded {:.1} MiB = {:.3} of its capacity over the run",
        r.seed_all_sent_s.map(|t| (t * 100.0).round() / 100.0),
        r.uploaded as f64 / 1048576.0,
        r.uploaded as f64 / (cap as f64 * r.last_completion_s.unwrap_or(r.virtual_s))
    );
    for (i, p) in r.peers.iter().enumerate() {
        if p.behaviour == Behaviour::Corrupt {
            println!(
                "corrupt peer {i}: victims {} banned by {} of them ({} with proof, banned by {}), by {} peers in all",
                p.victims, p.banned_by_victims, p.provable_victims, p.banned_by_provable_victims, p.banned_by
            );
        }
    }
    if times {
        let mut v: Vec<f64> = r
            .peers
            .iter()
            .filter(|p| !p.seed)
            .filter_map(|p| p.completed_s)
            .collect();
        v.sort_by(f64::total_cmp);
        println!("completion times: {v:.1?}");
        for b in [Behaviour::Honest, Behaviour::FreeRider, Behaviour::Corrupt] {
            let mut v: Vec<f64> = r
                .peers
                .iter()
                .filter(|p| !p.seed && p.behaviour == b)
                .filter_map(|p| p.completed_s)
                .collect();
            v.sort_by(f64::total_cmp);
            if !v.is_empty() {
                println!("{b:?}: {v:.1?}");
            }
        }
    }
}

fn default_churn() -> Churn {
    Churn {
        leave: 0.0,
        join: 0,
        window: Duration::from_secs(60),
    }
}
