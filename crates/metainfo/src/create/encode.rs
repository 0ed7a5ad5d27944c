//! Writing the `.torrent` of a created torrent, canonically (keys sorted by
//! byte order at every level, so the output is deterministic).
use std::collections::BTreeMap;

use shoal_bencode::Encoder;

use super::hashing::Hashes;
use super::CreatePlan;

/// A directory of the v2 `file tree`: children by name, files by input index.
#[derive(Default)]
struct TreeDir<'a> {
    children: BTreeMap<&'a [u8], TreeNode<'a>>,
}

enum TreeNode<'a> {
    Dir(TreeDir<'a>),
    File(usize),
}

fn int(e: &mut Encoder<'_>, v: u64) {
    // Lengths are bounded by the layout (which checks for overflow) well below i64::MAX
    // in practice; saturate rather than wrap if not.
    e.int(i64::try_from(v).unwrap_or(i64::MAX));
}

/// Encodes the whole torrent of `plan` with its `hashes`.
pub(super) fn encode_torrent(plan: &CreatePlan, hashes: &Hashes) -> Vec<u8> {
    let opts = &plan.opts;
    let mut out = Vec::with_capacity(1024 + hashes.v1.len() * 20);
    let mut e = Encoder::new(&mut out);
    e.begin_dict();

    let tiers: Vec<&Vec<String>> = opts.trackers.iter().filter(|t| !t.is_empty()).collect();
    let all: usize = tiers.iter().map(|t| t.len()).sum();
    if let Some(first) = tiers.first().and_then(|t| t.first()) {
        e.bytes(b"announce").bytes(first.as_bytes());
    }
    if all > 1 {
        e.bytes(b"announce-list").begin_list();
        for tier in &tiers {
            e.begin_list();
            for url in tier.iter() {
                e.bytes(url.as_bytes());
            }
            e.end();
        }
        e.end();
    }
    if let Some(c) = &opts.comment {
        e.bytes(b"comment").bytes(c.as_bytes());
    }
    if let Some(c) = &opts.created_by {
        e.bytes(b"created by").bytes(c.as_bytes());
    }
    if let Some(d) = opts.creation_date {
        e.bytes(b"creation date").int(d);
    }

    e.bytes(b"info");
    encode_info(&mut e, plan, hashes);

    if plan.opts.version.has_v2() {
        let mut layers: BTreeMap<[u8; 32], &[[u8; 32]]> = BTreeMap::new();
        for (root, layer) in hashes.roots.iter().zip(&hashes.layers) {
            if let (Some(root), false) = (root, layer.is_empty()) {
                layers.insert(*root, layer);
            }
        }
        e.bytes(b"piece layers").begin_dict();
        for (root, layer) in layers {
            e.bytes(&root);
            e.bytes(&layer.concat());
        }
        e.end();
    }
    if !opts.web_seeds.is_empty() {
        e.bytes(b"url-list").begin_list();
        for url in &opts.web_seeds {
            e.bytes(url.as_bytes());
        }
        e.end();
    }
    e.end();
    out
}

fn encode_info(e: &mut Encoder<'_>, plan: &CreatePlan, hashes: &Hashes) {
    let version = plan.opts.version;
    let files = &plan.files;
    let layout = &plan.layout;
    e.begin_dict();
    if version.has_v2() {
        e.bytes(b"file tree");
        if plan.single_file {
            e.begin_dict().bytes(plan.name.as_bytes());
            encode_tree_file(e, plan, hashes, 0);
            e.end();
        } else {
            let mut root = TreeDir::default();
            for (i, f) in files.iter().enumerate() {
                insert_tree(&mut root, &f.path, i);
            }
            encode_tree_dir(e, &root, plan, hashes);
        }
    }
    if version.has_v1() && !plan.single_file {
        e.bytes(b"files").begin_list();
        for (i, f) in files.iter().enumerate() {
            e.begin_dict();
            e.bytes(b"length");
            int(e, f.length);
            e.bytes(b"path").begin_list();
            for c in &f.path {
                e.bytes(c.as_bytes());
            }
            e.end();
            e.end();
            let pad = layout.pad_after(i);
            if pad > 0 {
                let n = pad.to_string();
                e.begin_dict();
                e.bytes(b"attr").bytes(b"p");
                e.bytes(b"length");
                int(e, pad);
                e.bytes(b"path").begin_list();
                e.bytes(b".pad").bytes(n.as_bytes());
                e.end();
                e.end();
            }
        }
        e.end();
    }
    if version.has_v1() && plan.single_file {
        e.bytes(b"length");
        int(e, files.first().map_or(0, |f| f.length));
    }
    if version.has_v2() {
        e.bytes(b"meta version").int(2);
    }
    e.bytes(b"name").bytes(plan.name.as_bytes());
    e.bytes(b"piece length");
    int(e, layout.piece_length());
    if version.has_v1() {
        e.bytes(b"pieces").bytes(&hashes.v1.concat());
    }
    if plan.opts.private {
        e.bytes(b"private").int(1);
    }
    e.end();
}

fn insert_tree<'a>(dir: &mut TreeDir<'a>, path: &'a [String], index: usize) {
    match path {
        [] => {}
        [last] => {
            dir.children.insert(last.as_bytes(), TreeNode::File(index));
        }
        [first, rest @ ..] => {
            let node = dir
                .children
                .entry(first.as_bytes())
                .or_insert_with(|| TreeNode::Dir(TreeDir::default()));
            if let TreeNode::Dir(sub) = node {
                insert_tree(sub, rest, index);
            }
        }
    }
}

fn encode_tree_dir(e: &mut Encoder<'_>, dir: &TreeDir<'_>, plan: &CreatePlan, hashes: &Hashes) {
    e.begin_dict();
    for (name, node) in &dir.children {
        e.bytes(name);
        match node {
            TreeNode::Dir(sub) => encode_tree_dir(e, sub, plan, hashes),
            TreeNode::File(i) => encode_tree_file(e, plan, hashes, *i),
        }
    }
    e.end();
}

/// `{"": {length, pieces root}}` for input file `i`.
fn encode_tree_file(e: &mut Encoder<'_>, plan: &CreatePlan, hashes: &Hashes, i: usize) {
    let length = plan.files.get(i).map_or(0, |f| f.length);
    e.begin_dict().bytes(b"").begin_dict();
    e.bytes(b"length");
    int(e, length);
    if let Some(Some(root)) = hashes.roots.get(i) {
        e.bytes(b"pieces root").bytes(root);
    }
    e.end().end();
}
