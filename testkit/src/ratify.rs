//! Ratify v1 custom resources as a user writes them (block YAML), for tests that configure
//! Verdict: an `inline` KeyManagementProvider and the Notation `Verifier` of Ratify's docs and
//! the seed (correctly indented). Tests about malformed YAML keep their literal text instead.

use serde_json::Value;

/// `apiVersion` of Ratify v1's configuration resources.
pub const API_VERSION: &str = "config.ratify.deislabs.io/v1beta1";
/// The artifact type of Notation signatures.
pub const NOTATION_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";

/// An `inline` KeyManagementProvider named `name` holding `pem` (`content_type`: `certificate`
/// or `key`); a `NamespacedKeyManagementProvider` when `namespace` is given.
pub fn inline_kmp_yaml(
    name: &str,
    namespace: Option<&str>,
    content_type: &str,
    pem: &str,
) -> String {
    let head = header("KeyManagementProvider", name, namespace);
    let value: String = pem.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "{head}  type: inline
  parameters:
    contentType: {content_type}
    value: |
{value}"
    )
}

/// Ratify's `config-policy` Policy `ratify-policy` with these `artifactVerificationPolicies`
/// (`(artifact type or "default", "any" | "all")`).
pub fn config_policy_yaml(rules: &[(&str, &str)]) -> String {
    let head = header("Policy", "ratify-policy", None);
    let rules: String = rules
        .iter()
        .map(|(ty, rule)| format!("      {ty}: {rule}\n"))
        .collect();
    format!(
        "{head}  type: config-policy\n  parameters:\n    artifactVerificationPolicies:\n{rules}"
    )
}

/// A resource's lines up to `spec:`; `Namespaced<kind>` in `namespace` when one is given.
fn header(kind: &str, name: &str, namespace: Option<&str>) -> String {
    let (kind, namespace) = match namespace {
        Some(ns) => (format!("Namespaced{kind}"), format!("  namespace: {ns}\n")),
        None => (kind.to_owned(), String::new()),
    };
    format!(
        "apiVersion: {API_VERSION}\nkind: {kind}\nmetadata:\n  name: {name}\n{namespace}spec:\n"
    )
}

/// Ratify's Notation `Verifier`. [`NotationVerifier::new`] gives the seed's: one certificate
/// store `certs` of a KeyManagementProvider, one `strict` trust policy over every registry with
/// trust store `ca:certs`; the other methods change a part.
#[derive(Clone, Debug)]
pub struct NotationVerifier {
    name: String,
    namespace: Option<String>,
    cert_stores: CertStores,
    policy: TrustPolicy,
}

#[derive(Clone, Debug)]
enum CertStores {
    /// `certs: [providers]` (no trust store type: `ca`).
    Legacy(Vec<String>),
    /// `{type: {store: [providers]}}`, stores in the order added.
    Typed(Vec<TypedStore>),
}

#[derive(Clone, Debug)]
struct TypedStore {
    ty: String,
    store: String,
    providers: Vec<String>,
}

#[derive(Clone, Debug)]
enum TrustPolicy {
    /// One `strict` statement named `default` with trust store `ca:certs`.
    Default {
        scopes: Vec<String>,
        identities: Vec<String>,
    },
    /// A whole trust policy document (written as JSON, which YAML reads as is).
    Document(Value),
}

impl NotationVerifier {
    /// Verifier `name` trusting the certificates of KeyManagementProvider `kmp` (certificate
    /// store `certs`, trust store `ca:certs`), for every registry (`*`) and identity (`*`).
    pub fn new(name: &str, kmp: &str) -> Self {
        NotationVerifier {
            name: name.to_owned(),
            namespace: None,
            cert_stores: CertStores::Legacy(vec![kmp.to_owned()]),
            policy: TrustPolicy::Default {
                scopes: vec!["*".into()],
                identities: vec!["*".into()],
            },
        }
    }

    /// A `NamespacedVerifier` in `namespace`.
    pub fn namespaced(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// The trusted identities of the default statement (e.g. `x509.subject: C=US, ..., CN=x`).
    pub fn trusted_identities(mut self, identities: &[&str]) -> Self {
        if let TrustPolicy::Default {
            identities: ids, ..
        } = &mut self.policy
        {
            *ids = identities.iter().map(|s| (*s).to_owned()).collect();
        }
        self
    }

    /// The registry scopes of the default statement.
    pub fn registry_scopes(mut self, scopes: &[&str]) -> Self {
        if let TrustPolicy::Default { scopes: s, .. } = &mut self.policy {
            *s = scopes.iter().map(|s| (*s).to_owned()).collect();
        }
        self
    }

    /// A typed certificate store `{ty: {store: [kmps]}}`; the first replaces `certs`, later ones
    /// are added (e.g. `ca` and `tsa` stores side by side).
    pub fn typed_cert_store(mut self, ty: &str, store: &str, kmps: &[&str]) -> Self {
        let added = TypedStore {
            ty: ty.to_owned(),
            store: store.to_owned(),
            providers: kmps.iter().map(|s| (*s).to_owned()).collect(),
        };
        match &mut self.cert_stores {
            CertStores::Typed(stores) => stores.push(added),
            CertStores::Legacy(_) => self.cert_stores = CertStores::Typed(vec![added]),
        }
        self
    }

    /// A whole trust policy document (e.g. one of notation's) instead of the default statement.
    pub fn trust_policy_doc(mut self, doc: Value) -> Self {
        self.policy = TrustPolicy::Document(doc);
        self
    }

    /// The resource as YAML.
    pub fn yaml(&self) -> String {
        let head = header("Verifier", &self.name, self.namespace.as_deref());
        // Resource names plain, scopes and identities quoted (`*`, `: `), as in Ratify's docs.
        let names = |items: &[String], indent: &str| -> String {
            items.iter().map(|i| format!("{indent}- {i}\n")).collect()
        };
        let list = |items: &[String], indent: &str| -> String {
            items
                .iter()
                .map(|i| format!("{indent}- {}\n", quoted(i)))
                .collect()
        };
        let stores = match &self.cert_stores {
            CertStores::Legacy(providers) => {
                format!("      certs:\n{}", names(providers, "        "))
            }
            CertStores::Typed(stores) => {
                let mut types: Vec<&str> = Vec::new();
                for s in stores {
                    if !types.contains(&s.ty.as_str()) {
                        types.push(&s.ty);
                    }
                }
                let mut out = String::new();
                for ty in types {
                    out.push_str(&format!("      {ty}:\n"));
                    for s in stores.iter().filter(|s| s.ty == ty) {
                        out.push_str(&format!(
                            "        {}:\n{}",
                            s.store,
                            names(&s.providers, "          ")
                        ));
                    }
                }
                out
            }
        };
        let policy = match &self.policy {
            TrustPolicy::Default { scopes, identities } => format!(
                "
      version: \"1.0\"
      trustPolicies:
        - name: default
          registryScopes:
{}          signatureVerification:
            level: strict
          trustStores:
            - ca:certs
          trustedIdentities:
{}",
                list(scopes, "            "),
                list(identities, "            ")
            ),
            TrustPolicy::Document(doc) => format!(" {doc}\n"),
        };
        format!(
            "{head}  name: notation
  artifactTypes: {NOTATION_ARTIFACT_TYPE}
  parameters:
    verificationCertStores:
{stores}    trustPolicyDoc:{policy}"
        )
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}
