//! The on-disk form of entries: sled key layout, the versioned postcard encoding and the
//! signature that binds each value to its key.
//!
//! Keys (one sled tree): `e || id` verdict entries, where `id` = first 16 bytes of SHA-256 of the
//! canonical verdict key; `i || id(fingerprint) || bucket` posting lists of entry ids (the
//! fingerprint index, up to 2^16 buckets per fingerprint); `t || registry/repository:tag` tags;
//! `m:…` meta records. Fixed, short keys and one index key per bucket rather than per
//! (fingerprint, subject) keep the number of sled keys near one per verdict, which is what sled's
//! memory grows with.
//!
//! Value = `SCHEMA_VERSION (1 byte) || payload || signature`, where the signature covers
//! `DOMAIN || len(sled key) || sled key || version || payload`: a value copied under another key,
//! a flipped byte or a truncated value all fail the check. Verdict payloads are postcard-encoded
//! private wire structs (not the API model, so the schema only changes on purpose) that also carry
//! the canonical key; `sha256:<hex>` strings are packed as 32 raw bytes, the subject is not
//! repeated where it equals the key (or, in a report, the verdict's subject), and well-known
//! strings (artifact and verifier types) are a one-byte code, so a verdict takes well under half
//! of its JSON size (checked in the tests). Entry size matters for memory: sled keeps whole
//! leaves (8–16 entries) in memory, and many more of them than its cache capacity says under
//! random reads (benches/README.md, "Memory").
//!
//! Version 2 (this one) added the subject and well-known-string packing; a version-1 store is
//! quarantined at open and rebuilt by re-verification like any store this build cannot read.
//!
//! Over 600 lines because the on-disk format (key layout, encoding, signature) is one versioned
//! contract, kept in one file with its tests.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{MissReason, StoredVerdict, SubjectKey, TagEntry, VerdictSigner};
use crate::report::{Evidence, VerificationResult, VerifierReport};

/// Version of the entry encoding, first byte of every value and part of the meta record.
pub const SCHEMA_VERSION: u8 = 2;

const DOMAIN: &[u8] = b"verdict-store/v1\0";

pub(crate) const PREFIX_ENTRY: u8 = b'e';
pub(crate) const PREFIX_INDEX: u8 = b'i';
pub(crate) const PREFIX_TAG: u8 = b't';
pub(crate) const META_SCHEMA: &[u8] = b"m:schema";
pub(crate) const META_COUNT: &[u8] = b"m:count";
/// Present when an index bucket was found unreadable: fingerprint queries then scan all entries.
pub(crate) const META_INDEX_DIRTY: &[u8] = b"m:index-dirty";

/// Length of entry and fingerprint ids (truncated SHA-256).
pub(crate) const ID_LEN: usize = 16;
pub(crate) type Id = [u8; ID_LEN];

fn short_hash(s: &str) -> Id {
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&d[..ID_LEN]);
    id
}

/// `e || id(canonical key)`: fixed-size keys keep sled's pages small (sled splits leaves at 16
/// items, so its memory grows with the number of keys, not their size).
pub(crate) fn entry_key(key: &SubjectKey) -> Vec<u8> {
    entry_key_for_id(&short_hash(&key.to_string()))
}

pub(crate) fn entry_key_for_id(id: &Id) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + ID_LEN);
    k.push(PREFIX_ENTRY);
    k.extend_from_slice(id);
    k
}

pub(crate) fn id_of_entry_key(entry_key: &[u8]) -> Option<Id> {
    entry_key.get(1..1 + ID_LEN)?.try_into().ok()
}

/// `i || id(fingerprint)`: prefix of a fingerprint's posting-list buckets.
pub(crate) fn index_prefix(fingerprint: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + ID_LEN);
    k.push(PREFIX_INDEX);
    k.extend_from_slice(&short_hash(fingerprint));
    k
}

/// `i || id(fingerprint) || first 2 bytes of the entry id`: the posting-list bucket holding
/// `entry_id` for `fingerprint`. With 65,536 buckets a fingerprint with 1 M subjects has ~15 ids
/// (~250 bytes) per bucket, so a write rewrites little; with few subjects most buckets do not exist.
pub(crate) fn index_bucket_key(fingerprint: &str, entry_id: &Id) -> Vec<u8> {
    let mut k = index_prefix(fingerprint);
    k.extend_from_slice(&entry_id[..2]);
    k
}

/// A posting list: sorted entry ids, concatenated.
pub(crate) fn encode_ids(ids: &BTreeSet<Id>) -> Vec<u8> {
    ids.iter().flat_map(|id| id.iter().copied()).collect()
}

pub(crate) fn decode_ids(payload: &[u8]) -> Option<BTreeSet<Id>> {
    if !payload.len().is_multiple_of(ID_LEN) {
        return None;
    }
    payload
        .chunks_exact(ID_LEN)
        .map(|c| c.try_into().ok())
        .collect()
}

pub(crate) fn tag_key(tag: &super::TagKey) -> Vec<u8> {
    let mut k = vec![PREFIX_TAG];
    k.extend_from_slice(tag.to_string().as_bytes());
    k
}

/// Version byte, payload and signature.
pub(crate) fn seal(signer: &VerdictSigner, sled_key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + payload.len() + signer.signature_len());
    value.push(SCHEMA_VERSION);
    value.extend_from_slice(payload);
    let len = (sled_key.len() as u32).to_be_bytes();
    let signed = value.clone();
    signer.sign_into(&[DOMAIN, &len, sled_key, &signed], &mut value);
    value
}

/// Checks the signature and version; returns the payload.
pub(crate) fn unseal<'a>(
    signer: &VerdictSigner,
    sled_key: &[u8],
    value: &'a [u8],
) -> Result<&'a [u8], MissReason> {
    let sig_len = signer.signature_len();
    if value.len() < 1 + sig_len {
        return Err(MissReason::Corrupt);
    }
    let (body, sig) = value.split_at(value.len() - sig_len);
    let len = (sled_key.len() as u32).to_be_bytes();
    if !signer.verify(&[DOMAIN, &len, sled_key, body], sig) {
        return Err(MissReason::BadSignature);
    }
    if body[0] != SCHEMA_VERSION {
        return Err(MissReason::Corrupt);
    }
    Ok(&body[1..])
}

/// The payload without checking the signature: only for cleaning up index entries of a value
/// that is about to be replaced or removed (never for serving).
pub(crate) fn payload_unchecked<'a>(signer: &VerdictSigner, value: &'a [u8]) -> Option<&'a [u8]> {
    let sig_len = signer.signature_len();
    if value.len() < 1 + sig_len || value[0] != SCHEMA_VERSION {
        return None;
    }
    Some(&value[1..value.len() - sig_len])
}

#[derive(Serialize, Deserialize)]
struct Time {
    secs: i64,
    nanos: u32,
}

impl Time {
    fn from(t: &DateTime<Utc>) -> Self {
        Time {
            secs: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        }
    }
    fn to(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.secs, self.nanos)
    }
}

/// A string that is usually `sha256:<64 lowercase hex>`, stored as 32 bytes when it is.
#[derive(Serialize, Deserialize)]
enum Packed {
    Sha256([u8; 32]),
    Text(String),
}

impl Packed {
    fn from(s: &str) -> Self {
        if let Some(h) = s.strip_prefix("sha256:")
            && h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut out = [0u8; 32];
            if hex::decode_to_slice(h, &mut out).is_ok() {
                return Packed::Sha256(out);
            }
        }
        Packed::Text(s.to_owned())
    }
    fn into_string(self) -> String {
        match self {
            Packed::Sha256(b) => format!("sha256:{}", hex::encode(b)),
            Packed::Text(s) => s,
        }
    }
}

/// `name@digest` with the digest packed; anything else as text.
#[derive(Serialize, Deserialize)]
enum Addressed {
    At(String, Packed),
    Text(String),
}

impl Addressed {
    fn from(s: &str) -> Self {
        match s.rsplit_once('@') {
            Some((name, digest)) => Addressed::At(name.to_owned(), Packed::from(digest)),
            None => Addressed::Text(s.to_owned()),
        }
    }
    fn into_string(self) -> String {
        match self {
            Addressed::At(name, digest) => format!("{name}@{}", digest.into_string()),
            Addressed::Text(s) => s,
        }
    }
}

/// A subject stored relative to another string it usually equals.
#[derive(Serialize, Deserialize)]
enum Subject {
    Same,
    Other(Addressed),
}

impl Subject {
    fn relative_to(subject: &str, usual: &str) -> Self {
        if subject == usual {
            Subject::Same
        } else {
            Subject::Other(Addressed::from(subject))
        }
    }
    fn resolve(self, usual: &str) -> String {
        match self {
            Subject::Same => usual.to_owned(),
            Subject::Other(a) => a.into_string(),
        }
    }
}

/// Strings that recur in most verdicts, stored as their index. Append only: an index, once
/// written, means its string for as long as this schema version is read.
const WELL_KNOWN: [&str; 8] = [
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "notation",
    "cosign",
    "verifier-notation",
    "verifier-cosign",
    "application/vnd.oci.image.manifest.v1+json",
];

#[derive(Serialize, Deserialize)]
enum Word {
    Known(u8),
    Text(String),
}

impl Word {
    fn from(s: &str) -> Self {
        match WELL_KNOWN.iter().position(|k| *k == s) {
            Some(i) => Word::Known(i as u8),
            None => Word::Text(s.to_owned()),
        }
    }
    fn into_string(self) -> Option<String> {
        match self {
            Word::Known(i) => WELL_KNOWN.get(usize::from(i)).map(|s| (*s).to_owned()),
            Word::Text(s) => Some(s),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ReportWire {
    /// Relative to the verdict's subject.
    subject: Subject,
    is_success: bool,
    verifier_name: Word,
    verifier_type: Word,
    reference_digest: Packed,
    artifact_type: Word,
    message: String,
    error_reason: String,
    remediation: String,
    /// JSON text of the extensions object (postcard cannot carry an untyped JSON value).
    extensions: Option<String>,
    nested_results: Vec<ReportWire>,
}

impl ReportWire {
    fn from(r: &VerifierReport, verdict_subject: &str) -> Self {
        ReportWire {
            subject: Subject::relative_to(&r.subject, verdict_subject),
            is_success: r.is_success,
            verifier_name: Word::from(&r.verifier_name),
            verifier_type: Word::from(&r.verifier_type),
            reference_digest: Packed::from(&r.reference_digest),
            artifact_type: Word::from(&r.artifact_type),
            message: r.message.clone(),
            error_reason: r.error_reason.clone(),
            remediation: r.remediation.clone(),
            extensions: r.extensions.as_ref().map(|v| v.to_string()),
            nested_results: r
                .nested_results
                .iter()
                .map(|n| ReportWire::from(n, verdict_subject))
                .collect(),
        }
    }
    fn into_report(self, verdict_subject: &str) -> Option<VerifierReport> {
        Some(VerifierReport {
            subject: self.subject.resolve(verdict_subject),
            is_success: self.is_success,
            verifier_name: self.verifier_name.into_string()?,
            verifier_type: self.verifier_type.into_string()?,
            reference_digest: self.reference_digest.into_string(),
            artifact_type: self.artifact_type.into_string()?,
            message: self.message,
            error_reason: self.error_reason,
            remediation: self.remediation,
            extensions: match self.extensions {
                Some(s) => Some(serde_json::from_str(&s).ok()?),
                None => None,
            },
            nested_results: self
                .nested_results
                .into_iter()
                .map(|n| n.into_report(verdict_subject))
                .collect::<Option<_>>()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct EvidenceWire {
    verifier_name: Word,
    artifact_type: Word,
    reference_digest: Packed,
    envelope_digest: Packed,
    fingerprints: Vec<Packed>,
    valid_until: Option<Time>,
}

#[derive(Serialize, Deserialize)]
struct VerdictWire {
    /// The canonical verdict key (entries are stored under a hash of it).
    key: Addressed,
    /// Relative to the key without its `[namespace]` prefix.
    subject: Subject,
    digest: Packed,
    is_success: bool,
    reports: Vec<ReportWire>,
    evidence: Vec<EvidenceWire>,
    trust_config_fingerprint: Packed,
    verified_at: Time,
    expires_at: Option<Time>,
}

pub(crate) fn encode_verdict(
    key: &SubjectKey,
    v: &StoredVerdict,
) -> Result<Vec<u8>, postcard::Error> {
    let r = &v.result;
    let key = key.to_string();
    let wire = VerdictWire {
        key: Addressed::from(&key),
        subject: Subject::relative_to(&r.subject, without_namespace(&key)),
        digest: Packed::from(&r.digest),
        is_success: r.is_success,
        reports: r
            .reports
            .iter()
            .map(|report| ReportWire::from(report, &r.subject))
            .collect(),
        evidence: r
            .evidence
            .iter()
            .map(|e| EvidenceWire {
                verifier_name: Word::from(&e.verifier_name),
                artifact_type: Word::from(&e.artifact_type),
                reference_digest: Packed::from(&e.reference_digest),
                envelope_digest: Packed::from(&e.envelope_digest),
                fingerprints: e.fingerprints.iter().map(|f| Packed::from(f)).collect(),
                valid_until: e.valid_until.as_ref().map(Time::from),
            })
            .collect(),
        trust_config_fingerprint: Packed::from(&r.trust_config_fingerprint),
        verified_at: Time::from(&r.verified_at),
        expires_at: v.expires_at.as_ref().map(Time::from),
    };
    postcard::to_allocvec(&wire)
}

/// The canonical key string and the verdict.
pub(crate) fn decode_verdict(payload: &[u8]) -> Option<(String, StoredVerdict)> {
    let wire: VerdictWire = postcard::from_bytes(payload).ok()?;
    let key = wire.key.into_string();
    let subject = wire.subject.resolve(without_namespace(&key));
    let evidence = wire
        .evidence
        .into_iter()
        .map(|e| {
            Some(Evidence {
                verifier_name: e.verifier_name.into_string()?,
                artifact_type: e.artifact_type.into_string()?,
                reference_digest: e.reference_digest.into_string(),
                envelope_digest: e.envelope_digest.into_string(),
                fingerprints: e
                    .fingerprints
                    .into_iter()
                    .map(Packed::into_string)
                    .collect::<BTreeSet<_>>(),
                valid_until: match e.valid_until {
                    Some(t) => Some(t.to()?),
                    None => None,
                },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let verdict = StoredVerdict {
        result: VerificationResult {
            digest: wire.digest.into_string(),
            is_success: wire.is_success,
            reports: wire
                .reports
                .into_iter()
                .map(|r| r.into_report(&subject))
                .collect::<Option<_>>()?,
            evidence,
            trust_config_fingerprint: wire.trust_config_fingerprint.into_string(),
            verified_at: wire.verified_at.to()?,
            subject,
        },
        expires_at: match wire.expires_at {
            Some(t) => Some(t.to()?),
            None => None,
        },
    };
    Some((key, verdict))
}

/// A canonical key without its `[namespace]` prefix: `registry/repository@digest`.
fn without_namespace(key: &str) -> &str {
    match key.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((_, rest)) => rest,
        None => key,
    }
}

#[derive(Serialize, Deserialize)]
struct TagWire {
    digest: Packed,
    seen_at: Time,
}

pub(crate) fn encode_tag(
    digest: &str,
    seen_at: &DateTime<Utc>,
) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(&TagWire {
        digest: Packed::from(digest),
        seen_at: Time::from(seen_at),
    })
}

pub(crate) fn decode_tag(payload: &[u8]) -> Option<TagEntry> {
    let wire: TagWire = postcard::from_bytes(payload).ok()?;
    Some(TagEntry {
        digest: crate::registry::Digest::parse(&wire.digest.into_string()).ok()?,
        seen_at: wire.seen_at.to()?,
    })
}

/// The store's meta record: which schema and which verdict key the entries use.
#[derive(Serialize, Deserialize)]
pub(crate) struct Meta {
    pub schema_version: u8,
    pub key_id: String,
    created_at: Time,
}

impl Meta {
    pub fn new(key_id: &str, now: &DateTime<Utc>) -> Self {
        Meta {
            schema_version: SCHEMA_VERSION,
            key_id: key_id.to_owned(),
            created_at: Time::from(now),
        }
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at.to()
    }
}

/// The meta record's payload (sealed like any entry, under the key `m:schema`).
pub(crate) fn encode_meta(meta: &Meta) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(meta)
}

pub(crate) fn decode_meta(bytes: &[u8]) -> Option<Meta> {
    postcard::from_bytes(bytes).ok()
}

/// Fingerprints a stored (possibly unverified) payload rests on.
pub(crate) fn fingerprints_of(payload: &[u8]) -> Option<BTreeSet<String>> {
    let (_, v) = decode_verdict(payload)?;
    Some(v.fingerprints())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Evidence, VerificationResult, VerifierReport};
    use serde_json::json;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn rich() -> StoredVerdict {
        let nested = VerifierReport {
            nested_results: vec![],
            ..VerifierReport::subject_failure("r.io/app:v1", "inner", "ERR", "fix it")
        };
        let report = VerifierReport {
            subject: "r.io/app:v1".into(),
            is_success: true,
            verifier_name: "verifier-notation".into(),
            verifier_type: "notation".into(),
            reference_digest: D.into(),
            artifact_type: "application/vnd.cncf.notary.signature".into(),
            message: "signature verification success".into(),
            error_reason: String::new(),
            remediation: String::new(),
            extensions: Some(json!({"Issuer": "CN=x", "SN": "CN=y", "n": [1, 2.5, null]})),
            nested_results: vec![nested],
        };
        let t = DateTime::from_timestamp(1_900_000_000, 123_456_789).unwrap();
        StoredVerdict {
            result: VerificationResult {
                subject: "r.io/app:v1".into(),
                digest: D.into(),
                is_success: true,
                reports: vec![report],
                evidence: vec![Evidence {
                    verifier_name: "verifier-notation".into(),
                    artifact_type: "application/vnd.cncf.notary.signature".into(),
                    reference_digest: D.into(),
                    envelope_digest: "sha512:abc".into(),
                    // One packed, one kept as text (uppercase hex is not the canonical form).
                    fingerprints: [D.to_owned(), D.to_uppercase()].into_iter().collect(),
                    valid_until: Some(t),
                }],
                trust_config_fingerprint: "tc-1".into(),
                verified_at: t,
            },
            expires_at: Some(t),
        }
    }

    /// Encodes `v` under `key`, checks it decodes to exactly the same, and returns the payload
    /// size as a percentage of the result's JSON size.
    fn round_trip_percent_of_json(key: &SubjectKey, v: &StoredVerdict) -> usize {
        let payload = encode_verdict(key, v).unwrap();
        assert_eq!(
            decode_verdict(&payload).unwrap(),
            (key.to_string(), v.clone())
        );
        payload.len() * 100 / serde_json::to_vec(&v.result).unwrap().len()
    }

    #[test]
    fn verdict_round_trips_exactly_and_compactly() {
        let key = SubjectKey::parse(&format!("[ns]r.io/app@{D}")).unwrap();
        let percent = round_trip_percent_of_json(&key, &rich());
        assert!(percent < 70, "{percent} % of the JSON size");
    }

    #[test]
    fn a_digest_subject_is_stored_once() {
        // The common shape: asked by digest, so key, verdict subject and report subjects agree.
        let key = SubjectKey::parse(&format!("r.io/team/app@{D}")).unwrap();
        let subject = format!("r.io/team/app@{D}");
        let mut v = rich();
        v.result.subject = subject.clone();
        v.result.reports[0].subject = subject.clone();
        v.result.reports[0].nested_results[0].subject = "other.io/x:1".into();
        let percent = round_trip_percent_of_json(&key, &v);
        assert!(percent < 50, "{percent} % of the JSON size");
        // Under a namespace the subject is still relative to the key's reference part.
        let namespaced = SubjectKey::parse(&format!("[team-a]r.io/team/app@{D}")).unwrap();
        round_trip_percent_of_json(&namespaced, &v);
        assert_eq!(
            encode_verdict(&namespaced, &v).unwrap().len(),
            encode_verdict(&key, &v).unwrap().len() + "[team-a]".len()
        );
    }

    #[test]
    fn an_unknown_well_known_index_is_unreadable() {
        assert_eq!(Word::Known(3).into_string().as_deref(), Some("notation"));
        assert_eq!(
            Word::from("notation").into_string().as_deref(),
            Some("notation")
        );
        assert!(matches!(Word::from("my-verifier"), Word::Text(_)));
        let report = ReportWire {
            verifier_type: Word::Known(200),
            ..ReportWire::from(&rich().result.reports[0], "r.io/app:v1")
        };
        assert!(report.into_report("r.io/app:v1").is_none());
    }

    #[test]
    fn seal_binds_value_to_key() {
        let s = VerdictSigner::generate(super::super::SignerKind::HmacSha256).unwrap();
        let sealed = seal(&s, b"ekey", b"payload");
        assert_eq!(unseal(&s, b"ekey", &sealed), Ok(&b"payload"[..]));
        assert_eq!(unseal(&s, b"other", &sealed), Err(MissReason::BadSignature));
        assert_eq!(unseal(&s, b"ekey", &sealed[..5]), Err(MissReason::Corrupt));
        let mut flipped = sealed.clone();
        flipped[3] ^= 0x01;
        assert_eq!(unseal(&s, b"ekey", &flipped), Err(MissReason::BadSignature));
        assert!(decode_verdict(b"\x01\x02garbage").is_none());
    }

    #[test]
    fn posting_lists_round_trip_and_keys_are_fixed_size() {
        let ids: BTreeSet<Id> = [[3u8; ID_LEN], [1u8; ID_LEN]].into_iter().collect();
        assert_eq!(decode_ids(&encode_ids(&ids)).unwrap(), ids);
        assert!(decode_ids(&[0u8; ID_LEN + 1]).is_none());
        let key = SubjectKey::parse(&format!("r.io/a/very/long/repository/name@{D}")).unwrap();
        assert_eq!(entry_key(&key).len(), 1 + ID_LEN);
        let id = id_of_entry_key(&entry_key(&key)).unwrap();
        assert_eq!(entry_key_for_id(&id), entry_key(&key));
        let b = index_bucket_key(D, &id);
        assert_eq!(b.len(), 3 + ID_LEN);
        assert!(b.starts_with(&index_prefix(D)));
    }
}
