//! Shared helpers of the Cosign tests: Ratify CRs as a user writes them, cosign-style signing
//! (the `.sig` layout real cosign writes, Sigstore bundles), and a test Sigstore deployment —
//! Fulcio CA, Rekor log key, CT log key and a timestamp authority — producing certificates with
//! embedded SCTs, signed entry timestamps, inclusion proofs with checkpoints and RFC 3161 tokens.
//!
//! Over 600 lines because a whole test Sigstore (Fulcio, Rekor, CT log, TSA) that every Cosign test
//! shares.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType, SerialNumber,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_scanner::registry::{ImageReference, RegistryClient, RegistryConfig};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::trust::TrustConfig;
use verdict_scanner::verify::ImageVerifier;
use verdict_testkit::oci::{Descriptor, OciClient, cosign_payload};
use verdict_testkit::pki::{CertBuilder, KeyAlg, SignAlg, TestCert, TestKey, pem_encode, time};

pub const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
pub const BUNDLE_ARTIFACT: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const NOTATION_ARTIFACT: &str = "application/vnd.cncf.notary.signature";

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The seed's Store (`cosignEnabled: true`).
pub fn store_yaml() -> String {
    "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-oras
spec:
  name: oras
  parameters:
    cosignEnabled: true
"
    .to_owned()
}

/// A cosign Verifier with `trust_policies` (YAML list items indented by 6 spaces).
pub fn cosign_verifier_yaml(artifact_types: &str, trust_policies: &str) -> String {
    format!(
        "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-cosign
spec:
  name: cosign
  artifactTypes: {artifact_types}
  parameters:
    trustPolicies:
{trust_policies}"
    )
}

/// A config Policy with `artifactVerificationPolicies`.
pub fn policy_yaml(rules: &[(&str, &str)]) -> String {
    let mut s = "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Policy
metadata:
  name: ratify-policy
spec:
  type: config-policy
  parameters:
    artifactVerificationPolicies:
"
    .to_owned();
    for (ty, rule) in rules {
        s.push_str(&format!("      \"{ty}\": {rule}\n"));
    }
    s
}

/// Loads `yaml` like `verdict config check` and builds the trust configuration.
pub fn trust_with(yaml: &str, sigstore: SigstoreTrustRoot) -> TrustConfig {
    let report = verdict_crds::load_str("test.yaml", yaml);
    assert!(
        !report.has_errors(),
        "config must load: {:#?}\n{yaml}",
        report.diagnostics
    );
    TrustConfig::from_resources_with_sigstore(
        report.valid_resources().map(|l| &l.resource),
        Arc::new(sigstore),
    )
    .expect("trust configuration")
}

pub fn trust(yaml: &str) -> TrustConfig {
    trust_with(yaml, SigstoreTrustRoot::new())
}

pub fn client(hosts: &[&str]) -> RegistryClient {
    RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: hosts.iter().map(|h| h.to_string()).collect(),
        ..Default::default()
    })
    .expect("registry client")
}

pub async fn verify(host: &str, trust: TrustConfig, reference: &str) -> VerificationResult {
    verify_at(host, trust, reference, Utc::now()).await
}

pub async fn verify_at(
    host: &str,
    trust: TrustConfig,
    reference: &str,
    now: DateTime<Utc>,
) -> VerificationResult {
    let verifier = ImageVerifier::new(client(&[host]), Arc::new(trust));
    verifier
        .verify(&ImageReference::parse(reference).expect("reference"), now)
        .await
        .expect("verification must not error")
}

/// Every report's message and reason, for assertion messages.
pub fn reasons(r: &VerificationResult) -> String {
    r.reports
        .iter()
        .map(|x| {
            format!(
                "[{} {} ok={} {}] {} {}",
                x.verifier_name,
                x.artifact_type,
                x.is_success,
                x.error_reason,
                x.message,
                x.extensions
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The signature algorithm cosign uses for a key: ECDSA DER, RSA PKCS#1 v1.5 SHA-256.
pub fn cosign_alg(key: &TestKey) -> SignAlg {
    match key.alg() {
        KeyAlg::EcP256 => SignAlg::Es256Der,
        KeyAlg::EcP384 => SignAlg::Es384Der,
        KeyAlg::EcP521 => SignAlg::Es512Der,
        _ => SignAlg::Rs256,
    }
}

/// Signs `payload` as `cosign sign --key` does; base64 as in the signature annotation.
pub fn cosign_sign(key: &TestKey, payload: &[u8]) -> String {
    b64(&key.sign(cosign_alg(key), payload).expect("sign"))
}

/// Signs `subject` in the legacy `.sig` layout (payload `docker-reference` = `repo_ref`).
pub async fn push_signed(
    client: &OciClient,
    repo: &str,
    repo_ref: &str,
    subject: &Descriptor,
    key: &TestKey,
    annotations: BTreeMap<String, String>,
) -> Descriptor {
    let payload = cosign_payload(repo_ref, &subject.digest);
    client
        .push_cosign_signature(
            repo,
            subject,
            &payload,
            &cosign_sign(key, &payload),
            annotations,
        )
        .await
        .expect("push cosign signature")
}

/// The in-toto statement cosign v3 signs for an image.
pub fn cosign_statement(repo_ref: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repo_ref, "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }))
    .unwrap()
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
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

/// A Sigstore bundle v0.3 with a DSSE envelope; `material` is the `verificationMaterial`
/// without tlog entries, which `tlog` adds.
pub fn dsse_bundle(
    statement: &[u8],
    signature: &[u8],
    material: Value,
    tlog: Vec<Value>,
) -> Vec<u8> {
    let mut vm = material;
    vm["tlogEntries"] = Value::Array(tlog);
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE_ARTIFACT,
        "verificationMaterial": vm,
        "dsseEnvelope": {
            "payload": b64(statement),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64(signature), "keyid": ""}],
        },
    }))
    .unwrap()
}

/// Pushes a bundle as a referrer of `subject` (artifactType and layer = the bundle type).
pub async fn push_bundle(
    client: &OciClient,
    repo: &str,
    subject: &Descriptor,
    bundle: Vec<u8>,
) -> Descriptor {
    client
        .push_artifact(
            repo,
            subject,
            Some(BUNDLE_ARTIFACT),
            verdict_testkit::oci::OCI_EMPTY,
            vec![(BUNDLE_ARTIFACT.to_string(), bundle)],
            BTreeMap::from([(
                "dev.sigstore.bundle.predicateType".to_string(),
                "https://sigstore.dev/cosign/sign/v1".to_string(),
            )]),
        )
        .await
        .expect("push bundle")
}

fn rcgen_key(key: &TestKey) -> KeyPair {
    KeyPair::try_from(key.pkcs8_der()).expect("rcgen key")
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|x| **x == 0).count();
        out.push(0x80 | (b.len() - skip) as u8);
        out.extend_from_slice(&b[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn der_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut content = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        content.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    der_tlv(0x06, &content)
}

fn der_seq(items: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &items.concat())
}

fn der_int(v: u64) -> Vec<u8> {
    let mut b: Vec<u8> = v
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|x| *x == 0)
        .collect();
    if b.is_empty() || b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    der_tlv(0x02, &b)
}

/// Keyless signing parameters for a Fulcio leaf.
pub struct LeafSpec<'a> {
    pub email: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub issuer: &'a str,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Embed an SCT from the test CT log (Fulcio always does).
    pub sct: bool,
    /// Sign the SCT with this key instead of the CT log's (a forged SCT).
    pub sct_signer: Option<&'a TestKey>,
}

/// A test Sigstore deployment.
pub struct TestSigstore {
    fulcio_root_params: CertificateParams,
    fulcio_root_key: KeyPair,
    pub fulcio_root_der: Vec<u8>,
    fulcio_int_params: CertificateParams,
    fulcio_int_key: KeyPair,
    pub fulcio_int_der: Vec<u8>,
    pub rekor: TestKey,
    pub ctlog: TestKey,
    pub tsa_root: TestCert,
    pub tsa: TestCert,
}

impl TestSigstore {
    pub fn new() -> Self {
        let ca = |cn: &str, path_len: Option<u8>| {
            let mut p = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "sigstore.test");
            dn.push(DnType::CommonName, cn);
            p.distinguished_name = dn;
            p.is_ca = IsCa::Ca(match path_len {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            });
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = time::OffsetDateTime::now_utc();
            p.not_before = now - time::Duration::days(400);
            p.not_after = now + time::Duration::days(3650);
            p
        };
        let fulcio_root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let fulcio_root_params = ca("sigstore-test", None);
        let fulcio_root_der = fulcio_root_params
            .self_signed(&fulcio_root_key)
            .unwrap()
            .der()
            .to_vec();
        let fulcio_int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut fulcio_int_params = ca("sigstore-test-intermediate", Some(0));
        fulcio_int_params.use_authority_key_identifier_extension = true;
        let fulcio_int_der = fulcio_int_params
            .signed_by(
                &fulcio_int_key,
                &Issuer::from_params(&fulcio_root_params, &fulcio_root_key),
            )
            .unwrap()
            .der()
            .to_vec();
        let now = time::OffsetDateTime::now_utc();
        let tsa_root = CertBuilder::root_ca("O=sigstore.test, CN=tsa root")
            .validity(
                now - time::Duration::days(30),
                now + time::Duration::days(3650),
            )
            .self_signed()
            .unwrap();
        let tsa = CertBuilder::tsa("O=sigstore.test, CN=tsa")
            .validity(
                now - time::Duration::days(30),
                now + time::Duration::days(365),
            )
            .signed_by(&tsa_root)
            .unwrap();
        TestSigstore {
            fulcio_root_params,
            fulcio_root_key,
            fulcio_root_der,
            fulcio_int_params,
            fulcio_int_key,
            fulcio_int_der,
            rekor: TestKey::generate(KeyAlg::EcP256).unwrap(),
            ctlog: TestKey::generate(KeyAlg::EcP256).unwrap(),
            tsa_root,
            tsa,
        }
    }

    pub fn fulcio_chain_pem(&self) -> String {
        format!(
            "{}{}",
            pem_encode("CERTIFICATE", &self.fulcio_int_der),
            pem_encode("CERTIFICATE", &self.fulcio_root_der)
        )
    }

    /// The trust root built from PEM pieces.
    pub fn trust_root(&self) -> SigstoreTrustRoot {
        SigstoreTrustRoot::new()
            .with_fulcio_pem(&self.fulcio_chain_pem())
            .unwrap()
            .with_rekor_key_pem(&self.rekor.public_key_pem())
            .unwrap()
            .with_ctlog_key_pem(&self.ctlog.public_key_pem())
            .unwrap()
            .with_tsa_pem(&format!("{}{}", self.tsa.pem(), self.tsa_root.pem()))
            .unwrap()
    }

    /// The same material as a Sigstore `trusted_root.json`.
    pub fn trusted_root_json(&self) -> Vec<u8> {
        let log = |key: &TestKey, url: &str| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&key.public_key_der()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2021-01-01T00:00:00Z"},
                },
                "logId": {"keyId": b64(&Sha256::digest(key.public_key_der()))},
            })
        };
        serde_json::to_vec(&json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.test")],
            "ctlogs": [log(&self.ctlog, "https://ctfe.test")],
            "certificateAuthorities": [{
                "subject": {"organization": "sigstore.test", "commonName": "sigstore-test"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [
                    {"rawBytes": b64(&self.fulcio_int_der)},
                    {"rawBytes": b64(&self.fulcio_root_der)},
                ]},
                "validFor": {"start": "2021-01-01T00:00:00Z"},
            }],
            "timestampAuthorities": [{
                "subject": {"organization": "sigstore.test", "commonName": "tsa"},
                "uri": "https://tsa.test",
                "certChain": {"certificates": [
                    {"rawBytes": b64(self.tsa.der())},
                    {"rawBytes": b64(self.tsa_root.der())},
                ]},
                "validFor": {"start": "2021-01-01T00:00:00Z"},
            }],
        }))
        .unwrap()
    }

    pub fn rekor_log_id(&self) -> Vec<u8> {
        Sha256::digest(self.rekor.public_key_der()).to_vec()
    }

    /// A Fulcio leaf for `key` (DER), issued by the test intermediate.
    pub fn fulcio_leaf(&self, key: &TestKey, spec: &LeafSpec<'_>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.not_before = to_time(spec.not_before);
        p.not_after = to_time(spec.not_after);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(SerialNumber::from_slice(&[0x11, 0x22, 0x33, 0x44]));
        if let Some(e) = spec.email {
            p.subject_alt_names
                .push(SanType::Rfc822Name(e.try_into().unwrap()));
        }
        if let Some(u) = spec.uri {
            p.subject_alt_names
                .push(SanType::URI(u.try_into().unwrap()));
        }
        // Fulcio's issuer extensions: v1 raw bytes, v2 DER UTF8String.
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
            spec.issuer.as_bytes().to_vec(),
        ));
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
            der_tlv(0x0c, spec.issuer.as_bytes()),
        ));
        let leaf_key = rcgen_key(key);
        let issuer = Issuer::from_params(&self.fulcio_int_params, &self.fulcio_int_key);
        let pre = p.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
        if !spec.sct {
            return pre;
        }
        // The SCT signs the precertificate TBS (the final TBS without the SCT extension).
        let tbs = tbs_of(&pre);
        let ts = spec.not_before.timestamp_millis() as u64 + 1000;
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&ts.to_be_bytes());
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&Sha256::digest(
            self.fulcio_int_key.subject_public_key_info(),
        ));
        signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&[0, 0]);
        let signer = spec.sct_signer.unwrap_or(&self.ctlog);
        let sig = signer.sign(SignAlg::Es256Der, &signed).unwrap();
        let mut sct = vec![0u8];
        sct.extend_from_slice(&Sha256::digest(self.ctlog.public_key_der()));
        sct.extend_from_slice(&ts.to_be_bytes());
        sct.extend_from_slice(&[0, 0]);
        sct.extend_from_slice(&[4, 3]);
        sct.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        sct.extend_from_slice(&sig);
        let mut list = (sct.len() as u16 + 2).to_be_bytes().to_vec();
        list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
        list.extend_from_slice(&sct);
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
            der_tlv(0x04, &list),
        ));
        let cert = p.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
        assert_eq!(
            tbs_without_last_extension(&cert),
            tbs,
            "rcgen must append the SCT extension last for this fixture"
        );
        cert
    }

    /// A hashedrekord entry body for `payload` signed as `signature` by `verifier_pem`.
    pub fn hashedrekord_body(payload: &[u8], signature: &[u8], verifier_pem: &str) -> String {
        b64(&serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": sha256_hex(payload)}},
                "signature": {"content": b64(signature), "publicKey": {"content": b64(verifier_pem.as_bytes())}},
            },
        }))
        .unwrap())
    }

    /// A dsse entry body.
    pub fn dsse_body(payload: &[u8], signature: &[u8], verifier_pem: &str) -> String {
        b64(&serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": sha256_hex(b"envelope")},
                "payloadHash": {"algorithm": "sha256", "value": sha256_hex(payload)},
                "signatures": [{"signature": b64(signature), "verifier": b64(verifier_pem.as_bytes())}],
            },
        }))
        .unwrap())
    }

    /// The signed entry timestamp over `{body, integratedTime, logID, logIndex}`.
    pub fn set(&self, body_b64: &str, integrated_time: i64, log_index: i64) -> Vec<u8> {
        let msg = format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
            hex::encode(self.rekor_log_id())
        );
        self.rekor.sign(SignAlg::Es256Der, msg.as_bytes()).unwrap()
    }

    /// The legacy `dev.sigstore.cosign/bundle` annotation.
    pub fn legacy_bundle(&self, body_b64: &str, integrated_time: i64, log_index: i64) -> String {
        json!({
            "SignedEntryTimestamp": b64(&self.set(body_b64, integrated_time, log_index)),
            "Payload": {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logIndex": log_index,
                "logID": hex::encode(self.rekor_log_id()),
            },
        })
        .to_string()
    }

    /// A bundle `tlogEntries[]` item; with `promise` a SET, with `proof` an inclusion proof in a
    /// three-leaf tree plus a signed checkpoint.
    pub fn bundle_entry(
        &self,
        body_b64: &str,
        integrated_time: i64,
        promise: bool,
        proof: bool,
    ) -> Value {
        let log_index = 1i64;
        let mut e = json!({
            "logIndex": log_index.to_string(),
            "logId": {"keyId": b64(&self.rekor_log_id())},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": integrated_time.to_string(),
            "canonicalizedBody": body_b64,
        });
        if promise {
            e["inclusionPromise"] = json!({"signedEntryTimestamp": b64(&self.set(body_b64, integrated_time, log_index))});
        }
        if proof {
            let leaf = |d: &[u8]| -> [u8; 32] {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(d);
                h.finalize().into()
            };
            let node = |l: &[u8], r: &[u8]| -> [u8; 32] {
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(l);
                h.update(r);
                h.finalize().into()
            };
            let body = STANDARD.decode(body_b64).unwrap();
            let (l0, l1, l2) = (leaf(b"other entry 0"), leaf(&body), leaf(b"other entry 2"));
            let root = node(&node(&l0, &l1), &l2);
            let text = format!("rekor.test - 42\n3\n{}\n", b64(&root));
            let sig = self.rekor.sign(SignAlg::Es256Der, text.as_bytes()).unwrap();
            let mut hinted = self.rekor_log_id()[..4].to_vec();
            hinted.extend_from_slice(&sig);
            e["inclusionProof"] = json!({
                "logIndex": "1",
                "rootHash": b64(&root),
                "treeSize": "3",
                "hashes": [b64(&l0), b64(&l2)],
                "checkpoint": {"envelope": format!("{text}\n\u{2014} rekor.test {}\n", b64(&hinted))},
            });
        }
        e
    }

    /// An RFC 3161 `TimeStampResp` over `signature` at `gen_time`, signed by the test TSA.
    pub fn timestamp(&self, signature: &[u8], gen_time: DateTime<Utc>) -> Vec<u8> {
        let sha256 = der_seq(&[der_oid("2.16.840.1.101.3.4.2.1")]);
        let tst = der_seq(&[
            der_int(1),
            der_oid("1.2.3.4"),
            der_seq(&[sha256.clone(), der_tlv(0x04, &Sha256::digest(signature))]),
            der_int(7),
            der_tlv(
                0x18,
                gen_time.format("%Y%m%d%H%M%SZ").to_string().as_bytes(),
            ),
        ]);
        let attrs = [
            der_seq(&[
                der_oid("1.2.840.113549.1.9.3"),
                der_tlv(0x31, &der_oid("1.2.840.113549.1.9.16.1.4")),
            ]),
            der_seq(&[
                der_oid("1.2.840.113549.1.9.4"),
                der_tlv(0x31, &der_tlv(0x04, &Sha256::digest(&tst))),
            ]),
        ]
        .concat();
        let sig = self
            .tsa
            .sign(SignAlg::Es256Der, &der_tlv(0x31, &attrs))
            .unwrap();
        let signer_info = der_seq(&[
            der_int(3),
            der_tlv(0x80, &[1, 2, 3, 4]),
            sha256.clone(),
            der_tlv(0xa0, &attrs),
            der_seq(&[der_oid("1.2.840.10045.4.3.2")]),
            der_tlv(0x04, &sig),
        ]);
        let signed_data = der_seq(&[
            der_int(3),
            der_tlv(0x31, &sha256),
            der_seq(&[
                der_oid("1.2.840.113549.1.9.16.1.4"),
                der_tlv(0xa0, &der_tlv(0x04, &tst)),
            ]),
            der_tlv(0xa0, self.tsa.der()),
            der_tlv(0x31, &signer_info),
        ]);
        let token = der_seq(&[der_oid("1.2.840.113549.1.7.2"), der_tlv(0xa0, &signed_data)]);
        der_seq(&[der_seq(&[der_int(0)]), token])
    }
}

fn read(data: &[u8]) -> (u8, usize, usize) {
    // (tag, header length, content length)
    let tag = data[0];
    let first = data[1] as usize;
    if first < 0x80 {
        (tag, 2, first)
    } else {
        let n = first & 0x7f;
        let mut len = 0usize;
        for b in &data[2..2 + n] {
            len = (len << 8) | *b as usize;
        }
        (tag, 2 + n, len)
    }
}

/// The TBSCertificate bytes of a certificate.
fn tbs_of(cert: &[u8]) -> Vec<u8> {
    let (_, h, _) = read(cert);
    let (_, th, tl) = read(&cert[h..]);
    cert[h..h + th + tl].to_vec()
}

/// The TBSCertificate with its last extension removed, re-encoded.
fn tbs_without_last_extension(cert: &[u8]) -> Vec<u8> {
    let tbs = tbs_of(cert);
    let (_, th, tl) = read(&tbs);
    let mut fields = Vec::new();
    let mut rest = &tbs[th..th + tl];
    while !rest.is_empty() {
        let (tag, h, l) = read(rest);
        fields.push((tag, rest[..h + l].to_vec(), rest[h..h + l].to_vec()));
        rest = &rest[h + l..];
    }
    let mut out = Vec::new();
    for (tag, raw, content) in fields {
        if tag != 0xa3 {
            out.extend(raw);
            continue;
        }
        let (_, sh, sl) = read(&content);
        let mut exts = Vec::new();
        let mut r = &content[sh..sh + sl];
        while !r.is_empty() {
            let (_, h, l) = read(r);
            exts.push(r[..h + l].to_vec());
            r = &r[h + l..];
        }
        exts.pop();
        out.extend(der_tlv(0xa3, &der_tlv(0x30, &exts.concat())));
    }
    der_tlv(0x30, &out)
}
