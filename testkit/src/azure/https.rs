//! The HTTPS listener under every Azure fake: tokio-rustls (ALPN `h2`, `http/1.1`) and hyper-util's
//! auto connection builder serving an axum [`Router`] on 127.0.0.1. Stopping aborts the accept
//! loop and every open connection, so clients see a refused connection afterwards, not a 503.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds 127.0.0.1 on a port from [`crate::process::free_port`] (outside the ephemeral range, so
/// a restart can take the same port again).
pub(crate) async fn bind() -> Result<TcpListener> {
    let port = crate::process::free_port()?;
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))
}

/// A running HTTPS server. Aborted on drop.
pub(crate) struct HttpsServer {
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    router: Router,
    task: Option<JoinHandle<()>>,
}

impl HttpsServer {
    /// Serves `router` over TLS on `listener` (from [`bind`]).
    pub(crate) fn start(
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        router: Router,
    ) -> Result<Self> {
        let addr = listener.local_addr().context("listener address")?;
        let task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls.clone()),
            router.clone(),
        ));
        Ok(Self {
            addr,
            tls,
            router,
            task: Some(task),
        })
    }

    /// The listening port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listener and every open connection.
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops (if running) and listens again on the same port with the same state.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("binding {} again", self.addr))?;
        self.task = Some(tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(self.tls.clone()),
            self.router.clone(),
        )));
        Ok(())
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until aborted; the connections live in a `JoinSet` owned by this future,
/// so aborting it closes them too.
async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let service = TowerToHyperService::new(router.clone());
                    conns.spawn(async move {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let builder = auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    });
                }
                // EMFILE and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
