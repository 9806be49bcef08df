//! Azure end to end, on one machine: `verdict serve` with a pod's workload-identity environment
//! pulls from a real docker-registry behind the ACR token-server fake (Entra token → exchange →
//! refresh token → access token) and verifies with certificates and keys from the Key Vault fake;
//! rotation, disabled versions and failures of every service behave as a platform engineer
//! needs (testkit/src/azure: protocol-faithful fakes, no Key Vault emulator can be installed
//! here — see docs/architecture.md).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use verdict_testkit::azure::{AzureWorld, CLIENT_ID, KvRequest, TENANT_ID, cosign_signer};
use verdict_testkit::pki::{KeyAlg, TestChain};
use verdict_testkit::serve::{ServeOptions, VerdictServer};

const CERT: &str = "notation-signing";
const KEY: &str = "cosign-signing";

async fn serve(world: &AzureWorld, yaml: String) -> Result<VerdictServer> {
    serve_with_env(world, yaml, &[]).await
}

/// With `env` on top of the pod's workload-identity environment.
async fn serve_with_env(
    world: &AzureWorld,
    yaml: String,
    env: &[(&str, &str)],
) -> Result<VerdictServer> {
    VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), yaml)
            .envs(world.pod_env())
            .envs(env.iter().copied())
            .args(world.serve_args())
            // Denies are kept briefly, so a flip shows within the polling below.
            .args(["--deny-ttl-secs", "1"]),
    )
    .await
}

fn key(world: &AzureWorld, repo: &str, digest: &str) -> String {
    format!("{}/{repo}@{digest}", world.registry_host())
}

/// Polls `key` until `want` (Ok(allowed) or an error containing the text), for up to `within`.
async fn until(server: &VerdictServer, key: &str, want: Want, within: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let got = server.verify_one(key).await?;
        let ok = match (&want, &got) {
            (Want::Allow, Ok(true)) | (Want::Deny, Ok(false)) => true,
            (Want::NoVerdict(text), Err(e)) => e.contains(text),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        if start.elapsed() > within {
            bail!(
                "{key}: wanted {want:?} within {within:?}, last answer {got:?}\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Debug)]
enum Want {
    Allow,
    Deny,
    NoVerdict(&'static str),
}

/// Polls `/status` until provider `name` reports a failed fetch; its status then.
async fn until_failure_reported(
    server: &VerdictServer,
    name: &str,
    within: Duration,
) -> Result<Value> {
    let start = Instant::now();
    loop {
        let status = server.status().await?;
        let provider = provider_status(&status, name)?.clone();
        if provider["issuccess"] == false {
            return Ok(provider);
        }
        if start.elapsed() > within {
            bail!("{name} still reports success after {within:?}: {provider}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `verdict config check --live DIR` as the pod would run it.
async fn config_check_live(
    world: &AzureWorld,
    dir: &std::path::Path,
) -> std::io::Result<std::process::Output> {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["config", "check", "--live"])
        .arg(dir)
        .args(world.serve_args())
        .envs(world.pod_env())
        .output()
        .await
}

fn provider_status<'a>(status: &'a Value, name: &str) -> Result<&'a Value> {
    status["keyManagementProviders"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .with_context(|| format!("no status for {name} in {status}"))
}

#[tokio::test]
async fn workload_identity_pulls_from_acr_and_verifies_with_key_vault_material() -> Result<()> {
    let world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    let cert_version = world.add_certificate(CERT, &chain);
    let signer = cosign_signer("cosign v1")?;
    let key_version = world.add_key(KEY, &signer)?;
    let push = world
        .pusher(&["apps/notation", "apps/cosign", "apps/unsigned"])
        .await?;
    let notation = world
        .push_notation_signed(&push, "apps/notation", "v1", &chain)
        .await?;
    let cosign = world
        .push_cosign_signed(&push, "apps/cosign", "v1", &signer)
        .await?;
    let unsigned = push.push_image("apps/unsigned", "v1").await?;

    let exchanges_before = world.acr.exchanges(); // the pusher's own
    // The pod's own client ID is another identity: the Store's and the KMPs' clientID win.
    let server = serve_with_env(
        &world,
        world.ratify_yaml(CERT, KEY, "1h"),
        &[("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000beef")],
    )
    .await?;
    assert_eq!(
        server
            .verify_one(&key(&world, "apps/notation", &notation.digest))
            .await?,
        Ok(true),
        "Notation, chain from a Key Vault secret\n{}",
        server.log_tail()
    );
    assert_eq!(
        server
            .verify_one(&key(&world, "apps/cosign", &cosign.digest))
            .await?,
        Ok(true),
        "Cosign, key from a Key Vault key version"
    );
    assert_eq!(
        server
            .verify_one(&key(&world, "apps/unsigned", &unsigned.digest))
            .await?,
        Ok(false),
        "unsigned"
    );

    // Entra saw the projected token as the client assertion, for our client, for both resources.
    let requests = world.entra.requests();
    assert!(
        requests.iter().all(|r| r.assertion == "sa-token-1"
            && r.client_id == CLIENT_ID
            && r.tenant == TENANT_ID)
    );
    let scopes: Vec<&str> = requests.iter().map(|r| r.scope.as_str()).collect();
    assert!(
        scopes.contains(&"https://vault.azure.net/.default"),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"https://containerregistry.azure.net/.default"),
        "{scopes:?}"
    );
    // The token dance is paid once, not per request: three repositories, one exchange.
    assert_eq!(
        world.acr.exchanges() - exchanges_before,
        1,
        "one ACR refresh token for the registry"
    );
    let vault_calls: Vec<KvRequest> = world.vault.requests();
    assert!(
        vault_calls
            .iter()
            .any(|r| r.path.contains(&format!("/secrets/{CERT}/{cert_version}"))),
        "the chain comes from the certificate's secret: {vault_calls:?}"
    );

    // Status like Ratify's, with versions and fingerprints.
    let status = server.status().await?;
    let certs = provider_status(&status, "kmp-akv-certs")?;
    assert_eq!(certs["issuccess"], true, "{certs}");
    assert!(certs["lastfetchedtime"].is_string(), "{certs}");
    assert_eq!(certs["properties"][0]["Version"], cert_version.as_str());
    assert_eq!(certs["properties"][0]["State"], "trusted");
    assert!(
        certs["properties"][0]["Fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("sha256:"))
    );
    let keys = provider_status(&status, "kmp-akv-keys")?;
    assert_eq!(keys["properties"][0]["Version"], key_version.as_str());
    assert_eq!(keys["properties"][0]["Type"], "Key");

    // Secrets stay out of the log.
    let log = server.log_tail();
    assert!(!log.contains("sa-token-1"), "{log}");
    assert!(!log.contains("eyJ"), "a token in the log:\n{log}");
    Ok(())
}

#[tokio::test]
async fn key_vault_rotation_is_picked_up_at_the_next_refresh() -> Result<()> {
    let world = AzureWorld::start().await?;
    // One version per page: every listing below follows nextLink.
    world.vault.set_page_size(1);
    let chain1 = TestChain::new(KeyAlg::EcP256)?;
    let c1 = world.add_certificate(CERT, &chain1);
    let signer1 = cosign_signer("cosign v1")?;
    let v1 = world.add_key(KEY, &signer1)?;
    let push = world.pusher(&["rot/notation", "rot/cosign"]).await?;
    let n1 = world
        .push_notation_signed(&push, "rot/notation", "c1", &chain1)
        .await?;
    let k1 = world
        .push_cosign_signed(&push, "rot/cosign", "v1", &signer1)
        .await?;
    let server = serve(&world, world.ratify_yaml(CERT, KEY, "1s")).await?;
    let n1 = key(&world, "rot/notation", &n1.digest);
    let k1 = key(&world, "rot/cosign", &k1.digest);
    assert_eq!(server.verify_one(&n1).await?, Ok(true));
    assert_eq!(server.verify_one(&k1).await?, Ok(true));

    // New versions, no configuration change: both old and new are trusted after a refresh.
    let signer2 = cosign_signer("cosign v2")?;
    world.add_key(KEY, &signer2)?;
    let chain2 = TestChain::new(KeyAlg::EcP256)?;
    world.add_certificate(CERT, &chain2);
    let k2 = world
        .push_cosign_signed(&push, "rot/cosign", "v2", &signer2)
        .await?;
    let n2 = world
        .push_notation_signed(&push, "rot/notation", "c2", &chain2)
        .await?;
    let k2 = key(&world, "rot/cosign", &k2.digest);
    let n2 = key(&world, "rot/notation", &n2.digest);
    until(&server, &k2, Want::Allow, Duration::from_secs(10)).await?;
    until(&server, &n2, Want::Allow, Duration::from_secs(10)).await?;
    assert_eq!(
        server.verify_one(&k1).await?,
        Ok(true),
        "v1 is still enabled"
    );
    assert_eq!(
        server.verify_one(&n1).await?,
        Ok(true),
        "c1 is still enabled"
    );

    // Disabling a version removes it: denied after the next refresh, and never allowed again.
    world.vault.set_key_enabled(KEY, &v1, false);
    world.vault.set_certificate_enabled(CERT, &c1, false);
    until(&server, &k1, Want::Deny, Duration::from_secs(10)).await?;
    until(&server, &n1, Want::Deny, Duration::from_secs(10)).await?;
    for _ in 0..10 {
        assert_eq!(server.verify_one(&k1).await?, Ok(false), "v1 came back");
        assert_eq!(server.verify_one(&n1).await?, Ok(false), "c1 came back");
        assert_eq!(server.verify_one(&k2).await?, Ok(true));
        assert_eq!(server.verify_one(&n2).await?, Ok(true));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = server.status().await?;
    let keys = provider_status(&status, "kmp-akv-keys")?;
    let v1_state = keys["properties"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["Version"] == v1.as_str()))
        .with_context(|| format!("v1 in {keys}"))?;
    assert_eq!(v1_state["State"], "disabled", "{keys}");
    assert_eq!(v1_state["Enabled"], false, "{keys}");
    Ok(())
}

#[tokio::test]
async fn key_vault_failures_keep_the_last_good_keys_and_never_allow_more() -> Result<()> {
    let world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    world.add_certificate(CERT, &chain);
    let signer = cosign_signer("cosign v1")?;
    let v1 = world.add_key(KEY, &signer)?;
    let push = world.pusher(&["faults/cosign"]).await?;
    let image = world
        .push_cosign_signed(&push, "faults/cosign", "v1", &signer)
        .await?;
    let image = key(&world, "faults/cosign", &image.digest);

    // Key Vault refuses us (RBAC) from the start: no verdict, naming why — never a deny.
    world.vault.deny_all(true);
    let server = serve(&world, world.ratify_yaml(CERT, KEY, "1s")).await?;
    until(
        &server,
        &image,
        Want::NoVerdict("could not be fetched from Key Vault"),
        Duration::from_secs(5),
    )
    .await?;
    let status = server.status().await?;
    let keys = provider_status(&status, "kmp-akv-keys")?;
    assert_eq!(keys["issuccess"], false, "{keys}");
    assert_eq!(keys["serving"], "unavailable", "{keys}");
    assert!(
        keys["brieferror"]
            .as_str()
            .unwrap_or_default()
            .contains("403"),
        "{keys}"
    );
    // Permission granted: allowed after the next refresh.
    world.vault.deny_all(false);
    until(&server, &image, Want::Allow, Duration::from_secs(10)).await?;

    // Throttled and failing: the last good keys stay in force (still allowed), reported.
    world
        .vault
        .fail_next(1_000_000, 429, "Throttled", "Rate limit exceeded");
    let keys = until_failure_reported(&server, "kmp-akv-keys", Duration::from_secs(15))
        .await
        .context("a failing refresh was not reported")?;
    assert_eq!(keys["serving"], "last good", "{keys}");
    assert_eq!(server.verify_one(&image).await?, Ok(true), "last good keys");

    // A version disabled while Key Vault cannot be read changes nothing until it can; then it
    // is denied. Nothing was ever trusted that the last good keys did not trust.
    world.vault.set_key_enabled(KEY, &v1, false);
    world.vault.fail_next(0, 429, "", "");
    until(&server, &image, Want::Deny, Duration::from_secs(10)).await?;

    // A malformed JWK in a new version: the refresh fails (status names the key), the set in
    // force stays (still denied: v1 is disabled, nothing new is trusted).
    world.vault.add_key_version(
        KEY,
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": "not base64url!", "y": "AA"}),
    );
    let keys = until_failure_reported(&server, "kmp-akv-keys", Duration::from_secs(10))
        .await
        .context("a malformed JWK was not reported")?;
    assert!(
        keys["error"].as_str().unwrap_or_default().contains(KEY),
        "{keys}"
    );
    assert_eq!(server.verify_one(&image).await?, Ok(false));
    Ok(())
}

#[tokio::test]
async fn entra_and_acr_failures_are_no_verdict_and_recover() -> Result<()> {
    let mut world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    world.add_certificate(CERT, &chain);
    let signer = cosign_signer("cosign v1")?;
    world.add_key(KEY, &signer)?;
    let repos = ["e/one", "e/two", "e/three", "e/four", "e/five"];
    let push = world
        .pusher(&[
            "e/one", "e/two", "e/three", "e/four", "e/five", "e/six", "e/seven",
        ])
        .await?;
    // Entra tokens the SDK renews at every use (it renews 5 minutes before expiry), so an
    // Entra outage shows as soon as a new exchange is needed.
    world.entra.set_token_lifetime(301);
    let mut images = Vec::new();
    for repo in repos {
        let d = world.push_cosign_signed(&push, repo, "v1", &signer).await?;
        images.push(key(&world, repo, &d.digest));
    }

    // ACR refuses the exchange: no verdict (a credential problem is never "unsigned").
    world.acr.fail_exchange(401);
    let server = serve(&world, world.ratify_yaml(CERT, KEY, "1h")).await?;
    match server.verify_one(&images[0]).await? {
        Err(e) => assert!(e.contains("exchange"), "{e}"),
        other => bail!("wanted no verdict, got {other:?}"),
    }
    world.acr.clear_faults();
    until(&server, &images[0], Want::Allow, Duration::from_secs(5)).await?;

    // Short-lived tokens: they expire mid-run and are renewed without a failed lookup.
    world.acr.set_access_token_lifetime(2);
    world.acr.set_refresh_token_lifetime(3);
    world.acr.revoke_refresh_tokens();
    for image in &images[1..] {
        assert_eq!(server.verify_one(image).await?, Ok(true), "{image}");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let exchanges = world.acr.exchanges();
    assert!(
        (2..=6).contains(&exchanges),
        "renewed as tokens expire, not per request: {exchanges} exchanges"
    );

    // Entra down: cached tokens carry on; a new exchange cannot happen, so a lookup that needs
    // the registry is no verdict until Entra is back.
    world.acr.set_refresh_token_lifetime(10_800);
    world.acr.set_access_token_lifetime(3600);
    world.acr.revoke_refresh_tokens();
    world.entra.stop().await;
    let fresh = world
        .push_cosign_signed(&push, "e/six", "v1", &signer)
        .await?;
    let fresh = key(&world, "e/six", &fresh.digest);
    match server.verify_one(&fresh).await? {
        Err(e) => assert!(e.contains("Entra") || e.contains("credentials"), "{e}"),
        Ok(v) => bail!("Entra is down, yet a verdict: {v}"),
    }
    world.entra.restart().await?;
    until(&server, &fresh, Want::Allow, Duration::from_secs(10)).await?;

    // kubelet rotates the projected token: the next Entra request uses the new one.
    world.rotate_service_account_token("sa-token-2")?;
    world.acr.revoke_refresh_tokens();
    let seen = world.entra.requests().len();
    // Past the cached Entra token's renewal point (301 s lifetime, renewed 300 s early).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = world
        .push_cosign_signed(&push, "e/seven", "v1", &signer)
        .await?;
    let after = key(&world, "e/seven", &after.digest);
    until(&server, &after, Want::Allow, Duration::from_secs(10)).await?;
    let since: Vec<_> = world.entra.requests().into_iter().skip(seen).collect();
    assert!(!since.is_empty(), "no Entra request after the rotation");
    assert!(
        since
            .iter()
            .all(|r| r.assertion == "sa-token-2" && r.status == 200),
        "the rotated token was not re-read: {since:?}"
    );
    Ok(())
}

/// The seed's KeyManagementProvider YAML (certificates, then keys), expanded as the shell does,
/// with the vault URI pointed at the fake: `verdict verify` allows what it should with each.
#[tokio::test]
async fn the_seeds_key_vault_providers_work_against_the_fake_vault() -> Result<()> {
    let world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    world.add_certificate("signing-cert", &chain);
    let signer = cosign_signer("seed key")?;
    let key_version = world.add_key("cosign-key", &signer)?;
    let push = world.pusher(&["seed/notation", "seed/cosign"]).await?;
    let n = world
        .push_notation_signed(&push, "seed/notation", "v1", &chain)
        .await?;
    let k = world
        .push_cosign_signed(&push, "seed/cosign", "v1", &signer)
        .await?;

    let md = std::fs::read_to_string(verdict_testkit::shared_file("seeds/ratify-on-azure.md"))?;
    // The first two providers of the seed: certificates (Notation), keys (Cosign). The later
    // ones are its hand-edited rotation examples, which Verdict makes unnecessary.
    let kmps: Vec<String> = verdict_testkit::seeds::resource_blocks(&md)
        .into_iter()
        .filter(|b| b.contains("kind: KeyManagementProvider"))
        .take(2)
        .collect();
    assert!(
        kmps[0].contains("certificates:") && kmps[1].contains("keys:"),
        "the seed's certificate and key providers: {kmps:?}"
    );
    let expand = |block: &str| {
        block
            .replace("https://${AKV_NAME}.vault.azure.net/", &world.vault.url())
            .replace("${CERT_NAME}", "signing-cert")
            .replace("${KEY_ID}", "") // `# Optional`: unset means every enabled version
            .replace("${KEY_NAME}", "cosign-key")
            .replace("${KEY_VER}", &key_version)
            .replace("${TENANT_ID}", TENANT_ID)
            .replace("${IDENTITY_CLIENT_ID}", CLIENT_ID)
    };
    let full = world.ratify_yaml(CERT, KEY, "1h");
    let store = full.split("---\n").next().context("the Store")?;
    let verifiers: Vec<&str> = full
        .split("---\n")
        .filter(|d| d.contains("kind: Verifier"))
        .collect();
    for (kmp, verifier, repo, image) in [
        (&kmps[0], verifiers[0], "seed/notation", &n),
        (&kmps[1], verifiers[1], "seed/cosign", &k),
    ] {
        let kmp = expand(kmp);
        assert!(!kmp.contains('$'), "unexpanded: {kmp}");
        let verifier = verifier.replace("kmp-akv-certs", "keymanagementprovider-akv");
        let verifier = verifier.replace("kmp-akv-keys", "keymanagementprovider-akv");
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("ratify.yaml"),
            format!("{store}---\n{kmp}---\n{verifier}"),
        )?;
        // Async: the fakes run on this test's runtime and must keep answering meanwhile.
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
            .arg("verify")
            .arg(format!("{}/{repo}@{}", world.registry_host(), image.digest))
            .arg("--config")
            .arg(dir.path())
            .args(world.serve_args())
            .envs(world.pod_env())
            .output()
            .await?;
        assert!(
            out.status.success(),
            "{repo}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `verdict config check --live` fetches the providers now and shows their versions; a vault
/// that refuses us is a failed check (exit 1) naming the provider and the error.
#[tokio::test]
async fn config_check_live_shows_key_vault_status() -> Result<()> {
    let world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    let cert_version = world.add_certificate(CERT, &chain);
    let signer = cosign_signer("cosign v1")?;
    let v1 = world.add_key(KEY, &signer)?;
    world.vault.set_key_enabled(KEY, &v1, false);
    let v2 = world.add_key(KEY, &cosign_signer("cosign v2")?)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("ratify.yaml"),
        world.ratify_yaml(CERT, KEY, "5m"),
    )?;
    let check = || config_check_live(&world, dir.path());
    let out = check().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("fetched  KeyManagementProvider/kmp-akv-certs"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Certificate {CERT} version {cert_version}: Trusted sha256:"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Key {KEY} version {v1}: Disabled")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Key {KEY} version {v2}: Trusted sha256:")),
        "{stdout}"
    );
    assert!(
        stdout.contains("trust configuration cluster sha256:"),
        "{stdout}"
    );

    world.vault.deny_all(true);
    let out = check().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED   KeyManagementProvider/kmp-akv-keys"),
        "{stdout}"
    );
    assert!(
        stdout.contains("does not have keys list permission"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no verdicts until its key material can be fetched"),
        "{stdout}"
    );

    // A key that is not in the vault: 404, named.
    world.vault.deny_all(false);
    std::fs::write(
        dir.path().join("ratify.yaml"),
        world.ratify_yaml(CERT, "no-such-key", "5m"),
    )?;
    let out = check().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED   KeyManagementProvider/kmp-akv-keys"),
        "{stdout}"
    );
    assert!(stdout.contains("KeyNotFound"), "{stdout}");
    Ok(())
}

/// A KeyManagementProvider's refresh-schedule annotation (cron, 6 fields here: every second)
/// replaces its refreshInterval; an invalid one is refused naming the field.
#[tokio::test]
async fn a_refresh_schedule_annotation_replaces_the_interval() -> Result<()> {
    let world = AzureWorld::start().await?;
    let chain = TestChain::new(KeyAlg::EcP256)?;
    world.add_certificate(CERT, &chain);
    world.add_key(KEY, &cosign_signer("cosign v1")?)?;
    let annotate = |yaml: String, schedule: &str| {
        yaml.replacen(
            "  name: kmp-akv-keys\n",
            &format!(
                "  name: kmp-akv-keys\n  annotations:\n    verdict.ratify.deislabs.io/refresh-schedule: \"{schedule}\"\n"
            ),
            1,
        )
    };
    // refreshInterval 1h: only the schedule can pick up the new version within seconds.
    let yaml = annotate(world.ratify_yaml(CERT, KEY, "1h"), "* * * * * *");
    let server = serve(&world, yaml).await?;
    let signer2 = cosign_signer("cosign v2")?;
    world.add_key(KEY, &signer2)?;
    let push = world.pusher(&["sched/app"]).await?;
    let image = world
        .push_cosign_signed(&push, "sched/app", "v2", &signer2)
        .await?;
    until(
        &server,
        &key(&world, "sched/app", &image.digest),
        Want::Allow,
        Duration::from_secs(8),
    )
    .await?;
    let status = server.status().await?;
    let keys = provider_status(&status, "kmp-akv-keys")?;
    assert_eq!(keys["refreshschedule"], "* * * * * *", "{keys}");

    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("ratify.yaml"),
        annotate(world.ratify_yaml(CERT, KEY, "1h"), "0 3 * 13 1-5"),
    )?;
    let out = config_check_live(&world, dir.path()).await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("month field"), "{stdout}");
    Ok(())
}
