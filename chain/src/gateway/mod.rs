//! The gateway: a node's REST + WebSocket API (axum), its typed client, and access tokens.
//!
//! **Owns**: the HTTP surface of a node (JSON under `/v1`, the WebSocket `/v1/ws`, `/health`, `/metrics`), the
//! decoding and checking of everything a client sends (encodings, sizes, heights, hashes, namespaces, tokens),
//! the mapping of every failure to a stable error code, and the [`client::GatewayClient`] that speaks it.
//! It sees a node only through the small [`NodeApi`] trait: the node shell implements it for a running node, and
//! [`testnode::TestNode`] for an in-process chain without consensus.
//!
//! **Must never**: trust a client's bytes (every body is bounded and decoded with checks; signatures are
//! verified by the node before admission), panic or hold a node lock across an `.await` (reads run on the
//! blocking pool and drop their guard there), decide or execute anything (it only submits and reads), or leak a
//! token secret.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use causeway_light_client::Hash;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::app::{App, Committed};
use crate::mempool::MempoolError;
use crate::tx::{SignedTx, TxError};

pub mod auth;
pub mod client;
mod error;
mod routes;
pub mod testnode;
pub mod tls;
pub mod types;
mod ws;

pub use auth::{Claims, Scope, TokenError, TokenSecret};
pub use error::ApiError;
pub use types::Status;

/// A read guard on a node's application: hold it briefly, never across an `.await`.
pub type AppGuard<'a> = Box<dyn Deref<Target = App> + 'a>;

/// Why a node refused a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Malformed, wrong chain, bad key or bad signature.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Refused by the mempool (full, duplicate, nonce).
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The node cannot take transactions now (shutting down).
    #[error("node unavailable: {0}")]
    Unavailable(String),
}

/// What the gateway needs from a node. Reads go through [`NodeApi::app`]; everything else is one call each.
///
/// The node shell's implementation is a thin mapping (its `submit` batches admissions itself, so the default
/// [`NodeApi::submit_many`] suffices):
///
/// ```ignore
/// #[async_trait::async_trait]
/// impl NodeApi for Shared {
///     fn status(&self) -> Status {
///         let s = Shared::status(self);
///         Status { chain_id: s.chain_id, moniker: s.moniker, validator: s.validator, height: s.height,
///                  block_id: s.block_id, time: s.time, hash_alg: s.hash_alg, round: s.round, peers: s.peers,
///                  mempool_txs: s.mempool_txs, catching_up: s.catching_up,
///                  seconds_since_commit: s.seconds_since_commit }
///     }
///     async fn submit(&self, tx: SignedTx) -> Result<Hash, Rejection> {
///         Shared::submit(self, tx).await.map_err(|e| match e {
///             SubmitError::Tx(e) => Rejection::Tx(e),
///             SubmitError::Mempool(e) => Rejection::Mempool(e),
///             SubmitError::ShuttingDown => Rejection::Unavailable("the node is shutting down".into()),
///         })
///     }
///     fn app(&self) -> AppGuard<'_> { Box::new(Shared::app(self)) }
///     fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> { self.blocks.subscribe() }
///     fn metrics(&self) -> String { self.metrics.render() }
/// }
/// ```
#[async_trait::async_trait]
pub trait NodeApi: Send + Sync + 'static {
    /// A status snapshot.
    fn status(&self) -> Status;

    /// Verify a transaction and admit it to the mempool; its hash on success.
    async fn submit(&self, tx: SignedTx) -> Result<Hash, Rejection>;

    /// Submit many transactions; one verdict per transaction, in order. The default submits them concurrently
    /// through [`NodeApi::submit`] (a node that batches admissions sees them together).
    async fn submit_many(&self, txs: Vec<SignedTx>) -> Vec<Result<Hash, Rejection>> {
        futures::future::join_all(txs.into_iter().map(|tx| self.submit(tx))).await
    }

    /// Read the application (blocks, headers, commits, validator sets, results, transaction index, state and
    /// proofs). Called on the blocking pool; the guard is dropped before any `.await`.
    fn app(&self) -> AppGuard<'_>;

    /// Every block committed from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>>;

    /// The node's metrics, Prometheus text.
    fn metrics(&self) -> String;
}

/// Who may call what, when access tokens are required.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The secret tokens are signed with.
    pub secret: TokenSecret,
    /// When true, reads (and `/metrics`, `/v1/ws`) need no token; submissions always need the `submit` scope.
    pub public_read: bool,
}

/// Runtime settings of a gateway.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Listen address, e.g. `127.0.0.1:8600` (port 0 picks a free port).
    pub listen: String,
    /// Largest request body, bytes (larger: 413 `payload_too_large`).
    pub max_body_bytes: usize,
    /// Most transactions in one batch.
    pub max_batch_txs: usize,
    /// Longest `?wait=commit`.
    pub max_wait: Duration,
    /// `/health` answers 503 when the last commit is older than this.
    pub max_block_age: Duration,
    /// Most heights one `/v1/events` query may span.
    pub max_event_range: u64,
    /// Most reads of the node (blocks, proofs, events…) running at once; more wait their turn, so a flood of
    /// queries cannot take every core from consensus.
    pub max_concurrent_reads: usize,
    /// Most open WebSocket subscriptions (more: 503 `too_many_subscriptions`).
    pub max_subscriptions: u64,
    /// Access tokens; `None`: everything is open.
    pub auth: Option<AuthSettings>,
    /// TLS, optionally mutual; `None`: plain HTTP.
    pub tls: Option<tls::TlsSettings>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "127.0.0.1:8600".into(),
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_txs: 20_000,
            max_wait: Duration::from_secs(30),
            max_block_age: Duration::from_secs(30),
            max_event_range: 100,
            max_concurrent_reads: 8,
            max_subscriptions: 1_024,
            auth: None,
            tls: None,
        }
    }
}

impl From<&crate::config::GatewayConfig> for GatewayConfig {
    /// The settings a node's configuration file gives (its listen address); defaults for the rest.
    fn from(c: &crate::config::GatewayConfig) -> Self {
        GatewayConfig {
            listen: c.listen.clone(),
            ..GatewayConfig::default()
        }
    }
}

/// The gateway's own metrics.
#[derive(Default)]
struct GatewayMetrics {
    /// Requests by (route, status).
    requests: Mutex<std::collections::BTreeMap<(String, u16), u64>>,
    txs_accepted: AtomicU64,
    txs_rejected: AtomicU64,
    ws_open: AtomicU64,
}

impl GatewayMetrics {
    fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP causeway_gateway_requests Requests answered by route and status."
        );
        let _ = writeln!(out, "# TYPE causeway_gateway_requests counter");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((route, status), n) in requests {
            let _ = writeln!(
                out,
                "causeway_gateway_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            (
                "txs_accepted",
                "Transactions admitted through the gateway.",
                &self.txs_accepted,
            ),
            (
                "txs_rejected",
                "Transactions refused through the gateway.",
                &self.txs_rejected,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP causeway_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE causeway_gateway_{name} counter");
            let _ = writeln!(out, "causeway_gateway_{name}_total {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP causeway_gateway_ws_connections Open WebSocket subscriptions."
        );
        let _ = writeln!(out, "# TYPE causeway_gateway_ws_connections gauge");
        let _ = writeln!(
            out,
            "causeway_gateway_ws_connections {}",
            self.ws_open.load(Ordering::Relaxed)
        );
        out
    }
}

/// What every handler gets.
#[derive(Clone)]
struct Ctx {
    api: Arc<dyn NodeApi>,
    config: Arc<GatewayConfig>,
    metrics: Arc<GatewayMetrics>,
    reads: Arc<tokio::sync::Semaphore>,
}

/// Routes with the scope they need, collected as they are added so the route list cannot drift from the router.
struct Routes {
    router: Router<Ctx>,
    list: Vec<(Method, &'static str)>,
}

impl Routes {
    fn add(mut self, method: Method, path: &'static str, handler: MethodRouter<Ctx>) -> Self {
        self.router = self.router.route(path, handler);
        self.list.push((method, path));
        self
    }
}

fn routes() -> Routes {
    let r = Routes {
        router: Router::new(),
        list: Vec::new(),
    };
    r.add(Method::POST, "/v1/txs", post(routes::submit_tx))
        .add(Method::POST, "/v1/txs/batch", post(routes::submit_batch))
        .add(Method::GET, "/v1/txs/{hash}", get(routes::get_tx))
        .add(Method::GET, "/v1/blocks/{height}", get(routes::get_block))
        .add(Method::GET, "/v1/headers/{height}", get(routes::get_header))
        .add(Method::GET, "/v1/commits/{height}", get(routes::get_commit))
        .add(
            Method::GET,
            "/v1/validators/{height}",
            get(routes::get_validators),
        )
        .add(Method::GET, "/v1/state/{namespace}/{key}", get(routes::get_state))
        .add(Method::POST, "/v1/proofs", post(routes::post_proofs))
        .add(Method::GET, "/v1/accounts/{address}", get(routes::get_account))
        .add(Method::GET, "/v1/events", get(routes::get_events))
        .add(Method::GET, "/v1/status", get(routes::get_status))
        .add(Method::GET, "/v1/ws", get(ws::upgrade))
        .add(Method::GET, "/health", get(routes::health))
        .add(Method::GET, "/metrics", get(routes::metrics))
}

/// Every route the router serves, as (method, path in axum's `{param}` syntax, which is OpenAPI's too).
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().list
}

/// The gateway's router over a node.
pub fn router(api: Arc<dyn NodeApi>, config: GatewayConfig) -> Router {
    let reads = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_reads.max(1)));
    let ctx = Ctx {
        api,
        config: Arc::new(config),
        metrics: Arc::new(GatewayMetrics::default()),
        reads,
    };
    let limit = ctx.config.max_body_bytes;
    routes()
        .router
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(ctx)
}

/// Per request: check the access token for the route's scope, and count the answer.
async fn guard(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = match check_token(&ctx, &request, route.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    };
    let key = (
        route.unwrap_or_else(|| "unmatched".into()),
        response.status().as_u16(),
    );
    *ctx.metrics
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default() += 1;
    response
}

fn check_token(ctx: &Ctx, request: &Request, route: Option<&str>) -> Result<(), ApiError> {
    let Some(auth) = &ctx.config.auth else {
        return Ok(());
    };
    let scope = match (request.method(), route) {
        (_, None | Some("/health")) => return Ok(()),
        // A read with a body (many keys): the read scope, like the other reads.
        (&Method::POST, Some("/v1/proofs")) if auth.public_read => return Ok(()),
        (&Method::POST, Some("/v1/proofs")) => Scope::Read,
        (&Method::POST, _) => Scope::Submit,
        _ if auth.public_read => return Ok(()),
        _ => Scope::Read,
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    // Browsers cannot set headers on a WebSocket: there, and only there, `?token=` is accepted too.
    let from_query = || {
        let query = if route == Some("/v1/ws") {
            request.uri().query()
        } else {
            None
        };
        query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(|t| t.to_string())
        })
    };
    let token = from_header.or_else(from_query).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("a token with the {scope} scope is required"),
        )
    })?;
    match auth.secret.authorize(token.trim(), scope, auth::unix_now()) {
        Ok(_) => Ok(()),
        Err(e @ TokenError::MissingScope(_)) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            e.to_string(),
        )),
    }
}

/// Why the gateway could not serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listen address is unusable.
    #[error("gateway listen address {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("gateway: {0}")]
    Serve(#[from] std::io::Error),
    /// The TLS material is unusable.
    #[error("gateway TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// A running gateway.
pub struct Server {
    addr: SocketAddr,
    https: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://addr` (or `https://addr` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// Stop accepting, finish the requests in flight, and return.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        match self.task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(GatewayError::Serve(std::io::Error::other(e.to_string()))),
        }
    }
}

/// Bind `config.listen` and serve the gateway over `api` on the current tokio runtime (over TLS when
/// `config.tls` is set).
pub async fn serve(api: Arc<dyn NodeApi>, config: GatewayConfig) -> Result<Server, GatewayError> {
    let listen = config.listen.clone();
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| GatewayError::Bind { addr: listen, source })?;
    let app = router(api, config);
    let (tx, rx) = oneshot::channel::<()>();
    let https = acceptor.is_some();
    let task = match acceptor {
        Some(acceptor) => tokio::spawn(tls::serve(listener, acceptor, app, rx)),
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        }),
    };
    tracing::info!(target: "gateway", %addr, tls = https, "gateway listening");
    Ok(Server {
        addr,
        https,
        shutdown: Some(tx),
        task,
    })
}
