//! A parsed and validated .torrent file (v1, v2 or hybrid).
//!
//! [`Torrent::from_bytes`] checks, in order: the size limit (before decoding),
//! bencode validity (with limits; bytes after the top-level dictionary are
//! ignored), `meta version`, that a v2 or hybrid `info` is canonical,
//! `piece length`, the v1 file list and `pieces`, the v2 `file tree` and the
//! `piece layers` present, the agreement of both halves of a hybrid, and then
//! the advisory keys. Paths are sanitised (see [`crate::path`]). What was
//! irregular but unambiguous (unsorted keys outside a v2 `info`, trailing bytes,
//! missing piece layers) is recorded in [`Torrent::irregularities`].
//!
//! The piece stream: files are concatenated in torrent order, pad files
//! included. For v2-only torrents, where BEP 52 aligns every non-empty file to
//! a piece boundary, the alignment gaps are represented by synthetic pad files
//! (path `.pad/<N>`, `pad: true`), as a hybrid's v1 half would have them, so
//! the layout is the same whatever the version.
mod extras;
mod span;
use span::span_in;

use crate::error::{invalid, opt, req, Field, MetainfoError, Problem};
use crate::files::{self, layout, prefer_utf8, Attrs, FileEntry, RawFile};
use crate::hash::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::irregular::{self, Irregularity};
use crate::limits::ParseLimits;
use crate::magnet::{HostPort, Magnet};
use crate::{path, v2};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Per-file v2 piece layers, aligned with the file list.
type Layers = Vec<Option<Vec<[u8; 32]>>>;

/// Which halves a torrent has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaVersion {
    /// BEP 3 only (`pieces`).
    V1,
    /// BEP 52 only (`meta version` 2, `file tree`).
    V2,
    /// Both, describing the same files (BEP 52 hybrid).
    Hybrid,
}

/// One tier of tracker URLs (BEP 12). The URLs are the process's shared
/// copies ([`shoal_base::intern`]).
pub type TrackerTier = Box<[std::sync::Arc<str>]>;

/// A validated torrent. Immutable; cheap accessors.
///
/// Invariants: at least one file; total length > 0; `piece_count()` pieces
/// cover the piece stream; for v1/hybrid there is one SHA-1 per piece; for
/// v2/hybrid every non-empty file has a pieces root (not all zeros) and starts
/// on a piece boundary, and every piece layer held is verified against its root
/// (a file longer than one piece may lack its layer: see
/// [`Torrent::needs_piece_layer`]).
#[derive(Debug, Clone)]
pub struct Torrent {
    info_bytes: Vec<u8>,
    info_hashes: InfoHashes,
    version: MetaVersion,
    name: String,
    multi_file: bool,
    piece_length: u64,
    total_length: u64,
    piece_count: u32,
    /// Where the v1 piece hashes are in `info_bytes` (20 bytes each; empty
    /// for v2-only torrents). Not a copy: a torrent's hashes are most of its
    /// size (80 KB for 4 GiB in 1 MiB pieces), and a daemon holds thousands.
    pieces_v1: std::ops::Range<usize>,
    files: Vec<FileEntry>,
    layers: Layers,
    private: bool,
    trackers: Box<[TrackerTier]>,
    comment: Option<Box<str>>,
    created_by: Option<Box<str>>,
    creation_date: Option<i64>,
    /// The keys most torrents lack, boxed: `None` when all are empty. A
    /// daemon holds thousands of torrents; inline they cost 120 bytes each.
    rare: Option<Box<Rare>>,
}

/// The optional keys of a [`Torrent`] that most lack (see `Torrent::rare`).
#[derive(Debug, Clone, Default)]
struct Rare {
    web_seeds: Vec<String>,
    nodes: Vec<HostPort>,
    similar: Vec<Vec<u8>>,
    collections: Vec<Vec<u8>>,
    irregularities: Vec<Irregularity>,
}

impl Rare {
    fn boxed(self) -> Option<Box<Rare>> {
        let empty = self.web_seeds.is_empty()
            && self.nodes.is_empty()
            && self.similar.is_empty()
            && self.collections.is_empty()
            && self.irregularities.is_empty();
        (!empty).then(|| Box::new(self))
    }
}

/// The empty [`Rare`], for torrents without one.
static NO_RARE: Rare = Rare {
    web_seeds: Vec::new(),
    nodes: Vec::new(),
    similar: Vec::new(),
    collections: Vec::new(),
    irregularities: Vec::new(),
};

impl Torrent {
    /// Parses and validates a whole .torrent file with the default [`ParseLimits`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Torrent, MetainfoError> {
        Self::from_bytes_with(bytes, &ParseLimits::default())
    }

    /// As [`Torrent::from_bytes`] with explicit limits.
    pub fn from_bytes_with(bytes: &[u8], limits: &ParseLimits) -> Result<Torrent, MetainfoError> {
        Self::parse(bytes, limits, true)
    }

    /// Parses a bare bencoded `info` dictionary (as fetched from peers with
    /// BEP 9), which must be exactly one dictionary. v2 piece layers cannot be
    /// present there, so [`Torrent::piece_layer`] returns `None` for every file
    /// and their absence is not an irregularity.
    pub fn from_info_bytes(info: &[u8], limits: &ParseLimits) -> Result<Torrent, MetainfoError> {
        if info.len() > limits.max_torrent_size {
            return Err(MetainfoError::TooLarge {
                size: info.len(),
                limit: limits.max_torrent_size,
            });
        }
        let mut wrapped = Vec::with_capacity(info.len() + 8);
        wrapped.extend_from_slice(b"d4:info");
        wrapped.extend_from_slice(info);
        wrapped.push(b'e');
        let t = Self::parse(&wrapped, limits, false).map_err(|e| shift_offsets(e, 7))?;
        if t.info_bytes.len() != info.len() {
            // Bytes after the dictionary would have been read as more top-level keys.
            return Err(MetainfoError::Bencode(shoal_bencode::Error {
                offset: t.info_bytes.len(),
                kind: shoal_bencode::ErrorKind::TrailingData,
            }));
        }
        Ok(t)
    }

    fn parse(bytes: &[u8], limits: &ParseLimits, full: bool) -> Result<Torrent, MetainfoError> {
        if bytes.len() > limits.max_torrent_size {
            return Err(MetainfoError::TooLarge {
                size: bytes.len(),
                limit: limits.max_torrent_size,
            });
        }
        let (root, end) = shoal_bencode::decode_prefix(bytes, &limits.bencode())?;
        let mut irregularities = Vec::new();
        if end < bytes.len() {
            irregularities.push(Irregularity::TrailingBytes {
                offset: end,
                len: bytes.len() - end,
            });
        }
        let top = root.as_dict().ok_or_else(|| {
            invalid(
                "(top level)",
                Problem::WrongType {
                    expected: "dictionary",
                    got: root.type_name(),
                },
                0,
            )
        })?;
        let info_field = req(top, "", "info")?;
        let info = info_field.dict()?;
        let info_bytes = info.raw().unwrap_or_default().to_vec();

        let meta_version = match opt(info, "info", "meta version") {
            Some(f) => {
                let v = f.int()?;
                if v != 2 {
                    return Err(f.err(Problem::UnsupportedVersion(v)));
                }
                true
            }
            None => false,
        };
        let has_v2 = meta_version;
        if let Err(e) = info_field.value.check_canonical() {
            if has_v2 {
                return Err(MetainfoError::NotCanonical(e));
            }
            let (key, offset) = irregular::unsorted_key(&e);
            irregularities.push(Irregularity::UnsortedInfoKeys { key, offset });
        }
        irregularities.extend(irregular::unsorted_outside_info(top));
        let has_v1 = !has_v2 || info.get(b"pieces").is_some();
        let version = match (has_v1, has_v2) {
            (true, true) => MetaVersion::Hybrid,
            (false, true) => MetaVersion::V2,
            _ => MetaVersion::V1,
        };

        let plf = req(info, "info", "piece length")?;
        let piece_length = plf.u64()?;
        if piece_length == 0 {
            return Err(plf.err(Problem::Zero));
        }
        if piece_length > limits.max_piece_length {
            return Err(plf.err(Problem::TooLarge {
                value: piece_length,
                limit: limits.max_piece_length,
            }));
        }
        if has_v2 && !v2::valid_piece_length(piece_length) {
            return Err(plf.err(Problem::NotPowerOfTwo(piece_length)));
        }

        let name_field = match prefer_utf8(info, "info", "name") {
            Some(f) => f,
            None => req(info, "info", "name")?,
        };
        let raw_name = name_field.bytes()?.to_vec();

        // The v1 half.
        let mut v1_files: Option<(Vec<RawFile>, bool, Field<'_, '_>)> = None;
        let mut pieces_v1 = 0..0;
        if has_v1 {
            let pf = req(info, "info", "pieces")?;
            let p = pf.bytes()?;
            if p.len() % 20 != 0 {
                return Err(pf.err(Problem::HashLength {
                    len: p.len(),
                    unit: 20,
                }));
            }
            pieces_v1 = span_in(info.raw().unwrap_or_default(), p);
            let (raws, multi) = match (opt(info, "info", "length"), opt(info, "info", "files")) {
                (Some(lf), None) => {
                    let length = lf.u64()?;
                    let single = RawFile {
                        components: vec![raw_name.clone()],
                        length,
                        attrs: Attrs::parse(info, "info")?,
                        symlink: None,
                        pieces_root: None,
                        mtime: None,
                        key: "info".into(),
                        offset: info.offset(),
                    };
                    (vec![single], false)
                }
                (None, Some(ff)) => {
                    let raws = files::parse_v1_files(&ff, limits)?;
                    if raws.is_empty() {
                        return Err(ff.err(Problem::Empty));
                    }
                    (raws, true)
                }
                _ => {
                    return Err(invalid(
                        "info.files",
                        Problem::LengthAndFiles,
                        info.offset(),
                    ))
                }
            };
            v1_files = Some((raws, multi, pf));
        }

        // The v2 half.
        let mut v2_files: Option<Vec<RawFile>> = None;
        let mut v2_layers: Layers = Vec::new();
        if has_v2 {
            let tf = req(info, "info", "file tree")?;
            let raws = v2::parse_file_tree(&tf, limits)?;
            let mut layers_field = opt(top, "", "piece layers");
            if let Some(f) = layers_field
                .as_ref()
                .filter(|f| f.value.as_dict().is_none())
            {
                // libtorrent ignores it too: the layers can come from peers.
                irregularities.push(Irregularity::PieceLayersNotDict {
                    got: f.value.type_name(),
                });
                layers_field = None;
            }
            v2_layers = v2::check_piece_layers(layers_field.as_ref(), &raws, piece_length)?;
            v2_files = Some(raws);
        }

        let (raws, multi, layers, layout_name) = match (v1_files, v2_files) {
            (Some((v1, multi, _)), None) => {
                let n = v1.len();
                (v1, multi, vec![None; n], None)
            }
            (Some((v1, multi, _)), Some(v2f)) => {
                let (raws, layers) = merge_hybrid(v1, multi, v2f, v2_layers, piece_length)?;
                (raws, multi, layers, None)
            }
            (None, Some(v2f)) => {
                let single = v2f.len() == 1 && v2f.iter().all(|f| f.components.len() == 1);
                let key_name = if single {
                    v2f.first().and_then(|f| f.components.first()).cloned()
                } else {
                    None
                };
                let (raws, layers) = add_alignment_pads(v2f, v2_layers, piece_length);
                (raws, !single, layers, key_name)
            }
            (None, None) => return Err(invalid("info.pieces", Problem::Missing, info.offset())),
        };
        if raws.len() > limits.max_files {
            return Err(invalid(
                "info.files",
                Problem::TooMany {
                    what: "files",
                    limit: limits.max_files as u64,
                },
                info.offset(),
            ));
        }

        let mut hashes = InfoHashes { v1: None, v2: None };
        if has_v1 {
            hashes.v1 = Some(InfoHashV1(Sha1::digest(&info_bytes).into()));
        }
        if has_v2 {
            hashes.v2 = Some(InfoHashV2(Sha256::digest(&info_bytes).into()));
        }
        let name = path::sanitize_component(&raw_name, limits.max_name_len)
            .unwrap_or_else(|| hashes.primary().to_hex());
        let file_name = match &layout_name {
            Some(k) => {
                path::sanitize_component(k, limits.max_name_len).unwrap_or_else(|| name.clone())
            }
            None => name.clone(),
        };
        let files = layout(&file_name, multi, raws, limits)?;
        let total_length = files.last().map(FileEntry::end).unwrap_or(0);
        if total_length == 0 {
            return Err(invalid("info", Problem::Empty, info.offset()));
        }
        let pieces = total_length.div_ceil(piece_length);
        if pieces > limits.max_pieces {
            return Err(plf.err(Problem::TooMany {
                what: "pieces",
                limit: limits.max_pieces,
            }));
        }
        if has_v1 {
            let got = (pieces_v1.len() / 20) as u64;
            if got != pieces {
                let offset = info.offset_of(b"pieces").unwrap_or(info.offset());
                return Err(invalid(
                    "info.pieces",
                    Problem::PieceCount {
                        got,
                        expected: pieces,
                        total: total_length,
                    },
                    offset,
                ));
            }
        }

        if full && has_v2 {
            let needing: Vec<bool> = files
                .iter()
                .zip(&layers)
                .filter(|(f, _)| f.pieces_root.is_some() && f.length > piece_length && !f.pad)
                .map(|(_, l)| l.is_none())
                .collect();
            let missing = needing.iter().filter(|m| **m).count();
            if missing > 0 {
                irregularities.push(Irregularity::MissingPieceLayers {
                    missing,
                    of: needing.len(),
                });
            }
        }

        let private = matches!(info.get(b"private").and_then(|v| v.as_int()), Some(1));
        Ok(Torrent {
            info_bytes,
            info_hashes: hashes,
            version,
            name,
            multi_file: multi,
            piece_length,
            total_length,
            piece_count: u32::try_from(pieces).unwrap_or(u32::MAX),
            pieces_v1,
            files,
            layers,
            private,
            trackers: extras::trackers(top, limits)?,
            comment: extras::text_field(top, "comment").map(String::into_boxed_str),
            created_by: extras::text_field(top, "created by").map(String::into_boxed_str),
            creation_date: top.get(b"creation date").and_then(|v| v.as_int()),
            rare: Rare {
                web_seeds: extras::web_seeds(top, limits)?,
                nodes: extras::nodes(top, limits)?,
                similar: extras::byte_list(info, top, "similar", limits),
                collections: extras::byte_list(info, top, "collections", limits),
                irregularities,
            }
            .boxed(),
        })
    }

    /// The info-hashes: v1 = SHA-1 and v2 = SHA-256 of [`Torrent::info_bytes`].
    pub fn info_hashes(&self) -> InfoHashes {
        self.info_hashes
    }

    /// The exact bytes of the bencoded `info` dictionary (for hashing and BEP 9).
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// v1, v2 or hybrid.
    pub fn version(&self) -> MetaVersion {
        self.version
    }

    /// The sanitised torrent name (a single path component; the info-hash in
    /// hex if the name sanitises to nothing).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when files live in a directory named [`Torrent::name`].
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Number of pieces: ceil(total length / piece length).
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Length of the piece stream: all files, pad files included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Length of piece `index`, or `None` past the end.
    pub fn piece_size(&self, index: u32) -> Option<u64> {
        if index >= self.piece_count {
            return None;
        }
        let start = u64::from(index) * self.piece_length;
        Some((self.total_length - start).min(self.piece_length))
    }

    /// The v1 SHA-1 of piece `index` (`None` for v2-only torrents or past the end).
    pub fn piece_hash_v1(&self, index: u32) -> Option<[u8; 20]> {
        let start = usize::try_from(index).ok()?.checked_mul(20)?;
        if start + 20 > self.pieces_v1.len() {
            return None;
        }
        let at = self.pieces_v1.start + start;
        let slice = self.info_bytes.get(at..at + 20)?;
        <[u8; 20]>::try_from(slice).ok()
    }

    /// The verified v2 piece layer of file `file_index` (one SHA-256 per piece of
    /// that file). `None` for v1-only torrents, pad and empty files, files of at
    /// most one piece (whose single piece hash is their `pieces_root`), and
    /// torrents made with [`Torrent::from_info_bytes`].
    pub fn piece_layer(&self, file_index: usize) -> Option<&[[u8; 32]]> {
        self.layers.get(file_index)?.as_deref()
    }

    /// Whether file `file_index` needs a piece layer that this torrent lacks: a
    /// file of a v2-only torrent, longer than one piece, whose layer was neither
    /// in the metainfo (a .torrent file without `piece layers`, or with some
    /// missing, or a bare info dict from [`Torrent::from_info_bytes`] for a
    /// magnet link) nor attached since with [`Torrent::attach_piece_layer`].
    /// Always false for v1 and hybrid torrents (their SHA-1 piece hashes do).
    pub fn needs_piece_layer(&self, file_index: usize) -> bool {
        self.version == MetaVersion::V2
            && self
                .files
                .get(file_index)
                .is_some_and(|f| f.pieces_root.is_some() && f.length > self.piece_length && !f.pad)
            && self.piece_layer(file_index).is_none()
    }

    /// Attaches a piece layer fetched separately (BEP 52 hash requests, for a
    /// magnet link) to file `file_index`. The layer is checked like one read
    /// from `piece layers`: one hash per piece of the file, hashing to its
    /// `pieces root`; on error the torrent is unchanged.
    pub fn attach_piece_layer(
        &mut self,
        file_index: usize,
        layer: Vec<[u8; 32]>,
    ) -> Result<(), MetainfoError> {
        let key = format!("piece layer of file {file_index}");
        let Some(f) = self.files.get(file_index) else {
            return Err(invalid(key, Problem::MissingLayer, 0));
        };
        let Some(root) = f.pieces_root.filter(|_| f.length > self.piece_length) else {
            return Err(invalid(key, Problem::MissingLayer, 0));
        };
        let expected = f.length.div_ceil(self.piece_length);
        let got = layer.len() as u64;
        if got != expected {
            return Err(invalid(
                key,
                Problem::PieceCount {
                    got,
                    expected,
                    total: f.length,
                },
                0,
            ));
        }
        let level = (self.piece_length / 16384).max(1).trailing_zeros();
        if crate::merkle::merkle_root_with_pad(&layer, layer.len(), level) != root {
            return Err(invalid(key, Problem::LayerMismatch, 0));
        }
        if self.layers.len() < self.files.len() {
            self.layers.resize(self.files.len(), None);
        }
        if let Some(slot) = self.layers.get_mut(file_index) {
            *slot = Some(layer);
        }
        Ok(())
    }

    fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// What was irregular in the file but loaded anyway, in the order found
    /// (empty for a canonical, complete torrent).
    pub fn irregularities(&self) -> &[Irregularity] {
        &self.rare().irregularities
    }

    /// The files in torrent order, with offsets in the piece stream.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Tracker URLs by tier (BEP 12), or the single `announce` as one tier.
    pub fn trackers(&self) -> &[TrackerTier] {
        &self.trackers
    }

    /// [`Torrent::trackers`] as owned strings.
    pub fn tracker_urls(&self) -> Vec<Vec<String>> {
        self.trackers
            .iter()
            .map(|t| t.iter().map(|u| u.to_string()).collect())
            .collect()
    }

    /// BEP 19 web seed URLs.
    pub fn web_seeds(&self) -> &[String] {
        &self.rare().web_seeds
    }

    /// DHT bootstrap nodes from `nodes`.
    pub fn nodes(&self) -> &[HostPort] {
        &self.rare().nodes
    }

    /// BEP 27 private flag (`info.private == 1`).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// `created by`, if any.
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// `creation date` (seconds since the Unix epoch), if any.
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }

    /// BEP 38 `similar` info-hashes, raw (from `info`, then the top level).
    pub fn similar(&self) -> &[Vec<u8>] {
        &self.rare().similar
    }

    /// BEP 38 `collections` names, raw (from `info`, then the top level).
    pub fn collections(&self) -> &[Vec<u8>] {
        &self.rare().collections
    }

    /// A magnet link for this torrent: info-hashes, name, trackers (all tiers
    /// flattened) and web seeds.
    pub fn magnet(&self) -> Magnet {
        Magnet {
            v1: self.info_hashes.v1,
            v2: self.info_hashes.v2,
            name: Some(self.name.clone()),
            trackers: self
                .trackers
                .iter()
                .flatten()
                .map(|u| u.to_string())
                .collect(),
            web_seeds: self.rare().web_seeds.clone(),
            peers: Vec::new(),
            select_only: Vec::new(),
        }
    }
}

/// Checks a hybrid's halves describe the same files in the same order, with
/// every non-empty v1 file on a piece boundary; returns the v1 list (pad files
/// included) carrying the v2 pieces roots, and the layers in the same order.
fn merge_hybrid(
    mut v1: Vec<RawFile>,
    multi: bool,
    v2f: Vec<RawFile>,
    v2_layers: Layers,
    piece_length: u64,
) -> Result<(Vec<RawFile>, Layers), MetainfoError> {
    let mismatch =
        |f: &RawFile, what: String| invalid(f.key.clone(), Problem::HybridMismatch(what), f.offset);
    let mut layers = Vec::with_capacity(v1.len());
    let mut it = v2f.into_iter().zip(v2_layers);
    let mut offset = 0u64;
    for f in v1.iter_mut() {
        if f.attrs.pad {
            layers.push(None);
            offset = offset.saturating_add(f.length);
            continue;
        }
        let Some((g, layer)) = it.next() else {
            return Err(mismatch(f, "file missing from the v2 file tree".into()));
        };
        let same_path = if multi {
            f.components == g.components
        } else {
            g.components.len() == 1 && f.components == g.components
        };
        if !same_path {
            return Err(mismatch(
                f,
                format!(
                    "v1 path {:?} but v2 path {:?}",
                    String::from_utf8_lossy(&f.components.join(&b'/')),
                    String::from_utf8_lossy(&g.components.join(&b'/'))
                ),
            ));
        }
        if f.length != g.length {
            return Err(mismatch(
                f,
                format!("v1 length {} but v2 length {}", f.length, g.length),
            ));
        }
        if f.length > 0 && !offset.is_multiple_of(piece_length) {
            return Err(invalid(
                f.key.clone(),
                Problem::Unaligned { offset },
                f.offset,
            ));
        }
        f.pieces_root = g.pieces_root;
        layers.push(layer);
        offset = offset.saturating_add(f.length);
    }
    if let Some((g, _)) = it.next() {
        return Err(mismatch(&g, "file missing from the v1 file list".into()));
    }
    Ok((v1, layers))
}

/// Inserts synthetic pad files after each non-empty v2 file that does not end
/// on a piece boundary and is followed by another non-empty file.
fn add_alignment_pads(
    v2f: Vec<RawFile>,
    v2_layers: Layers,
    piece_length: u64,
) -> (Vec<RawFile>, Layers) {
    let last_nonempty = v2f.iter().rposition(|f| f.length > 0).unwrap_or(0);
    let mut raws = Vec::with_capacity(v2f.len() * 2);
    let mut layers = Vec::with_capacity(v2f.len() * 2);
    for (i, (f, layer)) in v2f.into_iter().zip(v2_layers).enumerate() {
        let rem = f.length % piece_length;
        let needs_pad = i < last_nonempty && f.length > 0 && rem != 0;
        let (key, offset) = (f.key.clone(), f.offset);
        raws.push(f);
        layers.push(layer);
        if needs_pad {
            let n = piece_length - rem;
            raws.push(RawFile {
                components: vec![b".pad".to_vec(), n.to_string().into_bytes()],
                length: n,
                attrs: Attrs {
                    pad: true,
                    ..Attrs::default()
                },
                symlink: None,
                pieces_root: None,
                mtime: None,
                key,
                offset,
            });
            layers.push(None);
        }
    }
    (raws, layers)
}

/// Moves error offsets back by `by` bytes (for [`Torrent::from_info_bytes`]).
fn shift_offsets(e: MetainfoError, by: usize) -> MetainfoError {
    match e {
        MetainfoError::Invalid {
            key,
            problem,
            offset,
        } => MetainfoError::Invalid {
            key,
            problem,
            offset: offset.saturating_sub(by),
        },
        MetainfoError::Bencode(mut b) => {
            b.offset = b.offset.saturating_sub(by);
            MetainfoError::Bencode(b)
        }
        MetainfoError::NotCanonical(mut b) => {
            b.offset = b.offset.saturating_sub(by);
            MetainfoError::NotCanonical(b)
        }
        other => other,
    }
}

#[cfg(test)]
mod attach_tests {
    use super::*;
    use crate::create::{CreateOptions, Version};

    /// Layers taken from a full v2 torrent attach to the same torrent made
    /// from its bare info dict; wrong or short layers are refused.
    #[test]
    fn attach_piece_layer_checks_count_and_root() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("t");
        std::fs::create_dir_all(&src).unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(src.join("big"), &big).unwrap();
        std::fs::write(src.join("small"), b"tiny").unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            version: Version::V2,
            ..CreateOptions::default()
        };
        let full = Torrent::from_bytes(&crate::create(&src, &opts, &|_| {}).unwrap()).unwrap();
        let mut bare = Torrent::from_info_bytes(full.info_bytes(), &Default::default()).unwrap();
        let i = (0..full.files().len())
            .find(|&i| full.piece_layer(i).is_some())
            .unwrap();
        assert!(bare.needs_piece_layer(i));
        assert!(!full.needs_piece_layer(i));
        let small = 1 - i;
        assert!(!bare.needs_piece_layer(small));
        let layer = full.piece_layer(i).unwrap().to_vec();
        let mut wrong = layer.clone();
        wrong[1][0] ^= 1;
        assert!(bare.attach_piece_layer(i, wrong).is_err());
        assert!(bare
            .attach_piece_layer(i, layer[..layer.len() - 1].to_vec())
            .is_err());
        assert!(bare.attach_piece_layer(small, vec![[0; 32]]).is_err());
        assert!(bare.needs_piece_layer(i));
        bare.attach_piece_layer(i, layer.clone()).unwrap();
        assert_eq!(bare.piece_layer(i), Some(layer.as_slice()));
        assert!(!bare.needs_piece_layer(i));
        // A hybrid from bare info bytes has its SHA-1 hashes: nothing needed.
        let opts = CreateOptions {
            version: Version::Hybrid,
            ..opts
        };
        let hybrid = Torrent::from_bytes(&crate::create(&src, &opts, &|_| {}).unwrap()).unwrap();
        let bare = Torrent::from_info_bytes(hybrid.info_bytes(), &Default::default()).unwrap();
        assert!((0..bare.files().len()).all(|i| !bare.needs_piece_layer(i)));
    }
}
