//! Precision and recall over a corpus of 273 realistic torrent names and 60
//! queries (`tests/data/corpus.json`, written by `make_corpus.py`, whose
//! expected results are computed in Python from the documented keyword
//! rule): the full-text index (central index and crawler) and the flooding
//! simulation (50 nodes, each holding a share of the corpus).
use sha1::{Digest, Sha1};
use shoal_search::flood::sim::{Sim, SimConfig};
use shoal_search::flood::{FloodConfig, FloodMsg, FloodResult, MemoryLibrary};
use shoal_search::{IndexConfig, TorrentDoc, TorrentIndex};
use std::collections::HashSet;

struct Corpus {
    names: Vec<String>,
    queries: Vec<(String, HashSet<usize>)>,
}

fn corpus() -> Corpus {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/corpus.json")).expect("corpus.json");
    let names = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let queries = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let exp = q["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect();
            (q["q"].as_str().unwrap().to_string(), exp)
        })
        .collect();
    Corpus { names, queries }
}

fn ih(name: &str) -> [u8; 20] {
    Sha1::digest(name.as_bytes()).into()
}

/// Micro-averaged precision and recall.
fn score(pairs: &[(HashSet<usize>, HashSet<usize>)]) -> (f64, f64) {
    let (mut tp, mut got, mut want) = (0usize, 0usize, 0usize);
    for (g, w) in pairs {
        tp += g.intersection(w).count();
        got += g.len();
        want += w.len();
    }
    (
        tp as f64 / got.max(1) as f64,
        tp as f64 / want.max(1) as f64,
    )
}

#[test]
fn index_precision_and_recall() {
    let c = corpus();
    let index = TorrentIndex::open(&IndexConfig::default()).unwrap();
    for (i, n) in c.names.iter().enumerate() {
        index
            .add(&TorrentDoc {
                info_hash: ih(n),
                name: n.clone(),
                size: 1000 + i as u64,
                file_count: 1,
                files: Vec::new(),
            })
            .unwrap();
    }
    index.commit().unwrap();
    let mut pairs = Vec::new();
    for (q, want) in &c.queries {
        let got: HashSet<usize> = index
            .search(q, 200)
            .unwrap()
            .iter()
            .map(|h| c.names.iter().position(|n| ih(n) == h.info_hash).unwrap())
            .collect();
        pairs.push((got, want.clone()));
    }
    let (p, r) = score(&pairs);
    eprintln!(
        "index: precision {p:.3}, recall {r:.3} over {} queries",
        pairs.len()
    );
    assert!(p >= 0.99 && r >= 0.99, "precision {p}, recall {r}");
    // Ranking puts the exact matches first: every hit of a query holds all
    // its keywords, so relevance is 1.0 or more for each.
    let hits = index.search("debian netinst amd64", 50).unwrap();
    let ranked = shoal_search::rank(
        "debian netinst amd64",
        hits.iter().map(|h| h.to_hit("index")),
    );
    assert_eq!(ranked.len(), 2);
    assert!(ranked.iter().all(|h| h.score >= 1.0));
}

fn sim(c: &Corpus, ttl: u8) -> Sim {
    let n = 50;
    let libraries = (0..n)
        .map(|node| {
            MemoryLibrary(
                c.names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % n == node)
                    .map(|(i, name)| FloodResult {
                        info_hash: ih(name),
                        name: name.clone(),
                        size: i as u64,
                    })
                    .collect(),
            )
        })
        .collect();
    Sim::new(SimConfig {
        flood: FloodConfig {
            ttl,
            ..FloodConfig::default()
        },
        chords: 1,
        seed: 2024,
        libraries,
    })
}

#[test]
fn flooding_finds_what_is_within_reach() {
    let c = corpus();
    for ttl in [2u8, 4, 7] {
        let mut s = sim(&c, ttl);
        let edges: usize = s.adj.iter().map(Vec::len).sum::<usize>() / 2;
        let dist = s.distances(0);
        let mut pairs = Vec::new();
        let mut reach_pairs = Vec::new();
        let mut query_msgs = 0;
        for (q, want) in &c.queries {
            let before = s.messages;
            let (_, found) = s.query(0, q);
            query_msgs = query_msgs.max(s.messages - before);
            let got: HashSet<usize> = found
                .iter()
                .map(|r| c.names.iter().position(|n| ih(n) == r.info_hash).unwrap())
                .collect();
            // What flooding can find: torrents of nodes at most `ttl` hops away.
            let reachable: HashSet<usize> = want
                .iter()
                .copied()
                .filter(|i| dist[i % 50].is_some_and(|d| d >= 1 && d <= usize::from(ttl)))
                .collect();
            reach_pairs.push((got.clone(), reachable));
            // The origin's own torrents are its local search, not flooding's.
            let others = want.iter().copied().filter(|i| i % 50 != 0).collect();
            pairs.push((got, others));
            s.advance(2000);
        }
        let (p, r) = score(&pairs);
        let (rp, rr) = score(&reach_pairs);
        let within: usize = dist
            .iter()
            .filter(|d| d.is_some_and(|d| d >= 1 && d <= usize::from(ttl)))
            .count();
        eprintln!(
            "flood ttl {ttl}: {within}/49 nodes in reach, precision {p:.3}, recall {r:.3} \
             (of what is in reach: {rr:.3}), at most {query_msgs} messages per query, {edges} edges"
        );
        assert_eq!((rp, rr), (1.0, 1.0), "ttl {ttl}");
        assert!(p >= 0.999);
        if within == 49 {
            assert!(r >= 0.999, "ttl {ttl}: recall {r}");
        }
        // Each node forwards a query once: at most two query messages per edge,
        // plus the results on their way back.
        assert_eq!(s.bad, 0);
        assert!(query_msgs <= (2 * edges + 200) as u64, "{query_msgs}");
    }
}

#[test]
fn flooding_is_bounded_against_a_hostile_peer() {
    let c = corpus();
    let mut s = sim(&c, 4);
    // Node 1 fires 500 distinct queries at node 0 at once.
    for k in 0..500u32 {
        let mut id = [0u8; 8];
        id[..4].copy_from_slice(&k.to_be_bytes());
        s.inject(
            1,
            0,
            &FloodMsg::Query {
                id,
                ttl: 200,
                query: "linux".into(),
            },
        );
    }
    s.run();
    let n0 = s.node(0).counters();
    // 500 from node 1, and the accepted ones coming back from neighbours.
    assert!(n0.queries_in >= 500, "{n0:?}");
    assert!(n0.rate_limited >= 480, "{n0:?}");
    // Only the burst (10) of them was forwarded, to the other neighbours.
    assert!(n0.forwarded <= 10 * s.adj[0].len() as u64, "{n0:?}");
    // The same query id again is dropped as a duplicate, by every node.
    let (_, a) = s.query(2, "debian netinst");
    assert!(!a.is_empty());
    let total_dups: u64 = (0..50).map(|i| s.node(i).counters().duplicates).sum();
    assert!(total_dups > 0);
    // Unsolicited results are dropped.
    s.inject(
        3,
        4,
        &FloodMsg::Results {
            id: [9; 8],
            results: vec![],
        },
    );
    s.run();
    assert_eq!(s.node(4).counters().results_dropped, 1);
}
