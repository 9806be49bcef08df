//! Notation verifier parameters and its trust policy document.

//!
//! The trust policy's rules are [`crate::notation`]'s: each field is checked here with the same
//! functions verification uses, so a problem is reported at its field with a fix, and a document
//! that passes field by field is then checked as a whole by [`TrustPolicy::from_document`] (what
//! `verdict serve` runs), so `config check` accepts exactly what verification accepts.

use std::collections::{BTreeMap, HashMap};

use super::p;
use crate::diag::{Diagnostic, FieldPath};
use crate::model::{CertStoreEntry, NotationParameters, NotationTrustPolicy, TrustStoreType};
use crate::notation::{
    Level, TrustPolicy, VerifyTimestamp, check_scope, parse_identity, parse_override,
    parse_trust_store_ref,
};

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
        } else if let Err(why) = check_scope(s) {
            out.push(
                Diagnostic::error("invalid-scope", base.key("registryScopes").index(i), why)
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
    } else if Level::parse(level).is_none() {
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
            if let Err(why) = parse_override(k, v) {
                out.push(
                    Diagnostic::error("invalid-value", sv_path.key("override").key(k.clone()), why)
                        .with_fix("override authenticity, authenticTimestamp, expiry or revocation with enforce or log (only revocation may be skipped; integrity cannot be overridden)"),
                );
            }
        }
    }
    if let Some(vt) = sv.verify_timestamp.as_deref()
        && VerifyTimestamp::parse(vt).is_none()
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
        let r = match parse_trust_store_ref(ts) {
            Ok(r) => r,
            Err(why) => {
                out.push(
                    Diagnostic::error("invalid-value", path, format!("the entry {why}")).with_fix(
                        "write `<type>:<store name>`, e.g. `ca:certs`: type ca, signingAuthority or tsa; the name of letters, digits, `_`, `.` and `-`",
                    ),
                );
                continue;
            }
        };
        let (t, name) = (r.store_type, r.name.as_str());
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
        } else if let Err(why) = parse_identity(id) {
            out.push(
                Diagnostic::error("invalid-value", path, why)
                    .with_fix("write `x509.subject: C=US, ST=WA, O=Example, CN=signer` with your certificate's subject"),
            );
        }
    }
}

pub(super) fn validate(n: &NotationParameters, out: &mut Vec<Diagnostic>) {
    let before = out.len();
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
    // Field by field it passed: the rules that span fields and statements (overlapping
    // identities, skip with the global scope, tsa-only stores, ...) as verification checks them.
    if !out[before..].iter().any(Diagnostic::is_error)
        && let Err(e) = TrustPolicy::from_document(doc)
    {
        out.push(
            Diagnostic::error("invalid-trust-policy", doc_path, e.to_string())
                .with_fix("correct the trust policy as the message says (Notary Project trust policy specification v1.0)"),
        );
    }
}
