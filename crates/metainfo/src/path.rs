//! Sanitising untrusted file paths from torrents so nothing is ever written
//! outside the download directory, on any platform.
//!
//! The rules, applied to each path component (a v1 `path` element, a v2
//! `file tree` key, or the torrent `name`), in this order:
//! 1. Bytes that are not UTF-8 are decoded lossily (U+FFFD). The parser prefers
//!    `name.utf-8` / `path.utf-8` (BEP 3 extensions) when they are valid UTF-8.
//! 2. Components that are empty, `.` or `..` are dropped (never interpreted).
//!    A path left with no component becomes `_`.
//! 3. Path separators (`/`, `\`), NUL and other control characters (below
//!    U+0020 and U+007F), and the characters Windows forbids (`< > : " | ? *`)
//!    are each replaced by `_`. So a component can never contain a separator,
//!    and a drive prefix (`C:`) or UNC prefix cannot form.
//! 4. Trailing dots and spaces are removed (Windows strips them, which could
//!    make two names equal or form `..`); if nothing is left the component is `_`.
//! 5. Windows reserved device names (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`,
//!    `LPT0`-`LPT9`, case-insensitive, with or without an extension) get `_`
//!    appended to the part before the first dot: `con.txt` → `con_.txt`.
//! 6. Components longer than 255 bytes ([`crate::limits::MAX_NAME_LEN`]) are
//!    truncated on a UTF-8 boundary, keeping the extension (the part after the
//!    last dot, if it is at most 32 bytes).
//!
//! The resulting path is always relative, made only of normal components.
//!
//! Duplicates: after sanitising, file paths that are equal when compared
//! case-insensitively (Unicode lower case), or that equal a directory another
//! file needs, are disambiguated by inserting `.1`, `.2`, ... before the
//! extension of the later file (`a.txt` → `a.1.txt`), in file order. Directories
//! are never renamed. Pad files are not written to disk and take no part in this.
//!
//! Symlink targets (BEP 47 `symlink path`) are lists of components relative to
//! the torrent root: `.` and empty components are dropped, `..` removes the
//! previous component, and a `..` that would climb above the root rejects the
//! torrent; the remaining components are sanitised as above.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Longest extension (bytes after the last dot) kept when truncating.
const MAX_EXT_LEN: usize = 32;

const RESERVED: [&str; 4] = ["con", "prn", "aux", "nul"];

/// Sanitises one component per rules 1-6 of the module docs. Returns `None`
/// when the component is to be dropped (empty, `.` or `..`).
pub fn sanitize_component(raw: &[u8], max_len: usize) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    if text.is_empty() || text == "." || text == ".." {
        return None;
    }
    let mut s: String = text
        .chars()
        .map(|c| match c {
            '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if (c as u32) < 0x20 || c as u32 == 0x7f => '_',
            c => c,
        })
        .collect();
    let trimmed = s.trim_end_matches(['.', ' ']).len();
    s.truncate(trimmed);
    if s.is_empty() {
        s.push('_');
    }
    if is_reserved(&s) {
        let dot = s.find('.').unwrap_or(s.len());
        s.insert(dot, '_');
    }
    Some(fit_len(&s, max_len.max(MAX_EXT_LEN + 2)))
}

/// True for Windows device names, with or without extension.
fn is_reserved(s: &str) -> bool {
    let stem = s
        .split('.')
        .next()
        .unwrap_or(s)
        .trim_end()
        .to_ascii_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return true;
    }
    let b = stem.as_bytes();
    b.len() == 4 && (b.starts_with(b"com") || b.starts_with(b"lpt")) && b[3].is_ascii_digit()
}

/// Splits at the last dot into (stem, extension-with-dot); no split for
/// dot-files (`.bashrc`) or overly long extensions.
fn split_ext(s: &str) -> (&str, &str) {
    match s.rfind('.') {
        Some(i) if i > 0 && s.len() - i - 1 <= MAX_EXT_LEN => (&s[..i], &s[i..]),
        _ => (s, ""),
    }
}

/// Largest prefix of `s` of at most `n` bytes that ends on a char boundary.
fn prefix(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Truncates to `max` bytes keeping the extension (rule 6).
fn fit_len(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let (stem, ext) = split_ext(s);
    let stem = prefix(stem, max.saturating_sub(ext.len()));
    let mut out = String::with_capacity(max);
    out.push_str(stem);
    out.push_str(ext);
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `name` with `.n` inserted before its extension, kept within `max` bytes.
pub fn with_suffix(name: &str, n: u64, max: usize) -> String {
    let (stem, ext) = split_ext(name);
    let tag = format!(".{n}");
    let room = max.saturating_sub(ext.len() + tag.len());
    format!("{}{tag}{ext}", prefix(stem, room))
}

/// Sanitises a whole path (rules 1-6 on each component, dropped components
/// removed). An empty result becomes the single component `_`.
pub fn sanitize_path<'a, I>(components: I, max_len: usize) -> Vec<String>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out: Vec<String> = components
        .into_iter()
        .filter_map(|c| sanitize_component(c, max_len))
        .collect();
    if out.is_empty() {
        out.push("_".to_string());
    }
    out
}

/// Resolves a symlink target relative to the torrent root (see module docs).
/// `None` when it would leave the root.
pub fn resolve_symlink<'a, I>(components: I, max_len: usize) -> Option<Vec<String>>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out: Vec<String> = Vec::new();
    for c in components {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            other => out.extend(sanitize_component(other, max_len)),
        }
    }
    Some(out)
}

/// Joins sanitised components into a relative `PathBuf`.
pub fn to_path_buf(components: &[String]) -> PathBuf {
    components.iter().collect()
}

/// Disambiguates duplicate file paths in place (see module docs). `paths[i]`
/// is `None` for entries that take no part (pad files).
pub fn disambiguate(paths: &mut [Option<&mut Vec<String>>], max_len: usize) {
    let key = |c: &[String]| c.join("/").to_lowercase();
    let mut dirs: HashSet<String> = HashSet::new();
    for p in paths.iter().flatten() {
        let mut k = String::new();
        for c in p.iter().take(p.len().saturating_sub(1)) {
            if !k.is_empty() {
                k.push('/');
            }
            k.push_str(&c.to_lowercase());
            if !dirs.contains(&k) {
                dirs.insert(k.clone());
            }
        }
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut next: HashMap<String, u64> = HashMap::new();
    for p in paths.iter_mut().flatten() {
        let mut k = key(p);
        if used.contains(&k) || dirs.contains(&k) {
            let Some(last) = p.last().cloned() else {
                continue;
            };
            // Resume numbering where the last collision on this name stopped,
            // so many duplicates of one name cost linear, not quadratic, time.
            let base = k.clone();
            let mut n = next.get(&base).copied().unwrap_or(1);
            loop {
                let candidate = with_suffix(&last, n, max_len);
                if let Some(slot) = p.last_mut() {
                    *slot = candidate;
                }
                k = key(p);
                if !used.contains(&k) && !dirs.contains(&k) {
                    break;
                }
                n += 1;
            }
            next.insert(base, n + 1);
        }
        used.insert(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(raw: &str) -> Option<String> {
        sanitize_component(raw.as_bytes(), 255)
    }

    #[test]
    fn components() {
        assert_eq!(s("a.txt").as_deref(), Some("a.txt"));
        assert_eq!(s(".."), None);
        assert_eq!(s("."), None);
        assert_eq!(s(""), None);
        assert_eq!(s("a/b").as_deref(), Some("a_b"));
        assert_eq!(s("a\\..\\b").as_deref(), Some("a_.._b"));
        assert_eq!(s("C:").as_deref(), Some("C_"));
        assert_eq!(s("a\0b").as_deref(), Some("a_b"));
        assert_eq!(s("CON").as_deref(), Some("CON_"));
        assert_eq!(s("con.txt").as_deref(), Some("con_.txt"));
        assert_eq!(s("com1").as_deref(), Some("com1_"));
        assert_eq!(s("com10").as_deref(), Some("com10"));
        assert_eq!(s("console").as_deref(), Some("console"));
        assert_eq!(s("name. ").as_deref(), Some("name"));
        assert_eq!(s("...").as_deref(), Some("_"));
        assert_eq!(s(".bashrc").as_deref(), Some(".bashrc"));
        assert_eq!(
            sanitize_component(b"a\xffb", 255).as_deref(),
            Some("a\u{fffd}b")
        );
    }

    #[test]
    fn long_names_keep_extension_and_utf8() {
        let long = format!("{}.mkv", "é".repeat(200));
        let out = s(&long).unwrap();
        assert!(out.len() <= 255, "{}", out.len());
        assert!(out.ends_with(".mkv"));
        let long = "x".repeat(1000);
        assert_eq!(s(&long).unwrap().len(), 255);
    }

    #[test]
    fn paths_and_symlinks() {
        let p = sanitize_path([&b".."[..], b"", b"etc", b".", b"passwd"], 255);
        assert_eq!(p, vec!["etc", "passwd"]);
        assert_eq!(sanitize_path([&b".."[..]], 255), vec!["_"]);
        let t = resolve_symlink([&b"a"[..], b"..", b"b"], 255).unwrap();
        assert_eq!(t, vec!["b"]);
        assert!(resolve_symlink([&b"a"[..], b"..", b".."], 255).is_none());
        assert!(resolve_symlink([&b".."[..], b"x"], 255).is_none());
    }

    #[test]
    fn duplicates_are_renamed() {
        let mut a = vec!["t".to_string(), "a.txt".to_string()];
        let mut b = vec!["t".to_string(), "A.TXT".to_string()];
        let mut c = vec!["t".to_string(), "a.txt".to_string()];
        let mut d = vec!["t".to_string(), "dir".to_string()];
        let mut e = vec!["t".to_string(), "dir".to_string(), "x".to_string()];
        {
            let mut v = vec![
                Some(&mut a),
                Some(&mut b),
                Some(&mut c),
                None,
                Some(&mut d),
                Some(&mut e),
            ];
            disambiguate(&mut v, 255);
        }
        assert_eq!(a[1], "a.txt");
        assert_eq!(b[1], "A.1.TXT");
        assert_eq!(c[1], "a.2.txt");
        assert_eq!(d[1], "dir.1");
        assert_eq!(e, vec!["t", "dir", "x"]);
    }

    proptest! {
        #[test]
        fn any_bytes_give_a_safe_component(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Some(c) = sanitize_component(&raw, 255) {
                prop_assert!(!c.is_empty() && c.len() <= 255);
                prop_assert!(!c.contains('/') && !c.contains('\\') && !c.contains('\0'));
                prop_assert!(c != "." && c != "..");
                let p = to_path_buf(std::slice::from_ref(&c));
                let mut comps = p.components();
                prop_assert!(matches!(comps.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(comps.next().is_none());
            }
        }
    }
}
