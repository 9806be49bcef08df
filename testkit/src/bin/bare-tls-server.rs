//! `bare-tls-server`: the baseline of the cache-hit load benchmark (benches/load/run.sh).
//!
//! The same stack as Verdict's Gatekeeper listener — tokio-rustls 0.26 with the aws-lc-rs
//! provider, TLS 1.3 only, ALPN `h2`/`http/1.1`, TCP_NODELAY, hyper through hyper-util on the
//! multi-threaded tokio runtime — and nothing else: every POST is answered 200 with the bytes of
//! `--body` (a response Verdict gave for the same request) as `application/json`, after reading
//! the request body. Anything else gets 405.
//!
//! `bare-tls-server --listen 127.0.0.1:7443 --cert tls.crt --key tls.key --body answer.json`

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Parser)]
#[command(
    name = "bare-tls-server",
    about = "Answers every POST with fixed bytes over TLS 1.3 (benchmark baseline)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Server certificate chain (PEM), e.g. Verdict's `<data-dir>/tls/tls.crt`.
    #[arg(long)]
    cert: PathBuf,
    /// Server private key (PEM), e.g. Verdict's `<data-dir>/tls/tls.key`.
    #[arg(long)]
    key: PathBuf,
    /// File whose bytes are the body of every answer.
    #[arg(long)]
    body: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let body = Bytes::from(
        std::fs::read(&args.body)
            .with_context(|| format!("reading the answer body {}", args.body.display()))?,
    );
    if body.is_empty() {
        bail!(
            "{} is empty: pass the response Verdict gave for the benchmark request",
            args.body.display()
        );
    }
    let tls = server_config(&args.cert, &args.key)?;
    // The same runtime as `verdict serve`: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args.listen, tls, body))
}

fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the certificates in {}", cert.display()))?;
    if certs.is_empty() {
        bail!("no CERTIFICATE block in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 with the aws-lc-rs provider")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS configuration")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(listen: SocketAddr, tls: Arc<ServerConfig>, body: Bytes) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!(
        "bare-tls-server: serving https://{} ({} body bytes)",
        listener.local_addr()?,
        body.len()
    );
    let acceptor = TlsAcceptor::from(tls);
    // Each distinct (TLS version, cipher suite, ALPN) seen is logged once.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let builder = auto::Builder::new(TokioExecutor::new());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("bare-tls-server: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let body = body.clone();
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("bare-tls-server: TLS handshake with {peer} failed: {e}");
                    return;
                }
            };
            let conn = stream.get_ref().1;
            let params = format!(
                "{:?}, {:?}, ALPN {:?}",
                conn.protocol_version(),
                conn.negotiated_cipher_suite().map(|s| s.suite()),
                conn.alpn_protocol().map(String::from_utf8_lossy)
            );
            if seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(params.clone())
            {
                eprintln!("bare-tls-server: connection from {peer}: {params}");
            }
            let service = hyper::service::service_fn(move |req| answer(req, body.clone()));
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                // Load tools close connections abruptly at the end of a run; not worth a line each.
                let _ = e;
            }
        });
    }
}

async fn answer(req: Request<Incoming>, body: Bytes) -> Result<Response<Full<Bytes>>> {
    if req.method() != Method::POST {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return Ok(r);
    }
    // Read the request like a real handler does.
    let _request = req.into_body().collect().await?.to_bytes();
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
