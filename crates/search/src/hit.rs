//! Search results, their merging across methods and their ranking.
//!
//! Every method returns [`SearchHit`]s; [`merge`] joins hits for the same
//! info-hash (keeping the longest name, the known size, the most seeds and
//! every place the torrent was found) and [`rank`] orders them by one
//! relevance score computed from the name alone, so results from methods
//! whose own scores cannot be compared (tantivy's BM25 on a tracker, list
//! membership on the DHT) are ranked together: the share of the query's
//! keywords the name holds, then whether they appear in the query's order,
//! then a little for seeds and for being found in several places.
use crate::keywords::{query_keywords, words};
use serde::{Deserialize, Serialize};
use shoal_metainfo::{InfoHashV1, Magnet};

/// One torrent found by a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Info-hash, 40 lower-case hex digits.
    pub info_hash: String,
    /// The torrent's name.
    pub name: String,
    /// Total size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Number of files, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Seeders, when known (from the tracker that indexed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<u32>,
    /// Leechers, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leechers: Option<u32>,
    /// Where it was found (`tracker URL`, `dht`, `peer ADDR`, `index DIR`).
    #[serde(default)]
    pub found: Vec<String>,
    /// Trackers to put in the magnet (the announce URLs it was found on).
    #[serde(default)]
    pub trackers: Vec<String>,
    /// Relevance (set by [`rank`]; higher first).
    #[serde(default)]
    pub score: f64,
}

impl SearchHit {
    /// A hit for `info_hash` named `name`, found at `found`.
    pub fn new(info_hash: [u8; 20], name: String, found: String) -> SearchHit {
        SearchHit {
            info_hash: hex::encode(info_hash),
            name,
            size: None,
            files: None,
            seeds: None,
            leechers: None,
            found: vec![found],
            trackers: Vec::new(),
            score: 0.0,
        }
    }

    /// The raw info-hash, if `info_hash` is valid hex.
    pub fn info_hash_bytes(&self) -> Option<[u8; 20]> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(&self.info_hash, &mut out).ok()?;
        Some(out)
    }

    /// The magnet link: info-hash, name and the trackers it was found on.
    pub fn magnet(&self) -> String {
        Magnet {
            v1: self.info_hash_bytes().map(InfoHashV1),
            v2: None,
            name: Some(self.name.clone()),
            trackers: self.trackers.clone(),
            web_seeds: Vec::new(),
            peers: Vec::new(),
            select_only: Vec::new(),
        }
        .to_uri()
    }

    /// The command that downloads it.
    pub fn download_command(&self) -> String {
        format!("shoal download '{}'", self.magnet().replace('\'', "%27"))
    }

    /// The hit as `shoal search --json` and the daemon's search print it:
    /// its fields, its magnet and its download command.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["magnet"] = serde_json::json!(self.magnet());
        v["download"] = serde_json::json!(self.download_command());
        v
    }
}

fn push_unique(into: &mut Vec<String>, from: &[String]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

/// Joins hits for the same info-hash; the first occurrence keeps its place.
pub fn merge(hits: impl IntoIterator<Item = SearchHit>) -> Vec<SearchHit> {
    let mut out: Vec<SearchHit> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for h in hits {
        match at.get(&h.info_hash) {
            Some(&i) => {
                let o = &mut out[i];
                if h.name.len() > o.name.len() {
                    o.name = h.name;
                }
                o.size = o.size.or(h.size);
                o.files = o.files.or(h.files);
                o.seeds = o.seeds.max(h.seeds);
                o.leechers = o.leechers.max(h.leechers);
                push_unique(&mut o.found, &h.found);
                push_unique(&mut o.trackers, &h.trackers);
            }
            None => {
                at.insert(h.info_hash.clone(), out.len());
                out.push(h);
            }
        }
    }
    out
}

/// How well `name` answers `query` in `[0, 1]`-ish: share of the query's
/// keywords among the name's words (a keyword may match a word's prefix for
/// half), plus 0.1 when they appear in the query's order.
pub fn relevance(query: &[String], name: &str) -> f64 {
    if query.is_empty() {
        return 0.0;
    }
    let w = words(name);
    let mut got = 0.0;
    let mut positions = Vec::new();
    for k in query {
        if let Some(p) = w.iter().position(|x| x == k) {
            got += 1.0;
            positions.push(p);
        } else if let Some(p) = w.iter().position(|x| x.starts_with(k.as_str())) {
            got += 0.5;
            positions.push(p);
        }
    }
    let mut score = got / query.len() as f64;
    if positions.len() > 1 && positions.windows(2).all(|p| p[0] < p[1]) {
        score += 0.1;
    }
    score
}

/// Merges, scores and sorts `hits` for `query` (best first), dropping hits
/// whose name holds none of the query's keywords.
pub fn rank(query: &str, hits: impl IntoIterator<Item = SearchHit>) -> Vec<SearchHit> {
    let q = query_keywords(query);
    let mut out: Vec<SearchHit> = merge(hits)
        .into_iter()
        .filter_map(|mut h| {
            let r = relevance(&q, &h.name);
            if r <= 0.0 {
                return None;
            }
            let seeds = f64::from(h.seeds.unwrap_or(0));
            h.score = r + 0.02 * (1.0 + seeds).ln().min(5.0) + 0.01 * (h.found.len() as f64 - 1.0);
            Some(h)
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: u8, name: &str, found: &str) -> SearchHit {
        SearchHit::new([n; 20], name.to_string(), found.to_string())
    }

    #[test]
    fn merge_joins_by_info_hash() {
        let mut a = hit(1, "Debian 12", "dht");
        a.size = Some(5);
        let mut b = hit(1, "Debian 12 netinst", "tracker t");
        b.seeds = Some(3);
        b.trackers = vec!["http://t/announce".into()];
        let m = merge([a, b, hit(2, "Other", "dht")]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "Debian 12 netinst");
        assert_eq!((m[0].size, m[0].seeds), (Some(5), Some(3)));
        assert_eq!(m[0].found, ["dht", "tracker t"]);
        assert!(m[0].magnet().contains("tr=http"));
    }

    #[test]
    fn rank_orders_by_relevance_then_seeds() {
        let mut popular = hit(3, "debian live", "dht");
        popular.seeds = Some(100);
        let ranked = rank(
            "debian netinst",
            [
                popular,
                hit(1, "debian 12 netinst amd64", "dht"),
                hit(2, "unrelated thing", "dht"),
                hit(4, "netinst debian", "dht"),
            ],
        );
        let names: Vec<&str> = ranked.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["debian 12 netinst amd64", "netinst debian", "debian live"]
        );
    }

    #[test]
    fn magnet_round_trips() {
        let h = hit(7, "a 'quoted' name", "dht");
        let m = Magnet::parse(&h.magnet()).unwrap();
        assert_eq!(m.v1, Some(InfoHashV1([7; 20])));
        assert_eq!(m.name.as_deref(), Some("a 'quoted' name"));
        assert!(!h.download_command()[16..h.download_command().len() - 1].contains('\''));
    }
}
