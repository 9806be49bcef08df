//! The shared reference directory (`../shared` beside the clone) and tests skipped without it.
//!
//! Reference files and seeds under it are part of the test environment (CI always has them): a
//! test that needs one fails when it is missing ([`shared_file`]). Only the third-party vectors
//! may be absent; a test that needs them is then skipped ([`shared_dir`]), and every skip goes
//! through [`skip`], which also records it, so that `make test` can name the skipped tests
//! (cargo hides the output of a passing test, and a skipped test passes).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What to do when the shared directory is not where the tests look for it.
const HOW_TO_GET_IT: &str = "set VERDICT_SHARED_DIR to the shared reference directory, or place \
                             it as `shared` beside the clone (../shared)";

/// `$VERDICT_SHARED_DIR`, else `../shared` next to the repository. Not checked: see
/// [`shared_file`] and [`shared_dir`].
pub fn shared_root() -> PathBuf {
    match std::env::var_os("VERDICT_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// `rel` (a file or directory) under the shared directory, which must exist: fails the test,
/// saying what is missing and how to get it, when it does not.
#[track_caller]
pub fn shared_file(rel: &str) -> PathBuf {
    match existing(&shared_root(), rel) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

fn existing(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let path = root.join(rel);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "../shared/{rel} is missing ({}); the reference files are part of the test \
             environment: {HOW_TO_GET_IT}",
            path.display()
        ))
    }
}

/// The shared directory, for a test that needs the third-party vectors under it: `None` when
/// `vectors/` is absent, after recording the running test as skipped ([`skip`]), so the test can
/// return early.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = shared_root();
    let vectors = dir.join("vectors");
    if vectors.is_dir() {
        Some(dir)
    } else {
        skip(&format!(
            "../shared/vectors not found ({}); {HOW_TO_GET_IT}",
            vectors.display()
        ));
        None
    }
}

/// Where skips are recorded: `$CARGO_TARGET_DIR/verdict-skipped`, else `verdict-skipped` in the
/// target directory holding the running test binary (`<target>/debug/deps/<test>-<hash>`).
/// `make unit` empties it before the tests and summarises it after them.
pub fn skipped_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("verdict-skipped")
}

/// Marks the running test as skipped because of `reason`: prints it and appends a line to a
/// file in [`skipped_dir`], so the skip stays visible although the test passes. The caller
/// returns right after. Fails the test when the record cannot be written (a skip nobody sees is
/// what this prevents).
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("(unnamed test)")
        .to_owned();
    let binary = test_binary();
    eprintln!("skipped: {binary}::{test}: {reason}");
    let dir = skipped_dir();
    if let Err(e) = record(&dir, &binary, &test, reason) {
        panic!(
            "could not record the skip of {test} in {}: {e}",
            dir.display()
        );
    }
}

/// The running test binary without cargo's hash (`notation_vectors-0123abcd` → `notation_vectors`).
fn test_binary() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "(test)".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

/// Appends `binary<TAB>test<TAB>reason` to this process's file in `dir` (one file per process,
/// one write per line, serialised within the process).
fn record(dir: &Path, binary: &str, test: &str, reason: &str) -> std::io::Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(dir)?;
    let one_line = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let line = format!(
        "{}\t{}\t{}\n",
        one_line(binary),
        one_line(test),
        one_line(reason)
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{binary}.{}", std::process::id())))?
        .write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_reference_file_says_what_is_missing_and_how_to_get_it() {
        let root = tempfile::tempdir().unwrap();
        let e = existing(root.path(), "reference/examples/x.json").unwrap_err();
        assert!(
            e.contains("../shared/reference/examples/x.json is missing"),
            "{e}"
        );
        assert!(e.contains("VERDICT_SHARED_DIR"), "{e}");
        assert!(e.contains("beside the clone"), "{e}");

        std::fs::create_dir_all(root.path().join("reference/examples")).unwrap();
        std::fs::write(root.path().join("reference/examples/x.json"), "{}").unwrap();
        assert_eq!(
            existing(root.path(), "reference/examples/x.json").unwrap(),
            root.path().join("reference/examples/x.json")
        );
    }

    #[test]
    fn skips_are_recorded_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), "vectors", "a_test", "no\tvectors\nhere").unwrap();
        record(dir.path(), "vectors", "b_test", "again").unwrap();
        let file = dir.path().join(format!("vectors.{}", std::process::id()));
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            "vectors\ta_test\tno vectors here\nvectors\tb_test\tagain\n"
        );
    }
}
