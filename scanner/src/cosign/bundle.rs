//! Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.1`–`v0.3+json`): the verification
//! material (public-key hint, certificate or chain), transparency-log entries, RFC 3161
//! timestamps, and the signed content (a DSSE envelope — what cosign v3 writes for images — or a
//! message signature over a digest).

use base64::Engine as _;
use serde_json::Value;

use super::rekor::{self, TlogEntry};

/// Bundle media type prefix (every version).
pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// DSSE payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Who signed, as the bundle states it.
#[derive(Debug, Clone)]
pub(crate) enum Material {
    /// Key-based: the bundle only hints at the key; the keys come from the trust policy.
    PublicKey,
    /// Keyless: the signing certificate and any further chain certificates (DER).
    Certificate { leaf: Vec<u8>, chain: Vec<Vec<u8>> },
}

/// What was signed.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Signature over an artifact of which the bundle states the digest.
    MessageSignature {
        /// `sha256`, `sha384` or `sha512`.
        digest_algorithm: String,
        digest: Vec<u8>,
        signature: Vec<u8>,
    },
    /// A DSSE envelope; signatures are over `PAE(payloadType, payload)`.
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signatures: Vec<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    pub material: Material,
    pub tlog_entries: Vec<TlogEntry>,
    /// DER RFC 3161 `TimeStampResp`s.
    pub rfc3161: Vec<Vec<u8>>,
    pub content: Content,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// Parses a bundle; errors name the missing or malformed field.
pub(crate) fn parse(bytes: &[u8]) -> Result<Bundle, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the bundle is not JSON: {e}"))?;
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        return Err(format!(
            "the bundle's mediaType {media_type:?} is not a Sigstore bundle type"
        ));
    }
    let vm = v
        .get("verificationMaterial")
        .ok_or("the bundle has no verificationMaterial")?;
    let material = if let Some(raw) = str_at(vm, &["certificate", "rawBytes"]) {
        Material::Certificate {
            leaf: b64(raw, "verificationMaterial.certificate.rawBytes")?,
            chain: vec![],
        }
    } else if let Some(certs) = vm
        .get("x509CertificateChain")
        .and_then(|c| c.get("certificates"))
        .and_then(Value::as_array)
    {
        let mut ders = certs
            .iter()
            .map(|c| {
                b64(
                    c.get("rawBytes").and_then(Value::as_str).unwrap_or(""),
                    "x509CertificateChain.certificates[].rawBytes",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ders.is_empty() {
            return Err("the bundle's certificate chain is empty".into());
        }
        let leaf = ders.remove(0);
        Material::Certificate { leaf, chain: ders }
    } else if vm.get("publicKey").is_some() {
        Material::PublicKey
    } else {
        return Err(
            "the bundle's verificationMaterial has no certificate, chain or publicKey".into(),
        );
    };
    let require_proof = requires_inclusion_proof(&media_type)?;
    let tlog_entries = vm
        .get("tlogEntries")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| rekor::parse_bundle_entry(e, require_proof))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    let rfc3161 = vm
        .get("timestampVerificationData")
        .and_then(|t| t.get("rfc3161Timestamps"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    b64(
                        t.get("signedTimestamp")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                        "rfc3161Timestamps[].signedTimestamp",
                    )
                })
                .collect()
        })
        .transpose()?
        .unwrap_or_default();

    let content = if let Some(ms) = v.get("messageSignature") {
        let alg = match str_at(ms, &["messageDigest", "algorithm"]).unwrap_or("") {
            "SHA2_256" => "sha256",
            "SHA2_384" => "sha384",
            "SHA2_512" => "sha512",
            other => {
                return Err(format!(
                    "messageSignature digest algorithm {other:?} is not supported"
                ));
            }
        };
        Content::MessageSignature {
            digest_algorithm: alg.to_owned(),
            digest: b64(
                str_at(ms, &["messageDigest", "digest"]).unwrap_or(""),
                "messageSignature.messageDigest.digest",
            )?,
            signature: b64(
                str_at(ms, &["signature"]).ok_or("messageSignature has no signature")?,
                "messageSignature.signature",
            )?,
        }
    } else if let Some(env) = v.get("dsseEnvelope") {
        let signatures = env
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or("the DSSE envelope has no signatures")?
            .iter()
            .map(|s| {
                b64(
                    s.get("sig").and_then(Value::as_str).unwrap_or(""),
                    "dsseEnvelope.signatures[].sig",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() {
            return Err("the DSSE envelope has no signatures".into());
        }
        Content::Dsse {
            payload_type: str_at(env, &["payloadType"]).unwrap_or("").to_owned(),
            payload: b64(
                str_at(env, &["payload"]).ok_or("the DSSE envelope has no payload")?,
                "dsseEnvelope.payload",
            )?,
            signatures,
        }
    } else {
        return Err("the bundle has neither messageSignature nor dsseEnvelope".into());
    };
    Ok(Bundle {
        material,
        tlog_entries,
        rfc3161,
        content,
    })
}

/// Whether a bundle of `media_type` must prove log inclusion with a proof and checkpoint: true
/// from v0.2 on (`…bundle+json;version=0.2`, `…bundle.v0.3+json`, `…bundle+json;version=0.3`),
/// false for v0.1; an unknown version is refused rather than guessed.
fn requires_inclusion_proof(media_type: &str) -> Result<bool, String> {
    let rest = &media_type[BUNDLE_MEDIA_TYPE_PREFIX.len().min(media_type.len())..];
    let version = rest
        .strip_prefix("+json;version=")
        .or_else(|| {
            rest.strip_prefix(".v")
                .and_then(|v| v.strip_suffix("+json"))
        })
        .ok_or_else(|| format!("the bundle's mediaType {media_type:?} names no bundle version"))?;
    match version {
        "0.1" => Ok(false),
        "0.2" | "0.3" => Ok(true),
        other => Err(format!(
            "Sigstore bundle version {other} is not supported (0.1, 0.2 and 0.3 are)"
        )),
    }
}

/// DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn bundle_versions_decide_whether_an_inclusion_proof_is_required() {
        for (media_type, required) in [
            (
                "application/vnd.dev.sigstore.bundle+json;version=0.1",
                false,
            ),
            ("application/vnd.dev.sigstore.bundle+json;version=0.2", true),
            ("application/vnd.dev.sigstore.bundle+json;version=0.3", true),
            ("application/vnd.dev.sigstore.bundle.v0.3+json", true),
        ] {
            assert_eq!(
                requires_inclusion_proof(media_type),
                Ok(required),
                "{media_type}"
            );
        }
        let e =
            requires_inclusion_proof("application/vnd.dev.sigstore.bundle.v0.9+json").unwrap_err();
        assert!(e.contains("0.9 is not supported"), "{e}");
        let e = requires_inclusion_proof("application/vnd.dev.sigstore.bundle+json").unwrap_err();
        assert!(e.contains("names no bundle version"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_field() {
        let e = parse(br#"{"mediaType":"application/json"}"#).unwrap_err();
        assert!(e.contains("mediaType"), "{e}");
        let e = parse(
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("neither messageSignature nor dsseEnvelope"),
            "{e}"
        );
        let b = parse(
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AAEC"}]}}"#,
        )
        .unwrap();
        assert!(matches!(b.material, Material::PublicKey));
        assert!(
            matches!(b.content, Content::Dsse { ref signatures, .. } if signatures[0] == [0, 1, 2])
        );
    }
}
