//! Cosign verifier parameters: trust policies, scopes, keys and keyless settings.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::p;
use crate::diag::{Diagnostic, FieldPath};
use crate::model::{CosignParameters, CosignTrustPolicy};

static SCOPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9\.\-:@/]*\*?$").expect("valid regex"));

/// Why two scopes overlap, if they do. `*` (global) never overlaps: it is the fallback.
fn overlap(a: &str, b: &str) -> Option<&'static str> {
    if a == "*" || b == "*" {
        return None;
    }
    if a == b {
        return Some("they are the same scope");
    }
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (Some(pa), Some(pb)) if pa.starts_with(pb) || pb.starts_with(pa) => {
            Some("one wildcard scope contains the other")
        }
        (Some(pa), None) if b.starts_with(pa) => Some("the wildcard scope contains the exact one"),
        (None, Some(pb)) if a.starts_with(pb) => Some("the wildcard scope contains the exact one"),
        _ => None,
    }
}

fn url_ok(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(' '))
}

fn keyless(pol: &CosignTrustPolicy, base: &FieldPath, out: &mut Vec<Diagnostic>) {
    let Some(k) = &pol.keyless else { return };
    let path = base.key("keyless");
    let pairs = [
        (
            "certificateIdentity",
            &k.certificate_identity,
            "certificateIdentityRegExp",
            &k.certificate_identity_reg_exp,
            "the signer identity (e.g. an e-mail or workflow URL)",
        ),
        (
            "certificateOIDCIssuer",
            &k.certificate_oidc_issuer,
            "certificateOIDCIssuerRegExp",
            &k.certificate_oidc_issuer_reg_exp,
            "the OIDC issuer (e.g. https://token.actions.githubusercontent.com)",
        ),
    ];
    for (exact, ev, re, rv, what) in pairs {
        let e = ev.as_deref().is_some_and(|s| !s.is_empty());
        let r = rv.as_deref().is_some_and(|s| !s.is_empty());
        if e && r {
            out.push(
                Diagnostic::error(
                    "conflicting-fields",
                    path.key(re),
                    format!("`{exact}` and `{re}` are both set"),
                )
                .with_fix(format!("keep exactly one of `{exact}` and `{re}`")),
            );
        } else if !e && !r {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    path.key(exact),
                    format!("keyless verification needs `{exact}` or `{re}`"),
                )
                .with_fix(format!("set `{exact}:` to {what}")),
            );
        }
        if let Some(src) = rv.as_deref().filter(|s| !s.is_empty())
            && let Err(e) = Regex::new(src)
        {
            out.push(
                Diagnostic::error(
                    "invalid-regexp",
                    path.key(re),
                    format!("`{src}` is not a valid regular expression: {e}"),
                )
                .with_fix("correct the expression (RE2 syntax)"),
            );
        }
    }
}

fn keys(pol: &CosignTrustPolicy, base: &FieldPath, out: &mut Vec<Diagnostic>) {
    for (j, key) in pol.keys.iter().flatten().enumerate() {
        let path = base.key("keys").index(j);
        let provider = key.provider.as_deref().is_some_and(|s| !s.is_empty());
        let file = key.file.as_deref().is_some_and(|s| !s.is_empty());
        if provider && file {
            out.push(
                Diagnostic::error("conflicting-fields", path.key("file"), "`provider` and `file` are both set")
                    .with_fix("a key comes from a KeyManagementProvider (`provider`) or from a file (`file`): keep one"),
            );
        } else if !provider && !file {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    path.key("provider"),
                    "the key needs `provider` (or `file`)",
                )
                .with_fix("set `provider:` to the name of a KeyManagementProvider"),
            );
        }
        if key.version.as_deref().is_some_and(|s| !s.is_empty())
            && key.name.as_deref().is_none_or(str::is_empty)
        {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    path.key("name"),
                    "`version` is set without the key's `name`",
                )
                .with_fix("add `name:` (the key name in the provider), or remove `version`"),
            );
        }
        if file && (key.name.is_some() || key.version.is_some()) {
            out.push(
                Diagnostic::warning("ignored-field", path.key("name"), "`name` and `version` only apply to provider keys; with `file` they are ignored")
                    .with_fix("remove `name`/`version`"),
            );
        }
    }
}

pub(super) fn validate(c: &CosignParameters, out: &mut Vec<Diagnostic>) {
    let base = p("spec.parameters");
    let Some(policies) = &c.trust_policies else {
        match &c.key {
            None => out.push(
                Diagnostic::error("missing-field", base.key("trustPolicies"), "the cosign verifier needs `trustPolicies`")
                    .with_fix("add `trustPolicies:` with `- name: default`, `scopes: [\"*\"]` and `keys: [{provider: <KeyManagementProvider>}]`"),
            ),
            Some(k) => out.push(
                Diagnostic::warning("deprecated-field", base.key("key"), "`key` is Ratify's deprecated legacy cosign configuration")
                    .with_fix(format!(
                        "use `trustPolicies: [{{name: default, scopes: [\"*\"], keys: [{{file: {k}}}]}}]`"
                    )),
            ),
        }
        return;
    };
    if policies.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                base.key("trustPolicies"),
                "`trustPolicies` is empty",
            )
            .with_fix("add a trust policy with `name`, `scopes` and `keys` or `keyless`"),
        );
    }
    if c.key.is_some() || c.rekor_url.is_some() {
        let field = if c.key.is_some() { "key" } else { "rekorURL" };
        out.push(
            Diagnostic::warning(
                "ignored-field",
                base.key(field),
                format!("`{field}` belongs to the legacy configuration and is ignored when `trustPolicies` is set"),
            )
            .with_fix(format!("remove `{field}` (set keys and rekorURL inside each trust policy)")),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut all_scopes: Vec<(&str, &str, FieldPath)> = Vec::new();
    let mut global: Option<&str> = None;
    for (i, pol) in policies.iter().enumerate() {
        let pb = base.key("trustPolicies").index(i);
        let name = pol.name.as_deref().unwrap_or("");
        if name.is_empty() {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    pb.key("name"),
                    "the trust policy needs a `name`",
                )
                .with_fix("add `name: <policy name>`"),
            );
        } else if let Some(j) = names.insert(name, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-value",
                    pb.key("name"),
                    format!("trust policy name `{name}` is used by trustPolicies[{j}] and trustPolicies[{i}]"),
                )
                .with_fix("give each trust policy its own name"),
            );
        }
        if let Some(v) = pol.version.as_deref()
            && v != "1.0.0"
        {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    pb.key("version"),
                    format!("trust policy version `{v}` is not supported"),
                )
                .with_fix("set `version: 1.0.0` or remove it"),
            );
        }
        let scopes = pol.scopes.as_deref().unwrap_or_default();
        if scopes.is_empty() {
            out.push(
                Diagnostic::error("missing-field", pb.key("scopes"), "`scopes` is required")
                    .with_fix("add `scopes:` with `- \"*\"` or `- \"myregistry.azurecr.io/*\"`"),
            );
        }
        for (k, s) in scopes.iter().enumerate() {
            let sp = pb.key("scopes").index(k);
            if s == "*" {
                if scopes.len() > 1 {
                    out.push(
                        Diagnostic::error(
                            "global-scope",
                            sp.clone(),
                            "the global scope `*` must be the only scope of its policy",
                        )
                        .with_fix("remove the other scopes, or move them to their own policy"),
                    );
                }
                if let Some(other) = global {
                    out.push(
                        Diagnostic::error(
                            "global-scope",
                            sp.clone(),
                            format!("the global scope `*` is used by trust policy `{other}` and again by `{name}`"),
                        )
                        .with_fix("keep `*` in one trust policy only"),
                    );
                }
                global = Some(name);
                continue;
            }
            if !SCOPE.is_match(s) || s.is_empty() {
                out.push(
                    Diagnostic::error(
                        "invalid-scope",
                        sp.clone(),
                        format!("scope `{s}` is not valid: use lowercase registry/repository characters, with `*` only at the end"),
                    )
                    .with_fix("write e.g. `myregistry.azurecr.io/app` or `myregistry.azurecr.io/*`"),
                );
                continue;
            }
            for (other_scope, other_policy, _) in &all_scopes {
                if let Some(why) = overlap(s, other_scope) {
                    out.push(
                        Diagnostic::error(
                            "overlapping-scopes",
                            sp.clone(),
                            format!(
                                "scope `{s}` of trust policy `{name}` overlaps scope `{other_scope}` of trust policy `{other_policy}`: {why}"
                            ),
                        )
                        .with_fix("make the scopes disjoint: each image reference may match one trust policy only"),
                    );
                }
            }
            all_scopes.push((s.as_str(), name, sp));
        }
        let has_keys = pol.keys.as_ref().is_some_and(|k| !k.is_empty());
        let has_keyless = pol.keyless.is_some();
        if has_keys && has_keyless {
            out.push(
                Diagnostic::error("conflicting-fields", pb.key("keyless"), "`keys` and `keyless` are both set")
                    .with_fix("a trust policy verifies with keys or keyless, not both: split it into two policies"),
            );
        } else if !has_keys && !has_keyless {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    pb.key("keys"),
                    "the trust policy needs `keys` or `keyless`",
                )
                .with_fix("add `keys:` with `- provider: <KeyManagementProvider name>`"),
            );
        }
        keys(pol, &pb, out);
        keyless(pol, &pb, out);
        if let Some(u) = pol.rekor_url.as_deref()
            && !url_ok(u)
        {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    pb.key("rekorURL"),
                    format!("`{u}` is not an http(s) URL"),
                )
                .with_fix("write e.g. `https://rekor.sigstore.dev`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::overlap;

    #[test]
    fn overlap_rules() {
        assert!(overlap("a.io/*", "a.io/app").is_some());
        assert!(overlap("a.io/*", "a.io/app/*").is_some());
        assert!(overlap("a.io/app", "a.io/app").is_some());
        assert!(overlap("a.io/app", "a.io/other").is_none());
        assert!(overlap("*", "a.io/app").is_none());
        assert!(overlap("a.io/x*", "b.io/*").is_none());
    }
}
