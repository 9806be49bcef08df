//! Our reference parser against oci-client's (distribution's regex grammar), which it replaced on
//! the serving path: for every input, both accept with the same registry, repository, tag and
//! digest, or both reject. "oci-client accepts" here means what `ImageReference::parse` used to
//! accept: oci-client's parse, then our repository, tag and digest checks.
//!
//! One deliberate difference: we accept a bracketed IPv6 registry (`[::1]:5000/app`), which
//! distribution's grammar (used by Ratify) allows and oci-client rejects.

use std::str::FromStr;

use verdict_scanner::registry::{Digest, ImageReference, Repository};

type Parts = (String, String, Option<String>, Option<String>);

fn ours(input: &str) -> Option<Parts> {
    let r = ImageReference::parse(input).ok()?;
    Some((
        r.repository().registry().to_string(),
        r.repository().name().to_string(),
        r.tag().map(str::to_string),
        r.digest().map(|d| d.to_string()),
    ))
}

fn oracle(input: &str) -> Option<Parts> {
    if input.is_empty() || input.trim() != input {
        return None;
    }
    let r = oci_client::Reference::from_str(input).ok()?;
    let digest = match r.digest() {
        Some(d) => Some(Digest::parse(d).ok()?.to_string()),
        None => None,
    };
    let repository = Repository::new(r.registry(), r.repository()).ok()?;
    if let Some(tag) = r.tag() {
        ImageReference::with_tag(repository.clone(), tag).ok()?;
    }
    Some((
        repository.registry().to_string(),
        repository.name().to_string(),
        r.tag().map(str::to_string),
        digest,
    ))
}

/// Inputs where we deliberately differ from oci-client (see the module docs).
fn deliberate(input: &str) -> bool {
    match input.split_once('/') {
        Some((first, _)) => first.starts_with('['),
        None => false,
    }
}

fn corpus() -> Vec<String> {
    let d = format!("sha256:{}", "ab".repeat(32));
    let mut v: Vec<String> = [
        "nginx",
        "nginx:1.25",
        "library/nginx",
        "docker.io/nginx",
        "index.docker.io/nginx",
        "index.docker.io/foo/bar:1",
        "docker.io/library/nginx:latest",
        "localhost/app",
        "localhost:5000/app:v1",
        "localhost:5000",
        "127.0.0.1:5000/a/b/c:v1",
        "[::1]:5000/app",
        "[::1]/app",
        "[fe80::1%eth0]:5000/app",
        "[]:5000/app",
        "myacr.azurecr.io/app",
        "myacr.azurecr.io/team/app:1.0.0-rc.1",
        "MyAcr.AzureCR.io/app",
        "Foo/bar",
        "foo/Bar",
        "Nginx",
        "example.com",
        "example.com:443",
        "example.com:/app",
        ":5000/app",
        "-bad.io/app",
        "bad-.io/app",
        "a..b.io/app",
        "reg.io:port/app",
        "reg.io:5000:6000/app",
        "reg.io/a//b",
        "reg.io/a/",
        "/app",
        "reg.io/",
        "reg.io/app:",
        "reg.io/app:-x",
        "reg.io/app:.x",
        "reg.io/app:_x",
        "reg.io/app:v1:v2",
        "reg.io/a__b/c---d/e.f_g",
        "reg.io/a___b",
        "reg.io/a._b",
        "reg.io/a-.b",
        "reg.io/app@sha256:abc",
        "reg.io/app@md5:0123",
        "reg.io/app@",
        "reg.io/app@@sha256:00",
        "app@sha256",
        "reg.io/app?x=1",
        "reg.io/app#frag",
        "reg.io/ app",
        "ns/app",
        "a/b/c/d/e",
        "under_score.io/app",
        "xn--bcher-kva.example/app",
        "r.io/é",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for base in [
        "nginx",
        "reg.io/app",
        "localhost:5000/a/b",
        "Reg.IO/app",
        "reg.io/app:v1",
    ] {
        v.push(format!("{base}@{d}"));
        v.push(format!("{base}@sha256:{}", "AB".repeat(32)));
        v.push(format!("{base}@sha512:{}", "cd".repeat(64)));
        v.push(format!("{base}@sha256:{}", "ab".repeat(31)));
    }
    v.push(format!("reg.io/{}:v1", "a".repeat(240)));
    v.push(format!("reg.io/{}:v1", "a".repeat(260)));
    v.push(format!("reg.io/app:{}", "t".repeat(128)));
    v.push(format!("reg.io/app:{}", "t".repeat(129)));
    v
}

/// A deterministic stream of references built from pieces that exercise each grammar rule.
fn generated(n: usize) -> Vec<String> {
    let registries = [
        "",
        "reg.io/",
        "localhost/",
        "localhost:5000/",
        "Reg.io/",
        "r-1.x.io:80/",
        "a/",
        "[::1]:1/",
        "x_y.io/",
        "-r.io/",
    ];
    let paths = [
        "app", "a/b", "a.b", "a__b", "a-b", "a--b", "a_b/c", "A", "a..b", "a/b/", "1/2/3", "a.-b",
    ];
    let tags = ["", ":v1", ":latest", ":1.0-rc_1", ":", ":-x", ":X.Y"];
    let digests = [
        String::new(),
        format!("@sha256:{}", "0f".repeat(32)),
        "@sha256:xyz".to_string(),
        format!("@sha384:{}", "0f".repeat(48)),
    ];
    let mut out = Vec::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pick = |len: usize, shift: u32| ((x >> shift) as usize) % len;
        out.push(format!(
            "{}{}{}{}",
            registries[pick(registries.len(), 0)],
            paths[pick(paths.len(), 8)],
            tags[pick(tags.len(), 16)],
            digests[pick(digests.len(), 24)]
        ));
    }
    out
}

#[test]
fn our_parser_agrees_with_oci_client_on_every_reference() {
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    let inputs: Vec<String> = corpus().into_iter().chain(generated(4000)).collect();
    for input in inputs.iter().filter(|i| !deliberate(i)) {
        let (a, b) = (ours(input), oracle(input));
        accepted += usize::from(a.is_some());
        if a != b {
            disagreements.push(format!("{input:?}: ours {a:?}, oci-client {b:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} references parse differently:\n{}",
        disagreements.len(),
        inputs.len(),
        disagreements.join("\n")
    );
    // The corpus must exercise both outcomes in quantity.
    assert!(
        accepted > 500 && inputs.len() - accepted > 500,
        "accepted {accepted} of {}",
        inputs.len()
    );
}

#[test]
fn normalises_like_docker() {
    let r = |s: &str| ImageReference::parse(s).unwrap().to_string();
    assert_eq!(r("nginx"), "docker.io/library/nginx:latest");
    assert_eq!(r("index.docker.io/foo/bar:1"), "docker.io/foo/bar:1");
    assert_eq!(r("localhost:5000"), "docker.io/library/localhost:5000");
    assert_eq!(r("localhost/app"), "localhost/app:latest");
    // Deliberate differences from oci-client (module docs).
    assert_eq!(r("[::1]:5000/app"), "[::1]:5000/app:latest");
    assert_eq!(r("[::1]/a/b:v1"), "[::1]/a/b:v1");
    assert_eq!(r("MyAcr.AzureCR.io/app"), "myacr.azurecr.io/app:latest");
    for bad in [
        "[]:5000/app",
        "[::1]x/app",
        "[::1]:/app",
        "[zz]/app",
        "Foo/bar",
        "Foo",
    ] {
        assert!(ImageReference::parse(bad).is_err(), "{bad:?} accepted");
    }
}
