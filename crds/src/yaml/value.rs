//! Spanned YAML nodes to `serde_json::Value`, resolving plain scalars the way Kubernetes'
//! YAML reader does (YAML 1.1 booleans such as `yes`/`on`, integers, floats, null), and keeping a
//! side table from field path to the positions of its key and value.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::explain::duplicate_key_diag;
use super::{YKind, YNode};
use crate::diag::{Diagnostic, FieldPath, Pos};

/// Positions of every field of a document: where its key starts and where its value starts.
#[derive(Clone, Debug, Default)]
pub struct Positions {
    map: HashMap<FieldPath, (Pos, Pos)>,
}

impl Positions {
    /// Position of the key of `path`, or of the nearest ancestor that exists.
    pub fn key_pos(&self, path: &FieldPath) -> Option<Pos> {
        self.lookup(path).map(|(k, _)| k)
    }

    /// Position of the value of `path`, or of the nearest ancestor's key.
    pub fn value_pos(&self, path: &FieldPath) -> Option<Pos> {
        if let Some((_, v)) = self.map.get(path) {
            return Some(*v);
        }
        self.key_pos(path)
    }

    /// Whether the exact path exists in the document.
    pub fn contains(&self, path: &FieldPath) -> bool {
        self.map.contains_key(path)
    }

    fn lookup(&self, path: &FieldPath) -> Option<(Pos, Pos)> {
        let mut p = path.clone();
        loop {
            if let Some(v) = self.map.get(&p) {
                return Some(*v);
            }
            p = p.parent()?;
        }
    }

    fn insert(&mut self, path: FieldPath, key: Pos, value: Pos) {
        self.map.entry(path).or_insert((key, value));
    }
}

/// Converts a document tree; duplicate keys and unrepresentable keys become diagnostics.
pub(crate) fn to_json(root: &YNode, diags: &mut Vec<Diagnostic>) -> (Value, Positions) {
    let mut pos = Positions::default();
    pos.insert(FieldPath::root(), root.start, root.start);
    let v = convert(root, &FieldPath::root(), &mut pos, diags);
    (v, pos)
}

fn convert(
    node: &YNode,
    path: &FieldPath,
    pos: &mut Positions,
    diags: &mut Vec<Diagnostic>,
) -> Value {
    match &node.kind {
        YKind::Scalar(s) => {
            resolve_scalar(&s.text, s.plain, s.tag.as_deref(), path, node.start, diags)
        }
        YKind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = path.index(i);
                    pos.insert(p.clone(), item.start, item.start);
                    convert(item, &p, pos, diags)
                })
                .collect(),
        ),
        YKind::Map(entries) => {
            let mut out = Map::new();
            let mut seen: HashMap<String, Pos> = HashMap::new();
            let mut merges = Vec::new();
            for (k, v) in entries {
                let Some(ks) = k.as_scalar() else {
                    diags.push(
                        Diagnostic::error(
                            "yaml-key",
                            path.clone(),
                            "a mapping or list is used as a key; Kubernetes objects need text keys",
                        )
                        .with_fix("use a plain text key")
                        .at(k.start),
                    );
                    continue;
                };
                if ks.plain && ks.text == "<<" {
                    merges.push(v);
                    continue;
                }
                let key = ks.text.clone();
                if let Some(first) = seen.get(&key) {
                    diags.push(duplicate_key_diag(
                        path,
                        &key,
                        first.line,
                        k.start.line,
                        k.start,
                    ));
                    continue;
                }
                seen.insert(key.clone(), k.start);
                let p = path.key(key.clone());
                pos.insert(p.clone(), k.start, v.start);
                let val = convert(v, &p, pos, diags);
                out.insert(key, val);
            }
            // YAML merge keys (`<<: *anchor`): fill in keys not given explicitly.
            for m in merges {
                let sources: Vec<&YNode> = match &m.kind {
                    YKind::Seq(items) => items.iter().collect(),
                    _ => vec![m],
                };
                for src in sources {
                    let YKind::Map(_) = src.kind else {
                        diags.push(
                            Diagnostic::error(
                                "yaml-merge",
                                path.clone(),
                                "`<<` must merge a mapping",
                            )
                            .with_fix("point `<<:` at an anchored mapping (`<<: *name`)")
                            .at(src.start),
                        );
                        continue;
                    };
                    if let Value::Object(extra) = convert(src, path, pos, diags) {
                        for (k, v) in extra {
                            out.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Value::Object(out)
        }
    }
}

const CORE: &str = "tag:yaml.org,2002:";

fn resolve_scalar(
    text: &str,
    plain: bool,
    tag: Option<&str>,
    path: &FieldPath,
    at: Pos,
    diags: &mut Vec<Diagnostic>,
) -> Value {
    match tag.and_then(|t| t.strip_prefix(CORE)) {
        Some("str") | Some("binary") | Some("timestamp") => return Value::String(text.to_string()),
        Some("null") => return Value::Null,
        Some(t @ ("bool" | "int" | "float")) => {
            let v = resolve_plain(text);
            let ok = match t {
                "bool" => v.is_boolean(),
                "int" => v.is_i64() || v.is_u64(),
                _ => v.is_number(),
            };
            if !ok {
                diags.push(
                    Diagnostic::error(
                        "yaml-tag",
                        path.clone(),
                        format!("`{text}` is tagged `!!{t}` but is not a valid {t}"),
                    )
                    .with_fix("remove the tag or correct the value")
                    .at(at),
                );
                return Value::String(text.to_string());
            }
            return v;
        }
        _ => {}
    }
    if plain {
        resolve_plain(text)
    } else {
        Value::String(text.to_string())
    }
}

/// Resolution of an unquoted scalar, as Kubernetes' YAML reader (YAML 1.1 rules) does it.
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if let Some(f) = parse_float(text)
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let (radix, digits) = if let Some(d) = clean.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = clean.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = clean.strip_prefix("0b") {
        (2, d.to_string())
    } else if clean.len() > 1 && clean.starts_with('0') {
        (8, clean[1..].to_string())
    } else {
        (10, clean)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        let v = i64::try_from(mag).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(mag))
    }
}

fn parse_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if body.is_empty() {
        return None;
    }
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut prev = ' ';
    for c in body.chars() {
        match c {
            '0'..='9' => seen_digit = true,
            '_' if !seen_exp => {}
            '.' if !seen_dot && !seen_exp => seen_dot = true,
            'e' | 'E' if seen_digit && !seen_exp => seen_exp = true,
            '+' | '-' if prev == 'e' || prev == 'E' => {}
            _ => return None,
        }
        prev = c;
    }
    if !seen_digit || !(seen_dot || seen_exp) {
        return None;
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    clean.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn json(text: &str) -> (Value, Positions, Vec<Diagnostic>) {
        let docs = parse_documents(text);
        let mut diags = Vec::new();
        let (v, p) = to_json(docs[0].root.as_ref().unwrap(), &mut diags);
        (v, p, diags)
    }

    #[test]
    fn scalars_resolve_like_kubernetes() {
        let (v, _, _) = json(
            "a: yes\nb: 'yes'\nc: 1.0\nd: \"1.0\"\ne: 0x1f\nf: ~\ng: 12\nh: -3\ni: 1e3\nj: text\nk: !!str 5\nl: 010\n",
        );
        assert_eq!(v["a"], Value::Bool(true));
        assert_eq!(v["b"], "yes");
        assert!(v["c"].is_f64());
        assert_eq!(v["d"], "1.0");
        assert_eq!(v["e"], 31);
        assert!(v["f"].is_null());
        assert_eq!(v["g"], 12);
        assert_eq!(v["h"], -3);
        assert_eq!(v["i"].as_f64(), Some(1000.0));
        assert_eq!(v["j"], "text");
        assert_eq!(v["k"], "5");
        assert_eq!(v["l"], 8);
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let (_, p, _) = json("spec:\n  keys:\n    - name: a\n      version: b\n");
        let path = FieldPath::parse("spec.keys[0].version");
        assert_eq!(p.key_pos(&path), Some(Pos::new(4, 7)));
        assert_eq!(p.value_pos(&path), Some(Pos::new(4, 16)));
        // Missing fields fall back to the nearest ancestor.
        assert_eq!(
            p.key_pos(&FieldPath::parse("spec.keys[0].nope")),
            Some(Pos::new(3, 7))
        );
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let (v, _, d) = json("a:\n  version: 1\n  version: 2\n");
        assert_eq!(v["a"]["version"], 1);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "duplicate-key");
        assert_eq!(d[0].path.to_string(), "a.version");
        assert!(
            d[0].message.contains("line 2 and line 3"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].pos(), Some(Pos::new(3, 3)));
    }

    #[test]
    fn merge_keys_fill_missing_fields() {
        let (v, _, _) = json("base: &b {x: 1, y: 2}\nobj:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["obj"]["x"], 1);
        assert_eq!(v["obj"]["y"], 3);
    }
}
