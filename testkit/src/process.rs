//! Child-process servers for tests: spawn with output captured to a log file, kill + wait on drop,
//! `kill()` (SIGKILL) and `restart()` with the same arguments, free loopback ports, readiness waits.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How many bytes of a server log an error message quotes.
const LOG_TAIL_BYTES: u64 = 4096;

/// Runs a command to completion: its exit code (-1 when killed by a signal), standard output and
/// standard error as text. Panics when it cannot be started (a test bug, not an outcome).
#[track_caller]
pub fn run_to_end(program: impl AsRef<OsStr>, args: &[&str]) -> (i32, String, String) {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error text for a program that is not on `PATH`, with the command that installs it.
pub fn missing_binary_message(program: &str, apt_package: &str) -> String {
    format!(
        "{program} not found on PATH: install it with \
         `apt-get install -y --no-install-recommends {apt_package}` (or run `make deps`)"
    )
}

/// Looks `program` up on `PATH` (or checks it directly when it contains a `/`).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

/// A free TCP port on 127.0.0.1. Never hands out the same port twice within one test process, so
/// servers started in parallel tests do not collide.
///
/// Picked below the kernel's ephemeral range (`ip_local_port_range`) when there is room: a port
/// taken from that range (what binding port 0 gives) can be handed by the kernel to any outgoing
/// connection — a test's own HTTP client — before the server binds it, which made tests flaky.
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let handed = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    // [10000, low): a window outside the ephemeral range, walked from a per-process start.
    if low > 12_000 {
        let span = low - 10_000;
        let seed = std::process::id().wrapping_mul(2_654_435_761)
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0));
        for _ in 0..256 {
            let step = NEXT.fetch_add(7919, std::sync::atomic::Ordering::Relaxed);
            let Ok(port) = u16::try_from(10_000 + seed.wrapping_add(step) % span) else {
                continue;
            };
            let mut set = handed.lock().unwrap_or_else(|e| e.into_inner());
            if set.contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                set.insert(port);
                return Ok(port);
            }
        }
    }
    for _ in 0..64 {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to pick a free port")?;
        let port = listener.local_addr()?.port();
        let mut set = handed.lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(port) {
            return Ok(port);
        }
    }
    bail!("could not find a free loopback port after 64 attempts")
}

/// The last `max` bytes of a file as (lossy) text; empty when it cannot be read.
pub fn file_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// What to run: program, arguments and the Debian package that provides it.
#[derive(Clone, Debug)]
pub struct ServerCommand {
    /// Short name used in messages, e.g. "docker-registry".
    pub name: String,
    /// Program looked up on `PATH`.
    pub program: String,
    /// Debian package named in the "not found" message.
    pub apt_package: String,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory (defaults to the log directory).
    pub cwd: Option<PathBuf>,
}

impl ServerCommand {
    /// A command named after its program, provided by the Debian package of the same name.
    pub fn new(program: &str) -> Self {
        Self {
            name: program.to_string(),
            program: program.to_string(),
            apt_package: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Sets the Debian package named in the install hint.
    pub fn apt_package(mut self, pkg: &str) -> Self {
        self.apt_package = pkg.to_string();
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }
}

/// Spawns children from one thread that lives as long as the test process, so
/// `PR_SET_PDEATHSIG` (which fires when the *spawning thread* exits) only kills the children
/// when the whole test process dies — no orphaned servers after a crashed or killed test run.
fn spawn_on_reaper_thread(mut cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let tx = SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("testkit-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .expect("starting the testkit spawner thread");
            Mutex::new(tx)
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("testkit spawner thread dropped the request"))?
}

/// A running (or killed) child server. Killed with SIGKILL and reaped on drop.
#[derive(Debug)]
pub struct ChildServer {
    command: ServerCommand,
    resolved: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts `command`, appending its stdout and stderr to `log_path`. Fails with the apt-get
    /// install command when the program is not on `PATH`.
    pub fn spawn(command: ServerCommand, log_path: &Path) -> Result<Self> {
        let resolved = find_on_path(&command.program)
            .ok_or_else(|| anyhow!(missing_binary_message(&command.name, &command.apt_package)))?;
        let mut server = Self {
            command,
            resolved,
            log_path: log_path.to_path_buf(),
            child: None,
        };
        server.start_child()?;
        Ok(server)
    }

    fn start_child(&mut self) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening server log {}", self.log_path.display()))?;
        let log2 = log.try_clone()?;
        let mut cmd = Command::new(&self.resolved);
        cmd.args(&self.command.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        for (k, v) in &self.command.env {
            cmd.env(k, v);
        }
        match (&self.command.cwd, self.log_path.parent()) {
            (Some(dir), _) => {
                cmd.current_dir(dir);
            }
            (None, Some(dir)) if !dir.as_os_str().is_empty() => {
                cmd.current_dir(dir);
            }
            _ => {}
        }
        let child = spawn_on_reaper_thread(cmd).with_context(|| {
            format!(
                "starting {} ({})",
                self.command.name,
                self.resolved.display()
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// The server's name, e.g. "nats-server".
    pub fn name(&self) -> &str {
        &self.command.name
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where stdout/stderr go (appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last 4 KiB of the log.
    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path, LOG_TAIL_BYTES)
    }

    /// `Err` with exit status and log tail when the child has exited (or was killed).
    pub fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} is not running (killed)", self.command.name);
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            bail!(
                "{} exited early with {status}; log tail ({}):\n{}",
                self.command.name,
                self.log_path.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// SIGKILLs the child and reaps it (like a crash). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `grace` for a clean exit, then SIGKILLs.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: plain kill(2) on our own, not yet reaped child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the child if it runs and starts it again with the same program, arguments and log.
    /// The caller waits for readiness again.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.start_child()
    }

    /// Polls `probe` every 50 ms until it returns `true` or `timeout` passes. Fails early when the
    /// child exits; on timeout the error quotes the log tail.
    pub async fn wait_ready<F, Fut>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let ok = tokio::time::timeout(remaining.min(Duration::from_secs(2)), probe())
                .await
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {:?} (waiting for {what}); log tail ({}):\n{}",
                    self.command.name,
                    timeout,
                    self.log_path.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `true` when a TCP connection to `addr` succeeds within 500 ms.
pub async fn tcp_connects(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// An HTTP client for probes and test clients: no proxy, short deadlines.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .timeout(timeout)
        .build()
        .context("building reqwest client")
}

/// `true` when `GET url` answers with a status accepted by `ok_status`.
pub async fn http_get_status_ok(
    client: &reqwest::Client,
    url: &str,
    ok_status: impl Fn(u16) -> bool,
) -> bool {
    match client.get(url).send().await {
        Ok(resp) => ok_status(resp.status().as_u16()),
        Err(_) => false,
    }
}
