//! The full-text index of torrents (tantivy), on disk or in memory: the
//! tracker's central index, the crawler's local index and a peer's library
//! for flooded queries all use it.
//!
//! One document per info-hash (adding a torrent again replaces it): the
//! name (tokenised, stored, weighted twice), the file paths (tokenised, not
//! stored), size, file count and the time it was added. A query is turned
//! into normalised keywords ([`crate::keywords`]) and each must match the
//! name or a file path; there is no query syntax a client could abuse.
//!
//! Bounded: at most [`IndexConfig::max_docs`] torrents; past it the oldest
//! tenth is deleted at the next commit. Writes are staged and become
//! visible at [`TorrentIndex::commit`].
use crate::doc::TorrentDoc;
use crate::hit::SearchHit;
use crate::keywords::query_keywords;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

/// Memory the index writer may use before it flushes a segment.
const WRITER_HEAP: usize = 15_000_000;
/// Most results of one search.
pub const MAX_RESULTS: usize = 200;

/// How to open an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Directory of the index (created when missing); `None`: in memory.
    pub dir: Option<PathBuf>,
    /// Most torrents kept.
    pub max_docs: u64,
}

impl Default for IndexConfig {
    /// In memory, a million torrents.
    fn default() -> Self {
        IndexConfig {
            dir: None,
            max_docs: 1_000_000,
        }
    }
}

/// Why the index failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Creating the index directory failed.
    #[error("index {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The index was opened read-only.
    #[error("index opened read-only")]
    ReadOnly,
    /// tantivy failed (opening, writing, committing, searching).
    #[error("index {what}: {source}")]
    Tantivy {
        /// What was being done.
        what: &'static str,
        /// tantivy's error.
        source: tantivy::TantivyError,
    },
}

fn tv(what: &'static str) -> impl FnOnce(tantivy::TantivyError) -> IndexError {
    move |source| IndexError::Tantivy { what, source }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    ih: Field,
    name: Field,
    files: Field,
    size: Field,
    count: Field,
    added: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        ih: b.add_text_field("ih", STRING | STORED),
        name: b.add_text_field("name", TEXT | STORED),
        files: b.add_text_field("files", TEXT),
        size: b.add_u64_field("size", STORED),
        count: b.add_u64_field("file_count", STORED),
        added: b.add_u64_field("added", INDEXED | FAST | STORED),
    };
    (b.build(), f)
}

/// A torrent found in an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexHit {
    /// The info-hash.
    pub info_hash: [u8; 20],
    /// Its name.
    pub name: String,
    /// Total size.
    pub size: u64,
    /// Number of files.
    pub file_count: u64,
    /// tantivy's BM25 score.
    pub score: f32,
}

impl IndexHit {
    /// As a [`SearchHit`] found at `found`.
    pub fn to_hit(&self, found: &str) -> SearchHit {
        let mut h = SearchHit::new(self.info_hash, self.name.clone(), found.to_string());
        h.size = Some(self.size);
        h.files = Some(self.file_count);
        h
    }
}

/// A full-text index of torrents.
pub struct TorrentIndex {
    index: Index,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    f: Fields,
    max_docs: u64,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for TorrentIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentIndex")
            .field("dir", &self.dir)
            .field("docs", &self.len())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TorrentIndex {
    /// Opens (or creates) the index of `config` for reading and writing.
    pub fn open(config: &IndexConfig) -> Result<TorrentIndex, IndexError> {
        Self::open_with(config, true)
    }

    /// Opens an existing index on disk for searching only (another process
    /// may be writing it; call [`TorrentIndex::refresh`] to see its commits).
    pub fn open_read_only(dir: &Path) -> Result<TorrentIndex, IndexError> {
        if !dir.join("meta.json").exists() {
            return Err(IndexError::Dir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no index here"),
            });
        }
        let cfg = IndexConfig {
            dir: Some(dir.to_path_buf()),
            max_docs: u64::MAX,
        };
        Self::open_with(&cfg, false)
    }

    /// Reloads the reader (for a read-only index written elsewhere).
    pub fn refresh(&self) -> Result<(), IndexError> {
        self.reader.reload().map_err(tv("reload"))
    }

    fn open_with(config: &IndexConfig, write: bool) -> Result<TorrentIndex, IndexError> {
        let (schema, f) = schema();
        let index = match &config.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| IndexError::Dir {
                    path: d.clone(),
                    source,
                })?;
                let dir = MmapDirectory::open(d).map_err(|e| IndexError::Tantivy {
                    what: "open",
                    source: e.into(),
                })?;
                Index::open_or_create(dir, schema).map_err(tv("open"))?
            }
            None => Index::create_in_ram(schema),
        };
        let writer = match write {
            true => Some(Mutex::new(
                index
                    .writer_with_num_threads(1, WRITER_HEAP)
                    .map_err(tv("open writer"))?,
            )),
            false => None,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tv("open reader"))?;
        Ok(TorrentIndex {
            index,
            reader,
            writer,
            f,
            max_docs: config.max_docs.max(1),
            dir: config.dir.clone(),
        })
    }

    /// Its directory, if on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, IndexError> {
        let w = self.writer.as_ref().ok_or(IndexError::ReadOnly)?;
        Ok(w.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Stages `doc` (replacing an older document for the same info-hash);
    /// visible after [`TorrentIndex::commit`].
    pub fn add(&self, doc: &TorrentDoc) -> Result<(), IndexError> {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.ih, doc.hex());
        d.add_text(f.name, &doc.name);
        for p in &doc.files {
            d.add_text(f.files, p);
        }
        d.add_u64(f.size, doc.size);
        d.add_u64(f.count, doc.file_count);
        d.add_u64(f.added, unix_now());
        let w = self.writer()?;
        w.delete_term(Term::from_field_text(f.ih, &doc.hex()));
        w.add_document(d).map_err(tv("add"))?;
        Ok(())
    }

    /// Makes staged documents visible and enforces the bound on documents.
    pub fn commit(&self) -> Result<(), IndexError> {
        let mut w = self.writer()?;
        w.commit().map_err(tv("commit"))?;
        self.reader.reload().map_err(tv("reload"))?;
        let n = self.len();
        if n > self.max_docs {
            // Drop the oldest tenth (at least the excess).
            let drop = (n - self.max_docs).max(self.max_docs / 10).max(1);
            let searcher = self.reader.searcher();
            let oldest = searcher
                .search(
                    &tantivy::query::AllQuery,
                    &TopDocs::with_limit(drop as usize)
                        .order_by_fast_field::<u64>("added", Order::Asc),
                )
                .map_err(tv("evict"))?;
            for (_, addr) in oldest {
                let d: TantivyDocument = searcher.doc(addr).map_err(tv("evict"))?;
                if let Some(h) = d.get_first(self.f.ih).and_then(|v| v.as_str()) {
                    w.delete_term(Term::from_field_text(self.f.ih, h));
                }
            }
            w.commit().map_err(tv("commit"))?;
            self.reader.reload().map_err(tv("reload"))?;
        }
        Ok(())
    }

    /// Documents visible now.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// True if the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `info_hash` is indexed (committed).
    pub fn contains(&self, info_hash: &[u8; 20]) -> bool {
        let q = TermQuery::new(
            Term::from_field_text(self.f.ih, &hex::encode(info_hash)),
            IndexRecordOption::Basic,
        );
        self.reader
            .searcher()
            .search(&q, &tantivy::collector::Count)
            .is_ok_and(|n| n > 0)
    }

    /// The torrents whose name or files hold every keyword of `query`, best
    /// first, at most `limit` (capped at [`MAX_RESULTS`]).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<IndexHit>, IndexError> {
        let kws = query_keywords(query);
        if kws.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.f;
        let must: Vec<(Occur, Box<dyn Query>)> = kws
            .iter()
            .map(|k| {
                let in_name: Box<dyn Query> = Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.name, k),
                        IndexRecordOption::WithFreqs,
                    )),
                    2.0,
                ));
                let in_files: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(f.files, k),
                    IndexRecordOption::WithFreqs,
                ));
                let either: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                    (Occur::Should, in_name),
                    (Occur::Should, in_files),
                ]));
                (Occur::Must, either)
            })
            .collect();
        let q = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit.clamp(1, MAX_RESULTS)))
            .map_err(tv("search"))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let d: TantivyDocument = searcher.doc(addr).map_err(tv("read"))?;
            let text = |fl: Field| d.get_first(fl).and_then(|v| v.as_str()).unwrap_or("");
            let num = |fl: Field| d.get_first(fl).and_then(|v| v.as_u64()).unwrap_or(0);
            let mut ih = [0u8; 20];
            if hex::decode_to_slice(text(f.ih), &mut ih).is_err() {
                continue;
            }
            out.push(IndexHit {
                info_hash: ih,
                name: text(f.name).to_string(),
                size: num(f.size),
                file_count: num(f.count),
                score,
            });
        }
        Ok(out)
    }

    /// The schema's tantivy index (for tools).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8, name: &str, files: &[&str]) -> TorrentDoc {
        TorrentDoc {
            info_hash: [n; 20],
            name: name.to_string(),
            size: u64::from(n) * 1000,
            file_count: files.len() as u64,
            files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn finds_by_name_and_files_and_replaces() {
        let ix = TorrentIndex::open(&IndexConfig::default()).unwrap();
        ix.add(&doc(1, "Debian 12 netinst", &["debian-12-amd64.iso"]))
            .unwrap();
        ix.add(&doc(2, "Holiday photos", &["photos/beach.jpg"]))
            .unwrap();
        ix.add(&doc(3, "Beach sounds", &[])).unwrap();
        ix.commit().unwrap();
        assert_eq!(ix.len(), 3);
        let names = |q: &str| -> Vec<String> {
            ix.search(q, 10)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("debian"), ["Debian 12 netinst"]);
        assert_eq!(names("amd64"), ["Debian 12 netinst"]);
        // Name matches weigh more than file matches.
        assert_eq!(names("beach"), ["Beach sounds", "Holiday photos"]);
        assert!(names("debian photos").is_empty());
        assert!(names("").is_empty());
        assert!(ix.contains(&[2; 20]));
        ix.add(&doc(2, "Holiday videos", &[])).unwrap();
        ix.commit().unwrap();
        assert_eq!(ix.len(), 3);
        assert!(names("photos").is_empty());
        assert_eq!(names("videos"), ["Holiday videos"]);
    }

    #[test]
    fn bounded_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = IndexConfig {
            dir: Some(dir.path().join("ix")),
            max_docs: 20,
        };
        {
            let ix = TorrentIndex::open(&cfg).unwrap();
            for i in 0..50u8 {
                ix.add(&doc(i, &format!("torrent number{i}"), &[])).unwrap();
                if i % 10 == 9 {
                    ix.commit().unwrap();
                }
            }
            assert!(ix.len() <= 20, "{}", ix.len());
        }
        let ix = TorrentIndex::open(&cfg).unwrap();
        let n = ix.len();
        assert!((1..=20).contains(&n), "{n}");
        assert_eq!(ix.search("torrent", 100).unwrap().len() as u64, n);
    }
}
