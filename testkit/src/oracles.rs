//! The upstream tools the interop tests compare Verdict against, as their users run them: the
//! `notation`, `cosign` and `oras` CLIs, a registry that serves the OCI referrers API and
//! Sigstore's RFC 3161 timestamp authority (`timestamp-server`). Built from their
//! Go modules at pinned versions by `scripts/install-deps.sh --oracles` (`make test-deps`) into
//! `~/.cache/verdict/tools/bin` (`$VERDICT_TOOLS_DIR/bin`); a test that needs a missing one fails
//! with that command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tempfile::TempDir;

use crate::oci::OciClient;
use crate::process::{ChildServer, ServerCommand, free_port, http_client, http_get_status_ok};

/// Where `install-deps.sh --oracles` links the tools.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("VERDICT_TOOLS_DIR") {
        Some(d) => PathBuf::from(d).join("bin"),
        None => {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(".cache/verdict/tools/bin")
        }
    }
}

/// The path of tool `name`, or an error saying how to build it.
pub fn tool(name: &str) -> Result<PathBuf> {
    let path = tools_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{name} not found at {}: build the interop tools with `scripts/install-deps.sh --oracles` (or `make test-deps`; needs Go >= 1.26 and the Go module proxy)",
            path.display()
        )
    }
}

/// Runs `cmd`, returning its output; an error only when it could not be started.
fn run(mut cmd: Command, what: &str) -> Result<Output> {
    cmd.output().with_context(|| format!("running {what}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running in-memory registry with the referrers API (go-containerregistry's, through our
/// `testkit/tools/referrers-registry`) on 127.0.0.1. Killed on drop; its content dies with it.
#[derive(Debug)]
pub struct ReferrersRegistry {
    server: ChildServer,
    port: u16,
    _dir: TempDir,
}

impl ReferrersRegistry {
    pub async fn start() -> Result<Self> {
        let program = tool("referrers-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("testkit-referrers-registry-")
            .tempdir()?;
        let port = free_port()?;
        let command = ServerCommand::new(&program.to_string_lossy())
            .args(["-addr", &format!("127.0.0.1:{port}")]);
        let mut server = ChildServer::spawn(command, &dir.path().join("registry.log"))?;
        let client = http_client(Duration::from_secs(1))?;
        let url = format!("http://127.0.0.1:{port}/v2/");
        server
            .wait_ready(Duration::from_secs(15), "GET /v2/", || {
                http_get_status_ok(&client, &url, |s| s == 200)
            })
            .await?;
        Ok(ReferrersRegistry {
            server,
            port,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> OciClient {
        OciClient::new(&self.host_port())
    }

    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}

/// The two registries every interop case runs against.
#[derive(Debug)]
pub enum InteropRegistry {
    /// docker-registry 2.8: no referrers API, signatures found through the tag schema.
    Distribution(crate::DockerRegistry),
    /// go-containerregistry's registry with the referrers API.
    Referrers(ReferrersRegistry),
}

impl InteropRegistry {
    pub fn host(&self) -> String {
        match self {
            InteropRegistry::Distribution(r) => r.host_port(),
            InteropRegistry::Referrers(r) => r.host_port(),
        }
    }

    pub fn client(&self) -> OciClient {
        match self {
            InteropRegistry::Distribution(r) => r.client(),
            InteropRegistry::Referrers(r) => r.client(),
        }
    }

    pub fn has_referrers_api(&self) -> bool {
        matches!(self, InteropRegistry::Referrers(_))
    }

    /// How the matrix tables name it.
    pub fn kind(&self) -> &'static str {
        match self {
            InteropRegistry::Distribution(_) => "tag schema (docker-registry 2.8)",
            InteropRegistry::Referrers(_) => "referrers API",
        }
    }

    pub fn log_tail(&self) -> String {
        match self {
            InteropRegistry::Distribution(r) => r.log_tail(),
            InteropRegistry::Referrers(r) => r.log_tail(),
        }
    }
}

/// The verdicts one interop case got: the upstream tool's, `verdict verify`'s and a running
/// `verdict serve`'s (`Err` holds the item's error).
#[derive(Debug)]
pub struct Verdicts {
    pub tool: bool,
    pub verify: bool,
    pub serve: std::result::Result<bool, String>,
}

/// The agreement table of one interop matrix: prints a row per case and collects every case
/// where the tool is not as expected or Verdict (verify or serve) differs from its expected
/// verdict — the tool's, or the opposite where Verdict differs on purpose.
#[derive(Debug)]
pub struct Agreement {
    tool: &'static str,
    kind: &'static str,
    cases: usize,
    failures: Vec<String>,
}

impl Agreement {
    /// A table comparing `tool` (e.g. `notation`) with Verdict in registry `kind`.
    pub fn new(tool: &'static str, kind: &'static str) -> Self {
        Agreement {
            tool,
            kind,
            cases: 0,
            failures: Vec::new(),
        }
    }

    /// Records case `name`; `details` (what each side printed) is only built for a failure.
    pub fn check(
        &mut self,
        name: &str,
        expect_allow: bool,
        verdict_differs: bool,
        got: &Verdicts,
        details: impl FnOnce() -> String,
    ) {
        let word = |b: bool| if b { "allow" } else { "deny" };
        let served = match &got.serve {
            Ok(b) => word(*b).to_owned(),
            Err(e) => format!("error {e}"),
        };
        let verdict_expected = expect_allow != verdict_differs;
        eprintln!(
            "| {} | {name} | {}: {} | verdict verify: {} | verdict serve: {served} | expected: {}{} |",
            self.kind,
            self.tool,
            word(got.tool),
            word(got.verify),
            word(expect_allow),
            if verdict_differs {
                " (Verdict: the opposite, on purpose)"
            } else {
                ""
            }
        );
        self.cases += 1;
        if got.tool != expect_allow
            || got.verify != verdict_expected
            || got.serve.as_ref() != Ok(&verdict_expected)
        {
            self.failures.push(format!(
                "{name} ({}): expected {}, {} {}, verdict verify {}, verdict serve {served}\n{}",
                self.kind,
                word(expect_allow),
                self.tool,
                word(got.tool),
                word(got.verify),
                details()
            ));
        }
    }

    /// Ok when every case agreed; otherwise an error listing the disagreements and `log`.
    pub fn finish(self, log: &str) -> Result<()> {
        if self.failures.is_empty() {
            return Ok(());
        }
        bail!(
            "{} of {} cases disagree:\n{}\n--- registry log:\n{log}",
            self.failures.len(),
            self.cases,
            self.failures.join("\n\n"),
        )
    }
}

/// Sigstore's RFC 3161 timestamp authority (`timestamp-server serve`, in-memory signer: a fresh
/// root → intermediate → TSA chain per start) on 127.0.0.1, NTP monitoring off (no network).
/// Killed on drop.
///
/// Its metrics listener is fixed at `:2112` (`pkg/server/prometheus.go`), so one runs at a time
/// per test process: `start` waits for the previous one to be dropped. Another program holding
/// port 2112 makes `start` fail with the server's "address already in use".
#[derive(Debug)]
pub struct TimestampServer {
    server: ChildServer,
    port: u16,
    dir: TempDir,
    _one_at_a_time: tokio::sync::OwnedMutexGuard<()>,
}

impl TimestampServer {
    pub async fn start() -> Result<Self> {
        static ONE: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
            std::sync::LazyLock::new(Default::default);
        let one_at_a_time = std::sync::Arc::clone(&ONE).lock_owned().await;
        let program = tool("timestamp-server")?;
        let dir = tempfile::Builder::new()
            .prefix("testkit-timestamp-server-")
            .tempdir()?;
        let port = free_port()?;
        let command = ServerCommand::new(&program.to_string_lossy()).args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--timestamp-signer",
            "memory",
            "--include-chain-in-response",
            "--disable-ntp-monitoring",
        ]);
        let mut server = ChildServer::spawn(command, &dir.path().join("tsa.log"))?;
        let client = http_client(Duration::from_secs(1))?;
        let url = format!("http://127.0.0.1:{port}/ping");
        server
            .wait_ready(Duration::from_secs(15), "GET /ping", || {
                http_get_status_ok(&client, &url, |s| s == 200)
            })
            .await?;
        Ok(TimestampServer {
            server,
            port,
            dir,
            _one_at_a_time: one_at_a_time,
        })
    }

    /// `http://127.0.0.1:PORT/api/v1/timestamp` (RFC 3161 over HTTP POST).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/timestamp", self.port)
    }

    /// The TSA's certificate chain as PEM (TSA certificate first, root last).
    pub async fn chain_pem(&self) -> Result<String> {
        let url = format!("{}/certchain", self.url());
        let resp = http_client(Duration::from_secs(5))?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!("GET {url}: {}", resp.status());
        }
        Ok(resp.text().await?)
    }

    /// The chain's root certificate, written to a PEM file (what `--timestamp-root-cert` and a
    /// `tsa` trust store take).
    pub async fn root_pem_file(&self) -> Result<PathBuf> {
        let chain = self.chain_pem().await?;
        let start = chain
            .rfind("-----BEGIN CERTIFICATE-----")
            .ok_or_else(|| anyhow!("the TSA chain has no certificate: {chain}"))?;
        let path = self.dir.path().join("tsa-root.pem");
        std::fs::write(&path, &chain[start..])?;
        Ok(path)
    }

    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}

/// The `notation` CLI with a configuration directory of its own (`XDG_CONFIG_HOME`): its signing
/// keys, trust stores and trust policy never touch the user's.
#[derive(Debug)]
pub struct Notation {
    program: PathBuf,
    home: TempDir,
}

/// `notation sign` options the interop cases vary.
#[derive(Clone, Debug, Default)]
pub struct SignOptions<'a> {
    /// `jws` (default) or `cose`.
    pub format: Option<&'a str>,
    /// The signing key's name (`--key`); the default key otherwise.
    pub key: Option<&'a str>,
    /// `--force-referrers-tag=false`: the referrers API where the registry has it.
    pub referrers_api: bool,
    /// `--expiry`, e.g. `1s`.
    pub expiry: Option<&'a str>,
    /// `--user-metadata key=value` entries (signed annotations).
    pub metadata: &'a [&'a str],
    /// `--timestamp-url` and `--timestamp-root-cert`: an RFC 3161 countersignature.
    pub timestamp: Option<(&'a str, &'a Path)>,
}

impl Notation {
    pub fn new() -> Result<Self> {
        Ok(Notation {
            program: tool("notation")?,
            home: tempfile::Builder::new()
                .prefix("testkit-notation-")
                .tempdir()?,
        })
    }

    /// `$XDG_CONFIG_HOME/notation`.
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("notation")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("XDG_CONFIG_HOME", self.home.path())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("HOME", self.home.path())
            .env_remove("NOTATION_USERNAME")
            .env_remove("NOTATION_PASSWORD");
        cmd
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(args);
        let out = run(cmd, &format!("notation {}", args.join(" ")))?;
        if !out.status.success() {
            bail!("notation {} failed: {}", args.join(" "), text(&out));
        }
        Ok(text(&out))
    }

    /// `notation cert generate-test [--default] NAME` (RSA, self-signed, its certificate added to
    /// trust store `ca:NAME`); returns the certificate's path.
    pub fn generate_test_key(
        &self,
        name: &str,
        default: bool,
        bits: Option<u32>,
    ) -> Result<PathBuf> {
        let bits = bits.map(|b| b.to_string());
        let mut args = vec!["cert", "generate-test"];
        if default {
            args.push("--default");
        }
        if let Some(b) = &bits {
            args.extend(["--bits", b]);
        }
        args.push(name);
        self.ok(&args)?;
        let cert = self
            .config_dir()
            .join("localkeys")
            .join(format!("{name}.crt"));
        if !cert.is_file() {
            bail!("notation did not write {}", cert.display());
        }
        Ok(cert)
    }

    /// Registers a key and certificate chain of our own (PEM files; leaf first) as signing key
    /// `name`, as `signingkeys.json` lists local keys.
    pub fn add_signing_key(&self, name: &str, key_pem: &str, chain_pem: &str) -> Result<()> {
        let dir = self.config_dir().join("localkeys");
        std::fs::create_dir_all(&dir)?;
        let (key, cert) = (
            dir.join(format!("{name}.key")),
            dir.join(format!("{name}.crt")),
        );
        std::fs::write(&key, key_pem)?;
        std::fs::write(&cert, chain_pem)?;
        let path = self.config_dir().join("signingkeys.json");
        let mut doc: serde_json::Value = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(_) => serde_json::json!({"keys": []}),
        };
        let keys = doc["keys"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("signingkeys.json has no keys list"))?;
        keys.retain(|k| k["name"] != name);
        keys.push(serde_json::json!({"name": name, "keyPath": key, "certPath": cert}));
        std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)?;
        Ok(())
    }

    /// Replaces every trust store with `stores` (`(type, name, certificate PEM files)`).
    pub fn set_trust_stores(&self, stores: &[(&str, &str, &[&Path])]) -> Result<()> {
        let root = self.config_dir().join("truststore/x509");
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        for (ty, name, certs) in stores {
            let dir = root.join(ty).join(name);
            std::fs::create_dir_all(&dir)?;
            for (i, cert) in certs.iter().enumerate() {
                std::fs::copy(cert, dir.join(format!("cert-{i}.pem")))
                    .with_context(|| format!("copying {}", cert.display()))?;
            }
        }
        Ok(())
    }

    /// Writes the trust policy (`trustpolicy.json`, the one file notation v1.3 reads).
    pub fn set_trust_policy(&self, policy: &serde_json::Value) -> Result<()> {
        std::fs::create_dir_all(self.config_dir())?;
        std::fs::write(
            self.config_dir().join("trustpolicy.json"),
            serde_json::to_vec_pretty(policy)?,
        )?;
        Ok(())
    }

    /// `notation sign --insecure-registry REFERENCE` with `options`.
    pub fn sign(&self, reference: &str, options: &SignOptions<'_>) -> Result<()> {
        let mut args: Vec<String> = vec!["sign".into(), "--insecure-registry".into()];
        if let Some(f) = options.format {
            args.extend(["--signature-format".into(), f.into()]);
        }
        if let Some(k) = options.key {
            args.extend(["--key".into(), k.into()]);
        }
        if options.referrers_api {
            args.push("--force-referrers-tag=false".into());
        }
        if let Some(e) = options.expiry {
            args.extend(["--expiry".into(), e.into()]);
        }
        for m in options.metadata {
            args.extend(["--user-metadata".into(), (*m).into()]);
        }
        if let Some((url, root)) = options.timestamp {
            args.extend([
                "--timestamp-url".into(),
                url.into(),
                "--timestamp-root-cert".into(),
                root.display().to_string(),
            ]);
        }
        args.push(reference.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args).map(drop)
    }

    /// `notation verify --insecure-registry REFERENCE`: whether notation accepts it, and what it
    /// printed.
    pub fn verify(&self, reference: &str) -> Result<(bool, String)> {
        let mut cmd = self.command();
        cmd.args(["verify", "--insecure-registry", reference]);
        let out = run(cmd, "notation verify")?;
        Ok((out.status.success(), text(&out)))
    }
}

/// The `cosign` CLI (v3) with a home of its own (`HOME`, no TUF cache, no credentials), signing
/// offline with keys: no transparency log, no Fulcio, no TUF-provided signing config.
#[derive(Debug)]
pub struct Cosign {
    program: PathBuf,
    home: TempDir,
}

/// A key pair from `cosign generate-key-pair` (empty password).
#[derive(Clone, Debug)]
pub struct CosignKey {
    pub private: PathBuf,
    pub public: PathBuf,
}

/// How `cosign sign` writes the signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CosignLayout {
    /// cosign v3's default: a Sigstore bundle (v0.3, DSSE) pushed as an OCI 1.1 referrer (the
    /// referrers tag schema where the registry lacks the API).
    #[default]
    Bundle,
    /// `--new-bundle-format=false`: the legacy `sha256-<hex>.sig` tag.
    LegacyTag,
    /// `--new-bundle-format=false --registry-referrers-mode=oci-1-1`: the legacy signature
    /// manifest pushed as a referrer (experimental in cosign).
    LegacyReferrer,
}

impl Cosign {
    pub fn new() -> Result<Self> {
        Ok(Cosign {
            program: tool("cosign")?,
            home: tempfile::Builder::new()
                .prefix("testkit-cosign-")
                .tempdir()?,
        })
    }

    fn command(&self, experimental: bool) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("HOME", self.home.path())
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env("TUF_ROOT", self.home.path().join("tuf"))
            .env("COSIGN_PASSWORD", "")
            .env_remove("COSIGN_EXPERIMENTAL")
            .env_remove("SIGSTORE_ROOT_FILE");
        if experimental {
            cmd.env("COSIGN_EXPERIMENTAL", "1");
        }
        cmd
    }

    fn ok(&self, mut cmd: Command, what: &str) -> Result<String> {
        cmd.stdin(std::process::Stdio::null());
        let out = run(cmd, what)?;
        if !out.status.success() {
            bail!("{what} failed: {}", text(&out));
        }
        Ok(text(&out))
    }

    /// `cosign generate-key-pair` into a directory named `name`.
    pub fn generate_key_pair(&self, name: &str) -> Result<CosignKey> {
        let dir = self.home.path().join("keys").join(name);
        std::fs::create_dir_all(&dir)?;
        let mut cmd = self.command(false);
        cmd.current_dir(&dir).arg("generate-key-pair");
        self.ok(cmd, "cosign generate-key-pair")?;
        Ok(CosignKey {
            private: dir.join("cosign.key"),
            public: dir.join("cosign.pub"),
        })
    }

    /// `cosign sign --key KEY --tlog-upload=false --use-signing-config=false -y REFERENCE`, with
    /// `annotations` (`-a key=value`, signed into the payload).
    pub fn sign(
        &self,
        reference: &str,
        key: &CosignKey,
        layout: CosignLayout,
        annotations: &[&str],
    ) -> Result<()> {
        let mut cmd = self.command(layout == CosignLayout::LegacyReferrer);
        cmd.arg("sign").arg("--key").arg(&key.private).args([
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--allow-http-registry",
            "--allow-insecure-registry",
            "-y",
        ]);
        match layout {
            CosignLayout::Bundle => {}
            CosignLayout::LegacyTag => {
                cmd.arg("--new-bundle-format=false");
            }
            CosignLayout::LegacyReferrer => {
                cmd.args([
                    "--new-bundle-format=false",
                    "--registry-referrers-mode=oci-1-1",
                ]);
            }
        }
        for a in annotations {
            cmd.args(["-a", a]);
        }
        cmd.arg(reference);
        self.ok(cmd, "cosign sign").map(drop)
    }

    /// `cosign verify --key PUB --insecure-ignore-tlog=true REFERENCE` (and
    /// `--experimental-oci11` to find legacy signatures among the referrers): whether cosign
    /// accepts it, and what it printed.
    pub fn verify(&self, reference: &str, key: &Path, oci11: bool) -> Result<(bool, String)> {
        let mut cmd = self.command(oci11);
        cmd.arg("verify").arg("--key").arg(key).args([
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--allow-insecure-registry",
        ]);
        if oci11 {
            cmd.arg("--experimental-oci11");
        }
        cmd.arg(reference).stdin(std::process::Stdio::null());
        let out = run(cmd, "cosign verify")?;
        Ok((out.status.success(), text(&out)))
    }
}

/// `oras attach --plain-http --artifact-type TYPE REFERENCE FILE` (a referrer that is not a
/// signature: an SBOM, a scan report); `referrers_api: false` forces the tag schema.
pub fn oras_attach(
    reference: &str,
    artifact_type: &str,
    file: &Path,
    tag_schema: bool,
) -> Result<()> {
    let mut cmd = Command::new(tool("oras")?);
    let dir = file
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", file.display()))?;
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", file.display()))?;
    cmd.current_dir(dir)
        .args(["attach", "--plain-http", "--artifact-type", artifact_type]);
    if tag_schema {
        cmd.arg("--distribution-spec").arg("v1.1-referrers-tag");
    }
    cmd.arg(reference).arg(name);
    let out = run(cmd, "oras attach")?;
    if !out.status.success() {
        bail!("oras attach failed: {}", text(&out));
    }
    Ok(())
}
