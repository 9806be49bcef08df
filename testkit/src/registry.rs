//! Debian's `docker-registry` (distribution 2.8) as a child process on a free loopback port.
//! It has no referrers API, so clients exercise the `sha256-<hex>` tag-schema fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::oci::OciClient;
use crate::process::{ChildServer, ServerCommand, free_port, http_client, http_get_status_ok};

/// One `notifications.endpoints` entry: the registry POSTs
/// `application/vnd.docker.distribution.events.v1+json` envelopes to `url`.
#[derive(Clone, Debug)]
pub struct NotificationEndpoint {
    /// Endpoint name (shows up in the registry log).
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// Extra request headers, e.g. `Authorization`.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Failures before the endpoint backs off.
    pub threshold: u32,
    /// Back-off after `threshold` failures.
    pub backoff: Duration,
    /// Target media types whose events are not sent.
    pub ignored_media_types: Vec<String>,
    /// Actions (`push`, `pull`, `delete`, `mount`) whose events are not sent.
    pub ignored_actions: Vec<String>,
}

impl NotificationEndpoint {
    /// An endpoint with distribution's usual settings: 2 s timeout, threshold 5, back-off 1 s.
    pub fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.to_string(),
            url: url.to_string(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(2),
            threshold: 5,
            backoff: Duration::from_secs(1),
            ignored_media_types: Vec::new(),
            ignored_actions: Vec::new(),
        }
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .entry(name.to_string())
            .or_default()
            .push(value.to_string());
        self
    }

    fn to_json(&self) -> Value {
        let dur = |d: Duration| format!("{}ms", d.as_millis());
        let mut v = json!({
            "name": self.name,
            "url": self.url,
            "timeout": dur(self.timeout),
            "threshold": self.threshold,
            "backoff": dur(self.backoff),
        });
        if !self.headers.is_empty() {
            v["headers"] = json!(self.headers);
        }
        if !self.ignored_media_types.is_empty() || !self.ignored_actions.is_empty() {
            v["ignore"] = json!({
                "mediatypes": self.ignored_media_types,
                "actions": self.ignored_actions,
            });
        }
        v
    }
}

/// `auth.token` settings: the registry answers 401 with a Bearer challenge for `realm`/`service`
/// and accepts JWTs issued by `issuer` and signed by a certificate in `rootcertbundle`.
#[derive(Clone, Debug)]
pub struct TokenAuth {
    /// Token endpoint URL put into the `WWW-Authenticate` challenge.
    pub realm: String,
    /// `service` claim / challenge parameter (ACR uses the registry host name).
    pub service: String,
    /// Expected `iss` of tokens.
    pub issuer: String,
    /// PEM bundle with the certificate(s) whose keys sign tokens.
    pub rootcertbundle: PathBuf,
}

/// Options for [`DockerRegistry`].
#[derive(Clone, Debug)]
pub struct DockerRegistryBuilder {
    notifications: Vec<NotificationEndpoint>,
    include_references: bool,
    token_auth: Option<TokenAuth>,
    log_level: String,
    startup_timeout: Duration,
}

impl Default for DockerRegistryBuilder {
    fn default() -> Self {
        Self {
            notifications: Vec::new(),
            include_references: true,
            token_auth: None,
            log_level: "warn".to_string(),
            startup_timeout: Duration::from_secs(15),
        }
    }
}

impl DockerRegistryBuilder {
    /// Adds a push-notification endpoint.
    pub fn notification(mut self, endpoint: NotificationEndpoint) -> Self {
        self.notifications.push(endpoint);
        self
    }

    /// `notifications.events.includereferences` (default true: events list manifest references).
    pub fn include_references(mut self, on: bool) -> Self {
        self.include_references = on;
        self
    }

    /// Enables token (Bearer JWT) auth.
    pub fn token_auth(mut self, auth: TokenAuth) -> Self {
        self.token_auth = Some(auth);
        self
    }

    /// Registry log level (default `warn`; `info`/`debug` help when debugging auth or events).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// How long to wait for `GET /v2/` (default 15 s).
    pub fn startup_timeout(mut self, t: Duration) -> Self {
        self.startup_timeout = t;
        self
    }

    /// Writes the config into a temp dir, starts the registry and waits until it answers `GET /v2/`.
    pub async fn start(self) -> Result<DockerRegistry> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-registry-")
            .tempdir()
            .context("creating registry temp dir")?;
        let storage = dir.path().join("data");
        std::fs::create_dir_all(&storage)?;
        let port = free_port()?;
        let mut config = json!({
            "version": "0.1",
            "log": {"level": self.log_level, "accesslog": {"disabled": true}},
            "storage": {
                "filesystem": {"rootdirectory": storage},
                "delete": {"enabled": true},
                "maintenance": {"uploadpurging": {"enabled": false}},
            },
            "http": {"addr": format!("127.0.0.1:{port}"), "secret": "verdict-testkit-secret"},
        });
        if !self.notifications.is_empty() {
            config["notifications"] = json!({
                "events": {"includereferences": self.include_references},
                "endpoints": self.notifications.iter().map(NotificationEndpoint::to_json).collect::<Vec<_>>(),
            });
        }
        if let Some(auth) = &self.token_auth {
            config["auth"] = json!({"token": {
                "realm": auth.realm,
                "service": auth.service,
                "issuer": auth.issuer,
                "rootcertbundle": auth.rootcertbundle,
            }});
        }
        // JSON is valid YAML; distribution's parser reads it (durations as "1500ms" strings).
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let command = ServerCommand::new("docker-registry")
            .arg("serve")
            .arg(&config_path);
        let server = ChildServer::spawn(command, &dir.path().join("registry.log"))?;
        let mut reg = DockerRegistry {
            server,
            port,
            config_path,
            storage,
            token_auth: self.token_auth.is_some(),
            startup_timeout: self.startup_timeout,
            _dir: dir,
        };
        reg.wait_ready().await?;
        Ok(reg)
    }
}

/// A running `docker-registry serve` on 127.0.0.1 with its own storage. Killed on drop.
#[derive(Debug)]
pub struct DockerRegistry {
    server: ChildServer,
    port: u16,
    config_path: PathBuf,
    storage: PathBuf,
    token_auth: bool,
    startup_timeout: Duration,
    _dir: TempDir,
}

impl DockerRegistry {
    /// Starts a registry with the minimal config (no auth, no notifications).
    pub async fn start() -> Result<Self> {
        Self::builder().start().await
    }

    /// Options: notifications, token auth, log level.
    pub fn builder() -> DockerRegistryBuilder {
        DockerRegistryBuilder::default()
    }

    /// `127.0.0.1:PORT` (what image references use).
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Filesystem storage root (kept across restarts).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Registry log (stdout+stderr).
    pub fn log_path(&self) -> &Path {
        self.server.log_path()
    }

    /// The last 4 KiB of the registry log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// A test client for this registry (plain HTTP, maintains the referrers tag schema).
    pub fn client(&self) -> OciClient {
        OciClient::new(&self.host_port())
    }

    /// SIGKILLs the registry (connections fail until [`restart`](Self::restart)).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Stops the registry cleanly (SIGTERM, up to 10 s, then SIGKILL).
    pub fn stop(&mut self) {
        self.server.terminate(Duration::from_secs(10));
    }

    /// Kills the registry if running and starts it again on the same port with the same storage.
    pub async fn restart(&mut self) -> Result<()> {
        self.server.restart()?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = http_client(Duration::from_secs(1))?;
        let url = format!("{}/v2/", self.url());
        // With token auth `/v2/` answers 401 + challenge once the registry is up.
        let token_auth = self.token_auth;
        let timeout = self.startup_timeout;
        self.server
            .wait_ready(timeout, "GET /v2/", || {
                http_get_status_ok(&client, &url, move |s| s == 200 || (token_auth && s == 401))
            })
            .await
    }
}
