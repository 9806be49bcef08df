//! The Notary Project OCI trust policy document v1.0 (notation's `trustpolicy.json`): parsing with
//! precise errors, validation of every rule of the specification, selection of the applicable
//! statement for an artifact and the per-validation enforcement it implies.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::NotationError;
use super::names;
use super::truststore::{TrustStoreType, is_valid_store_name};

/// The validations of the verification workflow, named as in trust policy `override` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Validation {
    Integrity,
    Authenticity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
}

impl Validation {
    pub const ALL: [Validation; 5] = [
        Validation::Integrity,
        Validation::Authenticity,
        Validation::AuthenticTimestamp,
        Validation::Expiry,
        Validation::Revocation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Validation::Integrity => "integrity",
            Validation::Authenticity => "authenticity",
            Validation::AuthenticTimestamp => "authenticTimestamp",
            Validation::Expiry => "expiry",
            Validation::Revocation => "revocation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failure of a validation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// A failure fails the verification.
    Enforce,
    /// A failure is reported and verification continues.
    Log,
    /// The validation is not performed.
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "enforce",
            Action::Log => "log",
            Action::Skip => "skip",
        }
    }
}

/// The predefined verification levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Permissive => "permissive",
            Level::Audit => "audit",
            Level::Skip => "skip",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "strict" => Some(Level::Strict),
            "permissive" => Some(Level::Permissive),
            "audit" => Some(Level::Audit),
            "skip" => Some(Level::Skip),
            _ => None,
        }
    }

    /// The action of `validation` at this level (specification table).
    pub fn action(self, validation: Validation) -> Action {
        use Validation::*;
        match (self, validation) {
            (Level::Skip, _) => Action::Skip,
            (_, Integrity) => Action::Enforce,
            (Level::Strict, _) => Action::Enforce,
            (Level::Permissive, Authenticity) => Action::Enforce,
            (Level::Permissive, _) => Action::Log,
            (Level::Audit, _) => Action::Log,
        }
    }
}

/// When an RFC 3161 timestamp is required (given a `tsa` trust store in the statement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VerifyTimestamp {
    Always,
    AfterCertExpiry,
}

/// A `trustStores` entry, `<type>:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrustStoreRef {
    pub store_type: TrustStoreType,
    pub name: String,
}

impl std::fmt::Display for TrustStoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.store_type, self.name)
    }
}

/// A `trustedIdentities` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustedIdentity {
    /// `*`: any signer chaining to the trust stores.
    Any,
    /// `x509.subject: ...`: the listed RDNs must all equal the signing certificate's.
    X509Subject {
        raw: String,
        attributes: BTreeMap<String, String>,
    },
}

/// One trust policy statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicyStatement {
    pub name: String,
    /// Fully qualified repositories, or exactly `["*"]`.
    pub registry_scopes: Vec<String>,
    pub level: Level,
    pub overrides: BTreeMap<Validation, Action>,
    /// `None` when the statement does not set it (behaves as `always`).
    pub verify_timestamp: Option<VerifyTimestamp>,
    pub trust_stores: Vec<TrustStoreRef>,
    pub trusted_identities: Vec<TrustedIdentity>,
}

impl TrustPolicyStatement {
    /// The action for a validation after applying `override`.
    pub fn action(&self, validation: Validation) -> Action {
        self.overrides
            .get(&validation)
            .copied()
            .unwrap_or_else(|| self.level.action(validation))
    }

    pub fn is_global(&self) -> bool {
        self.registry_scopes.iter().any(|s| s == "*")
    }

    /// "strict", "permissive", ... or e.g. "strict (custom)" when overridden.
    pub fn level_description(&self) -> String {
        if self.overrides.is_empty() {
            self.level.as_str().to_string()
        } else {
            format!("{} (custom)", self.level.as_str())
        }
    }

    /// The `verifyTimestamp` setting with its default.
    pub fn verify_timestamp(&self) -> VerifyTimestamp {
        self.verify_timestamp.unwrap_or(VerifyTimestamp::Always)
    }

    pub(crate) fn stores_of_type(
        &self,
        ty: TrustStoreType,
    ) -> impl Iterator<Item = &TrustStoreRef> {
        self.trust_stores.iter().filter(move |s| s.store_type == ty)
    }
}

/// A validated trust policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicyDocument {
    pub version: String,
    pub statements: Vec<TrustPolicyStatement>,
}

const SPEC_HINT: &str = "see the Notary Project trust policy specification v1.0";

fn err(reason: impl Into<String>) -> NotationError {
    NotationError::policy(reason)
}

fn string_array(
    obj: &Map<String, Value>,
    key: &str,
    ctx: &str,
) -> Result<Option<Vec<String>>, NotationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    err(format!("{ctx}: \"{key}[{i}]\" must be a string, found {v}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(err(format!(
            "{ctx}: \"{key}\" must be an array of strings, found {other}"
        ))),
    }
}

fn reject_unknown(
    obj: &Map<String, Value>,
    allowed: &[&str],
    ctx: &str,
) -> Result<(), NotationError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(err(format!(
                "{ctx}: unknown field \"{key}\" (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

impl TrustPolicyDocument {
    /// Parses raw JSON bytes (`trustpolicy.json` / `trustpolicy.oci.json`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, NotationError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not valid JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// Parses and validates a trust policy document given as JSON.
    pub fn from_json(value: &Value) -> Result<Self, NotationError> {
        let obj = value
            .as_object()
            .ok_or_else(|| err("the document must be a JSON object"))?;
        reject_unknown(obj, &["version", "trustPolicies"], "document")?;
        let version = match obj.get("version") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                return Err(err(
                    "trust policy document is missing or has empty version, it must be specified (\"1.0\")",
                ));
            }
            Some(other) => return Err(err(format!("\"version\" must be a string, found {other}"))),
        };
        if version != "1.0" {
            return Err(err(format!(
                "trust policy document uses unsupported version {version:?}, the supported version is \"1.0\""
            )));
        }
        let items = match obj.get("trustPolicies") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => {
                return Err(err(
                    "trust policy document can not have zero trust policy statements",
                ));
            }
            Some(other) => {
                return Err(err(format!(
                    "\"trustPolicies\" must be an array, found {other}"
                )));
            }
        };
        if items.is_empty() {
            return Err(err(
                "trust policy document can not have zero trust policy statements",
            ));
        }
        let mut statements = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            statements.push(parse_statement(i, item)?);
        }
        validate_registry_scopes(&statements)?;
        let mut names = BTreeSet::new();
        for s in &statements {
            if !names.insert(s.name.as_str()) {
                return Err(err(format!(
                    "multiple trust policy statements use the same name {:?}, statement names must be unique",
                    s.name
                )));
            }
        }
        Ok(Self {
            version,
            statements,
        })
    }

    /// The statement that applies to `artifact_reference` (`registry/repository@digest`): the one
    /// whose scopes contain the repository exactly, else the global (`*`) one.
    pub fn applicable_policy(
        &self,
        artifact_reference: &str,
    ) -> Result<&TrustPolicyStatement, String> {
        let path = artifact_path(artifact_reference)?;
        let mut global = None;
        for s in &self.statements {
            if s.is_global() {
                global = Some(s);
            } else if s.registry_scopes.iter().any(|scope| scope == path) {
                return Ok(s);
            }
        }
        global.ok_or_else(|| {
            format!(
                "artifact {artifact_reference:?} has no applicable trust policy statement: no statement has registry scope {path:?} and there is no global (\"*\") statement"
            )
        })
    }
}

fn parse_statement(index: usize, item: &Value) -> Result<TrustPolicyStatement, NotationError> {
    let ctx0 = format!("trustPolicies[{index}]");
    let obj = item
        .as_object()
        .ok_or_else(|| err(format!("{ctx0} must be a JSON object")))?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(err(format!(
                "{ctx0}: a trust policy statement is missing a name, every statement requires a name"
            )));
        }
        Some(other) => {
            return Err(err(format!(
                "{ctx0}: \"name\" must be a string, found {other}"
            )));
        }
    };
    let ctx = format!("trust policy statement {name:?}");
    reject_unknown(
        obj,
        &[
            "name",
            "registryScopes",
            "signatureVerification",
            "trustStores",
            "trustedIdentities",
        ],
        &ctx,
    )?;

    let sv = match obj.get("signatureVerification") {
        Some(Value::Object(o)) => o,
        None | Some(Value::Null) => {
            return Err(err(format!(
                "{ctx} has invalid signatureVerification: signature verification level is empty or missing"
            )));
        }
        Some(other) => {
            return Err(err(format!(
                "{ctx}: \"signatureVerification\" must be an object, found {other}"
            )));
        }
    };
    reject_unknown(
        sv,
        &["level", "override", "verifyTimestamp"],
        &format!("{ctx} signatureVerification"),
    )?;
    let level = match sv.get("level") {
        Some(Value::String(s)) if !s.is_empty() => Level::parse(s).ok_or_else(|| {
            err(format!(
                "{ctx} has invalid signatureVerification: invalid signature verification level {s:?} (strict, permissive, audit or skip)"
            ))
        })?,
        _ => {
            return Err(err(format!(
                "{ctx} has invalid signatureVerification: signature verification level is empty or missing"
            )));
        }
    };
    let mut overrides = BTreeMap::new();
    match sv.get("override") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) if o.is_empty() => {}
        Some(Value::Object(o)) => {
            if level == Level::Skip {
                return Err(err(format!(
                    "{ctx} has invalid signatureVerification: signature verification level \"skip\" can't be used to customize signature verification"
                )));
            }
            for (k, v) in o {
                let validation = Validation::parse(k).ok_or_else(|| {
                    err(format!(
                        "{ctx} has invalid signatureVerification: verification type {k:?} in custom signature verification is not supported, supported values are authenticity, authenticTimestamp, expiry, revocation"
                    ))
                })?;
                let action = match v.as_str() {
                    Some("enforce") => Action::Enforce,
                    Some("log") => Action::Log,
                    Some("skip") => Action::Skip,
                    _ => {
                        return Err(err(format!(
                            "{ctx} has invalid signatureVerification: verification action {v} in custom signature verification is not supported, supported values are \"enforce\", \"log\", \"skip\""
                        )));
                    }
                };
                if validation == Validation::Integrity {
                    return Err(err(format!(
                        "{ctx} has invalid signatureVerification: \"integrity\" verification can not be overridden in custom signature verification"
                    )));
                }
                if validation != Validation::Revocation && action == Action::Skip {
                    return Err(err(format!(
                        "{ctx} has invalid signatureVerification: {k:?} verification can not be skipped in custom signature verification (only revocation can)"
                    )));
                }
                overrides.insert(validation, action);
            }
        }
        Some(other) => {
            return Err(err(format!(
                "{ctx}: \"signatureVerification.override\" must be an object, found {other}"
            )));
        }
    }
    let verify_timestamp = match sv.get("verifyTimestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "always" => Some(VerifyTimestamp::Always),
        Some(Value::String(s)) if s == "afterCertExpiry" => Some(VerifyTimestamp::AfterCertExpiry),
        Some(other) => {
            return Err(err(format!(
                "{ctx} has invalid signatureVerification: verifyTimestamp {other} is not supported, use \"always\" or \"afterCertExpiry\""
            )));
        }
    };

    let registry_scopes = string_array(obj, "registryScopes", &ctx)?.unwrap_or_default();
    let raw_stores = string_array(obj, "trustStores", &ctx)?.unwrap_or_default();
    let raw_identities = string_array(obj, "trustedIdentities", &ctx)?.unwrap_or_default();

    let mut trust_stores = Vec::new();
    let mut trusted_identities = Vec::new();
    if level == Level::Skip {
        if !raw_stores.is_empty() || !raw_identities.is_empty() {
            return Err(err(format!(
                "{ctx} is set to skip signature verification but configured with trust stores and/or trusted identities, remove them if signature verification needs to be skipped"
            )));
        }
        if registry_scopes.iter().any(|s| s == "*") {
            return Err(err(format!(
                "{ctx} uses level \"skip\" with the global registry scope \"*\"; skip cannot be used with the global scope, list the fully qualified repositories to skip ({SPEC_HINT})"
            )));
        }
    } else {
        if raw_stores.is_empty() || raw_identities.is_empty() {
            return Err(err(format!(
                "{ctx} is either missing trust stores or trusted identities, both must be specified"
            )));
        }
        let mut seen = BTreeSet::new();
        for raw in &raw_stores {
            let (ty, store_name) = raw.split_once(':').ok_or_else(|| {
                err(format!(
                    "{ctx} has malformed trust store value {raw:?}. The required format is <TrustStoreType>:<TrustStoreName>"
                ))
            })?;
            let store_type = TrustStoreType::parse(ty).ok_or_else(|| {
                err(format!(
                    "{ctx} uses an unsupported trust store type {ty:?} in trust store value {raw:?} (ca, signingAuthority or tsa)"
                ))
            })?;
            if !is_valid_store_name(store_name) {
                return Err(err(format!(
                    "{ctx} uses an unsupported trust store name {store_name:?} in trust store value {raw:?}. Named store name needs to follow [a-zA-Z0-9_.-]+ format"
                )));
            }
            let r = TrustStoreRef {
                store_type,
                name: store_name.to_string(),
            };
            if seen.insert(r.clone()) {
                trust_stores.push(r);
            }
        }
        if trust_stores
            .iter()
            .all(|s| s.store_type == TrustStoreType::Tsa)
        {
            return Err(err(format!(
                "{ctx} only lists tsa trust stores; a ca or signingAuthority trust store is required to verify signers"
            )));
        }
        trusted_identities = parse_identities(&ctx, &raw_identities)?;
    }

    Ok(TrustPolicyStatement {
        name,
        registry_scopes,
        level,
        overrides,
        verify_timestamp,
        trust_stores,
        trusted_identities,
    })
}

fn parse_identities(ctx: &str, raw: &[String]) -> Result<Vec<TrustedIdentity>, NotationError> {
    if raw.len() > 1 && raw.iter().any(|i| i == "*") {
        return Err(err(format!(
            "{ctx} uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"
        )));
    }
    let mut out = Vec::new();
    for identity in raw {
        if identity.is_empty() {
            return Err(err(format!("{ctx} has an empty trusted identity")));
        }
        if identity == "*" {
            out.push(TrustedIdentity::Any);
            continue;
        }
        let (prefix, value) = identity.split_once(':').ok_or_else(|| {
            err(format!(
                "{ctx} has trusted identity {identity:?} missing separator"
            ))
        })?;
        if prefix != "x509.subject" {
            return Err(err(format!(
                "{ctx} has trusted identity {identity:?} with unsupported prefix {prefix:?}; only \"x509.subject\" is supported"
            )));
        }
        if value.trim().is_empty() {
            return Err(err(format!(
                "{ctx} has trusted identity {identity:?} without an identity value"
            )));
        }
        let attributes =
            names::parse_trusted_identity_dn(value).map_err(|e| err(format!("{ctx}: {e}")))?;
        out.push(TrustedIdentity::X509Subject {
            raw: identity.clone(),
            attributes,
        });
    }
    // Overlapping identities (one a subset of another) make the policy ambiguous.
    let subjects: Vec<(&String, &BTreeMap<String, String>)> = out
        .iter()
        .filter_map(|i| match i {
            TrustedIdentity::X509Subject { raw, attributes } => Some((raw, attributes)),
            TrustedIdentity::Any => None,
        })
        .collect();
    for (a, (raw_a, map_a)) in subjects.iter().enumerate() {
        for (raw_b, map_b) in subjects.iter().skip(a + 1) {
            if names::is_subset_dn(map_a, map_b) || names::is_subset_dn(map_b, map_a) {
                return Err(err(format!(
                    "{ctx} has overlapping x509 trustedIdentities, {raw_a:?} overlaps with {raw_b:?}"
                )));
            }
        }
    }
    Ok(out)
}

fn validate_registry_scopes(statements: &[TrustPolicyStatement]) -> Result<(), NotationError> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for s in statements {
        let ctx = format!("trust policy statement {:?}", s.name);
        if s.registry_scopes.is_empty() {
            return Err(err(format!(
                "{ctx} has zero registry scopes, it must specify registry scopes with at least one value"
            )));
        }
        if s.registry_scopes.len() > 1 && s.is_global() {
            return Err(err(format!(
                "{ctx} uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values"
            )));
        }
        for scope in &s.registry_scopes {
            if scope != "*" {
                validate_scope_format(scope).map_err(err)?;
            }
            if owner.insert(scope.as_str(), s.name.as_str()).is_some() {
                return Err(err(format!(
                    "registry scope {scope:?} is present in multiple trust policy statements, one registry scope value can only be associated with one statement"
                )));
            }
        }
    }
    Ok(())
}

/// `registry/repository@digest` → `registry/repository`, validated like a scope.
fn artifact_path(reference: &str) -> Result<&str, String> {
    let (path, digest) = reference.rsplit_once('@').ok_or_else(|| {
        format!(
            "artifact reference {reference:?} must be digest-qualified, e.g. registry.example.com/repo@sha256:<hex>"
        )
    })?;
    if digest.is_empty() {
        return Err(format!(
            "artifact reference {reference:?} has an empty digest"
        ));
    }
    validate_scope_format(path)?;
    Ok(path)
}

/// Registry scope syntax: `domain[:port]/repository` per the distribution reference grammar.
fn validate_scope_format(scope: &str) -> Result<(), String> {
    let msg = || {
        format!(
            "registry scope {scope:?} is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag, e.g. domain.com/my/repository"
        )
    };
    if scope.contains('*') {
        return Err(format!(
            "registry scope {scope:?} with wild card(s) is not valid, use \"*\" alone for the global scope"
        ));
    }
    let (domain, repository) = scope.split_once('/').ok_or_else(msg)?;
    if !valid_domain(domain) || !valid_repository(repository) {
        return Err(msg());
    }
    Ok(())
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty() && r.split('/').all(valid_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_syntax() {
        assert!(validate_scope_format("localhost:5000/test-repo").is_ok());
        assert!(validate_scope_format("registry.acme-rockets.io/software/net-monitor").is_ok());
        assert!(validate_scope_format("a.io/x__y/z.w").is_ok());
        assert!(validate_scope_format("localhost:5000\\test-repo").is_err());
        assert!(validate_scope_format("localhost:5000/Test").is_err());
        assert!(validate_scope_format("localhost/a/").is_err());
        assert!(validate_scope_format("localhost/a___b").is_err());
        assert!(validate_scope_format("-x.io/a").is_err());
        assert!(validate_scope_format("x.io:/a").is_err());
        assert!(validate_scope_format("x.io/a*").is_err());
    }

    #[test]
    fn levels_and_overrides() {
        assert_eq!(Level::Permissive.action(Validation::Expiry), Action::Log);
        assert_eq!(
            Level::Permissive.action(Validation::Authenticity),
            Action::Enforce
        );
        assert_eq!(Level::Audit.action(Validation::Integrity), Action::Enforce);
        assert_eq!(Level::Audit.action(Validation::Authenticity), Action::Log);
    }
}
