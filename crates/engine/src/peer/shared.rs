//! What every peer task of one torrent shares.
use super::*;

/// What every peer task of one torrent shares.
pub(crate) struct PeerShared {
    /// The torrent's data (uploads read it); set once the metadata is known.
    pub storage: OnceLock<Arc<Storage>>,
    /// The torrent in the session's disk pool, registered before the first
    /// connection (blocks or requests without it are dropped or rejected).
    pub disk: OnceLock<TorrentDisk>,
    /// The rate limits its bytes are charged to.
    pub rates: Arc<TorrentRates>,
    /// Compute block digests for smart ban (on after the first hash failure).
    pub digests: AtomicBool,
    /// The bencoded info dictionary, served over `ut_metadata` (BEP 9) to
    /// peers that came from a magnet link (once we have it ourselves).
    pub info: OnceLock<Bytes>,
    /// The merkle trees above the piece layers of a v2 torrent's files, by
    /// pieces root, for answering BEP 52 hash requests (empty for v1).
    pub hash_trees: OnceLock<Vec<([u8; 32], FileTree)>>,
}

/// The trees [`PeerShared::hash_trees`] holds for `t` (files with a piece layer).
pub(crate) fn hash_trees(t: &shoal_metainfo::Torrent) -> Vec<([u8; 32], FileTree)> {
    let level = (t.piece_length() / 16384).max(1).trailing_zeros();
    let mut out: Vec<([u8; 32], FileTree)> = Vec::new();
    for (i, f) in t.files().iter().enumerate() {
        if let (Some(root), Some(layer)) = (f.pieces_root, t.piece_layer(i)) {
            if !out.iter().any(|(r, _)| *r == root) {
                out.push((root, FileTree::from_piece_layer(layer, level)));
            }
        }
    }
    out
}
