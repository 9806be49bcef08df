//! Image references and repositories: distribution's reference grammar with Docker-style
//! normalisation (`nginx` → `docker.io/library/nginx:latest`); digests are validated with [`Digest`].

use std::fmt;
use std::str::FromStr;

use super::{Digest, RegistryError};

/// The registry host clients talk to for Docker Hub references (`docker.io`).
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A repository in a registry: `registry` is `host[:port]` as written in references (`docker.io` for
/// Docker Hub), `name` the path (`library/nginx`, `a/b/c`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    registry: String,
    name: String,
}

impl Repository {
    /// A repository after validating the registry host and the name (distribution's name grammar).
    pub fn new(registry: &str, name: &str) -> Result<Self, RegistryError> {
        validate_registry(registry)?;
        validate_name(name).map_err(|reason| RegistryError::InvalidReference {
            input: format!("{registry}/{name}"),
            reason,
        })?;
        Ok(Repository {
            registry: registry.to_ascii_lowercase(),
            name: name.to_string(),
        })
    }

    /// The registry as written in references (`docker.io`, `myacr.azurecr.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host this client sends requests to (`registry-1.docker.io` for `docker.io`).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The repository path inside the registry.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Maps a registry as written in references to the host serving its API.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API_HOST,
        other => other,
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Repository({self})")
    }
}

/// A normalised image reference: repository plus tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parses and normalises a reference the way Docker does (`nginx` → `docker.io/library/nginx:latest`).
    ///
    /// Distribution's reference grammar, by hand rather than through oci-client's regex: the
    /// regex's per-thread matching caches held ~15 MiB of a serving process (benches/README.md,
    /// "Memory"). tests/reference_oracle.rs checks that both accept and produce the same references.
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidReference {
            input: input.to_string(),
            reason,
        };
        if input.trim() != input || input.is_empty() {
            return Err(invalid(
                "a reference must be non-empty without surrounding whitespace".into(),
            ));
        }
        let (named, digest) = match input.split_once('@') {
            Some((named, digest)) => (named, Some(Digest::parse(digest)?)),
            None => (input, None),
        };
        // A tag is what follows the last ':' unless a '/' comes after it (then it is a port).
        let (name, tag) = match named.rfind(':') {
            Some(i) if !named[i..].contains('/') => (&named[..i], Some(&named[i + 1..])),
            _ => (named, None),
        };
        // The first path component is a registry when it looks like a host: it has a '.' or a
        // port (or is a bracketed IPv6 address), or is `localhost`; else it is Docker Hub.
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                validate_host(first).map_err(|reason| invalid(reason.into()))?;
                (first, rest)
            }
            _ => ("docker.io", name),
        };
        // Hosts are case-insensitive and kept in lower case (`Repository::new`); Docker Hub's
        // rules must see the same spelling, or `docKer.io/x` would print as a reference that
        // parses differently (found by fuzzing).
        let registry = registry.to_ascii_lowercase();
        let registry = if registry == "index.docker.io" {
            "docker.io"
        } else {
            registry.as_str()
        };
        let library;
        let path = if registry == "docker.io" && !path.contains('/') {
            library = format!("library/{path}");
            &library
        } else {
            path
        };
        // Distribution limits the normalised name (`docker.io/library/...`), not what was typed:
        // a short Docker Hub name can pass 255 characters once normalised (found by fuzzing).
        if registry.len() + 1 + path.len() > 255 {
            return Err(invalid(
                "the registry and repository together have at most 255 characters (after adding docker.io/library/ for Docker Hub names)".into(),
            ));
        }
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| invalid(format!("tag {tag:?}: {reason}")))?;
        }
        validate_name(path).map_err(|reason| {
            invalid(format!(
                "{reason}; expected [registry/]repository[:tag][@sha256:<hex>] in lowercase"
            ))
        })?;
        let repository = Repository::new(registry, path)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageReference {
            repository,
            tag,
            digest,
        })
    }

    /// A reference to `digest` in `repository`.
    pub fn with_digest(repository: Repository, digest: Digest) -> Self {
        ImageReference {
            repository,
            tag: None,
            digest: Some(digest),
        }
    }

    /// A reference to `tag` in `repository`.
    pub fn with_tag(repository: Repository, tag: &str) -> Result<Self, RegistryError> {
        validate_tag(tag).map_err(|reason| RegistryError::InvalidReference {
            input: format!("{repository}:{tag}"),
            reason,
        })?;
        Ok(ImageReference {
            repository,
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when present (it wins over the tag), else the tag.
    pub(crate) fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl FromStr for ImageReference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageReference({self})")
    }
}

fn validate_registry(registry: &str) -> Result<(), RegistryError> {
    let ok = !registry.is_empty()
        && registry.len() <= 255
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        && !registry.starts_with(['.', '-', ':']);
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidReference {
            input: registry.to_string(),
            reason: "a registry is host[:port] (letters, digits, '.', '-')".into(),
        })
    }
}

/// Distribution's host grammar for the registry part of a reference: dot-separated labels of
/// letters, digits and inner '-', or a bracketed IPv6 address, then an optional numeric port.
fn validate_host(host: &str) -> Result<(), &'static str> {
    const WHY: &str = "a registry is host[:port]: dot-separated labels of letters, digits and \
                       inner '-', or [IPv6], then an optional numeric port";
    let port_ok = |port: Option<&str>| {
        port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(WHY)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(WHY)?),
        };
        let v6_ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return if v6_ok && port_ok(port) {
            Ok(())
        } else {
            Err(WHY)
        };
    }
    let (host, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if host.split('.').all(label_ok) && port_ok(port) {
        Ok(())
    } else {
        Err(WHY)
    }
}

/// Distribution's repository name grammar: lowercase components separated by `/`, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. Rejecting anything else also keeps URLs unambiguous.
fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("a repository name has 1 to 255 characters".into());
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid_chars = bytes
            .iter()
            .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'));
        let ends_ok =
            bytes.first().is_some_and(|&b| alnum(b)) && bytes.last().is_some_and(|&b| alnum(b));
        let separators_ok = !component.contains("..")
            && !component.contains("___")
            && !component.contains("._")
            && !component.contains("_.")
            && !component.contains(".-")
            && !component.contains("-.")
            && !component.contains("_-")
            && !component.contains("-_");
        if !(valid_chars && ends_ok && separators_ok) {
            return Err(format!(
                "repository path component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes"
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("a tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_limit_applies_to_the_normalised_name() {
        // 250 characters typed, 260 once `docker.io/` is added: distribution rejects it, and a
        // reference we accepted must print as one we accept.
        let typed = format!("{}/{}", "a".repeat(124), "b".repeat(125));
        assert_eq!(typed.len(), 250);
        let err = ImageReference::parse(&typed).unwrap_err();
        assert!(err.to_string().contains("255"), "{err}");
        let short = format!("{}/{}", "a".repeat(120), "b".repeat(120));
        let r = ImageReference::parse(&short).unwrap();
        assert_eq!(ImageReference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn docker_hub_rules_see_the_registry_in_lower_case() {
        for typed in ["docKer.io/0", "Index.Docker.IO/0", "docker.io/library/0"] {
            let r = ImageReference::parse(typed).unwrap();
            assert_eq!(r.to_string(), "docker.io/library/0:latest", "{typed}");
            assert_eq!(ImageReference::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn docker_style_normalisation() {
        let r = ImageReference::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.repository().api_host(), DOCKER_HUB_API_HOST);
        let r = ImageReference::parse("index.docker.io/foo/bar:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/foo/bar:1");
    }

    #[test]
    fn digest_and_port() {
        let d = Digest::sha256_of(b"x");
        let r = ImageReference::parse(&format!("127.0.0.1:5000/a/b/c:v1@{d}")).unwrap();
        assert_eq!(r.repository().registry(), "127.0.0.1:5000");
        assert_eq!(r.repository().name(), "a/b/c");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.manifest_reference(), d.to_string());
        let r = ImageReference::parse(&format!("myacr.azurecr.io/app@{d}")).unwrap();
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            " nginx",
            "Nginx",
            "reg.io/app@sha256:abc",
            "reg.io/app@md5:0123",
            "reg.io/a//b",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Repository::new("reg.io", "a/../b").is_err());
        assert!(Repository::new("reg.io", "a/b?x=1").is_err());
        assert!(Repository::new("reg.io", "a/b_c/d--e").is_ok());
    }
}
