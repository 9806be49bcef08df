//! What `verify`, `scan` and `serve` share: registry clients from flags and the Store resource,
//! and the pod's Azure workload identity.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use verdict_scanner::azure::{AzureHttp, WorkloadIdentity, WorkloadIdentityEnv};
use verdict_scanner::registry::{
    AcrAuthProvider, Anonymous, AuthProvider, DockerConfig, RegistryClient, RegistryConfig,
};
use verdict_scanner::trust::StoreSettings;

use crate::cli::RegistryArgs;

/// CA certificates trusted beyond the platform roots: `--extra-ca-file` and `SSL_CERT_FILE`.
fn extra_ca_pem(args: &RegistryArgs) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = args.extra_ca_file.clone();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .with_context(|| format!("cannot read the CA certificates {}", f.display()))
        })
        .collect()
}

/// The pod's workload identity, shared by ACR auth and Key Vault so Entra tokens are cached once.
pub fn identity(args: &RegistryArgs) -> anyhow::Result<Arc<WorkloadIdentity>> {
    static IDENTITY: OnceLock<Arc<WorkloadIdentity>> = OnceLock::new();
    if let Some(i) = IDENTITY.get() {
        return Ok(Arc::clone(i));
    }
    let http = AzureHttp {
        extra_ca_pem: extra_ca_pem(args)?,
        timeout: Duration::from_secs(args.azure_timeout_secs.max(1)),
        ..AzureHttp::default()
    };
    let identity = Arc::new(WorkloadIdentity::new(WorkloadIdentityEnv::from_env(), http));
    Ok(Arc::clone(IDENTITY.get_or_init(|| identity)))
}

/// The registry client for a configuration whose Store has `store` settings.
pub fn client(args: &RegistryArgs, store: &StoreSettings) -> anyhow::Result<RegistryClient> {
    let mut plain_http = args.plain_http.clone();
    if store.use_http {
        plain_http.push("*".into());
    }
    RegistryClient::new(
        RegistryConfig {
            plain_http_registries: plain_http,
            request_timeout: Duration::from_secs(args.registry_timeout_secs),
            extra_root_certificates_pem: extra_ca_pem(args)?,
            ..Default::default()
        },
        auth_provider(args, store)?,
    )
    .context("cannot set up the registry client")
}

fn auth_provider(
    args: &RegistryArgs,
    store: &StoreSettings,
) -> anyhow::Result<Arc<dyn AuthProvider>> {
    let path = match &args.docker_config {
        Some(p) => Some(p.clone()),
        None => DockerConfig::default_path().filter(|p| p.is_file()),
    };
    let docker: Arc<dyn AuthProvider> = match path {
        Some(p) => Arc::new(
            DockerConfig::from_file(&p)
                .with_context(|| format!("cannot read registry credentials {}", p.display()))?,
        ),
        None => Arc::new(Anonymous),
    };
    match store.auth_provider.as_deref() {
        Some("azureWorkloadIdentity") => Ok(Arc::new(
            AcrAuthProvider::new(
                identity(args)?,
                None,
                store.auth_client_id.clone(),
                args.acr_endpoints.clone(),
                docker,
            )
            .context("cannot set up ACR workload-identity auth")?,
        )),
        None | Some("dockerConfig") | Some("") => Ok(docker),
        Some(other) => bail!(
            "Store authProvider {other:?} is not supported — fix: use azureWorkloadIdentity (ACR with workload identity) or dockerConfig (a mounted .dockerconfigjson)"
        ),
    }
}
