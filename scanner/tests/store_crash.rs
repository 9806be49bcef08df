//! SIGKILL in the middle of a stream of writes loses no acknowledged verdict and leaves no entry
//! that fails its signature. The test re-executes its own binary as the writer child.

mod store_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use store_support::*;
use verdict_scanner::store::{Lookup, OpenOutcome, TagKey, VerdictStore};

const CHILD_DIR: &str = "VERDICT_STORE_CRASH_CHILD_DIR";
const CHILD_START: &str = "VERDICT_STORE_CRASH_CHILD_START";
const TEST_NAME: &str = "sigkill_during_writes_loses_no_acknowledged_verdict";
const WRITERS: u64 = 3;

#[test]
fn sigkill_during_writes_loses_no_acknowledged_verdict() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START).unwrap().parse().unwrap();
        writer_child(Path::new(&dir), start);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("verdicts");
    let mut all_acked = BTreeSet::new();
    // Kill after different amounts of acknowledged writes, at a slightly varying moment.
    for (round, kill_after) in [40u64, 400, 1500].into_iter().enumerate() {
        let acked = run_and_kill(&path, round as u64 * 10_000_000, kill_after);
        assert!(
            acked.len() as u64 >= kill_after,
            "round {round}: the writer acknowledged only {} writes",
            acked.len()
        );
        all_acked.extend(acked);

        let store = open(&path);
        assert!(
            matches!(store.open_outcome(), OpenOutcome::Opened { .. }),
            "round {round}: the store must reopen cleanly after SIGKILL, got {:?}",
            store.open_outcome()
        );
        for &n in &all_acked {
            match store.get(&key(n), TRUST, Utc::now()).unwrap() {
                Lookup::Hit(v) => assert_eq!(v.result.digest, key(n).digest().to_string()),
                miss => panic!("round {round}: acknowledged verdict {n} is a {miss:?}"),
            }
        }
        let mut entries = 0u64;
        for entry in store.iter_all() {
            let entry = entry.unwrap();
            assert!(
                entry.verdict.is_ok(),
                "round {round}: {:?} fails verification: {:?}",
                entry.key,
                entry.verdict
            );
            entries += 1;
        }
        assert!(entries >= all_acked.len() as u64);
        assert_eq!(
            store.len(),
            entries,
            "round {round}: the persisted count matches the entries"
        );
        // The index was written atomically with the entries.
        assert_eq!(
            store.subjects_for_fingerprint(&fp("leaf")).unwrap().len() as u64,
            entries
        );
        let tag = TagKey::parse("myregistry.azurecr.io/crash/app:latest").unwrap();
        let last_tag = store
            .tag_get(&tag)
            .unwrap()
            .expect("the acknowledged tag write survives");
        let tagged = store
            .iter_all()
            .map(Result::unwrap)
            .any(|e| e.key.is_some_and(|k| *k.digest() == last_tag.digest));
        assert!(tagged, "the tag points at a stored verdict");
    }
}

/// Starts the writer child, waits for `kill_after` acknowledgements, SIGKILLs it and returns every
/// key number it acknowledged (including lines still in the pipe).
fn run_and_kill(path: &Path, start: u64, kill_after: u64) -> BTreeSet<u64> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, path)
        .env(CHILD_START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = BTreeSet::new();
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (acked.len() as u64) < kill_after && Instant::now() < deadline {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break; // the child ended early; the assertion in the caller reports it
        }
        if let Some(n) = line.trim().strip_prefix("ACK ") {
            acked.insert(n.parse::<u64>().unwrap());
        }
    }
    // Land the kill at a varying point inside a write.
    let jitter = Utc::now().timestamp_subsec_micros() % 3000;
    std::thread::sleep(Duration::from_micros(u64::from(jitter)));
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    for l in rest.lines() {
        if let Some(n) = l.trim().strip_prefix("ACK ") {
            acked.insert(n.parse::<u64>().unwrap());
        }
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        !status.success() || (acked.len() as u64) >= kill_after,
        "the writer exited before it was killed: {status}\n{stderr}"
    );
    assert!(
        (acked.len() as u64) >= kill_after,
        "the writer acknowledged {} of {kill_after} writes; stderr:\n{stderr}",
        acked.len()
    );
    acked
}

/// The child: several threads write verdicts (single puts and batches) as fast as they are
/// acknowledged and print `ACK <n>` after each acknowledgement. Bounded in time and count.
fn writer_child(dir: &Path, start: u64) {
    let store = open(dir);
    let tag = TagKey::parse("myregistry.azurecr.io/crash/app:latest").unwrap();
    let until = Instant::now() + Duration::from_secs(90);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let store = &store;
            let tag = &tag;
            s.spawn(move || {
                let mut i = 0u64;
                while Instant::now() < until && i < 200_000 {
                    let batch_len = 1 + (i % 5);
                    let batch: Vec<_> = (0..batch_len)
                        .map(|j| {
                            let n = start + (i + j) * WRITERS + w;
                            (key(n), realistic(&key(n)))
                        })
                        .collect();
                    if batch_len == 1 {
                        store.put(&batch[0].0, &batch[0].1).unwrap();
                    } else {
                        store.put_many(&batch).unwrap();
                    }
                    if w == 0 {
                        store.tag_put(tag, batch[0].0.digest(), Utc::now()).unwrap();
                    }
                    let out: String = (0..batch_len)
                        .map(|j| format!("ACK {}\n", start + (i + j) * WRITERS + w))
                        .collect();
                    print!("{out}");
                    i += batch_len;
                }
            });
        }
    });
}
