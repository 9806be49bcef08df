//! Rules across resources: unique names, and Verifier references to KeyManagementProviders.

use std::collections::HashMap;

use crate::diag::{Diagnostic, FieldPath};
use crate::model::{CertStoreEntry, Kind, KmpParameters, Resource, VerifierParameters};

use super::{names, p};

/// A diagnostic about resource `index`, possibly pointing at another resource `related`.
#[derive(Debug)]
pub(crate) struct CrossIssue {
    pub index: usize,
    pub diagnostic: Diagnostic,
    pub related: Option<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Use {
    Certificates,
    Keys,
}

struct Provider<'a> {
    index: usize,
    res: &'a Resource,
}

impl Provider<'_> {
    fn offers(&self, u: Use) -> bool {
        match self
            .res
            .as_key_management_provider()
            .and_then(|k| k.spec.parameters.as_ref())
        {
            Some(KmpParameters::AzureKeyVault(a)) => match u {
                Use::Certificates => a.certificates.as_ref().is_some_and(|c| !c.is_empty()),
                Use::Keys => a.keys.as_ref().is_some_and(|c| !c.is_empty()),
            },
            Some(KmpParameters::Inline(i)) => match u {
                Use::Certificates => i.content_type.as_deref() == Some("certificate"),
                Use::Keys => i.content_type.as_deref() == Some("key"),
            },
            // CertificateStores and unknown providers: cannot tell.
            _ => true,
        }
    }
}

/// Checks every resource against the others.
pub(crate) fn cross(resources: &[&Resource]) -> Vec<CrossIssue> {
    let mut out = Vec::new();
    // Unique (kind, namespace, name).
    let mut seen: HashMap<(Kind, Option<&str>, &str), usize> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        let key = (r.kind(), r.namespace(), r.name());
        if let Some(first) = seen.insert(key, i) {
            let ns = r
                .namespace()
                .map(|n| format!(" in namespace `{n}`"))
                .unwrap_or_default();
            out.push(CrossIssue {
                index: i,
                diagnostic: Diagnostic::error(
                    "duplicate-resource",
                    p("metadata.name"),
                    format!("a second {} named `{}`{ns}", r.kind(), r.name()),
                )
                .with_fix(
                    "give each resource its own name (applying both would keep only the last)",
                ),
                related: Some(first),
            });
            seen.insert(key, first);
        }
    }
    // Providers by reference: `name` (cluster KMP), `ns/name` (namespaced KMP or CertificateStore).
    let mut cluster: HashMap<&str, Provider> = HashMap::new();
    let mut namespaced: HashMap<String, Provider> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        match r.kind() {
            Kind::KeyManagementProvider => {
                cluster.insert(r.name(), Provider { index: i, res: r });
            }
            Kind::NamespacedKeyManagementProvider | Kind::CertificateStore => {
                let ns = r.namespace().unwrap_or("default");
                namespaced.insert(format!("{ns}/{}", r.name()), Provider { index: i, res: r });
            }
            _ => {}
        }
    }
    let cluster_names: Vec<String> = {
        let mut v: Vec<String> = cluster.keys().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    for (i, r) in resources.iter().enumerate() {
        let Some(v) = r.as_verifier() else { continue };
        let mut refs: Vec<(String, FieldPath, Use)> = Vec::new();
        match &v.spec.parameters {
            Some(VerifierParameters::Notation(n)) => {
                let base = p("spec.parameters.verificationCertStores");
                for (k, e) in n.verification_cert_stores.iter().flatten() {
                    match e {
                        CertStoreEntry::Refs(list) => {
                            for (j, name) in list.iter().enumerate() {
                                refs.push((
                                    name.clone(),
                                    base.key(k.clone()).index(j),
                                    Use::Certificates,
                                ));
                            }
                        }
                        CertStoreEntry::Stores(m) => {
                            for (store, list) in m {
                                for (j, name) in list.iter().enumerate() {
                                    refs.push((
                                        name.clone(),
                                        base.key(k.clone()).key(store.clone()).index(j),
                                        Use::Certificates,
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            Some(VerifierParameters::Cosign(c)) => {
                for (pi, pol) in c.trust_policies.iter().flatten().enumerate() {
                    for (ki, key) in pol.keys.iter().flatten().enumerate() {
                        if let Some(provider) = key.provider.as_deref().filter(|s| !s.is_empty()) {
                            refs.push((
                                provider.to_string(),
                                p("spec.parameters.trustPolicies")
                                    .index(pi)
                                    .key("keys")
                                    .index(ki)
                                    .key("provider"),
                                Use::Keys,
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        let verifier_ns = r.namespace();
        for (name, path, usage) in refs {
            if name.trim().is_empty() {
                continue;
            }
            let found = match name.split_once('/') {
                None => cluster.get(name.as_str()),
                Some((ns, _)) => {
                    let hit = namespaced.get(&name);
                    let allowed = match (verifier_ns, hit.map(|h| h.res.kind())) {
                        (_, Some(Kind::CertificateStore)) => true,
                        (Some(vns), _) => vns == ns,
                        (None, _) => false,
                    };
                    if hit.is_some() && !allowed {
                        let who = match verifier_ns {
                            Some(vns) => format!("a {} in namespace `{vns}`", r.kind()),
                            None => format!("the cluster-scoped {}", r.kind()),
                        };
                        out.push(CrossIssue {
                            index: i,
                            diagnostic: Diagnostic::error(
                                "provider-access",
                                path,
                                format!("{who} `{}` may not use the provider `{name}` of namespace `{ns}`", r.name()),
                            )
                            .with_fix("use a cluster-scoped KeyManagementProvider (bare name) or one in the verifier's own namespace"),
                            related: hit.map(|h| h.index),
                        });
                        continue;
                    }
                    hit
                }
            };
            match found {
                None => {
                    let kinds = if name.contains('/') {
                        "NamespacedKeyManagementProvider (or CertificateStore)"
                    } else {
                        "KeyManagementProvider"
                    };
                    out.push(CrossIssue {
                        index: i,
                        diagnostic: Diagnostic::error(
                            "unknown-provider",
                            path,
                            format!(
                                "{} `{}` references {kinds} `{name}`, which is not defined in the loaded configuration",
                                r.kind(),
                                r.name()
                            ),
                        )
                        .with_fix(format!(
                            "define a {kinds} named `{name}` next to it, or correct the name (defined KeyManagementProviders: {})",
                            names(&cluster_names)
                        )),
                        related: None,
                    });
                }
                Some(prov) if !prov.offers(usage) => {
                    let (want, verifier) = match usage {
                        Use::Certificates => ("certificates", "notation"),
                        Use::Keys => ("keys", "cosign"),
                    };
                    out.push(CrossIssue {
                        index: i,
                        diagnostic: Diagnostic::warning(
                            "provider-content",
                            path,
                            format!("the {verifier} verifier `{}` uses provider `{name}`, which provides no {want}", r.name()),
                        )
                        .with_fix(format!("add {want} to `{name}` or reference another provider")),
                        related: Some(prov.index),
                    });
                }
                Some(_) => {}
            }
        }
    }
    out
}
