//! Resume state: what was verified, and the file stamps it was verified against.
//!
//! The resume file `<state_dir>/<name>.resume` is a bencoded dictionary:
//! `version` (1), `piece length`, `total length`, `pieces` (bitfield, most
//! significant bit first, as in BEP 3 `bitfield`), `files` (one
//! `{length, mtime}` per file in torrent order; `length` -1 = absent) and
//! `parts` (the same stamp for the parts file). It is written to a temporary
//! file and renamed over the old one, so a crash leaves the old or the new
//! file, never a torn one.
//!
//! On start, [`Storage::resume_or_check`] trusts the bitfield for pieces whose
//! files have the stamps recorded, and re-hashes only the pieces that touch a
//! file whose size or mtime changed (or everything, when there is no usable
//! resume file). Stamps are taken when the resume is saved, after the data
//! they describe was written (the [`crate::Disk`] actor saves in order with
//! its writes), so a stale stamp only ever causes a re-check, never trust in
//! unverified data.

use std::path::Path;

use shoal_bencode::{decode, Encoder, Limits, Value};

use crate::check::CheckProgress;
use crate::error::{IoOp, ResumeError, StorageError};
use crate::layout::MAX_FILES;
use crate::store::Storage;

/// Size and modification time of a file when the resume was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Length on disk, `None` when the file did not exist.
    pub length: Option<u64>,
    /// Modification time in nanoseconds since the epoch (0 when absent).
    pub mtime_ns: i64,
}

/// Decoded resume file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeData {
    /// Piece length it was saved for.
    pub piece_length: u64,
    /// Total length it was saved for.
    pub total_length: u64,
    /// Verified pieces.
    pub verified: Vec<bool>,
    /// One stamp per file, torrent order.
    pub files: Vec<FileStamp>,
    /// Stamp of the parts file.
    pub parts: FileStamp,
}

/// How [`Storage::resume_or_check`] arrived at its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeOutcome {
    /// Verified pieces, one entry per piece.
    pub verified: Vec<bool>,
    /// Number of pieces that were hashed (0 when the resume file was fully
    /// trusted, `piece_count` after a full check).
    pub pieces_checked: u64,
    /// Why the resume file was not (fully) used, if it was not.
    pub fallback_reason: Option<String>,
}

fn stamp_of(path: &Path) -> Result<FileStamp, StorageError> {
    Ok(match Storage::stat_path(path)? {
        Some((len, mtime)) => FileStamp {
            length: Some(len),
            mtime_ns: mtime,
        },
        None => FileStamp {
            length: None,
            mtime_ns: 0,
        },
    })
}

fn encode_stamp(e: &mut Encoder<'_>, s: &FileStamp) {
    e.begin_dict();
    e.bytes(b"length");
    e.int(s.length.and_then(|l| i64::try_from(l).ok()).unwrap_or(-1));
    e.bytes(b"mtime");
    e.int(s.mtime_ns);
    e.end();
}

fn decode_stamp(v: &Value<'_>, field: &'static str) -> Result<FileStamp, ResumeError> {
    let bad = || ResumeError::Field { field };
    let d = v.as_dict().ok_or_else(bad)?;
    let len = d.get(b"length").and_then(Value::as_int).ok_or_else(bad)?;
    let mtime = d.get(b"mtime").and_then(Value::as_int).ok_or_else(bad)?;
    Ok(FileStamp {
        length: if len < 0 { None } else { Some(len as u64) },
        mtime_ns: mtime,
    })
}

fn get_u64(d: &shoal_bencode::Dict<'_>, key: &'static str) -> Result<u64, ResumeError> {
    d.get(key.as_bytes())
        .and_then(Value::as_int)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or(ResumeError::Field { field: key })
}

impl ResumeData {
    /// Bencodes the resume data (canonical: keys in sorted order).
    pub fn encode(&self) -> Vec<u8> {
        let mut bits = vec![0u8; self.verified.len().div_ceil(8)];
        for (i, _) in self.verified.iter().enumerate().filter(|(_, v)| **v) {
            if let Some(b) = bits.get_mut(i / 8) {
                *b |= 0x80 >> (i % 8);
            }
        }
        let mut out = Vec::with_capacity(64 + bits.len() + 32 * self.files.len());
        let mut e = Encoder::new(&mut out);
        e.begin_dict();
        e.bytes(b"files").begin_list();
        for f in &self.files {
            encode_stamp(&mut e, f);
        }
        e.end();
        e.bytes(b"parts");
        encode_stamp(&mut e, &self.parts);
        e.bytes(b"piece count").int(self.verified.len() as i64);
        e.bytes(b"piece length")
            .int(i64::try_from(self.piece_length).unwrap_or(i64::MAX));
        e.bytes(b"pieces").bytes(&bits);
        e.bytes(b"total length")
            .int(i64::try_from(self.total_length).unwrap_or(i64::MAX));
        e.bytes(b"version").int(1);
        e.end();
        out
    }

    /// Decodes a resume file, with limits sized for at most
    /// [`MAX_FILES`] files and a 2^32-piece bitfield.
    pub fn decode(input: &[u8]) -> Result<Self, ResumeError> {
        let limits = Limits {
            max_depth: 4,
            max_string_len: (u32::MAX as usize / 8) + 1,
            max_elements: 3 * MAX_FILES + 32,
        };
        let v = decode(input, &limits)?;
        let d = v.as_dict().ok_or(ResumeError::Field { field: "root" })?;
        if get_u64(d, "version")? != 1 {
            return Err(ResumeError::Field { field: "version" });
        }
        let count = get_u64(d, "piece count")?;
        let count = u32::try_from(count).map_err(|_| ResumeError::Field {
            field: "piece count",
        })? as usize;
        let bits = d
            .get(b"pieces")
            .and_then(Value::as_bytes)
            .filter(|b| b.len() == count.div_ceil(8))
            .ok_or(ResumeError::Field { field: "pieces" })?;
        let verified = (0..count)
            .map(|i| bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
            .collect();
        let files = d
            .get(b"files")
            .and_then(Value::as_list)
            .ok_or(ResumeError::Field { field: "files" })?
            .iter()
            .map(|f| decode_stamp(f, "files"))
            .collect::<Result<_, _>>()?;
        let parts = decode_stamp(
            d.get(b"parts")
                .ok_or(ResumeError::Field { field: "parts" })?,
            "parts",
        )?;
        Ok(Self {
            piece_length: get_u64(d, "piece length")?,
            total_length: get_u64(d, "total length")?,
            verified,
            files,
            parts,
        })
    }
}

impl Storage {
    /// Current stamps of every file (pad files: absent) and of the parts file.
    pub fn stamps(&self) -> Result<(Vec<FileStamp>, FileStamp), StorageError> {
        let mut files = Vec::with_capacity(self.map().file_count());
        for i in 0..self.map().file_count() {
            files.push(match self.file_path(i) {
                Some(p) => stamp_of(p)?,
                None => FileStamp {
                    length: None,
                    mtime_ns: 0,
                },
            });
        }
        Ok((files, stamp_of(self.parts_path())?))
    }

    /// The resume data for `verified` (one entry per piece) with the current
    /// file stamps. Take it after the data it describes was written.
    pub fn resume_data(&self, verified: &[bool]) -> Result<ResumeData, StorageError> {
        let (files, parts) = self.stamps()?;
        Ok(ResumeData {
            piece_length: self.map().layout().piece_length,
            total_length: self.map().layout().total_length,
            verified: verified.to_vec(),
            files,
            parts,
        })
    }

    /// Writes the resume file for `verified` (one entry per piece) with the
    /// current file stamps, atomically (temp file + rename).
    pub fn save_resume(&self, verified: &[bool]) -> Result<(), StorageError> {
        let data = self.resume_data(verified)?;
        let dir = self.state_dir();
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(IoOp::CreateDir, dir, 0, e))?;
        let path = self.resume_path();
        let tmp = path.with_extension("resume.tmp");
        std::fs::write(&tmp, data.encode())
            .map_err(|e| StorageError::io(IoOp::Write, &tmp, 0, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(IoOp::Write, &path, 0, e))
    }

    /// Reads and validates the resume file against this torrent.
    pub fn load_resume(&self) -> Result<Option<ResumeData>, ResumeError> {
        let path = self.resume_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(IoOp::Read, &path, 0, e).into()),
        };
        let r = ResumeData::decode(&bytes)?;
        self.validate_resume(&r)?;
        Ok(Some(r))
    }

    /// Checks that resume data describes this torrent's layout.
    pub fn validate_resume(&self, r: &ResumeData) -> Result<(), ResumeError> {
        let l = self.map().layout();
        if r.piece_length != l.piece_length || r.total_length != l.total_length {
            return Err(ResumeError::Mismatch {
                what: "piece or total length",
            });
        }
        if r.verified.len() != self.map().piece_count() as usize {
            return Err(ResumeError::Mismatch {
                what: "piece count",
            });
        }
        if r.files.len() != self.map().file_count() {
            return Err(ResumeError::Mismatch { what: "file count" });
        }
        Ok(())
    }

    /// The verified pieces after a restart: trusted from the resume file where
    /// the files are unchanged, re-hashed where they changed, fully checked
    /// when there is no usable resume file.
    pub fn resume_or_check(
        &self,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<ResumeOutcome, StorageError> {
        match self.load_resume() {
            Ok(r) => self.resume_from(r, progress),
            Err(ResumeError::Storage(e)) => Err(e),
            Err(e) => self.full_check(&e.to_string(), progress),
        }
    }

    /// As [`Storage::resume_or_check`], from resume data kept elsewhere (a
    /// session's persistence) instead of the resume file; `None`, or data
    /// that does not describe this torrent, means a full check.
    pub fn resume_from(
        &self,
        resume: Option<ResumeData>,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<ResumeOutcome, StorageError> {
        let n = self.map().piece_count();
        let resume = match resume {
            None => return self.full_check("no resume data", progress),
            Some(r) => match self.validate_resume(&r) {
                Ok(()) => r,
                Err(e) => return self.full_check(&e.to_string(), progress),
            },
        };
        let (files, parts) = self.stamps()?;
        let mut recheck = vec![false; n as usize];
        let mut changed_files = 0;
        for (i, (now, then)) in files.iter().zip(&resume.files).enumerate() {
            if now != then {
                changed_files += 1;
                for p in self.map().pieces_of_file(i) {
                    if let Some(r) = recheck.get_mut(p as usize) {
                        *r = true;
                    }
                }
            }
        }
        if parts != resume.parts {
            // Pieces touching an unwanted file read (part of) their bytes
            // from the parts file.
            for i in (0..self.map().file_count()).filter(|&i| !self.is_wanted(i)) {
                for p in self.map().pieces_of_file(i) {
                    if let Some(r) = recheck.get_mut(p as usize) {
                        *r = true;
                    }
                }
            }
        }
        let list: Vec<u32> = (0..n)
            .filter(|&p| recheck.get(p as usize) == Some(&true))
            .collect();
        let mut verified = resume.verified;
        self.check_pieces(&list, &mut verified, progress)?;
        Ok(ResumeOutcome {
            verified,
            pieces_checked: list.len() as u64,
            fallback_reason: (!list.is_empty())
                .then(|| format!("{changed_files} file(s) changed since the resume file")),
        })
    }

    fn full_check(
        &self,
        reason: &str,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<ResumeOutcome, StorageError> {
        let verified = self.check(progress)?;
        Ok(ResumeOutcome {
            pieces_checked: verified.len() as u64,
            verified,
            fallback_reason: Some(reason.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(verified in proptest::collection::vec(any::<bool>(), 0..100),
                      stamps in proptest::collection::vec((proptest::option::of(0u64..1<<40), any::<i64>()), 0..8),
                      pl in 1u64..1<<30, tl in 0u64..1<<50) {
            let files: Vec<_> = stamps.iter().map(|&(l, m)| FileStamp { length: l, mtime_ns: m }).collect();
            let r = ResumeData { piece_length: pl, total_length: tl, verified, files, parts: FileStamp { length: None, mtime_ns: 0 } };
            let enc = r.encode();
            prop_assert!(decode(&enc, &Limits::default()).unwrap().check_canonical().is_ok());
            prop_assert_eq!(ResumeData::decode(&enc).unwrap(), r);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ResumeData::decode(&data);
        }
    }

    fn r_ok() -> ResumeData {
        ResumeData {
            piece_length: 4,
            total_length: 40,
            verified: vec![true; 10],
            files: vec![],
            parts: FileStamp {
                length: None,
                mtime_ns: 0,
            },
        }
    }

    #[test]
    fn rejects_bad_bitfield_length() {
        let r = ResumeData {
            piece_length: 4,
            total_length: 40,
            verified: vec![true; 10],
            files: vec![],
            parts: FileStamp {
                length: None,
                mtime_ns: 0,
            },
        };
        let enc = r.encode();
        let needle = b"11:piece counti10e";
        let at = enc.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut bad = enc.clone();
        bad[at..at + needle.len()].copy_from_slice(b"11:piece counti17e");
        let r = ResumeData::decode(&bad);
        assert!(
            matches!(r, Err(ResumeError::Field { field: "pieces" })),
            "{r:?}"
        );
        assert_eq!(ResumeData::decode(&enc).unwrap(), r_ok());
    }
}
