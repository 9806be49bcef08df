//! Verifying Cosign signatures of one subject under one trust policy, from bytes already fetched
//! (no I/O here). A bad signature is an outcome with a reason, never an error or a panic.
//!
//! Over 600 lines because one signature's checks in the order cosign performs them (payload, key or
//! certificate, transparency log, bundle); split, the order would be hidden.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::bundle::{self, Content, IN_TOTO_PAYLOAD_TYPE, Material};
use super::fulcio::{self, VerifiedCert};
use super::payload::{self, COSIGN_SIGN_PREDICATE};
use super::policy::{CosignVerifier, KeyInformation, Trust, TrustPolicy, TrustedKey};
use super::rekor::{self, TlogEntry};
use super::timestamp;
use super::{
    ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_RFC3161,
    ANNOTATION_SIGNATURE, MEDIA_TYPE_SIMPLE_SIGNING,
};

/// Signatures examined per signature manifest; more are reported as not examined.
pub const MAX_SIGNATURES_PER_MANIFEST: usize = 64;

/// The image a signature must be about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The reference as the caller wrote it (trust-policy scopes match it).
    pub reference: &'a str,
    /// `registry/repository`.
    pub repository: &'a str,
    /// `sha256:<hex>` of the image manifest.
    pub digest: &'a str,
}

/// One layer of a legacy (`.sig` tag or sig-artifact referrer) signature manifest.
#[derive(Debug, Clone, Copy)]
pub struct SignatureLayer<'a> {
    pub media_type: &'a str,
    /// `sha256:<hex>` of the payload (the layer digest).
    pub digest: &'a str,
    pub payload: &'a [u8],
    pub annotations: &'a BTreeMap<String, String>,
}

/// Ratify's per-key verification entry of a signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVerification {
    pub is_success: bool,
    pub bundle_verified: bool,
    /// The trusted key that was tried; empty (`{}`, as Ratify writes it) for keyless.
    pub key_information: KeyInformation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub(crate) fingerprints: BTreeSet<String>,
    #[serde(skip)]
    pub(crate) valid_until: Option<DateTime<Utc>>,
}

impl KeyVerification {
    fn failed(info: KeyInformation, error: impl Into<String>) -> Self {
        KeyVerification {
            is_success: false,
            bundle_verified: false,
            key_information: info,
            summary: vec![],
            error: Some(error.into()),
            fingerprints: BTreeSet::new(),
            valid_until: None,
        }
    }
}

/// Ratify's per-signature entry: the signature (base64) and one verification per key tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureReport {
    pub signature: String,
    pub verifications: Vec<KeyVerification>,
    /// `sha256:<hex>` of what was signed (payload or bundle).
    #[serde(skip)]
    pub envelope_digest: String,
}

impl SignatureReport {
    pub fn is_success(&self) -> bool {
        self.verifications.iter().any(|v| v.is_success)
    }
}

/// What verification of one signature manifest (or bundle) concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct CosignOutcome {
    pub is_success: bool,
    pub message: String,
    /// Empty on success; an upper-case reason code otherwise.
    pub error_reason: String,
    pub trust_policy: Option<String>,
    pub signatures: Vec<SignatureReport>,
}

/// Evidence of one verified signature: the signed bytes' digest, every key, certificate and
/// log key it rested on, and when it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub envelope_digest: String,
    pub fingerprints: BTreeSet<String>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl CosignOutcome {
    /// Ratify's Cosign report extensions: `{signatures: [...], trustPolicy}`.
    pub fn extensions(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "signatures".into(),
            serde_json::to_value(&self.signatures).unwrap_or(Value::Array(vec![])),
        );
        if let Some(p) = &self.trust_policy {
            m.insert("trustPolicy".into(), json!(p));
        }
        Value::Object(m)
    }

    /// One entry per verified signature (empty when nothing verified).
    pub fn verified_signatures(&self) -> Vec<VerifiedSignature> {
        self.signatures
            .iter()
            .filter(|s| s.is_success())
            .map(|s| {
                let ok = s.verifications.iter().filter(|v| v.is_success);
                VerifiedSignature {
                    envelope_digest: s.envelope_digest.clone(),
                    fingerprints: ok.clone().flat_map(|v| v.fingerprints.clone()).collect(),
                    valid_until: ok.filter_map(|v| v.valid_until).min(),
                }
            })
            .collect()
    }

    fn failure(policy: Option<&TrustPolicy>, reason: &str, message: String) -> Self {
        CosignOutcome {
            is_success: false,
            message,
            error_reason: reason.to_owned(),
            trust_policy: policy.map(|p| p.name.clone()),
            signatures: vec![],
        }
    }

    fn conclude(policy: &TrustPolicy, signatures: Vec<SignatureReport>, extra: &str) -> Self {
        let ok = signatures.iter().any(SignatureReport::is_success);
        let (message, reason) = if ok {
            (
                format!(
                    "Verification success. Valid signatures found under trust policy {}.{extra} See extensions for the verifications performed.",
                    policy.name
                ),
                String::new(),
            )
        } else if signatures.is_empty() {
            (
                format!(
                    "Failed to validate the Cosign signature: the signature artifact holds no signatures.{extra}"
                ),
                "COSIGN_NO_SIGNATURES".to_owned(),
            )
        } else {
            let first = signatures
                .iter()
                .flat_map(|s| &s.verifications)
                .filter_map(|v| v.error.as_deref())
                .next()
                .unwrap_or("no verification succeeded");
            (
                format!(
                    "Failed to validate the Cosign signature: no valid signature under trust policy {} ({first}).{extra}",
                    policy.name
                ),
                "COSIGN_NO_VALID_SIGNATURE".to_owned(),
            )
        };
        CosignOutcome {
            is_success: ok,
            message,
            error_reason: reason,
            trust_policy: Some(policy.name.clone()),
            signatures,
        }
    }
}

/// Result of verifying a bundle referrer.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleOutcome {
    Verified(CosignOutcome),
    /// The bundle signs an attestation (another in-toto predicate), not the image: not a
    /// signature, so not reported.
    NotASignature {
        predicate_type: String,
    },
}

/// Signed content and how to check a key against it.
enum Signed<'a> {
    /// Signature over `message` (simple-signing payload or DSSE PAE).
    Message { message: &'a [u8] },
    /// Signature over an artifact known by digest.
    Prehashed {
        algorithm: &'a str,
        digest: &'a [u8],
    },
}

impl Signed<'_> {
    fn verify(&self, key: &super::keys::PublicKey, signature: &[u8]) -> Option<&'static str> {
        match self {
            Signed::Message { message } => key.verify(message, signature).map(|s| s.name()),
            Signed::Prehashed { algorithm, digest } => key
                .verify_prehashed(algorithm, digest, signature)
                .map(|s| s.name()),
        }
    }
}

/// Everything one signature offers for verification.
struct Candidate<'a> {
    signed: Signed<'a>,
    signature: &'a [u8],
    /// Hex SHA-256 of the payload as transparency-log bodies record it.
    payload_sha256: String,
    /// The payload's claim about the image, checked after the signature.
    claim: Result<(), String>,
    certificate: Option<(Vec<u8>, Vec<Vec<u8>>)>,
    tlog: Vec<Result<TlogEntry, String>>,
    timestamps: Vec<Vec<u8>>,
}

impl CosignVerifier {
    /// Verifies the layers of a legacy signature manifest (`sha256-<hex>.sig` tag, or the same
    /// manifest pushed as a referrer with artifact type `application/vnd.dev.cosign.artifact.sig.v1+json`).
    pub fn verify_layers(
        &self,
        subject: &Subject<'_>,
        layers: &[SignatureLayer<'_>],
        now: DateTime<Utc>,
    ) -> CosignOutcome {
        let Some(policy) = self.policy_for(subject.reference, subject.repository) else {
            return self.no_policy(subject);
        };
        let mut reports = Vec::new();
        for layer in layers.iter().take(MAX_SIGNATURES_PER_MANIFEST) {
            reports.push(self.verify_layer(policy, subject, layer, now));
        }
        let extra = if layers.len() > MAX_SIGNATURES_PER_MANIFEST {
            format!(
                " Only the first {MAX_SIGNATURES_PER_MANIFEST} of {} signatures were examined.",
                layers.len()
            )
        } else {
            String::new()
        };
        CosignOutcome::conclude(policy, reports, &extra)
    }

    /// Verifies a Sigstore bundle referrer (the bundle JSON, `bundle_digest` = its blob digest).
    pub fn verify_bundle(
        &self,
        subject: &Subject<'_>,
        bundle_json: &[u8],
        bundle_digest: &str,
        now: DateTime<Utc>,
    ) -> BundleOutcome {
        let Some(policy) = self.policy_for(subject.reference, subject.repository) else {
            return BundleOutcome::Verified(self.no_policy(subject));
        };
        let b = match bundle::parse(bundle_json) {
            Ok(b) => b,
            Err(e) => {
                return BundleOutcome::Verified(CosignOutcome::failure(
                    Some(policy),
                    "COSIGN_SIGNATURE_INVALID",
                    format!(
                        "Failed to validate the Cosign signature: the Sigstore bundle {bundle_digest} is malformed: {e}"
                    ),
                ));
            }
        };
        let subject_hex = subject.digest.strip_prefix("sha256:").unwrap_or("");
        let pae;
        let (signed, signature, payload_sha256, claim, sig_b64) = match &b.content {
            Content::Dsse {
                payload_type,
                payload,
                signatures,
            } => {
                if payload_type != IN_TOTO_PAYLOAD_TYPE {
                    return BundleOutcome::NotASignature {
                        predicate_type: format!("DSSE payload type {payload_type}"),
                    };
                }
                let claim = match payload::parse_statement(payload) {
                    Ok(st) if st.predicate_type != COSIGN_SIGN_PREDICATE => {
                        return BundleOutcome::NotASignature {
                            predicate_type: st.predicate_type,
                        };
                    }
                    Ok(st) if st.names_sha256(subject_hex) => Ok(()),
                    Ok(st) => Err(format!(
                        "the signed statement names {:?}, not the image {}",
                        st.subjects
                            .iter()
                            .map(|(_, h)| format!("sha256:{h}"))
                            .collect::<Vec<_>>(),
                        subject.digest
                    )),
                    Err(e) => Err(e),
                };
                pae = bundle::pae(payload_type, payload);
                // cosign writes one signature per envelope.
                let sig = &signatures[0];
                (
                    Signed::Message { message: &pae },
                    sig.as_slice(),
                    hex::encode(Sha256::digest(payload)),
                    claim,
                    base64::engine::general_purpose::STANDARD.encode(sig),
                )
            }
            Content::MessageSignature {
                digest_algorithm,
                digest,
                signature,
            } => {
                let claim = if digest_algorithm == "sha256" && hex::encode(digest) == subject_hex {
                    Ok(())
                } else {
                    Err(format!(
                        "the bundle signs {digest_algorithm}:{}, not {} (the subject's digest)",
                        hex::encode(digest),
                        subject.digest
                    ))
                };
                (
                    Signed::Prehashed {
                        algorithm: digest_algorithm,
                        digest,
                    },
                    signature.as_slice(),
                    hex::encode(digest),
                    claim,
                    base64::engine::general_purpose::STANDARD.encode(signature),
                )
            }
        };
        let certificate = match &b.material {
            Material::Certificate { leaf, chain } => Some((leaf.clone(), chain.clone())),
            Material::PublicKey => None,
        };
        let candidate = Candidate {
            signed,
            signature,
            payload_sha256,
            claim,
            certificate,
            tlog: b.tlog_entries.into_iter().map(Ok).collect(),
            timestamps: b.rfc3161,
        };
        let report = SignatureReport {
            signature: sig_b64,
            verifications: self.check(policy, &candidate, now),
            envelope_digest: bundle_digest.to_owned(),
        };
        BundleOutcome::Verified(CosignOutcome::conclude(policy, vec![report], ""))
    }

    fn no_policy(&self, subject: &Subject<'_>) -> CosignOutcome {
        CosignOutcome::failure(
            None,
            "COSIGN_NO_TRUST_POLICY",
            format!(
                "Failed to validate the Cosign signature: no trust policy applies to {} (no scope matches and there is no global `*` policy)",
                subject.reference
            ),
        )
    }

    fn verify_layer(
        &self,
        policy: &TrustPolicy,
        subject: &Subject<'_>,
        layer: &SignatureLayer<'_>,
        now: DateTime<Utc>,
    ) -> SignatureReport {
        let ann = layer.annotations;
        let sig_b64 = ann.get(ANNOTATION_SIGNATURE).cloned().unwrap_or_default();
        let report = |verifications| SignatureReport {
            signature: sig_b64.clone(),
            verifications,
            envelope_digest: layer.digest.to_owned(),
        };
        if layer.media_type != MEDIA_TYPE_SIMPLE_SIGNING {
            return report(vec![KeyVerification::failed(
                KeyInformation::default(),
                format!(
                    "layer {} has media type {}, not a Cosign simple-signing payload",
                    layer.digest, layer.media_type
                ),
            )]);
        }
        if sig_b64.is_empty() {
            return report(vec![KeyVerification::failed(
                KeyInformation::default(),
                format!(
                    "layer {} has no {ANNOTATION_SIGNATURE} annotation",
                    layer.digest
                ),
            )]);
        }
        let signature = match base64::engine::general_purpose::STANDARD.decode(sig_b64.trim()) {
            Ok(s) => s,
            Err(e) => {
                return report(vec![KeyVerification::failed(
                    KeyInformation::default(),
                    format!(
                        "the signature of layer {} is not valid base64: {e}",
                        layer.digest
                    ),
                )]);
            }
        };
        let claim = payload::parse_simple_signing(layer.payload).and_then(|p| {
            if p.manifest_digest == subject.digest {
                Ok(())
            } else {
                Err(format!(
                    "the signed payload is for image {}, not {}",
                    p.manifest_digest, subject.digest
                ))
            }
        });
        let certificate = match ann.get(ANNOTATION_CERTIFICATE) {
            Some(pem) if !pem.trim().is_empty() => match super::trust_root::pem_certificates(pem) {
                Ok(mut certs) => {
                    let leaf = certs.remove(0);
                    let chain = ann
                        .get(ANNOTATION_CHAIN)
                        .and_then(|c| super::trust_root::pem_certificates(c).ok())
                        .unwrap_or_default();
                    Some((leaf, chain))
                }
                Err(e) => {
                    return report(vec![KeyVerification::failed(
                        KeyInformation::default(),
                        format!("the {ANNOTATION_CERTIFICATE} annotation is unusable: {e}"),
                    )]);
                }
            },
            _ => None,
        };
        let tlog = ann
            .get(ANNOTATION_BUNDLE)
            .map(|b| rekor::parse_legacy_bundle(b))
            .into_iter()
            .collect();
        let timestamps = match ann.get(ANNOTATION_RFC3161) {
            Some(t) => match timestamp::parse_cosign_annotation(t) {
                Ok(der) => vec![der],
                Err(e) => {
                    return report(vec![KeyVerification::failed(
                        KeyInformation::default(),
                        format!("the {ANNOTATION_RFC3161} annotation is unusable: {e}"),
                    )]);
                }
            },
            None => vec![],
        };
        let candidate = Candidate {
            signed: Signed::Message {
                message: layer.payload,
            },
            signature: &signature,
            payload_sha256: hex::encode(Sha256::digest(layer.payload)),
            claim,
            certificate,
            tlog,
            timestamps,
        };
        report(self.check(policy, &candidate, now))
    }

    fn check(
        &self,
        policy: &TrustPolicy,
        c: &Candidate<'_>,
        now: DateTime<Utc>,
    ) -> Vec<KeyVerification> {
        match &policy.trust {
            Trust::Keys(keys) => keys.iter().map(|k| self.check_key(policy, k, c)).collect(),
            Trust::Keyless(req) => vec![self.check_keyless(policy, req, c, now)],
        }
    }

    fn check_key(
        &self,
        policy: &TrustPolicy,
        k: &TrustedKey,
        c: &Candidate<'_>,
    ) -> KeyVerification {
        let info = k.info.clone();
        // A certificate attached to a key-based signature must carry the trusted key.
        if let Some((leaf, _)) = &c.certificate
            && let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf)
            && cert.public_key().raw != k.key.spki_der()
        {
            return KeyVerification::failed(
                info,
                "the signature's certificate holds a different key than this trusted key",
            );
        }
        let Some(scheme) = c.signed.verify(&k.key, c.signature) else {
            return KeyVerification::failed(
                info,
                format!(
                    "the signature does not verify with key {} ({})",
                    k.info.evidence_id(),
                    k.key.key_type()
                ),
            );
        };
        if let Err(e) = &c.claim {
            return KeyVerification::failed(info, e.clone());
        }
        let mut summary = vec![
            format!(
                "Signature verified with the trusted {} key ({scheme}).",
                k.key.key_type()
            ),
            "The signed payload names this image digest.".to_owned(),
        ];
        let mut fingerprints =
            BTreeSet::from([k.key.fingerprint().to_owned(), k.info.evidence_id()]);
        let expected = rekor::Expected {
            payload_sha256: &c.payload_sha256,
            signature: c.signature,
            key_spki: Some(k.key.spki_der()),
            cert_der: c.certificate.as_ref().map(|(l, _)| l.as_slice()),
        };
        let bundle_verified = match self.check_tlog(policy, c, &expected) {
            Ok(TlogResult::Verified(entry)) => {
                summary.push(format!(
                    "Transparency-log entry {} verified offline ({}).",
                    entry.log_index, entry.method
                ));
                fingerprints.insert(entry.log_key_fingerprint);
                true
            }
            Ok(TlogResult::NotChecked(note)) => {
                summary.push(note);
                false
            }
            Err(e) => return KeyVerification::failed(info, e),
        };
        for der in &c.timestamps {
            match timestamp::verify(der, c.signature, &self.trust_root) {
                Ok(ts) => {
                    summary.push(format!(
                        "RFC 3161 timestamp verified: signed no later than {}.",
                        ts.gen_time
                    ));
                    fingerprints.extend(ts.fingerprints);
                }
                Err(timestamp::TimestampError::NoAuthority) => summary.push(
                    "An RFC 3161 timestamp is attached; not checked: no timestamp authority is configured (a key-based signature does not need one).".to_owned(),
                ),
                Err(e) => return KeyVerification::failed(info, e.to_string()),
            }
        }
        KeyVerification {
            is_success: true,
            bundle_verified,
            key_information: info,
            summary,
            error: None,
            fingerprints,
            valid_until: None,
        }
    }

    fn check_keyless(
        &self,
        policy: &TrustPolicy,
        req: &fulcio::KeylessRequirements,
        c: &Candidate<'_>,
        now: DateTime<Utc>,
    ) -> KeyVerification {
        let Some((leaf, chain)) = &c.certificate else {
            return KeyVerification::failed(
                KeyInformation::default(),
                format!(
                    "trust policy {} is keyless but the signature carries no signing certificate",
                    policy.name
                ),
            );
        };
        let mut summary = Vec::new();
        let mut fingerprints = BTreeSet::new();
        // The signing time: the log's integratedTime (SET) or a verified RFC 3161 timestamp.
        let mut signing_time: Option<DateTime<Utc>> = None;
        let mut bundle_verified = false;
        let expected = rekor::Expected {
            payload_sha256: &c.payload_sha256,
            signature: c.signature,
            key_spki: None,
            cert_der: Some(leaf),
        };
        match self.check_tlog(policy, c, &expected) {
            Ok(TlogResult::Verified(entry)) => {
                summary.push(format!(
                    "Transparency-log entry {} verified offline ({}).",
                    entry.log_index, entry.method
                ));
                fingerprints.insert(entry.log_key_fingerprint);
                signing_time = entry.integrated_time;
                bundle_verified = true;
            }
            Ok(TlogResult::NotChecked(note)) => {
                if policy.tlog_verify {
                    return KeyVerification::failed(
                        KeyInformation::default(),
                        "the keyless signature carries no transparency-log entry; Verdict does not look entries up online (attach the Rekor bundle, or set `tLogVerify: false` and use RFC 3161 timestamps)",
                    );
                }
                summary.push(note);
            }
            Err(e) => return KeyVerification::failed(KeyInformation::default(), e),
        }
        for der in &c.timestamps {
            match timestamp::verify(der, c.signature, &self.trust_root) {
                Ok(ts) => {
                    summary.push(format!(
                        "RFC 3161 timestamp verified: signed no later than {}.",
                        ts.gen_time
                    ));
                    fingerprints.extend(ts.fingerprints);
                    signing_time.get_or_insert(ts.gen_time);
                }
                Err(timestamp::TimestampError::NoAuthority) => summary.push(
                    "An RFC 3161 timestamp is attached; not checked: no timestamp authority is configured.".to_owned(),
                ),
                Err(e) => return KeyVerification::failed(KeyInformation::default(), e.to_string()),
            }
        }
        let at = signing_time.unwrap_or(now);
        let cert: VerifiedCert =
            match fulcio::verify_certificate(leaf, chain, &self.trust_root, at, req) {
                Ok(c) => c,
                Err(e) => return KeyVerification::failed(KeyInformation::default(), e),
            };
        // With a proven signing time the signature stays valid; without one the certificate
        // was checked against `now` and the verdict ends with it.
        let valid_until = signing_time.is_none().then_some(cert.not_after);
        let Some(scheme) = c.signed.verify(&cert.key, c.signature) else {
            return KeyVerification::failed(
                KeyInformation::default(),
                "the signature does not verify with the signing certificate's key",
            );
        };
        if let Err(e) = &c.claim {
            return KeyVerification::failed(KeyInformation::default(), e.clone());
        }
        summary.insert(
            0,
            format!(
                "Signing certificate chains to the configured Fulcio CA at {at}; identity {:?}, issuer {:?}.",
                cert.identity, cert.issuer
            ),
        );
        summary.insert(
            1,
            format!("Signature verified with the certificate's key ({scheme})."),
        );
        summary.insert(2, "The signed payload names this image digest.".to_owned());
        if let Some(ct) = &cert.ct_log_fingerprint {
            summary.push(
                "The certificate's embedded SCT verified with a configured CT log key.".into(),
            );
            fingerprints.insert(ct.clone());
        }
        fingerprints.extend(cert.fingerprints);
        KeyVerification {
            is_success: true,
            bundle_verified,
            key_information: KeyInformation::default(),
            summary,
            error: None,
            fingerprints,
            valid_until,
        }
    }

    /// Transparency-log checks of a signature under `policy`.
    fn check_tlog(
        &self,
        policy: &TrustPolicy,
        c: &Candidate<'_>,
        expected: &rekor::Expected<'_>,
    ) -> Result<TlogResult, String> {
        if !policy.tlog_verify {
            return Ok(TlogResult::NotChecked(
                "Transparency-log verification is off for this trust policy (tLogVerify: false)."
                    .into(),
            ));
        }
        if c.tlog.is_empty() {
            return Ok(TlogResult::NotChecked(
                "No transparency-log entry is attached; entries are not looked up online.".into(),
            ));
        }
        if self.trust_root.tlogs.is_empty() {
            return Err(
                "the signature carries a transparency-log entry but no Rekor public key is configured to check it; configure the Sigstore trusted root or set `tLogVerify: false`".into(),
            );
        }
        let mut problems = Vec::new();
        for entry in &c.tlog {
            let result = entry.as_ref().map_err(Clone::clone).and_then(|e| {
                let v = rekor::verify_entry(e, &self.trust_root)?;
                rekor::check_body(e, expected)?;
                Ok(v)
            });
            match result {
                Ok(v) => return Ok(TlogResult::Verified(v)),
                Err(e) => problems.push(e),
            }
        }
        Err(format!(
            "the transparency-log entry does not verify: {}",
            problems.join("; ")
        ))
    }
}

enum TlogResult {
    Verified(rekor::VerifiedEntry),
    NotChecked(String),
}
