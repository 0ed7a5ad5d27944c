//! Saving and loading the routing table: a small JSON file
//! `{"id": "<hex>", "nodes": [{"id": "<hex>", "addr": "ip:port"}, ...]}`, written
//! atomically (temporary file + rename) and read with size and count limits.
use crate::compact::NodeInfo;
use crate::id::Id20;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Largest state file read.
pub const MAX_FILE: u64 = 1 << 20;
/// Most nodes read from a state file.
pub const MAX_NODES: usize = 4096;

/// A saved routing table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedTable {
    /// The node's own ID (hex), reused on restart.
    pub id: String,
    /// Known nodes.
    pub nodes: Vec<SavedNode>,
}

/// One saved node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedNode {
    /// Node ID (hex).
    pub id: String,
    /// UDP address.
    pub addr: SocketAddr,
}

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("dht state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE`].
    #[error("dht state {path}: file of {len} bytes is too large")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The JSON is malformed or an ID is not 40 hex digits.
    #[error("dht state {path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl SavedTable {
    /// Builds the saved form of `own` and `nodes`.
    pub fn new(own: Id20, nodes: &[NodeInfo]) -> Self {
        SavedTable {
            id: own.to_hex(),
            nodes: nodes
                .iter()
                .map(|n| SavedNode {
                    id: n.id.to_hex(),
                    addr: n.addr,
                })
                .collect(),
        }
    }

    /// The own ID and the nodes whose IDs parse (bad entries are skipped).
    pub fn parsed(&self) -> (Option<Id20>, Vec<NodeInfo>) {
        let nodes = self
            .nodes
            .iter()
            .take(MAX_NODES)
            .filter_map(|n| {
                Some(NodeInfo {
                    id: Id20::from_hex(&n.id)?,
                    addr: n.addr,
                })
            })
            .collect();
        (Id20::from_hex(&self.id), nodes)
    }
}

/// Writes `table` to `path` atomically.
pub fn save(path: &Path, table: &SavedTable) -> Result<(), PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(table).map_err(|e| PersistError::Invalid {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, json).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a table saved by [`save`].
pub fn load(path: &Path) -> Result<SavedTable, PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE {
        return Err(PersistError::TooLarge {
            path: path.to_path_buf(),
            len,
        });
    }
    let data = std::fs::read(path).map_err(io)?;
    let t: SavedTable = serde_json::from_slice(&data).map_err(|e| PersistError::Invalid {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    if t.nodes.len() > MAX_NODES {
        return Err(PersistError::Invalid {
            path: path.to_path_buf(),
            what: format!("{} nodes (max {MAX_NODES})", t.nodes.len()),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.json");
        let nodes = vec![
            NodeInfo {
                id: Id20([1; 20]),
                addr: "127.0.0.1:7000".parse().unwrap(),
            },
            NodeInfo {
                id: Id20([2; 20]),
                addr: "[::1]:7001".parse().unwrap(),
            },
        ];
        save(&path, &SavedTable::new(Id20([9; 20]), &nodes)).unwrap();
        let t = load(&path).unwrap();
        assert_eq!(t.parsed(), (Some(Id20([9; 20])), nodes));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(PersistError::Io { .. })
        ));
    }
}
