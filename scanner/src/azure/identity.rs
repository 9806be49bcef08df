//! Workload identity: the AKS webhook injects `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,
//! `AZURE_FEDERATED_TOKEN_FILE` and `AZURE_AUTHORITY_HOST`; the file holds a service-account
//! token (audience `api://AzureADTokenExchange`) that kubelet rotates. Entra ID exchanges it as a
//! client assertion for an access token per resource (ACR, Key Vault).
//!
//! azure_identity's `WorkloadIdentityCredential` re-reads the file only every 10 minutes; ours
//! reads it at every token request (a few per hour: tokens are cached until 5 minutes before
//! they expire), so a rotated file is used at once. A Store's `authProvider.clientID` or a
//! KeyManagementProvider's `clientID` / `tenantID` override the environment, as in Ratify.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};

use super::{AzureError, AzureHttp};

/// Entra scope of Azure Container Registry tokens.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// Entra scope of Azure Key Vault tokens.
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// Azure public cloud's authority, when `AZURE_AUTHORITY_HOST` is not set.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// The workload-identity environment of the pod (each field may be overridden per resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadIdentityEnv {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `https://login.microsoftonline.com/` unless set (sovereign clouds, test fakes).
    pub authority_host: Option<String>,
}

impl WorkloadIdentityEnv {
    /// From `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
    /// `AZURE_AUTHORITY_HOST` (empty values count as unset).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        WorkloadIdentityEnv {
            tenant_id: var("AZURE_TENANT_ID"),
            client_id: var("AZURE_CLIENT_ID"),
            token_file: var("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
            authority_host: var("AZURE_AUTHORITY_HOST"),
        }
    }
}

/// The projected service-account token, read at every use (kubelet rotates it in place).
#[derive(Clone)]
pub struct FederatedTokenFile {
    path: PathBuf,
}

impl FederatedTokenFile {
    pub fn new(path: PathBuf) -> Self {
        FederatedTokenFile { path }
    }

    /// The current token; an unreadable or empty file is an error naming the path.
    pub fn read(&self) -> Result<String, AzureError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            AzureError::config(
                "workload identity",
                format!(
                    "cannot read the federated token file {}: {e}",
                    self.path.display()
                ),
                "check that the pod uses the workload-identity service account (label azure.workload.identity/use: \"true\") so the token is projected",
            )
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AzureError::config(
                "workload identity",
                format!("the federated token file {} is empty", self.path.display()),
                "check the service account token projection",
            ));
        }
        Ok(token.to_owned())
    }
}

impl std::fmt::Debug for FederatedTokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederatedTokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ClientAssertion for FederatedTokenFile {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.read().map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
        })
    }
}

/// Entra ID credentials per (tenant, client), built from the pod's environment with overrides.
/// Each credential caches its tokens per scope until five minutes before they expire.
pub struct WorkloadIdentity {
    env: WorkloadIdentityEnv,
    http: AzureHttp,
    credentials: Mutex<HashMap<(String, String), Arc<dyn TokenCredential>>>,
}

impl std::fmt::Debug for WorkloadIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentity")
            .field("env", &self.env)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl WorkloadIdentity {
    pub fn new(env: WorkloadIdentityEnv, http: AzureHttp) -> Self {
        WorkloadIdentity {
            env,
            http,
            credentials: Mutex::new(HashMap::new()),
        }
    }

    pub fn http(&self) -> &AzureHttp {
        &self.http
    }

    /// The credential for `tenant` / `client` (each `None` or empty: the environment's).
    pub fn credential(
        &self,
        tenant: Option<&str>,
        client: Option<&str>,
    ) -> Result<Arc<dyn TokenCredential>, AzureError> {
        let pick = |own: Option<&str>, env: &Option<String>| {
            own.filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .or_else(|| env.clone())
        };
        let tenant = pick(tenant, &self.env.tenant_id).ok_or_else(|| {
            AzureError::config(
                "workload identity",
                "no tenant ID",
                "set tenantID on the KeyManagementProvider or AZURE_TENANT_ID (the workload-identity webhook sets it)",
            )
        })?;
        let client = pick(client, &self.env.client_id).ok_or_else(|| {
            AzureError::config(
                "workload identity",
                "no client ID",
                "set clientID on the Store's authProvider / the KeyManagementProvider, or AZURE_CLIENT_ID",
            )
        })?;
        let key = (tenant.clone(), client.clone());
        let mut cache = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.get(&key) {
            return Ok(Arc::clone(c));
        }
        let path = self.env.token_file.clone().ok_or_else(|| {
            AzureError::config(
                "workload identity",
                "AZURE_FEDERATED_TOKEN_FILE is not set",
                "run in a pod whose service account has azure.workload.identity/use: \"true\", or set AZURE_FEDERATED_TOKEN_FILE",
            )
        })?;
        let authority = self
            .env
            .authority_host
            .as_deref()
            .unwrap_or(DEFAULT_AUTHORITY_HOST);
        let options = ClientAssertionCredentialOptions {
            client_options: self.http.client_options(Some(authority))?,
        };
        let credential: Arc<dyn TokenCredential> = ClientAssertionCredential::new(
            tenant,
            client,
            FederatedTokenFile::new(path),
            Some(options),
        )
        .map_err(|e| AzureError::from_core("workload identity", &e))?;
        cache.insert(key, Arc::clone(&credential));
        Ok(credential)
    }

    /// An access token for `scope` (cached by the credential).
    pub async fn token(
        &self,
        tenant: Option<&str>,
        client: Option<&str>,
        scope: &str,
    ) -> Result<AccessToken, AzureError> {
        let credential = self.credential(tenant, client)?;
        credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| AzureError::from_core(format!("Entra ID token for {scope}"), &e))
    }
}
