//! Media types, descriptors, image manifests and indexes, and artifact-type classification.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Digest, RegistryError};

/// Media types this layer deals with.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Notation signature artifact type (or legacy `config.mediaType`).
    pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
    /// Cosign legacy simple-signing layer.
    pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
    /// Sigstore bundle v0.3 artifact type (cosign v3 referrers form).
    pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

    /// Every manifest media type we accept when fetching or resolving.
    pub const MANIFEST_TYPES: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Embedded content (base64), as in the OCI empty descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no artifact type, annotations, data or platform.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
        }
    }
}

/// An OCI (or Docker v2 schema 2) image manifest, including the artifact fields of OCI 1.1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The artifact type: `artifactType` when set, else `config.mediaType` (the legacy Notation form).
    pub fn artifact_type(&self) -> &str {
        match self.artifact_type.as_deref() {
            Some(t) if !t.is_empty() => t,
            _ => &self.config.media_type,
        }
    }
}

/// An OCI image index (or Docker manifest list); also the body of a referrers response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest fetched by digest: the exact bytes (digest verified) and the media type.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

impl Manifest {
    /// True for OCI indexes and Docker manifest lists.
    pub fn is_index(&self) -> bool {
        matches!(
            self.media_type.as_str(),
            media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST
        )
    }

    /// Parses the bytes as an image manifest (OCI or Docker v2).
    pub fn image_manifest(&self) -> Result<ImageManifest, RegistryError> {
        parse_image_manifest(&self.bytes, &self.digest.to_string())
    }

    /// Parses the bytes as an image index (OCI index or Docker manifest list).
    pub fn index(&self) -> Result<ImageIndex, RegistryError> {
        parse_index(&self.bytes, &self.digest.to_string())
    }

    /// The artifact type of an image manifest (`artifactType`, else `config.mediaType`);
    /// for an index, its `artifactType` if any.
    pub fn artifact_type(&self) -> Result<Option<String>, RegistryError> {
        if self.is_index() {
            Ok(self.index()?.artifact_type)
        } else {
            Ok(Some(self.image_manifest()?.artifact_type().to_string()))
        }
    }
}

/// Parses an image manifest; `what` names it in errors.
pub fn parse_image_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidManifest {
        what: what.to_string(),
        reason,
    };
    let m: ImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("not an image manifest: {e}")))?;
    if m.schema_version != 2 {
        return Err(invalid(format!(
            "schemaVersion is {}, expected 2",
            m.schema_version
        )));
    }
    if let Some(mt) = &m.media_type
        && mt != media_type::OCI_MANIFEST
        && mt != media_type::DOCKER_MANIFEST
    {
        return Err(invalid(format!(
            "mediaType {mt:?} is not an image manifest type"
        )));
    }
    Ok(m)
}

/// Parses an image index; `what` names it in errors.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidManifest {
        what: what.to_string(),
        reason,
    };
    let i: ImageIndex =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not an image index: {e}")))?;
    if i.schema_version != 2 {
        return Err(invalid(format!(
            "schemaVersion is {}, expected 2",
            i.schema_version
        )));
    }
    if let Some(mt) = &i.media_type
        && mt != media_type::OCI_INDEX
        && mt != media_type::DOCKER_MANIFEST_LIST
    {
        return Err(invalid(format!("mediaType {mt:?} is not an index type")));
    }
    Ok(i)
}

/// The media type of a `Content-Type` header value, without parameters, lowercased.
pub(crate) fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `mediaType` field of a JSON manifest, if it has one.
pub(crate) fn embedded_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(artifact_type: Option<&str>, config_mt: &str) -> Vec<u8> {
        let mut v = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": config_mt, "digest": Digest::sha256_of(b"{}").to_string(), "size": 2},
            "layers": [],
        });
        if let Some(t) = artifact_type {
            v["artifactType"] = t.into();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn classifies_both_notation_forms() {
        let current = manifest_json(Some(media_type::NOTATION_SIGNATURE), media_type::OCI_EMPTY);
        let legacy = manifest_json(None, media_type::NOTATION_SIGNATURE);
        for bytes in [current, legacy] {
            let m = Manifest {
                digest: Digest::sha256_of(&bytes),
                media_type: media_type::OCI_MANIFEST.into(),
                bytes: bytes.into(),
            };
            assert_eq!(
                m.artifact_type().unwrap().as_deref(),
                Some(media_type::NOTATION_SIGNATURE)
            );
        }
    }

    #[test]
    fn rejects_non_manifests() {
        assert!(parse_image_manifest(b"{\"schemaVersion\":1}", "x").is_err());
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(parse_image_manifest(idx, "x").is_err());
        assert!(parse_index(idx, "x").unwrap().manifests.is_empty());
        assert_eq!(
            bare_media_type("Application/JSON; charset=utf-8"),
            "application/json"
        );
    }
}
