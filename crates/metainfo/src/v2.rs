//! BEP 52 (v2) parts of a torrent: the `file tree` and the `piece layers`,
//! verified against each file's `pieces root` with [`crate::merkle`].
//!
//! A file-tree node is a dictionary; a file is a node whose only key is `""`,
//! mapping to `{length, pieces root, attr?, symlink path?}`. `pieces root` is
//! required for non-empty files and must be 32 bytes, not all zeros; a file
//! with the pad attribute has no place in a file tree (as libtorrent rules).
//! Files are listed in tree order (sorted keys, depth first), which is their
//! order in the piece space.
//!
//! `piece layers` (outside `info`) maps a pieces root to the concatenated hashes
//! of that file's piece layer. Every entry must be a 32-byte key and a whole
//! number of 32-byte hashes. A file longer than one piece should have one, with
//! exactly ceil(length / piece length) hashes, whose merkle root (padded with
//! the pad hash of a piece-sized subtree) is the pieces root; a layer that is
//! present but wrong is an error, a missing one is not (libtorrent loads such
//! torrents, and the layer can be fetched from peers with BEP 52 hash
//! requests). Files of at most one piece have no layer (their piece hash is
//! the pieces root).
use crate::error::{invalid, Field, MetainfoError, Problem};
use crate::files::{parse_file_dict, RawFile};
use crate::limits::ParseLimits;
use crate::merkle::{self, BLOCK_SIZE};
use shoal_bencode::{Dict, Value};
use std::collections::HashMap;

/// True for a valid v2 piece length: a power of two of at least 16 KiB.
pub fn valid_piece_length(piece_length: u64) -> bool {
    piece_length >= BLOCK_SIZE as u64 && piece_length.is_power_of_two()
}

/// Walks `info.file tree` into raw files in tree order.
pub(crate) fn parse_file_tree(
    tree: &Field<'_, '_>,
    limits: &ParseLimits,
) -> Result<Vec<RawFile>, MetainfoError> {
    let d = tree.dict()?;
    let mut out = Vec::new();
    let mut comps = Vec::new();
    walk(d, &tree.key, &mut comps, &mut out, limits)?;
    if out.is_empty() {
        return Err(tree.err(Problem::Empty));
    }
    Ok(out)
}

fn walk(
    d: &Dict<'_>,
    key: &str,
    comps: &mut Vec<Vec<u8>>,
    out: &mut Vec<RawFile>,
    limits: &ParseLimits,
) -> Result<(), MetainfoError> {
    if let Some(leaf) = d.get(b"") {
        if d.len() != 1 || comps.is_empty() {
            return Err(invalid(key, Problem::FileAndDirectory, d.offset()));
        }
        let fkey = key.to_string();
        let fd = leaf.as_dict().ok_or_else(|| {
            invalid(
                fkey.clone(),
                Problem::WrongType {
                    expected: "dictionary",
                    got: leaf.type_name(),
                },
                d.offset_of(b"").unwrap_or(d.offset()),
            )
        })?;
        let mut f = parse_file_dict(fd, &fkey, limits, false)?;
        if f.attrs.pad {
            return Err(invalid(fkey, Problem::PadInFileTree, fd.offset()));
        }
        f.components = comps.clone();
        if f.length > 0 {
            let root = crate::error::req(fd, &fkey, "pieces root")?;
            let b = root.bytes()?;
            let arr: [u8; 32] = b.try_into().map_err(|_| {
                root.err(Problem::HashLength {
                    len: b.len(),
                    unit: 32,
                })
            })?;
            if arr == [0; 32] {
                return Err(root.err(Problem::ZeroPiecesRoot));
            }
            f.pieces_root = Some(arr);
        }
        if out.len() >= limits.max_files {
            return Err(invalid(
                key,
                Problem::TooMany {
                    what: "files",
                    limit: limits.max_files as u64,
                },
                d.offset(),
            ));
        }
        out.push(f);
        return Ok(());
    }
    if comps.len() >= limits.max_path_depth {
        return Err(invalid(
            key,
            Problem::PathTooDeep {
                depth: comps.len() + 1,
                limit: limits.max_path_depth,
            },
            d.offset(),
        ));
    }
    for (k, v) in d.iter() {
        let child_key = format!("{key}/{}", String::from_utf8_lossy(k));
        // `offset_of` is a linear search: only on the error path.
        let offset = || d.offset_of(k).unwrap_or(d.offset());
        if k.is_empty() {
            return Err(invalid(child_key, Problem::EmptyComponent, offset()));
        }
        let Value::Dict(child) = v else {
            return Err(invalid(
                child_key,
                Problem::WrongType {
                    expected: "dictionary",
                    got: v.type_name(),
                },
                offset(),
            ));
        };
        comps.push(k.to_vec());
        walk(child, &child_key, comps, out, limits)?;
        comps.pop();
    }
    Ok(())
}

/// Verifies `piece layers` for `files` (in order) and returns each file's layer:
/// `None` for files of at most one piece and for files whose layer is absent.
/// `layers` is `None` when the key is absent (or ignored). Every entry must be
/// well-formed even if no file uses it (as libtorrent requires); a layer that a
/// file uses must have one hash per piece of the file and hash to its root.
pub(crate) fn check_piece_layers(
    layers: Option<&Field<'_, '_>>,
    files: &[RawFile],
    piece_length: u64,
) -> Result<Vec<Option<Vec<[u8; 32]>>>, MetainfoError> {
    let dict = match layers {
        Some(f) => Some(f.dict()?),
        None => None,
    };
    // Index once (`Dict::get` is a linear search), checking every entry's shape.
    let mut index: HashMap<&[u8], &[u8]> = HashMap::new();
    if let Some(d) = dict {
        for (k, v) in d.iter() {
            let key = || format!("piece layers[{}]", hex::encode(k));
            let offset = || d.offset_of(k).unwrap_or(d.offset());
            if k.len() != 32 {
                return Err(invalid(key(), Problem::LayerKey { len: k.len() }, offset()));
            }
            let bytes = v.as_bytes().ok_or_else(|| {
                invalid(
                    key(),
                    Problem::WrongType {
                        expected: "byte string",
                        got: v.type_name(),
                    },
                    offset(),
                )
            })?;
            if bytes.len() % 32 != 0 {
                return Err(invalid(
                    key(),
                    Problem::HashLength {
                        len: bytes.len(),
                        unit: 32,
                    },
                    offset(),
                ));
            }
            index.insert(k, bytes);
        }
    }
    let level = (piece_length / BLOCK_SIZE as u64).max(1).trailing_zeros();
    let mut verified: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let Some(root) = f.pieces_root.filter(|_| f.length > piece_length) else {
            out.push(None);
            continue;
        };
        if let Some(layer) = verified.get(&root) {
            out.push(Some(layer.clone()));
            continue;
        }
        let (Some(d), Some(&bytes)) = (dict, index.get(&root[..])) else {
            out.push(None);
            continue;
        };
        let key = format!("piece layers[{}]", hex::encode(root));
        let offset = || d.offset_of(&root).unwrap_or(d.offset());
        let expected = f.length.div_ceil(piece_length);
        let got = (bytes.len() / 32) as u64;
        if got != expected {
            return Err(invalid(
                key,
                Problem::PieceCount {
                    got,
                    expected,
                    total: f.length,
                },
                offset(),
            ));
        }
        let layer: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                a
            })
            .collect();
        if merkle::merkle_root_with_pad(&layer, layer.len(), level) != root {
            return Err(invalid(key, Problem::LayerMismatch, offset()));
        }
        verified.insert(root, layer.clone());
        out.push(Some(layer));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_length_rules() {
        assert!(valid_piece_length(16384));
        assert!(valid_piece_length(1 << 22));
        assert!(!valid_piece_length(8192));
        assert!(!valid_piece_length(3 * 16384));
        assert!(!valid_piece_length(0));
    }
}
