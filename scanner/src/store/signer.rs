//! The node's verdict key, which signs every stored entry and checks it on every read.
//!
//! Key file formats (a Kubernetes secret mounted as a file is read the same way):
//! - `-----BEGIN PRIVATE KEY-----`: an Ed25519 PKCS#8 key (`openssl genpkey -algorithm ed25519`);
//! - `-----BEGIN VERDICT HMAC KEY-----`: base64 of an HMAC-SHA256 key of at least 32 bytes;
//! - anything else: the raw bytes are an HMAC-SHA256 key (trailing whitespace removed, ≥ 32 bytes).
//!
//! HMAC-SHA256 is the default for generated keys: the store's reader and writer are the same node,
//! and checking an HMAC costs about a microsecond against ~50 µs for an Ed25519 verification
//! on every cache hit.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _};
use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use sha2::Digest as _;

use super::StoreError;

const HMAC_PEM_LABEL: &str = "VERDICT HMAC KEY";
const PKCS8_PEM_LABEL: &str = "PRIVATE KEY";
const MIN_HMAC_KEY_LEN: usize = 32;

/// The algorithm of a verdict key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    HmacSha256,
    Ed25519,
}

enum Inner {
    Hmac(Box<hmac::Key>),
    Ed25519(Box<Ed25519KeyPair>),
}

/// A verdict key. `Debug` shows only the kind and the key id.
pub struct VerdictSigner {
    inner: Inner,
    key_id: String,
}

impl fmt::Debug for VerdictSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictSigner")
            .field("kind", &self.kind())
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl VerdictSigner {
    /// An HMAC-SHA256 key from raw bytes (at least 32).
    pub fn from_hmac_key(key: &[u8]) -> Result<Self, StoreError> {
        Self::hmac(key).map_err(in_memory)
    }

    /// An Ed25519 key from PKCS#8 DER (v1 or v2).
    pub fn from_ed25519_pkcs8(der: &[u8]) -> Result<Self, StoreError> {
        Self::ed25519(der).map_err(in_memory)
    }

    /// A fresh random key held only in memory.
    pub fn generate(kind: SignerKind) -> Result<Self, StoreError> {
        let (_, signer) = generate_pem(kind).map_err(in_memory)?;
        Ok(signer)
    }

    fn hmac(key: &[u8]) -> Result<Self, String> {
        if key.len() < MIN_HMAC_KEY_LEN {
            return Err(format!(
                "an HMAC-SHA256 verdict key needs at least {MIN_HMAC_KEY_LEN} bytes, found {}",
                key.len()
            ));
        }
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let id = hmac::sign(&k, b"verdict-store key id v1");
        Ok(VerdictSigner {
            key_id: format!("hmac-sha256:{}", hex::encode(&id.as_ref()[..8])),
            inner: Inner::Hmac(Box::new(k)),
        })
    }

    fn ed25519(der: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| {
            format!("not an Ed25519 PKCS#8 private key ({e}); only Ed25519 is supported")
        })?;
        let fp = sha2::Sha256::digest(pair.public_key().as_ref());
        Ok(VerdictSigner {
            key_id: format!("ed25519:{}", hex::encode(&fp[..8])),
            inner: Inner::Ed25519(Box::new(pair)),
        })
    }

    /// Loads the key file at `path` (see the module doc for the formats).
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let bytes = std::fs::read(path).map_err(StoreError::io("reading verdict key", path))?;
        warn_if_readable_by_others(path);
        Self::from_file_bytes(&bytes).map_err(|reason| StoreError::SignerKey {
            path: path.to_owned(),
            reason,
        })
    }

    /// Loads the key at `path`, or (local mode) generates one of `kind` there first, with mode 0600.
    /// Returns the signer and whether it was generated. Two processes racing here end up with the
    /// same key: the file is created with a no-clobber link.
    pub fn generate_if_missing(path: &Path, kind: SignerKind) -> Result<(Self, bool), StoreError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("inspecting verdict key", path)(e)),
        }
        let (pem, _) = generate_pem(kind).map_err(|reason| StoreError::SignerKey {
            path: path.to_owned(),
            reason,
        })?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(StoreError::io("creating the directory of", path))?;
        }
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(pem.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::io("writing verdict key", &tmp)(e));
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    // Make the new name durable too.
                    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
                }
                let signer = Self::load(path)?;
                tracing::info!(path = %path.display(), key_id = %signer.key_id, "generated a new verdict key");
                Ok((signer, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => Err(StoreError::io("installing verdict key", path)(e)),
        }
    }

    fn from_file_bytes(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).ok();
        if let Some(text) = text.filter(|t| t.trim_start().starts_with("-----BEGIN ")) {
            let (label, der) = parse_pem(text)?;
            return match label.as_str() {
                PKCS8_PEM_LABEL => Self::ed25519(&der),
                HMAC_PEM_LABEL => Self::hmac(&der),
                other => Err(format!(
                    "PEM block {other:?} is not a verdict key: use \"{PKCS8_PEM_LABEL}\" (Ed25519 PKCS#8) \
                     or \"{HMAC_PEM_LABEL}\" (base64 HMAC-SHA256 key)"
                )),
            };
        }
        let trimmed = bytes.trim_ascii_end();
        Self::hmac(trimmed).map_err(|e| {
            format!("{e} (raw file contents are taken as an HMAC-SHA256 key; generate one with `openssl rand -hex 32`)")
        })
    }

    pub fn kind(&self) -> SignerKind {
        match self.inner {
            Inner::Hmac(_) => SignerKind::HmacSha256,
            Inner::Ed25519(_) => SignerKind::Ed25519,
        }
    }

    /// A short public identifier of the key (never the key itself); recorded in the store's meta record.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Length of the signatures this key makes.
    pub fn signature_len(&self) -> usize {
        match self.inner {
            Inner::Hmac(_) => 32,
            Inner::Ed25519(_) => 64,
        }
    }

    /// Signs the concatenation of `parts`, appending the signature to `out`.
    pub(crate) fn sign_into(&self, parts: &[&[u8]], out: &mut Vec<u8>) {
        match &self.inner {
            Inner::Hmac(k) => {
                let mut ctx = hmac::Context::with_key(k);
                for p in parts {
                    ctx.update(p);
                }
                out.extend_from_slice(ctx.sign().as_ref());
            }
            Inner::Ed25519(pair) => {
                let msg = parts.concat();
                out.extend_from_slice(pair.sign(&msg).as_ref());
            }
        }
    }

    /// Checks `sig` over the concatenation of `parts`.
    pub(crate) fn verify(&self, parts: &[&[u8]], sig: &[u8]) -> bool {
        match &self.inner {
            Inner::Hmac(k) => {
                let mut ctx = hmac::Context::with_key(k);
                for p in parts {
                    ctx.update(p);
                }
                let tag = ctx.sign();
                aws_lc_rs::constant_time::verify_slices_are_equal(tag.as_ref(), sig).is_ok()
            }
            Inner::Ed25519(pair) => {
                let msg = parts.concat();
                signature::UnparsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref())
                    .verify(&msg, sig)
                    .is_ok()
            }
        }
    }
}

fn generate_pem(kind: SignerKind) -> Result<(String, VerdictSigner), String> {
    match kind {
        SignerKind::HmacSha256 => {
            let mut key = [0u8; 32];
            rand::fill(&mut key).map_err(|_| "the system random generator failed".to_owned())?;
            let signer = VerdictSigner::hmac(&key)?;
            Ok((to_pem(HMAC_PEM_LABEL, &key), signer))
        }
        SignerKind::Ed25519 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rand::SystemRandom::new())
                .map_err(|_| "generating an Ed25519 key failed".to_owned())?;
            let signer = VerdictSigner::ed25519(doc.as_ref())?;
            Ok((to_pem(PKCS8_PEM_LABEL, doc.as_ref()), signer))
        }
    }
}

fn in_memory(reason: String) -> StoreError {
    StoreError::SignerKey {
        path: PathBuf::from("<in memory>"),
        reason,
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn parse_pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let text = text.trim();
    let first = text.lines().next().unwrap_or_default().trim();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or("malformed PEM header line")?;
    let end = format!("-----END {label}-----");
    let body_end = text
        .find(&end)
        .ok_or_else(|| format!("PEM block {label:?} has no {end} line"))?;
    let body: String = text[first.len()..body_end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("PEM block {label:?} is not valid base64: {e}"))?;
    Ok((label.to_owned(), der))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the verdict key is readable by other users; chmod 600 it (for a Kubernetes secret set defaultMode: 0400)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_both_kinds() {
        for kind in [SignerKind::HmacSha256, SignerKind::Ed25519] {
            let s = VerdictSigner::generate(kind).unwrap();
            let mut sig = Vec::new();
            s.sign_into(&[b"ab", b"c"], &mut sig);
            assert_eq!(sig.len(), s.signature_len());
            assert!(s.verify(&[b"a", b"bc"], &sig));
            assert!(!s.verify(&[b"abd"], &sig));
            let other = VerdictSigner::generate(kind).unwrap();
            assert!(!other.verify(&[b"abc"], &sig));
            assert_ne!(s.key_id(), other.key_id());
        }
    }

    #[test]
    fn generated_file_is_private_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind) in [
            ("h.pem", SignerKind::HmacSha256),
            ("e.pem", SignerKind::Ed25519),
        ] {
            let path = dir.path().join("sub").join(name);
            let (a, generated) = VerdictSigner::generate_if_missing(&path, kind).unwrap();
            assert!(generated);
            assert_eq!(a.kind(), kind);
            let (b, generated) = VerdictSigner::generate_if_missing(&path, kind).unwrap();
            assert!(!generated);
            assert_eq!(a.key_id(), b.key_id());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            let dbg = format!("{a:?}");
            assert!(dbg.contains("redacted") && !dbg.contains("BEGIN"), "{dbg}");
        }
    }

    #[test]
    fn raw_and_bad_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, format!("{}\n", "ab".repeat(32))).unwrap();
        let a = VerdictSigner::load(&raw).unwrap();
        std::fs::write(&raw, "ab".repeat(32)).unwrap();
        assert_eq!(VerdictSigner::load(&raw).unwrap().key_id(), a.key_id());

        std::fs::write(&raw, "short\n").unwrap();
        let e = VerdictSigner::load(&raw).unwrap_err().to_string();
        assert!(
            e.contains("at least 32 bytes") && e.contains("openssl rand"),
            "{e}"
        );

        std::fs::write(
            &raw,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = VerdictSigner::load(&raw).unwrap_err().to_string();
        assert!(e.contains("not a verdict key"), "{e}");

        let e = VerdictSigner::load(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("reading verdict key"), "{e}");
    }
}
