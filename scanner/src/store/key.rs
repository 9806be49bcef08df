//! Canonical keys of the store: `[namespace]registry/repository@digest` for verdicts and
//! `registry/repository:tag` for the tag map. Keys must already be normalised (Docker Hub as
//! `docker.io/library/…`); parsing checks the grammar and never guesses.

use std::fmt;
use std::str::FromStr;

use super::StoreError;

/// The subject a verdict belongs to: a manifest digest in a repository, optionally under a
/// Kubernetes namespace (when a namespaced configuration applies, as in Ratify's `[ns]` key prefix).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerdictKey {
    namespace: Option<String>,
    registry: String,
    repository: String,
    digest: String,
}

impl VerdictKey {
    /// A key from its parts after validating each: `registry` is `host[:port]` (lowercased),
    /// `repository` follows the distribution name grammar, `digest` is `sha256:<64 hex>` or
    /// `sha512:<128 hex>` in lowercase, `namespace` is a Kubernetes namespace name.
    pub fn new(
        namespace: Option<&str>,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Self, StoreError> {
        let shown = || {
            let ns = namespace.map(|n| format!("[{n}]")).unwrap_or_default();
            format!("{ns}{registry}/{repository}@{digest}")
        };
        let err = |reason: String| StoreError::InvalidKey {
            what: "verdict key",
            input: shown(),
            reason,
        };
        if let Some(ns) = namespace {
            validate_namespace(ns).map_err(err)?;
        }
        validate_registry(registry).map_err(err)?;
        validate_repository(repository).map_err(err)?;
        validate_digest(digest).map_err(err)?;
        Ok(VerdictKey {
            namespace: namespace.map(str::to_owned),
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            digest: digest.to_owned(),
        })
    }

    /// Parses the canonical form `[namespace]registry/repository@digest` (namespace optional).
    pub fn parse(input: &str) -> Result<Self, StoreError> {
        let err = |reason: &str| StoreError::InvalidKey {
            what: "verdict key",
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (namespace, rest) = split_namespace(input).map_err(|r| err(&r))?;
        let (reference, digest) = rest.rsplit_once('@').ok_or_else(|| {
            err("a verdict key names a digest: registry/repository@sha256:<64 hex digits>")
        })?;
        let (registry, repository) = split_registry(reference).map_err(|r| err(&r))?;
        VerdictKey::new(namespace, registry, repository, digest)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The same subject without a namespace.
    pub fn without_namespace(&self) -> VerdictKey {
        VerdictKey {
            namespace: None,
            ..self.clone()
        }
    }

    /// The canonical string (same as `Display`).
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for VerdictKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "[{ns}]")?;
        }
        write!(f, "{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

impl fmt::Debug for VerdictKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerdictKey({self})")
    }
}

impl FromStr for VerdictKey {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerdictKey::parse(s)
    }
}

/// A tag of a repository, the key of the tag map (`registry/repository:tag`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey {
    registry: String,
    repository: String,
    tag: String,
}

impl TagKey {
    /// A tag key from validated parts (registry lowercased; tag grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
    pub fn new(registry: &str, repository: &str, tag: &str) -> Result<Self, StoreError> {
        let err = |reason: String| StoreError::InvalidKey {
            what: "tag key",
            input: format!("{registry}/{repository}:{tag}"),
            reason,
        };
        validate_registry(registry).map_err(err)?;
        validate_repository(repository).map_err(err)?;
        validate_tag(tag).map_err(err)?;
        Ok(TagKey {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// Parses `registry/repository:tag`.
    pub fn parse(input: &str) -> Result<Self, StoreError> {
        let err = |reason: &str| StoreError::InvalidKey {
            what: "tag key",
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (registry, rest) = split_registry(input).map_err(|r| err(&r))?;
        let (repository, tag) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("a tag key has the form registry/repository:tag"))?;
        TagKey::new(registry, repository, tag)
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

impl fmt::Debug for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TagKey({self})")
    }
}

impl FromStr for TagKey {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TagKey::parse(s)
    }
}

fn split_namespace(input: &str) -> Result<(Option<&str>, &str), String> {
    match input.strip_prefix('[') {
        None => Ok((None, input)),
        Some(rest) => {
            let (ns, rest) = rest
                .split_once(']')
                .ok_or("a namespace prefix is written [namespace] with a closing bracket")?;
            if ns.contains(':') {
                // `[::1]:5000/…` is an IPv6 registry, not a namespace (namespaces have no ':').
                return Ok((None, input));
            }
            Ok((Some(ns), rest))
        }
    }
}

fn split_registry(reference: &str) -> Result<(&str, &str), String> {
    let (registry, repository) = reference.split_once('/').ok_or(
        "missing the registry: write the full reference, e.g. docker.io/library/nginx@sha256:…",
    )?;
    if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
        return Err(format!(
            "{registry:?} is not a registry host: write the full normalised reference, \
             e.g. docker.io/{reference}"
        ));
    }
    Ok((registry, repository))
}

fn validate_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "namespace {ns:?} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        // [ipv6]:port
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry {registry:?}: unterminated IPv6 address"))?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("registry {registry:?}: invalid IPv6 address"));
        }
        match after {
            "" => (None, None),
            p => (
                None,
                Some(p.strip_prefix(':').ok_or_else(|| {
                    format!("registry {registry:?}: expected :port after the IPv6 address")
                })?),
            ),
        }
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let labels_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !labels_ok {
            return Err(format!(
                "registry {registry:?} is not a host name (letters, digits, '-' and '.', optional :port)"
            ));
        }
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && !port.starts_with('0') => {}
            _ => return Err(format!("registry {registry:?}: port must be 1-65535")),
        }
    }
    Ok(())
}

/// Distribution's repository grammar: lowercase path components separated by `/`, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn validate_repository(repository: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "repository {repository:?} does not follow the name grammar \
             (lowercase letters and digits, separated by '.', '_', '__' or '-', components joined by '/')"
        )
    };
    if repository.is_empty() || repository.len() > 255 {
        return Err(bad());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        if bytes.is_empty() {
            return Err(bad());
        }
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(bad());
        }
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            // a separator run: ".", "_", "__" or "-+"
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
            if !ok {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
pub(crate) fn validate_digest(digest: &str) -> Result<(), String> {
    let (alg, hex) = digest.split_once(':').ok_or_else(|| {
        format!("digest {digest:?} must have the form sha256:<64 lowercase hex digits>")
    })?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest {digest:?}: unsupported algorithm {alg:?} (use sha256 or sha512)"
            ));
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "digest {digest:?}: the {alg} part must be {len} lowercase hex digits"
        ));
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn canonical_round_trip_with_and_without_namespace() {
        let k = VerdictKey::new(None, "MyAcr.azurecr.io", "app/web", D).unwrap();
        assert_eq!(k.to_string(), format!("myacr.azurecr.io/app/web@{D}"));
        assert_eq!(VerdictKey::parse(&k.to_string()).unwrap(), k);
        let n = VerdictKey::parse(&format!("[team-a]localhost:5000/app@{D}")).unwrap();
        assert_eq!(n.namespace(), Some("team-a"));
        assert_eq!(n.registry(), "localhost:5000");
        assert_eq!(n.to_string(), format!("[team-a]localhost:5000/app@{D}"));
        assert_eq!(n.without_namespace().namespace(), None);
        let v6 = VerdictKey::parse(&format!("[::1]:5000/app@{D}")).unwrap();
        assert_eq!(v6.registry(), "[::1]:5000");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = VerdictKey::parse("docker.io/library/nginx:latest").unwrap_err();
        assert!(e.to_string().contains("names a digest"), "{e}");
        let e = VerdictKey::parse(&format!("nginx@{D}")).unwrap_err();
        assert!(e.to_string().contains("missing the registry"), "{e}");
        let e = VerdictKey::parse(&format!("library/nginx@{D}")).unwrap_err();
        assert!(e.to_string().contains("docker.io/library/nginx"), "{e}");
        let e = VerdictKey::parse(&format!("r.io/App@{D}")).unwrap_err();
        assert!(e.to_string().contains("name grammar"), "{e}");
        let e = VerdictKey::parse(&format!(
            "r.io/app@{}",
            D.to_uppercase().replace("SHA", "sha")
        ))
        .unwrap_err();
        assert!(e.to_string().contains("lowercase hex"), "{e}");
        let e = VerdictKey::parse("r.io/app@md5:abc").unwrap_err();
        assert!(e.to_string().contains("unsupported algorithm"), "{e}");
        let e = VerdictKey::parse(&format!("[Team]r.io/app@{D}")).unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
        let e = VerdictKey::parse(&format!("r.io:0/app@{D}")).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        assert!(VerdictKey::parse(&format!("r.io/a..b@{D}")).is_err());
        assert!(VerdictKey::parse(&format!("r.io/a//b@{D}")).is_err());
        assert!(VerdictKey::parse(&format!("r.io/a-b__c.d/e---f@{D}")).is_ok());
        assert!(!e.is_transient());
    }

    #[test]
    fn tag_keys() {
        let t = TagKey::parse("r.io/app/web:v1.2_3-x").unwrap();
        assert_eq!(t.tag(), "v1.2_3-x");
        assert_eq!(t.to_string(), "r.io/app/web:v1.2_3-x");
        assert!(TagKey::parse("localhost:5000/app:v1").is_ok());
        assert!(TagKey::parse("r.io/app:-bad").is_err());
        assert!(TagKey::parse("r.io/app").is_err());
    }
}
