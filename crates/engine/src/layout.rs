//! Adapter from a parsed torrent ([`shoal_metainfo::Torrent`]) to the plain
//! storage description ([`shoal_storage::StorageLayout`]), and the file
//! selection (`--only`) turned into per-piece priorities.
use crate::error::AddTorrentError;
use shoal_metainfo::Torrent;
use shoal_storage::{FileSpec, StorageLayout};

/// Builds the storage layout of a v1 or hybrid torrent (v2-only torrents
/// have no SHA-1 piece hashes and are not supported by the engine yet).
pub fn storage_layout(t: &Torrent) -> Result<StorageLayout, AddTorrentError> {
    let mut hashes = Vec::with_capacity(t.piece_count() as usize);
    for i in 0..t.piece_count() {
        let h = t.piece_hash_v1(i).ok_or(AddTorrentError::V2Only)?;
        hashes.push(h);
    }
    Ok(StorageLayout {
        piece_length: t.piece_length(),
        total_length: t.total_length(),
        files: t
            .files()
            .iter()
            .map(|f| FileSpec {
                path: f.path.clone(),
                length: f.length,
                pad: f.pad,
            })
            .collect(),
        piece_hashes_v1: hashes,
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

/// Per-piece priority (1 wanted, 0 not) from the wanted files: a piece is
/// wanted when any wanted file (of non-zero length) overlaps it.
pub fn piece_priorities(t: &Torrent, wanted: &[bool]) -> Vec<u8> {
    let n = t.piece_count() as usize;
    let pl = t.piece_length().max(1);
    let mut prio = vec![0u8; n];
    for (f, _) in t.files().iter().zip(wanted).filter(|(_, &w)| w) {
        if f.length == 0 {
            continue;
        }
        let first = (f.offset / pl) as usize;
        let last = ((f.end() - 1) / pl) as usize;
        for p in prio.iter_mut().take(last + 1).skip(first) {
            *p = 1;
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
