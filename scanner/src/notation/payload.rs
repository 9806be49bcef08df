//! The Notary Project payload (`application/vnd.cncf.notary.payload.v1+json`) and the OCI
//! descriptor it signs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only payload content type the Notary Project defines.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// An OCI content descriptor (the fields a Notation payload signs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetArtifact {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl TargetArtifact {
    /// A descriptor with no annotations or artifact type.
    pub fn new(media_type: impl Into<String>, digest: impl Into<String>, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Same content: media type, digest and size equal (annotations are not compared, as in
    /// oras `content.Equal`).
    pub fn same_content(&self, other: &TargetArtifact) -> bool {
        self.media_type == other.media_type
            && self.digest == other.digest
            && self.size == other.size
    }
}

/// Parses the signed payload and returns its `targetArtifact`.
pub(crate) fn parse_payload(bytes: &[u8]) -> Result<TargetArtifact, String> {
    if bytes.is_empty() {
        return Err("the signed payload is empty".into());
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the signed payload is not valid JSON: {e}"))?;
    let target = v
        .get("targetArtifact")
        .ok_or("the signed payload has no \"targetArtifact\"")?;
    let obj = target
        .as_object()
        .ok_or("\"targetArtifact\" in the signed payload is not an object")?;
    let str_field = |k: &str| -> Result<String, String> {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                format!("\"targetArtifact.{k}\" in the signed payload is missing or not a string")
            })
    };
    let size = obj.get("size").and_then(Value::as_u64).ok_or(
        "\"targetArtifact.size\" in the signed payload is missing or not a non-negative integer",
    )?;
    let annotations = match obj.get("annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_string()))
                    .ok_or_else(|| {
                        format!("annotation {k:?} in the signed payload is not a string")
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("\"targetArtifact.annotations\" is not an object".into()),
    };
    Ok(TargetArtifact {
        media_type: str_field("mediaType")?,
        digest: str_field("digest")?,
        size,
        artifact_type: obj
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        annotations,
    })
}
