//! Command-line interface: every flag can also be set with a `VERDICT_*` environment variable.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "verdict",
    version,
    about = "Pre-verifies container image signatures and answers OPA Gatekeeper from a signed verdict store"
)]
pub struct Cli {
    /// Log filter, e.g. `info` or `verdict=debug,warn`.
    #[arg(long, global = true, env = "VERDICT_LOG", default_value = "warn")]
    pub log: String,

    /// Log format on standard error.
    #[arg(long, global = true, env = "VERDICT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with Ratify configuration resources (Store, Verifier, KeyManagementProvider, Policy).
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Verify one image's signatures now, against the registry, under the given configuration.
    ///
    /// Exit status: 0 when the image is allowed, 1 when it is denied, 2 when no verdict could be
    /// reached (unreadable configuration, registry unreachable or throttled, bad reference).
    Verify(VerifyArgs),

    /// Verify a Sigstore bundle over a file offline, as `cosign verify-blob --bundle` does: the
    /// Fulcio chain, embedded SCT, Rekor entry (inclusion proof and checkpoint, or SET) and any
    /// RFC 3161 timestamp against a trusted root, and the signer's identity. For debugging a
    /// keyless policy with material in hand.
    ///
    /// Exit status: 0 valid, 1 invalid, 2 unusable input (unreadable file, trusted root or
    /// bundle that is not a Sigstore bundle, bad flags).
    VerifyBlob(VerifyBlobArgs),

    /// Pre-verify existing images: one tag or digest, every tag of a repository
    /// (`REGISTRY/REPO`), or a whole registry (`REGISTRY`, through its catalog). With --nats-url,
    /// hand them to the running servers' workers instead.
    ///
    /// Exit status: 0 all allowed (or queued), 1 some denied, 2 some without a verdict.
    Scan(ScanArgs),

    /// Serve Gatekeeper's external-data API (Ratify-compatible) from the signed verdict store,
    /// verifying misses inline.
    Serve(Box<ServeArgs>),

    /// Re-verify stored verdicts on a running server (the store belongs to its process): all of
    /// them, those resting on one key or certificate, or one repository's. Shows progress and a
    /// summary.
    ///
    /// Exit status: 0 done, 1 done but some subjects got no verdict (registry or keys
    /// unavailable; lookups retry them), 2 the server could not be asked.
    Revalidate(RevalidateArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["all", "key", "scope"])))]
pub struct RevalidateArgs {
    /// Every stored verdict (newest first, up to the server's --revalidate-max).
    #[arg(long)]
    pub all: bool,
    /// Those whose evidence names this fingerprint (`sha256:<hex>` of a certificate or key, as
    /// `/status` and `config check --live` show them, or `kmp:<provider>/<name>@<version>`).
    #[arg(long)]
    pub key: Option<String>,
    /// One repository (`registry/name`), or every repository under a prefix ending in `/`.
    #[arg(long)]
    pub scope: Option<String>,
    /// The server's operations address (`--ops-listen`).
    #[arg(long, env = "VERDICT_OPS_URL", default_value = "http://127.0.0.1:9099")]
    pub ops: String,
    /// Output: progress and a summary for people, or the final report as JSON.
    #[arg(long, short = 'o', env = "VERDICT_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image, e.g. `myregistry.azurecr.io/app:v1` or `...@sha256:<hex>` (tags are resolved).
    #[arg(env = "VERDICT_IMAGE")]
    pub image: String,

    /// Ratify configuration: a YAML file or a directory of them (Store, Verifier,
    /// KeyManagementProvider, Policy).
    #[arg(long, short = 'c', env = "VERDICT_CONFIG")]
    pub config: PathBuf,

    /// Verify as for a pod in this namespace (Gatekeeper's `[namespace]` key prefix): its
    /// NamespacedVerifier / NamespacedPolicy / NamespacedStore apply, falling back per kind to
    /// the cluster-wide resources.
    #[arg(long, short = 'n', env = "VERDICT_NAMESPACE")]
    pub namespace: Option<String>,

    /// Output: a table for people, or Ratify's v1 external-data value as JSON.
    #[arg(long, short = 'o', env = "VERDICT_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("identity").args(["certificate_identity", "certificate_identity_regexp"])))]
#[command(group(clap::ArgGroup::new("issuer").args(["certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])))]
pub struct VerifyBlobArgs {
    /// The signed file.
    pub file: PathBuf,

    /// The Sigstore bundle (`*.sigstore` / `*.sigstore.json`, media type
    /// `application/vnd.dev.sigstore.bundle…`).
    #[arg(long)]
    pub bundle: PathBuf,

    /// Sigstore trusted root (`trusted_root.json`): Fulcio CAs, Rekor and CT log keys, TSAs.
    #[arg(long, env = "VERDICT_SIGSTORE_TRUSTED_ROOT")]
    pub sigstore_trusted_root: PathBuf,

    /// The signer identity the certificate must name (SAN: email or URI), exactly.
    #[arg(long)]
    pub certificate_identity: Option<String>,

    /// The signer identity as a regular expression (matched anywhere unless anchored).
    #[arg(long)]
    pub certificate_identity_regexp: Option<String>,

    /// The OIDC issuer the certificate must name, exactly.
    #[arg(long)]
    pub certificate_oidc_issuer: Option<String>,

    /// The OIDC issuer as a regular expression.
    #[arg(long)]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// Output: lines for people, or the verification report as JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// `registry/repo:tag`, `registry/repo@sha256:…`, `registry/repo` for every tag, or
    /// `registry` for every repository of its catalog.
    pub target: String,

    /// Ratify configuration: a YAML file or a directory of them.
    #[arg(long, short = 'c', env = "VERDICT_CONFIG")]
    pub config: PathBuf,

    /// Verify as for pods in this namespace.
    #[arg(long, short = 'n', env = "VERDICT_NAMESPACE")]
    pub namespace: Option<String>,

    /// Images verified at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// Publish push events to this NATS JetStream (the servers' work queue) instead of verifying
    /// here: the servers store the verdicts and every replica receives them.
    #[arg(long, env = "VERDICT_NATS_URL")]
    pub nats_url: Option<String>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Trust material that Ratify's resources have no field for (shared by `verify` and `serve`).
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Sigstore trusted root (`trusted_root.json`, e.g. from `cosign trusted-root create`): Fulcio
    /// CAs, Rekor and CT log keys, timestamp authorities for keyless Cosign policies and offline
    /// transparency-log checks. Ratify fetches these through TUF; Verdict never fetches at verify time.
    #[arg(long, env = "VERDICT_SIGSTORE_TRUSTED_ROOT")]
    pub sigstore_trusted_root: Option<PathBuf>,

    /// How often `azurekeyvault` KeyManagementProviders without `refreshInterval` are fetched
    /// again (seconds). A failed fetch keeps the last good material and is reported in /status.
    #[arg(long, env = "VERDICT_KMP_REFRESH_SECS", default_value_t = 300)]
    pub kmp_refresh_secs: u64,

    /// Versions trusted per Key Vault certificate or key without a pinned version (newest
    /// enabled ones first; a resource's `versionHistoryLimit` wins).
    #[arg(long, env = "VERDICT_KMP_VERSION_LIMIT", default_value_t = verdict_scanner::kmp::DEFAULT_VERSION_LIMIT)]
    pub kmp_version_limit: usize,
}

/// How registries are reached (shared by `verify` and `serve`).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Registries to reach over plain HTTP (`host:port` or `host`); repeat or comma-separate.
    /// A Store with `useHttp: true` means every registry.
    #[arg(long, env = "VERDICT_PLAIN_HTTP", value_delimiter = ',')]
    pub plain_http: Vec<String>,

    /// Docker config file with registry credentials (`config.json` or a Kubernetes
    /// `.dockerconfigjson`); default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` if present.
    #[arg(long, env = "VERDICT_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,

    /// Deadline for each registry call, in seconds.
    #[arg(long, env = "VERDICT_REGISTRY_TIMEOUT_SECS", default_value_t = 10)]
    pub registry_timeout_secs: u64,

    /// PEM CA certificates trusted for registries, Entra ID, ACR token servers and Key Vault, in
    /// addition to the platform roots and `SSL_CERT_FILE` (a TLS-inspecting proxy's CA, an
    /// emulator's). Repeat or comma-separate.
    #[arg(long, env = "VERDICT_EXTRA_CA_FILE", value_delimiter = ',')]
    pub extra_ca_file: Vec<PathBuf>,

    /// ACR login servers that get Entra ID credentials with a Store's
    /// `authProvider: {name: azureWorkloadIdentity}` (`*.suffix`, `host` or `host:port`).
    #[arg(
        long,
        env = "VERDICT_ACR_ENDPOINTS",
        value_delimiter = ',',
        default_value = "*.azurecr.io,*.azurecr.us,*.azurecr.cn"
    )]
    pub acr_endpoints: Vec<String>,

    /// Deadline of each call to Entra ID, an ACR token exchange or Key Vault, in seconds.
    #[arg(long, env = "VERDICT_AZURE_TIMEOUT_SECS", default_value_t = 10)]
    pub azure_timeout_secs: u64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "kubernetes"])))]
pub struct ServeArgs {
    /// Ratify configuration: a YAML file or a directory of them.
    #[arg(long, short = 'c', env = "VERDICT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Read Ratify's CRs from the cluster (in-cluster service account, or KUBECONFIG) instead
    /// of files, apply their changes as they happen, and write their status like Ratify.
    #[arg(long, env = "VERDICT_KUBERNETES")]
    pub kubernetes: bool,

    /// Namespace of the Lease that elects the one replica writing CR status (in-cluster mode).
    #[arg(
        long,
        env = "VERDICT_LEASE_NAMESPACE",
        default_value = "gatekeeper-system"
    )]
    pub lease_namespace: String,

    /// Where the verdict store, the verdict key and (in local mode) TLS material live.
    #[arg(long, env = "VERDICT_DATA_DIR", default_value = "verdict-data")]
    pub data_dir: PathBuf,

    /// HTTPS address Gatekeeper calls (`/ratify/gatekeeper/v1/verify`, ...).
    #[arg(long, env = "VERDICT_LISTEN", default_value = "0.0.0.0:6001")]
    pub listen: std::net::SocketAddr,

    /// Plain-HTTP address for `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "VERDICT_OPS_LISTEN", default_value = "0.0.0.0:9099")]
    pub ops_listen: std::net::SocketAddr,

    /// Server certificate chain (PEM), reloaded when the file changes. Without --tls-cert and
    /// --tls-key, a local CA and certificate for localhost are generated under the data
    /// directory (`tls/ca.crt` is the CA to trust).
    #[arg(long, env = "VERDICT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Server private key (PEM), reloaded when the file changes.
    #[arg(long, env = "VERDICT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM) of Gatekeeper's client certificate: when set, clients must present
    /// a certificate it issued (mTLS). Reloaded when the file changes.
    #[arg(long, env = "VERDICT_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,

    /// File holding the node's verdict-signing key (a mounted Kubernetes secret in a cluster);
    /// generated on first run when absent. Default: `<data-dir>/verdict.key`.
    #[arg(long, env = "VERDICT_KEY_FILE")]
    pub verdict_key: Option<PathBuf>,

    /// Deadline for answering a cache miss by verifying inline, in milliseconds; keep it below the
    /// Gatekeeper Provider timeout.
    #[arg(long, env = "VERDICT_VERIFY_DEADLINE_MS", default_value_t = 2800)]
    pub verify_deadline_ms: u64,

    /// Seconds a tag → digest answer is reused (from a push event, or a registry HEAD) before
    /// the registry is asked again; 0 asks every time. Bounds how long a tag moved without a
    /// push event reaching Verdict still resolves to the previous digest.
    #[arg(long, env = "VERDICT_TAG_TTL_SECS", default_value_t = 30)]
    pub tag_ttl_secs: u64,

    /// Seconds a tag → digest learnt from a push event is trusted (a retag sends its own event;
    /// this bounds a lost webhook). 0: push events do not feed the tag map.
    #[arg(long, env = "VERDICT_TAG_EVENT_TTL_SECS", default_value_t = 900)]
    pub tag_event_ttl_secs: u64,

    /// Most keys accepted in one request.
    #[arg(long, env = "VERDICT_MAX_REQUEST_KEYS", default_value_t = 1000)]
    pub max_request_keys: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "VERDICT_MAX_REQUEST_BYTES", default_value_t = 1024 * 1024)]
    pub max_request_bytes: usize,

    /// How long a definitive deny is remembered (in memory only) before it is verified again, in
    /// seconds.
    #[arg(long, env = "VERDICT_DENY_TTL_SECS", default_value_t = 30)]
    pub deny_ttl_secs: u64,

    /// How long a deny that may change within seconds is remembered: the image has no signature
    /// yet, or was not found (a CI pipeline that signs right after pushing), in milliseconds.
    #[arg(long, env = "VERDICT_PENDING_DENY_TTL_MS", default_value_t = 3000)]
    pub pending_deny_ttl_ms: u64,

    /// Denies remembered in memory (never on disk); when full, a random one is forgotten.
    #[arg(long, env = "VERDICT_DENY_CACHE_ENTRIES", default_value_t = verdict_cache_api::store_cache::DEFAULT_DENY_ENTRIES)]
    pub deny_cache_entries: usize,

    /// Inline verifications running at once (misses beyond it queue).
    #[arg(long, env = "VERDICT_MAX_VERIFICATIONS", default_value_t = 16)]
    pub max_verifications: usize,

    /// Of those, most against one registry host, so one slow registry cannot take them all.
    #[arg(
        long,
        env = "VERDICT_MAX_VERIFICATIONS_PER_REGISTRY",
        default_value_t = 8
    )]
    pub max_verifications_per_registry: usize,

    /// Subjects being verified or waiting; beyond it a miss is answered VERIFIER_BUSY at once.
    #[arg(long, env = "VERDICT_MAX_PENDING_VERIFICATIONS", default_value_t = 256)]
    pub max_pending_verifications: usize,

    /// Longest a verdict-store read or write may take on the request path, in milliseconds; past
    /// it the key fails closed (STORE_UNAVAILABLE).
    #[arg(long, env = "VERDICT_STORE_TIMEOUT_MS", default_value_t = 1000)]
    pub store_timeout_ms: u64,

    /// How often expired entries are removed from the store, in seconds (0: never).
    #[arg(long, env = "VERDICT_SWEEP_INTERVAL_SECS", default_value_t = 600)]
    pub sweep_interval_secs: u64,

    /// How often the configuration files are compared with what is loaded, in milliseconds (a
    /// ConfigMap update, an edit); `SIGHUP` reloads at once. An invalid change is rejected and
    /// the configuration in force stays (`/readyz` and `/status` say why).
    #[arg(long, env = "VERDICT_CONFIG_POLL_MS", default_value_t = 1000)]
    pub config_poll_ms: u64,

    /// Re-verify every stored verdict on this cron schedule: 5 fields as in a Kubernetes
    /// CronJob (`0 3 * * 1-5` is 03:00 Monday to Friday, UTC) or 6 with seconds first.
    #[arg(long, env = "VERDICT_REVALIDATE_SCHEDULE", value_parser = parse_schedule)]
    pub revalidate_schedule: Option<verdict_scanner::schedule::CronSchedule>,

    /// After a trust change (configuration or Key Vault), re-verify stored verdicts in the
    /// background, newest first, so lookups are hits again (`false`: lazily, at lookups).
    #[arg(long, env = "VERDICT_REVALIDATE_ON_CHANGE", default_value_t = true, action = clap::ArgAction::Set)]
    pub revalidate_on_change: bool,

    /// Verifications a revalidation run has in flight at once (lookups keep priority).
    #[arg(long, env = "VERDICT_REVALIDATE_CONCURRENCY", default_value_t = 2)]
    pub revalidate_concurrency: usize,

    /// Most verdicts one revalidation run re-verifies (the newest); the rest are verified again
    /// when they are looked up.
    #[arg(long, env = "VERDICT_REVALIDATE_MAX", default_value_t = 100_000)]
    pub revalidate_max: usize,

    /// Requests being answered at once; more are answered at once with a systemError (Gatekeeper
    /// denies and retries) instead of queueing without bound.
    #[arg(long, env = "VERDICT_MAX_IN_FLIGHT_REQUESTS", default_value_t = 1024)]
    pub max_in_flight_requests: usize,

    /// Request bytes buffered across all requests at once, in MiB; past it new requests are
    /// refused with a systemError.
    #[arg(long, env = "VERDICT_MAX_BUFFERED_MIB", default_value_t = 64)]
    pub max_buffered_mib: usize,

    /// TLS connections open at once; more are closed at once.
    #[arg(long, env = "VERDICT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Time allowed for a client to send a request's headers, in seconds (Ratify: 5).
    #[arg(long, env = "VERDICT_HEADER_READ_TIMEOUT_SECS", default_value_t = 5)]
    pub header_read_timeout_secs: u64,

    /// A connection (HTTP/1.1 or HTTP/2) with no request for this long is closed, in seconds
    /// (Ratify: 90; Gatekeeper reconnects as needed).
    #[arg(long, env = "VERDICT_IDLE_TIMEOUT_SECS", default_value_t = 90)]
    pub idle_timeout_secs: u64,

    /// Concurrent requests (streams) on one HTTP/2 connection.
    #[arg(long, env = "VERDICT_MAX_CONCURRENT_STREAMS", default_value_t = 128)]
    pub max_concurrent_streams: u32,

    /// Verdicts kept decoded and rendered in memory in front of the store (≈ 2.5 KiB each; 0 turns it off).
    #[arg(long, env = "VERDICT_MEMORY_CACHE_ENTRIES", default_value_t = verdict_cache_api::store_cache::DEFAULT_MEMORY_ENTRIES)]
    pub memory_cache_entries: usize,

    /// The store's own page cache, in MiB (sled `cache_capacity`; it uses 2–3× this in practice).
    #[arg(long, env = "VERDICT_STORE_CACHE_MIB", default_value_t = verdict_scanner::store::DEFAULT_CACHE_MIB)]
    pub store_cache_mib: u64,

    #[command(flatten)]
    pub events: EventArgs,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// A part of `verdict serve` (`--roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Api,
    Events,
    Worker,
}

/// Verify on push: the registry-event receivers and the workers behind them.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// Address of the event receivers (`POST /events/acr`, `/events/eventgrid`,
    /// `/events/registry`): HTTPS with the API's certificate (no client certificate required).
    /// Needs --webhook-secret-file.
    #[arg(long, env = "VERDICT_EVENTS_LISTEN")]
    pub events_listen: Option<std::net::SocketAddr>,

    /// Serve the event receivers over plain HTTP (only where TLS ends at an ingress in front).
    #[arg(long, env = "VERDICT_EVENTS_PLAIN_HTTP")]
    pub events_plain_http: bool,

    /// File holding the shared secret every webhook must carry (`Authorization: Bearer <secret>`
    /// as an ACR webhook custom header, or `?secret=<secret>` in an Event Grid endpoint URL).
    #[arg(long, env = "VERDICT_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,

    /// Header carrying the webhook secret, if not `Authorization` (its value: the secret, or
    /// `Bearer <secret>`).
    #[arg(
        long,
        env = "VERDICT_WEBHOOK_SECRET_HEADER",
        default_value = "authorization"
    )]
    pub webhook_secret_header: String,

    /// NATS server with JetStream (`nats://host:4222`): events are stored durably and shared by
    /// every replica's workers. Without it, an in-process queue gives the same effects minus
    /// durability (single node).
    #[arg(long, env = "VERDICT_NATS_URL")]
    pub nats_url: Option<String>,

    /// What this process does: `api` (follow the verdict stream into the local store, for the
    /// replicas Gatekeeper's Service points at; the HTTPS API itself is always served), `events`
    /// (the receivers, with --events-listen), `worker` (verify events from the work queue).
    /// Splitting them needs --nats-url.
    #[arg(long, env = "VERDICT_ROLES", value_enum, value_delimiter = ',', default_values_t = [Role::Api, Role::Events, Role::Worker])]
    pub roles: Vec<Role>,

    /// Events verified at once by this process's workers.
    #[arg(long, env = "VERDICT_EVENT_WORKERS", default_value_t = 8)]
    pub event_workers: usize,

    /// Deliveries of an event that keeps failing transiently (registry down, 429) before it goes
    /// to the dead-letter stream.
    #[arg(long, env = "VERDICT_EVENT_MAX_DELIVER", default_value_t = 8)]
    pub event_max_deliver: i64,

    /// Seconds without a sign of life from the worker holding an event before JetStream hands it
    /// to another (workers signal progress every half of it while they verify).
    #[arg(long, env = "VERDICT_EVENT_ACK_WAIT_SECS", default_value_t = 60)]
    pub event_ack_wait_secs: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load Ratify v1beta1 resources from a file or directory and report every problem.
    ///
    /// Exit status: 0 when there is no error (warnings allowed), 1 when there are errors,
    /// 2 when the path cannot be read.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A YAML file or a directory of `*.yaml` / `*.yml` files.
    #[arg(env = "VERDICT_CONFIG")]
    pub path: PathBuf,

    /// Output format.
    #[arg(long, env = "VERDICT_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Also fetch every Key Vault KeyManagementProvider now (with the pod's workload identity)
    /// and build the trust configuration: reports each provider's status and versions.
    #[arg(long)]
    pub live: bool,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_schedule(text: &str) -> Result<verdict_scanner::schedule::CronSchedule, String> {
    verdict_scanner::schedule::CronSchedule::parse(text).map_err(|e| e.to_string())
}

/// Logs go to standard error so command output on standard out stays clean.
pub fn init_tracing(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter `{filter}` (--log / VERDICT_LOG)"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot initialise logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_check_parses_path_and_output() {
        let cli =
            Cli::try_parse_from(["verdict", "config", "check", "dir", "--output", "json"]).unwrap();
        let Command::Config(ConfigCommand::Check(args)) = cli.command else {
            panic!("expected config check");
        };
        assert_eq!(args.path, PathBuf::from("dir"));
        assert_eq!(args.output, OutputFormat::Json);
    }
}
