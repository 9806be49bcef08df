//! Differential interop with the real `notation` CLI (v1.3.2): images signed by `notation sign`
//! into docker-registry 2.8 (referrers tag schema) and into a registry with the referrers API,
//! judged by `notation verify`, by `verdict verify` and by a running `verdict serve` (its
//! Gatekeeper verify endpoint) under the same trust policy and certificates. Every case must get
//! the same verdict from all three, and the expected one.
//!
//! The tools come from `scripts/install-deps.sh --oracles` (`make test` runs it); a missing one
//! fails the test with that command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use verdict_testkit::DockerRegistry;
use verdict_testkit::oracles::{
    Agreement, InteropRegistry as Registry, Notation, ReferrersRegistry, SignOptions,
    TimestampServer, Verdicts, oras_attach,
};
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::ratify::{
    NOTATION_ARTIFACT_TYPE, NotationVerifier, config_policy_yaml, inline_kmp_yaml,
};
use verdict_testkit::serve::ServerPool;

const SBOM_TYPE: &str = "application/spdx+json";

/// The trust policy both sides use: one strict statement over every registry, trust store
/// `ca:certs` (Ratify's `verificationCertStores: {ca: {certs: [...]}}`) and, with a TSA store,
/// `tsa:tsa`; these identities.
fn trust_policy(identities: &[&str], tsa_store: bool) -> Value {
    let mut stores = vec!["ca:certs"];
    if tsa_store {
        stores.push("tsa:tsa");
    }
    json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "interop",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": stores,
            "trustedIdentities": identities,
        }]
    })
}

/// One case: which image, trusted certificates, identities, and whether the Ratify Policy
/// accepts any one good Notation signature (`any`, notation's own rule) or needs all (`all`,
/// Ratify's default).
struct Case<'a> {
    name: &'a str,
    reference: String,
    trusted: Vec<&'a Path>,
    /// The `tsa:tsa` trust store's certificates; `None`: the policy names no TSA store.
    tsa: Option<&'a Path>,
    identities: &'a [&'a str],
    any_signature: bool,
    expect_allow: bool,
    /// Verdict decides the opposite of notation on purpose (README, "Where Verdict and the
    /// upstream tools differ on purpose").
    verdict_differs: bool,
}

impl<'a> Case<'a> {
    /// A case both tools must allow: every identity trusted, Ratify's default Policy (`all`).
    fn allow(name: &'a str, reference: String, trusted: &[&'a Path]) -> Self {
        Case {
            name,
            reference,
            trusted: trusted.to_vec(),
            tsa: None,
            identities: &["*"],
            any_signature: false,
            expect_allow: true,
            verdict_differs: false,
        }
    }

    /// A case both tools must deny.
    fn deny(name: &'a str, reference: String, trusted: &[&'a Path]) -> Self {
        Case {
            expect_allow: false,
            ..Case::allow(name, reference, trusted)
        }
    }

    fn identities(mut self, identities: &'a [&'a str]) -> Self {
        self.identities = identities;
        self
    }

    fn tsa(mut self, root: &'a Path) -> Self {
        self.tsa = Some(root);
        self
    }

    fn any_signature(mut self) -> Self {
        self.any_signature = true;
        self
    }

    fn verdict_differs(mut self) -> Self {
        self.verdict_differs = true;
        self
    }
}

/// `verdict verify` with Ratify resources equivalent to notation's configuration; Ok(allowed).
fn verdict_verify(host: &str, case: &Case<'_>, config: &Path) -> Result<(bool, String)> {
    let _ = std::fs::remove_dir_all(config);
    std::fs::create_dir_all(config)?;
    let pems: Vec<String> = case
        .trusted
        .iter()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .collect::<Result<_>>()?;
    std::fs::write(
        config.join("kmp.yaml"),
        inline_kmp_yaml("kmp-interop", None, "certificate", &pems.join("")),
    )?;
    let mut verifier = NotationVerifier::new("verifier-notation", "kmp-interop")
        .typed_cert_store("ca", "certs", &["kmp-interop"])
        .trust_policy_doc(trust_policy(case.identities, case.tsa.is_some()));
    if let Some(tsa) = case.tsa {
        let pem = std::fs::read_to_string(tsa)?;
        std::fs::write(
            config.join("kmp-tsa.yaml"),
            inline_kmp_yaml("kmp-tsa", None, "certificate", &pem),
        )?;
        verifier = verifier.typed_cert_store("tsa", "tsa", &["kmp-tsa"]);
    }
    std::fs::write(config.join("verifier.yaml"), verifier.yaml())?;
    let rule = if case.any_signature { "any" } else { "all" };
    std::fs::write(
        config.join("policy.yaml"),
        config_policy_yaml(&[(NOTATION_ARTIFACT_TYPE, rule)]),
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["verify", &case.reference, "--config"])
        .arg(config)
        .args(["--plain-http", host])
        .output()
        .context("running verdict verify")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Ok((true, text)),
        Some(1) => Ok((false, text)),
        _ => bail!(
            "verdict verify gave no verdict for {}: {text}",
            case.reference
        ),
    }
}

/// An EC P-256 signing chain of our own (root → intermediate → leaf): the root's PEM file, and
/// the leaf's key and chain (leaf, intermediate, root: notation wants the whole chain) for
/// notation's signingkeys.json.
fn ec_chain(dir: &Path) -> Result<(PathBuf, String, String)> {
    let root = CertBuilder::root_ca("CN=Interop Root,O=Verdict,ST=WA,C=US")
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let intermediate = CertBuilder::intermediate_ca("CN=Interop Intermediate,O=Verdict,ST=WA,C=US")
        .key_alg(KeyAlg::EcP256)
        .signed_by(&root)?;
    let leaf = CertBuilder::code_signing("CN=ec-signer,O=Verdict,ST=WA,C=US")
        .key_alg(KeyAlg::EcP256)
        .signed_by(&intermediate)?;
    let root_path = dir.join("ec-root.pem");
    root.write_pem(&root_path)?;
    Ok((
        root_path,
        leaf.key().pkcs8_pem(),
        format!("{}{}{}", leaf.pem(), intermediate.pem(), root.pem()),
    ))
}

async fn run_matrix(registry: Registry) -> Result<()> {
    let host = registry.host();
    let client = registry.client();
    let referrers_api = registry.has_referrers_api();
    let work = tempfile::tempdir()?;
    let notation = Notation::new()?;
    let tsa = TimestampServer::start().await?;
    let tsa_root = tsa.root_pem_file().await?;
    let rsa = notation.generate_test_key("rsa", true, None)?;
    let other = notation.generate_test_key("other", false, None)?;
    let (ec_root, ec_key, ec_chain_pem) = ec_chain(work.path())?;
    notation.add_signing_key("ec", &ec_key, &ec_chain_pem)?;

    let image = |repo: &'static str| {
        let client = client.clone();
        let host = host.clone();
        async move {
            let d = client.push_image(repo, "v1").await?;
            anyhow::Ok(format!("{host}/{repo}@{}", d.digest))
        }
    };
    let sign = |reference: &str, key: &str, format: &str| {
        notation.sign(
            reference,
            &SignOptions {
                format: Some(format),
                key: Some(key),
                referrers_api,
                ..SignOptions::default()
            },
        )
    };

    let rsa_jws = image("rsa-jws").await?;
    sign(&rsa_jws, "rsa", "jws")?;
    let rsa_cose = image("rsa-cose").await?;
    sign(&rsa_cose, "rsa", "cose")?;
    let ec_jws = image("ec-jws").await?;
    sign(&ec_jws, "ec", "jws")?;
    let ec_cose = image("ec-cose").await?;
    sign(&ec_cose, "ec", "cose")?;
    let sbom = work.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"interop"}"#)?;
    let unsigned_noise = image("unsigned-noise").await?;
    oras_attach(&unsigned_noise, SBOM_TYPE, &sbom, !referrers_api)?;
    let signed_noise = image("signed-noise").await?;
    oras_attach(&signed_noise, SBOM_TYPE, &sbom, !referrers_api)?;
    sign(&signed_noise, "rsa", "jws")?;
    let two_signers = image("two-signers").await?;
    sign(&two_signers, "rsa", "jws")?;
    sign(&two_signers, "other", "cose")?;
    let expired = image("expired").await?;
    notation.sign(
        &expired,
        &SignOptions {
            key: Some("rsa"),
            referrers_api,
            expiry: Some("1s"),
            ..SignOptions::default()
        },
    )?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Signed two seconds after `notation cert generate-test` made the certificate (valid from that
    // second): the TSA's genTime is whole seconds, and a timestamp whose lower limit precedes the
    // certificate's notBefore is refused by both tools.
    let stamped = image("timestamped").await?;
    notation.sign(
        &stamped,
        &SignOptions {
            key: Some("rsa"),
            referrers_api,
            timestamp: Some((&tsa.url(), &tsa_root)),
            ..SignOptions::default()
        },
    )?;

    let signer = ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=rsa"];
    let cases = [
        Case::allow("RSA, JWS", rsa_jws.clone(), &[&rsa]),
        Case::allow("RSA, COSE", rsa_cose, &[&rsa]),
        Case::allow("EC P-256 with an intermediate, JWS", ec_jws, &[&ec_root]),
        Case::allow(
            "EC P-256 with an intermediate, COSE",
            ec_cose.clone(),
            &[&ec_root],
        ),
        Case::allow(
            "trusted identity matches the signer",
            rsa_jws.clone(),
            &[&rsa],
        )
        .identities(&signer),
        Case::deny("trusted identity is someone else", rsa_jws.clone(), &[&rsa])
            .identities(&["x509.subject: C=US, ST=WA, O=Someone Else"]),
        Case::deny("wrong trust store", rsa_jws, &[&other]),
        Case::deny("EC chain against the RSA trust store", ec_cose, &[&rsa]),
        Case::deny(
            "unsigned, with an SBOM attached by oras",
            unsigned_noise,
            &[&rsa],
        ),
        Case::allow(
            "signed, with an SBOM attached by oras",
            signed_noise,
            &[&rsa],
        ),
        Case::allow(
            "two signatures, one trusted (Policy: any)",
            two_signers.clone(),
            &[&rsa],
        )
        .any_signature(),
        Case::allow(
            "two signatures, one trusted (Ratify's default Policy: all)",
            two_signers,
            &[&rsa],
        )
        .verdict_differs(),
        Case::deny("signature expired (--expiry 1s)", expired, &[&rsa]),
        Case::allow(
            "RFC 3161 timestamp from a local TSA, TSA root in the tsa store",
            stamped.clone(),
            &[&rsa],
        )
        .tsa(&tsa_root),
        Case::deny(
            "RFC 3161 timestamp, the tsa store holds another root",
            stamped.clone(),
            &[&rsa],
        )
        .tsa(&other),
        Case::allow(
            "RFC 3161 timestamp, the policy names no tsa store",
            stamped,
            &[&rsa],
        ),
    ];

    let mut table = Agreement::new("notation", registry.kind());
    let mut servers = ServerPool::new(env!("CARGO_BIN_EXE_verdict"), &host);
    for case in &cases {
        let certs: Vec<&Path> = case.trusted.to_vec();
        let tsa_certs: Vec<&Path> = case.tsa.into_iter().collect();
        notation.set_trust_stores(&[("ca", "certs", &certs), ("tsa", "tsa", &tsa_certs)])?;
        notation.set_trust_policy(&trust_policy(case.identities, case.tsa.is_some()))?;
        let (tool_allows, tool_says) = notation.verify(&case.reference)?;
        let tool_says = format!("{tool_says}\n--- TSA log:\n{}", tsa.log_tail());
        let config = work.path().join("config");
        let (verdict_allows, verdict_says) = verdict_verify(&host, case, &config)?;
        let served = servers.verify(&config, &case.reference).await?;
        let got = Verdicts {
            tool: tool_allows,
            verify: verdict_allows,
            serve: served,
        };
        table.check(
            case.name,
            case.expect_allow,
            case.verdict_differs,
            &got,
            || format!("--- notation:\n{tool_says}\n--- verdict verify:\n{verdict_says}"),
        );
    }
    table.finish(&registry.log_tail())
}

#[tokio::test]
async fn notation_signatures_in_docker_registry_get_notations_verdicts() {
    let registry = DockerRegistry::start().await.expect("docker-registry");
    run_matrix(Registry::Distribution(registry)).await.unwrap();
}

#[tokio::test]
async fn notation_signatures_behind_the_referrers_api_get_notations_verdicts() {
    let registry = ReferrersRegistry::start()
        .await
        .expect("referrers registry");
    run_matrix(Registry::Referrers(registry)).await.unwrap();
}
