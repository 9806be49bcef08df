//! Turns a parser error plus the parser's open collections into a precise, human message.

use saphyr_parser::ScanError;

use super::{Frame, YKind, YNode};
use crate::diag::{Diagnostic, FieldPath, Pos};

/// A `key:` found at the start of a source line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LineKey {
    pub key: String,
    /// 0-based column of the key's first character.
    pub col: usize,
    /// 0-based indentation of the line (column of its first non-space character).
    pub indent: usize,
    /// The line starts with `- `.
    pub dash: bool,
}

pub(super) fn indent_of(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ').count()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Finds `key:` at the start of a line (after indentation and any `- ` markers).
pub(super) fn line_key(line: &str) -> Option<LineKey> {
    let indent = indent_of(line);
    let chars: Vec<char> = line.chars().collect();
    let mut i = indent;
    let mut dash = false;
    while i + 1 < chars.len() && chars[i] == '-' && chars[i + 1] == ' ' {
        dash = true;
        i += 2;
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
    }
    let col = i;
    let rest: String = chars[i..].iter().collect();
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let key = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let close = rest[1..].find(q)? + 1;
        let after = &rest[close + 1..];
        if !(after.starts_with(':') && (after.len() == 1 || after[1..].starts_with([' ', '\t']))) {
            return None;
        }
        rest[1..close].to_string()
    } else {
        let bytes = rest.as_bytes();
        let mut found = None;
        for (j, b) in bytes.iter().enumerate() {
            if *b == b':' && (j + 1 == bytes.len() || bytes[j + 1] == b' ' || bytes[j + 1] == b'\t')
            {
                found = Some(j);
                break;
            }
            if *b == b'#' && j > 0 && bytes[j - 1] == b' ' {
                break;
            }
        }
        let k = rest[..found?].trim_end();
        if k.is_empty() || k.starts_with(['[', '{', '"', '\'', '&', '*', '!', '|', '>']) {
            return None;
        }
        k.to_string()
    };
    Some(LineKey {
        key,
        col,
        indent,
        dash,
    })
}

fn first_key(node: &YNode) -> Option<(&YNode, &YNode)> {
    match &node.kind {
        YKind::Map(entries) => entries.first().map(|(k, v)| (k, v)),
        _ => None,
    }
}

fn scalar_text(node: &YNode) -> Option<&str> {
    node.as_scalar().map(|s| s.text.as_str())
}

/// Column (0-based) of the `-` that introduces the list item starting at `item`.
fn dash_col(lines: &[&str], offset: usize, item: Pos) -> Option<usize> {
    let line = lines.get(item.line.checked_sub(offset + 1)?)?;
    let chars: Vec<char> = line.chars().collect();
    let mut c = item.column.checked_sub(1)?;
    // The item itself may start at the dash for indentless sequences' events; scan back.
    while c > 0 {
        c -= 1;
        match chars.get(c) {
            Some(' ') => continue,
            Some('-') => return Some(c),
            _ => return None,
        }
    }
    None
}

fn describe_item(item: &YNode) -> String {
    match first_key(item) {
        Some((k, v)) => match (scalar_text(k), scalar_text(v)) {
            (Some(k), Some(v)) if !v.is_empty() => format!("`- {k}: {v}`"),
            (Some(k), _) => format!("`- {k}:`"),
            _ => "the list item".to_string(),
        },
        None => "the list item".to_string(),
    }
}

fn quote_list(items: &[(String, usize)]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|(k, l)| format!("`{k}` at line {l}"))
        .collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        _ => format!(
            "{} and {}",
            parts[..parts.len() - 1].join(", "),
            parts[parts.len() - 1]
        ),
    }
}

/// Keys on the lines after `from` (0-based index into `lines`) that start in column `col`,
/// until a line indented less than `col` or a `- ` item in that column.
fn sibling_keys_after(
    lines: &[&str],
    from: usize,
    col: usize,
    offset: usize,
) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(from + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let ind = indent_of(line);
        if ind < col {
            break;
        }
        if ind == col {
            match line_key(line) {
                Some(k) if !k.dash => out.push((k.key, i + 1 + offset)),
                _ => break,
            }
        }
    }
    out
}

/// Keys that appear more than once among the lines from `from` on that start in column `col`.
fn textual_duplicates(
    lines: &[&str],
    from: usize,
    col: usize,
    offset: usize,
) -> Vec<(String, usize, usize)> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut dups = Vec::new();
    if let Some(k) = lines.get(from).and_then(|l| line_key(l))
        && k.col == col
    {
        seen.push((k.key, from + 1 + offset));
    }
    for (key, line) in sibling_keys_after(lines, from, col, offset) {
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            dups.push((key.clone(), *first, line));
        } else {
            seen.push((key, line));
        }
    }
    dups
}

fn map_key_col(frame: &Frame) -> Option<(usize, String, Pos)> {
    if let Frame::Map { entries, key, .. } = frame {
        let k = entries.last().map(|(k, _)| k).or(key.as_ref())?;
        let text = scalar_text(k)?.to_string();
        return Some((k.start.column - 1, text, k.start));
    }
    None
}

pub(super) fn explain(
    err: &ScanError,
    stack: &[Frame],
    paths: &[FieldPath],
    lines: &[&str],
    offset: usize,
) -> Vec<Diagnostic> {
    let mark = err.marker();
    let err_line_idx = mark.line().saturating_sub(1);
    let at = Pos::new(mark.line() + offset, mark.col() + 1);
    let info = err.info();
    let here = paths.last().cloned().unwrap_or_default();
    let line = lines.get(err_line_idx).copied().unwrap_or("");

    if line
        .chars()
        .take_while(|c| c.is_whitespace())
        .any(|c| c == '\t')
        || info.contains("tab")
    {
        return vec![
            Diagnostic::error(
                "yaml-indentation",
                here,
                format!("line {} is indented with a tab character; YAML indentation must use spaces ({info})", at.line),
            )
            .with_fix(format!("replace the tabs at the start of line {} with spaces", at.line))
            .at(at),
        ];
    }

    if let Some(lk) = line_key(line) {
        let key_at = Pos::new(at.line, lk.col + 1);

        // Case 1: a key sits in the column of the `-` of the list that is open: it was meant to
        // belong to the last list item but is not indented under it.
        if !lk.dash
            && let Some(d) =
                key_in_dash_column(&lk, key_at, stack, paths, lines, offset, err_line_idx)
        {
            return vec![d];
        }

        // Case 2: a key indented deeper than the key before it in the same mapping.
        if let Some(Frame::Map { entries, .. }) = stack.last()
            && let Some((prev_k, prev_v)) = entries.last()
        {
            let prev_col = prev_k.start.column - 1;
            if lk.col > prev_col && info.contains("mapping values are not allowed") {
                let prev_name = scalar_text(prev_k).unwrap_or("?").to_string();
                let read_as = scalar_text(prev_v)
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(" (`{s}`)"))
                    .unwrap_or_default();
                let mut out = vec![
                        Diagnostic::error(
                            "yaml-indentation",
                            here.clone(),
                            format!(
                                "`{}` is indented deeper than `{prev_name}` (line {}, column {}) above it, \
                                 so YAML reads it as more text of `{prev_name}`'s value{read_as} and then \
                                 stops at its `:`",
                                lk.key, prev_k.start.line, prev_k.start.column
                            ),
                        )
                        .with_fix(format!(
                            "align `{}:` with `{prev_name}:` — start it in column {}",
                            lk.key, prev_k.start.column
                        ))
                        .at(key_at),
                    ];
                for (key, first, second) in textual_duplicates(lines, err_line_idx, lk.col, offset)
                {
                    out.push(duplicate_key_diag(
                        &here,
                        &key,
                        first,
                        second,
                        Pos::new(second, lk.col + 1),
                    ));
                }
                return out;
            }
        }

        // Case 3: a key whose column matches no open mapping.
        let columns: Vec<(usize, String, FieldPath)> = stack
            .iter()
            .zip(paths)
            .filter_map(|(f, p)| map_key_col(f).map(|(c, k, _)| (c, k, p.clone())))
            .collect();
        if !columns.is_empty() && !columns.iter().any(|(c, _, _)| *c == lk.col) {
            let options: Vec<String> = columns
                .iter()
                .rev()
                .map(|(c, k, p)| {
                    let owner = if p.is_root() {
                        "the top level".to_string()
                    } else {
                        format!("`{p}`")
                    };
                    format!("column {} to sit beside `{k}` in {owner}", c + 1)
                })
                .collect();
            return vec![
                Diagnostic::error(
                    "yaml-indentation",
                    here,
                    format!(
                        "`{}` starts in column {}, which lines up with no enclosing mapping ({info})",
                        lk.key,
                        lk.col + 1
                    ),
                )
                .with_fix(format!("indent `{}:` to {}", lk.key, options.join(", or ")))
                .at(key_at),
            ];
        }
    }

    let (what, fix) = if info.contains("quoted scalar") {
        (
            "a quoted value is not closed".to_string(),
            "add the closing quote (`\"` or `'`) at the end of the value".to_string(),
        )
    } else if info.contains("cannot start any token") {
        (
            "a value starts with a character YAML reserves (`@` or a backtick)".to_string(),
            "put the value in double quotes".to_string(),
        )
    } else if info.contains("flow") {
        (
            "an inline list `[...]` or mapping `{...}` is not closed or has a stray character"
                .to_string(),
            "close the brackets, or quote the value if the brackets are part of the text"
                .to_string(),
        )
    } else {
        (
            "the YAML cannot be read here".to_string(),
            "check the indentation (spaces only; a key's children indented deeper than the key, \
             siblings in the same column) and quote values that contain `: ` or ` #` or start with \
             `*`, `&`, `!`, `%`, `@`, `[` or `{`"
                .to_string(),
        )
    };
    vec![
        Diagnostic::error("yaml-syntax", here, format!("{what} ({info})"))
            .with_fix(fix)
            .at(at),
    ]
}

pub(super) fn duplicate_key_diag(
    parent: &FieldPath,
    key: &str,
    first: usize,
    second: usize,
    at: Pos,
) -> Diagnostic {
    let where_ = if parent.is_root() {
        "at the top level of the document".to_string()
    } else {
        format!("in `{parent}`")
    };
    let is_version_of_key = key == "version"
        && parent.0.iter().rev().nth(1).is_some_and(
            |s| matches!(s, crate::diag::Segment::Key(k) if k == "keys" || k == "certificates"),
        );
    let fix = if is_version_of_key {
        "keep one `version:` per list item; to trust several versions of the same key or \
         certificate, repeat the item: `- name: <name>` with `version: <v1>`, then `- name: <name>` \
         with `version: <v2>`"
            .to_string()
    } else {
        format!("keep only one `{key}:` in this mapping")
    };
    Diagnostic::error(
        "duplicate-key",
        parent.key(key),
        format!("`{key}` appears twice {where_}: line {first} and line {second}; a mapping can hold each key only once"),
    )
    .with_fix(fix)
    .at(at)
}

#[allow(clippy::too_many_arguments)]
fn key_in_dash_column(
    lk: &LineKey,
    key_at: Pos,
    stack: &[Frame],
    paths: &[FieldPath],
    lines: &[&str],
    offset: usize,
    err_line_idx: usize,
) -> Option<Diagnostic> {
    // Innermost open sequence, and the list item that precedes the error.
    let (seq_idx, frame) = stack
        .iter()
        .enumerate()
        .rev()
        .find(|(_, f)| matches!(f, Frame::Seq { .. }))?;
    let Frame::Seq { items, .. } = frame else {
        return None;
    };
    // The item is either completed (last of `items`) or still open right above the sequence.
    let item_index;
    let item_start;
    let item_keys: Vec<(String, Pos)>;
    let first_item_desc;
    if seq_idx + 1 < stack.len() {
        let Frame::Map {
            start,
            entries,
            key,
            ..
        } = &stack[seq_idx + 1]
        else {
            return None;
        };
        item_index = items.len();
        item_start = *start;
        let mut ks: Vec<(String, Pos)> = entries
            .iter()
            .filter_map(|(k, _)| scalar_text(k).map(|t| (t.to_string(), k.start)))
            .collect();
        if let Some(k) = key
            .as_ref()
            .and_then(|k| scalar_text(k).map(|t| (t.to_string(), k.start)))
        {
            ks.push(k);
        }
        item_keys = ks;
        first_item_desc = match entries.first() {
            Some((k, v)) => match (scalar_text(k), scalar_text(v)) {
                (Some(k), Some(v)) if !v.is_empty() => format!("`- {k}: {v}`"),
                (Some(k), _) => format!("`- {k}:`"),
                _ => "the list item".to_string(),
            },
            None => "the list item".to_string(),
        };
    } else {
        let item = items.last()?;
        let YKind::Map(entries) = &item.kind else {
            return None;
        };
        item_index = items.len() - 1;
        item_start = item.start;
        item_keys = entries
            .iter()
            .filter_map(|(k, _)| scalar_text(k).map(|t| (t.to_string(), k.start)))
            .collect();
        first_item_desc = describe_item(item);
    }
    let dash = dash_col(lines, offset, item_start)?;
    if dash != lk.col {
        return None;
    }
    let (last_key, last_pos) = item_keys.last()?.clone();
    let item_col = last_pos.column; // 1-based column of the item's keys
    let seq_path = paths.get(seq_idx)?.clone();
    let item_path = seq_path.index(item_index);
    let following = sibling_keys_after(lines, err_line_idx, lk.col, offset);
    let also = if following.is_empty() {
        String::new()
    } else {
        format!(" (so are {} below it)", quote_list(&following))
    };
    let spaces = item_col.saturating_sub(1 + lk.col);
    Some(
        Diagnostic::error(
            "yaml-indentation",
            item_path.clone(),
            format!(
                "`{}` at line {} is not indented under the list item {} (line {}) of `{}`: it starts in \
                 the column of that item's `-`, where YAML expects the next `- ` item{also}",
                lk.key, key_at.line, first_item_desc, item_start.line, item_path
            ),
        )
        .with_fix(format!(
            "indent `{}:`{} by {spaces} more spaces so {} in column {item_col}, aligned with `{last_key}` (line {})",
            lk.key,
            if following.is_empty() {
                String::new()
            } else {
                " and the keys below it that belong to the same item".to_string()
            },
            if following.is_empty() { "it starts" } else { "they start" },
            last_pos.line
        ))
        .at(key_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_at_line_start() {
        let k = line_key("    - name: default").unwrap();
        assert_eq!(
            (k.key.as_str(), k.col, k.indent, k.dash),
            ("name", 6, 4, true)
        );
        let k = line_key("        signatureVerification:").unwrap();
        assert_eq!((k.key.as_str(), k.col), ("signatureVerification", 8));
        assert!(line_key("  - \"*\"").is_none());
        assert!(line_key("  # comment: x").is_none());
        assert!(line_key("  url: https://x.y/z").is_some());
        assert_eq!(line_key("  \"a b\": 1").unwrap().key, "a b");
    }
}
