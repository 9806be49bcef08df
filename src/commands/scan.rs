//! `verdict scan REGISTRY[/REPO[:TAG|@DIGEST]]`: pre-verifies existing images — one tag or
//! digest, every tag of a repository, or every repository of a registry (its catalog) — with a
//! progress bar and a summary. The backfill when Verdict is
//! installed beside a registry with history, and the reconciliation for best-effort webhooks.
//!
//! Without `--nats-url` each image is verified here and the summary says what a lookup would
//! answer. With it, each image is handed to the running servers' workers as a push event (they
//! verify, store and fan the verdicts out to every replica), since the store belongs to them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use verdict_events::{Action, EventBus, JetStream, JetStreamConfig, RegistryEvent};
use verdict_scanner::registry::{ImageReference, RegistryClient};
use verdict_scanner::verify::ImageVerifier;

use super::{EXIT_INVALID, EXIT_USAGE};
use crate::cli::ScanArgs;

/// Tags examined per repository at most.
const MAX_TAGS: usize = 100_000;
/// Repositories examined per registry at most.
const MAX_REPOSITORIES: usize = 100_000;

#[derive(Default)]
struct Summary {
    allowed: Vec<String>,
    denied: Vec<(String, String)>,
    failed: Vec<(String, String)>,
    queued: usize,
}

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(scan(args))
}

async fn scan(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let trust = super::trust::TrustRuntime::load(&args.config, &args.trust, &args.registry)
        .await?
        .current();
    let config = Arc::clone(trust.for_namespace(args.namespace.as_deref())?);
    let registry = super::registry::client(&args.registry, &config.store)?;
    let images = if args.target.contains('/') {
        let target = ImageReference::parse(&args.target)
            .with_context(|| format!("invalid image or repository {:?}", args.target))?;
        images(&registry, &target, &args.target).await?
    } else {
        // A whole registry: every repository of its catalog, every tag of each.
        let (repos, more) = registry
            .catalog(&args.target, MAX_REPOSITORIES)
            .await
            .with_context(|| format!("cannot list the repositories of {}", args.target))?;
        if more {
            eprintln!(
                "verdict: {} has more than {MAX_REPOSITORIES} repositories; scanning the first {MAX_REPOSITORIES}",
                args.target
            );
        }
        let mut all = Vec::new();
        for repo in repos {
            let reference = format!("{}/{repo}", args.target);
            let target = ImageReference::parse(&reference)
                .with_context(|| format!("the catalog names {reference:?}"))?;
            all.extend(images(&registry, &target, &reference).await?);
        }
        all
    };
    eprintln!("verdict: {} image(s) in {}", images.len(), args.target);

    let bar = ProgressBar::new(images.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = Summary::default();
    match &args.nats_url {
        Some(url) => {
            let js = JetStream::connect(JetStreamConfig::new(url)).await?;
            let cancel = tokio_util::sync::CancellationToken::new();
            tokio::time::timeout(Duration::from_secs(30), js.set_up(&cancel))
                .await
                .with_context(|| format!("NATS at {url} did not answer within 30 s"))??;
            let stamp = Utc::now().timestamp_millis();
            for image in &images {
                // Workers verify digests: resolve tags here, as a registry's push event would
                // carry the digest.
                let digest = match image.digest() {
                    Some(d) => d.clone(),
                    None => match registry.resolve(image).await {
                        Ok(d) => d.digest,
                        Err(e) => {
                            summary.failed.push((image.to_string(), e.to_string()));
                            bar.inc(1);
                            continue;
                        }
                    },
                };
                let event = RegistryEvent {
                    id: format!("scan-{stamp}-{image}"),
                    action: Action::Push,
                    repository: image.repository().clone(),
                    digest: Some(digest),
                    tag: image.tag().map(str::to_owned),
                    media_type: None,
                    source: "scan".into(),
                    received_at: Some(Utc::now()),
                };
                match js.publish(&event).await {
                    Ok(()) => summary.queued += 1,
                    Err(e) => summary.failed.push((image.to_string(), e.to_string())),
                }
                bar.inc(1);
            }
        }
        None => {
            let verifier = ImageVerifier::new(registry.clone(), config);
            let mut results = futures::stream::iter(images.iter().cloned())
                .map(|image| {
                    let verifier = verifier.clone();
                    async move {
                        let outcome = verifier.verify(&image, Utc::now()).await;
                        (image, outcome)
                    }
                })
                .buffer_unordered(args.concurrency.max(1));
            while let Some((image, outcome)) = results.next().await {
                bar.set_message(image.to_string());
                match outcome {
                    Ok(r) if r.is_success => summary.allowed.push(image.to_string()),
                    Ok(r) => {
                        let why = r
                            .reports
                            .iter()
                            .find(|x| !x.is_success)
                            .map(|x| x.message.clone())
                            .unwrap_or_default();
                        summary.denied.push((image.to_string(), why));
                    }
                    Err(e) => summary.failed.push((image.to_string(), e.to_string())),
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    print_summary(&summary);
    Ok(if !summary.failed.is_empty() {
        ExitCode::from(EXIT_USAGE)
    } else if !summary.denied.is_empty() {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

/// The images `target` names: itself with a tag or digest, else every tag of the repository.
async fn images(
    registry: &RegistryClient,
    target: &ImageReference,
    written: &str,
) -> anyhow::Result<Vec<ImageReference>> {
    let bare = !written.contains('@')
        && !written
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
    if !bare {
        return Ok(vec![target.clone()]);
    }
    let repo = target.repository();
    let (tags, more) = registry
        .list_tags(repo, MAX_TAGS)
        .await
        .with_context(|| format!("cannot list the tags of {repo}"))?;
    if more {
        eprintln!("verdict: {repo} has more than {MAX_TAGS} tags; scanning the first {MAX_TAGS}");
    }
    Ok(tags
        .iter()
        // Signature and attestation tags of the tag schema are not images.
        .filter(|t| !t.starts_with("sha256-"))
        .filter_map(|t| ImageReference::with_tag(repo.clone(), t).ok())
        .collect())
}

fn print_summary(s: &Summary) {
    if s.queued > 0 {
        println!(
            "queued:  {} (the servers' workers verify them and every replica receives the verdicts)",
            s.queued
        );
    }
    if !s.allowed.is_empty() || !s.denied.is_empty() {
        println!("allowed: {}", s.allowed.len());
        println!("denied:  {}", s.denied.len());
    }
    println!("errors:  {}", s.failed.len());
    for (image, why) in &s.denied {
        println!("  DENIED  {image}: {why}");
    }
    for (image, why) in &s.failed {
        println!("  ERROR   {image}: {why}");
    }
}
