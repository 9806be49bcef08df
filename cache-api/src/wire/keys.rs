//! Gatekeeper's keys: the optional `[namespace]` prefix, Docker-normalised references, and the
//! plan that answers each key once and computes each distinct subject once.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use verdict_scanner::registry::ImageReference;
use verdict_scanner::subject::{Namespace, SubjectKey};

use super::ratify::JsonString;
use crate::error::Error;

/// Longest key accepted: `[` + 63-byte namespace + `]` + 255-byte host + `/` + 255-byte name +
/// `:` + 128-byte tag + `@sha512:` + 128 hex digits is ~850 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A key split into its optional `[namespace]` prefix and its normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The key exactly as sent, prefix included.
    pub key: Box<str>,
    /// `key` as a JSON string (how the answer names it).
    pub key_json: JsonString,
    /// `None` without a prefix or with an empty one (`[]`), as in Ratify: cluster-wide configuration.
    pub namespace: Option<Namespace>,
    /// Docker-style normalised (`nginx` → `docker.io/library/nginx:latest`).
    pub reference: ImageReference,
    /// The key without its prefix, exactly as sent.
    pub reference_text: String,
    /// `reference` as text: how answers name the subject.
    pub normalised: String,
    /// `normalised` as a JSON string.
    pub normalised_json: JsonString,
    /// The verdict's key when the reference names a digest (a tag is resolved first).
    pub subject: Option<SubjectKey>,
}

/// Splits `[ns]reference` and normalises the reference. Memoised (see [`MEMO_PER_SHARD`]).
pub fn parse_key(key: &str) -> Result<Arc<ParsedKey>, Error> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLong(key.len()));
    }
    memoised(key, parse_key_uncached)
}

fn parse_key_uncached(key: &str) -> Result<ParsedKey, Error> {
    let (namespace, rest) = match key.strip_prefix('[') {
        Some(after) => {
            let (ns, rest) = after.split_once(']').ok_or(Error::UnterminatedPrefix)?;
            if ns.is_empty() {
                (None, rest)
            } else {
                let ns =
                    Namespace::parse(ns).ok_or_else(|| Error::InvalidNamespace(ns.to_owned()))?;
                (Some(ns), rest)
            }
        }
        None => (None, key),
    };
    if rest.is_empty() {
        return Err(Error::MissingReference);
    }
    let reference =
        ImageReference::parse(rest).map_err(|e| Error::InvalidReference(Arc::new(e)))?;
    let subject = SubjectKey::of_reference(namespace.clone(), &reference);
    let normalised = reference.to_string();
    Ok(ParsedKey {
        key: key.into(),
        key_json: JsonString::new(key),
        namespace,
        normalised_json: JsonString::new(&normalised),
        normalised,
        reference,
        reference_text: rest.to_owned(),
        subject,
    })
}

/// Entries per shard of the parsed-key memo (16 shards: 4,096 keys, about 2 MiB at most).
const MEMO_PER_SHARD: usize = 256;
const MEMO_SHARDS: usize = 16;

type MemoShard = std::sync::Mutex<HashMap<String, Arc<ParsedKey>, foldhash::fast::RandomState>>;

/// `parse` memoised by key text: Gatekeeper asks for the same keys over and over, and parsing
/// (then a regex, normalisation, the subject key) was the largest part of a cache hit's CPU
/// (benches/README.md). Parsing is a pure function of the text, so a memoised answer is the
/// parser's answer; only successes are kept. A full shard is emptied (bounded, O(1) amortised).
/// foldhash with a per-process seed: keys come from pod specs, and a shard never holds more than
/// [`MEMO_PER_SHARD`] entries, so even colliding keys cost a bounded scan.
fn memoised(
    key: &str,
    parse: impl FnOnce(&str) -> Result<ParsedKey, Error>,
) -> Result<Arc<ParsedKey>, Error> {
    use std::hash::BuildHasher;
    static MEMO: std::sync::LazyLock<(foldhash::fast::RandomState, Vec<MemoShard>)> =
        std::sync::LazyLock::new(|| {
            (
                foldhash::fast::RandomState::default(),
                (0..MEMO_SHARDS).map(|_| MemoShard::default()).collect(),
            )
        });
    let (hasher, shards) = &*MEMO;
    let shard = &shards[(hasher.hash_one(key) as usize) % MEMO_SHARDS];
    if let Some(parsed) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
        return Ok(Arc::clone(parsed));
    }
    let parsed = Arc::new(parse(key)?);
    let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= MEMO_PER_SHARD {
        map.clear();
    }
    map.insert(key.to_owned(), Arc::clone(&parsed));
    Ok(parsed)
}

/// An answered key's text: a parsed key's (shared with the parse memo, written into the answer
/// already escaped) or, for a key that did not parse, its own text.
#[derive(Debug, Clone)]
pub enum ItemKey {
    Parsed(Arc<ParsedKey>),
    Text(String),
}

impl ItemKey {
    /// The key as sent.
    pub fn as_str(&self) -> &str {
        match self {
            ItemKey::Parsed(p) => &p.key,
            ItemKey::Text(t) => t,
        }
    }
}

impl PartialEq for ItemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<String> for ItemKey {
    fn from(key: String) -> Self {
        ItemKey::Text(key)
    }
}

impl From<&str> for ItemKey {
    fn from(key: &str) -> Self {
        ItemKey::Text(key.to_owned())
    }
}

/// The request's keys in order, each answered once, with every distinct subject computed once.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// Distinct keys in first-seen order, each pointing to its subject in `subjects` or failing.
    pub items: Vec<(ItemKey, Result<usize, Error>)>,
    /// Distinct (namespace, normalised reference) pairs: `nginx` and
    /// `docker.io/library/nginx:latest` are two items but one subject.
    pub subjects: Vec<Arc<ParsedKey>>,
}

/// Up to this many keys, duplicates are found by comparing with each earlier one (cheaper than
/// hashing for the few keys Gatekeeper usually sends).
const LINEAR_DEDUP_KEYS: usize = 16;

impl KeyPlan {
    /// `keys` as the request carried them (borrowed from its body where they needed no
    /// unescaping); only keys that do not parse are copied.
    pub fn new<S: AsRef<str>>(keys: Vec<S>) -> Self {
        let small = keys.len() <= LINEAR_DEDUP_KEYS;
        let mut seen_keys: HashSet<&str> = HashSet::new();
        let mut subject_index: HashMap<(Option<Namespace>, String), usize> = HashMap::new();
        let mut items: Vec<(ItemKey, Result<usize, Error>)> = Vec::with_capacity(keys.len());
        let mut subjects: Vec<Arc<ParsedKey>> = Vec::new();
        for key in &keys {
            let key = key.as_ref();
            let duplicate = if small {
                items.iter().any(|(k, _)| k.as_str() == key)
            } else {
                !seen_keys.insert(key)
            };
            if duplicate {
                continue;
            }
            let parsed = match parse_key(key) {
                Ok(parsed) => parsed,
                Err(e) => {
                    items.push((ItemKey::Text(key.to_owned()), Err(e)));
                    continue;
                }
            };
            let item_key = ItemKey::Parsed(Arc::clone(&parsed));
            let slot = if small {
                let same = |s: &Arc<ParsedKey>| {
                    Arc::ptr_eq(s, &parsed)
                        || (s.normalised == parsed.normalised && s.namespace == parsed.namespace)
                };
                match subjects.iter().position(same) {
                    Some(i) => i,
                    None => {
                        subjects.push(parsed);
                        subjects.len() - 1
                    }
                }
            } else {
                match subject_index.entry((parsed.namespace.clone(), parsed.normalised.clone())) {
                    Entry::Occupied(o) => *o.get(),
                    Entry::Vacant(v) => {
                        subjects.push(parsed);
                        *v.insert(subjects.len() - 1)
                    }
                }
            };
            items.push((item_key, Ok(slot)));
        }
        KeyPlan { items, subjects }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_namespace_prefix() {
        let k = parse_key("[team-a]nginx").unwrap();
        assert_eq!(k.namespace.as_ref().map(Namespace::as_str), Some("team-a"));
        assert_eq!(k.reference.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(k.reference_text, "nginx");
        assert_eq!(parse_key("[]nginx").unwrap().namespace, None);
        for bad in [
            "[Team]nginx",
            "[a b]nginx",
            "[-a]nginx",
            "[a.b]nginx",
            "[ns/x]nginx",
            "[naïve]nginx",
        ] {
            assert!(
                matches!(parse_key(bad), Err(Error::InvalidNamespace(_))),
                "{bad}"
            );
        }
        assert!(matches!(parse_key("[ns"), Err(Error::UnterminatedPrefix)));
        assert!(matches!(parse_key("[ns]"), Err(Error::MissingReference)));
        assert!(matches!(
            parse_key(&"a".repeat(2000)),
            Err(Error::KeyTooLong(2000))
        ));
    }

    #[test]
    fn plan_dedupes_keys_and_subjects() {
        let plan = KeyPlan::new(
            [
                "nginx",
                "docker.io/library/nginx:latest",
                "nginx",
                "[ns]nginx",
                "B@D",
            ]
            .map(String::from)
            .to_vec(),
        );
        let keys: Vec<&str> = plan.items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "nginx",
                "docker.io/library/nginx:latest",
                "[ns]nginx",
                "B@D"
            ]
        );
        assert_eq!(plan.subjects.len(), 2);
        assert!(matches!(plan.items[0].1, Ok(0)));
        assert!(matches!(plan.items[1].1, Ok(0)));
        assert!(matches!(plan.items[2].1, Ok(1)));
        assert!(plan.items[3].1.is_err());
    }

    #[test]
    fn memoised_parses_equal_the_parser_beyond_the_memo_size() {
        // More distinct keys than the memo holds, each asked twice: every answer is the full
        // parser's, including after shards were emptied.
        for round in 0..2 {
            for n in 0..(MEMO_PER_SHARD * MEMO_SHARDS + 300) {
                let text = match n % 4 {
                    0 => format!("reg.example:5000/team/app{n}@sha256:{n:064x}"),
                    1 => format!("app{n}:v{n}"),
                    2 => format!("[ns-{n}]ghcr.io/o/app{n}:t@sha256:{n:064x}"),
                    _ => format!("[]app{n}"),
                };
                let memo = parse_key(&text).unwrap();
                assert_eq!(
                    *memo,
                    parse_key_uncached(&text).unwrap(),
                    "round {round}: {text}"
                );
                assert_eq!(memo.normalised, memo.reference.to_string());
                assert_eq!(
                    memo.subject.as_ref().map(|s| s.digest()),
                    memo.reference.digest()
                );
            }
        }
        assert!(parse_key("UPPER/Case:bad tag").is_err());
        assert!(
            parse_key("UPPER/Case:bad tag").is_err(),
            "a failure was memoised"
        );
    }

    #[test]
    fn small_and_large_plans_dedupe_alike() {
        let base = [
            "nginx",
            "docker.io/library/nginx:latest",
            "[team-a]nginx",
            "nginx",
            "not a reference",
            "[]nginx",
            "reg.io/a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ];
        let small: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        let plan = KeyPlan::new(small.clone());
        // Padded past the linear limit with distinct keys, the first items must plan the same.
        let mut large = small.clone();
        large.extend((0..LINEAR_DEDUP_KEYS).map(|n| format!("pad/app{n}")));
        large.extend(small);
        let big = KeyPlan::new(large);
        assert_eq!(big.items.len(), plan.items.len() + LINEAR_DEDUP_KEYS);
        let shown = |items: &[(ItemKey, Result<usize, Error>)]| -> Vec<String> {
            items
                .iter()
                .map(|(k, r)| format!("{} {r:?}", k.as_str()))
                .collect()
        };
        assert_eq!(shown(&big.items[..plan.items.len()]), shown(&plan.items));
        let names = |p: &KeyPlan| -> Vec<String> {
            p.subjects
                .iter()
                .map(|s| format!("{:?}{}", s.namespace, s.normalised))
                .collect()
        };
        assert_eq!(names(&plan), names(&big)[..plan.subjects.len()].to_vec());
        assert_eq!(plan.items.len(), 6, "one duplicate key dropped");
        assert_eq!(
            plan.subjects.len(),
            3,
            "nginx (3 spellings), [team-a]nginx, reg.io/a"
        );
    }
}
