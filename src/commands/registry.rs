//! What `verify`, `scan` and `serve` share: loading the trust configuration (with Key Vault
//! material, [`TrustRuntime`]) and building registry clients from flags and the Store resource.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use verdict_crds::model::Resource;
use verdict_scanner::azure::{AzureHttp, WorkloadIdentity, WorkloadIdentityEnv};
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_scanner::kmp::{KeyVaultProvider, KmpManager, KmpStatus};
use verdict_scanner::registry::{
    AcrAuthProvider, Anonymous, AuthProvider, DockerConfig, RegistryClient, RegistryConfig,
};
use verdict_scanner::trust::{LiveTrust, StoreSettings, TrustSet};

use crate::cli::{RegistryArgs, TrustArgs};

/// The trust configuration of a running command: the resources as loaded, the Key Vault
/// providers' material (refreshed by [`TrustRuntime::spawn_refresher`]) and the trust set in
/// force, which a refresh replaces whole.
pub struct TrustRuntime {
    resources: Vec<Resource>,
    sigstore: Arc<SigstoreTrustRoot>,
    pub kmps: Arc<KmpManager>,
    pub live: Arc<LiveTrust>,
}

impl TrustRuntime {
    /// Loads Ratify resources, fetches every Key Vault provider once and builds every trust
    /// configuration (cluster-wide and per namespace). A configuration error is fatal (fail
    /// closed: a half-understood configuration must not verify anything); a Key Vault that
    /// cannot be reached is not: its configurations answer "no verdict" until it can be.
    pub async fn load(
        path: &Path,
        args: &TrustArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<Self> {
        let sigstore = Arc::new(sigstore_root(args)?);
        let resources = load_resources(path)?;
        let provider = KeyVaultProvider::new(identity(registry)?, args.kmp_version_limit);
        let kmps = KmpManager::from_resources(
            &resources,
            provider,
            Duration::from_secs(args.kmp_refresh_secs.max(1)),
        )
        .map_err(anyhow::Error::msg)?;
        if !kmps.is_empty() {
            kmps.refresh(true).await;
            for s in kmps.statuses() {
                if !s.issuccess {
                    eprintln!(
                        "verdict: KeyManagementProvider {:?} could not be fetched (verifications that need it get no verdict until it can): {}",
                        s.name, s.error
                    );
                }
            }
        }
        let set = build(&resources, &sigstore, &kmps)?;
        Ok(TrustRuntime {
            resources,
            sigstore,
            kmps: Arc::new(kmps),
            live: Arc::new(LiveTrust::new(set)),
        })
    }

    /// The trust set in force.
    pub fn current(&self) -> Arc<TrustSet> {
        self.live.current()
    }

    /// Key Vault providers' status, as `/status` shows it.
    pub fn statuses(&self) -> Vec<KmpStatus> {
        self.kmps.statuses()
    }

    /// Rebuilds the trust set from the resources and the current Key Vault material and puts it
    /// in force when any fingerprint changed. A build error keeps the set in force.
    fn rebuild(&self) -> anyhow::Result<bool> {
        let set = build(&self.resources, &self.sigstore, &self.kmps)?;
        let old = self.live.current();
        let fingerprints = |s: &TrustSet| {
            s.configs()
                .map(|(scope, c)| (scope.map(str::to_owned), c.fingerprint.clone()))
                .collect::<Vec<_>>()
        };
        if fingerprints(&old) == fingerprints(&set) {
            return Ok(false);
        }
        for (scope, config) in set.configs() {
            tracing::info!(
                scope = scope.unwrap_or("cluster"),
                fingerprint = %config.fingerprint,
                unavailable = config.unavailable.len(),
                "trust configuration replaced after a Key Vault refresh"
            );
        }
        self.live.replace(set);
        Ok(true)
    }

    /// Refreshes Key Vault providers when they are due and replaces the trust set when their
    /// material changed, until `cancel`.
    pub fn spawn_refresher(self: &Arc<Self>, cancel: CancellationToken) {
        if self.kmps.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let due = this
                    .kmps
                    .next_due()
                    .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(60));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
                let outcome = this.kmps.refresh(false).await;
                if outcome.changed
                    && let Err(e) = this.rebuild()
                {
                    tracing::error!(
                        error = %format!("{e:#}"),
                        "the refreshed Key Vault material gives an invalid trust configuration; the previous one stays in force"
                    );
                }
            }
        });
    }
}

fn build(
    resources: &[Resource],
    sigstore: &Arc<SigstoreTrustRoot>,
    kmps: &KmpManager,
) -> anyhow::Result<TrustSet> {
    TrustSet::from_resources_with_material(resources, Arc::clone(sigstore), &kmps.material())
        .context("cannot build the trust configuration")
}

fn sigstore_root(args: &TrustArgs) -> anyhow::Result<SigstoreTrustRoot> {
    Ok(match &args.sigstore_trusted_root {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| {
                format!("cannot read the Sigstore trusted root {}", p.display())
            })?;
            SigstoreTrustRoot::from_trusted_root_json(&bytes).with_context(|| {
                format!(
                    "{} is not a usable Sigstore trusted root (--sigstore-trusted-root)",
                    p.display()
                )
            })?
        }
        None => SigstoreTrustRoot::new(),
    })
}

/// Ratify resources from a file or directory; any error is fatal, naming every problem.
fn load_resources(path: &Path) -> anyhow::Result<Vec<Resource>> {
    let report = verdict_crds::load_path(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    for d in &report.diagnostics {
        if d.is_error() {
            eprintln!("{d}");
        } else {
            tracing::warn!("{d}");
        }
    }
    if report.has_errors() {
        bail!(
            "the configuration has {} error(s); `verdict config check {}` lists them all",
            report.error_count(),
            path.display()
        );
    }
    Ok(report
        .valid_resources()
        .map(|l| l.resource.clone())
        .collect())
}

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
