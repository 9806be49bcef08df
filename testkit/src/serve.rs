//! A real `verdict serve` as a child process: Ratify CRs written to a config dir, loopback ports,
//! `/readyz`, an HTTPS client trusting the server's generated local CA, SIGKILL and restart with
//! the same data dir. Used by `make demo` and by the root crate's server-level tests.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::process::{ChildServer, ServerCommand, free_port, http_client, http_get_status_ok};

/// Gatekeeper's v1 verify path (Ratify v1 values: `isSuccess`, `verifierReports`).
pub const VERIFY_V1: &str = "/ratify/gatekeeper/v1/verify";
/// Gatekeeper's v2 verify path (Ratify v2 values: `succeeded`, `artifactReports`).
pub const VERIFY_V2: &str = "/ratify/gatekeeper/v2/verify";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The verdict binary to run: `$VERDICT_BIN`, else `<target dir>/debug/verdict` with the target
/// dir from `$CARGO_TARGET_DIR` or `target`.
pub fn default_verdict_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VERDICT_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("debug/verdict")
}

/// How to start `verdict serve`.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The `verdict` binary.
    pub bin: PathBuf,
    /// Ratify CRs (YAML), written to `<config dir>/ratify.yaml`.
    pub ratify_yaml: String,
    /// Registries reached over plain HTTP (`--plain-http`).
    pub plain_http: Vec<String>,
    /// The data dir (store, verdict key, TLS material, log). `None`: a temp dir owned by the server.
    pub data_dir: Option<PathBuf>,
    /// More `serve` arguments, e.g. `--verify-deadline-ms 10000`.
    pub extra_args: Vec<OsString>,
    /// Environment variables of the process (e.g. the workload-identity `AZURE_*` set).
    pub env: Vec<(OsString, OsString)>,
    /// Pass `--config <dir>` (off for `--kubernetes`, where the CRs come from the API).
    pub config_files: bool,
}

impl ServeOptions {
    pub fn new(bin: impl Into<PathBuf>, ratify_yaml: impl Into<String>) -> Self {
        Self {
            bin: bin.into(),
            ratify_yaml: ratify_yaml.into(),
            plain_http: Vec::new(),
            data_dir: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            config_files: true,
        }
    }

    /// No `--config`: the configuration comes from elsewhere (`--kubernetes`).
    pub fn without_config_files(mut self) -> Self {
        self.config_files = false;
        self
    }

    /// Sets environment variables of the server process.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a registry reached over plain HTTP.
    pub fn plain_http(mut self, host_port: &str) -> Self {
        self.plain_http.push(host_port.to_string());
        self
    }

    /// Uses (and keeps) `dir` as the data dir.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Appends `serve` arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A running `verdict serve`. SIGKILLed on drop; its temp dirs are removed.
#[derive(Debug)]
pub struct VerdictServer {
    child: ChildServer,
    listen: String,
    ops: String,
    data_dir: PathBuf,
    config_file: PathBuf,
    https: reqwest::Client,
    probe: reqwest::Client,
    _config_dir: tempfile::TempDir,
    _owned_data_dir: Option<tempfile::TempDir>,
}

impl VerdictServer {
    /// Writes the config, starts `verdict serve` on two free loopback ports and waits for
    /// `/readyz`. The log is `<data dir>/verdict.log`.
    pub async fn start(opts: ServeOptions) -> Result<Self> {
        let bin = std::path::absolute(&opts.bin)
            .with_context(|| format!("resolving {}", opts.bin.display()))?;
        ensure!(
            bin.is_file(),
            "verdict binary not found at {}: build it with `cargo build -p verdict` \
             (or pass its path / set VERDICT_BIN)",
            bin.display()
        );
        let config_dir = tempfile::Builder::new()
            .prefix("verdict-config-")
            .tempdir()
            .context("creating the config temp dir")?;
        let config_file = config_dir.path().join("ratify.yaml");
        std::fs::write(&config_file, &opts.ratify_yaml)
            .with_context(|| format!("writing {}", config_file.display()))?;
        let (data_dir, owned_data_dir) = match &opts.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let d = tempfile::Builder::new()
                    .prefix("verdict-data-")
                    .tempdir()
                    .context("creating the data temp dir")?;
                (d.path().to_path_buf(), Some(d))
            }
        };

        let listen = format!("127.0.0.1:{}", free_port()?);
        let ops = format!("127.0.0.1:{}", free_port()?);
        let mut command = ServerCommand::new(&bin.to_string_lossy()).arg("serve");
        if opts.config_files {
            command = command.arg("--config").arg(config_dir.path());
        }
        let mut command = command.arg("--data-dir").arg(&data_dir).args([
            "--listen",
            &listen,
            "--ops-listen",
            &ops,
        ]);
        if !opts.plain_http.is_empty() {
            command = command.arg("--plain-http").arg(opts.plain_http.join(","));
        }
        command = command.args(&opts.extra_args);
        command.env.extend(opts.env.iter().cloned());
        command.name = "verdict serve".into();
        command.cwd = Some(data_dir.clone());
        let mut child = ChildServer::spawn(command, &data_dir.join("verdict.log"))?;
        let probe = http_client(Duration::from_secs(2))?;
        wait_ready(&mut child, &probe, &ops).await?;

        let ca_path = data_dir.join("tls/ca.crt");
        let ca = std::fs::read(&ca_path)
            .with_context(|| format!("reading Verdict's local CA {}", ca_path.display()))?;
        let https = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)
                .with_context(|| format!("parsing {}", ca_path.display()))?])
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTPS client")?;
        Ok(Self {
            child,
            listen,
            ops,
            data_dir,
            config_file,
            https,
            probe,
            _config_dir: config_dir,
            _owned_data_dir: owned_data_dir,
        })
    }

    /// The Gatekeeper API address (`127.0.0.1:PORT`, HTTPS).
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The operations address (`127.0.0.1:PORT`, plain HTTP: health, metrics).
    pub fn ops(&self) -> &str {
        &self.ops
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The sled verdict store directory (`<data dir>/store`).
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// `https://<listen><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.listen)
    }

    /// An HTTPS client trusting the server's local CA (what a Provider's `caBundle` holds).
    pub fn https_client(&self) -> &reqwest::Client {
        &self.https
    }

    /// POSTs a ProviderRequest for `keys` to `path` (see [`provider_request`]).
    pub async fn post_keys(&self, path: &str, keys: &[&str]) -> Result<Value> {
        provider_request(&self.https, &self.url(path), keys).await
    }

    /// Asks the verify endpoint about one image: `Ok(allowed)`, or the item's error.
    pub async fn verify_one(&self, key: &str) -> Result<std::result::Result<bool, String>> {
        let response = self.post_keys(VERIFY_V1, &[key]).await?;
        item_verdict(&response, key)
    }

    /// The sum of the series of `name` on `/metrics` whose labels contain every one of `labels`
    /// (see [`metric_sum`]).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> Result<f64> {
        Ok(metric_sum(&self.metrics().await?, name, labels))
    }

    /// The Prometheus text of `GET /metrics` on the ops port.
    pub async fn metrics(&self) -> Result<String> {
        let url = format!("http://{}/metrics", self.ops);
        self.ops_get(&url)
            .await?
            .text()
            .await
            .with_context(|| format!("reading the answer of GET {url}"))
    }

    /// `GET /status` on the ops port (Key Vault providers' status, ...).
    pub async fn status(&self) -> Result<Value> {
        let url = format!("http://{}/status", self.ops);
        self.ops_get(&url)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the answer of GET {url}"))
    }

    async fn ops_get(&self, url: &str) -> Result<reqwest::Response> {
        let resp = self
            .probe
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        ensure!(
            resp.status().is_success(),
            "GET {url} answered {}",
            resp.status()
        );
        Ok(resp)
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// SIGKILLs the server (a crash) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        self.child.terminate(grace);
    }

    /// Starts the server again (killing it first if it runs) with the same arguments, ports and
    /// data dir, and waits for `/readyz`.
    pub async fn restart(&mut self) -> Result<()> {
        self.child.restart()?;
        wait_ready(&mut self.child, &self.probe, &self.ops).await
    }

    /// The last 4 KiB of the server log.
    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }
}

/// POSTs a ProviderRequest for `keys` to `url` and returns the ProviderResponse. Fails on a
/// transport error, a non-200 status or a body that is not JSON.
pub async fn provider_request(client: &reqwest::Client, url: &str, keys: &[&str]) -> Result<Value> {
    let body = json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    });
    let resp = client
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading the answer of POST {url}"))?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered non-JSON: {text}"))
}

async fn wait_ready(child: &mut ChildServer, probe: &reqwest::Client, ops: &str) -> Result<()> {
    let readyz = format!("http://{ops}/readyz");
    child
        .wait_ready(READY_TIMEOUT, "/readyz", || {
            http_get_status_ok(probe, &readyz, |s| s == 200)
        })
        .await
}

/// `isSuccess` of `key`'s item in a ProviderResponse, or the item's error; an error when the
/// response has a system error or no item for `key`.
pub fn item_verdict(response: &Value, key: &str) -> Result<std::result::Result<bool, String>> {
    let r = &response["response"];
    ensure!(
        r["systemError"].as_str().unwrap_or_default().is_empty(),
        "system error: {response}"
    );
    let item = r["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == key))
        .with_context(|| format!("no item for {key} in {response}"))?;
    if let Some(e) = item["error"].as_str().filter(|e| !e.is_empty()) {
        return Ok(Err(e.to_string()));
    }
    item["value"]["isSuccess"]
        .as_bool()
        .map(Ok)
        .with_context(|| format!("no isSuccess in {item}"))
}

/// `verdict serve` instances by configuration, started on first use and kept: for asking about
/// many images under a few configurations (the interop suites), one server per distinct
/// configuration instead of one per question.
#[derive(Debug)]
pub struct ServerPool {
    bin: PathBuf,
    plain_http: String,
    servers: std::collections::HashMap<String, VerdictServer>,
}

impl ServerPool {
    /// Servers of `bin` reaching `plain_http` (a registry `host:port`) over plain HTTP.
    pub fn new(bin: impl Into<PathBuf>, plain_http: &str) -> Self {
        ServerPool {
            bin: bin.into(),
            plain_http: plain_http.to_owned(),
            servers: Default::default(),
        }
    }

    /// Asks a server configured with the YAML files of `config_dir` (as `verdict verify --config`
    /// reads them) about `key`: `Ok(allowed)` or the item's error. The inline-verification
    /// deadline is generous: these questions are about verdicts, not latency.
    pub async fn verify(
        &mut self,
        config_dir: &Path,
        key: &str,
    ) -> Result<std::result::Result<bool, String>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir)
            .with_context(|| format!("reading {}", config_dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.sort();
        let mut yaml = String::new();
        for f in files {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            yaml.push_str("---\n");
            yaml.push_str(&text);
            if !text.ends_with('\n') {
                yaml.push('\n');
            }
        }
        if !self.servers.contains_key(&yaml) {
            let server = VerdictServer::start(
                ServeOptions::new(&self.bin, yaml.clone())
                    .plain_http(&self.plain_http)
                    .args(["--verify-deadline-ms", "20000"]),
            )
            .await?;
            self.servers.insert(yaml.clone(), server);
        }
        match self.servers.get(&yaml) {
            Some(server) => server.verify_one(key).await,
            None => bail!("no server for the configuration"),
        }
    }
}

/// The sum of the samples in Prometheus text `metrics` of the series starting with `name` whose
/// labels contain every one of `labels` (e.g. `result="allow"`); 0 when there is none.
pub fn metric_sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}
