//! What `verify` and `serve` share: loading the trust configuration and building the registry
//! client from flags and the Store resource.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_scanner::registry::{
    Anonymous, AuthProvider, DockerConfig, RegistryClient, RegistryConfig,
};
use verdict_scanner::trust::{StoreSettings, TrustSet};

use crate::cli::{RegistryArgs, TrustArgs};

/// Loads Ratify resources and builds every trust configuration (cluster-wide and per namespace);
/// any configuration error is fatal (fail closed: a half-understood configuration must not
/// verify anything).
pub fn load_trust(path: &Path, args: &TrustArgs) -> anyhow::Result<TrustSet> {
    let sigstore = match &args.sigstore_trusted_root {
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
    };
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
    TrustSet::from_resources_with_sigstore(
        report.valid_resources().map(|l| &l.resource),
        Arc::new(sigstore),
    )
    .context("cannot build the trust configuration")
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
            ..Default::default()
        },
        auth_provider(args)?,
    )
    .context("cannot set up the registry client")
}

fn auth_provider(args: &RegistryArgs) -> anyhow::Result<Arc<dyn AuthProvider>> {
    let path = match &args.docker_config {
        Some(p) => Some(p.clone()),
        None => DockerConfig::default_path().filter(|p| p.is_file()),
    };
    Ok(match path {
        Some(p) => Arc::new(
            DockerConfig::from_file(&p)
                .with_context(|| format!("cannot read registry credentials {}", p.display()))?,
        ),
        None => Arc::new(Anonymous),
    })
}
