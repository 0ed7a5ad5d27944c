//! Adapter from a parsed torrent ([`shoal_metainfo::Torrent`]) to the plain
//! storage description ([`shoal_storage::StorageLayout`]), and the file
//! selection (`--only`) turned into per-piece priorities.
//!
//! v1 and hybrid torrents are verified with their SHA-1 piece hashes; v2-only
//! torrents (BEP 52) with per-piece SHA-256 merkle roots taken from the piece
//! layers (files of at most one piece: their pieces root). The piece space is
//! the same for both: metainfo aligns v2 files with synthetic pad files.
use crate::error::AddTorrentError;
use shoal_metainfo::{MetaVersion, Torrent};
use shoal_storage::{FileSpec, PieceHashes, StorageLayout, V2FileHashes};

/// Builds the storage layout of a torrent: SHA-1 piece hashes for v1 and
/// hybrid torrents, merkle piece roots for v2-only ones. A v2-only layout
/// ends with a pad to the piece boundary (as libtorrent's), so its
/// `total_length` may exceed [`Torrent::total_length`]: size the piece
/// picker from the layout. Fails with
/// [`AddTorrentError::V2Only`] for a v2-only torrent without its piece layers
/// (one made from a bare `info` dictionary, as fetched for a magnet link).
pub fn storage_layout(t: &Torrent) -> Result<StorageLayout, AddTorrentError> {
    let mut files: Vec<FileSpec> = t
        .files()
        .iter()
        .map(|f| FileSpec {
            path: f.path.clone(),
            length: f.length,
            pad: f.pad,
        })
        .collect();
    let mut total_length = t.total_length();
    if t.version() == MetaVersion::V2 {
        // libtorrent pads the last file of a v2 torrent to a piece boundary
        // too, so its last piece is a full piece on the wire (it requests the
        // block holding the file's end as a whole 16 KiB block). Match it:
        // a trailing pad (zeros, never on disk), appended after the torrent's
        // files so file indices are unchanged.
        let rem = total_length % t.piece_length();
        if rem != 0 {
            let pad = t.piece_length() - rem;
            files.push(FileSpec {
                path: format!(".pad/{pad}").into(),
                length: pad,
                pad: true,
            });
            total_length += pad;
        }
    }
    let piece_hashes = match t.version() {
        MetaVersion::V1 | MetaVersion::Hybrid => {
            let mut hashes = Vec::with_capacity(t.piece_count() as usize);
            for i in 0..t.piece_count() {
                let h = t.piece_hash_v1(i).ok_or(AddTorrentError::V2Only)?;
                hashes.push(h);
            }
            PieceHashes::V1(hashes)
        }
        MetaVersion::V2 => {
            let v2: Vec<Option<V2FileHashes<'_>>> = t
                .files()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    f.pieces_root.map(|pieces_root| V2FileHashes {
                        pieces_root,
                        layer: t.piece_layer(i),
                    })
                })
                .collect();
            PieceHashes::v2_from_files(t.piece_length(), &files, &v2).map_err(|e| match e {
                shoal_storage::LayoutError::V2MissingHashes { .. } => AddTorrentError::V2Only,
                other => AddTorrentError::Storage(other.into()),
            })?
        }
    };
    Ok(StorageLayout {
        piece_length: t.piece_length(),
        total_length,
        files,
        piece_hashes,
    })
}

/// Which files to download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FileSelection {
    /// Every file.
    #[default]
    All,
    /// Only the files with these indices (torrent order, pad files count).
    Indices(Vec<usize>),
    /// Only the files whose path (joined with `/`) matches this glob
    /// (`*` any run of characters, `?` one character).
    Glob(String),
}

impl FileSelection {
    /// Parses a `--only` value: `INDEX[,INDEX...]` or a glob.
    pub fn parse(spec: &str) -> FileSelection {
        let spec = spec.trim();
        let parts: Option<Vec<usize>> = spec
            .split(',')
            .map(|s| s.trim().parse::<usize>().ok())
            .collect();
        match parts {
            Some(v) if !v.is_empty() => FileSelection::Indices(v),
            _ => FileSelection::Glob(spec.to_owned()),
        }
    }

    /// Whether the selection wants file `index` with `path`.
    pub fn wants(&self, index: usize, path: &str) -> bool {
        match self {
            FileSelection::All => true,
            FileSelection::Indices(v) => v.contains(&index),
            FileSelection::Glob(g) => {
                glob_match(g.as_bytes(), path.as_bytes())
                    || path
                        .split_once('/')
                        .is_some_and(|(_, rest)| glob_match(g.as_bytes(), rest.as_bytes()))
            }
        }
    }

    /// Wanted flag per file of `t` (pad files are never wanted), or an error
    /// when the selection names a file that does not exist or matches nothing.
    pub fn wanted_files(&self, t: &Torrent) -> Result<Vec<bool>, AddTorrentError> {
        let files = t.files();
        if let FileSelection::Indices(v) = self {
            if let Some(&bad) = v.iter().find(|&&i| i >= files.len()) {
                return Err(AddTorrentError::NoSuchFile {
                    index: bad,
                    count: files.len(),
                });
            }
        }
        let wanted: Vec<bool> = files
            .iter()
            .enumerate()
            .map(|(i, f)| !f.pad && self.wants(i, &f.path_string()))
            .collect();
        if !wanted.iter().any(|&w| w) && files.iter().any(|f| !f.pad) {
            return Err(AddTorrentError::EmptySelection);
        }
        Ok(wanted)
    }
}

impl FileSelection {
    /// One priority per file of `t`: 1 for a selected file, 0 otherwise
    /// (errors as [`FileSelection::wanted_files`]).
    pub fn file_priorities(&self, t: &Torrent) -> Result<Vec<u8>, AddTorrentError> {
        Ok(self.wanted_files(t)?.into_iter().map(u8::from).collect())
    }
}

/// Per-piece priority (1 wanted, 0 not) from the wanted files: a piece is
/// wanted when any wanted file (of non-zero length) overlaps it.
pub fn piece_priorities(t: &Torrent, wanted: &[bool]) -> Vec<u8> {
    let prio: Vec<u8> = wanted.iter().map(|&w| u8::from(w)).collect();
    piece_priorities_of(t, &prio)
}

/// Per-piece priority from one priority per file (0: skip): a piece gets
/// the highest priority of the files (of non-zero length, not padding) that
/// overlap it. Missing entries count as 1.
pub fn piece_priorities_of(t: &Torrent, file_prio: &[u8]) -> Vec<u8> {
    let n = t.piece_count() as usize;
    let pl = t.piece_length().max(1);
    let mut prio = vec![0u8; n];
    for (i, f) in t.files().iter().enumerate() {
        let fp = file_prio.get(i).copied().unwrap_or(1);
        if f.length == 0 || f.pad || fp == 0 {
            continue;
        }
        let first = (f.offset / pl) as usize;
        let last = ((f.end() - 1) / pl) as usize;
        for p in prio.iter_mut().take(last + 1).skip(first) {
            *p = (*p).max(fp);
        }
    }
    prio
}

/// Matches `text` against a glob with `*` and `?` (iterative, no recursion).
fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.txt", b"a/b.txt"));
        assert!(glob_match(b"a/?.txt", b"a/b.txt"));
        assert!(!glob_match(b"*.txt", b"a/b.bin"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b*c", b"axxbyy"));
    }

    /// A v2-only torrent gets merkle piece roots that verify its data; the
    /// same torrent without piece layers (bare info dict) is refused.
    #[test]
    fn v2_only_layout() {
        use shoal_metainfo::create::{CreateOptions, Version};
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("v2t");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(src.join("big.bin"), &big).unwrap();
        std::fs::write(src.join("sub/small.txt"), b"hello v2").unwrap();
        let opts = CreateOptions {
            piece_length: Some(32 * 1024),
            version: Version::V2,
            ..CreateOptions::default()
        };
        let bytes = shoal_metainfo::create(&src, &opts, &|_| {}).unwrap();
        let t = Torrent::from_bytes(&bytes).unwrap();
        let l = storage_layout(&t).unwrap();
        let PieceHashes::V2(v2) = &l.piece_hashes else {
            panic!("expected v2 hashes");
        };
        assert_eq!(v2.len() as u32, t.piece_count());
        // Padded to a whole last piece, as libtorrent does; files unchanged.
        assert_eq!(l.total_length, u64::from(t.piece_count()) * 32 * 1024);
        assert!(t.total_length() < l.total_length);
        assert_eq!(l.files.len(), t.files().len() + 1);
        assert!(l.files.last().is_some_and(|f| f.pad));
        let s = shoal_storage::Storage::open(
            l.clone(),
            dir.path(),
            shoal_storage::StorageOptions::default(),
        )
        .unwrap();
        assert!(s.check(&|_| {}).unwrap().iter().all(|&ok| ok));
        std::fs::write(src.join("sub/small.txt"), b"hello v3").unwrap();
        let bad = s.check(&|_| {}).unwrap();
        assert_eq!(bad.iter().filter(|&&ok| !ok).count(), 1);
        let bare = Torrent::from_info_bytes(t.info_bytes(), &Default::default()).unwrap();
        assert!(matches!(
            storage_layout(&bare),
            Err(AddTorrentError::V2Only)
        ));
    }

    #[test]
    fn parse_selection() {
        assert_eq!(
            FileSelection::parse("1,3"),
            FileSelection::Indices(vec![1, 3])
        );
        assert_eq!(
            FileSelection::parse("*.iso"),
            FileSelection::Glob("*.iso".into())
        );
        let g = FileSelection::parse("*.iso");
        assert!(g.wants(0, "dir/x.iso"));
        assert!(!g.wants(0, "dir/x.txt"));
        let sub = FileSelection::parse("sub/*");
        assert!(sub.wants(0, "name/sub/a"));
    }
}
