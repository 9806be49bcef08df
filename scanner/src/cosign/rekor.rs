//! Offline checks of Rekor transparency-log entries.
//!
//! An entry is trusted when its signed entry timestamp (SET, the log's signature over the
//! canonical JSON `{"body","integratedTime","logID","logIndex"}`) verifies with a configured
//! Rekor key, or when its Merkle inclusion proof reaches a root hash that a checkpoint signed by
//! that key commits to. Only a SET authenticates `integratedTime`; an inclusion proof alone
//! proves inclusion but gives no trusted time. The entry body must describe the signature being
//! verified: same signature bytes, same payload hash, same key or certificate.
//!
//! Over 600 lines because the entry checks (signed entry timestamp, inclusion proof, checkpoint)
//! depend on each other, and their tests sit beside them.

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::keys::PublicKey;
use super::trust_root::{LogKey, SigstoreTrustRoot};

/// A transparency-log entry as carried by a signature (legacy annotation or bundle).
#[derive(Debug, Clone)]
pub(crate) struct TlogEntry {
    /// Base64 of the canonicalized entry body, exactly as signed.
    pub body_b64: String,
    pub integrated_time: i64,
    pub log_index: i64,
    pub log_id: Vec<u8>,
    pub set: Option<Vec<u8>>,
    pub proof: Option<InclusionProof>,
    /// The entry must prove inclusion with a proof and a signed checkpoint (Sigstore bundles
    /// v0.2 and later); otherwise a SET suffices.
    pub require_inclusion_proof: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct InclusionProof {
    pub log_index: u64,
    pub tree_size: u64,
    pub root_hash: Vec<u8>,
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: String,
}

/// What a verified entry proves.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedEntry {
    /// `integratedTime`, when the SET authenticated it.
    pub integrated_time: Option<DateTime<Utc>>,
    pub log_index: i64,
    /// `sha256:<hex>` of the Rekor key's SPKI.
    pub log_key_fingerprint: String,
    /// `SET`, `inclusion proof`, or both joined by `and`.
    pub method: String,
}

/// What the entry body must state.
pub(crate) struct Expected<'a> {
    /// Hex SHA-256 of the signed payload (simple-signing blob, DSSE payload or message).
    pub payload_sha256: &'a str,
    pub signature: &'a [u8],
    /// The verifying key's SPKI DER (key-based signatures).
    pub key_spki: Option<&'a [u8]>,
    /// The signing certificate DER (keyless signatures).
    pub cert_der: Option<&'a [u8]>,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

/// Parses the legacy `dev.sigstore.cosign/bundle` annotation:
/// `{"SignedEntryTimestamp": b64, "Payload": {"body", "integratedTime", "logIndex", "logID"}}`.
pub(crate) fn parse_legacy_bundle(annotation: &str) -> Result<TlogEntry, String> {
    let v: Value = serde_json::from_str(annotation)
        .map_err(|e| format!("the Rekor bundle annotation is not JSON: {e}"))?;
    let payload = v
        .get("Payload")
        .ok_or("the Rekor bundle has no `Payload`")?;
    let set = v
        .get("SignedEntryTimestamp")
        .and_then(Value::as_str)
        .ok_or("the Rekor bundle has no `SignedEntryTimestamp`")?;
    let body_b64 = payload
        .get("body")
        .and_then(Value::as_str)
        .ok_or("the Rekor bundle has no `Payload.body`")?
        .to_owned();
    let int = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_i64)
            .ok_or(format!("the Rekor bundle has no integer `Payload.{field}`"))
    };
    let log_id_hex = payload
        .get("logID")
        .and_then(Value::as_str)
        .ok_or("the Rekor bundle has no `Payload.logID`")?;
    Ok(TlogEntry {
        body_b64,
        integrated_time: int("integratedTime")?,
        log_index: int("logIndex")?,
        log_id: hex::decode(log_id_hex)
            .map_err(|_| format!("the Rekor bundle's logID {log_id_hex:?} is not hex"))?,
        set: Some(b64(set, "SignedEntryTimestamp")?),
        proof: None,
        require_inclusion_proof: false,
    })
}

/// Parses one `verificationMaterial.tlogEntries[]` entry of a Sigstore bundle;
/// `require_inclusion_proof` for bundles v0.2 and later, where the proof is mandatory.
pub(crate) fn parse_bundle_entry(
    v: &Value,
    require_inclusion_proof: bool,
) -> Result<TlogEntry, String> {
    // protobuf JSON writes int64 as strings; accept numbers too.
    let int = |v: Option<&Value>, what: &str| -> Result<i64, String> {
        match v {
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| format!("{what} {s:?} is not an integer")),
            Some(Value::Number(n)) => n.as_i64().ok_or(format!("{what} is not an integer")),
            None => Ok(0),
            _ => Err(format!("{what} is not an integer")),
        }
    };
    let body_b64 = v
        .get("canonicalizedBody")
        .and_then(Value::as_str)
        .ok_or("the transparency-log entry has no canonicalizedBody")?
        .to_owned();
    let log_id = v
        .get("logId")
        .and_then(|l| l.get("keyId"))
        .and_then(Value::as_str)
        .ok_or("the transparency-log entry has no logId.keyId")?;
    let set = match v
        .get("inclusionPromise")
        .and_then(|p| p.get("signedEntryTimestamp"))
        .and_then(Value::as_str)
    {
        Some(s) => Some(b64(s, "inclusionPromise.signedEntryTimestamp")?),
        None => None,
    };
    let proof = match v.get("inclusionProof") {
        Some(p) => {
            let hashes = p
                .get("hashes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|h| b64(h.as_str().unwrap_or(""), "inclusionProof.hashes[]"))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            Some(InclusionProof {
                log_index: u64::try_from(int(p.get("logIndex"), "inclusionProof.logIndex")?)
                    .map_err(|_| "inclusionProof.logIndex is negative")?,
                tree_size: u64::try_from(int(p.get("treeSize"), "inclusionProof.treeSize")?)
                    .map_err(|_| "inclusionProof.treeSize is negative")?,
                root_hash: b64(
                    p.get("rootHash").and_then(Value::as_str).unwrap_or(""),
                    "inclusionProof.rootHash",
                )?,
                hashes,
                checkpoint: p
                    .get("checkpoint")
                    .and_then(|c| c.get("envelope"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            })
        }
        None => None,
    };
    Ok(TlogEntry {
        body_b64,
        integrated_time: int(v.get("integratedTime"), "integratedTime")?,
        log_index: int(v.get("logIndex"), "logIndex")?,
        log_id: b64(log_id, "logId.keyId")?,
        set,
        proof,
        require_inclusion_proof,
    })
}

/// The canonical JSON (RFC 8785) a SET signs. Base64 and hex need no escaping, and serde_json's
/// string escaping equals RFC 8785's for the remaining characters.
fn set_message(e: &TlogEntry) -> String {
    let s = |x: &str| serde_json::to_string(x).unwrap_or_default();
    format!(
        "{{\"body\":{},\"integratedTime\":{},\"logID\":{},\"logIndex\":{}}}",
        s(&e.body_b64),
        e.integrated_time,
        s(&hex::encode(&e.log_id)),
        e.log_index
    )
}

/// Verifies the entry against the configured Rekor keys, as sigstore-go and sigstore-python do:
/// every proof the entry carries must verify — its SET (which also authenticates
/// `integratedTime`) and its inclusion proof with the signed checkpoint — and an entry of a
/// v0.2+ bundle must carry an inclusion proof with a checkpoint. An inclusion proof without a
/// checkpoint proves nothing (its root hash is not signed) and is not counted.
pub(crate) fn verify_entry(
    e: &TlogEntry,
    root: &SigstoreTrustRoot,
) -> Result<VerifiedEntry, String> {
    let key = root.rekor_key(&e.log_id).ok_or_else(|| {
        format!(
            "the transparency-log entry names log {} and no configured Rekor key has that log ID",
            hex::encode(&e.log_id)
        )
    })?;
    let integrated = Utc
        .timestamp_opt(e.integrated_time, 0)
        .single()
        .ok_or("integratedTime is out of range")?;
    let proof = e.proof.as_ref().filter(|p| !p.checkpoint.is_empty());
    if e.require_inclusion_proof && proof.is_none() {
        return Err(if e.proof.is_some() {
            "the entry's inclusion proof has no checkpoint (a Sigstore bundle v0.2 or later must prove inclusion with a signed checkpoint)".into()
        } else {
            "the entry has no inclusion proof (a Sigstore bundle v0.2 or later must carry one, with a signed checkpoint)".into()
        });
    }
    let mut methods = Vec::new();
    let mut integrated_time = None;
    if let Some(set) = &e.set {
        if key.key.verify(set_message(e).as_bytes(), set).is_none() {
            return Err(
                "the signed entry timestamp (SET) does not verify with the Rekor key".into(),
            );
        }
        if !key.valid_for.contains(integrated) {
            return Err(format!(
                "the entry was integrated at {integrated}, outside the validity of Rekor key {}",
                key.key.fingerprint()
            ));
        }
        integrated_time = Some(integrated);
        methods.push("SET");
    }
    if let Some(proof) = proof {
        verify_inclusion(e, proof, key)?;
        methods.push("inclusion proof");
    }
    if methods.is_empty() {
        return Err(
            "the entry has neither a signed entry timestamp nor an inclusion proof with a checkpoint"
                .into(),
        );
    }
    Ok(VerifiedEntry {
        integrated_time,
        log_index: e.log_index,
        log_key_fingerprint: key.key.fingerprint().to_owned(),
        method: methods.join(" and "),
    })
}

fn verify_inclusion(e: &TlogEntry, p: &InclusionProof, key: &LogKey) -> Result<(), String> {
    let body = b64(&e.body_b64, "canonicalizedBody")?;
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(&body);
    let leaf: [u8; 32] = leaf.finalize().into();
    let root = merkle_root_from_proof(p.log_index, p.tree_size, leaf, &p.hashes)?;
    if root.as_slice() != p.root_hash.as_slice() {
        return Err("the inclusion proof does not lead to its root hash".into());
    }
    verify_checkpoint(&p.checkpoint, p.tree_size, &p.root_hash, &key.key)
}

/// RFC 9162 §2.1.3.2: the root hash an inclusion proof implies.
fn merkle_root_from_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[Vec<u8>],
) -> Result<[u8; 32], String> {
    if index >= size {
        return Err(format!(
            "inclusion proof index {index} is not below tree size {size}"
        ));
    }
    let node = |l: &[u8], r: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if p.len() != 32 {
            return Err("an inclusion proof hash is not 32 bytes".into());
        }
        if sn == 0 {
            return Err("the inclusion proof is longer than the tree".into());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err("the inclusion proof is shorter than the tree".into());
    }
    Ok(r)
}

/// A signed note (checkpoint): `origin\nsize\nb64(root)\n[extra lines]\n\n— name b64(hint||sig)\n`.
fn verify_checkpoint(
    note: &str,
    size: u64,
    root_hash: &[u8],
    key: &PublicKey,
) -> Result<(), String> {
    let Some(split) = note.find("\n\n") else {
        return Err("the checkpoint is not a signed note".into());
    };
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    let mut lines = text.lines();
    let _origin = lines.next().ok_or("the checkpoint has no origin line")?;
    let cp_size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("the checkpoint has no tree size")?;
    let cp_root = lines
        .next()
        .map(|l| b64(l, "checkpoint root hash"))
        .transpose()?
        .ok_or("the checkpoint has no root hash")?;
    if cp_size != size || cp_root != root_hash {
        return Err("the checkpoint does not commit to the inclusion proof's tree".into());
    }
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((_, sig_b64)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(raw) = b64(sig_b64, "checkpoint signature") else {
            continue;
        };
        if raw.len() > 4 && key.verify(text.as_bytes(), &raw[4..]).is_some() {
            return Ok(());
        }
    }
    Err("no checkpoint signature verifies with the Rekor key".into())
}

/// Who the entry says verified the signature.
enum Recorded {
    /// v0.0.1 entries: base64 of a PEM public key or certificate.
    Pem(String),
    /// v0.0.2 (Rekor v2) entries: DER SPKI or certificate.
    Spki(Vec<u8>),
    Cert(Vec<u8>),
}

/// Checks that the entry body describes this signature: payload hash, signature bytes, and the
/// key or certificate. Entry kinds: `hashedrekord`, `rekord` and `dsse`, API versions 0.0.1 and
/// 0.0.2 (Rekor v2).
pub(crate) fn check_body(e: &TlogEntry, expected: &Expected<'_>) -> Result<(), String> {
    let body = b64(&e.body_b64, "entry body")?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| format!("the entry body is not JSON: {e}"))?;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let spec = v.get("spec").ok_or("the entry body has no spec")?;
    let str_at = |v: &Value, path: &[&str]| -> String {
        let mut cur = v;
        for p in path {
            match cur.get(*p) {
                Some(n) => cur = n,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or("").to_owned()
    };
    // v0.0.2 verifier: {publicKey: {rawBytes}} or {x509Certificate: {rawBytes}}.
    let v2_verifier = |v: &Value| -> Recorded {
        let key = str_at(v, &["publicKey", "rawBytes"]);
        if !key.is_empty() {
            return Recorded::Spki(b64(&key, "verifier key").unwrap_or_default());
        }
        Recorded::Cert(
            b64(
                &str_at(v, &["x509Certificate", "rawBytes"]),
                "verifier certificate",
            )
            .unwrap_or_default(),
        )
    };
    // v0.0.2 digest: {algorithm: SHA2_256, digest: base64} → ("sha256", hex).
    let v2_hash = |v: &Value| -> (String, String) {
        let alg = match str_at(v, &["algorithm"]).as_str() {
            "SHA2_256" => "sha256".to_owned(),
            other => other.to_owned(),
        };
        let digest = b64(&str_at(v, &["digest"]), "entry digest").unwrap_or_default();
        (alg, hex::encode(digest))
    };
    let ((hash_alg, hash), sigs): ((String, String), Vec<(String, Recorded)>) = match (
        kind, version,
    ) {
        ("hashedrekord" | "rekord", "0.0.1") => (
            (
                str_at(spec, &["data", "hash", "algorithm"]),
                str_at(spec, &["data", "hash", "value"]),
            ),
            vec![(
                str_at(spec, &["signature", "content"]),
                Recorded::Pem(str_at(spec, &["signature", "publicKey", "content"])),
            )],
        ),
        ("dsse", "0.0.1") => (
            (
                str_at(spec, &["payloadHash", "algorithm"]),
                str_at(spec, &["payloadHash", "value"]),
            ),
            spec.get("signatures")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                str_at(s, &["signature"]),
                                Recorded::Pem(str_at(s, &["verifier"])),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        ("hashedrekord", "0.0.2") => {
            let r = spec.get("hashedRekordV002").unwrap_or(&Value::Null);
            (
                v2_hash(r.get("data").unwrap_or(&Value::Null)),
                vec![(
                    str_at(r, &["signature", "content"]),
                    v2_verifier(r.pointer("/signature/verifier").unwrap_or(&Value::Null)),
                )],
            )
        }
        ("dsse", "0.0.2") => {
            let d = spec.get("dsseV002").unwrap_or(&Value::Null);
            (
                v2_hash(d.get("payloadHash").unwrap_or(&Value::Null)),
                d.get("signatures")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                (
                                    str_at(s, &["content"]),
                                    v2_verifier(s.get("verifier").unwrap_or(&Value::Null)),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        }
        (other, version) => {
            return Err(format!(
                "transparency-log entries of kind {other:?} version {version:?} are not supported (hashedrekord, rekord, dsse; 0.0.1, 0.0.2)"
            ));
        }
    };
    if hash_alg != "sha256" || !hash.eq_ignore_ascii_case(expected.payload_sha256) {
        return Err(format!(
            "the {kind} entry records payload hash {hash_alg}:{hash}, not sha256:{}",
            expected.payload_sha256
        ));
    }
    for (sig_b64, recorded) in &sigs {
        let Ok(sig) = b64(sig_b64, "entry signature") else {
            continue;
        };
        if sig != expected.signature {
            continue;
        }
        if verifier_matches(recorded, expected) {
            return Ok(());
        }
        return Err(format!(
            "the {kind} entry records this signature with a different key or certificate"
        ));
    }
    Err(format!("the {kind} entry records a different signature"))
}

fn verifier_matches(recorded: &Recorded, expected: &Expected<'_>) -> bool {
    let (spki, certs): (Option<Vec<u8>>, Vec<Vec<u8>>) = match recorded {
        Recorded::Spki(d) => (Some(d.clone()), vec![]),
        Recorded::Cert(d) => (None, vec![d.clone()]),
        Recorded::Pem(b) => {
            let pem = b64(b, "entry public key")
                .ok()
                .and_then(|p| String::from_utf8(p).ok())
                .unwrap_or_default();
            match super::trust_root::pem_certificates(&pem) {
                Ok(certs) => (None, certs),
                Err(_) => (
                    PublicKey::from_pem(&pem)
                        .ok()
                        .map(|k| k.spki_der().to_vec()),
                    vec![],
                ),
            }
        }
    };
    if let Some(cert) = expected.cert_der {
        return certs.first().is_some_and(|c| c.as_slice() == cert);
    }
    let Some(expected_spki) = expected.key_spki else {
        return false;
    };
    if let Some(spki) = spki {
        return spki == expected_spki;
    }
    // A key-based signature whose entry holds a certificate for the same key (cosign --key with
    // a certificate) also matches.
    certs.first().is_some_and(|c| {
        x509_parser::parse_x509_certificate(c)
            .is_ok_and(|(_, cert)| cert.public_key().raw == expected_spki)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(data: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(data);
        h.finalize().into()
    }

    fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    }

    #[test]
    fn inclusion_proofs_in_a_five_leaf_tree() {
        let l: Vec<[u8; 32]> = (0u8..5).map(|i| leaf(&[i])).collect();
        let n01 = node(&l[0], &l[1]);
        let n23 = node(&l[2], &l[3]);
        let n0123 = node(&n01, &n23);
        let root = node(&n0123, &l[4]);
        // leaf 2: siblings l3, n01, l4
        let proof = vec![l[3].to_vec(), n01.to_vec(), l[4].to_vec()];
        assert_eq!(merkle_root_from_proof(2, 5, l[2], &proof).unwrap(), root);
        // leaf 4 (last, alone on its level): sibling n0123
        assert_eq!(
            merkle_root_from_proof(4, 5, l[4], &[n0123.to_vec()]).unwrap(),
            root
        );
        assert_ne!(merkle_root_from_proof(3, 5, l[2], &proof).unwrap(), root);
        assert!(merkle_root_from_proof(2, 5, l[2], &proof[..2]).is_err());
        assert!(merkle_root_from_proof(5, 5, l[2], &proof).is_err());
    }

    fn entry_with_body(body: serde_json::Value) -> TlogEntry {
        TlogEntry {
            body_b64: base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&body).unwrap()),
            integrated_time: 0,
            log_index: 0,
            log_id: vec![],
            set: None,
            proof: None,
            require_inclusion_proof: false,
        }
    }

    #[test]
    fn rekor_v2_bodies_are_checked() {
        let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let spki = b"spki der".to_vec();
        let payload_hash = [7u8; 32];
        let expected = Expected {
            payload_sha256: &hex::encode(payload_hash),
            signature: b"sig",
            key_spki: Some(&spki),
            cert_der: None,
        };
        let body = |sig: &[u8], key: &[u8]| {
            serde_json::json!({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": enc(&payload_hash)},
                "signature": {"content": enc(sig), "verifier": {"publicKey": {"rawBytes": enc(key)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}},
            }}})
        };
        assert!(check_body(&entry_with_body(body(b"sig", &spki)), &expected).is_ok());
        let e = check_body(&entry_with_body(body(b"sig", b"other")), &expected).unwrap_err();
        assert!(e.contains("different key"), "{e}");
        let e = check_body(&entry_with_body(body(b"other", &spki)), &expected).unwrap_err();
        assert!(e.contains("different signature"), "{e}");
        let dsse = serde_json::json!({"apiVersion": "0.0.2", "kind": "dsse", "spec": {"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256", "digest": enc(&[8u8; 32])},
            "signatures": [{"content": enc(b"sig"), "verifier": {"publicKey": {"rawBytes": enc(&spki)}}}],
        }}});
        let e = check_body(&entry_with_body(dsse), &expected).unwrap_err();
        assert!(e.contains("payload hash"), "{e}");
        let e = check_body(
            &entry_with_body(
                serde_json::json!({"apiVersion": "0.0.1", "kind": "intoto", "spec": {}}),
            ),
            &expected,
        )
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn legacy_bundle_parsing() {
        let e = parse_legacy_bundle(
            r#"{"SignedEntryTimestamp":"AAEC","Payload":{"body":"e30=","integratedTime":1700000000,"logIndex":7,"logID":"c0d2"}}"#,
        )
        .unwrap();
        assert_eq!(e.log_id, vec![0xc0, 0xd2]);
        assert_eq!(
            set_message(&e),
            r#"{"body":"e30=","integratedTime":1700000000,"logID":"c0d2","logIndex":7}"#
        );
        assert!(parse_legacy_bundle(r#"{"Payload":{}}"#).is_err());
    }
}
