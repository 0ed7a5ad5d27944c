//! The allow list (`--allow FILE`): the info-hashes a closed tracker serves,
//! read from a text file of 40-digit hex hashes, one per line (blank lines
//! and `#` comments ignored), bounded in size.
use shoal_base::InfoHash;
use std::collections::HashSet;

/// Most hashes in an allow list.
pub const MAX_ALLOWED: usize = 10_000_000;
/// Longest line accepted (a hash plus a comment).
pub const MAX_LINE: usize = 1024;

/// A set of info-hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hashes: HashSet<InfoHash>,
}

/// Why an allow list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowListError {
    /// A line is not 40 hex digits (after removing a comment and spaces).
    #[error("line {line}: not a 40-digit hex info-hash")]
    BadHash {
        /// 1-based line number.
        line: usize,
    },
    /// A line is longer than [`MAX_LINE`].
    #[error("line {line}: longer than {MAX_LINE} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// More than [`MAX_ALLOWED`] hashes.
    #[error("more than {MAX_ALLOWED} info-hashes")]
    TooMany,
}

impl AllowList {
    /// Parses the file's text.
    pub fn parse(text: &[u8]) -> Result<AllowList, AllowListError> {
        let mut hashes = HashSet::new();
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            if raw.len() > MAX_LINE {
                return Err(AllowListError::LineTooLong { line });
            }
            let body = raw.split(|&b| b == b'#').next().unwrap_or(&[]);
            let body = body.trim_ascii();
            if body.is_empty() {
                continue;
            }
            let mut h = [0u8; 20];
            hex::decode_to_slice(body, &mut h).map_err(|_| AllowListError::BadHash { line })?;
            hashes.insert(InfoHash(h));
            if hashes.len() > MAX_ALLOWED {
                return Err(AllowListError::TooMany);
            }
        }
        Ok(AllowList { hashes })
    }

    /// A list of exactly these hashes.
    pub fn from_hashes(hashes: impl IntoIterator<Item = impl Into<InfoHash>>) -> AllowList {
        AllowList {
            hashes: hashes.into_iter().map(Into::into).collect(),
        }
    }

    /// True if `info_hash` is on the list.
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.hashes.contains(info_hash)
    }

    /// Number of hashes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True if the list is empty (nothing is served).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hashes_comments_and_blank_lines() {
        let text = format!(
            "# torrents\n{}\n\n  {}  # second\r\n",
            "aa".repeat(20),
            "0B".repeat(20)
        );
        let l = AllowList::parse(text.as_bytes()).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l.contains(&shoal_base::InfoHash([0xaa; 20])));
        assert!(l.contains(&shoal_base::InfoHash([0x0b; 20])));
        assert!(!l.contains(&shoal_base::InfoHash([0; 20])));
    }

    #[test]
    fn bad_lines_are_named() {
        let text = format!("{}\nxyz\n", "aa".repeat(20));
        assert_eq!(
            AllowList::parse(text.as_bytes()),
            Err(AllowListError::BadHash { line: 2 })
        );
        let text = format!("{}\n", "aa".repeat(21));
        assert_eq!(
            AllowList::parse(text.as_bytes()),
            Err(AllowListError::BadHash { line: 1 })
        );
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(
            AllowList::parse(&long),
            Err(AllowListError::LineTooLong { line: 1 })
        );
    }
}
