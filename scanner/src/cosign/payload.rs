//! What a Cosign signature signs: the simple-signing payload of the legacy `.sig` layout, or an
//! in-toto statement inside the DSSE envelope of a Sigstore bundle.
//!
//! Field names are matched case-insensitively, as Go's `encoding/json` (cosign, Ratify) does:
//! the spec writes `Docker-manifest-digest`, cosign writes `docker-manifest-digest`. Two keys
//! that differ only in case make the payload ambiguous and it is rejected.

use serde_json::{Map, Value};

/// The simple-signing payload fields that matter for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: String,
    /// `critical.identity.docker-reference` (informational: not required to match).
    pub docker_reference: Option<String>,
    /// `critical.type`.
    pub claim_type: Option<String>,
}

/// Parses a simple-signing payload. Errors name the missing or malformed field.
pub fn parse_simple_signing(payload: &[u8]) -> Result<SimpleSigning, String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("the signed payload is not JSON: {e}"))?;
    let root = v
        .as_object()
        .ok_or("the signed payload is not a JSON object")?;
    let critical = field(root, "critical")?
        .and_then(Value::as_object)
        .ok_or("the signed payload has no `critical` object")?;
    let image = field(critical, "image")?
        .and_then(Value::as_object)
        .ok_or("the signed payload has no `critical.image` object")?;
    let manifest_digest = field(image, "docker-manifest-digest")?
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the signed payload has no `critical.image.docker-manifest-digest`")?
        .to_owned();
    let docker_reference = match field(critical, "identity")?.and_then(Value::as_object) {
        Some(identity) => field(identity, "docker-reference")?
            .and_then(Value::as_str)
            .map(str::to_owned),
        None => None,
    };
    let claim_type = field(critical, "type")?
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(SimpleSigning {
        manifest_digest,
        docker_reference,
        claim_type,
    })
}

/// The in-toto predicate type cosign (v3, bundle format) uses for image signatures.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The in-toto statement fields that matter for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub predicate_type: String,
    /// `(name, sha256 hex)` of each subject that has a SHA-256 digest.
    pub subjects: Vec<(String, String)>,
}

impl Statement {
    /// True when one subject has SHA-256 `hex`.
    pub fn names_sha256(&self, hex: &str) -> bool {
        self.subjects
            .iter()
            .any(|(_, h)| h.eq_ignore_ascii_case(hex))
    }
}

/// Parses an in-toto statement (v0.1 or v1).
pub fn parse_statement(payload: &[u8]) -> Result<Statement, String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("the DSSE payload is not JSON: {e}"))?;
    let root = v
        .as_object()
        .ok_or("the DSSE payload is not a JSON object")?;
    let ty = root.get("_type").and_then(Value::as_str).unwrap_or("");
    if !ty.starts_with("https://in-toto.io/Statement/") {
        return Err(format!(
            "the DSSE payload is not an in-toto statement (_type {ty:?})"
        ));
    }
    let predicate_type = root
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let subjects = root
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("the in-toto statement has no `subject` list")?
        .iter()
        .filter_map(|s| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("");
            let hex = s.get("digest")?.get("sha256")?.as_str()?;
            Some((name.to_owned(), hex.to_owned()))
        })
        .collect();
    Ok(Statement {
        predicate_type,
        subjects,
    })
}

/// `map[name]` matched case-insensitively; an error when several keys match.
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Value>, String> {
    if let Some(v) = map.get(name) {
        if map.keys().filter(|k| k.eq_ignore_ascii_case(name)).count() > 1 {
            return Err(format!(
                "the signed payload is ambiguous: several keys spell `{name}`"
            ));
        }
        return Ok(Some(v));
    }
    let mut found = map.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| v);
    if found.next().is_some() {
        return Err(format!(
            "the signed payload is ambiguous: several keys spell `{name}`"
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_output_and_spec_spelling() {
        let real = br#"{"critical":{"identity":{"docker-reference":"r.io/app"},"image":{"docker-manifest-digest":"sha256:aa"},"type":"cosign container image signature"},"optional":null}"#;
        let p = parse_simple_signing(real).unwrap();
        assert_eq!(p.manifest_digest, "sha256:aa");
        assert_eq!(p.docker_reference.as_deref(), Some("r.io/app"));
        assert_eq!(
            p.claim_type.as_deref(),
            Some("cosign container image signature")
        );
        let spec = br#"{"Critical":{"Image":{"Docker-manifest-digest":"sha256:bb"}}}"#;
        assert_eq!(
            parse_simple_signing(spec).unwrap().manifest_digest,
            "sha256:bb"
        );
    }

    #[test]
    fn missing_and_ambiguous_fields() {
        let e = parse_simple_signing(br#"{"critical":{"image":{}}}"#).unwrap_err();
        assert!(e.contains("docker-manifest-digest"), "{e}");
        let e = parse_simple_signing(b"hello world").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = parse_simple_signing(
            br#"{"critical":{"image":{"docker-manifest-digest":"sha256:a","Docker-Manifest-Digest":"sha256:b"}}}"#,
        )
        .unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn statements() {
        let s = parse_statement(
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"r.io/app","digest":{"sha256":"AB"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}"#,
        )
        .unwrap();
        assert_eq!(s.predicate_type, COSIGN_SIGN_PREDICATE);
        assert!(s.names_sha256("ab"));
        assert!(!s.names_sha256("cd"));
        assert!(parse_statement(br#"{"_type":"x"}"#).is_err());
    }
}
