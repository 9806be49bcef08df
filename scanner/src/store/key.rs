//! The tag map's key, `registry/repository:tag` (verdicts are keyed by
//! [`crate::subject::SubjectKey`]). Built from a parsed [`ImageReference`], so the reference
//! grammar is checked once, by its parser; [`TagKey::parse`] reads canonical text back and
//! refuses anything it would have to normalise.

use std::fmt;
use std::str::FromStr;

use crate::registry::{ImageReference, Repository};

use super::StoreError;

/// A tag of a repository, the key of the tag map.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey {
    repository: Repository,
    tag: String,
}

impl TagKey {
    /// The tag `reference` names; `None` when it names none.
    pub fn of_reference(reference: &ImageReference) -> Option<Self> {
        Some(TagKey {
            repository: reference.repository().clone(),
            tag: reference.tag()?.to_owned(),
        })
    }

    /// Parses the canonical `registry/repository:tag`.
    pub fn parse(input: &str) -> Result<Self, StoreError> {
        let err = |reason: String| StoreError::InvalidKey {
            what: "tag key",
            input: input.to_owned(),
            reason,
        };
        let reference = ImageReference::parse(input).map_err(|e| err(e.to_string()))?;
        if reference.digest().is_some() {
            return Err(err("a tag key names a tag, not a digest".into()));
        }
        let key = Self::of_reference(&reference)
            .ok_or_else(|| err("a tag key has the form registry/repository:tag".into()))?;
        if key.to_string() != input {
            return Err(err(format!(
                "not in canonical form; write it as {key} (registry and tag included)"
            )));
        }
        Ok(key)
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

impl fmt::Debug for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TagKey({self})")
    }
}

impl FromStr for TagKey {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TagKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys() {
        let t = TagKey::parse("r.io/app/web:v1.2_3-x").unwrap();
        assert_eq!(t.tag(), "v1.2_3-x");
        assert_eq!(t.to_string(), "r.io/app/web:v1.2_3-x");
        assert!(TagKey::parse("localhost:5000/app:v1").is_ok());
        assert!(TagKey::parse("r.io/app:-bad").is_err());
        let e = TagKey::parse("r.io/app").unwrap_err();
        assert!(e.to_string().contains("r.io/app:latest"), "{e}");
        assert!(
            TagKey::parse("nginx:1").is_err(),
            "normalised, not canonical"
        );
    }
}
