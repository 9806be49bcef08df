//! Diagnostics: what is wrong, where (file, line, column, field path) and how to fix it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Self {
        Pos { line, column }
    }
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Path of a field inside a document, printed like `spec.parameters.trustPolicies[0].keys[1]`.
/// Keys that are not plain identifiers print quoted: `metadata.annotations["a.b/c"]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// Parses the dotted form used in this crate's code: `spec.parameters.keys[0].name`.
    /// Only plain keys and `[n]` indexes are understood (enough for static paths).
    pub fn parse(s: &str) -> Self {
        let mut out = Vec::new();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(b) = rest.find('[') {
                out.push(Segment::Key(rest[..b].to_string()));
                rest = &rest[b..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let end = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(i) = stripped[..end].parse() {
                        out.push(Segment::Index(i));
                    }
                    rest = stripped.get(end + 1..).unwrap_or("");
                }
            } else {
                out.push(Segment::Key(rest.to_string()));
            }
        }
        FieldPath(out)
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Key(k.into()));
        FieldPath(v)
    }

    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Index(i));
        FieldPath(v)
    }

    pub fn join(&self, other: &FieldPath) -> Self {
        let mut v = self.0.clone();
        v.extend(other.0.iter().cloned());
        FieldPath(v)
    }

    pub fn parent(&self) -> Option<FieldPath> {
        if self.0.is_empty() {
            None
        } else {
            Some(FieldPath(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last key of the path, if the path ends with a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{}]", serde_json::Value::String(k.clone()))?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_str("")
        } else {
            s.serialize_str(&self.to_string())
        }
    }
}

/// How bad a diagnostic is. Errors make a configuration unusable; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A problem found while loading or validating configuration.
///
/// Displays as `file:line:col: severity: field.path: message — fix: hint`.
/// `line`/`column` are 1-based; 0 means "not known" (e.g. resources read from the cluster).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable machine-readable identifier, e.g. `yaml-indentation`, `duplicate-key`.
    pub code: &'static str,
    pub file: Option<PathBuf>,
    /// 0-based index of the YAML document inside the file.
    pub document: Option<usize>,
    pub line: usize,
    pub column: usize,
    pub path: FieldPath,
    pub message: String,
    pub fix: Option<String>,
    /// The field whose source position the diagnostic points at, when it differs from `path`
    /// (e.g. a missing `metadata.name` is shown where the stray top-level `name:` is).
    #[serde(skip)]
    pub anchor: Option<FieldPath>,
}

impl Diagnostic {
    pub fn error(code: &'static str, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: None,
            document: None,
            line: 0,
            column: 0,
            path,
            message: message.into(),
            fix: None,
            anchor: None,
        }
    }

    pub fn warning(code: &'static str, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, path, message)
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Shows the diagnostic at the position of `field` instead of `path`.
    pub fn anchored(mut self, field: FieldPath) -> Self {
        self.anchor = Some(field);
        self
    }

    pub fn at(mut self, pos: Pos) -> Self {
        self.line = pos.line;
        self.column = pos.column;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Position, if known.
    pub fn pos(&self) -> Option<Pos> {
        (self.line > 0).then(|| Pos::new(self.line, self.column))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if self.line > 0 {
                write!(f, ":{}:{}", self.line, self.column)?;
            }
            f.write_str(": ")?;
        } else if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        write!(f, "{}: {}: {}", self.severity, self.path, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " — fix: {fix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_field_references() {
        let p = FieldPath::root()
            .key("spec")
            .key("parameters")
            .key("trustPolicies")
            .index(0)
            .key("keys");
        assert_eq!(p.to_string(), "spec.parameters.trustPolicies[0].keys");
        let a = FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key("a.b/c");
        assert_eq!(a.to_string(), "metadata.annotations[\"a.b/c\"]");
        assert_eq!(FieldPath::parse("spec.keys[2].name"), {
            FieldPath::root()
                .key("spec")
                .key("keys")
                .index(2)
                .key("name")
        });
    }

    #[test]
    fn diagnostic_display_has_file_position_path_and_fix() {
        let mut d = Diagnostic::error("x", FieldPath::parse("spec.name"), "is missing")
            .with_fix("add it")
            .at(Pos::new(3, 5));
        d.file = Some(PathBuf::from("a.yaml"));
        assert_eq!(
            d.to_string(),
            "a.yaml:3:5: error: spec.name: is missing — fix: add it"
        );
    }
}
