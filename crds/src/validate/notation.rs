//! Notation verifier parameters and its trust policy document.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use super::p;
use crate::diag::{Diagnostic, FieldPath};
use crate::model::{CertStoreEntry, NotationParameters, NotationTrustPolicy, TrustStoreType};

static STORE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_.-]+$").expect("valid regex"));

const LEVELS: &[&str] = &["strict", "permissive", "audit", "skip"];
const OVERRIDABLE: &[&str] = &["authenticity", "authenticTimestamp", "expiry", "revocation"];
const ACTIONS: &[&str] = &["enforce", "log", "skip"];

fn cert_stores(n: &NotationParameters, out: &mut Vec<Diagnostic>) {
    let base = p("spec.parameters.verificationCertStores");
    let Some(stores) = &n.verification_cert_stores else {
        if n.verification_certs.as_ref().is_none_or(Vec::is_empty) {
            out.push(
                Diagnostic::warning(
                    "no-certificates",
                    p("spec.parameters"),
                    "neither `verificationCertStores` nor `verificationCerts` is set: no certificate is trusted and every Notation signature fails",
                )
                .with_fix("add `verificationCertStores:` with `ca:` → `<store>:` → `- <KeyManagementProvider name>`"),
            );
        }
        return;
    };
    let legacy: Vec<&String> = stores
        .iter()
        .filter(|(_, e)| matches!(e, CertStoreEntry::Refs(_)))
        .map(|(k, _)| k)
        .collect();
    let typed: Vec<&String> = stores
        .iter()
        .filter(|(_, e)| matches!(e, CertStoreEntry::Stores(_)))
        .map(|(k, _)| k)
        .collect();
    if !legacy.is_empty() && !typed.is_empty() {
        out.push(
            Diagnostic::error(
                "mixed-cert-store-formats",
                base.clone(),
                format!(
                    "mixes the legacy form `<store>: [providers]` (`{}`) with the typed form `ca|signingAuthority|tsa: {{<store>: [providers]}}` (`{}`)",
                    legacy[0], typed[0]
                ),
            )
            .with_fix(format!("move `{}:` under `ca:` so every entry uses the typed form", legacy[0])),
        );
    }
    for (key, entry) in stores {
        match entry {
            CertStoreEntry::Refs(refs) => refs_ok(refs, &base.key(key.clone()), out),
            CertStoreEntry::Stores(m) => {
                if TrustStoreType::parse(key).is_none() {
                    out.push(
                        Diagnostic::error(
                            "invalid-value",
                            base.key(key.clone()),
                            format!("`{key}` is not a trust store type"),
                        )
                        .with_fix(
                            "use `ca`, `signingAuthority` or `tsa` here, with store names under it",
                        ),
                    );
                }
                for (store, refs) in m {
                    refs_ok(refs, &base.key(key.clone()).key(store.clone()), out);
                }
            }
        }
    }
}

fn refs_ok(refs: &[String], path: &FieldPath, out: &mut Vec<Diagnostic>) {
    if refs.is_empty() {
        out.push(
            Diagnostic::error(
                "empty-list",
                path.clone(),
                "the store lists no KeyManagementProvider",
            )
            .with_fix("add `- <KeyManagementProvider name>`"),
        );
    }
    for (i, r) in refs.iter().enumerate() {
        if r.trim().is_empty() {
            out.push(
                Diagnostic::error("empty-value", path.index(i), "empty provider name")
                    .with_fix("write the name of a KeyManagementProvider"),
            );
        }
    }
}

fn scope_ok(scope: &str) -> Result<(), &'static str> {
    if scope.contains('*') {
        return Err("wildcards are only allowed as the single scope `*`");
    }
    if scope.chars().any(char::is_whitespace) {
        return Err("a scope cannot contain spaces");
    }
    let Some((_, repo)) = scope.split_once('/') else {
        return Err("a scope is a repository with its registry, like `myregistry.azurecr.io/app`");
    };
    if repo.is_empty() || scope.ends_with('/') {
        return Err("the repository part is empty");
    }
    let last = repo.rsplit('/').next().unwrap_or(repo);
    if last.contains(':') || scope.contains('@') {
        return Err("a scope names a repository, without tag or digest");
    }
    Ok(())
}

fn identity_ok(id: &str) -> Result<(), String> {
    let Some(dn) = id.strip_prefix("x509.subject:") else {
        return Err("a trusted identity is `*` or `x509.subject: <distinguished name>`".into());
    };
    let dn = dn.trim();
    if dn.is_empty() {
        return Err("the distinguished name after `x509.subject:` is empty".into());
    }
    let mut attrs = Vec::new();
    for rdn in dn.split(',') {
        let Some((k, v)) = rdn.split_once('=') else {
            return Err(format!("`{}` is not an `attribute=value` pair", rdn.trim()));
        };
        if v.trim().is_empty() {
            return Err(format!("attribute `{}` has no value", k.trim()));
        }
        attrs.push(k.trim().to_ascii_uppercase());
    }
    let missing: Vec<&str> = ["C", "ST", "O"]
        .into_iter()
        .filter(|a| !attrs.iter().any(|x| x == a))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the distinguished name lacks {}: Notation requires C, ST and O",
            missing.join(", ")
        ));
    }
    Ok(())
}

fn policy(
    pol: &NotationTrustPolicy,
    base: &FieldPath,
    stores: &Option<BTreeMap<TrustStoreType, BTreeMap<String, Vec<String>>>>,
    check_store_names: bool,
    out: &mut Vec<Diagnostic>,
) {
    let scopes = pol.registry_scopes.as_deref().unwrap_or_default();
    if scopes.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                base.key("registryScopes"),
                "`registryScopes` is required",
            )
            .with_fix("add `registryScopes:` with `- \"*\"` or `- <registry>/<repository>`"),
        );
    }
    for (i, s) in scopes.iter().enumerate() {
        if s == "*" {
            if scopes.len() > 1 {
                out.push(
                    Diagnostic::error(
                        "global-scope",
                        base.key("registryScopes").index(i),
                        "the global scope `*` must be the only scope of its policy",
                    )
                    .with_fix("remove the other scopes, or move them to their own policy"),
                );
            }
        } else if let Err(why) = scope_ok(s) {
            out.push(
                Diagnostic::error(
                    "invalid-scope",
                    base.key("registryScopes").index(i),
                    format!("`{s}`: {why}"),
                )
                .with_fix("write `\"*\"` or a repository such as `myregistry.azurecr.io/app`"),
            );
        }
    }
    let sv_path = base.key("signatureVerification");
    let Some(sv) = &pol.signature_verification else {
        out.push(
            Diagnostic::error(
                "missing-field",
                sv_path,
                "`signatureVerification` is required",
            )
            .with_fix("add `signatureVerification:` with an indented `level: strict`"),
        );
        return;
    };
    let level = sv.level.as_deref().unwrap_or("");
    if level.is_empty() {
        out.push(
            Diagnostic::error("missing-field", sv_path.key("level"), "`level` is required")
                .with_fix("set `level: strict` (or permissive, audit, skip)"),
        );
    } else if !LEVELS.contains(&level) {
        out.push(
            Diagnostic::error(
                "invalid-value",
                sv_path.key("level"),
                format!("`{level}` is not a verification level"),
            )
            .with_fix("use strict, permissive, audit or skip"),
        );
    }
    if let Some(ov) = &sv.override_ {
        if level == "skip" && !ov.is_empty() {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    sv_path.key("override"),
                    "`override` cannot be used with level `skip`",
                )
                .with_fix("remove `override`, or choose another level"),
            );
        }
        for (k, v) in ov {
            let path = sv_path.key("override").key(k.clone());
            if k == "integrity" {
                out.push(
                    Diagnostic::error(
                        "invalid-value",
                        path,
                        "integrity validation cannot be overridden",
                    )
                    .with_fix("remove `integrity` from `override`"),
                );
            } else if !OVERRIDABLE.contains(&k.as_str()) {
                out.push(
                    Diagnostic::error(
                        "invalid-value",
                        path,
                        format!("`{k}` is not a validation type"),
                    )
                    .with_fix("use authenticity, authenticTimestamp, expiry or revocation"),
                );
            } else if !ACTIONS.contains(&v.as_str()) {
                out.push(
                    Diagnostic::error(
                        "invalid-value",
                        path,
                        format!("`{v}` is not a validation action"),
                    )
                    .with_fix("use enforce, log or skip"),
                );
            }
        }
    }
    if let Some(vt) = sv.verify_timestamp.as_deref()
        && vt != "always"
        && vt != "afterCertExpiry"
    {
        out.push(
            Diagnostic::error(
                "invalid-value",
                sv_path.key("verifyTimestamp"),
                format!("`{vt}` is not a timestamp rule"),
            )
            .with_fix("use `always` or `afterCertExpiry`"),
        );
    }
    let trust_stores = pol.trust_stores.as_deref().unwrap_or_default();
    let identities = pol.trusted_identities.as_deref().unwrap_or_default();
    if level == "skip" {
        for (field, set) in [
            ("trustStores", !trust_stores.is_empty()),
            ("trustedIdentities", !identities.is_empty()),
        ] {
            if set {
                out.push(
                    Diagnostic::error(
                        "invalid-value",
                        base.key(field),
                        format!("`{field}` must be empty when the level is `skip`"),
                    )
                    .with_fix(format!("remove `{field}`, or choose another level")),
                );
            }
        }
        return;
    }
    if trust_stores.is_empty() {
        out.push(
            Diagnostic::error(
                "missing-field",
                base.key("trustStores"),
                "`trustStores` is required",
            )
            .with_fix("add `trustStores:` with `- ca:<store name>`"),
        );
    }
    for (i, ts) in trust_stores.iter().enumerate() {
        let path = base.key("trustStores").index(i);
        let Some((ty, name)) = ts.split_once(':') else {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    path,
                    format!("`{ts}` is not `<type>:<store name>`"),
                )
                .with_fix("write e.g. `ca:certs`"),
            );
            continue;
        };
        let Some(t) = TrustStoreType::parse(ty) else {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    path,
                    format!("`{ty}` is not a trust store type"),
                )
                .with_fix("use `ca`, `signingAuthority` or `tsa`"),
            );
            continue;
        };
        if !STORE_NAME.is_match(name) {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    path,
                    format!("`{name}` is not a valid trust store name"),
                )
                .with_fix("use letters, digits, `_`, `.` and `-`"),
            );
            continue;
        }
        if check_store_names && let Some(by_type) = stores {
            let defined = by_type.get(&t).is_some_and(|m| m.contains_key(name));
            if !defined {
                let known: Vec<String> = by_type
                    .iter()
                    .flat_map(|(t, m)| m.keys().map(move |n| format!("{}:{n}", t.as_str())))
                    .collect();
                out.push(
                    Diagnostic::error(
                        "undefined-trust-store",
                        path,
                        format!("trust store `{ts}` is not defined in `verificationCertStores`"),
                    )
                    .with_fix(format!(
                        "define `{name}` under verificationCertStores.{} or use one of {}",
                        t.as_str(),
                        super::names(&known)
                    )),
                );
            }
        }
    }
    if identities.is_empty() {
        out.push(
            Diagnostic::error("missing-field", base.key("trustedIdentities"), "`trustedIdentities` is required")
                .with_fix("add `trustedIdentities:` with `- \"x509.subject: C=.., ST=.., O=.., CN=..\"` (or `- \"*\"`)"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, id) in identities.iter().enumerate() {
        let path = base.key("trustedIdentities").index(i);
        if let Some(j) = seen.insert(id.as_str(), i) {
            out.push(
                Diagnostic::error(
                    "duplicate-value",
                    path.clone(),
                    format!("`{id}` is listed twice (entries {j} and {i})"),
                )
                .with_fix("remove one of them"),
            );
        }
        if id == "*" {
            if identities.len() > 1 {
                out.push(
                    Diagnostic::error(
                        "invalid-value",
                        path,
                        "`*` must be the only trusted identity of its policy",
                    )
                    .with_fix("remove `*` or the other identities"),
                );
            }
        } else if let Err(why) = identity_ok(id) {
            out.push(
                Diagnostic::error("invalid-value", path, format!("`{id}`: {why}"))
                    .with_fix("write `x509.subject: C=US, ST=WA, O=Example, CN=signer` with your certificate's subject"),
            );
        }
    }
}

pub(super) fn validate(n: &NotationParameters, out: &mut Vec<Diagnostic>) {
    cert_stores(n, out);
    let doc_path = p("spec.parameters.trustPolicyDoc");
    let Some(doc) = &n.trust_policy_doc else {
        out.push(
            Diagnostic::error(
                "missing-field",
                doc_path,
                "the notation verifier needs `trustPolicyDoc`",
            )
            .with_fix("add `trustPolicyDoc:` with `version: \"1.0\"` and `trustPolicies:`"),
        );
        return;
    };
    match doc.version.as_deref() {
        Some("1.0") => {}
        Some(v) => out.push(
            Diagnostic::error(
                "invalid-value",
                doc_path.key("version"),
                format!("trust policy version `{v}` is not supported"),
            )
            .with_fix("set `version: \"1.0\"` (quoted)"),
        ),
        None => out.push(
            Diagnostic::error(
                "missing-field",
                doc_path.key("version"),
                "`version` is required",
            )
            .with_fix("add `version: \"1.0\"`"),
        ),
    }
    let policies = doc.trust_policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        out.push(
            Diagnostic::error("missing-field", doc_path.key("trustPolicies"), "at least one trust policy is required")
                .with_fix("add `trustPolicies:` with `- name: default`, `registryScopes`, `signatureVerification`, `trustStores` and `trustedIdentities`"),
        );
        return;
    }
    let stores = n.cert_stores_by_type();
    let check_store_names = n.verification_cert_stores.is_some()
        && n.verification_certs.as_ref().is_none_or(Vec::is_empty);
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut scopes: HashMap<&str, (usize, &str)> = HashMap::new();
    for (i, pol) in policies.iter().enumerate() {
        let base = doc_path.key("trustPolicies").index(i);
        let name = pol.name.as_deref().unwrap_or("");
        if name.is_empty() {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    base.key("name"),
                    "the trust policy needs a `name`",
                )
                .with_fix("add `name: <policy name>` as the item's first key"),
            );
        } else if let Some(j) = names.insert(name, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-value",
                    base.key("name"),
                    format!("trust policy name `{name}` is used by trustPolicies[{j}] and trustPolicies[{i}]"),
                )
                .with_fix("give each trust policy its own name"),
            );
        }
        for (k, s) in pol.registry_scopes.iter().flatten().enumerate() {
            if let Some((j, other)) = scopes.insert(s.as_str(), (i, name))
                && j != i
            {
                out.push(
                    Diagnostic::error(
                        "duplicate-scope",
                        base.key("registryScopes").index(k),
                        format!(
                            "registry scope `{s}` is in trust policy `{other}` and in `{name}`"
                        ),
                    )
                    .with_fix(
                        "a scope may belong to one trust policy only; remove it from one of them",
                    ),
                );
            }
        }
        policy(pol, &base, &stores, check_store_names, out);
    }
}
