//! YAML with positions: documents are split, parsed into a spanned node tree, and converted to
//! JSON values plus a side table from field path to line/column.
//!
//! Syntax errors are explained from the parser's state (which collections were open, where their
//! keys and list dashes sit), so a mis-indented key is reported as such, with the enclosing field
//! path and the column it should start in.

mod explain;
mod value;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use crate::diag::{Diagnostic, FieldPath, Pos};

pub use value::Positions;
pub(crate) use value::to_json;

/// A parsed YAML node with the position where it starts and ends.
#[derive(Clone, Debug)]
pub(crate) struct YNode {
    pub start: Pos,
    pub end: Pos,
    pub kind: YKind,
}

#[derive(Clone, Debug)]
pub(crate) enum YKind {
    Scalar(Scalar),
    Seq(Vec<YNode>),
    Map(Vec<(YNode, YNode)>),
}

#[derive(Clone, Debug)]
pub(crate) struct Scalar {
    pub text: String,
    /// Plain (unquoted, not a block scalar): subject to null/bool/number resolution.
    pub plain: bool,
    /// Tag as written after resolution of the handle, e.g. `tag:yaml.org,2002:str` or `!custom`.
    pub tag: Option<String>,
}

impl YNode {
    fn null_at(pos: Pos) -> Self {
        YNode {
            start: pos,
            end: pos,
            kind: YKind::Scalar(Scalar {
                text: String::new(),
                plain: true,
                tag: None,
            }),
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            YKind::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// One YAML document of a file.
#[derive(Debug)]
pub(crate) struct RawDocument {
    /// The document's tree; `None` for an empty document. After a syntax error this is the part
    /// that was read before the error (open collections closed, missing values null).
    pub root: Option<YNode>,
    /// Syntax errors (with explanations) and tag warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// True when the document could not be read completely.
    pub broken: bool,
}

/// Splits `text` into documents at `---` lines and parses each one separately, so that a syntax
/// error in one document does not hide the others.
pub(crate) fn parse_documents(text: &str) -> Vec<RawDocument> {
    let mut out = Vec::new();
    for (offset, chunk) in split_documents(text) {
        out.extend(parse_chunk(&chunk, offset));
    }
    out
}

/// Returns (line offset, text) pairs; the offset is the number of lines before the chunk.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut chunks: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut current_start = 0usize;
    let mut only_preamble = true;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if is_marker && !only_preamble {
            chunks.push((current_start, std::mem::take(&mut current)));
            current_start = i;
            only_preamble = true;
        }
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%')) {
            only_preamble = false;
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        chunks.push((current_start, current));
    }
    chunks
}

enum Frame {
    Seq {
        start: Pos,
        items: Vec<YNode>,
        anchor: usize,
    },
    Map {
        start: Pos,
        entries: Vec<(YNode, YNode)>,
        key: Option<YNode>,
        anchor: usize,
    },
}

struct Builder {
    offset: usize,
    stack: Vec<Frame>,
    root: Option<YNode>,
    anchors: HashMap<usize, YNode>,
    diagnostics: Vec<Diagnostic>,
    started: bool,
}

impl Builder {
    fn pos(&self, m: &saphyr_parser::Marker) -> Pos {
        Pos::new(m.line() + self.offset, m.col() + 1)
    }

    fn push_value(&mut self, node: YNode) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &YNode) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn close_top(&mut self, end: Pos) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let (node, anchor) = match frame {
            Frame::Seq {
                start,
                items,
                anchor,
            } => (
                YNode {
                    start,
                    end,
                    kind: YKind::Seq(items),
                },
                anchor,
            ),
            Frame::Map {
                start,
                mut entries,
                key,
                anchor,
            } => {
                if let Some(k) = key {
                    let at = k.end;
                    entries.push((k, YNode::null_at(at)));
                }
                (
                    YNode {
                        start,
                        end,
                        kind: YKind::Map(entries),
                    },
                    anchor,
                )
            }
        };
        self.remember(anchor, &node);
        self.push_value(node);
    }

    fn finish(&mut self) -> Option<RawDocument> {
        if !self.started {
            return None;
        }
        self.started = false;
        self.anchors.clear();
        Some(RawDocument {
            root: self.root.take(),
            diagnostics: std::mem::take(&mut self.diagnostics),
            broken: false,
        })
    }

    fn tag_of(&mut self, tag: Option<&saphyr_parser::Tag>, at: Pos) -> Option<String> {
        let t = tag?;
        let full = format!("{}{}", t.handle, t.suffix);
        if !t.is_yaml_core_schema() {
            self.diagnostics.push(
                Diagnostic::warning(
                    "yaml-tag",
                    FieldPath::root(),
                    format!(
                        "the YAML tag `{t}` has no meaning for Kubernetes objects and is ignored"
                    ),
                )
                .with_fix("remove the tag")
                .at(at),
            );
        }
        Some(full)
    }

    fn on_event(&mut self, ev: Event<'_>, span: Span) {
        let start = self.pos(&span.start);
        let end = self.pos(&span.end);
        match ev {
            Event::DocumentStart(_) => self.started = true,
            Event::Scalar(text, style, anchor, tag) => {
                let tag = self.tag_of(tag.as_deref(), start);
                let node = YNode {
                    start,
                    end,
                    kind: YKind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag,
                    }),
                };
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::SequenceStart(anchor, tag) => {
                let _ = self.tag_of(tag.as_deref(), start);
                self.stack.push(Frame::Seq {
                    start,
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::MappingStart(anchor, tag) => {
                let _ = self.tag_of(tag.as_deref(), start);
                self.stack.push(Frame::Map {
                    start,
                    entries: Vec::new(),
                    key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close_top(end),
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.start = start;
                    node.end = end;
                    self.push_value(node);
                }
                None => {
                    self.diagnostics.push(
                        Diagnostic::error(
                            "yaml-syntax",
                            FieldPath::root(),
                            "alias refers to an anchor that is not defined before it",
                        )
                        .with_fix("define the anchor (`&name`) before using `*name`")
                        .at(start),
                    );
                    self.push_value(YNode::null_at(start));
                }
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }

    /// Path of each open collection.
    fn frame_paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::with_capacity(self.stack.len());
        let mut path = FieldPath::root();
        for frame in &self.stack {
            out.push(path.clone());
            path = match frame {
                Frame::Seq { items, .. } => path.index(items.len()),
                Frame::Map { key, .. } => match key.as_ref().and_then(|k| k.as_scalar()) {
                    Some(s) => path.key(s.text.clone()),
                    None => path,
                },
            };
        }
        out
    }

    fn fail(&mut self, err: ScanError, chunk: &str) -> RawDocument {
        let lines: Vec<&str> = chunk.lines().collect();
        let paths = self.frame_paths();
        let mut diags = explain::explain(&err, &self.stack, &paths, &lines, self.offset);
        // Close what is open so the part before the error can still be checked.
        while !self.stack.is_empty() {
            self.close_top(self.pos(err.marker()));
        }
        let mut all = std::mem::take(&mut self.diagnostics);
        all.append(&mut diags);
        self.started = false;
        RawDocument {
            root: self.root.take(),
            diagnostics: all,
            broken: true,
        }
    }
}

fn parse_chunk(chunk: &str, offset: usize) -> Vec<RawDocument> {
    let mut parser = Parser::new_from_str(chunk);
    let mut b = Builder {
        offset,
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        diagnostics: Vec::new(),
        started: false,
    };
    let mut docs = Vec::new();
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((Event::DocumentEnd, _)) => {
                if let Some(d) = b.finish() {
                    docs.push(d);
                }
            }
            Ok((ev, span)) => b.on_event(ev, span),
            Err(e) => {
                docs.push(b.fail(e, chunk));
                return docs;
            }
        }
    }
    if let Some(d) = b.finish() {
        docs.push(d);
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_keeps_line_numbers() {
        let text = "a: 1\n---\nb: 2\n\n---\n# only a comment\n---\nc: 3\n";
        let docs = parse_documents(text);
        // An explicit `---` with only a comment is an empty (null) document.
        let roots: Vec<_> = docs
            .iter()
            .filter(|d| {
                d.root
                    .as_ref()
                    .is_some_and(|r| !matches!(&r.kind, YKind::Scalar(s) if s.text.is_empty()))
            })
            .collect();
        assert_eq!(roots.len(), 3);
        let last = roots[2].root.as_ref().unwrap();
        let YKind::Map(entries) = &last.kind else {
            panic!("map expected")
        };
        assert_eq!(entries[0].0.start, Pos::new(8, 1));
    }

    #[test]
    fn a_broken_document_does_not_hide_the_next() {
        let text = "a: [1\n---\nb: 2\n";
        let docs = parse_documents(text);
        assert!(docs[0].broken);
        assert!(!docs[1].broken);
        assert!(docs[1].root.is_some());
    }

    #[test]
    fn anchors_and_aliases_are_resolved() {
        let docs = parse_documents("a: &x {k: v}\nb: *x\n");
        let (v, _) = to_json(docs[0].root.as_ref().unwrap(), &mut Vec::new());
        assert_eq!(v["b"]["k"], "v");
    }
}
