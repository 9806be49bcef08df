//! Notation signing for tests and the demo: a JWS envelope (flattened JSON, `notary.x509`) over
//! a subject manifest, and a signature manifest pushed as a referrer of that subject.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::oci::{Descriptor, NOTATION_SIGNATURE, OCI_EMPTY, OciClient};
use crate::pki::{TestCert, notation_thumbprints};

/// Media type of a Notation JWS envelope.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// Content type of the Notation payload.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The annotation listing the SHA-256 thumbprints of the signing chain.
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";

/// `t` as RFC 3339 in UTC with second precision (what notation writes).
fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A Notation JWS envelope signing `subject` with `cert` (a one-certificate chain), with the
/// algorithm Notation requires for the certificate's key and the current time as signing time.
pub fn sign_jws(subject: &Descriptor, cert: &TestCert) -> Result<Vec<u8>> {
    sign_jws_chain(subject, cert, &[cert.der().to_vec()])
}

/// As [`sign_jws`], with `x5c` (DER, leaf first) as the envelope's certificate chain.
pub fn sign_jws_chain(subject: &Descriptor, cert: &TestCert, x5c: &[Vec<u8>]) -> Result<Vec<u8>> {
    let payload = serde_json::to_vec(&json!({"targetArtifact": {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }}))?;
    let alg = cert.key().alg().notation_alg();
    let protected = serde_json::to_vec(&json!({
        "alg": alg.jws_name(),
        "cty": PAYLOAD_CONTENT_TYPE,
        "crit": ["io.cncf.notary.signingScheme"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": rfc3339(time::OffsetDateTime::now_utc()),
    }))?;
    let protected_b64 = URL_SAFE_NO_PAD.encode(protected);
    let payload_b64 = URL_SAFE_NO_PAD.encode(payload);
    let signature = cert
        .sign(alg, format!("{protected_b64}.{payload_b64}").as_bytes())
        .context("signing the Notation JWS payload")?;
    Ok(serde_json::to_vec(&json!({
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {
            "x5c": x5c.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
            "io.cncf.notary.signingAgent": "verdict-testkit",
        },
        "signature": URL_SAFE_NO_PAD.encode(signature),
    }))?)
}

/// Signs `subject` (a manifest in `repo`) with `cert` and pushes the signature manifest as its
/// referrer (artifactType `application/vnd.cncf.notary.signature`, empty config, one JWS layer,
/// the thumbprint annotation). Returns the signature manifest's descriptor.
pub async fn push_notation_signature(
    client: &OciClient,
    repo: &str,
    subject: &Descriptor,
    cert: &TestCert,
) -> Result<Descriptor> {
    push_notation_signature_chain(client, repo, subject, cert, &[cert.der().to_vec()]).await
}

/// As [`push_notation_signature`], signed by `leaf` with `x5c` (DER, leaf first) as the chain.
pub async fn push_notation_signature_chain(
    client: &OciClient,
    repo: &str,
    subject: &Descriptor,
    leaf: &TestCert,
    x5c: &[Vec<u8>],
) -> Result<Descriptor> {
    let envelope = sign_jws_chain(subject, leaf, x5c)?;
    let ders: Vec<&[u8]> = x5c.iter().map(Vec::as_slice).collect();
    let annotations = BTreeMap::from([(
        THUMBPRINT_ANNOTATION.to_string(),
        notation_thumbprints(&ders),
    )]);
    client
        .push_artifact(
            repo,
            subject,
            Some(NOTATION_SIGNATURE),
            OCI_EMPTY,
            vec![(MEDIA_TYPE_JWS.to_string(), envelope)],
            annotations,
        )
        .await
        .with_context(|| {
            format!(
                "pushing the Notation signature of {repo}@{}",
                subject.digest
            )
        })
}
