//! The verification pipeline: reference → subject descriptor → referrers (plus Cosign's
//! `sha256-<hex>.sig` tag when the Store has `cosignEnabled`) → the first verifier that handles
//! each referrer's artifact type → Ratify-shaped reports + evidence → the config policy's
//! decision.
//!
//! Registry failures that a retry may fix (down, throttled, timed out, credentials) are returned
//! as `Err` — never turned into a deny and never into "unsigned". A failure that is a property of
//! the artifact (malformed signature manifest, digest mismatch, oversized blob) becomes a failed
//! report for that referrer.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tracing::{Instrument, debug, info_span};

use crate::Error;
use crate::cosign::{self, CosignVerifier};
use crate::notation::{self, Prefilter};
use crate::registry::{Descriptor, ImageReference, RegistryClient, RegistryError, Repository};
use crate::report::{Evidence, VerificationResult, VerifierReport};
use crate::trust::{TrustConfig, VerifierConfig, VerifierKind};

/// How many referrers are verified concurrently for one subject.
const REFERRER_CONCURRENCY: usize = 4;

/// A referrer's report, with the evidence of every signature that verified.
type ReferrerReport = (VerifierReport, Vec<Evidence>);

/// Verifies images against one trust configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ImageVerifier {
    registry: RegistryClient,
    trust: Arc<TrustConfig>,
}

/// The subject being verified, resolved to a digest.
#[derive(Debug, Clone)]
struct Subject {
    /// As the caller wrote it (reported as Ratify's `subject`).
    original: String,
    repository: Repository,
    descriptor: Descriptor,
}

impl Subject {
    /// `registry/repository@digest`: what trust policy scopes are matched against.
    fn pinned(&self) -> String {
        format!("{}@{}", self.repository, self.descriptor.digest)
    }
}

impl ImageVerifier {
    pub fn new(registry: RegistryClient, trust: Arc<TrustConfig>) -> Self {
        ImageVerifier { registry, trust }
    }

    pub fn trust(&self) -> &TrustConfig {
        &self.trust
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    /// Verify `reference` (a tag is resolved to its digest first) at time `now`.
    pub async fn verify(
        &self,
        reference: &ImageReference,
        now: DateTime<Utc>,
    ) -> Result<VerificationResult, Error> {
        let original = reference.to_string();
        if !self.trust.unavailable.is_empty() {
            // Verifying against key material that could not be fetched would deny what the
            // real keys allow: no verdict instead, until the material arrives.
            return Err(crate::trust::TrustConfigError::Unavailable {
                reasons: self.trust.unavailable.clone(),
            }
            .into());
        }
        let span = info_span!("verify", subject = %original);
        async move {
            let descriptor = match self.registry.resolve(reference).await {
                Ok(d) => d,
                Err(RegistryError::NotFound { .. }) => {
                    return Ok(self.subject_failure(
                        &original,
                        reference
                            .digest()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        format!("image {original} was not found in the registry"),
                        crate::report::ERROR_SUBJECT_NOT_FOUND,
                        "Check the image reference; the tag or digest does not exist.",
                        now,
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let subject = Subject {
                original,
                repository: reference.repository().clone(),
                descriptor,
            };
            self.verify_subject(&subject, now).await
        }
        .instrument(span)
        .await
    }

    async fn verify_subject(
        &self,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<VerificationResult, Error> {
        // Cosign's legacy signatures live under a tag, not in the referrers list; both lookups
        // run at once. Either failing (outage, throttling) fails the whole verification.
        let cosign_tag = async {
            if self.trust.store.cosign_enabled {
                self.registry
                    .cosign_signature_tag(&subject.repository, &subject.descriptor.digest)
                    .await
            } else {
                Ok(None)
            }
        };
        let (referrers, cosign_tag) = futures::future::join(
            self.registry
                .referrers(&subject.repository, &subject.descriptor.digest, None),
            cosign_tag,
        )
        .await;
        let referrers = referrers?;
        let mut candidates = referrers.manifests.clone();
        if let Some(mut sig) = cosign_tag? {
            // The `.sig` manifest is a plain image manifest; Ratify reports it under this type.
            sig.artifact_type = Some(cosign::ARTIFACT_TYPE_SIGNATURE.to_owned());
            if !candidates.iter().any(|c| c.digest == sig.digest) {
                candidates.push(sig);
            }
        }
        debug!(
            count = referrers.manifests.len(),
            truncated = referrers.truncated,
            source = ?referrers.source,
            cosign_tag = candidates.len() > referrers.manifests.len(),
            "referrers discovered"
        );

        // Futures are built eagerly so the stream holds no borrowing closure (keeps the
        // returned future `Send` for any caller lifetime).
        let pending: Vec<_> = candidates
            .iter()
            .map(|referrer| self.verify_referrer(subject, referrer, now))
            .collect();
        let outcomes: Vec<Result<Option<ReferrerReport>, Error>> = futures::stream::iter(pending)
            .buffered(REFERRER_CONCURRENCY)
            .collect()
            .await;

        let mut reports = Vec::new();
        let mut evidence = Vec::new();
        for outcome in outcomes {
            if let Some((report, ev)) = outcome? {
                reports.push(report);
                evidence.extend(ev);
            }
        }
        if reports.is_empty() {
            let mut message = format!(
                "No verification results for the artifact {}. Ensure verifiers are properly configured and that artifact metadata is attached",
                subject.original
            );
            if referrers.truncated {
                message.push_str(&format!(
                    " (only the first {} referrers were examined)",
                    referrers.manifests.len()
                ));
            }
            return Ok(self.subject_failure(
                &subject.original,
                subject.descriptor.digest.to_string(),
                message.clone(),
                crate::report::ERROR_NO_VERIFIER_REPORT,
                "Sign the image, or configure a Verifier whose artifactTypes match its signatures.",
                now,
            ));
        }
        Ok(VerificationResult::decide(
            subject.original.clone(),
            subject.descriptor.digest.to_string(),
            reports,
            evidence,
            &self.trust.policy,
            self.trust.fingerprint.to_string(),
            now,
        ))
    }

    fn subject_failure(
        &self,
        original: &str,
        digest: String,
        message: String,
        reason: &str,
        remediation: &str,
        now: DateTime<Utc>,
    ) -> VerificationResult {
        VerificationResult::decide(
            original.to_owned(),
            digest,
            vec![VerifierReport::subject_failure(
                original,
                message,
                reason,
                remediation,
            )],
            vec![],
            &self.trust.policy,
            self.trust.fingerprint.to_string(),
            now,
        )
    }

    /// One referrer: `None` when no configured verifier handles its artifact type.
    async fn verify_referrer(
        &self,
        subject: &Subject,
        referrer: &Descriptor,
        now: DateTime<Utc>,
    ) -> Result<Option<ReferrerReport>, Error> {
        // The referrers API reports artifactType; a tag-schema index written by an old client may
        // not, and a registry that lists config.mediaType instead of the manifest's artifactType
        // (go-containerregistry's, `crane registry serve`) reports the empty config type for
        // every artifact whose config is empty, as cosign v3's bundles are. Then only the
        // manifest itself says what it is (cosign reads it there too).
        let mut manifest = None;
        let listed = referrer
            .artifact_type
            .as_deref()
            .filter(|t| !t.is_empty() && *t != crate::registry::media_type::OCI_EMPTY);
        let artifact_type = match listed {
            Some(t) => t.to_owned(),
            None => {
                let m = self
                    .registry
                    .fetch_manifest(&subject.repository, &referrer.digest)
                    .await;
                match m.and_then(|m| m.image_manifest()) {
                    Ok(m) => {
                        let t = m.artifact_type().to_owned();
                        manifest = Some(m);
                        t
                    }
                    Err(e) if e.is_transient() => return Err(e.into()),
                    Err(e) => {
                        debug!(referrer = %referrer.digest, error = %e, "skipping unreadable referrer");
                        return Ok(None);
                    }
                }
            }
        };
        let Some(verifier) = self.trust.verifier_for(&artifact_type) else {
            return Ok(None);
        };
        let report = |ok: bool, message: String, reason: &str, extensions| VerifierReport {
            subject: subject.original.clone(),
            is_success: ok,
            verifier_name: verifier.name.clone(),
            verifier_type: verifier.verifier_type.clone(),
            reference_digest: referrer.digest.to_string(),
            artifact_type: artifact_type.clone(),
            message,
            error_reason: reason.to_owned(),
            remediation: String::new(),
            extensions,
            nested_results: vec![],
        };
        let result = match &verifier.kind {
            VerifierKind::Notation { policy, stores } => {
                self.verify_notation(subject, referrer, manifest, verifier, policy, stores, now)
                    .await
            }
            VerifierKind::Cosign { verifier: cosign } => {
                self.verify_cosign(
                    subject,
                    referrer,
                    manifest,
                    &artifact_type,
                    verifier,
                    cosign,
                    now,
                )
                .await
            }
        };
        match result {
            Ok(ReferrerResult::Verified {
                message,
                extensions,
                evidence,
            }) => Ok(Some((report(true, message, "", extensions), evidence))),
            Ok(ReferrerResult::Failed {
                message,
                reason,
                extensions,
            }) => Ok(Some((report(false, message, &reason, extensions), vec![]))),
            Ok(ReferrerResult::NotApplicable) => Ok(None),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => Ok(Some((
                report(
                    false,
                    format!(
                        "signature artifact {} could not be read: {e}",
                        referrer.digest
                    ),
                    "SIGNATURE_ARTIFACT_INVALID",
                    None,
                ),
                vec![],
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn verify_notation(
        &self,
        subject: &Subject,
        referrer: &Descriptor,
        manifest: Option<crate::registry::ImageManifest>,
        verifier: &VerifierConfig,
        policy: &notation::TrustPolicyDocument,
        stores: &notation::TrustStores,
        now: DateTime<Utc>,
    ) -> Result<ReferrerResult, Error> {
        let manifest = match manifest {
            Some(m) => m,
            None => self
                .registry
                .fetch_manifest(&subject.repository, &referrer.digest)
                .await?
                .image_manifest()?,
        };
        // A tag-schema index is maintained by pushers, not the registry: trust only a manifest
        // that names this subject.
        if manifest.subject.as_ref().map(|s| &s.digest) != Some(&subject.descriptor.digest) {
            return Ok(ReferrerResult::Failed {
                message: format!(
                    "signature manifest {} does not name {} as its subject",
                    referrer.digest, subject.descriptor.digest
                ),
                reason: "SIGNATURE_SUBJECT_MISMATCH".into(),
                extensions: None,
            });
        }
        let [layer] = manifest.layers.as_slice() else {
            return Ok(ReferrerResult::Failed {
                message: format!(
                    "signature manifest {} has {} layers; a Notation signature has exactly one",
                    referrer.digest,
                    manifest.layers.len()
                ),
                reason: "SIGNATURE_ARTIFACT_INVALID".into(),
                extensions: None,
            });
        };
        let pinned = subject.pinned();
        let thumbprints = manifest
            .annotations
            .get(notation::THUMBPRINT_ANNOTATION)
            .map(String::as_str);
        match notation::prefilter(policy, stores, &pinned, thumbprints) {
            Prefilter::Verify => {}
            Prefilter::CannotVerify(reason) => {
                return Ok(ReferrerResult::Failed {
                    message: format!(
                        "signature {} cannot verify under verifier {}: {reason}",
                        referrer.digest, verifier.name
                    ),
                    reason: "SIGNATURE_UNTRUSTED".into(),
                    extensions: None,
                });
            }
            Prefilter::SkippedByPolicy(reason) => {
                return Ok(ReferrerResult::Failed {
                    message: reason,
                    reason: "VERIFICATION_SKIPPED".into(),
                    extensions: None,
                });
            }
        }
        let envelope = self.registry.fetch_blob(&subject.repository, layer).await?;
        let subject_descriptor = notation::TargetArtifact::new(
            subject.descriptor.media_type.clone(),
            subject.descriptor.digest.to_string(),
            subject.descriptor.size,
        );
        let outcome = notation::verify_signature(
            &envelope,
            &layer.media_type,
            &subject_descriptor,
            &pinned,
            policy,
            stores,
            now,
        );
        let extensions = outcome
            .signer
            .as_ref()
            .map(|s| json!({ "Issuer": s.issuer, "SN": s.subject }));
        if !outcome.verified {
            let reason = match outcome.failure.as_ref().and_then(|f| f.validation) {
                Some(v) => format!("NOTATION_{}_FAILURE", v.as_str().to_uppercase()),
                None => "NOTATION_NO_APPLICABLE_TRUST_POLICY".into(),
            };
            return Ok(ReferrerResult::Failed {
                message: format!(
                    "Failed to verify signature with digest {}: {}",
                    referrer.digest, outcome.message
                ),
                reason,
                extensions,
            });
        }
        let ev = &outcome.evidence;
        let mut fingerprints: BTreeSet<String> = ev
            .cert_chain_sha256
            .iter()
            .chain(ev.trust_anchors.iter().map(|a| &a.sha256))
            .map(|h| format!("sha256:{}", h.trim_start_matches("sha256:")))
            .collect();
        if let Some(ts) = &ev.timestamp {
            fingerprints.extend(
                ts.tsa_chain_sha256
                    .iter()
                    .chain(std::iter::once(&ts.tsa_anchor.sha256))
                    .map(|h| format!("sha256:{}", h.trim_start_matches("sha256:"))),
            );
        }
        Ok(ReferrerResult::Verified {
            message: outcome.message.clone(),
            extensions,
            evidence: vec![Evidence {
                verifier_name: verifier.name.clone(),
                artifact_type: notation::ARTIFACT_TYPE_SIGNATURE.to_owned(),
                reference_digest: referrer.digest.to_string(),
                envelope_digest: ev.envelope_digest.clone(),
                fingerprints,
                valid_until: outcome.valid_until,
            }],
        })
    }

    /// A Cosign signature manifest (legacy layers) or Sigstore bundle referrer.
    #[allow(clippy::too_many_arguments)]
    async fn verify_cosign(
        &self,
        subject: &Subject,
        referrer: &Descriptor,
        manifest: Option<crate::registry::ImageManifest>,
        artifact_type: &str,
        verifier: &VerifierConfig,
        cosign: &CosignVerifier,
        now: DateTime<Utc>,
    ) -> Result<ReferrerResult, Error> {
        let manifest = match manifest {
            Some(m) => m,
            None => self
                .registry
                .fetch_manifest(&subject.repository, &referrer.digest)
                .await?
                .image_manifest()?,
        };
        // Referrers name their subject; the `.sig` tag form has none (its payload binds the digest).
        if let Some(s) = &manifest.subject
            && s.digest != subject.descriptor.digest
        {
            return Ok(ReferrerResult::Failed {
                message: format!(
                    "signature manifest {} does not name {} as its subject",
                    referrer.digest, subject.descriptor.digest
                ),
                reason: "SIGNATURE_SUBJECT_MISMATCH".into(),
                extensions: None,
            });
        }
        let repository = subject.repository.to_string();
        let digest = subject.descriptor.digest.to_string();
        let target = cosign::Subject {
            reference: &subject.original,
            repository: &repository,
            digest: &digest,
        };
        let mut note = String::new();
        let outcome = if artifact_type.starts_with(cosign::BUNDLE_MEDIA_TYPE_PREFIX) {
            let [layer] = manifest.layers.as_slice() else {
                return Ok(ReferrerResult::Failed {
                    message: format!(
                        "Sigstore bundle manifest {} has {} layers; a bundle artifact has exactly one",
                        referrer.digest,
                        manifest.layers.len()
                    ),
                    reason: "SIGNATURE_ARTIFACT_INVALID".into(),
                    extensions: None,
                });
            };
            let bytes = self.registry.fetch_blob(&subject.repository, layer).await?;
            match cosign.verify_bundle(&target, &bytes, &layer.digest.to_string(), now) {
                cosign::BundleOutcome::Verified(o) => o,
                cosign::BundleOutcome::NotASignature { predicate_type } => {
                    debug!(referrer = %referrer.digest, %predicate_type, "bundle is an attestation, not a signature");
                    return Ok(ReferrerResult::NotApplicable);
                }
            }
        } else {
            let layers = &manifest.layers;
            let examined = &layers[..layers.len().min(cosign::MAX_SIGNATURES_PER_MANIFEST)];
            if examined.len() < layers.len() {
                note = format!(
                    " Only the first {} of {} signatures were examined.",
                    examined.len(),
                    layers.len()
                );
            }
            // Built eagerly, as above, so the returned future stays `Send`.
            let fetches: Vec<_> = examined
                .iter()
                .map(|l| self.registry.fetch_blob(&subject.repository, l))
                .collect();
            let blobs: Vec<bytes::Bytes> = futures::stream::iter(fetches)
                .buffered(REFERRER_CONCURRENCY)
                .try_collect()
                .await?;
            let digests: Vec<String> = examined.iter().map(|l| l.digest.to_string()).collect();
            let layers: Vec<cosign::SignatureLayer<'_>> = examined
                .iter()
                .zip(&blobs)
                .zip(&digests)
                .map(|((l, payload), digest)| cosign::SignatureLayer {
                    media_type: &l.media_type,
                    digest,
                    payload,
                    annotations: &l.annotations,
                })
                .collect();
            cosign.verify_layers(&target, &layers, now)
        };
        let extensions = Some(outcome.extensions());
        if !outcome.is_success {
            return Ok(ReferrerResult::Failed {
                message: format!("{}{note}", outcome.message),
                reason: outcome.error_reason,
                extensions,
            });
        }
        let evidence = outcome
            .verified_signatures()
            .into_iter()
            .map(|v| Evidence {
                verifier_name: verifier.name.clone(),
                artifact_type: artifact_type.to_owned(),
                reference_digest: referrer.digest.to_string(),
                envelope_digest: v.envelope_digest,
                fingerprints: v.fingerprints,
                valid_until: v.valid_until,
            })
            .collect();
        Ok(ReferrerResult::Verified {
            message: format!("{}{note}", outcome.message),
            extensions,
            evidence,
        })
    }
}

/// What a verifier concluded about one referrer.
enum ReferrerResult {
    Verified {
        message: String,
        extensions: Option<serde_json::Value>,
        evidence: Vec<Evidence>,
    },
    Failed {
        message: String,
        reason: String,
        extensions: Option<serde_json::Value>,
    },
    /// Not something this verifier reports on (a Sigstore bundle holding an attestation).
    NotApplicable,
}
