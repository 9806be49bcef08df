//! A pod's view of Azure, on one machine: a workload-identity token file, the Entra ID fake, a
//! Key Vault fake and a real `docker-registry` behind the ACR token-server fake, with helpers to
//! push images signed with Notation (certificate chain in a Key Vault secret) or Cosign (key in
//! Key Vault), and the environment and flags that point `verdict serve` at all of it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;

use super::{
    ACR_RESOURCE, CertificateVersion, FakeAcrTokenServer, FakeEntra, FakeKeyVault, TestCa,
    public_jwk,
};
use crate::oci::{Descriptor, OciClient, cosign_payload};
use crate::pki::{KeyAlg, SignAlg, TestCert, TestChain};
use crate::registry::DockerRegistry;

/// Tenant of the fake Entra ID.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// Client (managed identity) of the workload.
pub const CLIENT_ID: &str = "1c7ac0d9-3c1f-4b2b-8a3e-0c6f1f0f5a11";
/// ACR's `service` (the login server name in real ACR).
pub const ACR_SERVICE: &str = "verdicttest.azurecr.io";
/// Artifact type of Cosign's legacy `.sig` manifests.
pub const COSIGN_SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Everything a pod with workload identity talks to.
pub struct AzureWorld {
    pub ca: TestCa,
    pub entra: FakeEntra,
    pub vault: FakeKeyVault,
    pub acr: FakeAcrTokenServer,
    pub registry: DockerRegistry,
    dir: tempfile::TempDir,
}

impl AzureWorld {
    /// Starts the fakes and the registry; the token file holds `sa-token-1`.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("verdict-azure-")
            .tempdir()?;
        let ca = TestCa::new()?;
        ca.write_ca_pem(&dir.path().join("ca.pem"))?;
        let entra = FakeEntra::start(&ca, TENANT_ID, CLIENT_ID).await?;
        let vault = FakeKeyVault::start(&ca, &entra).await?;
        let acr = FakeAcrTokenServer::start(&ca, &entra, ACR_SERVICE).await?;
        let registry = DockerRegistry::builder()
            .token_auth(acr.token_auth(dir.path())?)
            .start()
            .await?;
        let world = AzureWorld {
            ca,
            entra,
            vault,
            acr,
            registry,
            dir,
        };
        world.rotate_service_account_token("sa-token-1")?;
        Ok(world)
    }

    /// The registry's `host:port` (Verdict's ACR login server here).
    pub fn registry_host(&self) -> String {
        self.registry.host_port()
    }

    /// The test CA's PEM file (what `--extra-ca-file` gets).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The projected service-account token file.
    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("azure-identity-token")
    }

    /// Writes a new service-account token (as kubelet rotates it) and makes Entra accept only it.
    pub fn rotate_service_account_token(&self, token: &str) -> Result<()> {
        write_atomic(&self.token_file(), token)?;
        self.entra.set_expected_assertion(token);
        Ok(())
    }

    /// The variables the AKS workload-identity webhook injects.
    pub fn pod_env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("AZURE_TENANT_ID".into(), TENANT_ID.into()),
            (
                "AZURE_FEDERATED_TOKEN_FILE".into(),
                self.token_file().display().to_string(),
            ),
            ("AZURE_AUTHORITY_HOST".into(), self.entra.authority_host()),
        ]
    }

    /// `verdict serve` flags: trust the test CA, treat the registry as an ACR login server,
    /// reach it over plain HTTP (docker-registry here; the token server is HTTPS).
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--extra-ca-file".into(),
            self.ca_file().display().to_string(),
            "--acr-endpoints".into(),
            self.registry_host(),
            "--plain-http".into(),
            self.registry_host(),
        ]
    }

    /// A client allowed to push to `repos` (its own token, not Verdict's).
    pub async fn pusher(&self, repos: &[&str]) -> Result<OciClient> {
        let http = self.ca.client()?;
        let entra = self.entra.issue_token(ACR_RESOURCE);
        self.acr.set_permissions(&["read", "write"]);
        let exchanged: serde_json::Value = http
            .post(self.acr.exchange_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("grant_type", "access_token"),
                ("service", ACR_SERVICE),
                ("access_token", entra.as_str()),
            ]))
            .send()
            .await?
            .error_for_status()
            .context("exchanging a push token")?
            .json()
            .await?;
        self.acr.set_permissions(&["read"]);
        let refresh = exchanged["refresh_token"]
            .as_str()
            .context("no refresh_token")?
            .to_owned();
        let scopes: Vec<String> = repos
            .iter()
            .map(|r| format!("repository:{r}:pull,push"))
            .collect();
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("service", ACR_SERVICE),
            ("refresh_token", refresh.as_str()),
        ];
        form.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let token: serde_json::Value = http
            .post(self.acr.realm())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
            .await?
            .error_for_status()
            .context("a push access token")?
            .json()
            .await?;
        let token = token["access_token"].as_str().context("no access_token")?;
        Ok(self.registry.client().with_bearer_token(token))
    }

    /// Adds a Key Vault certificate version holding `chain` (PEM secret: private key, then leaf →
    /// root, as Key Vault stores an imported certificate). Returns the version.
    pub fn add_certificate(&self, name: &str, chain: &TestChain) -> String {
        self.vault.add_certificate_version(
            name,
            CertificateVersion::pem(&chain.leaf.key().pkcs8_pem(), &chain.x5c()),
        )
    }

    /// Adds a Key Vault key version with `cert`'s public key. Returns the version.
    pub fn add_key(&self, name: &str, cert: &TestCert) -> Result<String> {
        Ok(self.vault.add_key_version(name, public_jwk(cert.key())?))
    }

    /// Pushes an image and a Notation signature by `chain`'s leaf (x5c = the whole chain).
    pub async fn push_notation_signed(
        &self,
        client: &OciClient,
        repo: &str,
        tag: &str,
        chain: &TestChain,
    ) -> Result<Descriptor> {
        let image = client.push_image(repo, tag).await?;
        crate::notation::push_notation_signature_chain(
            client,
            repo,
            &image,
            &chain.leaf,
            &chain.x5c(),
        )
        .await?;
        Ok(image)
    }

    /// Pushes an image and a Cosign signature (legacy `.sig` tag) by `signer`'s EC P-256 key.
    pub async fn push_cosign_signed(
        &self,
        client: &OciClient,
        repo: &str,
        tag: &str,
        signer: &TestCert,
    ) -> Result<Descriptor> {
        let image = client.push_image(repo, tag).await?;
        let reference = format!("{}/{repo}", self.registry_host());
        let payload = cosign_payload(&reference, &image.digest);
        let signature = signer.sign(SignAlg::Es256Der, &payload)?;
        client
            .push_cosign_signature(
                repo,
                &image,
                &payload,
                &base64::engine::general_purpose::STANDARD.encode(signature),
                Default::default(),
            )
            .await?;
        Ok(image)
    }

    /// Ratify CRs as the seeds write them, pointed at the fakes: an ORAS Store with workload
    /// identity, a certificate KMP (`kmp-akv-certs`, certificate `cert_name`) with a Notation
    /// verifier, a key KMP (`kmp-akv-keys`, key `key_name`) with a Cosign verifier, and the
    /// `refreshInterval` given (a Go duration).
    pub fn ratify_yaml(&self, cert_name: &str, key_name: &str, refresh: &str) -> String {
        [
            store_yaml(),
            self.kmp_yaml("kmp-akv-certs", "certificates", cert_name, refresh),
            self.kmp_yaml("kmp-akv-keys", "keys", key_name, refresh),
            NOTATION_VERIFIER.to_string(),
            cosign_verifier_yaml(),
        ]
        .join("---\n")
    }

    /// As [`Self::ratify_yaml`] with only the key KMP and the Cosign verifier.
    pub fn ratify_yaml_keys_only(&self, key_name: &str, refresh: &str) -> String {
        [
            store_yaml(),
            self.kmp_yaml("kmp-akv-keys", "keys", key_name, refresh),
            cosign_verifier_yaml(),
        ]
        .join("---\n")
    }

    fn kmp_yaml(&self, name: &str, kind: &str, object: &str, refresh: &str) -> String {
        let vault = self.vault.url();
        format!(
            r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: KeyManagementProvider
metadata:
  name: {name}
spec:
  type: azurekeyvault
  refreshInterval: {refresh}
  parameters:
    vaultURI: {vault}
    {kind}:
      - name: {object}
    tenantID: {TENANT_ID}
    clientID: {CLIENT_ID}
"#
        )
    }
}

fn store_yaml() -> String {
    format!(
        r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-oras
spec:
  name: oras
  parameters:
    cosignEnabled: true
    authProvider:
      name: azureWorkloadIdentity
      clientID: {CLIENT_ID}
"#
    )
}

const NOTATION_VERIFIER: &str = r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-notation
spec:
  name: notation
  artifactTypes: application/vnd.cncf.notary.signature
  parameters:
    verificationCertStores:
      ca:
        ca-certs:
          - kmp-akv-certs
    trustPolicyDoc:
      version: "1.0"
      trustPolicies:
        - name: default
          registryScopes:
            - "*"
          signatureVerification:
            level: strict
          trustStores:
            - ca:ca-certs
          trustedIdentities:
            - "*"
"#;

fn cosign_verifier_yaml() -> String {
    format!(
        r#"apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-cosign
spec:
  name: cosign
  artifactTypes: {COSIGN_SIG_TYPE}
  parameters:
    trustPolicies:
      - name: default
        scopes: ["*"]
        keys:
          - provider: kmp-akv-keys
        tLogVerify: false
"#
    )
}

/// A fresh EC P-256 signer for Cosign (its key goes into Key Vault).
pub fn cosign_signer(name: &str) -> Result<TestCert> {
    crate::pki::CertBuilder::code_signing(&format!("CN={name}"))
        .key_alg(KeyAlg::EcP256)
        .self_signed()
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
