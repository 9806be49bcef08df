//! Differential interop with the real `cosign` CLI (v3.1.3): images signed by `cosign sign` with
//! keys, offline (`--tlog-upload=false`, as the seed signs), in each layout cosign writes — the
//! v3 Sigstore bundle referrer, the legacy `.sig` tag and the legacy manifest as an OCI 1.1
//! referrer — into docker-registry 2.8 (tag schema) and a registry with the referrers API; judged
//! by `cosign verify --key`, by `verdict verify` and by a running `verdict serve` (its Gatekeeper
//! verify endpoint) under a Cosign Verifier trusting the same key. Every case must get the same
//! verdict from all three, and the expected one.
//!
//! The tools come from `scripts/install-deps.sh --oracles` (`make test` runs it); a missing one
//! fails the test with that command.

use std::path::Path;

use anyhow::{Context, Result, bail};
use verdict_testkit::DockerRegistry;
use verdict_testkit::oracles::{
    Agreement, Cosign, CosignKey, CosignLayout, InteropRegistry as Registry, ReferrersRegistry,
    Verdicts, oras_attach,
};
use verdict_testkit::ratify::{config_policy_yaml, inline_kmp_yaml};
use verdict_testkit::serve::ServerPool;

const SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SBOM_TYPE: &str = "application/spdx+json";
const SCAN_TYPE: &str = "application/sarif+json";

struct Case<'a> {
    name: &'a str,
    reference: String,
    trusted: &'a CosignKey,
    /// cosign needs `--experimental-oci11` to look for legacy signatures among referrers.
    oci11: bool,
    /// Ratify Policy `default` rule: `any` or `all` (Ratify's default).
    rule: &'a str,
    expect_allow: bool,
    /// Verdict decides the opposite of cosign on purpose (README, "Where Verdict and the
    /// upstream tools differ on purpose").
    verdict_differs: bool,
}

impl<'a> Case<'a> {
    fn allow(name: &'a str, reference: String, trusted: &'a CosignKey) -> Self {
        Case {
            name,
            reference,
            trusted,
            oci11: false,
            rule: "all",
            expect_allow: true,
            verdict_differs: false,
        }
    }

    fn deny(name: &'a str, reference: String, trusted: &'a CosignKey) -> Self {
        Case {
            expect_allow: false,
            ..Case::allow(name, reference, trusted)
        }
    }

    fn oci11(mut self) -> Self {
        self.oci11 = true;
        self
    }

    fn any(mut self) -> Self {
        self.rule = "any";
        self
    }

    fn verdict_differs(mut self) -> Self {
        self.verdict_differs = true;
        self
    }
}

/// Ratify resources equivalent to `cosign verify --key PUB --insecure-ignore-tlog`: a Store with
/// `cosignEnabled`, a Cosign Verifier for both signature artifact types whose one global trust
/// policy trusts the key (inline KeyManagementProvider) without transparency-log checks, and a
/// Policy whose `default` rule is `rule`. (Naming both artifact types in the Policy would demand
/// a good signature of each type — Ratify's config-policy requires every listed type — where
/// cosign accepts either layout.)
fn write_config(dir: &Path, case: &Case<'_>) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let public = std::fs::read_to_string(&case.trusted.public)
        .with_context(|| format!("reading {}", case.trusted.public.display()))?;
    std::fs::write(
        dir.join("store.yaml"),
        "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-oras
spec:
  name: oras
  parameters:
    cosignEnabled: true
",
    )?;
    std::fs::write(
        dir.join("kmp.yaml"),
        inline_kmp_yaml("kmp-cosign", None, "key", &public),
    )?;
    std::fs::write(
        dir.join("verifier.yaml"),
        format!(
            "apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-cosign
spec:
  name: cosign
  artifactTypes: {SIG_TYPE},{BUNDLE_TYPE}
  parameters:
    trustPolicies:
      - name: default
        scopes: [\"*\"]
        keys:
          - provider: kmp-cosign
        tLogVerify: false
"
        ),
    )?;
    std::fs::write(
        dir.join("policy.yaml"),
        config_policy_yaml(&[("default", case.rule)]),
    )?;
    Ok(())
}

/// `verdict verify`; Ok(allowed).
fn verdict_verify(host: &str, case: &Case<'_>, config: &Path) -> Result<(bool, String)> {
    write_config(config, case)?;
    let config = config.display().to_string();
    let (code, out, err) = verdict_testkit::process::run_to_end(
        env!("CARGO_BIN_EXE_verdict"),
        &[
            "verify",
            &case.reference,
            "--config",
            &config,
            "--plain-http",
            host,
            "--log",
            "verdict_scanner::verify=debug",
            "--log-format",
            "json",
        ],
    );
    let text = format!("{out}{err}");
    match code {
        0 => Ok((true, text)),
        1 => Ok((false, text)),
        _ => bail!(
            "verdict verify gave no verdict for {}: {text}",
            case.reference
        ),
    }
}

async fn run_matrix(registry: Registry) -> Result<()> {
    let host = registry.host();
    let client = registry.client();
    let referrers_api = registry.has_referrers_api();
    let work = tempfile::tempdir()?;
    let cosign = Cosign::new()?;
    let trusted = cosign.generate_key_pair("trusted")?;
    let stranger = cosign.generate_key_pair("stranger")?;

    let image = |repo: &'static str| {
        let client = client.clone();
        let host = host.clone();
        async move {
            let d = client.push_image(repo, "v1").await?;
            anyhow::Ok(format!("{host}/{repo}@{}", d.digest))
        }
    };
    let sbom = work.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3","name":"interop"}"#)?;
    let scan = work.path().join("scan.sarif.json");
    std::fs::write(&scan, br#"{"version":"2.1.0","runs":[]}"#)?;

    let bundle = image("bundle").await?;
    cosign.sign(&bundle, &trusted, CosignLayout::Bundle, &[])?;
    let legacy = image("legacy").await?;
    cosign.sign(&legacy, &trusted, CosignLayout::LegacyTag, &[])?;
    let legacy_referrer = image("legacy-referrer").await?;
    cosign.sign(
        &legacy_referrer,
        &trusted,
        CosignLayout::LegacyReferrer,
        &[],
    )?;
    let annotated = image("annotated").await?;
    cosign.sign(
        &annotated,
        &trusted,
        CosignLayout::Bundle,
        &["team=payments", "build=1234"],
    )?;
    let annotated_legacy = image("annotated-legacy").await?;
    cosign.sign(
        &annotated_legacy,
        &trusted,
        CosignLayout::LegacyTag,
        &["team=payments"],
    )?;
    let strangers = image("strangers").await?;
    cosign.sign(&strangers, &stranger, CosignLayout::Bundle, &[])?;
    let two = image("two-signers").await?;
    cosign.sign(&two, &trusted, CosignLayout::Bundle, &[])?;
    cosign.sign(&two, &stranger, CosignLayout::Bundle, &[])?;
    let two_legacy = image("two-signers-legacy").await?;
    cosign.sign(&two_legacy, &stranger, CosignLayout::LegacyTag, &[])?;
    cosign.sign(&two_legacy, &trusted, CosignLayout::LegacyTag, &[])?;
    let noisy = image("signed-noise").await?;
    oras_attach(&noisy, SBOM_TYPE, &sbom, !referrers_api)?;
    cosign.sign(&noisy, &trusted, CosignLayout::Bundle, &[])?;
    oras_attach(&noisy, SCAN_TYPE, &scan, !referrers_api)?;
    let unsigned_noise = image("unsigned-noise").await?;
    oras_attach(&unsigned_noise, SBOM_TYPE, &sbom, !referrers_api)?;
    oras_attach(&unsigned_noise, SCAN_TYPE, &scan, !referrers_api)?;
    let unsigned = image("unsigned").await?;

    let cases = [
        Case::allow("key, Sigstore bundle (cosign v3 default)", bundle, &trusted),
        Case::allow(
            "key, legacy .sig tag (--new-bundle-format=false)",
            legacy.clone(),
            &trusted,
        ),
        Case::allow(
            "key, legacy signature as an OCI 1.1 referrer",
            legacy_referrer,
            &trusted,
        )
        .oci11(),
        Case::allow("signed annotations (-a), bundle", annotated, &trusted),
        Case::allow(
            "signed annotations (-a), legacy .sig",
            annotated_legacy,
            &trusted,
        ),
        Case::deny("legacy .sig, another key trusted", legacy, &stranger),
        Case::deny("signed only by an untrusted key", strangers, &trusted),
        Case::allow(
            "two bundles, one by an untrusted key (Policy: any)",
            two.clone(),
            &trusted,
        )
        .any(),
        Case::allow(
            "two bundles, one by an untrusted key (Ratify's default Policy: all)",
            two,
            &trusted,
        )
        .verdict_differs(),
        Case::allow(
            "one .sig manifest with a trusted and an untrusted signature",
            two_legacy,
            &trusted,
        ),
        Case::allow(
            "signed, with an SBOM and a scan report attached by oras",
            noisy,
            &trusted,
        ),
        Case::deny(
            "unsigned, with an SBOM and a scan report attached by oras",
            unsigned_noise,
            &trusted,
        ),
        Case::deny("unsigned", unsigned, &trusted),
    ];

    let mut table = Agreement::new("cosign", registry.kind());
    let mut servers = ServerPool::new(env!("CARGO_BIN_EXE_verdict"), &host);
    for case in &cases {
        let (tool_allows, tool_says) =
            cosign.verify(&case.reference, &case.trusted.public, case.oci11)?;
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
            || format!("--- cosign:\n{tool_says}\n--- verdict verify:\n{verdict_says}"),
        );
    }
    table.finish(&registry.log_tail())
}

#[tokio::test]
async fn cosign_signatures_in_docker_registry_get_cosigns_verdicts() {
    let registry = DockerRegistry::start().await.expect("docker-registry");
    run_matrix(Registry::Distribution(registry)).await.unwrap();
}

#[tokio::test]
async fn cosign_signatures_behind_the_referrers_api_get_cosigns_verdicts() {
    let registry = ReferrersRegistry::start()
        .await
        .expect("referrers registry");
    run_matrix(Registry::Referrers(registry)).await.unwrap();
}
