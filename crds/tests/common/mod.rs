//! Helpers shared by the integration tests.
#![allow(dead_code)]

use verdict_crds::{Diagnostic, LoadReport};

pub fn errors(r: &LoadReport) -> Vec<&Diagnostic> {
    r.diagnostics.iter().filter(|d| d.is_error()).collect()
}

pub fn dump(r: &LoadReport) -> String {
    r.diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The only diagnostic with `code`, failing with the full report otherwise.
pub fn only<'a>(r: &'a LoadReport, code: &str) -> &'a Diagnostic {
    let found: Vec<&Diagnostic> = r.diagnostics.iter().filter(|d| d.code == code).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}` diagnostic, got:\n{}",
        dump(r)
    );
    found[0]
}

/// Every diagnostic with `code`.
pub fn all<'a>(r: &'a LoadReport, code: &str) -> Vec<&'a Diagnostic> {
    r.diagnostics.iter().filter(|d| d.code == code).collect()
}

/// 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"))
}

/// Writes `value` as block-style YAML (strings double-quoted).
pub fn to_yaml(value: &serde_json::Value) -> String {
    fn scalar(v: &serde_json::Value) -> String {
        v.to_string()
    }
    fn emit(v: &serde_json::Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, val) in m {
                    let key = serde_json::Value::String(k.clone()).to_string();
                    match val {
                        serde_json::Value::Object(c) if !c.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            emit(val, indent + 2, out);
                        }
                        serde_json::Value::Array(a) if !a.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            emit(val, indent, out);
                        }
                        _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(val))),
                    }
                }
            }
            serde_json::Value::Array(a) if !a.is_empty() => {
                for item in a {
                    match item {
                        serde_json::Value::Object(c) if !c.is_empty() => {
                            let mut inner = String::new();
                            emit(item, indent + 2, &mut inner);
                            let inner =
                                inner.replacen(&" ".repeat(indent + 2), &format!("{pad}- "), 1);
                            out.push_str(&inner);
                        }
                        serde_json::Value::Array(x) if !x.is_empty() => {
                            out.push_str(&format!("{pad}-\n"));
                            emit(item, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}
