//! The Notary Project OCI trust policy document v1.0 (notation's `trustpolicy.json`, Ratify's
//! `trustPolicyDoc`): its vocabulary, every rule of the specification, selection of the applicable
//! statement for an artifact and the per-validation enforcement it implies.
//!
//! The one place these rules live: [`TrustPolicy::from_document`] turns the typed document into
//! a checked one (what verification uses, stopping at the first broken rule with notation's
//! wording), and `verdict config check` reports each broken rule at its field with the same
//! field-level functions ([`parse_trust_store_ref`], [`parse_override`], [`parse_identity`],
//! [`check_scope`]).
//!
//! Over 600 lines because the vocabulary, the field rules and the document rules of one
//! specification belong together: split, a rule could be changed on one side only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dn;
use crate::model::{NotationTrustPolicy, TrustPolicyDocument, TrustStoreType};

/// A trust policy that breaks a rule of the specification, with notation's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl PolicyError {
    /// Configuration problems do not pass by themselves.
    pub fn is_transient(&self) -> bool {
        false
    }
}

fn err(reason: impl Into<String>) -> PolicyError {
    PolicyError(reason.into())
}

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

    pub fn parse(s: &str) -> Option<Self> {
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
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Action::Enforce),
            "log" => Some(Action::Log),
            "skip" => Some(Action::Skip),
            _ => None,
        }
    }

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

    pub fn parse(s: &str) -> Option<Self> {
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

impl VerifyTimestamp {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(VerifyTimestamp::Always),
            "afterCertExpiry" => Some(VerifyTimestamp::AfterCertExpiry),
            _ => None,
        }
    }
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

    pub fn stores_of_type(&self, ty: TrustStoreType) -> impl Iterator<Item = &TrustStoreRef> {
        self.trust_stores.iter().filter(move |s| s.store_type == ty)
    }
}

/// A validated trust policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicy {
    pub version: String,
    pub statements: Vec<TrustPolicyStatement>,
}

const SPEC_HINT: &str = "see the Notary Project trust policy specification v1.0";

/// True for names matching `[a-zA-Z0-9_.-]+` (notation's named-store rule).
pub fn is_valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A `trustStores` entry, `<type>:<name>`. The error reads after its subject, as notation
/// writes it ("trust policy statement \"x\" uses an unsupported trust store name ...").
pub fn parse_trust_store_ref(raw: &str) -> Result<TrustStoreRef, String> {
    let (ty, name) = raw.split_once(':').ok_or_else(|| {
        format!("has malformed trust store value {raw:?}. The required format is <TrustStoreType>:<TrustStoreName>")
    })?;
    let store_type = TrustStoreType::parse(ty).ok_or_else(|| {
        format!("uses an unsupported trust store type {ty:?} in trust store value {raw:?} (ca, signingAuthority or tsa)")
    })?;
    if !is_valid_store_name(name) {
        return Err(format!(
            "uses an unsupported trust store name {name:?} in trust store value {raw:?}. Named store name needs to follow [a-zA-Z0-9_.-]+ format"
        ));
    }
    Ok(TrustStoreRef {
        store_type,
        name: name.to_owned(),
    })
}

/// One `signatureVerification.override` entry: which validations may be overridden, and how.
pub fn parse_override(validation: &str, action: &str) -> Result<(Validation, Action), String> {
    let v = Validation::parse(validation).ok_or_else(|| {
        format!("verification type {validation:?} in custom signature verification is not supported, supported values are authenticity, authenticTimestamp, expiry, revocation")
    })?;
    let a = Action::parse(action).ok_or_else(|| {
        format!("verification action {action:?} in custom signature verification is not supported, supported values are \"enforce\", \"log\", \"skip\"")
    })?;
    if v == Validation::Integrity {
        return Err(
            "\"integrity\" verification can not be overridden in custom signature verification"
                .into(),
        );
    }
    if v != Validation::Revocation && a == Action::Skip {
        return Err(format!(
            "{validation:?} verification can not be skipped in custom signature verification (only revocation can)"
        ));
    }
    Ok((v, a))
}

/// One `trustedIdentities` entry: `*`, or `x509.subject:` and an RFC 4514 name with C, ST and O.
pub fn parse_identity(identity: &str) -> Result<TrustedIdentity, String> {
    if identity.is_empty() {
        return Err("an empty trusted identity".into());
    }
    if identity == "*" {
        return Ok(TrustedIdentity::Any);
    }
    let (prefix, value) = identity
        .split_once(':')
        .ok_or_else(|| format!("trusted identity {identity:?} missing separator"))?;
    if prefix != "x509.subject" {
        return Err(format!(
            "trusted identity {identity:?} with unsupported prefix {prefix:?}; only \"x509.subject\" is supported"
        ));
    }
    if value.trim().is_empty() {
        return Err(format!(
            "trusted identity {identity:?} without an identity value"
        ));
    }
    let attributes = dn::parse_trusted_identity_dn(value)?;
    Ok(TrustedIdentity::X509Subject {
        raw: identity.to_owned(),
        attributes,
    })
}

impl TrustPolicy {
    /// Parses raw JSON bytes (`trustpolicy.json` / `trustpolicy.oci.json`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PolicyError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not valid JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// Parses and checks a trust policy document given as JSON. Fields the specification does
    /// not define are refused (a misspelt `overide` must not silently drop an override).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, PolicyError> {
        if !value.is_object() {
            return Err(err("the document must be a JSON object"));
        }
        let mut unknown = Vec::new();
        let doc: TrustPolicyDocument = serde_ignored::deserialize(value, |path| {
            unknown.push(path.to_string());
        })
        .map_err(|e| err(format!("not a trust policy document: {e}")))?;
        if let Some(path) = unknown.first() {
            let field = path.rsplit('.').next().unwrap_or(path);
            return Err(err(format!(
                "unknown field {field:?} at {path} (the document has version, trustPolicies; a statement name, registryScopes, signatureVerification, trustStores, trustedIdentities)"
            )));
        }
        Self::from_document(&doc)
    }

    /// Checks a typed document against every rule of the specification.
    pub fn from_document(doc: &TrustPolicyDocument) -> Result<Self, PolicyError> {
        let version = match doc.version.as_deref() {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                return Err(err(
                    "trust policy document is missing or has empty version, it must be specified (\"1.0\")",
                ));
            }
        };
        if version != "1.0" {
            return Err(err(format!(
                "trust policy document uses unsupported version {version:?}, the supported version is \"1.0\""
            )));
        }
        let items = doc.trust_policies.as_deref().unwrap_or_default();
        if items.is_empty() {
            return Err(err(
                "trust policy document can not have zero trust policy statements",
            ));
        }
        let statements = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_statement(i, item))
            .collect::<Result<Vec<_>, _>>()?;
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

fn parse_statement(
    index: usize,
    item: &NotationTrustPolicy,
) -> Result<TrustPolicyStatement, PolicyError> {
    let name = match item.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            return Err(err(format!(
                "trustPolicies[{index}]: a trust policy statement is missing a name, every statement requires a name"
            )));
        }
    };
    let ctx = format!("trust policy statement {name:?}");
    let invalid_sv =
        |reason: String| err(format!("{ctx} has invalid signatureVerification: {reason}"));
    let sv = item
        .signature_verification
        .as_ref()
        .ok_or_else(|| invalid_sv("signature verification level is empty or missing".into()))?;
    let level = match sv.level.as_deref() {
        Some(s) if !s.is_empty() => Level::parse(s).ok_or_else(|| {
            invalid_sv(format!(
                "invalid signature verification level {s:?} (strict, permissive, audit or skip)"
            ))
        })?,
        _ => {
            return Err(invalid_sv(
                "signature verification level is empty or missing".into(),
            ));
        }
    };
    let mut overrides = BTreeMap::new();
    if let Some(o) = sv.override_.as_ref().filter(|o| !o.is_empty()) {
        if level == Level::Skip {
            return Err(invalid_sv(
                "signature verification level \"skip\" can't be used to customize signature verification".into(),
            ));
        }
        for (k, v) in o {
            let (validation, action) = parse_override(k, v).map_err(&invalid_sv)?;
            overrides.insert(validation, action);
        }
    }
    let verify_timestamp = match sv.verify_timestamp.as_deref() {
        None => None,
        Some(s) => Some(VerifyTimestamp::parse(s).ok_or_else(|| {
            invalid_sv(format!(
                "verifyTimestamp {s:?} is not supported, use \"always\" or \"afterCertExpiry\""
            ))
        })?),
    };

    let registry_scopes = item.registry_scopes.clone().unwrap_or_default();
    let raw_stores = item.trust_stores.as_deref().unwrap_or_default();
    let raw_identities = item.trusted_identities.as_deref().unwrap_or_default();

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
        for raw in raw_stores {
            let r = parse_trust_store_ref(raw).map_err(|e| err(format!("{ctx} {e}")))?;
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
        trusted_identities = parse_identities(&ctx, raw_identities)?;
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

fn parse_identities(ctx: &str, raw: &[String]) -> Result<Vec<TrustedIdentity>, PolicyError> {
    if raw.len() > 1 && raw.iter().any(|i| i == "*") {
        return Err(err(format!(
            "{ctx} uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"
        )));
    }
    let out = raw
        .iter()
        .map(|identity| parse_identity(identity).map_err(|e| err(format!("{ctx} has {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
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
            if dn::is_subset_dn(map_a, map_b) || dn::is_subset_dn(map_b, map_a) {
                return Err(err(format!(
                    "{ctx} has overlapping x509 trustedIdentities, {raw_a:?} overlaps with {raw_b:?}"
                )));
            }
        }
    }
    Ok(out)
}

fn validate_registry_scopes(statements: &[TrustPolicyStatement]) -> Result<(), PolicyError> {
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
                check_scope(scope).map_err(err)?;
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
    check_scope(path)?;
    Ok(path)
}

/// A registry scope other than `*`: `domain[:port]/repository` per the distribution reference
/// grammar (the rule `verdict config check` and verification share). Registry scope syntax: `domain[:port]/repository` per the distribution reference grammar.
pub fn check_scope(scope: &str) -> Result<(), String> {
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
        assert!(check_scope("localhost:5000/test-repo").is_ok());
        assert!(check_scope("registry.acme-rockets.io/software/net-monitor").is_ok());
        assert!(check_scope("a.io/x__y/z.w").is_ok());
        assert!(check_scope("localhost:5000\\test-repo").is_err());
        assert!(check_scope("localhost:5000/Test").is_err());
        assert!(check_scope("localhost/a/").is_err());
        assert!(check_scope("localhost/a___b").is_err());
        assert!(check_scope("-x.io/a").is_err());
        assert!(check_scope("x.io:/a").is_err());
        assert!(check_scope("x.io/a*").is_err());
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
