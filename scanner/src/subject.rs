//! The subject a verdict belongs to, one type from the API to the store: a manifest digest in a
//! repository, optionally under a Kubernetes namespace (Ratify's `[ns]` key prefix).
//!
//! A [`SubjectKey`] is built from parts that were already checked — a [`Namespace`], a
//! [`Repository`] and a [`Digest`] from the reference parser — so the reference grammar is checked
//! once, where the text arrives ([`crate::registry::ImageReference::parse`]). Its canonical text
//! `[ns]registry/repository@digest` is what the store hashes and signs; [`SubjectKey::parse`]
//! reads that text back (store entries) and refuses anything that is not already canonical.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

use crate::registry::{Digest, ImageReference, RegistryError, Repository};

/// A Kubernetes namespace name (an RFC 1123 label: 1–63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// `None` when `name` is not a namespace name.
    pub fn parse(name: &str) -> Option<Self> {
        is_namespace_name(name).then(|| Namespace(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", self.0)
    }
}

/// Kubernetes namespace names: RFC 1123 labels.
pub fn is_namespace_name(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|&c| alnum(c) || c == b'-')
        && alnum(b[0])
        && alnum(b[b.len() - 1])
}

/// The subject of a verdict. Displays as its canonical text, `[ns]registry/repository@digest`.
///
/// Cheap to clone and to hash (shared; the hash is computed once, keyed per process): every
/// lookup hashes it, and the API memoises it per key text.
#[derive(Clone)]
pub struct SubjectKey(Arc<Inner>);

struct Inner {
    namespace: Option<Namespace>,
    repository: Repository,
    digest: Digest,
    hash: u64,
}

impl SubjectKey {
    pub fn new(namespace: Option<Namespace>, repository: Repository, digest: Digest) -> Self {
        static HASHER: LazyLock<std::hash::RandomState> =
            LazyLock::new(std::hash::RandomState::new);
        let hash = HASHER.hash_one((&namespace, &repository, &digest));
        SubjectKey(Arc::new(Inner {
            namespace,
            repository,
            digest,
            hash,
        }))
    }

    /// The subject of a digest reference (its tag, if any, dropped); `None` for a tag reference.
    pub fn of_reference(namespace: Option<Namespace>, reference: &ImageReference) -> Option<Self> {
        let digest = reference.digest()?.clone();
        Some(Self::new(namespace, reference.repository().clone(), digest))
    }

    /// A key from text parts, each checked with the reference grammar (tests and tools).
    pub fn from_parts(
        namespace: Option<&str>,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Self, RegistryError> {
        let namespace = match namespace {
            None => None,
            Some(ns) => Some(Namespace::parse(ns).ok_or_else(|| invalid_namespace(ns))?),
        };
        Ok(Self::new(
            namespace,
            Repository::new(registry, repository)?,
            Digest::parse(digest)?,
        ))
    }

    /// Reads the canonical text back (`[ns]registry/repository@digest`, as [`fmt::Display`]
    /// writes it). Text that parses but is not canonical (no registry, a tag, upper case) is
    /// refused rather than normalised: a store key is never guessed at.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            input: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (namespace, rest) = match text.strip_prefix('[').and_then(|r| r.split_once(']')) {
            // `[::1]:5000/…` is an IPv6 registry, not a namespace (namespaces have no ':').
            Some((ns, rest)) if !ns.contains(':') => (
                Some(Namespace::parse(ns).ok_or_else(|| invalid_namespace(ns))?),
                rest,
            ),
            _ => (None, text),
        };
        let reference = ImageReference::parse(rest)?;
        let key = Self::of_reference(namespace, &reference).ok_or_else(|| {
            invalid("a subject names a digest: registry/repository@sha256:<64 hex digits>")
        })?;
        if key.to_string() != text {
            return Err(invalid(&format!(
                "not in canonical form; write it as {key} (registry included, no tag)"
            )));
        }
        Ok(key)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.0.namespace.as_ref().map(Namespace::as_str)
    }

    pub fn repository(&self) -> &Repository {
        &self.0.repository
    }

    pub fn registry(&self) -> &str {
        self.0.repository.registry()
    }

    pub fn digest(&self) -> &Digest {
        &self.0.digest
    }

    /// The key's hash (keyed per process): what [`Hash`] feeds a hasher.
    pub fn prehash(&self) -> u64 {
        self.0.hash
    }

    /// `registry/repository@digest` (no namespace).
    pub fn reference(&self) -> ImageReference {
        ImageReference::with_digest(self.0.repository.clone(), self.0.digest.clone())
    }

    /// The same subject without a namespace (itself when it has none).
    pub fn without_namespace(&self) -> SubjectKey {
        match self.0.namespace {
            None => self.clone(),
            Some(_) => SubjectKey::new(None, self.0.repository.clone(), self.0.digest.clone()),
        }
    }
}

fn invalid_namespace(ns: &str) -> RegistryError {
    RegistryError::InvalidReference {
        input: format!("[{ns}]"),
        reason: "a namespace prefix must be a Kubernetes namespace name (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit)".into(),
    }
}

impl PartialEq for SubjectKey {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        Arc::ptr_eq(&self.0, &other.0)
            || (a.hash == b.hash
                && a.digest == b.digest
                && a.repository == b.repository
                && a.namespace == b.namespace)
    }
}

impl Eq for SubjectKey {}

impl Hash for SubjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for SubjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By namespace, repository, then digest (stable across processes, unlike the hash).
impl Ord for SubjectKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (&*self.0, &*other.0);
        (&a.namespace, &a.repository, &a.digest).cmp(&(&b.namespace, &b.repository, &b.digest))
    }
}

impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.0.namespace {
            write!(f, "[{ns}]")?;
        }
        write!(f, "{}@{}", self.0.repository, self.0.digest)
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectKey({self})")
    }
}

impl std::str::FromStr for SubjectKey {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubjectKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn canonical_round_trip_with_and_without_namespace() {
        let k = SubjectKey::from_parts(None, "MyAcr.azurecr.io", "app/web", D).unwrap();
        assert_eq!(k.to_string(), format!("myacr.azurecr.io/app/web@{D}"));
        assert_eq!(SubjectKey::parse(&k.to_string()).unwrap(), k);
        let n = SubjectKey::parse(&format!("[team-a]localhost:5000/app@{D}")).unwrap();
        assert_eq!(n.namespace(), Some("team-a"));
        assert_eq!(n.registry(), "localhost:5000");
        assert_eq!(n.to_string(), format!("[team-a]localhost:5000/app@{D}"));
        assert_eq!(n.without_namespace().namespace(), None);
        assert_ne!(n, n.without_namespace());
        let v6 = SubjectKey::parse(&format!("[::1]:5000/app@{D}")).unwrap();
        assert_eq!(v6.registry(), "[::1]:5000");
    }

    #[test]
    fn parse_refuses_what_is_not_canonical_and_names_the_problem() {
        let e = SubjectKey::parse("docker.io/library/nginx:latest").unwrap_err();
        assert!(e.to_string().contains("names a digest"), "{e}");
        let e = SubjectKey::parse(&format!("nginx@{D}")).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("docker.io/library/nginx@{D}")),
            "{e}"
        );
        let e = SubjectKey::parse(&format!("r.io/app:v1@{D}")).unwrap_err();
        assert!(e.to_string().contains("canonical"), "{e}");
        assert!(SubjectKey::parse(&format!("r.io/App@{D}")).is_err());
        assert!(SubjectKey::parse("r.io/app@md5:abc").is_err());
        let e = SubjectKey::parse(&format!("[Team]r.io/app@{D}")).unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
        assert!(SubjectKey::parse(&format!("r.io/a..b@{D}")).is_err());
        assert!(SubjectKey::parse(&format!("r.io/a-b__c.d/e---f@{D}")).is_ok());
        assert!(!e.is_transient());
    }

    #[test]
    fn namespace_names() {
        for ok in ["a", "team-a", "0", &"a".repeat(63)] {
            assert!(Namespace::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "Team",
            "a b",
            "-a",
            "a-",
            "a.b",
            "ns/x",
            "naïve",
            &"a".repeat(64),
        ] {
            assert!(Namespace::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn equal_keys_hash_alike_and_order_is_by_text_parts() {
        let a = SubjectKey::parse(&format!("r.io/app@{D}")).unwrap();
        let b = SubjectKey::from_parts(None, "r.io", "app", D).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.prehash(), b.prehash());
        let ns = SubjectKey::parse(&format!("[x]r.io/app@{D}")).unwrap();
        assert!(a < ns, "no namespace sorts first");
    }
}
