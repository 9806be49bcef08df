//! Ratify's default ConstraintTemplates, unchanged, decide pods as Gatekeeper would with a real
//! `verdict serve` as the external-data provider: the templates' Rego (v0) runs in regorus, and
//! `external_data` calls the server over HTTPS the way Gatekeeper does (one ProviderRequest per
//! call; items with an `error` go to `errors`; a provider that cannot be reached yields
//! `system_error`). Each template must admit the signed image and deny the unsigned one, a pod
//! with a per-key error, and any pod while the server is unreachable.
//!
//! Over 600 lines because the Gatekeeper harness (regorus, `external_data` over HTTPS, the walk
//! rewrite) and the templates it runs belong together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::TestCert;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::ratify::{NotationVerifier, inline_kmp_yaml};
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VERIFY_V2, VerdictServer};
use verdict_testkit::{DockerRegistry, shared_dir};

/// Ratify's template libraries, relative to the shared dir: v1.4's, the current one's copy in the
/// reference notes, and the current repository's library and default ConstraintTemplate. Every
/// `template.yaml` under them is run.
const LIBRARIES: &[&str] = &[
    "reference/examples/ratify-v1/library",
    "reference/examples/ratify-v2/library",
    "vectors/ratify-gatekeeper/library",
    "vectors/ratify-gatekeeper/configs/constrainttemplates",
];
/// Templates that also require an SBOM or a vulnerability report, which Verdict does not verify:
/// they deny every image here, the signed one included (still fail closed).
const NEEDS_OTHER_ARTIFACTS: &[&str] = &["sbom-validation", "vulnerability-report-validation"];
/// The `issuer` parameter of the issuer templates: the Issuer Verdict reports for the test
/// certificate (Ratify's notation extensions use Go's `pkix.Name` string form).
const ISSUER: &str = "CN=demo,O=Verdict Demo,ST=WA,C=US";
/// Provider names in the templates: Ratify v1's provider serves `/v1/verify`, v2's `/v2/verify`.
const V1_PROVIDER: &str = "ratify-provider";
const V2_PROVIDER: &str = "ratify-gatekeeper-provider";
/// The Provider's `spec.timeout` as Gatekeeper applies it to each call.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// A ConstraintTemplate's Rego and its package.
struct Template {
    path: PathBuf,
    /// The library directory it came from (`default`, `multi-tenancy-validation`, ...).
    name: String,
    package: String,
    rego: String,
    /// The constraint's `spec.parameters` (its sample's, with `issuer` set to [`ISSUER`]).
    parameters: Value,
}

/// Every `*/template.yaml` under the libraries, sorted by path.
fn library_templates(shared: &Path) -> Result<Vec<Template>> {
    let mut paths = Vec::new();
    for lib in LIBRARIES {
        let dir = shared.join(lib);
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path().join("template.yaml");
            if path.is_file() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    ensure!(
        paths.len() >= 15,
        "expected the three libraries' templates, found {paths:?}"
    );
    paths.iter().map(|p| load_template(p)).collect()
}

fn load_template(path: &Path) -> Result<Template> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (docs, diags) = verdict_crds::parse_yaml(&text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        bail!("{}: {d}", path.display());
    }
    let doc = docs
        .iter()
        .find(|d| d["kind"] == "ConstraintTemplate")
        .with_context(|| format!("{}: no ConstraintTemplate", path.display()))?;
    let target = &doc["spec"]["targets"][0];
    ensure!(
        target["target"] == "admission.k8s.gatekeeper.sh",
        "{}: unexpected target {}",
        path.display(),
        target["target"]
    );
    let rego = target["rego"]
        .as_str()
        .with_context(|| format!("{}: spec.targets[0].rego is not a string", path.display()))?
        .to_string();
    let package = rego
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .with_context(|| format!("{}: no package line in the Rego", path.display()))?
        .trim()
        .to_string();
    let rego = opa_walk_as_relation(&rego);
    let name = path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parameters = json!({});
    if rego.contains("input.parameters.issuer") {
        parameters["issuer"] = json!(ISSUER);
    }
    Ok(Template {
        path: path.to_path_buf(),
        name,
        package,
        rego,
        parameters,
    })
}

/// Rewrites `[path, value] := walk(x)` as the equivalent `walk(x, [path, value])`. In OPA (what
/// Gatekeeper runs) both forms enumerate every pair; regorus 0.14 enumerates only the second
/// and makes the first undefined, which would make Ratify's notation-nested template admit
/// everything here while it denies in a cluster.
fn opa_walk_as_relation(rego: &str) -> String {
    rego.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let rewritten = trimmed.split_once(" := walk(").and_then(|(lhs, rest)| {
                let arg = rest.strip_suffix(')')?;
                (lhs.starts_with('[') && lhs.ends_with(']'))
                    .then(|| format!("{indent}walk({arg}, {lhs})"))
            });
            rewritten.unwrap_or_else(|| line.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One `external_data` call as Gatekeeper made it.
#[derive(Clone, Debug)]
struct Call {
    provider: String,
    keys: Vec<String>,
    /// What the builtin returned to Rego.
    result: Value,
}

/// Gatekeeper's side: the Provider objects (name → URL, trusting the server's CA) and the
/// `external_data` builtin.
#[derive(Clone)]
struct Gatekeeper {
    providers: BTreeMap<String, String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Gatekeeper {
    /// `external_data({"provider": p, "keys": ks})`: what the builtin returns to Rego.
    fn external_data(&self, arg: &Value) -> Value {
        let provider = arg["provider"].as_str().unwrap_or_default().to_string();
        let keys: Vec<String> = arg["keys"]
            .as_array()
            .map(|ks| {
                ks.iter()
                    .map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let result = match self.providers.get(&provider) {
            None => rego_response(
                400,
                Vec::new(),
                Vec::new(),
                format!("failed to get external data provider: provider {provider:?} not found"),
            ),
            Some(url) => self.send(url, &keys),
        };
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Call {
                provider,
                keys,
                result: result.clone(),
            });
        result
    }

    /// One ProviderRequest; transport or decoding failures become `system_error` with status 500.
    fn send(&self, url: &str, keys: &[String]) -> Value {
        let request = json!({
            "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
            "kind": "ProviderRequest",
            "request": {"keys": keys},
        });
        let answer = self.runtime.block_on(async {
            let resp = self
                .client
                .post(url)
                .timeout(PROVIDER_TIMEOUT)
                .json(&request)
                .send()
                .await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            anyhow::Ok((status, body))
        });
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => return rego_response(500, Vec::new(), Vec::new(), format!("{e:#}")),
        };
        let response: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return rego_response(500, Vec::new(), Vec::new(), e.to_string()),
        };
        let r = &response["response"];
        let mut responses = Vec::new();
        let mut errors = Vec::new();
        for item in r["items"].as_array().into_iter().flatten() {
            match item["error"].as_str().filter(|e| !e.is_empty()) {
                Some(e) => errors.push(json!([item["key"], e])),
                None => responses.push(json!([item["key"], item["value"]])),
            }
        }
        let system_error = r["systemError"].as_str().unwrap_or_default().to_string();
        rego_response(status, responses, errors, system_error)
    }

    /// The `violation` messages of `template` for `pod` (admission of a CREATE).
    fn violations(&self, template: &Template, pod: &Value) -> Result<Vec<String>> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(true);
        let gatekeeper = self.clone();
        engine.add_extension(
            "external_data".to_string(),
            1,
            Box::new(move |args: Vec<regorus::Value>| {
                let arg = args
                    .first()
                    .context("external_data takes one argument")?
                    .to_json_str()?;
                let out = gatekeeper.external_data(&serde_json::from_str(&arg)?);
                regorus::Value::from_json_str(&out.to_string())
            }),
        )?;
        engine
            .add_policy(template.path.display().to_string(), template.rego.clone())
            .with_context(|| format!("loading the Rego of {}", template.path.display()))?;
        engine.set_input(regorus::Value::from_json_str(
            &admission_input(pod, &template.parameters).to_string(),
        )?);
        let rule = format!("data.{}.violation", template.package);
        let result = engine
            .eval_rule(rule.clone())
            .with_context(|| format!("evaluating {rule} of {}", template.path.display()))?;
        if result == regorus::Value::Undefined {
            return Ok(Vec::new());
        }
        let result: Value = serde_json::from_str(&result.to_json_str()?)?;
        let set = result
            .as_array()
            .with_context(|| format!("{rule} is not a set: {result}"))?;
        set.iter()
            .map(|v| {
                v["msg"]
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("a violation without a msg: {v}"))
            })
            .collect()
    }

    fn last_call(&self) -> Call {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
            .expect("the template called external_data")
    }
}

fn rego_response(
    status: u16,
    responses: Vec<Value>,
    errors: Vec<Value>,
    system_error: String,
) -> Value {
    json!({
        "responses": responses,
        "errors": errors,
        "status_code": status,
        "system_error": system_error,
    })
}

/// Gatekeeper's `input` for a constraint without parameters reviewing a Pod CREATE.
fn admission_input(pod: &Value, parameters: &Value) -> Value {
    json!({
        "review": {
            "uid": "0b5d7c55-8e4e-4a5c-9a7e-2f0c8c5f6a01",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
        },
        "parameters": parameters,
    })
}

fn pod(name: &str, containers: &[&str], init_containers: &[&str]) -> Value {
    pod_in("default", name, containers, init_containers)
}

fn pod_in(namespace: &str, name: &str, containers: &[&str], init_containers: &[&str]) -> Value {
    let list = |images: &[&str], prefix: &str| -> Vec<Value> {
        images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("{prefix}{i}"), "image": image}))
            .collect()
    };
    let mut spec = json!({"containers": list(containers, "c")});
    if !init_containers.is_empty() {
        spec["initContainers"] = Value::Array(list(init_containers, "init"));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// `verdict serve` with `yaml`, reaching the test registry at `host` over plain HTTP.
async fn serve(yaml: String, host: &str) -> Result<VerdictServer> {
    VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), yaml)
            .plain_http(host)
            // Generous for a loaded test machine; the deadline is not under test here.
            .args(["--verify-deadline-ms", "10000"]),
    )
    .await
}

/// Gatekeeper with both of Ratify's provider names pointed at `server`'s `path`.
fn gatekeeper_at(
    server: &VerdictServer,
    path: &str,
    runtime: &tokio::runtime::Runtime,
) -> Gatekeeper {
    Gatekeeper {
        providers: BTreeMap::from([
            (V1_PROVIDER.to_string(), server.url(path)),
            (V2_PROVIDER.to_string(), server.url(path)),
        ]),
        client: server.https_client().clone(),
        runtime: runtime.handle().clone(),
        calls: Arc::default(),
    }
}

#[test]
fn every_ratify_template_on_either_endpoint_admits_only_what_verdict_verified() -> Result<()> {
    let Some(shared) = shared_dir() else {
        return Ok(());
    };
    let templates = library_templates(&shared)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (registry, mut server, signed, unsigned) = runtime.block_on(async {
        let registry = DockerRegistry::start().await?;
        let host = registry.host_port();
        let client = registry.client();
        let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
            .key_alg(KeyAlg::EcP256)
            .self_signed()?;
        let pushed = client.push_image("gk/signed", "v1").await?;
        push_notation_signature(&client, "gk/signed", &pushed, &cert).await?;
        client.push_image("gk/unsigned", "v1").await?;
        let server = serve(ratify_config(&cert), &host).await?;
        anyhow::Ok((
            registry,
            server,
            format!("{host}/gk/signed:v1"),
            format!("{host}/gk/unsigned:v1"),
        ))
    })?;
    let host = registry.host_port();
    // Not an image reference (upper case is not allowed in a repository name): a per-key error.
    let malformed = format!("{host}/GK/Not_A_Repository:v1");

    // Both provider names pointed at one endpoint: the template's own endpoint, or the other one
    // (the mistake of Ratify issue #2669).
    let endpoints =
        [VERIFY_V1, VERIFY_V2].map(|path| (path, gatekeeper_at(&server, path, &runtime)));
    let log = |server: &VerdictServer| format!("verdict log tail:\n{}", server.log_tail());

    for t in &templates {
        let admits_signed = !NEEDS_OTHER_ARTIFACTS.contains(&t.name.as_str());
        for (endpoint, gatekeeper) in &endpoints {
            let name = format!("{} on {endpoint}", t.path.display());

            // Signed: admitted, on a positive verdict (unless the template wants an SBOM or a
            // vulnerability report as well).
            let v = gatekeeper.violations(t, &pod("signed", &[&signed], &[]))?;
            let call = gatekeeper.last_call();
            assert!(
                [V1_PROVIDER, V2_PROVIDER].contains(&call.provider.as_str()),
                "{name}: unknown provider {}",
                call.provider
            );
            assert_eq!(call.keys.len(), 1, "{name}");
            assert!(call.keys[0].ends_with(&signed), "{name}: {:?}", call.keys);
            let r = &call.result;
            assert_eq!(r["status_code"], 200, "{name}: {r}");
            assert_eq!(r["system_error"], "", "{name}: {r}");
            assert_eq!(r["errors"], json!([]), "{name}: {r}");
            assert_eq!(r["responses"][0][0], call.keys[0].as_str(), "{name}: {r}");
            for field in ["isSuccess", "succeeded"] {
                assert_eq!(r["responses"][0][1][field], true, "{name}: `{field}`: {r}");
            }
            if admits_signed {
                assert!(
                    v.is_empty(),
                    "{name}: signed image denied: {v:?}\n{call:?}\n{}",
                    log(&server)
                );
            } else {
                assert!(
                    !v.is_empty(),
                    "{name}: an image without an SBOM or report admitted"
                );
            }

            // Unsigned: denied by a verdict, and the message names the image.
            let v = gatekeeper.violations(t, &pod("unsigned", &[&unsigned], &[]))?;
            let r = gatekeeper.last_call().result;
            assert!(
                !v.is_empty(),
                "{name}: unsigned image admitted: {r}\n{}",
                log(&server)
            );
            assert!(v.iter().all(|v| v.contains(&unsigned)), "{name}: {v:?}");
            assert_eq!(r["errors"], json!([]), "{name}: {r}");
            assert_eq!(r["system_error"], "", "{name}: {r}");
            for field in ["isSuccess", "succeeded"] {
                assert_eq!(r["responses"][0][1][field], false, "{name}: `{field}`: {r}");
            }

            // A per-key error (one malformed reference next to the signed image) denies the pod.
            let v = gatekeeper.violations(t, &pod("bad-key", &[&signed], &[&malformed]))?;
            let r = gatekeeper.last_call().result;
            assert!(!v.is_empty(), "{name}: per-key error admitted: {r}");
            assert!(
                v.iter()
                    .any(|v| v.contains("Error validating one or more images")
                        && v.contains(&malformed)),
                "{name}: {v:?}"
            );
            assert!(
                r["errors"][0][0]
                    .as_str()
                    .is_some_and(|k| k.ends_with(&malformed)),
                "{name}: {r}"
            );
            assert!(
                r["errors"][0][1]
                    .as_str()
                    .is_some_and(|e| e.starts_with("INVALID_KEY")),
                "{name}: {r}"
            );
        }
    }

    // The provider goes away: Gatekeeper reports a system error and every template denies, even
    // the signed image.
    server.terminate(Duration::from_secs(5));
    let (_, gatekeeper) = &endpoints[0];
    for t in &templates {
        let name = t.path.display();
        let v = gatekeeper.violations(t, &pod("signed-while-down", &[&signed], &[]))?;
        let r = gatekeeper.last_call().result;
        assert_eq!(r["status_code"], 500, "{name}: {r}");
        assert!(
            r["system_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: {r}"
        );
        assert_eq!(r["responses"], json!([]), "{name}: {r}");
        assert!(
            v.iter()
                .any(|v| v.starts_with("System error calling external data provider")),
            "{name}: server down: {v:?}"
        );
    }
    drop(registry);
    Ok(())
}

/// Ratify's multi-tenancy example: the cluster-wide Verifier trusts `cluster_root`; namespace
/// `prod` has its own NamespacedKeyManagementProvider and NamespacedVerifier trusting only
/// `prod_root` (same signer subject, so only the trust store tells them apart).
fn multi_tenant_config(cluster_root: &TestCert, prod_root: &TestCert) -> String {
    let signer = format!("x509.subject: {SIGNER_SUBJECT}");
    [
        inline_kmp_yaml("cluster-certs", None, "certificate", &cluster_root.pem()),
        inline_kmp_yaml("prod-certs", Some("prod"), "certificate", &prod_root.pem()),
        NotationVerifier::new("verifier-notation", "cluster-certs")
            .trusted_identities(&[&signer])
            .yaml(),
        NotationVerifier::new("verifier-notation", "prod/prod-certs")
            .namespaced("prod")
            .trusted_identities(&[&signer])
            .yaml(),
    ]
    .join("---\n")
}

#[test]
fn multi_tenancy_template_decides_each_namespace_with_its_own_resources() -> Result<()> {
    let Some(shared) = shared_dir() else {
        return Ok(());
    };
    let templates = library_templates(&shared)?
        .into_iter()
        .filter(|t| t.name == "multi-tenancy-validation")
        .collect::<Vec<_>>();
    ensure!(
        templates.len() >= 2,
        "the v1 and current multi-tenancy templates"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cluster_root = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let prod_root = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let yaml = multi_tenant_config(&cluster_root, &prod_root);

    // `config check` loads every resource, namespaced ones included, without an error.
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("ratify.yaml");
    std::fs::write(&config, &yaml)?;
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["config", "check"])
        .arg(&config)
        .output()?;
    let listing = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "config check: {listing}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for kind in [
        "NamespacedVerifier",
        "NamespacedKeyManagementProvider",
        "Verifier",
    ] {
        assert!(
            listing.contains(kind),
            "config check does not list {kind}: {listing}"
        );
    }

    let (registry, server, cluster_signed, prod_signed) = runtime.block_on(async {
        let registry = DockerRegistry::start().await?;
        let host = registry.host_port();
        let client = registry.client();
        let pushed = client.push_image("mt/cluster-signed", "v1").await?;
        push_notation_signature(&client, "mt/cluster-signed", &pushed, &cluster_root).await?;
        let pushed = client.push_image("mt/prod-signed", "v1").await?;
        push_notation_signature(&client, "mt/prod-signed", &pushed, &prod_root).await?;
        let server = serve(yaml.clone(), &host).await?;
        anyhow::Ok((
            registry,
            server,
            format!("{host}/mt/cluster-signed:v1"),
            format!("{host}/mt/prod-signed:v1"),
        ))
    })?;

    for (endpoint, path) in [("v1", VERIFY_V1), ("v2", VERIFY_V2)] {
        let gatekeeper = gatekeeper_at(&server, path, &runtime);
        for t in &templates {
            let name = format!("{} on {endpoint}", t.path.display());
            // (namespace, image, admitted?): prod's own Verifier decides prod's keys; `default`
            // has no resources of its own and falls back to the cluster-wide Verifier.
            for (namespace, image, admitted) in [
                ("prod", &prod_signed, true),
                ("prod", &cluster_signed, false),
                ("default", &cluster_signed, true),
                ("default", &prod_signed, false),
            ] {
                let v = gatekeeper.violations(t, &pod_in(namespace, "app", &[image], &[]))?;
                let call = gatekeeper.last_call();
                assert_eq!(call.keys, vec![format!("[{namespace}]{image}")], "{name}");
                assert_eq!(
                    v.is_empty(),
                    admitted,
                    "{name}: [{namespace}]{image}: {v:?}\n{}\n{}",
                    call.result,
                    server.log_tail()
                );
            }
        }
    }
    drop(registry);
    Ok(())
}
