//! Ratify's Cosign trust policies: `trustPolicies[{name, scopes, keys | keyless, tLogVerify}]`,
//! resolved against KeyManagementProviders and key files into ready-to-verify keys.
//!
//! Scope rules (Ratify `trustpolicies.go`): a scope is `*` (global, once, alone in its policy), an
//! exact reference, or a prefix ending in `*` (`*` nowhere else); overlapping scopes are
//! rejected. Lookup: the first policy with a matching non-global scope wins, the global policy
//! is the fallback. Scopes match the reference as the caller wrote it (Ratify's
//! `subjectReference.Original`); an exact scope also matches the bare repository, so
//! `myacr.azurecr.io/app` covers `myacr.azurecr.io/app:v1` and `…@sha256:…`.
//!
//! Over 600 lines because Ratify's Cosign trust-policy resolution (scopes, keys, keyless
//! identities) is one rule set, with its tests.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use verdict_crds::model::{CosignParameters, CosignTrustPolicy};

use super::error::CosignError;
use super::fulcio::{KeylessRequirements, Matcher};
use super::keys::PublicKey;
use super::trust_root::SigstoreTrustRoot;

static SCOPE: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern is a literal: compiling it cannot fail.
    Regex::new(r"^[a-z0-9\.\-:@/]*\*?$").unwrap_or_else(|_| unreachable!())
});

/// Where a trusted key came from: reported as Ratify's `keyInformation` and used for evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct KeyInformation {
    /// KeyManagementProvider name, or `file` for key files.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// Key name inside the provider (the file path for `file`); empty for inline providers.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl KeyInformation {
    /// The evidence fingerprint naming this key version, so revocation can find every verdict
    /// that rested on it: `kmp:<provider>[/<name>][@<version>]`, or `file:<path>`.
    pub fn evidence_id(&self) -> String {
        if self.provider == FILE_PROVIDER {
            return format!("file:{}", self.name);
        }
        let mut s = format!("kmp:{}", self.provider);
        if !self.name.is_empty() {
            s.push('/');
            s.push_str(&self.name);
        }
        if !self.version.is_empty() {
            s.push('@');
            s.push_str(&self.version);
        }
        s
    }
}

/// Provider name Ratify reports for keys read from files.
pub const FILE_PROVIDER: &str = "file";

/// A public key held by a KeyManagementProvider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderKey {
    /// Key name in the provider (empty for `inline` providers, which hold one unnamed key).
    pub name: String,
    /// Key version (empty when the provider has no versions).
    pub version: String,
    pub pem: String,
}

/// A key a trust policy trusts.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub info: KeyInformation,
    pub key: PublicKey,
}

/// What a trust policy trusts.
#[derive(Clone, Debug)]
pub enum Trust {
    Keys(Vec<TrustedKey>),
    Keyless(KeylessRequirements),
}

/// One resolved trust policy.
#[derive(Clone, Debug)]
pub struct TrustPolicy {
    pub name: String,
    pub scopes: Vec<String>,
    pub trust: Trust,
    /// Check transparency-log entries offline (Ratify's `tLogVerify`, default true).
    pub tlog_verify: bool,
}

/// Resolves the key-management side of a configuration (KMP keys and key files).
pub trait KeyResolver {
    /// The public keys of KeyManagementProvider `provider`; `None` when it does not exist.
    fn provider_keys(&self, provider: &str) -> Option<Vec<ProviderKey>>;
    /// The PEM text of key file `path`.
    fn read_key_file(&self, path: &str) -> Result<String, String>;
    /// Whether `provider`'s keys come from a service (Key Vault), where holding no matching key
    /// is a state (every version disabled: trust nothing) rather than a configuration error.
    fn provider_is_fetched(&self, _provider: &str) -> bool {
        false
    }
}

/// A configured Cosign verifier: its trust policies and the Sigstore trust material.
#[derive(Clone, Debug)]
pub struct CosignVerifier {
    pub(crate) policies: Vec<TrustPolicy>,
    pub(crate) trust_root: Arc<SigstoreTrustRoot>,
}

impl CosignVerifier {
    /// Builds the verifier from the Verifier's `parameters`. Ratify's legacy form (`key:` without
    /// `trustPolicies`) becomes one global policy with that key file.
    pub fn from_parameters(
        params: &CosignParameters,
        keys: &dyn KeyResolver,
        trust_root: Arc<SigstoreTrustRoot>,
    ) -> Result<Self, CosignError> {
        let legacy;
        let configs: &[CosignTrustPolicy] = match (&params.trust_policies, &params.key) {
            (Some(p), _) => p,
            (None, Some(key)) => {
                legacy = [CosignTrustPolicy {
                    name: Some("default".into()),
                    scopes: Some(vec!["*".into()]),
                    keys: Some(vec![verdict_crds::model::CosignKey {
                        file: Some(key.clone()),
                        ..Default::default()
                    }]),
                    // Legacy mode checks the log only when a Rekor URL is configured.
                    t_log_verify: Some(params.rekor_url.is_some()),
                    ..Default::default()
                }];
                &legacy
            }
            (None, None) => {
                return Err(CosignError::config(
                    "spec.parameters.trustPolicies is missing",
                    "add `trustPolicies:` with `- name: default`, `scopes: [\"*\"]` and `keys: [{provider: <KeyManagementProvider>}]`",
                ));
            }
        };
        if configs.is_empty() {
            return Err(CosignError::config(
                "spec.parameters.trustPolicies is empty",
                "add a trust policy with `name`, `scopes` and `keys` or `keyless`",
            ));
        }
        let mut policies = Vec::with_capacity(configs.len());
        let mut names = BTreeSet::new();
        for (i, c) in configs.iter().enumerate() {
            let policy = resolve_policy(i, c, keys, &trust_root)?;
            if !names.insert(policy.name.clone()) {
                return Err(CosignError::config(
                    format!("trust policy name `{}` is used twice", policy.name),
                    "give each trust policy its own name",
                ));
            }
            policies.push(policy);
        }
        validate_scopes(&policies)?;
        Ok(CosignVerifier {
            policies,
            trust_root,
        })
    }

    pub fn policies(&self) -> &[TrustPolicy] {
        &self.policies
    }

    pub fn trust_root(&self) -> &SigstoreTrustRoot {
        &self.trust_root
    }

    /// The policy for `reference` (as written by the caller) of repository `repository`: the
    /// first matching scoped policy, else the global one.
    pub fn policy_for(&self, reference: &str, repository: &str) -> Option<&TrustPolicy> {
        let mut global = None;
        for p in &self.policies {
            for s in &p.scopes {
                if s == "*" {
                    global = Some(p);
                } else if let Some(prefix) = s.strip_suffix('*') {
                    if reference.starts_with(prefix) {
                        return Some(p);
                    }
                } else if s == reference || s == repository {
                    return Some(p);
                }
            }
        }
        global
    }

    /// Canonical text of everything that can change a verdict (for the trust fingerprint).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for p in &self.policies {
            out.push_str(&format!(
                "policy {} scopes={} tlog={}\n",
                p.name,
                p.scopes.join(","),
                p.tlog_verify
            ));
            match &p.trust {
                Trust::Keys(keys) => {
                    for k in keys {
                        out.push_str(&format!(
                            "  key {} {}\n",
                            k.info.evidence_id(),
                            k.key.fingerprint()
                        ));
                    }
                }
                Trust::Keyless(r) => out.push_str(&format!(
                    "  keyless identity={} issuer={} ct={}\n",
                    r.identity.describe(),
                    r.issuer.describe(),
                    r.ct_log_verify
                )),
            }
        }
        out.push_str(&self.trust_root.canonical());
        out
    }
}

fn resolve_policy(
    index: usize,
    c: &CosignTrustPolicy,
    resolver: &dyn KeyResolver,
    trust_root: &SigstoreTrustRoot,
) -> Result<TrustPolicy, CosignError> {
    let at = format!("trustPolicies[{index}]");
    let name = c.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
        CosignError::config(format!("{at} has no name"), "add `name: <policy name>`")
    })?;
    if let Some(v) = c.version.as_deref()
        && v != "1.0.0"
    {
        return Err(CosignError::config(
            format!("trust policy `{name}`: version `{v}` is not supported"),
            "set `version: 1.0.0` or remove it",
        ));
    }
    let scopes = c.scopes.clone().unwrap_or_default();
    if scopes.is_empty() {
        return Err(CosignError::config(
            format!("trust policy `{name}` has no scopes"),
            "add `scopes:` with `- \"*\"` or `- \"myregistry.azurecr.io/*\"`",
        ));
    }
    let has_keys = c.keys.as_ref().is_some_and(|k| !k.is_empty());
    let trust = match (has_keys, &c.keyless) {
        (true, Some(_)) => {
            return Err(CosignError::config(
                format!("trust policy `{name}` sets both `keys` and `keyless`"),
                "split it into two policies",
            ));
        }
        (false, None) => {
            return Err(CosignError::config(
                format!("trust policy `{name}` needs `keys` or `keyless`"),
                "add `keys:` with `- provider: <KeyManagementProvider name>`",
            ));
        }
        (true, None) => Trust::Keys(resolve_keys(&name, c, resolver)?),
        (false, Some(k)) => {
            let matcher = |exact: &Option<String>, re: &Option<String>, what: &str| {
                match (
                    exact.as_deref().filter(|s| !s.is_empty()),
                    re.as_deref().filter(|s| !s.is_empty()),
                ) {
                    (Some(e), None) => Ok(Matcher::Exact(e.to_owned())),
                    (None, Some(r)) => Regex::new(r).map(Matcher::Pattern).map_err(|e| {
                        CosignError::config(
                            format!("trust policy `{name}`: `{what}RegExp` `{r}` is not a valid regular expression: {e}"),
                            "correct the expression",
                        )
                    }),
                    _ => Err(CosignError::config(
                        format!("trust policy `{name}`: keyless needs exactly one of `{what}` and `{what}RegExp`"),
                        format!("set `{what}`"),
                    )),
                }
            };
            let req = KeylessRequirements {
                identity: matcher(
                    &k.certificate_identity,
                    &k.certificate_identity_reg_exp,
                    "certificateIdentity",
                )?,
                issuer: matcher(
                    &k.certificate_oidc_issuer,
                    &k.certificate_oidc_issuer_reg_exp,
                    "certificateOIDCIssuer",
                )?,
                ct_log_verify: k.ct_log_verify.unwrap_or(true),
            };
            // Keyless trust rests entirely on configured Sigstore material: refuse to start
            // without it rather than deny every image later.
            let tlog_verify = c.t_log_verify.unwrap_or(true);
            let mut missing = Vec::new();
            if trust_root.certificate_authorities.is_empty() {
                missing.push("a Fulcio certificate authority");
            }
            if tlog_verify && trust_root.tlogs.is_empty() {
                missing.push("a Rekor public key (or `tLogVerify: false`)");
            }
            if req.ct_log_verify && trust_root.ctlogs.is_empty() {
                missing.push("a CT log public key (or `keyless.ctLogVerify: false`)");
            }
            if !tlog_verify && trust_root.timestamp_authorities.is_empty() {
                missing.push(
                    "a timestamp authority (with `tLogVerify: false`, RFC 3161 timestamps are the only proof of signing time)",
                );
            }
            if !missing.is_empty() {
                return Err(CosignError::config(
                    format!(
                        "trust policy `{name}` uses keyless verification, but the Sigstore trusted root lacks {}; Verdict never fetches Fulcio roots or log keys (Ratify does, through TUF) at verification time",
                        missing.join(", ")
                    ),
                    "configure a Sigstore trusted_root.json (e.g. from `cosign trusted-root create` or the Sigstore TUF repository) for Verdict",
                ));
            }
            Trust::Keyless(req)
        }
    };
    Ok(TrustPolicy {
        name,
        scopes,
        trust,
        tlog_verify: c.t_log_verify.unwrap_or(true),
    })
}

fn resolve_keys(
    policy: &str,
    c: &CosignTrustPolicy,
    resolver: &dyn KeyResolver,
) -> Result<Vec<TrustedKey>, CosignError> {
    let mut out: Vec<TrustedKey> = Vec::new();
    for (j, k) in c.keys.iter().flatten().enumerate() {
        let at = format!("trust policy `{policy}` keys[{j}]");
        let provider = k.provider.as_deref().filter(|s| !s.is_empty());
        let file = k.file.as_deref().filter(|s| !s.is_empty());
        let name = k.name.as_deref().filter(|s| !s.is_empty());
        let version = k.version.as_deref().filter(|s| !s.is_empty());
        let mut add = |info: KeyInformation, pem: &str| -> Result<(), CosignError> {
            let key = PublicKey::from_pem(pem).map_err(|e| {
                CosignError::config(
                    format!("{at}: key {} is not usable: {e}", info.evidence_id()),
                    "provide a PEM public key (`-----BEGIN PUBLIC KEY-----`): ECDSA P-256/384/521, RSA ≥ 2048 or Ed25519",
                )
            })?;
            if !out.iter().any(|t| t.info == info && t.key == key) {
                out.push(TrustedKey { info, key });
            }
            Ok(())
        };
        match (provider, file) {
            (Some(_), Some(_)) => {
                return Err(CosignError::config(
                    format!("{at} sets both `provider` and `file`"),
                    "keep one of them",
                ));
            }
            (None, None) => {
                return Err(CosignError::config(
                    format!("{at} needs `provider` (or `file`)"),
                    "set `provider:` to the name of a KeyManagementProvider",
                ));
            }
            (None, Some(path)) => {
                let pem = resolver.read_key_file(path).map_err(|e| {
                    CosignError::config(
                        format!("{at}: cannot read key file {path:?}: {e}"),
                        "mount the public key file at that path, or use a KeyManagementProvider",
                    )
                })?;
                add(
                    KeyInformation {
                        provider: FILE_PROVIDER.into(),
                        name: path.to_owned(),
                        version: String::new(),
                    },
                    &pem,
                )?;
            }
            (Some(p), None) => {
                if version.is_some() && name.is_none() {
                    return Err(CosignError::config(
                        format!("{at} sets `version` without `name`"),
                        "add `name:` (the key name in the provider), or remove `version`",
                    ));
                }
                let held = resolver.provider_keys(p).ok_or_else(|| {
                    CosignError::config(
                        format!("{at} names KeyManagementProvider `{p}`, which does not exist"),
                        format!("create KeyManagementProvider `{p}` or fix the name"),
                    )
                })?;
                let selected: Vec<&ProviderKey> = held
                    .iter()
                    .filter(|pk| name.is_none_or(|n| pk.name == n))
                    .filter(|pk| version.is_none_or(|v| pk.version == v))
                    .collect();
                if selected.is_empty() && !resolver.provider_is_fetched(p) {
                    let what = match (name, version) {
                        (None, _) => "no public keys".to_owned(),
                        (Some(n), None) => format!("no key named `{n}`"),
                        (Some(n), Some(v)) => format!("no key `{n}` with version `{v}`"),
                    };
                    return Err(CosignError::config(
                        format!("{at}: KeyManagementProvider `{p}` holds {what}"),
                        "add the public key to the provider (inline: `contentType: key`) or fix `name`/`version`",
                    ));
                }
                for pk in selected {
                    add(
                        KeyInformation {
                            provider: p.to_owned(),
                            name: pk.name.clone(),
                            version: pk.version.clone(),
                        },
                        &pk.pem,
                    )?;
                }
            }
        }
    }
    Ok(out)
}

/// Ratify's scope rules, re-checked here so a configuration built without the CRD validator
/// still fails closed.
fn validate_scopes(policies: &[TrustPolicy]) -> Result<(), CosignError> {
    let mut global: Option<&str> = None;
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for p in policies {
        for s in &p.scopes {
            if s == "*" {
                if p.scopes.len() > 1 {
                    return Err(CosignError::config(
                        format!(
                            "trust policy `{}` mixes the global scope `*` with other scopes",
                            p.name
                        ),
                        "move the other scopes to their own policy",
                    ));
                }
                if let Some(other) = global {
                    return Err(CosignError::config(
                        format!(
                            "the global scope `*` is used by trust policies `{other}` and `{}`",
                            p.name
                        ),
                        "keep `*` in one trust policy only",
                    ));
                }
                global = Some(&p.name);
                continue;
            }
            if s.is_empty() || !SCOPE.is_match(s) {
                return Err(CosignError::config(
                    format!(
                        "scope `{s}` of trust policy `{}` is not valid: use lowercase registry/repository characters, with `*` only at the end",
                        p.name
                    ),
                    "write e.g. `myregistry.azurecr.io/app` or `myregistry.azurecr.io/*`",
                ));
            }
            for (other, other_policy) in &seen {
                if scopes_overlap(s, other) {
                    return Err(CosignError::config(
                        format!(
                            "scope `{s}` of trust policy `{}` overlaps scope `{other}` of trust policy `{other_policy}`",
                            p.name
                        ),
                        "make the scopes disjoint: each image reference may match one trust policy only",
                    ));
                }
            }
            seen.push((s, &p.name));
        }
    }
    Ok(())
}

fn scopes_overlap(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (Some(pa), Some(pb)) => pa.starts_with(pb) || pb.starts_with(pa),
        (Some(pa), None) => b.starts_with(pa),
        (None, Some(pb)) => a.starts_with(pb),
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu
OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==
-----END PUBLIC KEY-----";

    struct Kmps(BTreeMap<&'static str, Vec<ProviderKey>>);

    impl KeyResolver for Kmps {
        fn provider_keys(&self, provider: &str) -> Option<Vec<ProviderKey>> {
            self.0.get(provider).cloned()
        }
        fn read_key_file(&self, path: &str) -> Result<String, String> {
            if path == "/k.pub" {
                Ok(P256.into())
            } else {
                Err("No such file or directory".into())
            }
        }
    }

    fn kmps() -> Kmps {
        let key = |name: &str, version: &str| ProviderKey {
            name: name.into(),
            version: version.into(),
            pem: P256.into(),
        };
        Kmps(BTreeMap::from([
            ("inline", vec![key("", "")]),
            (
                "akv",
                vec![key("k", "v1"), key("k", "v2"), key("other", "v1")],
            ),
            ("certs-only", vec![]),
        ]))
    }

    fn params(yaml_json: serde_json::Value) -> CosignParameters {
        serde_json::from_value(yaml_json).unwrap()
    }

    fn build(v: serde_json::Value) -> Result<CosignVerifier, CosignError> {
        CosignVerifier::from_parameters(&params(v), &kmps(), Arc::new(SigstoreTrustRoot::new()))
    }

    #[test]
    fn scope_lookup_first_match_then_global() {
        let v = build(serde_json::json!({"trustPolicies": [
            {"name": "one", "scopes": ["reg1.io/*"], "keys": [{"provider": "inline"}]},
            {"name": "exact", "scopes": ["reg2.io/app"], "keys": [{"provider": "inline"}]},
            {"name": "global", "scopes": ["*"], "keys": [{"file": "/k.pub"}]},
        ]}))
        .unwrap();
        let name = |r: &str, repo: &str| v.policy_for(r, repo).map(|p| p.name.as_str());
        assert_eq!(name("reg1.io/x/y:v1", "reg1.io/x/y"), Some("one"));
        assert_eq!(name("reg2.io/app:v1", "reg2.io/app"), Some("exact"));
        assert_eq!(name("reg2.io/app", "reg2.io/app"), Some("exact"));
        assert_eq!(name("reg2.io/apps:v1", "reg2.io/apps"), Some("global"));
        let no_global = build(serde_json::json!({"trustPolicies": [
            {"name": "one", "scopes": ["reg1.io/*"], "keys": [{"provider": "inline"}]},
        ]}))
        .unwrap();
        assert!(no_global.policy_for("reg2.io/a:v1", "reg2.io/a").is_none());
    }

    #[test]
    fn overlapping_scopes_name_both() {
        let e = build(serde_json::json!({"trustPolicies": [
            {"name": "a", "scopes": ["reg.io/team/*"], "keys": [{"provider": "inline"}]},
            {"name": "b", "scopes": ["reg.io/team/app"], "keys": [{"provider": "inline"}]},
        ]}))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`reg.io/team/app`") && e.contains("`reg.io/team/*`") && e.contains("`a`"),
            "{e}"
        );
        let e = build(serde_json::json!({"trustPolicies": [
            {"name": "a", "scopes": ["*"], "keys": [{"provider": "inline"}]},
            {"name": "b", "scopes": ["*"], "keys": [{"provider": "inline"}]},
        ]}))
        .unwrap_err()
        .to_string();
        assert!(e.contains("global scope"), "{e}");
        let e = build(serde_json::json!({"trustPolicies": [
            {"name": "a", "scopes": ["Reg.io/*x"], "keys": [{"provider": "inline"}]},
        ]}))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not valid"), "{e}");
    }

    #[test]
    fn keys_resolve_by_name_and_version() {
        let v = build(serde_json::json!({"trustPolicies": [
            {"name": "p", "scopes": ["*"], "keys": [{"provider": "akv", "name": "k", "version": "v2"}, {"provider": "inline"}]},
        ]}))
        .unwrap();
        let Trust::Keys(keys) = &v.policies()[0].trust else {
            panic!()
        };
        let ids: Vec<String> = keys.iter().map(|k| k.info.evidence_id()).collect();
        assert_eq!(ids, ["kmp:akv/k@v2", "kmp:inline"]);

        let all = build(serde_json::json!({"trustPolicies": [
            {"name": "p", "scopes": ["*"], "keys": [{"provider": "akv", "name": "k"}]},
        ]}))
        .unwrap();
        let Trust::Keys(keys) = &all.policies()[0].trust else {
            panic!()
        };
        assert_eq!(keys.len(), 2, "every version of key k");

        for (keys, want) in [
            (
                serde_json::json!([{"provider": "akv", "name": "k", "version": "v9"}]),
                "no key `k` with version `v9`",
            ),
            (
                serde_json::json!([{"provider": "missing"}]),
                "does not exist",
            ),
            (
                serde_json::json!([{"provider": "certs-only"}]),
                "holds no public keys",
            ),
            (
                serde_json::json!([{"file": "/nope.pub"}]),
                "cannot read key file",
            ),
            (
                serde_json::json!([{"provider": "inline", "file": "/k.pub"}]),
                "both `provider` and `file`",
            ),
        ] {
            let e = build(serde_json::json!({"trustPolicies": [{"name": "p", "scopes": ["*"], "keys": keys}]}))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn keyless_without_trust_material_is_rejected_at_load() {
        let e = build(serde_json::json!({"trustPolicies": [
            {"name": "k", "scopes": ["*"], "keyless": {"certificateIdentity": "me@example.com", "certificateOIDCIssuer": "https://accounts.google.com"}},
        ]}))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Fulcio certificate authority") && e.contains("Rekor public key"),
            "{e}"
        );
    }

    #[test]
    fn legacy_key_parameter_is_one_global_policy() {
        let v = build(serde_json::json!({"key": "/k.pub"})).unwrap();
        assert_eq!(v.policies().len(), 1);
        assert!(!v.policies()[0].tlog_verify);
        assert_eq!(
            v.policy_for("any.io/x:1", "any.io/x").unwrap().name,
            "default"
        );
    }
}
