//! `charts/verdict` with a real Helm (helm v4, built by `scripts/install-deps.sh --oracles`):
//! `helm lint` and `helm template` pass for the default values and every example values file;
//! every rendered Kubernetes object deserialises into the k8s-openapi types with no field left
//! over; Gatekeeper's objects have exactly the fields Gatekeeper reads; the ConstraintTemplate's
//! Rego compiles and denies what it must; and every `--set` in docs/aks.md names a value the
//! chart has.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/verdict")
}

/// Every values variant: the defaults, then each example file.
fn variants() -> Result<Vec<Option<PathBuf>>> {
    let mut out = vec![None];
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart().join("examples"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    ensure!(!files.is_empty(), "no example values files");
    out.extend(files.into_iter().map(Some));
    Ok(out)
}

fn helm(args: &[&str], values: Option<&Path>) -> Result<String> {
    let helm = verdict_testkit::oracles::tool("helm")?;
    let mut cmd = std::process::Command::new(&helm);
    cmd.args(args);
    if let Some(v) = values {
        cmd.arg("-f").arg(v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    ensure!(
        out.status.success(),
        "helm {args:?} {values:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `value` as `T`, failing on any field `T` does not have.
fn strict<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    let mut unknown = Vec::new();
    let typed: T = serde_ignored::deserialize(value.clone(), |path| unknown.push(path.to_string()))
        .with_context(|| format!("{what} does not deserialise"))?;
    ensure!(
        unknown.is_empty(),
        "{what} has fields the API type does not: {unknown:?}"
    );
    Ok(typed)
}

/// Fields of Gatekeeper's and cert-manager's objects, checked by hand (no Rust types exist).
fn only_keys(v: &Value, allowed: &[&str], what: &str) -> Result<()> {
    let map = v
        .as_object()
        .with_context(|| format!("{what} is not an object"))?;
    for k in map.keys() {
        ensure!(
            allowed.contains(&k.as_str()),
            "{what} has an unknown field {k:?}"
        );
    }
    Ok(())
}

fn check_object(doc: &Value) -> Result<String> {
    use k8s_openapi::api::{apps, core, networking, policy};
    let kind = doc["kind"]
        .as_str()
        .context("a rendered object without kind")?;
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let what = format!("{kind} {}", doc["metadata"]["name"]);
    match (api, kind) {
        ("apps/v1", "Deployment") => {
            let d: apps::v1::Deployment = strict(doc, &what)?;
            let pod = d.spec.context("spec")?.template.spec.context("pod spec")?;
            let sc = pod.security_context.context("pod securityContext")?;
            ensure!(sc.run_as_non_root == Some(true), "{what}: runs as root");
            let c = &pod.containers[0];
            let csc = c
                .security_context
                .as_ref()
                .context("container securityContext")?;
            ensure!(
                csc.read_only_root_filesystem == Some(true),
                "{what}: writable root filesystem"
            );
            ensure!(
                c.readiness_probe.is_some() && c.liveness_probe.is_some(),
                "{what}: probes"
            );
            ensure!(
                c.resources.as_ref().is_some_and(|r| r.requests.is_some()),
                "{what}: requests"
            );
        }
        ("apps/v1", "StatefulSet") => {
            strict::<apps::v1::StatefulSet>(doc, &what)?;
        }
        ("v1", "Service") => {
            strict::<core::v1::Service>(doc, &what)?;
        }
        ("v1", "ServiceAccount") => {
            strict::<core::v1::ServiceAccount>(doc, &what)?;
        }
        ("v1", "ConfigMap") => {
            strict::<core::v1::ConfigMap>(doc, &what)?;
        }
        ("v1", "Secret") => {
            strict::<core::v1::Secret>(doc, &what)?;
        }
        ("v1", "PersistentVolumeClaim") => {
            strict::<core::v1::PersistentVolumeClaim>(doc, &what)?;
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            strict::<k8s_openapi::api::rbac::v1::ClusterRole>(doc, &what)?;
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            strict::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(doc, &what)?;
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            strict::<k8s_openapi::api::rbac::v1::Role>(doc, &what)?;
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            strict::<k8s_openapi::api::rbac::v1::RoleBinding>(doc, &what)?;
        }
        ("policy/v1", "PodDisruptionBudget") => {
            strict::<policy::v1::PodDisruptionBudget>(doc, &what)?;
        }
        ("networking.k8s.io/v1", "Ingress") => {
            strict::<networking::v1::Ingress>(doc, &what)?;
        }
        ("externaldata.gatekeeper.sh/v1beta1", "Provider") => {
            only_keys(doc, &["apiVersion", "kind", "metadata", "spec"], &what)?;
            only_keys(&doc["spec"], &["url", "timeout", "caBundle"], &what)?;
            let url = doc["spec"]["url"].as_str().unwrap_or_default();
            ensure!(
                url.starts_with("https://"),
                "{what}: Gatekeeper only calls HTTPS: {url}"
            );
            ensure!(
                doc["spec"]["caBundle"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty()),
                "{what}: caBundle"
            );
        }
        ("templates.gatekeeper.sh/v1beta1", "ConstraintTemplate") => {
            only_keys(&doc["spec"], &["crd", "targets"], &what)?;
            let rego = doc["spec"]["targets"][0]["rego"].as_str().context("rego")?;
            check_rego(rego)?;
        }
        ("constraints.gatekeeper.sh/v1beta1", _) => {
            only_keys(
                &doc["spec"],
                &["enforcementAction", "match", "parameters"],
                &what,
            )?;
        }
        ("mutations.gatekeeper.sh/v1", "Assign") => {
            only_keys(
                &doc["spec"],
                &["applyTo", "match", "location", "parameters"],
                &what,
            )?;
            ensure!(
                doc["spec"]["parameters"]["assign"]["externalData"]["provider"].is_string(),
                "{what}: external data provider"
            );
        }
        ("cert-manager.io/v1", "Certificate") => {
            only_keys(
                &doc["spec"],
                &["secretName", "dnsNames", "issuerRef"],
                &what,
            )?;
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            only_keys(&doc["spec"], &["selector", "endpoints"], &what)?;
        }
        (api, kind) => {
            bail!("the chart renders {kind} ({api}), which this test does not check yet")
        }
    }
    Ok(kind.to_owned())
}

/// The template's Rego compiles, and with Gatekeeper's view of Verdict's answers: an image whose
/// verdict is an allow passes; a deny, a v2-shaped deny, an item error and a system error each
/// give a violation.
fn check_rego(rego: &str) -> Result<()> {
    let review = serde_json::json!({"review": {"object": {"spec": {"containers": [{"image": "r.io/a@sha256:1"}]}}}});
    let cases = [
        (
            serde_json::json!({"responses": [["r.io/a@sha256:1", {"isSuccess": true, "succeeded": true}]], "errors": [], "system_error": ""}),
            0,
        ),
        (
            serde_json::json!({"responses": [["r.io/a@sha256:1", {"isSuccess": false, "succeeded": false, "traceID": "t"}]], "errors": [], "system_error": ""}),
            1,
        ),
        (
            serde_json::json!({"responses": [["r.io/a@sha256:1", {"isSuccess": true, "succeeded": false}]], "errors": [], "system_error": ""}),
            1,
        ),
        (
            serde_json::json!({"responses": [], "errors": [["r.io/a@sha256:1", "VERIFY_TIMEOUT"]], "system_error": ""}),
            1,
        ),
        (
            serde_json::json!({"responses": [], "errors": [], "system_error": "boom"}),
            1,
        ),
    ];
    for (answer, want) in cases {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(true);
        // Gatekeeper's external_data builtin, answering with `answer`.
        let reply = answer.to_string();
        engine.add_extension(
            "external_data".to_string(),
            1,
            Box::new(move |_args: Vec<regorus::Value>| regorus::Value::from_json_str(&reply)),
        )?;
        engine
            .add_policy("template.rego".into(), rego.to_owned())
            .context("the template's Rego does not compile")?;
        engine.set_input(regorus::Value::from_json_str(&review.to_string())?);
        let result = engine.eval_rule("data.verdictverification.violation".into())?;
        let n = if result == regorus::Value::Undefined {
            0
        } else {
            let v: Value = serde_json::from_str(&result.to_json_str()?)?;
            v.as_array().map_or(0, Vec::len)
        };
        ensure!(n == want, "answer {answer}: {n} violations, wanted {want}");
    }
    Ok(())
}

#[test]
fn the_chart_lints_renders_and_every_object_is_a_valid_api_object() -> Result<()> {
    let chart = chart();
    let chart = chart.to_str().context("chart path")?;
    for values in variants()? {
        helm(&["lint", chart, "--strict"], values.as_deref())?;
        let rendered = helm(
            &[
                "template",
                "verdict",
                chart,
                "--namespace",
                "gatekeeper-system",
            ],
            values.as_deref(),
        )?;
        let (docs, diags) = verdict_crds::parse_yaml(&rendered);
        ensure!(
            diags.iter().all(|d| !d.is_error()),
            "{values:?}: YAML problems: {diags:?}"
        );
        let mut kinds = Vec::new();
        for doc in &docs {
            kinds.push(check_object(doc).with_context(|| format!("values {values:?}"))?);
        }
        // CRs from the cluster (RBAC) by default; from a ConfigMap when given in the values.
        let source = if values.is_none() {
            "ClusterRole"
        } else {
            "ConfigMap"
        };
        for needed in [
            "Deployment",
            "Service",
            "ServiceAccount",
            "Provider",
            source,
        ] {
            ensure!(
                kinds.iter().any(|k| k == needed),
                "{values:?}: no {needed} rendered"
            );
        }
        // The Providers trust the CA that issued the serving certificate of this render.
        let providers: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Provider").collect();
        ensure!(providers.len() == 2, "verify and mutate Providers");
        if let Some(secret) = docs
            .iter()
            .find(|d| d["kind"] == "Secret" && d["type"] == "kubernetes.io/tls")
        {
            for p in &providers {
                ensure!(
                    p["spec"]["caBundle"] == secret["data"]["ca.crt"],
                    "caBundle and ca.crt differ"
                );
            }
        }
    }
    Ok(())
}

/// Every `--set key=…` in docs/aks.md names a value in values.yaml (Gatekeeper's own are
/// skipped: they belong to its chart).
#[test]
fn every_set_in_the_aks_guide_is_a_chart_value() -> Result<()> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/aks.md"))?;
    let values_text = std::fs::read_to_string(chart().join("values.yaml"))?;
    let (values, _) = verdict_crds::parse_yaml(&values_text);
    let values = values.first().context("values.yaml is empty")?;
    let gatekeeper = [
        "enableExternalData",
        "validatingWebhookTimeoutSeconds",
        "mutatingWebhookTimeoutSeconds",
        "externaldataProviderResponseCacheTTL",
    ];
    let mut checked = 0;
    for (i, _) in doc.match_indices("--set") {
        let rest = &doc[i..];
        let (flag, arg) = match rest.split_once(char::is_whitespace) {
            Some((f, a)) => (f, a.trim_start()),
            None => continue,
        };
        if !matches!(flag, "--set" | "--set-file" | "--set-string") {
            continue;
        }
        let key = arg
            .split(['=', ' ', '\n'])
            .next()
            .unwrap_or_default()
            .trim();
        if gatekeeper.contains(&key) {
            continue;
        }
        let mut at = values;
        for part in key.split('.') {
            at = at.get(part).with_context(|| {
                format!("docs/aks.md sets {key:?}, which values.yaml does not have")
            })?;
        }
        checked += 1;
    }
    ensure!(
        checked >= 8,
        "only {checked} --set keys found in docs/aks.md"
    );
    Ok(())
}

/// The Azure Policy definition points at `azure-policy/template.yaml`, which must be the
/// ConstraintTemplate the chart installs (labels aside), and applies to Pods like the chart's
/// Constraint.
#[test]
fn the_azure_policy_template_is_the_charts() -> Result<()> {
    let chart_path = chart();
    let rendered = helm(
        &[
            "template",
            "verdict",
            chart_path.to_str().context("chart path")?,
            "--namespace",
            "gatekeeper-system",
            "--show-only",
            "templates/constraint.yaml",
        ],
        None,
    )?;
    let (docs, _) = verdict_crds::parse_yaml(&rendered);
    let mut from_chart = docs
        .into_iter()
        .find(|d| d["kind"] == "ConstraintTemplate")
        .context("no ConstraintTemplate rendered")?;
    if let Some(m) = from_chart["metadata"].as_object_mut() {
        m.remove("labels");
    }
    let (policy_docs, _) = verdict_crds::parse_yaml(&std::fs::read_to_string(
        chart_path.join("azure-policy/template.yaml"),
    )?);
    assert_eq!(
        policy_docs.first(),
        Some(&from_chart),
        "charts/verdict/azure-policy/template.yaml is stale: render it again from templates/constraint.yaml"
    );
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(
        chart_path.join("azure-policy/customazurepolicy.json"),
    )?)?;
    let details = &policy["policyRule"]["then"]["details"];
    assert_eq!(details["kinds"], serde_json::json!(["Pod"]));
    assert!(
        details["templateInfo"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("charts/verdict/azure-policy/template.yaml"))
    );
    Ok(())
}
