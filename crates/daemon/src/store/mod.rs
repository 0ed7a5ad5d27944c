//! The daemon's state database: one redb file in the state directory.
//!
//! redb is pure Rust, ACID, and its commits are crash-safe (a torn write
//! leaves the last committed state), so `kill -9` at any moment leaves a
//! database that opens. Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `format`, `version` | the format marker and the schema version |
//! | `torrents` | info-hash key | a torrent's record (JSON, without its metainfo) |
//! | `metainfo` | info-hash key | the .torrent bytes (or the info dictionary of a magnet) |
//! | `resume` | info-hash key | verified pieces, file stamps, cumulative traffic |
//! | `activity` | info-hash key | seconds downloading and seeding, dates (JSON) |
//! | `settings` | name | session settings changed over the API (JSON values) |
//! | `totals` | name | session-wide cumulative counters |
//!
//! The key of a torrent is its v1 hash (20 bytes, zeros when absent)
//! followed by its v2 hash (32 bytes, zeros when absent).
//!
//! Durability: a user action ([`Persist::save_torrent`],
//! [`Persist::remove_torrent`], settings) is committed durably before the
//! call returns. Resume data and activity arrive in batches and are
//! committed together by a flusher thread every [`FLUSH_EVERY`]; a crash
//! loses at most that window, and the engine re-hashes whatever a stale
//! resume record does not vouch for (file stamps).
//!
//! A file that is not a redb database, or a redb database without shoal's
//! format marker, is refused with [`StoreError::Foreign`]; a newer schema
//! with [`StoreError::Version`]. Older schemas are migrated in place
//! ([`MIGRATIONS`]), in one transaction.
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use shoal_engine::persist::{PersistError, ResumeRecord};
use shoal_engine::{Persist, TorrentRecord};
use shoal_metainfo::InfoHashes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

mod records;

pub use records::key_of;
use records::{decode_resume, encode_resume, hashes_of, StoredTorrent};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const TORRENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("torrents");
const METAINFO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("metainfo");
const RESUME: TableDefinition<&[u8], &[u8]> = TableDefinition::new("resume");
const ACTIVITY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("activity");
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");
const TOTALS: TableDefinition<&str, u64> = TableDefinition::new("totals");

/// The value of the `format` marker.
const FORMAT: &[u8] = b"shoal-daemon";
/// The schema version this build writes.
pub const VERSION: u32 = 1;
/// The file name in the state directory.
pub const FILE_NAME: &str = "shoal.redb";
/// Time between two commits of batched resume data and activity.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// A schema migration: from version `i + 1` to `i + 2`, inside the
/// transaction that then records the new version.
type Migration = fn(&redb::WriteTransaction) -> Result<(), redb::Error>;
/// Migrations by the version they start from (index 0: from version 1).
/// Empty while version 1 is the only one.
pub const MIGRATIONS: &[Migration] = &[];

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a shoal database (another program's, or not a
    /// database at all). Nothing was changed.
    #[error(
        "{path} is not a shoal state database ({why}); move it away or choose another --state-dir"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What was found.
        why: String,
    },
    /// The database is damaged.
    #[error("{path} is damaged ({why}); restore a backup or move it away to start empty")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb said.
        why: String,
    },
    /// Another process has the database open.
    #[error("{path} is in use by another process (is a shoal daemon already running on this state directory?)")]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer shoal.
    #[error("{path} has schema version {found}; this shoal reads up to {supported}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Highest version understood.
        supported: u32,
    },
    /// A database operation failed.
    #[error("{path}: {why}")]
    Db {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
}

/// Per-torrent time accounting kept by the daemon (Transmission's
/// `secondsDownloading`, `secondsSeeding`, `doneDate`, `activityDate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Seconds spent downloading, over the torrent's life.
    pub seconds_downloading: u64,
    /// Seconds spent seeding, over the torrent's life.
    pub seconds_seeding: u64,
    /// When it completed, seconds since the Unix epoch (0: never).
    pub done_date: u64,
    /// When data last moved, seconds since the Unix epoch (0: never).
    pub activity_date: u64,
}

/// Session-wide cumulative counters (Transmission's `cumulative-stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payload bytes sent, all sessions.
    pub uploaded: u64,
    /// Payload bytes received, all sessions.
    pub downloaded: u64,
    /// Torrents added, all sessions.
    pub files_added: u64,
    /// Seconds the daemon ran, all sessions.
    pub seconds_active: u64,
    /// Times the daemon started.
    pub session_count: u64,
}

#[derive(Default)]
struct Pending {
    resume: HashMap<[u8; 52], Vec<u8>>,
    activity: HashMap<[u8; 52], Activity>,
    totals: Option<Totals>,
    /// Set by [`Store::close`]: the flusher commits and ends.
    closing: bool,
}

struct Inner {
    db: Database,
    path: PathBuf,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while committing, so a removal never races a batch that would
    /// bring its resume data back.
    commit: Mutex<()>,
}

/// The state database. Cheap to clone; implements [`Persist`] for the
/// engine's session.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    flusher: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) `state_dir/shoal.redb`: checks the format marker
    /// and the version, migrates an older schema, and starts the flusher.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Io {
            path: state_dir.to_path_buf(),
            source,
        })?;
        Self::open_file(&state_dir.join(FILE_NAME))
    }

    /// Opens (or creates) the database file at `path`.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let db = if existed {
            // Another program's file is refused before redb touches it.
            let mut head = [0u8; 4];
            let read = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
            if read.is_err() || &head != b"redb" {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    why: "not a redb database".into(),
                });
            }
            // redb asserts on some damage rather than return an error.
            std::panic::catch_unwind(|| db_builder().open(path))
                .map_err(|_| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    why: "the database pages do not read back".into(),
                })?
                .map_err(|e| open_error(path, e))?
        } else {
            db_builder().create(path).map_err(|e| open_error(path, e))?
        };
        let db_err = |e: &dyn std::fmt::Display| StoreError::Db {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        let tx = db.begin_write().map_err(|e| db_err(&e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| db_err(&e))?;
            let format = meta
                .get("format")
                .map_err(|e| db_err(&e))?
                .map(|v| v.value().to_vec());
            let version = meta
                .get("version")
                .map_err(|e| db_err(&e))?
                .map(|v| v.value().to_vec());
            match (format, version) {
                (None, None)
                    if !existed || tx.list_tables().map(|t| t.count()).unwrap_or(0) <= 1 =>
                {
                    meta.insert("format", FORMAT).map_err(|e| db_err(&e))?;
                    meta.insert("version", VERSION.to_le_bytes().as_slice())
                        .map_err(|e| db_err(&e))?;
                }
                (Some(f), Some(v)) if f == FORMAT => {
                    let found = <[u8; 4]>::try_from(v.as_slice())
                        .map(u32::from_le_bytes)
                        .map_err(|_| StoreError::Corrupt {
                            path: path.to_path_buf(),
                            why: "bad version field".into(),
                        })?;
                    if found > VERSION {
                        return Err(StoreError::Version {
                            path: path.to_path_buf(),
                            found,
                            supported: VERSION,
                        });
                    }
                    if found == 0 {
                        return Err(StoreError::Corrupt {
                            path: path.to_path_buf(),
                            why: "version 0".into(),
                        });
                    }
                    for m in MIGRATIONS.iter().skip(found as usize - 1) {
                        m(&tx).map_err(|e| db_err(&e))?;
                    }
                    if found < VERSION {
                        tracing::info!(from = found, to = VERSION, "migrated the state database");
                        meta.insert("version", VERSION.to_le_bytes().as_slice())
                            .map_err(|e| db_err(&e))?;
                    }
                }
                (f, _) => {
                    return Err(StoreError::Foreign {
                        path: path.to_path_buf(),
                        why: match f {
                            Some(f) => format!("format marker {:?}", String::from_utf8_lossy(&f)),
                            None => "a redb database without shoal's format marker".into(),
                        },
                    })
                }
            }
        }
        for t in [TORRENTS, METAINFO, RESUME, ACTIVITY] {
            tx.open_table(t).map_err(|e| db_err(&e))?;
        }
        tx.open_table(SETTINGS).map_err(|e| db_err(&e))?;
        tx.open_table(TOTALS).map_err(|e| db_err(&e))?;
        tx.commit().map_err(|e| db_err(&e))?;
        let inner = Arc::new(Inner {
            db,
            path: path.to_path_buf(),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            commit: Mutex::new(()),
        });
        let i2 = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("shoal-store".into())
            .spawn(move || flusher(&i2))
            .map_err(|e| db_err(&e))?;
        Ok(Store {
            inner,
            flusher: Arc::new(Mutex::new(Some(flusher))),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn err(&self, e: impl std::fmt::Display) -> PersistError {
        PersistError::Backend(
            StoreError::Db {
                path: self.inner.path.clone(),
                why: e.to_string(),
            }
            .into(),
        )
    }

    /// Keeps the whole .torrent file of a torrent about to be added, so
    /// that its trackers, comment and v2 piece layers survive a restart
    /// (the engine's record carries the info dictionary only).
    pub fn put_metainfo(&self, h: &InfoHashes, bytes: &[u8]) -> Result<(), PersistError> {
        let _c = self.lock_commit();
        let tx = self.inner.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(METAINFO).map_err(|e| self.err(e))?;
            t.insert(key_of(h).as_slice(), bytes)
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The stored metainfo of a torrent (the whole .torrent when known).
    pub fn metainfo(&self, h: &InfoHashes) -> Result<Option<Vec<u8>>, PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(METAINFO).map_err(|e| self.err(e))?;
        let v = t.get(key_of(h).as_slice()).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Activity of every torrent.
    pub fn activities(&self) -> Result<HashMap<InfoHashes, Activity>, PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(ACTIVITY).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            if let (Some(h), Ok(a)) = (
                hashes_of(k.value()),
                serde_json::from_slice::<Activity>(v.value()),
            ) {
                out.insert(h, a);
            }
        }
        Ok(out)
    }

    /// Queues a torrent's activity for the next batch.
    pub fn save_activity(&self, h: &InfoHashes, a: Activity) {
        let mut p = self.lock_pending();
        p.activity.insert(key_of(h), a);
    }

    /// The session-wide totals.
    pub fn totals(&self) -> Result<Totals, PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(TOTALS).map_err(|e| self.err(e))?;
        let get = |k: &str| -> Result<u64, PersistError> {
            Ok(t.get(k).map_err(|e| self.err(e))?.map_or(0, |v| v.value()))
        };
        Ok(Totals {
            uploaded: get("uploaded")?,
            downloaded: get("downloaded")?,
            files_added: get("files_added")?,
            seconds_active: get("seconds_active")?,
            session_count: get("session_count")?,
        })
    }

    /// Queues new totals for the next batch.
    pub fn save_totals(&self, t: Totals) {
        self.lock_pending().totals = Some(t);
    }

    /// Settings changed over the API, by name (JSON values).
    pub fn settings(&self) -> Result<HashMap<String, serde_json::Value>, PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(SETTINGS).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            if let Ok(v) = serde_json::from_str(v.value()) {
                out.insert(k.value().to_owned(), v);
            }
        }
        Ok(out)
    }

    /// Stores settings durably.
    pub fn save_settings(&self, s: &[(&str, serde_json::Value)]) -> Result<(), PersistError> {
        let _c = self.lock_commit();
        let tx = self.inner.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(SETTINGS).map_err(|e| self.err(e))?;
            for (k, v) in s {
                t.insert(*k, v.to_string().as_str())
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Torrents stored.
    pub fn torrent_count(&self) -> Result<u64, PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(TORRENTS).map_err(|e| self.err(e))?;
        t.len().map_err(|e| self.err(e))
    }

    /// Commits everything queued now.
    pub fn flush(&self) -> Result<(), PersistError> {
        commit_pending(&self.inner).map_err(|e| self.err(e))
    }

    /// Commits what is queued and stops the flusher (at shutdown).
    pub fn close(&self) -> Result<(), PersistError> {
        self.lock_pending().closing = true;
        self.inner.wake.notify_all();
        let t = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = t {
            let _ = t.join();
        }
        self.flush()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_commit(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.commit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// redb's page cache. Its default (1 GiB) fills up with every metainfo
/// read or written, so a daemon with thousands of torrents would keep its
/// whole database in memory; the state is read once at start and written
/// in small batches, which a small cache serves (the kernel's page cache
/// still holds the file). 16 MiB cost 15 MiB of RSS after a restart with
/// 10,000 torrents, for no measurable gain in load or restart time
/// (bench/daemon.py); 4 MiB still held 3.5 MiB of it, 1 MiB serves the
/// same batches.
const DB_CACHE_BYTES: usize = 1 << 20;

fn db_builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(DB_CACHE_BYTES);
    b
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    use redb::{DatabaseError as D, StorageError as S};
    let path = path.to_path_buf();
    match e {
        D::DatabaseAlreadyOpen => StoreError::InUse { path },
        D::UpgradeRequired(v) => StoreError::Foreign {
            path,
            why: format!("redb file format {v}"),
        },
        D::Storage(S::Corrupted(why)) => StoreError::Corrupt { path, why },
        D::Storage(S::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            StoreError::Corrupt {
                path,
                why: e.to_string(),
            }
        }
        D::Storage(S::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
            StoreError::InUse { path }
        }
        e => StoreError::Db {
            path,
            why: e.to_string(),
        },
    }
}

fn flusher(inner: &Inner) {
    loop {
        let closing = {
            let p = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let (p, _) = inner
                .wake
                .wait_timeout(p, FLUSH_EVERY)
                .unwrap_or_else(|e| e.into_inner());
            p.closing
        };
        if let Err(e) = commit_pending(inner) {
            tracing::warn!(error = %e, "committing resume data");
        }
        if closing {
            return;
        }
    }
}

/// Commits the queued batch in one durable transaction.
// redb's own error type, returned once per batch: its size costs nothing here.
#[allow(clippy::result_large_err)]
fn commit_pending(inner: &Inner) -> Result<(), redb::Error> {
    let _c = inner.commit.lock().unwrap_or_else(|e| e.into_inner());
    let batch = {
        let mut p = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.resume.is_empty() && p.activity.is_empty() && p.totals.is_none() {
            return Ok(());
        }
        let closing = p.closing;
        let b = std::mem::take(&mut *p);
        p.closing = closing;
        b
    };
    let tx = inner.db.begin_write()?;
    {
        let torrents = tx.open_table(TORRENTS)?;
        let mut resume = tx.open_table(RESUME)?;
        for (k, v) in &batch.resume {
            // A torrent removed meanwhile keeps no resume data.
            if torrents.get(k.as_slice())?.is_some() {
                resume.insert(k.as_slice(), v.as_slice())?;
            }
        }
        let mut act = tx.open_table(ACTIVITY)?;
        for (k, a) in &batch.activity {
            if torrents.get(k.as_slice())?.is_some() {
                let v = serde_json::to_vec(a).unwrap_or_default();
                act.insert(k.as_slice(), v.as_slice())?;
            }
        }
        if let Some(t) = batch.totals {
            let mut tot = tx.open_table(TOTALS)?;
            tot.insert("uploaded", t.uploaded)?;
            tot.insert("downloaded", t.downloaded)?;
            tot.insert("files_added", t.files_added)?;
            tot.insert("seconds_active", t.seconds_active)?;
            tot.insert("session_count", t.session_count)?;
        }
    }
    tx.commit()?;
    Ok(())
}

impl Persist for Store {
    fn load_torrents(&self) -> Result<Vec<TorrentRecord>, PersistError> {
        let mut out = Vec::new();
        self.visit_torrents(&mut |r| {
            out.push(r);
            true
        })?;
        Ok(out)
    }

    fn visit_torrents(
        &self,
        each: &mut dyn FnMut(TorrentRecord) -> bool,
    ) -> Result<(), PersistError> {
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(TORRENTS).map_err(|e| self.err(e))?;
        let m = tx.open_table(METAINFO).map_err(|e| self.err(e))?;
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let Some(h) = hashes_of(k.value()) else {
                return Err(PersistError::Corrupt(
                    format!(
                        "{}: a torrent key of {} bytes",
                        self.inner.path.display(),
                        k.value().len()
                    )
                    .into(),
                ));
            };
            let stored: StoredTorrent = serde_json::from_slice(v.value()).map_err(|e| {
                PersistError::Corrupt(
                    format!(
                        "{}: the record of {}: {e}",
                        self.inner.path.display(),
                        h.primary().to_hex()
                    )
                    .into(),
                )
            })?;
            let meta = m
                .get(k.value())
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec());
            if !each(stored.into_record(h, meta)) {
                break;
            }
        }
        Ok(())
    }

    fn save_torrent(&self, record: &TorrentRecord) -> Result<(), PersistError> {
        let key = key_of(&record.info_hashes);
        let value =
            serde_json::to_vec(&StoredTorrent::from_record(record)).map_err(|e| self.err(e))?;
        let _c = self.lock_commit();
        let tx = self.inner.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(TORRENTS).map_err(|e| self.err(e))?;
            t.insert(key.as_slice(), value.as_slice())
                .map_err(|e| self.err(e))?;
            if let Some(mi) = &record.metainfo {
                // The whole .torrent kept by `put_metainfo` wins over the
                // info dictionary the engine hands over.
                let mut m = tx.open_table(METAINFO).map_err(|e| self.err(e))?;
                let have = m.get(key.as_slice()).map_err(|e| self.err(e))?.is_some();
                if !have {
                    m.insert(key.as_slice(), mi.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn remove_torrent(&self, key: &InfoHashes) -> Result<(), PersistError> {
        let k = key_of(key);
        let _c = self.lock_commit();
        {
            let mut p = self.lock_pending();
            p.resume.remove(&k);
            p.activity.remove(&k);
        }
        let tx = self.inner.db.begin_write().map_err(|e| self.err(e))?;
        for t in [TORRENTS, METAINFO, RESUME, ACTIVITY] {
            let mut t = tx.open_table(t).map_err(|e| self.err(e))?;
            t.remove(k.as_slice()).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn load_resume(&self, key: &InfoHashes) -> Result<Option<ResumeRecord>, PersistError> {
        let k = key_of(key);
        if let Some(b) = self.lock_pending().resume.get(&k) {
            return decode_resume(b)
                .map(Some)
                .map_err(|e| PersistError::Corrupt(e.into()));
        }
        let tx = self.inner.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(RESUME).map_err(|e| self.err(e))?;
        let v = t.get(k.as_slice()).map_err(|e| self.err(e))?;
        match v {
            None => Ok(None),
            // A damaged resume record costs a full check, not the torrent.
            Some(v) => match decode_resume(v.value()) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    tracing::warn!(hash = %key.primary().to_hex(), error = %e, "ignoring damaged resume data");
                    Ok(None)
                }
            },
        }
    }

    fn save_resume(&self, key: &InfoHashes, resume: &ResumeRecord) -> Result<(), PersistError> {
        self.lock_pending()
            .resume
            .insert(key_of(key), encode_resume(resume));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
