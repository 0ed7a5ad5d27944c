//! The ed25519 key file for BEP 44 mutable items: the 32-byte secret seed as 64 hex
//! digits and a newline, mode 0600. The same seed gives libtorrent's 64-byte secret
//! key (SHA-512 of the seed, clamped), so both sign with the same key.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ed25519_dalek::SigningKey;
use serde_json::json;

use super::{print_result, NetOpts};
use crate::cli::InvalidInput;

/// Largest key file read (the key is 64 hex digits; whitespace around is allowed).
const MAX_KEY_FILE: u64 = 256;

/// Arguments of `shoal dht keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key file to write.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// Overwrite an existing key file.
    #[arg(long)]
    pub force: bool,
}

/// Runs `shoal dht keygen`.
pub fn run_keygen(opts: &NetOpts, args: KeygenArgs) -> anyhow::Result<()> {
    if !args.force && args.key.exists() {
        return Err(InvalidInput(format!(
            "{}: key file exists (use --force to overwrite)",
            args.key.display()
        ))
        .into());
    }
    let key = generate(&args.key, args.force)?;
    let pk = hex::encode(key.verifying_key().to_bytes());
    let value = json!({ "key_file": args.key.display().to_string(), "public_key": pk });
    print_result(opts, &value, &format!("public key {pk}"));
    Ok(())
}

/// Writes a fresh random key to `path` (mode 0600; replacing a file only with `force`).
pub fn generate(path: &Path, force: bool) -> anyhow::Result<SigningKey> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_key(path, &key, force)?;
    Ok(key)
}

fn write_key(path: &Path, key: &SigningKey, force: bool) -> anyhow::Result<()> {
    let shown = path.display().to_string();
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).with_context(|| shown.clone())?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: restrict it too.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| shown.clone())?;
    }
    let text = format!("{}\n", hex::encode(key.to_bytes()));
    f.write_all(text.as_bytes())
        .with_context(|| shown.clone())?;
    f.sync_all().with_context(|| shown)
}

/// Why a key file's contents were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyFileError {
    /// The file is not UTF-8 text.
    #[error("not text")]
    NotText,
    /// Not 64 characters once trimmed.
    #[error("expected 64 hex digits, found {0} characters")]
    Length(usize),
    /// 64 characters, but not all hex digits.
    #[error("{0}")]
    Hex(#[from] hex::FromHexError),
}

/// Parses a key file's contents: 64 hex digits, surrounding whitespace allowed.
pub fn parse_key(text: &[u8]) -> Result<SigningKey, KeyFileError> {
    let s = std::str::from_utf8(text).map_err(|_| KeyFileError::NotText)?;
    let s = s.trim();
    if s.len() != 64 {
        return Err(KeyFileError::Length(s.len()));
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(s, &mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads the key at `path`; with `create`, makes one when the file is missing.
/// Returns the key and whether it was created.
pub fn load_or_create(path: &Path, create: bool) -> anyhow::Result<(SigningKey, bool)> {
    use std::io::Read;
    let shown = path.display().to_string();
    let f = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            return Ok((generate(path, false)?, true));
        }
        r => r.with_context(|| shown.clone())?,
    };
    let mut buf = Vec::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .with_context(|| shown.clone())?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(InvalidInput(format!(
            "{shown}: key file larger than {MAX_KEY_FILE} bytes"
        ))
        .into());
    }
    let key =
        parse_key(&buf).map_err(|why| InvalidInput(format!("{shown}: bad key file: {why}")))?;
    Ok((key, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = generate(&path, false).unwrap();
        let (again, created) = load_or_create(&path, true).unwrap();
        assert!(!created);
        assert_eq!(again.to_bytes(), key.to_bytes());
        assert!(generate(&path, false).is_err());
        let other = generate(&path, true).unwrap();
        assert_ne!(other.to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (made, created) = load_or_create(&dir.path().join("new"), true).unwrap();
        assert!(created);
        assert_ne!(made.to_bytes(), other.to_bytes());
        assert!(load_or_create(&dir.path().join("missing"), false).is_err());
    }

    #[test]
    fn bad_key_files() {
        assert!(parse_key(b"abc").is_err());
        assert!(parse_key(&[0xff; 64]).is_err());
        assert!(parse_key("g".repeat(64).as_bytes()).is_err());
        let seed = [7u8; 32];
        let k = parse_key(format!("  {}\n", hex::encode(seed)).as_bytes()).unwrap();
        assert_eq!(k.to_bytes(), seed);
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'0'; 1000]).unwrap();
        let e = load_or_create(&big, false).unwrap_err();
        assert!(e.is::<InvalidInput>());
    }
}
