//! Checks of the directories a client names (`download-dir`,
//! `set-location`, a rename): absolute, no `..`, no NUL, bounded length,
//! and under one of the configured roots when there are any. The files of a
//! torrent never leave its directory: the metainfo's paths are sanitised by
//! `shoal-metainfo` and refused by the storage if they escape.
use std::path::{Component, Path, PathBuf};

/// Longest path accepted.
pub const MAX_PATH: usize = 4096;

/// Why a path given over the API is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Empty.
    #[error("the path is empty")]
    Empty,
    /// Not absolute.
    #[error("path is not absolute: {0}")]
    NotAbsolute(String),
    /// Has a `..` component.
    #[error("the path has a '..' component: {0}")]
    Parent(String),
    /// Has a NUL or another control character.
    #[error("the path has a control character")]
    Control,
    /// Longer than [`MAX_PATH`].
    #[error("the path is longer than {MAX_PATH} bytes")]
    TooLong,
    /// Outside every allowed root.
    #[error("{path} is outside the allowed download directories ({roots})")]
    OutsideRoots {
        /// The path.
        path: String,
        /// The roots, comma-separated.
        roots: String,
    },
    /// A file or folder name with a separator, or `.`/`..`.
    #[error("not a single file name: {0}")]
    BadName(String),
}

/// Checks a directory given over the API; returns it with `.` components
/// and trailing separators dropped.
pub fn check_dir(s: &str, roots: &[PathBuf]) -> Result<PathBuf, PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(PathError::NotAbsolute(s.to_owned()));
    }
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => return Err(PathError::Parent(s.to_owned())),
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    if !roots.is_empty() && !roots.iter().any(|r| clean.starts_with(r)) {
        return Err(PathError::OutsideRoots {
            path: clean.display().to_string(),
            roots: roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(clean)
}

/// Checks a new file or folder name (a rename): one component, not `.` or
/// `..`, no separator or control character.
pub fn check_name(s: &str) -> Result<&str, PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.len() > 255 {
        return Err(PathError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    if s == "." || s == ".." || s.contains('/') || s.contains('\\') {
        return Err(PathError::BadName(s.to_owned()));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories() {
        assert_eq!(check_dir("/a/./b/", &[]).unwrap(), PathBuf::from("/a/b"));
        assert!(matches!(check_dir("", &[]), Err(PathError::Empty)));
        assert!(matches!(
            check_dir("a/b", &[]),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            check_dir("/a/../../etc", &[]),
            Err(PathError::Parent(_))
        ));
        assert!(matches!(check_dir("/a\0b", &[]), Err(PathError::Control)));
        assert!(matches!(
            check_dir(&format!("/{}", "x".repeat(MAX_PATH)), &[]),
            Err(PathError::TooLong)
        ));
        let roots = [PathBuf::from("/srv/dl")];
        assert!(check_dir("/srv/dl/tv", &roots).is_ok());
        assert!(matches!(
            check_dir("/srv/dlx", &roots),
            Err(PathError::OutsideRoots { .. })
        ));
        assert!(matches!(
            check_dir("/etc", &roots),
            Err(PathError::OutsideRoots { .. })
        ));
    }

    #[test]
    fn names() {
        assert_eq!(check_name("a.mkv").unwrap(), "a.mkv");
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
