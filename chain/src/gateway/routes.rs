//! The REST handlers: decode and check the request, read the node on the blocking pool, answer JSON.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes as Body;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use causeway_light_client::{Address, Canonical, Hash, Namespace};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::error::ApiError;
use super::types::{
    AccountView, BatchInput, BatchItemView, BatchView, BlockView, CommitView, EventView, EventsView,
    HeaderView, HealthView, ProofsInput, ProofsView, ProvenItem, StateView, SubmitStatus, SubmitView,
    TxInput, TxView, ValidatorsView, MAX_PROOF_KEYS,
};
use super::Ctx;
use crate::app::{App, Committed};
use crate::exec::{accounts, assets};
use crate::message::{Bytes, Denom};
use crate::tx::SignedTx;

/// Run a read of the application on the blocking pool (RocksDB reads and proofs block).
pub(super) async fn read<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let api = ctx.api.clone();
    let permit = ctx
        .reads
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("gateway closing"))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let app = api.app();
        f(&app)
    })
    .await
    .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
}

fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request("bad_path", e.body_text())
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request("bad_query", e.body_text())
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body exceeds the gateway's limit",
        )
    } else {
        ApiError::bad_request("bad_body", e.body_text())
    }
}

/// A height in a path: a number or `latest`.
fn parse_height(s: &str, app: &App) -> Result<u64, ApiError> {
    if s == "latest" {
        return Ok(app.height());
    }
    s.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "bad_height",
            format!("{s:?} is not a height (a number or `latest`)"),
        )
    })
}

fn parse_hash(s: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(s)
        .map_err(|e| ApiError::bad_request("bad_hash", format!("{s:?} is not a 32-byte hex hash: {e}")))
}

fn block_not_found(height: u64, app: &App) -> ApiError {
    ApiError::not_found(
        "block_not_found",
        format!("no block at height {height} (latest is {})", app.height()),
    )
}

// ---- transactions ----

/// Decode one submitted transaction from its input form.
fn decode_input(input: TxInput) -> Result<SignedTx, ApiError> {
    let bytes = match (input.hex, input.base64, input.json) {
        (Some(h), None, None) => hex::decode(h.trim().trim_start_matches("0x"))
            .map_err(|e| ApiError::bad_request("bad_encoding", format!("hex: {e}")))?,
        (None, Some(b), None) => {
            let b = b.trim();
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b))
                .map_err(|e| ApiError::bad_request("bad_encoding", format!("base64: {e}")))?
        }
        (None, None, Some(json)) => {
            let tx: SignedTx = serde_json::from_value(json)
                .map_err(|e| ApiError::bad_request("malformed_tx", format!("transaction JSON: {e}")))?;
            // Re-encode so the canonical checks (sizes, message rules) apply to JSON input too.
            tx.encode()
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_body",
                "give exactly one of `hex`, `base64` or `json`",
            ))
        }
    };
    SignedTx::decode(&bytes).map_err(|e| ApiError::bad_request("malformed_tx", e.to_string()))
}

fn decode_item(item: serde_json::Value) -> Result<SignedTx, ApiError> {
    match item {
        serde_json::Value::String(h) => decode_input(TxInput {
            hex: Some(h),
            ..TxInput::default()
        }),
        other => {
            let input: TxInput = serde_json::from_value(other)
                .map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
            decode_input(input)
        }
    }
}

fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitQuery {
    /// `commit`: answer once the transaction is in a committed block.
    wait: Option<String>,
    /// How long to wait, milliseconds (capped by the configuration).
    timeout_ms: Option<u64>,
}

pub(super) async fn submit_tx(
    State(ctx): State<Ctx>,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Body, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let body = body.map_err(body_error)?;
    let wait = match query.wait.as_deref() {
        None | Some("none") => false,
        Some("commit") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("wait={other:?}: expected `commit`"),
            ))
        }
    };
    let tx = if is_binary(&headers) {
        SignedTx::decode(&body).map_err(|e| ApiError::bad_request("malformed_tx", e.to_string()))?
    } else {
        let input: TxInput = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "bad_body",
                format!("expected {{\"hex\"|\"base64\"|\"json\": …}}: {e}"),
            )
        })?;
        decode_input(input)?
    };
    // Subscribe before submitting so the block that includes it cannot slip by unseen.
    let blocks = wait.then(|| ctx.api.subscribe());
    let hash = match ctx.api.submit(tx).await {
        Ok(h) => {
            ctx.metrics.txs_accepted.fetch_add(1, Ordering::Relaxed);
            h
        }
        Err(e) => {
            ctx.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    match blocks {
        None => {
            let view = SubmitView {
                hash,
                status: SubmitStatus::Accepted,
                height: None,
                index: None,
                result: None,
            };
            Ok((StatusCode::ACCEPTED, Json(view)).into_response())
        }
        Some(rx) => {
            let max = ctx.config.max_wait;
            let timeout = query
                .timeout_ms
                .map_or(max, |ms| std::time::Duration::from_millis(ms).min(max));
            let view = wait_for_commit(&ctx, rx, hash, timeout).await?;
            Ok(Json(view).into_response())
        }
    }
}

fn committed_view(c: &Committed, hash: Hash) -> Option<SubmitView> {
    let index = c.tx_hashes.iter().position(|h| *h == hash)?;
    Some(SubmitView {
        hash,
        status: SubmitStatus::Committed,
        height: Some(c.block.header.height),
        index: Some(index as u32),
        result: c.results.txs.get(index).cloned(),
    })
}

async fn lookup_committed(ctx: &Ctx, hash: Hash) -> Result<Option<SubmitView>, ApiError> {
    read(ctx, move |app| {
        let Some(loc) = app.tx_location(&hash)? else {
            return Ok(None);
        };
        let result = app
            .results(loc.height)?
            .and_then(|r| r.txs.get(loc.index as usize).cloned());
        Ok(Some(SubmitView {
            hash,
            status: SubmitStatus::Committed,
            height: Some(loc.height),
            index: Some(loc.index),
            result,
        }))
    })
    .await
}

async fn wait_for_commit(
    ctx: &Ctx,
    mut blocks: broadcast::Receiver<Arc<Committed>>,
    hash: Hash,
    timeout: std::time::Duration,
) -> Result<SubmitView, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = || {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "commit_timeout",
            format!(
                "transaction {hash} was accepted but not committed within {} ms",
                timeout.as_millis()
            ),
        )
    };
    // It may have been committed between admission and the first block we see.
    if let Some(v) = lookup_committed(ctx, hash).await? {
        return Ok(v);
    }
    loop {
        match tokio::time::timeout_at(deadline, blocks.recv()).await {
            Err(_) => return Err(timed_out()),
            Ok(Ok(c)) => {
                if let Some(v) = committed_view(&c, hash) {
                    return Ok(v);
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                if let Some(v) = lookup_committed(ctx, hash).await? {
                    return Ok(v);
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the node stopped",
                ))
            }
        }
    }
}

pub(super) async fn submit_batch(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Result<Body, BytesRejection>,
) -> Result<Json<BatchView>, ApiError> {
    let body = body.map_err(body_error)?;
    let decoded: Vec<Result<SignedTx, ApiError>> = if is_binary(&headers) {
        // Binary batch: the Borsh encoding of a list of canonical transactions (`Vec<Vec<u8>>`).
        let raw: Vec<Vec<u8>> = borsh::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_body", format!("binary batch: {e}")))?;
        check_batch_len(&ctx, raw.len())?;
        raw.iter()
            .map(|b| SignedTx::decode(b).map_err(|e| ApiError::bad_request("malformed_tx", e.to_string())))
            .collect()
    } else {
        let input: BatchInput = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_body", format!("expected {{\"txs\": [...]}}: {e}")))?;
        check_batch_len(&ctx, input.txs.len())?;
        input.txs.into_iter().map(decode_item).collect()
    };
    let mut results: Vec<BatchItemView> = Vec::with_capacity(decoded.len());
    let mut good = Vec::new();
    let mut slots = Vec::new();
    for (i, d) in decoded.into_iter().enumerate() {
        match d {
            Ok(tx) => {
                good.push(tx);
                slots.push(i);
                results.push(BatchItemView {
                    hash: None,
                    error: None,
                });
            }
            Err(e) => results.push(BatchItemView {
                hash: None,
                error: Some(e.body()),
            }),
        }
    }
    let verdicts = ctx.api.submit_many(good).await;
    for (slot, verdict) in slots.into_iter().zip(verdicts) {
        if let Some(item) = results.get_mut(slot) {
            match verdict {
                Ok(h) => item.hash = Some(h),
                Err(e) => item.error = Some(ApiError::from(e).body()),
            }
        }
    }
    let accepted = results.iter().filter(|r| r.error.is_none()).count();
    let rejected = results.len() - accepted;
    ctx.metrics
        .txs_accepted
        .fetch_add(accepted as u64, Ordering::Relaxed);
    ctx.metrics
        .txs_rejected
        .fetch_add(rejected as u64, Ordering::Relaxed);
    Ok(Json(BatchView {
        accepted,
        rejected,
        results,
    }))
}

fn check_batch_len(ctx: &Ctx, n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the batch holds no transaction",
        ));
    }
    if n > ctx.config.max_batch_txs {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{n} transactions in one batch, at most {}",
                ctx.config.max_batch_txs
            ),
        ));
    }
    Ok(())
}

pub(super) async fn get_tx(
    State(ctx): State<Ctx>,
    hash: Result<Path<String>, PathRejection>,
) -> Result<Json<TxView>, ApiError> {
    let Path(hash) = hash.map_err(path_error)?;
    let hash = parse_hash(&hash)?;
    read(&ctx, move |app| {
        let loc = app
            .tx_location(&hash)?
            .ok_or_else(|| ApiError::not_found("tx_not_found", format!("no committed transaction {hash}")))?;
        let block = app
            .block(loc.height)?
            .ok_or_else(|| ApiError::internal("indexed block missing"))?;
        let raw = block
            .txs
            .get(loc.index as usize)
            .ok_or_else(|| ApiError::internal("indexed position missing"))?;
        let tx = SignedTx::decode(raw).map_err(|e| ApiError::internal(format!("stored transaction: {e}")))?;
        let result = app
            .results(loc.height)?
            .and_then(|r| r.txs.get(loc.index as usize).cloned())
            .ok_or_else(|| ApiError::internal("stored result missing"))?;
        Ok(Json(TxView {
            hash,
            height: loc.height,
            index: loc.index,
            tx,
            result,
        }))
    })
    .await
}

// ---- blocks ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockQuery {
    /// Include the transactions' bodies (default true).
    txs: Option<bool>,
}

pub(super) async fn get_block(
    State(ctx): State<Ctx>,
    height: Result<Path<String>, PathRejection>,
    query: Result<Query<BlockQuery>, QueryRejection>,
) -> Result<Json<BlockView>, ApiError> {
    let Path(height) = height.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    read(&ctx, move |app| {
        let h = parse_height(&height, app)?;
        let block = app.block(h)?.ok_or_else(|| block_not_found(h, app))?;
        let alg = app.hash_alg();
        let tx_hashes = block.txs.iter().map(|t| alg.hash(t)).collect();
        let txs = if query.txs.unwrap_or(true) {
            let decoded: Result<Vec<SignedTx>, _> = block.txs.iter().map(|t| SignedTx::decode(t)).collect();
            Some(decoded.map_err(|e| ApiError::internal(format!("stored transaction: {e}")))?)
        } else {
            None
        };
        Ok(Json(BlockView {
            block_id: block.header.hash(alg),
            header: block.header,
            last_commit: block.last_commit,
            tx_hashes,
            txs,
        }))
    })
    .await
}

pub(super) async fn get_header(
    State(ctx): State<Ctx>,
    height: Result<Path<String>, PathRejection>,
) -> Result<Json<HeaderView>, ApiError> {
    let Path(height) = height.map_err(path_error)?;
    read(&ctx, move |app| {
        let h = parse_height(&height, app)?;
        let block = app.block(h)?.ok_or_else(|| block_not_found(h, app))?;
        Ok(Json(HeaderView {
            block_id: block.header.hash(app.hash_alg()),
            header: block.header,
        }))
    })
    .await
}

pub(super) async fn get_commit(
    State(ctx): State<Ctx>,
    height: Result<Path<String>, PathRejection>,
) -> Result<Json<CommitView>, ApiError> {
    let Path(height) = height.map_err(path_error)?;
    read(&ctx, move |app| {
        let h = parse_height(&height, app)?;
        let certificate = app.commit_at(h)?.ok_or_else(|| {
            ApiError::not_found(
                "commit_not_found",
                format!("no commit at height {h} (latest is {})", app.height()),
            )
        })?;
        Ok(Json(CommitView {
            height: h,
            block_id: certificate.block_id,
            certificate,
        }))
    })
    .await
}

pub(super) async fn get_validators(
    State(ctx): State<Ctx>,
    height: Result<Path<String>, PathRejection>,
) -> Result<Json<ValidatorsView>, ApiError> {
    let Path(height) = height.map_err(path_error)?;
    read(&ctx, move |app| {
        // At genesis, `latest` names the set of height 1.
        let h = if height == "latest" {
            app.height().max(1)
        } else {
            parse_height(&height, app)?
        };
        // Known from height 1 up to the next height.
        if h == 0 || h > app.height() + 1 {
            return Err(ApiError::not_found(
                "validators_not_found",
                format!("validator sets are known for heights 1 to {}", app.height() + 1),
            ));
        }
        let set = app.validators_at(h)?;
        Ok(Json(ValidatorsView {
            height: h,
            hash: set.hash(app.hash_alg()),
            total_power: set.validators().iter().map(|v| v.power).sum(),
            validators: set,
        }))
    })
    .await
}

// ---- state ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeightQuery {
    /// The height to read (default: latest).
    height: Option<u64>,
}

/// The height asked (default latest), if committed.
fn committed_height(app: &App, asked: Option<u64>) -> Result<u64, ApiError> {
    let height = asked.unwrap_or_else(|| app.height());
    if height > app.height() {
        return Err(ApiError::not_found(
            "height_not_found",
            format!("height {height} is not committed (latest is {})", app.height()),
        ));
    }
    Ok(height)
}

/// The state root of `height` and its header (none at height 0, the genesis state).
fn root_and_header(
    app: &App,
    height: u64,
) -> Result<(Hash, Option<causeway_light_client::Header>), ApiError> {
    if height == 0 {
        return Ok((app.store().root_at(0)?, None));
    }
    let block = app.block(height)?.ok_or_else(|| block_not_found(height, app))?;
    Ok((block.header.state_root, Some(block.header)))
}

pub(super) async fn get_state(
    State(ctx): State<Ctx>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HeightQuery>, QueryRejection>,
) -> Result<Json<StateView>, ApiError> {
    let Path((namespace, key)) = path.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let namespace = Namespace::new(namespace.as_str()).map_err(|e| {
        ApiError::bad_request("bad_namespace", format!("{e} (encode `/` as %2F in the path)"))
    })?;
    let key = hex::decode(key.trim_start_matches("0x"))
        .map_err(|e| ApiError::bad_request("bad_key", format!("key must be hex: {e}")))?;
    read(&ctx, move |app| {
        let height = committed_height(app, query.height)?;
        let (value, proof) = app.store().prove(height, &namespace, &key)?;
        let (state_root, header) = root_and_header(app, height)?;
        Ok(Json(StateView {
            height,
            namespace,
            key: Bytes(key),
            value: value.map(Bytes),
            proof,
            state_root,
            header,
            hash_alg: app.hash_alg(),
        }))
    })
    .await
}

/// `POST /v1/proofs`: many keys proven at one height, the header read once (a relayer's batch).
pub(super) async fn post_proofs(
    State(ctx): State<Ctx>,
    body: Result<Body, BytesRejection>,
) -> Result<Json<ProofsView>, ApiError> {
    let body = body.map_err(body_error)?;
    let input: ProofsInput = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_body",
            format!("expected {{\"height\": …, \"keys\": [{{\"namespace\": …, \"key\": hex}}]}}: {e}"),
        )
    })?;
    if input.keys.is_empty() || input.keys.len() > MAX_PROOF_KEYS {
        return Err(ApiError::bad_request(
            "bad_body",
            format!(
                "{} keys asked: 1 to {MAX_PROOF_KEYS} per request",
                input.keys.len()
            ),
        ));
    }
    read(&ctx, move |app| {
        let height = committed_height(app, input.height)?;
        let mut items = Vec::with_capacity(input.keys.len());
        for k in input.keys {
            let (value, proof) = app.store().prove(height, &k.namespace, &k.key.0)?;
            items.push(ProvenItem {
                namespace: k.namespace,
                key: k.key,
                value: value.map(Bytes),
                proof,
            });
        }
        let (state_root, header) = root_and_header(app, height)?;
        Ok(Json(ProofsView {
            height,
            state_root,
            header,
            hash_alg: app.hash_alg(),
            items,
        }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountQuery {
    /// Comma-separated denominations whose balances to include.
    denoms: Option<String>,
}

pub(super) async fn get_account(
    State(ctx): State<Ctx>,
    address: Result<Path<String>, PathRejection>,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Json<AccountView>, ApiError> {
    let Path(address) = address.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let address = Address::from_hex(&address).map_err(|e| {
        ApiError::bad_request(
            "bad_address",
            format!("{address:?} is not a 20-byte hex address: {e}"),
        )
    })?;
    let denoms: Vec<Denom> = query
        .denoms
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Denom::new(s).map_err(|e| ApiError::bad_request("bad_denom", e)))
        .collect::<Result<_, _>>()?;
    read(&ctx, move |app| {
        let view = app.store().latest_view();
        let internal = |e: crate::exec::ExecError| ApiError::internal(e.to_string());
        let nonce = accounts::account(&view, &address).map_err(internal)?.nonce;
        let mut balances = BTreeMap::new();
        for d in denoms {
            let amount = assets::balance(&view, &d, &address).map_err(internal)?;
            balances.insert(d.to_string(), amount);
        }
        Ok(Json(AccountView {
            address,
            nonce,
            balances,
            height: view.height(),
        }))
    })
    .await
}

// ---- events ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    /// One height.
    height: Option<u64>,
    /// First height of a range.
    from: Option<u64>,
    /// Last height of a range (default: latest).
    to: Option<u64>,
    /// Keep only events of this kind.
    kind: Option<String>,
}

/// The events of one committed block, in order: each transaction's, then the end-of-block ones.
pub(super) fn block_events(c_height: u64, results: &crate::app::BlockResults) -> Vec<EventView> {
    let mut out = Vec::new();
    for r in &results.txs {
        for e in &r.events {
            out.push(EventView {
                height: c_height,
                tx_hash: Some(r.hash),
                event: e.clone(),
            });
        }
    }
    for e in &results.end_events {
        out.push(EventView {
            height: c_height,
            tx_hash: None,
            event: e.clone(),
        });
    }
    out
}

pub(super) async fn get_events(
    State(ctx): State<Ctx>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsView>, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let max_range = ctx.config.max_event_range.max(1);
    read(&ctx, move |app| {
        let latest = app.height();
        let (from, to) = match (q.height, q.from, q.to) {
            (Some(h), None, None) => (h, h),
            (None, from, to) => {
                let to = to.unwrap_or(latest).min(latest);
                (from.unwrap_or(to), to)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    "give either `height` or `from`/`to`",
                ))
            }
        };
        if from == 0 || from > to || to > latest {
            return Err(ApiError::not_found(
                "height_not_found",
                format!(
                    "heights {from}..={to} are not all committed (latest is {latest}; blocks start at 1)"
                ),
            ));
        }
        if to - from >= max_range {
            return Err(ApiError::bad_request(
                "range_too_large",
                format!("{} heights asked, at most {max_range} per query", to - from + 1),
            ));
        }
        let mut events = Vec::new();
        for h in from..=to {
            let results = app.results(h)?.ok_or_else(|| block_not_found(h, app))?;
            events.extend(
                block_events(h, &results)
                    .into_iter()
                    .filter(|e| q.kind.as_ref().is_none_or(|k| &e.event.kind == k)),
            );
        }
        Ok(Json(EventsView { from, to, events }))
    })
    .await
}

// ---- node ----

pub(super) async fn get_status(State(ctx): State<Ctx>) -> Result<Json<super::Status>, ApiError> {
    let api = ctx.api.clone();
    let status = tokio::task::spawn_blocking(move || api.status())
        .await
        .map_err(|e| ApiError::internal(format!("status task failed: {e}")))?;
    Ok(Json(status))
}

pub(super) async fn health(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let Json(status) = get_status(State(ctx.clone())).await?;
    let max = ctx.config.max_block_age.as_secs();
    let reason = if status.seconds_since_commit > max {
        Some(format!(
            "no block committed for {} s (limit {max} s)",
            status.seconds_since_commit
        ))
    } else {
        None
    };
    let code = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(HealthView {
            healthy: reason.is_none(),
            reason,
            status,
        }),
    )
        .into_response())
}

pub(super) async fn metrics(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let api = ctx.api.clone();
    let node = tokio::task::spawn_blocking(move || api.metrics())
        .await
        .map_err(|e| ApiError::internal(format!("metrics task failed: {e}")))?;
    // OpenMetrics text ends with `# EOF`: ours go before it.
    let (body, open_metrics) = match node.trim_end().strip_suffix("# EOF") {
        Some(rest) => (format!("{rest}{}# EOF\n", ctx.metrics.render()), true),
        None => (format!("{node}{}", ctx.metrics.render()), false),
    };
    let content_type = if open_metrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use base64::Engine;
    use causeway_light_client::{Address, Canonical, ChainId, SecretKey, Suite};

    use super::{decode_input, decode_item};
    use crate::gateway::types::TxInput;
    use crate::message::{Amount, Denom, Message};
    use crate::tx::{SignedTx, Transaction};

    fn signed() -> SignedTx {
        let key = SecretKey::from_bytes(Suite::Ed25519, &[1; 32]).unwrap();
        let to = Address([2; 20]);
        Transaction {
            chain_id: ChainId::new("c").unwrap(),
            signer: key.public_key(),
            nonce: 3,
            messages: vec![Message::Transfer {
                to,
                denom: Denom::new("x").unwrap(),
                amount: Amount(1),
            }],
        }
        .sign(&key)
    }

    #[test]
    fn every_input_form_decodes_to_the_same_transaction() {
        let tx = signed();
        let bytes = tx.encode();
        let forms = [
            TxInput {
                hex: Some(hex::encode(&bytes)),
                ..TxInput::default()
            },
            TxInput {
                hex: Some(format!("0x{}", hex::encode(&bytes))),
                ..TxInput::default()
            },
            TxInput {
                base64: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                ..TxInput::default()
            },
            TxInput {
                base64: Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes)),
                ..TxInput::default()
            },
            TxInput {
                json: Some(serde_json::to_value(&tx).unwrap()),
                ..TxInput::default()
            },
        ];
        for f in forms {
            assert_eq!(decode_input(f.clone()).unwrap(), tx, "{f:?}");
        }
        assert_eq!(
            decode_item(serde_json::Value::String(hex::encode(&bytes))).unwrap(),
            tx
        );
    }

    #[test]
    fn bad_inputs_are_refused_with_their_code() {
        let tx = signed();
        let hex_form = hex::encode(tx.encode());
        let cases = [
            (TxInput::default(), "bad_body"),
            (
                TxInput {
                    hex: Some(hex_form.clone()),
                    base64: Some("AA==".into()),
                    json: None,
                },
                "bad_body",
            ),
            (
                TxInput {
                    hex: Some("0g".into()),
                    ..TxInput::default()
                },
                "bad_encoding",
            ),
            (
                TxInput {
                    hex: Some(hex_form[..hex_form.len() - 2].into()),
                    ..TxInput::default()
                },
                "malformed_tx",
            ),
            (
                TxInput {
                    json: Some(serde_json::json!({"tx": {}})),
                    ..TxInput::default()
                },
                "malformed_tx",
            ),
        ];
        for (input, code) in cases {
            assert_eq!(decode_input(input.clone()).unwrap_err().code, code, "{input:?}");
        }
        // A JSON transaction that breaks a canonical rule (no messages) is refused like its bytes would be.
        let mut empty = tx;
        empty.tx.messages.clear();
        let input = TxInput {
            json: Some(serde_json::to_value(&empty).unwrap()),
            ..TxInput::default()
        };
        assert_eq!(decode_input(input).unwrap_err().code, "malformed_tx");
        assert_eq!(decode_item(serde_json::json!(42)).unwrap_err().code, "bad_body");
    }
}
