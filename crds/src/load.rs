//! Loading configuration from files and directories of multi-document YAML.

use std::path::{Path, PathBuf};

use crate::decode::{decode_resource, partial_checks};
use crate::diag::{Diagnostic, FieldPath, Pos, Severity};
use crate::error::CrdError;
use crate::model::Resource;
use crate::validate::{CrossIssue, cross};
use crate::yaml::{Positions, parse_documents, to_json};

/// Where a resource was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    /// 0-based index of the YAML document in the file.
    pub document: usize,
    /// 1-based line where the object starts.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A loaded resource with its origin and the positions of its fields.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub resource: T,
    pub source: Source,
    pub positions: Positions,
    /// True when an error diagnostic concerns this resource: do not use it.
    pub has_errors: bool,
}

impl<T> Loaded<T> {
    /// Source position of a field of this resource (or of its nearest existing parent).
    pub fn position_of(&self, path: &FieldPath) -> Option<Pos> {
        self.positions.key_pos(path)
    }
}

/// Everything found in the files: resources and problems.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Every document that could be typed, including ones with validation errors
    /// (see [`Loaded::has_errors`]).
    pub resources: Vec<Loaded<Resource>>,
    /// Errors and warnings, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Resources without errors.
    pub fn valid_resources(&self) -> impl Iterator<Item = &Loaded<Resource>> {
        self.resources.iter().filter(|r| !r.has_errors)
    }
}

/// Value-related diagnostics point at the value; everything else at the key.
fn locate(d: &mut Diagnostic, positions: &Positions) {
    if d.line > 0 {
        return;
    }
    let target = d.anchor.clone().unwrap_or_else(|| d.path.clone());
    let pos = if matches!(d.code, "invalid-type" | "unexpanded-variable") {
        positions.value_pos(&target)
    } else {
        positions.key_pos(&target)
    };
    if let Some(p) = pos {
        d.line = p.line;
        d.column = p.column;
    }
}

#[derive(Default)]
struct Loader {
    report: LoadReport,
}

impl Loader {
    fn push(&mut self, file: &Path, document: Option<usize>, mut d: Diagnostic) {
        d.file = Some(file.to_path_buf());
        d.document = document;
        self.report.diagnostics.push(d);
    }

    fn text(&mut self, file: &Path, text: &str) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, doc) in parse_documents(text).into_iter().enumerate() {
            for d in doc.diagnostics {
                self.push(file, Some(index), d);
            }
            let Some(root) = doc.root else { continue };
            let mut conv = Vec::new();
            let (value, positions) = to_json(&root, &mut conv);
            for d in conv {
                self.push(file, Some(index), d);
            }
            if value.is_null() && !doc.broken {
                continue;
            }
            if doc.broken {
                for mut d in partial_checks(&value) {
                    locate(&mut d, &positions);
                    self.push(file, Some(index), d);
                }
                continue;
            }
            let decoded = decode_resource(&value);
            for mut d in decoded.diagnostics {
                locate(&mut d, &positions);
                self.push(file, Some(index), d);
            }
            if let Some(resource) = decoded.resource {
                self.report.resources.push(Loaded {
                    resource,
                    source: Source {
                        file: file.to_path_buf(),
                        document: index,
                        line: root.start.line,
                    },
                    positions,
                    has_errors: false,
                });
            }
        }
    }

    fn file(&mut self, file: &Path) {
        self.report.files.push(file.to_path_buf());
        match std::fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => self.text(file, &text),
                Err(e) => self.push(
                    file,
                    None,
                    Diagnostic::error(
                        "not-utf8",
                        FieldPath::root(),
                        format!(
                            "the file is not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                    .with_fix("save the file as UTF-8"),
                ),
            },
            Err(e) => self.push(
                file,
                None,
                Diagnostic::error(
                    "unreadable-file",
                    FieldPath::root(),
                    format!("cannot read the file: {e}"),
                )
                .with_fix("check that the file exists and is readable"),
            ),
        }
    }

    fn finish(mut self) -> LoadReport {
        let refs: Vec<&Resource> = self.report.resources.iter().map(|l| &l.resource).collect();
        let issues: Vec<CrossIssue> = cross(&refs);
        for CrossIssue {
            index,
            mut diagnostic,
            related,
        } in issues
        {
            let loaded = &self.report.resources[index];
            if let Some(r) = related {
                let other = &self.report.resources[r].source;
                diagnostic.message = format!("{} (see {other})", diagnostic.message);
            }
            locate(&mut diagnostic, &loaded.positions);
            diagnostic.file = Some(loaded.source.file.clone());
            diagnostic.document = Some(loaded.source.document);
            self.report.diagnostics.push(diagnostic);
        }
        let errors: Vec<(Option<PathBuf>, Option<usize>)> = self
            .report
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| (d.file.clone(), d.document))
            .collect();
        for l in &mut self.report.resources {
            l.has_errors = errors.iter().any(|(f, d)| {
                f.as_deref() == Some(l.source.file.as_path())
                    && (d.is_none() || *d == Some(l.source.document))
            });
        }
        self.report
            .diagnostics
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        self.report
    }
}

fn is_yaml(p: &Path) -> bool {
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    !hidden
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Loads a file, or every `*.yaml`/`*.yml` file of a directory (not recursive, sorted by name,
/// hidden files skipped: this reads Kubernetes ConfigMap mounts correctly).
///
/// Fails only when `path` itself cannot be read; problems inside files (including unreadable
/// files of a directory) are diagnostics in the report.
pub fn load_path(path: &Path) -> Result<LoadReport, CrdError> {
    let meta = std::fs::metadata(path).map_err(|source| CrdError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return load_files(&[path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(CrdError::NotFileOrDirectory {
            path: path.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|source| CrdError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CrdError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        if is_yaml(&p) && std::fs::metadata(&p).map(|m| m.is_file()).unwrap_or(true) {
            files.push(p);
        }
    }
    files.sort();
    let mut report = load_files(&files)?;
    if files.is_empty() {
        let mut d = Diagnostic::error(
            "no-files",
            FieldPath::root(),
            "the directory has no .yaml or .yml files",
        )
        .with_fix("put the Store, Verifier and KeyManagementProvider YAML files in this directory");
        d.file = Some(path.to_path_buf());
        report.diagnostics.push(d);
    }
    Ok(report)
}

/// Loads the given files as one configuration (references are resolved across them).
pub fn load_files(files: &[PathBuf]) -> Result<LoadReport, CrdError> {
    let mut loader = Loader::default();
    for f in files {
        loader.file(f);
    }
    Ok(loader.finish())
}

/// Loads YAML text as if it were the file `name`.
pub fn load_str(name: impl Into<PathBuf>, text: &str) -> LoadReport {
    let name = name.into();
    let mut loader = Loader::default();
    loader.report.files.push(name.clone());
    loader.text(&name, text);
    loader.finish()
}

/// Cross-resource rules (unique names, provider references) for resources obtained elsewhere,
/// e.g. from the cluster. Returns the index of the resource each diagnostic concerns.
pub fn validate_set(resources: &[Resource]) -> Vec<(usize, Diagnostic)> {
    let refs: Vec<&Resource> = resources.iter().collect();
    cross(&refs)
        .into_iter()
        .map(|i| (i.index, i.diagnostic))
        .collect()
}

/// Parses multi-document YAML into JSON values (Kubernetes scalar rules), without typing.
/// Returns the non-empty documents and any syntax or duplicate-key diagnostics.
pub fn parse_yaml(text: &str) -> (Vec<serde_json::Value>, Vec<Diagnostic>) {
    let mut values = Vec::new();
    let mut diags = Vec::new();
    for doc in parse_documents(text) {
        diags.extend(doc.diagnostics);
        if doc.broken {
            continue;
        }
        if let Some(root) = doc.root {
            let (v, _) = to_json(&root, &mut diags);
            if !v.is_null() {
                values.push(v);
            }
        }
    }
    (values, diags)
}
