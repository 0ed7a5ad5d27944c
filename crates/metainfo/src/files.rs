//! The file list of a torrent: parsing the v1 `length` / `files` keys (BEP 3,
//! BEP 47 attributes and pad files) and laying files out in the piece stream
//! with sanitised paths.
use crate::error::{invalid, opt, req, Field, MetainfoError, Problem};
use crate::limits::ParseLimits;
use crate::path;
use shoal_bencode::{Dict, Value};
use std::path::PathBuf;

/// One file of a torrent, as it will be stored.
///
/// Invariants: `path` is relative and made only of normal components (see
/// [`crate::path`]); for a multi-file torrent its first component is the
/// sanitised torrent name, for a single-file torrent it is just the name (as
/// libtorrent's `file_path`). `offset` is the byte offset of the file's first
/// byte in the v1 piece stream (the concatenation of all files, pad files
/// included); entries are in torrent order, so offsets never decrease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Sanitised relative path (see the type docs).
    pub path: PathBuf,
    /// Length in bytes.
    pub length: u64,
    /// Offset of the first byte in the v1 piece stream.
    pub offset: u64,
    /// A BEP 47 pad file (attribute `p`): all zeros, never written to disk.
    pub pad: bool,
    /// BEP 47 attribute `x`.
    pub executable: bool,
    /// BEP 47 attribute `h`.
    pub hidden: bool,
    /// BEP 47 attribute `l`: the sanitised link target, relative to the same
    /// base as `path` (so it starts with the torrent name for multi-file
    /// torrents), never leaving the torrent.
    pub symlink: Option<PathBuf>,
    /// BEP 52 `pieces root` (v2 and hybrid torrents; `None` for empty files).
    pub pieces_root: Option<[u8; 32]>,
    /// BEP 47 `mtime` if present (seconds since the Unix epoch).
    pub mtime: Option<i64>,
}

impl FileEntry {
    /// The path joined with `/`, whatever the platform (for display and JSON).
    pub fn path_string(&self) -> String {
        let parts: Vec<String> = self
            .path
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        parts.join("/")
    }

    /// One past the last byte of this file in the piece stream.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// BEP 47 attributes of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub pad: bool,
    pub executable: bool,
    pub hidden: bool,
    pub symlink: bool,
}

impl Attrs {
    /// Parses an `attr` string; unknown characters are ignored (BEP 47).
    pub fn parse(d: &Dict<'_>, parent: &str) -> Result<Attrs, MetainfoError> {
        let Some(f) = opt(d, parent, "attr") else {
            return Ok(Attrs::default());
        };
        let b = f.bytes()?;
        Ok(Attrs {
            pad: b.contains(&b'p'),
            executable: b.contains(&b'x'),
            hidden: b.contains(&b'h'),
            symlink: b.contains(&b'l'),
        })
    }
}

/// A file as read from the torrent, before sanitising and layout.
#[derive(Debug, Clone)]
pub(crate) struct RawFile {
    /// Path components (UTF-8 variant preferred), relative to the torrent root.
    pub components: Vec<Vec<u8>>,
    pub length: u64,
    pub attrs: Attrs,
    pub symlink: Option<Vec<Vec<u8>>>,
    pub pieces_root: Option<[u8; 32]>,
    pub mtime: Option<i64>,
    /// Key path for error messages, e.g. `info.files[3]`.
    pub key: String,
    /// Byte offset of the entry in the input.
    pub offset: usize,
}

/// Reads a list of byte-string path components.
pub(crate) fn read_components(
    f: &Field<'_, '_>,
    limits: &ParseLimits,
) -> Result<Vec<Vec<u8>>, MetainfoError> {
    let list = f.list()?;
    if list.len() > limits.max_path_depth {
        return Err(f.err(Problem::PathTooDeep {
            depth: list.len(),
            limit: limits.max_path_depth,
        }));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_bytes().map(<[u8]>::to_vec).ok_or_else(|| {
                invalid(
                    format!("{}[{i}]", f.key),
                    Problem::WrongType {
                        expected: "byte string",
                        got: v.type_name(),
                    },
                    f.offset,
                )
            })
        })
        .collect()
}

/// `key.utf-8` if present and valid UTF-8, else `key` (BEP 3 convention).
pub(crate) fn prefer_utf8<'d, 'a>(
    d: &'d Dict<'a>,
    parent: &str,
    key: &str,
) -> Option<Field<'d, 'a>> {
    let alt = format!("{key}.utf-8");
    if let Some(f) = opt(d, parent, &alt) {
        let ok = match f.value {
            Value::Bytes(b) => std::str::from_utf8(b).is_ok(),
            Value::List(l) => l
                .iter()
                .all(|c| c.as_bytes().is_some_and(|b| std::str::from_utf8(b).is_ok())),
            _ => false,
        };
        if ok {
            return Some(f);
        }
    }
    opt(d, parent, key)
}

/// Parses v1 `info.files` (multi-file) into raw files.
pub(crate) fn parse_v1_files(
    files: &Field<'_, '_>,
    limits: &ParseLimits,
) -> Result<Vec<RawFile>, MetainfoError> {
    let list = files.list()?;
    if list.len() > limits.max_files {
        return Err(files.err(Problem::TooMany {
            what: "files",
            limit: limits.max_files as u64,
        }));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let key = format!("{}[{i}]", files.key);
        let d = v.as_dict().ok_or_else(|| {
            invalid(
                key.clone(),
                Problem::WrongType {
                    expected: "dictionary",
                    got: v.type_name(),
                },
                files.offset,
            )
        })?;
        out.push(parse_file_dict(d, &key, limits, true)?);
    }
    Ok(out)
}

/// Parses one file dictionary: a v1 `files` entry (`with_path`) or a v2 file-tree
/// leaf (`""` value, path given by the caller).
pub(crate) fn parse_file_dict(
    d: &Dict<'_>,
    key: &str,
    limits: &ParseLimits,
    with_path: bool,
) -> Result<RawFile, MetainfoError> {
    let attrs = Attrs::parse(d, key)?;
    let length = match opt(d, key, "length") {
        Some(f) => f.u64()?,
        None if attrs.symlink => 0,
        None => {
            return Err(invalid(
                format!("{key}.length"),
                Problem::Missing,
                d.offset(),
            ))
        }
    };
    let components = if with_path {
        let f = match prefer_utf8(d, key, "path") {
            Some(f) => f,
            None => req(d, key, "path")?,
        };
        read_components(&f, limits)?
    } else {
        Vec::new()
    };
    let symlink = match (attrs.symlink, opt(d, key, "symlink path")) {
        (true, Some(f)) => Some(read_components(&f, limits)?),
        (true, None) => {
            return Err(invalid(
                format!("{key}.symlink path"),
                Problem::Missing,
                d.offset(),
            ))
        }
        (false, _) => None,
    };
    let mtime = opt(d, key, "mtime").and_then(|f| f.value.as_int());
    Ok(RawFile {
        components,
        length,
        attrs,
        symlink,
        pieces_root: None,
        mtime,
        key: key.to_string(),
        offset: d.offset(),
    })
}

/// Lays out raw files: sanitised paths (prefixed with `name` for multi-file
/// torrents), offsets in the piece stream, duplicates disambiguated, symlink
/// targets resolved inside the torrent. Fails on overflow or escaping symlinks.
pub(crate) fn layout(
    name: &str,
    multi: bool,
    raws: Vec<RawFile>,
    limits: &ParseLimits,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let max = limits.max_name_len;
    let mut paths: Vec<Vec<String>> = Vec::with_capacity(raws.len());
    for r in &raws {
        let mut p = vec![name.to_string()];
        if multi {
            p.extend(path::sanitize_path(
                r.components.iter().map(Vec::as_slice),
                max,
            ));
        }
        paths.push(p);
    }
    {
        let mut refs: Vec<Option<&mut Vec<String>>> = paths
            .iter_mut()
            .zip(&raws)
            .map(|(p, r)| (!r.attrs.pad).then_some(p))
            .collect();
        path::disambiguate(&mut refs, max);
    }
    let mut offset = 0u64;
    let mut out = Vec::with_capacity(raws.len());
    for (r, p) in raws.into_iter().zip(paths) {
        let symlink = match &r.symlink {
            None => None,
            Some(target) => {
                let t = path::resolve_symlink(target.iter().map(Vec::as_slice), max).ok_or_else(
                    || {
                        invalid(
                            format!("{}.symlink path", r.key),
                            Problem::SymlinkEscapes,
                            r.offset,
                        )
                    },
                )?;
                let mut full = if multi {
                    vec![name.to_string()]
                } else {
                    Vec::new()
                };
                full.extend(t);
                Some(path::to_path_buf(&full))
            }
        };
        out.push(FileEntry {
            path: path::to_path_buf(&p),
            length: r.length,
            offset,
            pad: r.attrs.pad,
            executable: r.attrs.executable,
            hidden: r.attrs.hidden,
            symlink,
            pieces_root: r.pieces_root,
            mtime: r.mtime,
        });
        offset = offset
            .checked_add(r.length)
            .ok_or_else(|| invalid(format!("{}.length", r.key), Problem::Overflow, r.offset))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(comps: &[&str], length: u64) -> RawFile {
        RawFile {
            components: comps.iter().map(|c| c.as_bytes().to_vec()).collect(),
            length,
            attrs: Attrs::default(),
            symlink: None,
            pieces_root: None,
            mtime: None,
            key: "info.files[0]".into(),
            offset: 0,
        }
    }

    #[test]
    fn layout_offsets_and_names() {
        let files = vec![raw(&["a"], 10), raw(&["..", "b"], 5), raw(&["A"], 1)];
        let out = layout("t", true, files, &ParseLimits::default()).unwrap();
        assert_eq!(out[0].path_string(), "t/a");
        assert_eq!(out[1].path_string(), "t/b");
        assert_eq!(out[2].path_string(), "t/A.1");
        assert_eq!(out[1].offset, 10);
        assert_eq!(out[2].offset, 15);
        assert_eq!(out[2].end(), 16);
    }

    #[test]
    fn symlink_targets_stay_inside() {
        let mut f = raw(&["link"], 0);
        f.attrs.symlink = true;
        f.symlink = Some(vec![b"dir".to_vec(), b"x".to_vec()]);
        let out = layout("t", true, vec![f.clone()], &ParseLimits::default()).unwrap();
        assert_eq!(out[0].symlink, Some(PathBuf::from("t/dir/x")));
        f.symlink = Some(vec![b"..".to_vec(), b"etc".to_vec()]);
        assert!(layout("t", true, vec![f], &ParseLimits::default()).is_err());
    }
}
