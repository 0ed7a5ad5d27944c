//! The settings of a DHT [`Node`](super::Node).
use super::*;

/// Node settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node ID; `None` draws one (BEP 42-compliant when `external_ip` is known).
    pub id: Option<Id20>,
    /// The external IP, if known (for a BEP 42 ID).
    pub external_ip: Option<IpAddr>,
    /// Seed of the node's RNG (IDs, tokens, transaction ids, sampling).
    pub seed: u64,
    /// BEP 43 read-only: send `ro=1`, answer no queries.
    pub read_only: bool,
    /// Routing-table settings.
    pub routing: RoutingConfig,
    /// Storage limits.
    pub store: StoreConfig,
    /// Per-source answer rate limit (`None`: unlimited, for simulations).
    pub rate: Option<RateConfig>,
    /// Initial lookup parallelism (grows on timeouts up to twice this).
    pub alpha: usize,
    /// Query timeout bounds and initial value (ms), adapted to measured RTTs between.
    pub timeout_min_ms: u32,
    /// Upper bound of the adaptive timeout (ms).
    pub timeout_max_ms: u32,
    /// Timeout before any RTT was measured (ms).
    pub timeout_initial_ms: u32,
    /// Most concurrent lookups; more are refused.
    pub max_lookups: usize,
    /// Most outstanding queries; more are refused.
    pub max_pending: usize,
    /// Interval of routing-table maintenance (bucket refresh, stale pings), ms.
    pub maintenance_ms: u64,
    /// Client version string sent as `v`.
    pub version: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: None,
            external_ip: None,
            seed: 0,
            read_only: false,
            routing: RoutingConfig::default(),
            store: StoreConfig::default(),
            rate: Some(RateConfig::default()),
            alpha: 3,
            timeout_min_ms: 100,
            timeout_max_ms: 4000,
            timeout_initial_ms: 1000,
            max_lookups: 256,
            max_pending: 2048,
            maintenance_ms: 60_000,
            version: Some(b"SH01".to_vec()),
        }
    }
}
