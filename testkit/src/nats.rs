//! `nats-server -js` as a child process on free loopback ports with a temp JetStream store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

use crate::process::{ChildServer, ServerCommand, free_port, http_client, http_get_status_ok};

/// A running JetStream-enabled `nats-server` on 127.0.0.1. Killed on drop; the store directory
/// survives [`kill`](Self::kill) + [`restart`](Self::restart).
#[derive(Debug)]
pub struct NatsServer {
    server: ChildServer,
    port: u16,
    monitor_port: u16,
    store_dir: PathBuf,
    startup_timeout: Duration,
    _dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server -a 127.0.0.1 -p <port> -m <monitor port> -js -sd <tempdir>` and waits
    /// until `GET /healthz` answers 200 (2.9 includes JetStream in it) and the client port sends `INFO`.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-")
            .tempdir()
            .context("creating nats temp dir")?;
        let store_dir = dir.path().join("jetstream");
        std::fs::create_dir_all(&store_dir)?;
        let port = free_port()?;
        let monitor_port = free_port()?;
        let command = ServerCommand::new("nats-server")
            .args(["-a", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg("-m")
            .arg(monitor_port.to_string())
            .arg("-js")
            .arg("-sd")
            .arg(&store_dir)
            .args(["--server_name", "testkit"]);
        let server = ChildServer::spawn(command, &dir.path().join("nats.log"))?;
        let mut nats = Self {
            server,
            port,
            monitor_port,
            store_dir,
            startup_timeout: Duration::from_secs(15),
            _dir: dir,
        };
        nats.wait_ready().await?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:MONITOR_PORT` (`/healthz`, `/jsz`, `/varz`).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// JetStream store directory (kept across restarts).
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// Server log (stdout+stderr).
    pub fn log_path(&self) -> &Path {
        self.server.log_path()
    }

    /// The last 4 KiB of the server log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// SIGKILLs the server (like a crash). The store survives, but 2.9 persists deletes and acks
    /// lazily: acknowledged work-queue messages can come back after a crash (at-least-once).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Stops the server cleanly (SIGTERM, up to 10 s, then SIGKILL); JetStream flushes its store.
    pub fn stop(&mut self) {
        self.server.terminate(Duration::from_secs(10));
    }

    /// Kills the server if running and starts it again on the same ports with the same store.
    pub async fn restart(&mut self) -> Result<()> {
        self.server.restart()?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = http_client(Duration::from_secs(1))?;
        let health = format!("{}/healthz", self.monitor_url());
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let timeout = self.startup_timeout;
        self.server
            .wait_ready(
                timeout,
                "GET /healthz and INFO on the client port",
                || async {
                    http_get_status_ok(&client, &health, |s| s == 200).await
                        && sends_info(addr).await
                },
            )
            .await
    }
}

/// `true` when the server at `addr` greets with a NATS `INFO {...}` line.
async fn sends_info(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"INFO ")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(800), probe).await,
        Ok(Some(true))
    )
}
