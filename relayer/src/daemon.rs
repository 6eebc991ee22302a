//! The daemon shell: builds an [`Engine`] from `relayer.toml`, serves `/metrics` and `/health`, and runs the
//! `start`, `clear` and `status` commands.
//!
//! **Owns**: process concerns (keys from files, the HTTP listener, signals, exit conditions). **Must never**:
//! relay anything itself — every step is the engine's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use causeway_chain::gateway::client::GatewayClient;
use causeway_light_client::ChainId;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::chain::ChainHandle;
use crate::config::{ChainConfig, RelayerConfig};
use crate::engine::{CycleReport, Engine};
use crate::metrics::RelayerMetrics;
use crate::RelayError;

/// How the relayer is doing, for `/health`.
#[derive(Debug, Default)]
pub struct Health {
    inner: Mutex<HealthState>,
}

#[derive(Clone, Debug, Default, Serialize)]
struct HealthState {
    passes: u64,
    #[serde(skip)]
    last_ok: Option<Instant>,
    last_error: Option<String>,
    backlog: usize,
    packets_in_flight: usize,
    relayed: u64,
    failed: u64,
}

/// `/health`'s body.
#[derive(Debug, Serialize)]
struct HealthView {
    healthy: bool,
    seconds_since_pass: Option<u64>,
    #[serde(flatten)]
    state: HealthState,
}

impl Health {
    /// A pass finished.
    pub fn cycle_ok(&self, r: &CycleReport, in_flight: usize) {
        if let Ok(mut s) = self.inner.lock() {
            s.passes += 1;
            s.last_ok = Some(Instant::now());
            s.last_error = None;
            s.backlog = r.due.saturating_sub(r.relayed);
            s.packets_in_flight = in_flight;
            s.relayed += r.relayed as u64;
            s.failed += r.failed as u64;
        }
    }

    /// A pass could not read a chain (unreachable after retries, say); what it relayed still counts.
    pub fn cycle_failed(&self, r: &CycleReport, e: &RelayError) {
        if let Ok(mut s) = self.inner.lock() {
            s.last_error = Some(e.to_string());
            s.backlog = r.due.saturating_sub(r.relayed);
            s.relayed += r.relayed as u64;
            s.failed += r.failed as u64;
        }
    }

    fn view(&self, max_age: Duration) -> HealthView {
        let state = self.inner.lock().map(|s| s.clone()).unwrap_or_default();
        let age = state.last_ok.map(|t| t.elapsed());
        HealthView {
            healthy: age.is_some_and(|a| a <= max_age),
            seconds_since_pass: age.map(|a| a.as_secs()),
            state,
        }
    }
}

#[derive(Clone)]
struct Served {
    metrics: Arc<RelayerMetrics>,
    health: Arc<Health>,
    max_age: Duration,
}

async fn metrics(State(s): State<Served>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn health(State(s): State<Served>) -> impl IntoResponse {
    let v = s.health.view(s.max_age);
    let code = if v.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(v))
}

/// Serve `/metrics` and `/health` on `addr`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics_: Arc<RelayerMetrics>,
    health_: Arc<Health>,
    max_age: Duration,
) -> Result<SocketAddr, RelayError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RelayError::Listen(addr, e))?;
    let bound = listener.local_addr().map_err(|e| RelayError::Listen(addr, e))?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Served {
            metrics: metrics_,
            health: health_,
            max_age,
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}

fn handle(c: &ChainConfig, cfg: &RelayerConfig) -> Result<ChainHandle, RelayError> {
    let id = ChainId::new(&c.id).map_err(|e| RelayError::Config(format!("chain id {:?}: {e}", c.id)))?;
    let mut client = GatewayClient::new(&c.gateway).map_err(|source| RelayError::Gateway {
        chain: id.clone(),
        what: "connect".into(),
        source,
    })?;
    if let Some(t) = &c.token {
        client = client.with_token(t.clone());
    }
    Ok(ChainHandle::new(id, client, cfg.retry_policy()))
}

fn load_key(path: &std::path::Path) -> Result<causeway_light_client::SecretKey, RelayError> {
    causeway_chain::keys::load(path).map_err(|e| RelayError::Config(e.to_string()))
}

/// The engine `cfg` describes.
pub fn engine(cfg: &RelayerConfig, metrics: Arc<RelayerMetrics>) -> Result<Engine, RelayError> {
    let hub = handle(&cfg.hub, cfg)?;
    let members = cfg
        .members
        .iter()
        .map(|m| handle(m, cfg))
        .collect::<Result<Vec<_>, _>>()?;
    let mut e = Engine::new(hub, members, load_key(&cfg.key)?, cfg.engine(), metrics);
    for c in std::iter::once(&cfg.hub).chain(&cfg.members) {
        if let Some(k) = &c.key {
            let id = ChainId::new(&c.id).map_err(|e| RelayError::Config(e.to_string()))?;
            e = e.with_chain_key(id, load_key(k)?);
        }
    }
    Ok(e)
}

/// `start`: relay until SIGINT/SIGTERM.
pub async fn start(cfg: RelayerConfig) -> Result<(), RelayError> {
    let metrics = Arc::new(RelayerMetrics::new());
    let health = Arc::new(Health::default());
    let engine = engine(&cfg, metrics.clone())?;
    if let Some(addr) = cfg.listen {
        let max_age = Duration::from_millis(cfg.poll_ms.saturating_mul(3)).max(Duration::from_secs(30));
        let bound = serve(addr, metrics, health.clone(), max_age).await?;
        tracing::info!(%bound, "serving /metrics and /health");
        println!("relayer metrics on http://{bound}/metrics");
    }
    let (_req_tx, requests) = mpsc::unbounded_channel();
    let (report, mut reports) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move { while reports.recv().await.is_some() {} });
    let run = tokio::spawn(engine.run(
        Duration::from_millis(cfg.poll_ms),
        requests,
        report,
        stop,
        Some(health),
    ));
    causeway_chain::cli::wait_for_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = run.await;
    Ok(())
}

/// `clear`: relay until nothing is due (or `timeout`); the steps relayed.
pub async fn clear(cfg: RelayerConfig, timeout: Duration) -> Result<usize, RelayError> {
    let mut engine = engine(&cfg, Arc::new(RelayerMetrics::new()))?;
    let deadline = Instant::now() + timeout;
    let mut relayed = 0;
    loop {
        let r = engine.cycle().await?;
        for s in &r.steps {
            match &s.failure {
                None => println!("relayed: {} (height {} on {})", s.what, s.height, s.target),
                Some(f) => println!("failed: {} on {}: {f}", s.what, s.target),
            }
        }
        relayed += r.relayed;
        if r.due == 0 {
            return Ok(relayed);
        }
        if Instant::now() >= deadline {
            return Err(RelayError::Timeout(format!(
                "{} steps still due after {timeout:?}",
                r.due
            )));
        }
        if r.relayed + r.failed == 0 {
            tokio::time::sleep(Duration::from_millis(cfg.poll_ms.min(1000))).await;
        }
    }
}

/// `status`: each chain's height and the clients between hub and members, as JSON lines for people and scripts.
pub async fn status(cfg: RelayerConfig) -> Result<serde_json::Value, RelayError> {
    let mut engine = engine(&cfg, Arc::new(RelayerMetrics::new()))?;
    engine.learn().await?;
    let due = engine.due();
    let hub = handle(&cfg.hub, &cfg)?;
    let mut chains = vec![];
    for (id, tip) in engine.tips() {
        chains
            .push(serde_json::json!({"chain": id.to_string(), "height": tip.height, "time_ns": tip.time.0}));
    }
    let mut clients = vec![];
    for m in &cfg.members {
        let of = ChainId::new(&m.id).map_err(|e| RelayError::Config(e.to_string()))?;
        let slot = causeway_chain::xchain::client::Slot::of_member(&of);
        let on_hub = hub.value(slot.namespace(), slot.key()).await?.and_then(|raw| {
            <causeway_light_client::native::ClientState as causeway_light_client::Canonical>::decode(&raw)
                .ok()
        });
        clients.push(serde_json::json!({
            "host": hub.id().to_string(),
            "client_of": of.to_string(),
            "latest_height": on_hub.as_ref().map(|c| c.latest_height),
            "frozen": on_hub.as_ref().map(|c| c.frozen_height.is_some()),
        }));
    }
    Ok(serde_json::json!({
        "chains": chains,
        "clients": clients,
        "due": due.len(),
        "packets_in_flight": engine.knowledge().packets_in_flight(),
        "deals_in_flight": engine.knowledge().deals_in_flight(),
    }))
}
