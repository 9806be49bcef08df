//! The Notary Project verification workflow for one signature envelope: trust policy selection,
//! then integrity → authenticity → expiry → authentic timestamp → revocation, each enforced or
//! logged as the policy says; plus the thumbprint pre-filter.
//!
//! Over 600 lines because the workflow is one ordered sequence of validations, as the specification
//! lists them; split, the order would be hidden.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::certs::{self, Certificate, Purpose};
use super::crypto::{self, SignatureAlgorithm};
use super::envelope::{self, Envelope, SigningScheme};
use super::outcome::{
    AppliedPolicy, Failure, SignatureEvidence, SignatureOutcome, SignerFacts, StepResult,
    StepStatus, TimestampEvidence, TrustAnchorRef,
};
use super::payload::{self, PAYLOAD_CONTENT_TYPE, TargetArtifact};
use super::policy::{
    Action, Level, TrustPolicyDocument, TrustPolicyStatement, TrustedIdentity, Validation,
    VerifyTimestamp,
};
use super::timestamp::{self, TsaAnchor, VerifiedTimestamp};
use super::truststore::{TrustStoreType, TrustStores};

/// Message of the revocation step while OCSP/CRL checking is not implemented.
pub const REVOCATION_NOT_IMPLEMENTED: &str = "revocation checking (OCSP/CRL) is not implemented: the revocation status of the signing certificate chain was not checked (neither passed nor failed)";

/// RFC 1123 with numeric zone, as notation prints times.
fn rfc1123(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// What integrity establishes.
struct Integrity {
    env: Envelope,
    chain: Vec<Arc<Certificate>>,
    payload: TargetArtifact,
}

fn check_integrity(
    envelope_bytes: &[u8],
    media_type: &str,
    subject: &TargetArtifact,
) -> Result<Integrity, String> {
    let env = envelope::parse(media_type, envelope_bytes)
        .map_err(|e| format!("unable to parse the signature envelope: {e}"))?;
    let chain = env
        .cert_chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            certs::parse_cached(der)
                .map_err(|e| format!("certificate {i} of the envelope's chain is malformed: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = &chain[0];
    let expected = SignatureAlgorithm::for_key(&leaf.key).map_err(|e| {
        format!(
            "the signing certificate {:?} cannot sign Notation signatures: {e}",
            leaf.subject_string
        )
    })?;
    if expected != env.alg {
        return Err(format!(
            "mismatch between the signature algorithm derived from the signing certificate ({expected}, {} key) and the algorithm specified in the envelope ({})",
            leaf.key.describe(),
            env.alg
        ));
    }
    crypto::verify_envelope_signature(env.alg, &leaf.key, &env.signed_bytes, &env.signature)
        .map_err(|e| format!("signature integrity check failed: {e}"))?;
    certs::validate_chain_cached(&chain, Purpose::CodeSigning)
        .map_err(|e| format!("certificate chain is invalid: {e}"))?;
    if env.content_type != PAYLOAD_CONTENT_TYPE {
        return Err(format!(
            "payload content type {:?} is not supported (expected {PAYLOAD_CONTENT_TYPE})",
            env.content_type
        ));
    }
    let payload = payload::parse_payload(&env.payload)?;
    if let Some(plugin) = &env.verification_plugin {
        return Err(format!(
            "the signature requires verification plugin {plugin:?}: verification plugin not supported by this verifier, so the signature cannot be verified"
        ));
    }
    if !env.unknown_critical.is_empty() {
        return Err(format!(
            "the signature has critical attributes this verifier does not understand: {}",
            env.unknown_critical.join(", ")
        ));
    }
    if !payload.same_content(subject) {
        return Err(format!(
            "content descriptor mismatch: the signature signs {} ({}, {} bytes), not the subject {} ({}, {} bytes)",
            payload.digest,
            payload.media_type,
            payload.size,
            subject.digest,
            subject.media_type,
            subject.size
        ));
    }
    Ok(Integrity {
        env,
        chain,
        payload,
    })
}

fn check_authenticity(
    integ: &Integrity,
    statement: &TrustPolicyStatement,
    stores: &TrustStores,
) -> Result<Vec<TrustAnchorRef>, String> {
    let store_type = match integ.env.scheme {
        SigningScheme::X509 => TrustStoreType::Ca,
        SigningScheme::X509SigningAuthority => TrustStoreType::SigningAuthority,
    };
    let refs: Vec<_> = statement.stores_of_type(store_type).collect();
    if refs.is_empty() {
        return Err(format!(
            "trust policy statement {:?} has no {store_type} trust store, which a {} signature needs",
            statement.name,
            integ.env.scheme.as_str()
        ));
    }
    let mut trusted = Vec::new();
    for r in &refs {
        let certs = stores.store_certs(r.store_type, &r.name).ok_or_else(|| {
            format!(
                "trust store {r} referenced by trust policy statement {:?} does not exist",
                statement.name
            )
        })?;
        trusted.extend(certs.iter().map(|c| (r.to_string(), c)));
    }
    let store_list = refs
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if trusted.is_empty() {
        return Err(format!(
            "no trusted certificates are found to verify authenticity: trust stores {store_list} are empty"
        ));
    }
    let mut anchors = Vec::new();
    for cert in &integ.chain {
        for (store, t) in &trusted {
            if t.der == cert.der {
                anchors.push(TrustAnchorRef {
                    store: store.clone(),
                    sha256: t.sha256.clone(),
                });
            }
        }
    }
    if anchors.is_empty() {
        return Err(format!(
            "signature is not produced by a trusted signer: no certificate of the signing chain (leaf {:?}, root {:?}) is in trust stores {store_list}",
            integ.chain[0].subject_string,
            integ.chain[integ.chain.len() - 1].subject_string
        ));
    }
    if statement
        .trusted_identities
        .iter()
        .any(|i| matches!(i, TrustedIdentity::Any))
    {
        return Ok(anchors);
    }
    let leaf = &integ.chain[0];
    let leaf_map = leaf.subject.identity_map()?;
    let matched = statement.trusted_identities.iter().any(|i| match i {
        TrustedIdentity::X509Subject { attributes, .. } => {
            verdict_crds::dn::is_subset_dn(attributes, &leaf_map)
        }
        TrustedIdentity::Any => true,
    });
    if matched {
        Ok(anchors)
    } else {
        let configured = statement
            .trusted_identities
            .iter()
            .filter_map(|i| match i {
                TrustedIdentity::X509Subject { raw, .. } => Some(format!("{raw:?}")),
                TrustedIdentity::Any => None,
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!(
            "signing certificate subject {:?} does not match the X.509 trusted identities [{configured}] defined in trust policy statement {:?}",
            leaf.subject_string, statement.name
        ))
    }
}

/// Result of the authentic-timestamp validation.
struct TimestampCheck {
    verified: Option<VerifiedTimestamp>,
    /// Certificate validity was judged at the verification time.
    judged_at_now: bool,
}

fn check_authentic_timestamp(
    integ: &Integrity,
    statement: &TrustPolicyStatement,
    stores: &TrustStores,
    now: DateTime<Utc>,
) -> Result<TimestampCheck, String> {
    let chain = &integ.chain;
    if integ.env.scheme == SigningScheme::X509SigningAuthority {
        let t = integ
            .env
            .authentic_signing_time
            .ok_or("the authentic signing time is missing")?;
        for c in chain {
            if !c.valid_at(t) {
                return Err(format!(
                    "certificate {:?} was not valid when the digital signature was produced at {:?} (valid from {:?} to {:?})",
                    c.subject_string,
                    rfc1123(t),
                    rfc1123(c.not_before),
                    rfc1123(c.not_after)
                ));
            }
        }
        return Ok(TimestampCheck {
            verified: None,
            judged_at_now: false,
        });
    }

    let tsa_refs: Vec<_> = statement.stores_of_type(TrustStoreType::Tsa).collect();
    let mut perform = !tsa_refs.is_empty();
    if perform && statement.verify_timestamp() == VerifyTimestamp::AfterCertExpiry {
        perform = chain.iter().any(|c| now > c.not_after);
    }
    if !perform {
        for c in chain {
            if now < c.not_before {
                return Err(format!(
                    "verification time is before certificate {:?} validity period, it will be valid from {:?}",
                    c.subject_string,
                    rfc1123(c.not_before)
                ));
            }
            if now > c.not_after {
                return Err(format!(
                    "certificate {:?} is not valid anymore, it was expired at {:?}, and no trusted timestamp proves the signature was made before (configure a tsa trust store to verify RFC 3161 timestamps)",
                    c.subject_string,
                    rfc1123(c.not_after)
                ));
            }
        }
        return Ok(TimestampCheck {
            verified: None,
            judged_at_now: true,
        });
    }

    let token = integ
        .env
        .timestamp_token
        .as_deref()
        .ok_or("no timestamp countersignature was found in the signature envelope")?;
    let mut anchors = Vec::new();
    for r in &tsa_refs {
        let certs = stores.store_certs(r.store_type, &r.name).ok_or_else(|| {
            format!(
                "tsa trust store {r} referenced by trust policy statement {:?} does not exist",
                statement.name
            )
        })?;
        anchors.extend(certs.iter().map(|c| TsaAnchor {
            store: r.to_string(),
            cert: c.clone(),
        }));
    }
    // The signer's claimed signing time is not compared with the timestamp (notation-go does
    // not either): it is unauthenticated, and the certificate checks below use the timestamp.
    let vt = timestamp::verify(token, &integ.env.signature, &anchors)?;
    for c in chain {
        if vt.lower() < c.not_before {
            return Err(format!(
                "timestamp lower limit {:?} is before certificate {:?} validity period, it will be valid from {:?}",
                rfc1123(vt.lower()),
                c.subject_string,
                rfc1123(c.not_before)
            ));
        }
        if vt.upper() > c.not_after {
            return Err(format!(
                "timestamp upper limit {:?} is after certificate {:?} validity period, it was expired at {:?}",
                rfc1123(vt.upper()),
                c.subject_string,
                rfc1123(c.not_after)
            ));
        }
    }
    Ok(TimestampCheck {
        verified: Some(vt),
        judged_at_now: false,
    })
}

struct Run {
    steps: Vec<StepResult>,
    evidence: SignatureEvidence,
    policy: Option<AppliedPolicy>,
    signer: Option<SignerFacts>,
    now: DateTime<Utc>,
}

impl Run {
    fn record(&mut self, validation: Validation, action: Action, status: StepStatus) -> bool {
        let step = StepResult {
            validation,
            action,
            status,
        };
        let fatal = step.is_enforced_failure();
        self.steps.push(step);
        fatal
    }

    fn fail(self, validation: Option<Validation>, reason: String) -> SignatureOutcome {
        let message = match validation {
            Some(v) => {
                format!("Notation signature verification failed: {v} validation failed: {reason}")
            }
            None => format!("Notation signature verification failed: {reason}"),
        };
        SignatureOutcome {
            verified: false,
            policy: self.policy,
            steps: self.steps,
            failure: Some(Failure { validation, reason }),
            message,
            signer: self.signer,
            evidence: self.evidence,
            valid_until: None,
            evaluated_at: self.now,
        }
    }
}

/// Verifies one Notation signature envelope against the trust policy and trust stores.
///
/// * `envelope` — the signature blob (the signature manifest's single layer), `media_type` its
///   layer media type (`application/jose+json` or `application/cose`).
/// * `subject` — the descriptor of the manifest being verified (the signed payload must match).
/// * `artifact_reference` — `registry/repository@digest`, used to select the trust policy.
/// * `now` — the verification time (inject it; production passes `Utc::now()`).
///
/// A bad or untrusted signature is a failed outcome, never an error. A `skip` statement yields a
/// verified outcome whose steps are all skipped (the caller decides what skip means for it).
///
/// Revocation (OCSP/CRL) is not implemented: unless the policy skips it, the revocation step is
/// [`StepStatus::NotChecked`] — it neither passes nor fails, even under `strict` — and the message
/// says so (also for the TSA chain when a timestamp was verified).
pub fn verify_signature(
    envelope: &[u8],
    media_type: &str,
    subject: &TargetArtifact,
    artifact_reference: &str,
    policy: &TrustPolicyDocument,
    stores: &TrustStores,
    now: DateTime<Utc>,
) -> SignatureOutcome {
    let mut run = Run {
        steps: Vec::new(),
        evidence: SignatureEvidence {
            envelope_digest: format!("sha256:{}", crypto::sha256_hex(envelope)),
            envelope_media_type: media_type.to_string(),
            ..SignatureEvidence::default()
        },
        policy: None,
        signer: None,
        now,
    };

    let statement = match policy.applicable_policy(artifact_reference) {
        Ok(s) => s,
        Err(reason) => return run.fail(None, reason),
    };
    run.policy = Some(AppliedPolicy {
        name: statement.name.clone(),
        level: statement.level_description(),
    });

    if statement.level == Level::Skip {
        let msg = format!(
            "trust policy statement {:?} is configured to skip signature verification",
            statement.name
        );
        for v in Validation::ALL {
            run.record(v, Action::Skip, StepStatus::Skipped(msg.clone()));
        }
        return SignatureOutcome {
            verified: true,
            policy: run.policy,
            steps: run.steps,
            failure: None,
            message: format!("Notation signature verification skipped: {msg}"),
            signer: None,
            evidence: run.evidence,
            valid_until: None,
            evaluated_at: now,
        };
    }

    // Integrity (always enforced).
    let integ = match check_integrity(envelope, media_type, subject) {
        Ok(i) => i,
        Err(reason) => {
            run.record(
                Validation::Integrity,
                Action::Enforce,
                StepStatus::Failed(reason.clone()),
            );
            return run.fail(Some(Validation::Integrity), reason);
        }
    };
    run.record(Validation::Integrity, Action::Enforce, StepStatus::Passed);
    let leaf = &integ.chain[0];
    run.signer = Some(SignerFacts {
        issuer: leaf.issuer_string.clone(),
        subject: leaf.subject_string.clone(),
        serial_number: leaf.serial_hex(),
    });
    let e = &mut run.evidence;
    e.envelope_format = Some(integ.env.format);
    e.signing_scheme = Some(integ.env.scheme);
    e.signature_algorithm = Some(integ.env.alg);
    e.cert_chain_sha256 = integ.chain.iter().map(|c| c.sha256.clone()).collect();
    e.signing_time = integ.env.signing_time();
    e.expiry = integ.env.expiry;
    e.chain_not_after = integ.chain.iter().map(|c| c.not_after).min();
    e.payload = Some(integ.payload.clone());

    // Authenticity.
    let action = statement.action(Validation::Authenticity);
    match check_authenticity(&integ, statement, stores) {
        Ok(anchors) => {
            run.evidence.trust_anchors = anchors;
            run.record(Validation::Authenticity, action, StepStatus::Passed);
        }
        Err(reason) => {
            if run.record(
                Validation::Authenticity,
                action,
                StepStatus::Failed(reason.clone()),
            ) {
                return run.fail(Some(Validation::Authenticity), reason);
            }
        }
    }

    // Expiry.
    let expiry_action = statement.action(Validation::Expiry);
    let status = match integ.env.expiry {
        Some(exp) if now >= exp => StepStatus::Failed(format!(
            "digital signature has expired on {:?}",
            rfc1123(exp)
        )),
        Some(_) => StepStatus::Passed,
        None => StepStatus::Skipped("the signature has no expiry time".into()),
    };
    if let StepStatus::Failed(reason) = &status {
        let reason = reason.clone();
        if run.record(Validation::Expiry, expiry_action, status) {
            return run.fail(Some(Validation::Expiry), reason);
        }
    } else {
        run.record(Validation::Expiry, expiry_action, status);
    }

    // Authentic timestamp.
    let ts_action = statement.action(Validation::AuthenticTimestamp);
    let mut judged_at_now = false;
    match check_authentic_timestamp(&integ, statement, stores, now) {
        Ok(check) => {
            judged_at_now = check.judged_at_now;
            if let Some(vt) = check.verified {
                run.evidence.timestamp = Some(TimestampEvidence {
                    gen_time: vt.gen_time,
                    accuracy_micros: vt.accuracy.num_microseconds().unwrap_or(i64::MAX),
                    tsa_chain_sha256: vt.chain.iter().map(|c| c.sha256.clone()).collect(),
                    tsa_anchor: TrustAnchorRef {
                        store: vt.anchor_store.clone(),
                        sha256: vt.chain[vt.chain.len() - 1].sha256.clone(),
                    },
                });
            }
            run.record(
                Validation::AuthenticTimestamp,
                ts_action,
                StepStatus::Passed,
            );
        }
        Err(reason) => {
            if run.record(
                Validation::AuthenticTimestamp,
                ts_action,
                StepStatus::Failed(reason.clone()),
            ) {
                return run.fail(Some(Validation::AuthenticTimestamp), reason);
            }
        }
    }

    // Revocation: not implemented; reported as not checked unless the policy skips it.
    let rev_action = statement.action(Validation::Revocation);
    let rev_status = if rev_action == Action::Skip {
        StepStatus::Skipped("revocation checking is skipped by the trust policy".into())
    } else if run.evidence.timestamp.is_some() {
        StepStatus::NotChecked(format!(
            "{REVOCATION_NOT_IMPLEMENTED}; the TSA chain's revocation status was not checked either"
        ))
    } else {
        StepStatus::NotChecked(REVOCATION_NOT_IMPLEMENTED.into())
    };
    run.record(Validation::Revocation, rev_action, rev_status);

    // Time bound of this positive verdict.
    let mut bounds = Vec::new();
    if expiry_action == Action::Enforce {
        bounds.extend(integ.env.expiry);
    }
    if judged_at_now && ts_action == Action::Enforce {
        bounds.extend(run.evidence.chain_not_after);
    }
    let valid_until = bounds.into_iter().min();

    let signer = run
        .signer
        .as_ref()
        .map(|s| s.subject.clone())
        .unwrap_or_default();
    let mut message = format!(
        "Notation signature verified: signed by {signer:?}, trust policy {:?} ({})",
        statement.name,
        statement.level_description()
    );
    let warnings: Vec<String> = run
        .steps
        .iter()
        .filter(|s| s.is_logged_failure())
        .filter_map(|s| {
            s.failure()
                .map(|m| format!("{} (logged): {m}", s.validation))
        })
        .collect();
    if !warnings.is_empty() {
        message.push_str("; warnings: ");
        message.push_str(&warnings.join("; "));
    }
    SignatureOutcome {
        verified: true,
        policy: run.policy,
        steps: run.steps,
        failure: None,
        message,
        signer: run.signer,
        evidence: run.evidence,
        valid_until,
        evaluated_at: now,
    }
}

/// Decision of the thumbprint pre-filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prefilter {
    /// Download the signature blob and verify it.
    Verify,
    /// The signature cannot verify under the applicable policy; skip downloading it.
    CannotVerify(String),
    /// The applicable policy skips signature verification for this artifact.
    SkippedByPolicy(String),
}

/// Cheap pre-filter on a signature manifest's `io.cncf.notary.x509chain.thumbprint#S256`
/// annotation (JSON array of SHA-256 hex fingerprints of the envelope chain): when authenticity is
/// enforced and no fingerprint is in the policy's `ca`/`signingAuthority` stores, the signature
/// cannot verify. The annotation is unsigned, so it is only ever used to skip work, never to trust.
pub fn prefilter(
    policy: &TrustPolicyDocument,
    stores: &TrustStores,
    artifact_reference: &str,
    thumbprint_annotation: Option<&str>,
) -> Prefilter {
    let statement = match policy.applicable_policy(artifact_reference) {
        Ok(s) => s,
        Err(reason) => return Prefilter::CannotVerify(reason),
    };
    if statement.level == Level::Skip {
        return Prefilter::SkippedByPolicy(format!(
            "trust policy statement {:?} is configured to skip signature verification",
            statement.name
        ));
    }
    if statement.action(Validation::Authenticity) != Action::Enforce {
        return Prefilter::Verify;
    }
    let Some(annotation) = thumbprint_annotation else {
        return Prefilter::Verify;
    };
    let Ok(prints) = serde_json::from_str::<Vec<String>>(annotation) else {
        return Prefilter::Verify;
    };
    if prints.is_empty() {
        return Prefilter::Verify;
    }
    let mut store_names = Vec::new();
    for r in &statement.trust_stores {
        if r.store_type == TrustStoreType::Tsa {
            continue;
        }
        store_names.push(r.to_string());
        if let Some(certs) = stores.store_certs(r.store_type, &r.name)
            && certs
                .iter()
                .any(|c| prints.iter().any(|p| p.eq_ignore_ascii_case(&c.sha256)))
        {
            return Prefilter::Verify;
        }
    }
    Prefilter::CannotVerify(format!(
        "none of the {} certificate(s) of the signature's chain is in trust stores {} of trust policy statement {:?}",
        prints.len(),
        store_names.join(", "),
        statement.name
    ))
}
