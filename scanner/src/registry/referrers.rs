//! Referrer discovery: the OCI 1.1 referrers API with `artifactType` filtering and `Link` paging,
//! falling back to the `sha256-<hex>` tag-schema index when the registry lacks the API.

use std::collections::HashSet;
use std::time::Instant;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use super::client::RegistryClient;
use super::media::parse_index;
use super::transport::{Call, read_capped};
use super::{Descriptor, Digest, RegistryError, Repository, media_type};

/// Where the referrers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersSource {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The `<alg>-<hex>` tag-schema index (registry without the referrers API).
    TagSchema,
}

/// The referrers of one subject.
#[derive(Clone, Debug)]
pub struct Referrers {
    pub subject: Digest,
    /// Descriptors whose `artifactType` matches the filter, plus those without an `artifactType`
    /// (the caller classifies those from the manifest, e.g. legacy Notation signatures).
    pub manifests: Vec<Descriptor>,
    /// True when more referrers existed than `max_referrers` (or pages than `max_referrer_pages`).
    pub truncated: bool,
    pub source: ReferrersSource,
}

/// Statuses on the referrers endpoint that mean "this registry has no referrers API": 404 per the
/// distribution spec, and 405 from registries/proxies that do not route the path at all. A 400 is
/// not a fallback trigger: registries with the API answer it for bad digests, which we never send.
const NO_API: [StatusCode; 2] = [StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED];

impl RegistryClient {
    /// Lists referrers of `subject`, optionally only those of `artifact_type` (re-filtered here
    /// whatever the registry did). At most `max_referrers` are returned; registry failures are
    /// errors, never an empty list.
    pub async fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let what = format!("referrers of {repo}@{subject}");
        let artifact_type = artifact_type.filter(|t| !t.is_empty());
        let what = what.as_str();
        self.with_deadline(repo, what, |deadline| {
            self.referrers_api(repo, subject, artifact_type, what, deadline)
        })
        .await
    }

    async fn referrers_api(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
        what: &str,
        deadline: Instant,
    ) -> Result<Referrers, RegistryError> {
        let limits = self.config();
        let mut url = self.url(repo, &format!("referrers/{subject}"))?;
        if let Some(at) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", at);
        }
        let mut acc = Accumulator::new(limits.max_referrers, artifact_type);
        let mut seen_pages = HashSet::new();
        let mut next = Some(url);
        let mut first = true;
        while let Some(url) = next.take() {
            if !seen_pages.insert(url.to_string()) {
                let reason = format!("Link rel=\"next\" loops back to {url}");
                return Err(invalid(repo, what, reason));
            }
            if seen_pages.len() > limits.max_referrer_pages {
                let pages = limits.max_referrer_pages;
                tracing::warn!(
                    registry = repo.registry(),
                    %subject,
                    pages,
                    "referrers paging hit the page limit"
                );
                acc.truncated = true;
                break;
            }
            let call = Call {
                repo,
                method: Method::GET,
                url: url.clone(),
                accept: &[media_type::OCI_INDEX],
                what,
                pass: if first { &NO_API } else { &[] },
            };
            let resp = self.transport.send(&call, deadline).await?;
            let status = resp.status();
            if first && NO_API.contains(&status) {
                let status = status.as_u16();
                tracing::debug!(
                    registry = repo.registry(),
                    status,
                    "no referrers API; using the tag schema"
                );
                return self
                    .referrers_by_tag_schema(repo, subject, acc, deadline)
                    .await;
            }
            first = false;
            let link = next_link(resp.headers(), &url).map_err(|r| invalid(repo, what, r))?;
            let limit = limits.max_manifest_bytes;
            let bytes = read_capped(resp, limit, what, repo.registry()).await?;
            let index =
                parse_index(&bytes, what).map_err(|e| invalid(repo, what, e.to_string()))?;
            acc.add(index.manifests);
            if acc.truncated {
                break;
            }
            next = link;
        }
        Ok(acc.finish(subject, ReferrersSource::Api, repo))
    }

    async fn referrers_by_tag_schema(
        &self,
        repo: &Repository,
        subject: &Digest,
        mut acc: Accumulator<'_>,
        deadline: Instant,
    ) -> Result<Referrers, RegistryError> {
        let tag = subject.referrers_tag();
        let what = format!("referrers tag-schema index {repo}:{tag}");
        let call = Call {
            repo,
            method: Method::GET,
            url: self.url(repo, &format!("manifests/{tag}"))?,
            accept: &[media_type::OCI_INDEX],
            what: &what,
            pass: &[StatusCode::NOT_FOUND],
        };
        let resp = self.transport.send(&call, deadline).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(acc.finish(subject, ReferrersSource::TagSchema, repo));
        }
        let bytes = read_capped(
            resp,
            self.config().max_manifest_bytes,
            &what,
            repo.registry(),
        )
        .await?;
        let index = parse_index(&bytes, &what)?;
        acc.add(index.manifests);
        Ok(acc.finish(subject, ReferrersSource::TagSchema, repo))
    }
}

/// Collects filtered, de-duplicated descriptors up to the limit.
struct Accumulator<'a> {
    max: usize,
    artifact_type: Option<&'a str>,
    seen: HashSet<Digest>,
    out: Vec<Descriptor>,
    truncated: bool,
}

impl<'a> Accumulator<'a> {
    fn new(max: usize, artifact_type: Option<&'a str>) -> Self {
        Accumulator {
            max,
            artifact_type,
            seen: HashSet::new(),
            out: Vec::new(),
            truncated: false,
        }
    }

    fn add(&mut self, descriptors: Vec<Descriptor>) {
        for d in descriptors {
            let declared = d.artifact_type.as_deref().filter(|t| !t.is_empty());
            let wanted = match (self.artifact_type, declared) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            };
            if !wanted || self.seen.contains(&d.digest) {
                continue;
            }
            if self.out.len() >= self.max {
                self.truncated = true;
                return;
            }
            self.seen.insert(d.digest.clone());
            self.out.push(d);
        }
    }

    fn finish(self, subject: &Digest, source: ReferrersSource, repo: &Repository) -> Referrers {
        if self.truncated {
            tracing::warn!(registry = repo.registry(), repository = repo.name(), %subject,
                max = self.max, "more referrers than max_referrers; the rest are not examined");
        }
        Referrers {
            subject: subject.clone(),
            manifests: self.out,
            truncated: self.truncated,
            source,
        }
    }
}

fn invalid(repo: &Repository, what: &str, reason: String) -> RegistryError {
    RegistryError::InvalidResponse {
        registry: repo.registry().to_string(),
        what: what.to_string(),
        reason,
    }
}

/// The `rel="next"` target of the `Link` headers, resolved against `current`; it must stay on the
/// same scheme, host and port (credentials are sent to it).
fn next_link(headers: &HeaderMap, current: &Url) -> Result<Option<Url>, String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else {
            return Err("Link header is not ASCII".into());
        };
        for (target, params) in split_links(value) {
            let is_next = params.iter().any(|p| {
                let p = p.trim();
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if !is_next {
                continue;
            }
            let next = current
                .join(target)
                .map_err(|e| format!("Link target {target:?} is not a URL: {e}"))?;
            if next.scheme() != current.scheme()
                || next.host_str() != current.host_str()
                || next.port_or_known_default() != current.port_or_known_default()
            {
                return Err(format!(
                    "Link rel=\"next\" points to another origin ({next}); refusing to follow"
                ));
            }
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// Splits `<a>; rel="next", <b>; rel="prev"` into (target, params).
fn split_links(value: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let target = &rest[start + 1..start + end];
        rest = &rest[start + end + 1..];
        let params_end = rest.find('<').unwrap_or(rest.len());
        let params = rest[..params_end]
            .split(';')
            .map(|p| p.trim().trim_end_matches(',').trim())
            .filter(|p| !p.is_empty())
            .collect();
        rest = &rest[params_end..];
        out.push((target, params));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, LINK};

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LINK, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn link_next_relative_and_absolute() {
        let cur =
            Url::parse("http://127.0.0.1:5000/v2/a/b/referrers/sha256:00?artifactType=x").unwrap();
        let n = next_link(
            &headers(r#"</v2/a/b/referrers/sha256:00?n=2&last=abc>; rel="next""#),
            &cur,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            n.as_str(),
            "http://127.0.0.1:5000/v2/a/b/referrers/sha256:00?n=2&last=abc"
        );
        let n = next_link(
            &headers(
                r#"<http://127.0.0.1:5000/p0>; rel="prev", <http://127.0.0.1:5000/p2>; rel=next"#,
            ),
            &cur,
        )
        .unwrap()
        .unwrap();
        assert_eq!(n.path(), "/p2");
        assert!(next_link(&headers(r#"<http://evil.example/p>; rel="next""#), &cur).is_err());
        assert!(next_link(&HeaderMap::new(), &cur).unwrap().is_none());
    }

    #[test]
    fn accumulator_filters_dedupes_and_truncates() {
        let d = |n: u8, at: Option<&str>| Descriptor {
            artifact_type: at.map(str::to_string),
            ..Descriptor::new(media_type::OCI_MANIFEST, Digest::sha256_of(&[n]), 1)
        };
        let mut acc = Accumulator::new(2, Some("sig"));
        acc.add(vec![
            d(1, Some("sig")),
            d(2, Some("sbom")),
            d(1, Some("sig")),
            d(3, None),
        ]);
        assert_eq!(acc.out.len(), 2);
        assert!(!acc.truncated);
        acc.add(vec![d(4, Some("sbom"))]);
        assert!(!acc.truncated);
        acc.add(vec![d(5, Some("sig"))]);
        assert!(acc.truncated);
    }
}
