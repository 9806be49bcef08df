//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the parsers that read
//! bytes from registries, reached the way verification reaches them. Not API.

use crate::registry::{parse_image_manifest, parse_index};

/// A Notation signature envelope: the first byte picks JWS (even) or COSE (odd), the rest is
/// the envelope; a parsed envelope's payload goes through the payload parser, as in verification.
pub fn notation_envelope(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let media_type = if pick % 2 == 0 {
        crate::notation::MEDIA_TYPE_JWS
    } else {
        crate::notation::MEDIA_TYPE_COSE
    };
    if let Ok(envelope) = crate::notation::envelope::parse(media_type, bytes) {
        let _ = envelope.signing_time();
        let _ = crate::notation::payload::parse_payload(&envelope.payload);
    }
}

/// A Cosign payload: simple signing and in-toto statement.
pub fn cosign_payload(data: &[u8]) {
    let _ = crate::cosign::parse_simple_signing(data);
    let _ = crate::cosign::payload::parse_statement(data);
}

/// A manifest, or a referrers / index document.
pub fn registry_document(data: &[u8]) {
    if let Ok(m) = parse_image_manifest(data, "fuzz") {
        let _ = m.artifact_type();
    }
    let _ = parse_index(data, "fuzz");
}
