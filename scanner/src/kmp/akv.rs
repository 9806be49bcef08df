//! The Azure Key Vault key management provider (`type: azurekeyvault`): certificates with their
//! chain (through the certificate's secret, PEM or PKCS#12; private keys dropped) and public keys
//! (JWK, EC P-256/384/521 and RSA, `-HSM` kinds too), by name and version. Of a certificate's
//! chain, the CA and self-signed certificates become trust anchors (a CA-issued leaf travels in
//! every signature's x5c and cannot anchor trust).
//!
//! Without a pinned `version`, **every enabled version** is trusted, newest first, up to
//! `versionHistoryLimit` (or the configured default), so a rotation does not break images signed
//! with the previous version; disabled, expired and not-yet-valid versions are left out and
//! listed as such in the status. Versions are listed even when one is pinned, so a pinned
//! version that was disabled is left out too. The identity therefore needs `get` and `list` on
//! keys, secrets and certificates.
//!
//! The Azure SDK clients do the HTTP (401 challenge, paging with `nextLink`, retries); bodies are
//! read as JSON and turned into trust material by the same parsers the recorded responses and
//! Ratify's vectors test ([`super::public_key_from_jwk`], [`super::certificates_from_secret_bundle`]).

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_security_keyvault_certificates::models::CertificateClientListCertificatePropertiesVersionsOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::{
    KeyClientGetKeyOptions, KeyClientListKeyPropertiesVersionsOptions,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use verdict_crds::model::{AzureKeyVaultParameters, KeyVaultObject};

use crate::azure::{AzureError, WorkloadIdentity};
use crate::cosign::ProviderKey;
use crate::trust::KeyMaterial;

/// Versions trusted per certificate or key when the resource sets no `versionHistoryLimit`.
pub const DEFAULT_VERSION_LIMIT: usize = 10;
/// Versions asked for per page when listing.
const PAGE_SIZE: i32 = 25;

/// Certificate or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ItemKind {
    Certificate,
    Key,
}

/// Why a version is (not) trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemState {
    Trusted,
    Disabled,
    Expired,
    NotYetValid,
    /// Enabled, but older than the newest `versionHistoryLimit` versions.
    BeyondLimit,
    /// Not the pinned version.
    NotPinned,
}

/// One version of a certificate or key, as the status reports it (Ratify's `properties`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyVaultItem {
    #[serde(rename = "Type")]
    pub kind: ItemKind,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "State")]
    pub state: ItemState,
    /// `sha256:<hex>` of the certificate (DER, leaf) or of the public key (SPKI DER).
    #[serde(rename = "Fingerprint", skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(rename = "LastRefreshed")]
    pub last_refreshed: DateTime<Utc>,
}

/// What one fetch found: the material to trust and every version seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultSnapshot {
    pub material: KeyMaterial,
    pub items: Vec<KeyVaultItem>,
}

/// Fetches KeyManagementProviders of type `azurekeyvault`.
#[derive(Debug, Clone)]
pub struct KeyVaultProvider {
    identity: Arc<WorkloadIdentity>,
    default_version_limit: usize,
}

/// A version as listed: its id and attributes.
struct Listed {
    version: String,
    enabled: bool,
    not_before: Option<OffsetDateTime>,
    expires: Option<OffsetDateTime>,
    created: Option<OffsetDateTime>,
}

impl KeyVaultProvider {
    pub fn new(identity: Arc<WorkloadIdentity>, default_version_limit: usize) -> Self {
        KeyVaultProvider {
            identity,
            default_version_limit: default_version_limit.max(1),
        }
    }

    /// Everything the provider `kmp` trusts now. Any failure fails the whole fetch (the caller
    /// keeps the last good material): a partial set could drop a key that is still trusted.
    pub async fn fetch(
        &self,
        kmp: &str,
        params: &AzureKeyVaultParameters,
    ) -> Result<KeyVaultSnapshot, AzureError> {
        let what = format!("KeyManagementProvider {kmp:?}");
        let vault = params
            .vault_uri
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                AzureError::config(
                    &what,
                    "spec.parameters.vaultURI is missing",
                    "set vaultURI: https://<vault>.vault.azure.net/",
                )
            })?;
        let url = url::Url::parse(vault).map_err(|e| {
            AzureError::config(
                &what,
                format!("vaultURI {vault:?} is not a URL: {e}"),
                "set vaultURI: https://<vault>.vault.azure.net/",
            )
        })?;
        let credential = self
            .identity
            .credential(params.tenant_id.as_deref(), params.client_id.as_deref())?;
        let clients = Clients::new(&what, vault, &url, credential, &self.identity)?;
        let now = OffsetDateTime::now_utc();
        let mut snapshot = KeyVaultSnapshot {
            material: KeyMaterial {
                fetched: true,
                ..KeyMaterial::default()
            },
            items: Vec::new(),
        };
        for object in params.certificates.iter().flatten() {
            let name = object_name(&what, object)?;
            let listed = clients.certificate_versions(name).await?;
            for (l, state) in self.select(object, listed, now) {
                let mut item = item(ItemKind::Certificate, name, &l, state);
                if state == ItemState::Trusted {
                    let chain = clients.certificate_chain(name, &l.version).await?;
                    item.fingerprint = chain
                        .first()
                        .map(|leaf| format!("sha256:{}", hex::encode(Sha256::digest(leaf))));
                    for der in chain.iter().filter(|c| is_trust_anchor(c)) {
                        let pem = pem_certificate(der);
                        if !snapshot.material.certificates_pem.contains(&pem) {
                            snapshot.material.certificates_pem.push(pem);
                        }
                    }
                }
                snapshot.items.push(item);
            }
        }
        for object in params.keys.iter().flatten() {
            let name = object_name(&what, object)?;
            let listed = clients.key_versions(name).await?;
            for (l, state) in self.select(object, listed, now) {
                let mut item = item(ItemKind::Key, name, &l, state);
                if state == ItemState::Trusted {
                    let (pem, fingerprint) = clients.key(name, &l.version).await?;
                    item.fingerprint = Some(fingerprint);
                    snapshot.material.keys.push(ProviderKey {
                        name: name.to_owned(),
                        version: l.version.clone(),
                        pem,
                    });
                }
                snapshot.items.push(item);
            }
        }
        Ok(snapshot)
    }

    /// Each listed version with its state, newest first.
    fn select(
        &self,
        object: &KeyVaultObject,
        mut listed: Vec<Listed>,
        now: OffsetDateTime,
    ) -> Vec<(Listed, ItemState)> {
        listed.sort_by(|a, b| b.created.cmp(&a.created).then(b.version.cmp(&a.version)));
        let pinned = object.version.as_deref().filter(|v| !v.is_empty());
        let limit = object
            .version_history_limit
            .map_or(self.default_version_limit, |l| l.max(1) as usize);
        let mut trusted = 0;
        listed
            .into_iter()
            .map(|l| {
                let state = if pinned.is_some_and(|p| !p.eq_ignore_ascii_case(&l.version)) {
                    ItemState::NotPinned
                } else if !l.enabled {
                    ItemState::Disabled
                } else if l.not_before.is_some_and(|t| t > now) {
                    ItemState::NotYetValid
                } else if l.expires.is_some_and(|t| t <= now) {
                    ItemState::Expired
                } else if trusted >= limit {
                    ItemState::BeyondLimit
                } else {
                    trusted += 1;
                    ItemState::Trusted
                };
                (l, state)
            })
            .collect()
    }
}

fn object_name<'a>(what: &str, object: &'a KeyVaultObject) -> Result<&'a str, AzureError> {
    object
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            AzureError::config(
                what,
                "a certificate or key has no name",
                "set `name:` on every entry",
            )
        })
}

fn item(kind: ItemKind, name: &str, l: &Listed, state: ItemState) -> KeyVaultItem {
    KeyVaultItem {
        kind,
        name: name.to_owned(),
        version: l.version.clone(),
        enabled: l.enabled,
        state,
        fingerprint: None,
        last_refreshed: Utc::now(),
    }
}

/// Whether a certificate of a chain can anchor Notation trust: a CA certificate or a
/// self-signed one. A leaf issued by a CA is carried by every signature it makes (x5c); a trust
/// store of Notation refuses it, and the chain's root or intermediate is what is trusted.
fn is_trust_anchor(der: &[u8]) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.is_ca() || cert.subject().as_raw() == cert.issuer().as_raw(),
        Err(_) => false,
    }
}

fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The version at the end of an item id (`https://v.vault.azure.net/keys/name/<version>`).
fn version_of(id: Option<&str>) -> Option<String> {
    let id = id?;
    let path = url::Url::parse(id)
        .ok()?
        .path()
        .trim_end_matches('/')
        .to_owned();
    let version = path.rsplit('/').next()?;
    (!version.is_empty()).then(|| version.to_owned())
}

/// A vault URI on a loopback address is an emulator or a test fake: its 401 challenge cannot
/// name a resource that domain-matches `127.0.0.1`, so the SDK's check is off for it only.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

struct Clients {
    what: String,
    keys: KeyClient,
    secrets: SecretClient,
    certificates: CertificateClient,
}

impl Clients {
    fn new(
        what: &str,
        vault: &str,
        url: &url::Url,
        credential: Arc<dyn TokenCredential>,
        identity: &WorkloadIdentity,
    ) -> Result<Self, AzureError> {
        let verify = Some(!is_loopback(url));
        let options = identity.http().client_options(None)?;
        let bad = |e: azure_core::Error| {
            AzureError::config(
                what,
                format!("vaultURI {vault:?}: {e}"),
                "set vaultURI: https://<vault>.vault.azure.net/",
            )
        };
        Ok(Clients {
            what: what.to_owned(),
            keys: KeyClient::new(
                vault,
                credential.clone(),
                Some(KeyClientOptions {
                    client_options: options.clone(),
                    verify_challenge_resource: verify,
                    ..Default::default()
                }),
            )
            .map_err(bad)?,
            secrets: SecretClient::new(
                vault,
                credential.clone(),
                Some(SecretClientOptions {
                    client_options: options.clone(),
                    verify_challenge_resource: verify,
                    ..Default::default()
                }),
            )
            .map_err(bad)?,
            certificates: CertificateClient::new(
                vault,
                credential,
                Some(CertificateClientOptions {
                    client_options: options,
                    verify_challenge_resource: verify,
                    ..Default::default()
                }),
            )
            .map_err(bad)?,
        })
    }

    fn err(&self, call: String) -> impl Fn(azure_core::Error) -> AzureError + '_ {
        move |e| AzureError::from_core(format!("{}: {call}", self.what), &e)
    }

    async fn key_versions(&self, name: &str) -> Result<Vec<Listed>, AzureError> {
        let call = format!("listing the versions of key {name:?}");
        let pager = self
            .keys
            .list_key_properties_versions(
                name,
                Some(KeyClientListKeyPropertiesVersionsOptions {
                    maxresults: Some(PAGE_SIZE),
                    ..Default::default()
                }),
            )
            .map_err(self.err(call.clone()))?;
        self.collect(pager, &call, |p| {
            let a = p.attributes.unwrap_or_default();
            (p.kid, [a.not_before, a.expires, a.created], a.enabled)
        })
        .await
    }

    async fn certificate_versions(&self, name: &str) -> Result<Vec<Listed>, AzureError> {
        let call = format!("listing the versions of certificate {name:?}");
        let pager = self
            .certificates
            .list_certificate_properties_versions(
                name,
                Some(CertificateClientListCertificatePropertiesVersionsOptions {
                    maxresults: Some(PAGE_SIZE),
                    ..Default::default()
                }),
            )
            .map_err(self.err(call.clone()))?;
        self.collect(pager, &call, |p| {
            let a = p.attributes.unwrap_or_default();
            (p.id, [a.not_before, a.expires, a.created], a.enabled)
        })
        .await
    }

    /// Every page of a version listing; `parts` gives an item's id, its `[nbf, exp, created]`
    /// and `enabled`. Items without a readable version are skipped.
    async fn collect<T>(
        &self,
        mut pager: impl futures::Stream<Item = azure_core::Result<T>> + Unpin,
        call: &str,
        parts: impl Fn(T) -> (Option<String>, [Option<OffsetDateTime>; 3], Option<bool>),
    ) -> Result<Vec<Listed>, AzureError> {
        let mut out = Vec::new();
        while let Some(item) = pager.try_next().await.map_err(self.err(call.to_owned()))? {
            let (id, [not_before, expires, created], enabled) = parts(item);
            let Some(version) = version_of(id.as_deref()) else {
                continue;
            };
            out.push(Listed {
                version,
                enabled: enabled.unwrap_or(false),
                not_before,
                expires,
                created,
            });
        }
        Ok(out)
    }

    /// The public key of `name`/`version` as SPKI PEM, and its fingerprint.
    async fn key(&self, name: &str, version: &str) -> Result<(String, String), AzureError> {
        let call = format!("reading key {name:?} version {version}");
        let resp = self
            .keys
            .get_key(
                name,
                Some(KeyClientGetKeyOptions {
                    key_version: Some(version.to_owned()),
                    ..Default::default()
                }),
            )
            .await
            .map_err(self.err(call.clone()))?;
        let body: serde_json::Value = resp.into_body().json().map_err(self.err(call.clone()))?;
        let invalid = |e: String| {
            AzureError::config(
                &self.what,
                format!("{call}: {e}"),
                "store an EC (P-256/384/521) or RSA key in Key Vault",
            )
        };
        let jwk = body
            .get("key")
            .ok_or_else(|| invalid("the answer has no `key`".into()))?;
        let key = super::public_key_from_jwk(jwk).map_err(|e| invalid(e.to_string()))?;
        let pem = super::spki_pem_from_jwk(jwk).map_err(|e| invalid(e.to_string()))?;
        Ok((pem, key.fingerprint().to_owned()))
    }

    /// The DER chain (leaf first) of certificate `name`/`version`, from its secret.
    async fn certificate_chain(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Vec<Vec<u8>>, AzureError> {
        let call = format!("reading the secret of certificate {name:?} version {version}");
        let resp = self
            .secrets
            .get_secret(
                name,
                Some(SecretClientGetSecretOptions {
                    secret_version: Some(version.to_owned()),
                    ..Default::default()
                }),
            )
            .await
            .map_err(self.err(call.clone()))?;
        let body: serde_json::Value = resp.into_body().json().map_err(self.err(call.clone()))?;
        super::certificates_from_secret_bundle(&body).map_err(|e| {
            AzureError::config(
                &self.what,
                format!("{call}: {e}"),
                "import the certificate with its chain (PEM or PKCS#12) into Key Vault",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_item_ids() {
        assert_eq!(
            version_of(Some("https://v.vault.azure.net/keys/k/0123abcd")).as_deref(),
            Some("0123abcd")
        );
        assert_eq!(
            version_of(Some("https://127.0.0.1:8443/certificates/c/ff/")).as_deref(),
            Some("ff")
        );
        assert_eq!(version_of(Some("not a url")), None);
        assert_eq!(version_of(None), None);
    }

    #[test]
    fn only_loopback_vaults_skip_the_challenge_domain_check() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(is_loopback(&u("https://127.0.0.1:8443/")));
        assert!(is_loopback(&u("https://localhost:8443/")));
        assert!(!is_loopback(&u("https://myvault.vault.azure.net/")));
        assert!(!is_loopback(&u("https://10.0.0.1/")));
    }
}
