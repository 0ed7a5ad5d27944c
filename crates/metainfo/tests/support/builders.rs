//! Builders for test torrents: v1, v2 and hybrid info dictionaries made in
//! code, with real merkle roots and piece layers and fake v1 piece hashes.
#![allow(dead_code)]
use shoal_bencode::{encode, Dict, Value};
use shoal_metainfo::merkle::{self, BLOCK_SIZE};

pub fn b(x: &[u8]) -> Value<'static> {
    Value::owned_bytes(x.to_vec())
}

pub fn s(x: &str) -> Value<'static> {
    b(x.as_bytes())
}

pub fn dict(pairs: Vec<(&str, Value<'static>)>) -> Dict<'static> {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert(k.as_bytes().to_vec(), v);
    }
    d
}

pub fn path_list(p: &[&[u8]]) -> Value<'static> {
    Value::List(p.iter().map(|c| b(c)).collect())
}

pub fn data(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Fake SHA-1 piece hashes for `total` bytes (content is not checked by parsing).
pub fn fake_pieces(total: u64, pl: u64) -> Value<'static> {
    b(&vec![0xab; (total.div_ceil(pl) * 20) as usize])
}

pub fn torrent(info: Dict<'static>, extra: Vec<(&str, Value<'static>)>) -> Vec<u8> {
    let mut top = dict(extra);
    top.insert(b"info".to_vec(), Value::Dict(info));
    encode(&Value::Dict(top))
}

pub fn v1_single(len: i64, pl: i64) -> Dict<'static> {
    dict(vec![
        ("name", s("file.bin")),
        ("length", Value::Int(len)),
        ("piece length", Value::Int(pl)),
        ("pieces", fake_pieces(len.max(0) as u64, pl.max(1) as u64)),
    ])
}

pub fn v1_multi(files: &[(&[&[u8]], i64)], pl: u64) -> Dict<'static> {
    let total: i64 = files.iter().map(|f| f.1.max(0)).sum();
    let list = files
        .iter()
        .map(|(p, len)| {
            Value::Dict(dict(vec![
                ("path", path_list(p)),
                ("length", Value::Int(*len)),
            ]))
        })
        .collect();
    dict(vec![
        ("name", s("root")),
        ("files", Value::List(list)),
        ("piece length", Value::Int(pl as i64)),
        ("pieces", fake_pieces(total as u64, pl)),
    ])
}

/// Leaf hashes, pieces root and piece layer of `content`.
pub fn v2_hashes(content: &[u8], pl: u64) -> ([u8; 32], Vec<[u8; 32]>) {
    let leaves: Vec<[u8; 32]> = content.chunks(BLOCK_SIZE).map(merkle::block_hash).collect();
    let root = merkle::merkle_root(&leaves, leaves.len());
    (root, merkle::piece_layer_from_leaves(&leaves, pl))
}

pub struct V2 {
    pub tree: Dict<'static>,
    pub layers: Dict<'static>,
    pub roots: Vec<[u8; 32]>,
}

/// A v2 file tree (and piece layers) for files given as (path, length).
pub fn v2_tree(files: &[(&[&str], u64)], pl: u64) -> V2 {
    let mut tree = Dict::new();
    let mut layers = Dict::new();
    let mut roots = Vec::new();
    for (i, (p, len)) in files.iter().enumerate() {
        let content = data(*len, i as u8);
        let mut leaf = dict(vec![("length", Value::Int(*len as i64))]);
        if *len > 0 {
            let (root, layer) = v2_hashes(&content, pl);
            leaf.insert(b"pieces root".to_vec(), b(&root));
            if *len > pl {
                layers.insert(root.to_vec(), b(&layer.concat()));
            }
            roots.push(root);
        }
        insert_path(&mut tree, p, Value::Dict(leaf));
    }
    V2 {
        tree,
        layers,
        roots,
    }
}

pub fn insert_path(tree: &mut Dict<'static>, p: &[&str], leaf: Value<'static>) {
    let (first, rest) = p.split_first().expect("non-empty path");
    if rest.is_empty() {
        tree.insert(
            first.as_bytes().to_vec(),
            Value::Dict(dict(vec![("", leaf)])),
        );
        return;
    }
    let mut sub = match tree.remove(first.as_bytes()) {
        Some(Value::Dict(d)) => d,
        _ => Dict::new(),
    };
    insert_path(&mut sub, rest, leaf);
    tree.insert(first.as_bytes().to_vec(), Value::Dict(sub));
}

pub fn v2_info(name: &str, tree: &V2, pl: u64) -> Dict<'static> {
    dict(vec![
        ("name", s(name)),
        ("meta version", Value::Int(2)),
        ("piece length", Value::Int(pl as i64)),
        ("file tree", Value::Dict(tree.tree.clone())),
    ])
}

/// A hybrid: v2 tree plus a v1 list with pad files after every file but the last.
pub fn hybrid(files: &[(&[&str], u64)], pl: u64) -> (Dict<'static>, V2) {
    let t = v2_tree(files, pl);
    let mut info = v2_info("root", &t, pl);
    let mut list = Vec::new();
    let mut total = 0u64;
    for (i, (p, len)) in files.iter().enumerate() {
        let comps: Vec<&[u8]> = p.iter().map(|c| c.as_bytes()).collect();
        list.push(Value::Dict(dict(vec![
            ("path", path_list(&comps)),
            ("length", Value::Int(*len as i64)),
        ])));
        total += len;
        let rem = len % pl;
        if i + 1 < files.len() && rem != 0 {
            let pad = pl - rem;
            let pad_name = pad.to_string();
            list.push(Value::Dict(dict(vec![
                ("path", path_list(&[b".pad", pad_name.as_bytes()])),
                ("length", Value::Int(pad as i64)),
                ("attr", s("p")),
            ])));
            total += pad;
        }
    }
    info.insert(b"files".to_vec(), Value::List(list));
    info.insert(b"pieces".to_vec(), fake_pieces(total, pl));
    (info, t)
}
