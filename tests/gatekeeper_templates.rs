//! Ratify's default ConstraintTemplates, unchanged, decide pods as Gatekeeper would with a real
//! `verdict serve` as the external-data provider: the templates' Rego (v0) runs in regorus, and
//! `external_data` calls the server over HTTPS the way Gatekeeper does (one ProviderRequest per
//! call; items with an `error` go to `errors`; a provider that cannot be reached yields
//! `system_error`). Each template must admit the signed image and deny the unsigned one, a pod
//! with a per-key error, and any pod while the server is unreachable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VERIFY_V2, VerdictServer};
use verdict_testkit::{DockerRegistry, shared_dir};

/// Ratify's default templates, relative to the shared dir: the old library one and HEAD's.
const TEMPLATES: &[&str] = &[
    "vectors/ratify-gatekeeper/library/default/template.yaml",
    "vectors/ratify-gatekeeper/configs/constrainttemplates/default/template.yaml",
    "reference/examples/ratify-v1/library/default/template.yaml",
    "reference/examples/ratify-v2/library/default/template.yaml",
];
/// Provider names in the templates: Ratify v1's provider serves `/v1/verify`, v2's `/v2/verify`.
const V1_PROVIDER: &str = "ratify-provider";
const V2_PROVIDER: &str = "ratify-gatekeeper-provider";
/// The Provider's `spec.timeout` as Gatekeeper applies it to each call.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// A ConstraintTemplate's Rego and its package.
struct Template {
    path: PathBuf,
    package: String,
    rego: String,
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
    Ok(Template {
        path: path.to_path_buf(),
        package,
        rego,
    })
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
            &admission_input(pod).to_string(),
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
fn admission_input(pod: &Value) -> Value {
    json!({
        "review": {
            "uid": "0b5d7c55-8e4e-4a5c-9a7e-2f0c8c5f6a01",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
        },
        "parameters": {},
    })
}

fn pod(name: &str, containers: &[&str], init_containers: &[&str]) -> Value {
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
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    })
}

/// The field a template's provider answers with: v1 values carry `isSuccess`, v2 `succeeded`.
fn success_field(provider: &str) -> &'static str {
    if provider == V1_PROVIDER {
        "isSuccess"
    } else {
        "succeeded"
    }
}

#[test]
fn ratify_default_templates_admit_only_what_verdict_verified() -> Result<()> {
    let Some(shared) = shared_dir() else {
        return Ok(());
    };
    let templates = TEMPLATES
        .iter()
        .map(|t| load_template(&shared.join(t)))
        .collect::<Result<Vec<_>>>()?;

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
        let server = VerdictServer::start(
            ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), ratify_config(&cert))
                .plain_http(&host)
                // Generous for a loaded test machine; the deadline is not under test here.
                .args(["--verify-deadline-ms", "10000"]),
        )
        .await?;
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

    let gatekeeper = Gatekeeper {
        providers: BTreeMap::from([
            (V1_PROVIDER.to_string(), server.url(VERIFY_V1)),
            (V2_PROVIDER.to_string(), server.url(VERIFY_V2)),
        ]),
        client: server.https_client().clone(),
        runtime: runtime.handle().clone(),
        calls: Arc::default(),
    };
    let log = |server: &VerdictServer| format!("verdict log tail:\n{}", server.log_tail());

    for t in &templates {
        let name = t.path.display();

        // Signed: admitted, on a positive verdict from the provider the template names.
        let v = gatekeeper.violations(t, &pod("signed", &[&signed], &[]))?;
        let call = gatekeeper.last_call();
        assert!(
            [V1_PROVIDER, V2_PROVIDER].contains(&call.provider.as_str()),
            "{name}: unknown provider {}",
            call.provider
        );
        assert!(
            v.is_empty(),
            "{name}: signed image denied: {v:?}\n{call:?}\n{}",
            log(&server)
        );
        assert_eq!(call.keys, vec![signed.clone()], "{name}");
        let r = &call.result;
        assert_eq!(r["status_code"], 200, "{name}: {r}");
        assert_eq!(r["system_error"], "", "{name}: {r}");
        assert_eq!(r["errors"], json!([]), "{name}: {r}");
        assert_eq!(r["responses"][0][0], signed.as_str(), "{name}: {r}");
        assert_eq!(
            r["responses"][0][1][success_field(&call.provider)],
            true,
            "{name}: the {} answer lacks a positive `{}`: {r}",
            call.provider,
            success_field(&call.provider)
        );

        // Unsigned: denied by a verdict, and the message names the image.
        let v = gatekeeper.violations(t, &pod("unsigned", &[&unsigned], &[]))?;
        let r = gatekeeper.last_call().result;
        assert_eq!(
            v.len(),
            1,
            "{name}: unsigned image: {v:?}\n{r}\n{}",
            log(&server)
        );
        assert!(v[0].contains(&unsigned), "{name}: {v:?}");
        assert_eq!(r["errors"], json!([]), "{name}: {r}");
        assert_eq!(r["system_error"], "", "{name}: {r}");

        // A per-key error (here: one malformed reference next to the signed image) denies the pod.
        let v = gatekeeper.violations(t, &pod("bad-key", &[&signed], &[&malformed]))?;
        let r = gatekeeper.last_call().result;
        assert_eq!(v.len(), 1, "{name}: per-key error: {v:?}\n{r}");
        assert!(
            v[0].starts_with("Error validating one or more images") && v[0].contains(&malformed),
            "{name}: {v:?}"
        );
        assert_eq!(r["errors"][0][0], malformed.as_str(), "{name}: {r}");
        assert!(
            r["errors"][0][1]
                .as_str()
                .is_some_and(|e| e.starts_with("INVALID_KEY")),
            "{name}: {r}"
        );
        assert_eq!(r["responses"][0][0], signed.as_str(), "{name}: {r}");
    }

    // The provider goes away: Gatekeeper reports a system error and every template denies, even
    // the signed image.
    server.terminate(Duration::from_secs(5));
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
        assert_eq!(v.len(), 1, "{name}: server down: {v:?}");
        assert!(
            v[0].starts_with("System error calling external data provider"),
            "{name}: {v:?}"
        );
    }
    drop(registry);
    Ok(())
}
