//! Child-process guard: missing binaries, readiness failures with log tails, kill on drop.

use std::time::Duration;

use verdict_testkit::process::{ChildServer, ServerCommand, free_port, missing_binary_message};

#[test]
fn missing_binary_names_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let err = ChildServer::spawn(
        ServerCommand::new("verdict-no-such-server").apt_package("verdict-no-such-pkg"),
        &dir.path().join("log"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "verdict-no-such-server not found on PATH: install it with \
         `apt-get install -y --no-install-recommends verdict-no-such-pkg` (or run `make deps`)"
    );
    assert_eq!(
        missing_binary_message("docker-registry", "docker-registry"),
        "docker-registry not found on PATH: install it with \
         `apt-get install -y --no-install-recommends docker-registry` (or run `make deps`)"
    );
}

#[tokio::test]
async fn readiness_timeout_quotes_the_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = ServerCommand::new("sh").args(["-c", "echo hello-from-child >&2; exec sleep 30"]);
    let mut server = ChildServer::spawn(cmd, &dir.path().join("log")).unwrap();
    let err = server
        .wait_ready(Duration::from_millis(400), "never", || async { false })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not ready after"), "{err}");
    assert!(err.contains("hello-from-child"), "{err}");
}

#[tokio::test]
async fn early_exit_fails_fast_with_status_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = ServerCommand::new("sh").args(["-c", "echo boom >&2; exit 3"]);
    let mut server = ChildServer::spawn(cmd, &dir.path().join("log")).unwrap();
    let started = std::time::Instant::now();
    let err = server
        .wait_ready(Duration::from_secs(20), "never", || async { false })
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.contains("exited early"), "{err}");
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("boom"), "{err}");
}

#[test]
fn drop_and_kill_end_the_child_and_restart_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    let cmd = ServerCommand::new("sleep").arg("30");
    let mut server = ChildServer::spawn(cmd, &dir.path().join("log")).unwrap();
    let pid1 = server.pid().unwrap();
    assert!(alive(pid1));
    server.kill();
    assert!(!alive(pid1));
    assert!(server.pid().is_none());
    assert!(server.check_running().is_err());
    server.restart().unwrap();
    let pid2 = server.pid().unwrap();
    assert_ne!(pid1, pid2);
    assert!(alive(pid2));
    drop(server);
    assert!(!alive(pid2));
}

#[test]
fn free_ports_are_distinct_and_bindable() {
    let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
    let unique: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(unique.len(), ports.len());
    for p in ports {
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }
}

/// Children must not outlive a test process that is killed (no Drop runs then).
#[test]
fn children_die_with_a_killed_test_process() {
    use std::io::{BufRead, BufReader, Write};
    if std::env::var_os("TESTKIT_ORPHAN_CHILD").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let s = ChildServer::spawn(
            ServerCommand::new("sleep").arg("60"),
            &dir.path().join("log"),
        )
        .unwrap();
        println!("PID={}", s.pid().unwrap());
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "children_die_with_a_killed_test_process",
            "--exact",
            "--nocapture",
        ])
        .env("TESTKIT_ORPHAN_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(runner.stdout.take().unwrap());
    let pid: u32 = out
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| l.strip_prefix("PID=").map(|p| p.parse().unwrap()))
        .expect("child test printed the server pid");
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    assert!(alive());
    runner.kill().unwrap();
    runner.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "server {pid} outlived its killed test process");
}
