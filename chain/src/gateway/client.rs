//! The typed client of the gateway: one method per route, the same JSON types as the server
//! ([`super::types`]), errors carrying the server's stable code. Used by the CLI, the benchmarks and the relayer.

use std::sync::Arc;
use std::time::Duration;

use causeway_light_client::{Address, Canonical, Hash, Namespace};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::types::{
    AccountView, BatchInput, BatchView, BlockView, CommitView, ErrorBody, EventsView, HeaderView, HealthView,
    ProofKey, ProofsInput, ProofsView, StateView, Status, SubmitView, TxInput, TxView, ValidatorsView,
    WsFrame, WsSubscribe,
};
use crate::message::Bytes;
use crate::tx::SignedTx;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be made or the answer not read (connection refused, timeout…).
    #[error("gateway request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The gateway answered with an error.
    #[error("gateway answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The answer is not what this client expects (another version of the gateway?).
    #[error("unexpected answer from the gateway: {0}")]
    Decode(String),
    /// The base URL is unusable.
    #[error("gateway URL {0:?}: expected http://host:port")]
    Url(String),
    /// The WebSocket failed.
    #[error("gateway WebSocket: {0}")]
    Ws(String),
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Which block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRef {
    /// The latest committed.
    Latest,
    /// At this height.
    Height(u64),
}

impl std::fmt::Display for BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockRef::Latest => f.write_str("latest"),
            BlockRef::Height(h) => write!(f, "{h}"),
        }
    }
}

impl From<u64> for BlockRef {
    fn from(h: u64) -> Self {
        BlockRef::Height(h)
    }
}

/// Which events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// One height (excludes `from`/`to`).
    pub height: Option<u64>,
    /// First height.
    pub from: Option<u64>,
    /// Last height.
    pub to: Option<u64>,
    /// Only this kind.
    pub kind: Option<String>,
}

/// A client of one gateway.
#[derive(Clone, Debug)]
pub struct GatewayClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Anything a WebSocket can run over (plain TCP or TLS).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Host and port of an `http(s)://host:port[/…]` URL (IPv6 hosts in brackets).
fn host_port(base: &str) -> Option<(String, u16)> {
    let (scheme, rest) = base.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((authority.to_string(), default)),
    }
}

/// Check a state proof an answer carries against the root it names.
fn check_proof(
    alg: causeway_light_client::HashAlg,
    root: &Hash,
    namespace: &Namespace,
    key: &Bytes,
    value: Option<&Bytes>,
    proof: &causeway_light_client::StateProof,
) -> Result<(), ClientError> {
    causeway_light_client::proof::verify(alg, root, namespace, &key.0, value.map(|v| v.0.as_slice()), proof)
        .map_err(|e| ClientError::Decode(format!("state proof does not verify: {e}")))
}

/// The path segment of a namespace (`/` is a path separator, so it is percent-encoded).
pub fn namespace_segment(ns: &Namespace) -> String {
    ns.as_str().replace('/', "%2F")
}

impl GatewayClient {
    /// A client of the gateway at `base_url` (`http://host:port`), with a 60 s request timeout.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::build(base_url, None)
    }

    /// A client of a TLS gateway (`https://host:port`), presenting a client certificate when `tls` has one.
    pub fn with_tls(base_url: &str, tls: &super::tls::ClientTls) -> Result<Self, ClientError> {
        Self::build(base_url, Some(Arc::new(super::tls::client_config(tls)?)))
    }

    fn build(base_url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        let https = base.starts_with("https://");
        if !(base.starts_with("http://") || https) || host_port(&base).is_none() {
            return Err(ClientError::Url(base_url.to_string()));
        }
        if https && tls.is_none() {
            return Err(ClientError::Url(format!(
                "{base_url} (https needs TLS settings: a CA at least)"
            )));
        }
        // reqwest is built without a default TLS provider (`rustls-no-provider`, so aws-lc is not compiled): make
        // ring the process default, so other reqwest clients of this process work too, and always hand reqwest a
        // preconfigured rustls (ring) configuration.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = match &tls {
            Some(c) => (**c).clone(),
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(super::tls::TlsError::Config(e.to_string())))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .tls_backend_preconfigured(config)
            .build()?;
        Ok(GatewayClient {
            http,
            base,
            token: None,
            tls,
        })
    }

    /// Send this access token with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The underlying HTTP client (its TLS settings included), for requests this client has no method for.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(Self::api_error(status, &bytes))
    }

    fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(b) => ClientError::Api {
                status: status.as_u16(),
                code: b.code,
                message: b.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: "unknown".into(),
                message: String::from_utf8_lossy(bytes).chars().take(500).collect(),
            },
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Self::decode(self.request(reqwest::Method::GET, path).send().await?).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status").await
    }

    /// `GET /health`: the health view, whether healthy (200) or not (503).
    pub async fn health(&self) -> Result<HealthView, ClientError> {
        let response = self.request(reqwest::Method::GET, "/health").send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() || status == StatusCode::SERVICE_UNAVAILABLE {
            if let Ok(v) = serde_json::from_slice(&bytes) {
                return Ok(v);
            }
        }
        Err(Self::api_error(status, &bytes))
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.request(reqwest::Method::GET, "/metrics").send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        Err(Self::api_error(status, &bytes))
    }

    /// `POST /v1/txs`: submit (as hex of its canonical bytes) and return once admitted.
    pub async fn submit(&self, tx: &SignedTx) -> Result<SubmitView, ClientError> {
        let body = TxInput {
            hex: Some(hex::encode(tx.encode())),
            ..TxInput::default()
        };
        Self::decode(
            self.request(reqwest::Method::POST, "/v1/txs")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// `POST /v1/txs?wait=commit`: submit and return once committed (its height and result), or fail with
    /// `commit_timeout` after `timeout` (capped by the gateway).
    pub async fn submit_and_wait(&self, tx: &SignedTx, timeout: Duration) -> Result<SubmitView, ClientError> {
        let body = TxInput {
            hex: Some(hex::encode(tx.encode())),
            ..TxInput::default()
        };
        let ms = timeout.as_millis().to_string();
        let request = self
            .request(reqwest::Method::POST, "/v1/txs")
            .query(&[("wait", "commit"), ("timeout_ms", ms.as_str())])
            .timeout(timeout + Duration::from_secs(10))
            .json(&body);
        Self::decode(request.send().await?).await
    }

    /// `POST /v1/txs/batch` with JSON (hex items).
    pub async fn submit_batch(&self, txs: &[SignedTx]) -> Result<BatchView, ClientError> {
        let body = BatchInput {
            txs: txs
                .iter()
                .map(|t| serde_json::Value::String(hex::encode(t.encode())))
                .collect(),
        };
        Self::decode(
            self.request(reqwest::Method::POST, "/v1/txs/batch")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// `POST /v1/txs/batch` with the binary form: Borsh of the list of canonical encodings (cheapest to build and
    /// parse; what the benchmark uses).
    pub async fn submit_batch_encoded(&self, encoded: &[Vec<u8>]) -> Result<BatchView, ClientError> {
        let body = borsh::to_vec(encoded).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .request(reqwest::Method::POST, "/v1/txs/batch")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        Self::decode(request.send().await?).await
    }

    /// `GET /v1/txs/{hash}`: a committed transaction with its result.
    pub async fn tx(&self, hash: &Hash) -> Result<TxView, ClientError> {
        self.get(&format!("/v1/txs/{hash}")).await
    }

    /// `GET /v1/blocks/{height}` with transaction bodies.
    pub async fn block(&self, at: impl Into<BlockRef>) -> Result<BlockView, ClientError> {
        self.get(&format!("/v1/blocks/{}", at.into())).await
    }

    /// `GET /v1/headers/{height}`.
    pub async fn header(&self, at: impl Into<BlockRef>) -> Result<HeaderView, ClientError> {
        self.get(&format!("/v1/headers/{}", at.into())).await
    }

    /// `GET /v1/commits/{height}`.
    pub async fn commit(&self, at: impl Into<BlockRef>) -> Result<CommitView, ClientError> {
        self.get(&format!("/v1/commits/{}", at.into())).await
    }

    /// `GET /v1/validators/{height}`.
    pub async fn validators(&self, at: impl Into<BlockRef>) -> Result<ValidatorsView, ClientError> {
        self.get(&format!("/v1/validators/{}", at.into())).await
    }

    /// `GET /v1/state/{namespace}/{key}`: a value or its absence with a proof, at `height` (default latest).
    pub async fn state(
        &self,
        namespace: &Namespace,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<StateView, ClientError> {
        let mut path = format!("/v1/state/{}/{}", namespace_segment(namespace), hex::encode(key));
        if let Some(h) = height {
            path.push_str(&format!("?height={h}"));
        }
        self.get(&path).await
    }

    /// Fetch a value with its proof and check the proof against the state root the gateway names (the caller
    /// still has to trust that root: compare it with a header its light client verified).
    pub async fn state_verified(
        &self,
        namespace: &Namespace,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<StateView, ClientError> {
        let view = self.state(namespace, key, height).await?;
        check_proof(
            view.hash_alg,
            &view.state_root,
            &view.namespace,
            &view.key,
            view.value.as_ref(),
            &view.proof,
        )?;
        if view
            .header
            .as_ref()
            .is_some_and(|h| h.state_root != view.state_root)
        {
            return Err(ClientError::Decode("state root differs from the header's".into()));
        }
        Ok(view)
    }

    /// `POST /v1/proofs`: the values (or absences) of `keys` with their proofs at `height` (default latest), every
    /// proof checked against the state root the gateway names and that root against the header's (the caller still
    /// has to trust that header: compare it with one its light client verified).
    pub async fn proofs_verified(
        &self,
        keys: &[(Namespace, Vec<u8>)],
        height: Option<u64>,
    ) -> Result<ProofsView, ClientError> {
        let body = ProofsInput {
            height,
            keys: keys
                .iter()
                .map(|(namespace, key)| ProofKey {
                    namespace: namespace.clone(),
                    key: Bytes(key.clone()),
                })
                .collect(),
        };
        let view: ProofsView = Self::decode(
            self.request(reqwest::Method::POST, "/v1/proofs")
                .json(&body)
                .send()
                .await?,
        )
        .await?;
        if view.items.len() != keys.len() {
            return Err(ClientError::Decode(format!(
                "{} keys asked, {} proven",
                keys.len(),
                view.items.len()
            )));
        }
        if view
            .header
            .as_ref()
            .is_some_and(|h| h.state_root != view.state_root)
        {
            return Err(ClientError::Decode("state root differs from the header's".into()));
        }
        for (item, (namespace, key)) in view.items.iter().zip(keys) {
            if item.namespace != *namespace || item.key.0 != *key {
                return Err(ClientError::Decode("proofs answered out of order".into()));
            }
            check_proof(
                view.hash_alg,
                &view.state_root,
                &item.namespace,
                &item.key,
                item.value.as_ref(),
                &item.proof,
            )?;
        }
        Ok(view)
    }

    /// `GET /v1/accounts/{address}`: nonce and the balances of `denoms`.
    pub async fn account(&self, address: &Address, denoms: &[&str]) -> Result<AccountView, ClientError> {
        let mut path = format!("/v1/accounts/{address}");
        if !denoms.is_empty() {
            path.push_str(&format!("?denoms={}", denoms.join(",")));
        }
        self.get(&path).await
    }

    /// `GET /v1/events`.
    pub async fn events(&self, q: &EventQuery) -> Result<EventsView, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(h) = q.height {
            params.push(("height", h.to_string()));
        }
        if let Some(h) = q.from {
            params.push(("from", h.to_string()));
        }
        if let Some(h) = q.to {
            params.push(("to", h.to_string()));
        }
        if let Some(k) = &q.kind {
            params.push(("kind", k.clone()));
        }
        Self::decode(
            self.request(reqwest::Method::GET, "/v1/events")
                .query(&params)
                .send()
                .await?,
        )
        .await
    }

    /// Open `/v1/ws` subscribed to `topics` (`blocks`, `events`) and event `kinds` (empty: all). Returns once
    /// the server confirmed the subscription: every block committed after that is delivered.
    pub async fn subscribe(&self, topics: &[&str], kinds: &[&str]) -> Result<Subscription, ClientError> {
        let (host, port) = host_port(&self.base).ok_or_else(|| ClientError::Url(self.base.clone()))?;
        let ws_base = if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            return Err(ClientError::Url(self.base.clone()));
        };
        let mut url = format!("{ws_base}/v1/ws?topics={}", topics.join(","));
        if !kinds.is_empty() {
            url.push_str(&format!("&kinds={}", kinds.join(",")));
        }
        if let Some(t) = &self.token {
            url.push_str(&format!("&token={t}"));
        }
        let ws = |e: &dyn std::fmt::Display| ClientError::Ws(e.to_string());
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| ws(&e))?;
        let io: Box<dyn Io> = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| ws(&e))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                Box::new(connector.connect(name, tcp).await.map_err(|e| ws(&e))?)
            }
            None => Box::new(tcp),
        };
        let (stream, _) = tokio_tungstenite::client_async(url.as_str(), io)
            .await
            .map_err(|e| ws(&e))?;
        let mut sub = Subscription { stream };
        match sub.next().await {
            Some(Ok(WsFrame::Subscribed { .. })) => Ok(sub),
            Some(Ok(other)) => Err(ClientError::Ws(format!(
                "expected a subscription confirmation, got {other:?}"
            ))),
            Some(Err(e)) => Err(e),
            None => Err(ClientError::Ws(
                "closed before confirming the subscription".into(),
            )),
        }
    }
}

/// An open WebSocket subscription.
pub struct Subscription {
    stream: tokio_tungstenite::WebSocketStream<Box<dyn Io>>,
}

impl Subscription {
    /// The next frame; `None` once the server closed the connection.
    pub async fn next(&mut self) -> Option<Result<WsFrame, ClientError>> {
        loop {
            match self.stream.next().await? {
                Ok(WsMessage::Text(text)) => {
                    return Some(
                        serde_json::from_str(text.as_str()).map_err(|e| ClientError::Decode(e.to_string())),
                    )
                }
                Ok(WsMessage::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(ClientError::Ws(e.to_string()))),
            }
        }
    }

    /// Replace the subscription; the server confirms with a [`WsFrame::Subscribed`] frame.
    pub async fn resubscribe(&mut self, topics: &[&str], kinds: &[&str]) -> Result<(), ClientError> {
        let frame = WsSubscribe {
            subscribe: topics.iter().map(|s| s.to_string()).collect(),
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
        };
        let text = serde_json::to_string(&frame).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.stream
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Close the connection.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn base_urls_split_into_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:8600"),
            Some(("127.0.0.1".into(), 8600))
        );
        assert_eq!(
            host_port("https://gw.example/v1"),
            Some(("gw.example".into(), 443))
        );
        assert_eq!(host_port("http://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://h:notaport"), None);
        assert_eq!(host_port("nonsense"), None);
    }
}
