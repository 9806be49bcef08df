//! Validation beyond the CRD schema: Ratify's own rules, with a fix for each problem.

mod cosign;
mod kmp;

pub use kmp::parse_go_duration;
mod notation;
mod refs;

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::diag::{Diagnostic, FieldPath};
use crate::model::{
    Kind, ObjectMeta, Policy, PolicyParameters, Resource, Store, StoreParameters, Verifier,
    VerifierParameters,
};

pub(crate) use refs::{CrossIssue, cross};

pub(crate) const NOTATION_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub(crate) const COSIGN_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

static SHELL_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*").expect("valid regex")
});
static DNS_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("valid regex")
});
static DNS_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("valid regex"));

pub(crate) fn p(s: &str) -> FieldPath {
    FieldPath::parse(s)
}

/// Warns about `$VAR` / `${VAR}` left in string values: the shell did not expand them.
pub(crate) fn shell_variables(value: &Value, path: &FieldPath, out: &mut Vec<Diagnostic>) {
    match value {
        Value::String(s) => {
            let vars: Vec<&str> = SHELL_VAR.find_iter(s).map(|m| m.as_str()).collect();
            if let Some(first) = vars.first() {
                let name = first.trim_start_matches('$').trim_matches(['{', '}']);
                out.push(
                    Diagnostic::warning(
                        "unexpanded-variable",
                        path.clone(),
                        format!(
                            "`{}` looks like a shell variable that the shell did not expand (value: `{s}`)",
                            vars.join("`, `")
                        ),
                    )
                    .with_fix(format!(
                        "export {name} before running `cat <<EOF`, run the file through `envsubst`, or write the value itself"
                    )),
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                shell_variables(v, &path.index(i), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                shell_variables(v, &path.key(k.clone()), out);
            }
        }
        _ => {}
    }
}

fn metadata(kind: Kind, meta: &ObjectMeta, out: &mut Vec<Diagnostic>) {
    if let Some(name) = meta.name.as_deref()
        && (name.len() > 253 || !DNS_SUBDOMAIN.is_match(name))
    {
        out.push(
                Diagnostic::error(
                    "invalid-name",
                    p("metadata.name"),
                    format!("`{name}` is not a valid Kubernetes object name"),
                )
                .with_fix("use lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"),
            );
    }
    match (&meta.namespace, kind.is_namespaced()) {
        (Some(ns), true) if !DNS_LABEL.is_match(ns) || ns.len() > 63 => out.push(
            Diagnostic::error(
                "invalid-name",
                p("metadata.namespace"),
                format!("`{ns}` is not a valid namespace name"),
            )
            .with_fix("use lowercase letters, digits and `-`"),
        ),
        (Some(ns), false) => out.push(
            Diagnostic::warning(
                "ignored-namespace",
                p("metadata.namespace"),
                format!("{kind} is cluster-scoped; the namespace `{ns}` is ignored"),
            )
            .with_fix(format!(
                "remove `namespace:`, or use the Namespaced{kind} kind to limit it to one namespace"
            )),
        ),
        _ => {}
    }
}

fn plugin_download(address: &Option<String>, source_set: bool, out: &mut Vec<Diagnostic>) {
    if address.is_some() || source_set {
        let field = if address.is_some() {
            "spec.address"
        } else {
            "spec.source"
        };
        out.push(
            Diagnostic::warning(
                "external-plugin",
                p(field),
                "Verdict does not download or run external plugins; this field is ignored",
            )
            .with_fix("remove it; Verdict has the oras store and the notation and cosign verifiers built in"),
        );
    }
}

const AUTH_PROVIDERS: &[&str] = &[
    "dockerConfig",
    "azureWorkloadIdentity",
    "azureManagedIdentity",
    "k8Secrets",
    "awsEcrBasic",
    "alibabacloudAcrBasic",
];

fn store(o: &Store, out: &mut Vec<Diagnostic>) {
    plugin_download(&o.spec.address, o.spec.source.is_some(), out);
    if o.spec.name.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.name"),
                "`spec.name` (the store type) is required",
            )
            .with_fix("set `name: oras`"),
        );
        return;
    }
    if o.spec.name != "oras" {
        out.push(
            Diagnostic::warning(
                "unsupported-plugin",
                p("spec.name"),
                format!(
                    "store type `{}` is not built into Verdict; this Store is not used",
                    o.spec.name
                ),
            )
            .with_fix("use `name: oras`"),
        );
        return;
    }
    let Some(StoreParameters::Oras(params)) = &o.spec.parameters else {
        return;
    };
    if params.use_http == Some(true) {
        out.push(
            Diagnostic::warning(
                "plain-http",
                p("spec.parameters.useHttp"),
                "registry traffic will use plain HTTP; anyone on the path can change what is verified",
            )
            .with_fix("remove `useHttp: true` unless the registry is local and trusted"),
        );
    }
    let Some(ap) = &params.auth_provider else {
        return;
    };
    let base = p("spec.parameters.authProvider");
    let Some(name) = ap.name.as_deref().filter(|n| !n.is_empty()) else {
        out.push(
            Diagnostic::error(
                "missing-field",
                base.key("name"),
                "`authProvider.name` is required",
            )
            .with_fix(format!(
                "set `name:` to one of {}",
                AUTH_PROVIDERS.join(", ")
            )),
        );
        return;
    };
    if !AUTH_PROVIDERS.contains(&name) {
        out.push(
            Diagnostic::error(
                "invalid-value",
                base.key("name"),
                format!("`{name}` is not an ORAS auth provider"),
            )
            .with_fix(format!("use one of {}", AUTH_PROVIDERS.join(", "))),
        );
        return;
    }
    let azure = name.starts_with("azure");
    let mut stray = |field: &str, set: bool, owner: &str| {
        if set {
            out.push(
                Diagnostic::warning(
                    "ignored-field",
                    base.key(field),
                    format!(
                        "`{field}` is only used by the {owner} auth provider; `{name}` ignores it"
                    ),
                )
                .with_fix(format!("remove `{field}`")),
            );
        }
    };
    stray("clientID", ap.client_id.is_some() && !azure, "Azure");
    stray("endpoints", ap.endpoints.is_some() && !azure, "Azure");
    stray(
        "serviceAccountName",
        ap.service_account_name.is_some() && name != "k8Secrets",
        "k8Secrets",
    );
    stray(
        "secrets",
        ap.secrets.is_some() && name != "k8Secrets",
        "k8Secrets",
    );
    stray(
        "configPath",
        ap.config_path.is_some() && name != "dockerConfig",
        "dockerConfig",
    );
    for (i, s) in ap.secrets.iter().flatten().enumerate() {
        if s.secret_name.as_deref().is_none_or(str::is_empty) {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    base.key("secrets").index(i).key("secretName"),
                    "`secretName` is required",
                )
                .with_fix("name a secret of type kubernetes.io/dockerconfigjson"),
            );
        }
    }
}

fn verifier(o: &Verifier, out: &mut Vec<Diagnostic>) {
    plugin_download(&o.spec.address, o.spec.source.is_some(), out);
    let name = o.spec.name.as_str();
    let expected = match name {
        "notation" => Some(NOTATION_ARTIFACT_TYPE),
        "cosign" => Some(COSIGN_ARTIFACT_TYPE),
        _ => None,
    };
    if name.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.name"),
                "`spec.name` (the verifier type) is required",
            )
            .with_fix("set `name: notation` or `name: cosign`"),
        );
    } else if expected.is_none() {
        out.push(
            Diagnostic::warning(
                "unsupported-plugin",
                p("spec.name"),
                format!("verifier `{name}` is not built into Verdict; artifacts of its types cannot pass it"),
            )
            .with_fix("use `name: notation` or `name: cosign`"),
        );
    }
    let types = o.spec.artifact_types();
    if types.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.artifactTypes"),
                "`spec.artifactTypes` is required",
            )
            .with_fix(format!(
                "set `artifactTypes: {}`",
                expected.unwrap_or("<artifact media type>")
            )),
        );
    } else if let Some(exp) = expected
        && !types.iter().any(|t| *t == exp || *t == "*")
    {
        out.push(
                Diagnostic::warning(
                    "artifact-type",
                    p("spec.artifactTypes"),
                    format!("`{}` does not include `{exp}`, so this {name} verifier never sees a {name} signature", o.spec.artifact_types),
                )
                .with_fix(format!("set `artifactTypes: {exp}`")),
            );
    }
    match (&o.spec.parameters, name) {
        (None, "notation" | "cosign") => out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.parameters"),
                format!("the {name} verifier needs `parameters`"),
            )
            .with_fix(if name == "notation" {
                "add `parameters:` with `verificationCertStores` and `trustPolicyDoc`"
            } else {
                "add `parameters:` with `trustPolicies`"
            }),
        ),
        (Some(VerifierParameters::Notation(n)), _) => notation::validate(n, out),
        (Some(VerifierParameters::Cosign(c)), _) => cosign::validate(c, out),
        _ => {}
    }
}

fn policy(o: &Policy, out: &mut Vec<Diagnostic>) {
    if o.name() != "ratify-policy" {
        out.push(
            Diagnostic::error(
                "policy-name",
                p("metadata.name"),
                format!("a Policy must be named `ratify-policy`, not `{}`", o.name()),
            )
            .with_fix("set `metadata.name: ratify-policy`"),
        );
    }
    match o.spec.type_.as_str() {
        "" => out.push(
            Diagnostic::error("missing-field", p("spec.type"), "`spec.type` is required")
                .with_fix("set `type: config-policy` or `type: rego-policy`"),
        ),
        "config-policy" | "rego-policy" => {}
        other => out.push(
            Diagnostic::error(
                "invalid-value",
                p("spec.type"),
                format!("`{other}` is not a policy type"),
            )
            .with_fix("use `config-policy` or `rego-policy`"),
        ),
    }
    match &o.spec.parameters {
        Some(PolicyParameters::Config(c)) => {
            for (k, v) in c.artifact_verification_policies.iter().flatten() {
                if v != "any" && v != "all" {
                    out.push(
                        Diagnostic::error(
                            "invalid-value",
                            p("spec.parameters.artifactVerificationPolicies").key(k.clone()),
                            format!("`{v}` is not a verification rule"),
                        )
                        .with_fix("use `any` (one verifier success is enough) or `all`"),
                    );
                }
            }
        }
        Some(PolicyParameters::Rego(r)) => match (&r.policy, &r.policy_path) {
            (Some(_), Some(_)) => out.push(
                Diagnostic::error(
                    "conflicting-fields",
                    p("spec.parameters.policyPath"),
                    "`policy` and `policyPath` are both set",
                )
                .with_fix("keep one of them"),
            ),
            (None, None) => out.push(
                Diagnostic::error(
                    "missing-field",
                    p("spec.parameters.policy"),
                    "rego-policy needs `policy` or `policyPath`",
                )
                .with_fix("add `policy: |` followed by the Rego source (`package ratify.policy`)"),
            ),
            (Some(src), None) if !src.contains("package ratify.policy") => out.push(
                Diagnostic::warning(
                    "rego-package",
                    p("spec.parameters.policy"),
                    "the Rego source does not declare `package ratify.policy`",
                )
                .with_fix("start the policy with `package ratify.policy`"),
            ),
            _ => {}
        },
        None if !o.spec.type_.is_empty() => out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.parameters"),
                "the policy needs `parameters`",
            )
            .with_fix(if o.spec.type_ == "rego-policy" {
                "add `parameters:` with `policy: |` and the Rego source"
            } else {
                "add `parameters:` with `artifactVerificationPolicies: {default: all}`"
            }),
        ),
        _ => {}
    }
}

/// Rules for one resource on its own.
pub(crate) fn resource(r: &Resource, out: &mut Vec<Diagnostic>) {
    metadata(r.kind(), r.metadata(), out);
    match r {
        Resource::Store(o) | Resource::NamespacedStore(o) => store(o, out),
        Resource::Verifier(o) | Resource::NamespacedVerifier(o) => verifier(o, out),
        Resource::KeyManagementProvider(o) | Resource::NamespacedKeyManagementProvider(o) => {
            kmp::validate(o, out)
        }
        Resource::Policy(o) | Resource::NamespacedPolicy(o) => policy(o, out),
        Resource::CertificateStore(o) => kmp::certificate_store(o, out),
    }
}

/// Joins names for messages: `a`, `b` and `c`.
pub(crate) fn names(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
