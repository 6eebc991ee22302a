//! The WebSocket `/v1/ws`: committed blocks and their events as JSON frames ([`WsFrame`]).
//!
//! Topics are chosen with `?topics=blocks,events&kinds=transfer` at connection, or replaced at any time by a
//! client frame `{"subscribe": ["events"], "kinds": ["record"]}`. The subscription to the node's blocks is taken
//! before the upgrade is answered, so every block committed after the handshake is delivered. A subscriber too
//! slow to keep up receives `{"type": "lagged", "missed": n}` and continues with the newest blocks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::error::ApiError;
use super::routes::block_events;
use super::types::{ErrorBody, WsFrame, WsSubscribe};
use super::{Ctx, GatewayMetrics};
use crate::app::Committed;

const TOPICS: [&str; 2] = ["blocks", "events"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WsQuery {
    topics: Option<String>,
    kinds: Option<String>,
    /// An access token (checked by the router's guard; browsers cannot set headers on a WebSocket).
    #[allow(dead_code)]
    token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Subscription {
    blocks: bool,
    events: bool,
    kinds: Vec<String>,
}

impl Subscription {
    fn parse(topics: &[String], kinds: Vec<String>) -> Result<Self, String> {
        if let Some(bad) = topics.iter().find(|t| !TOPICS.contains(&t.as_str())) {
            return Err(format!("unknown topic {bad:?} (expected blocks or events)"));
        }
        Ok(Subscription {
            blocks: topics.iter().any(|t| t == "blocks"),
            events: topics.iter().any(|t| t == "events"),
            kinds,
        })
    }

    fn frame(&self) -> WsFrame {
        let mut topics = Vec::new();
        if self.blocks {
            topics.push("blocks".to_string());
        }
        if self.events {
            topics.push("events".to_string());
        }
        WsFrame::Subscribed {
            topics,
            kinds: self.kinds.clone(),
        }
    }

    fn frames_for(&self, c: &Committed) -> Vec<WsFrame> {
        let mut out = Vec::new();
        if self.blocks {
            out.push(WsFrame::Block {
                height: c.block.header.height,
                block_id: c.block_id,
                header: Box::new(c.block.header.clone()),
                tx_hashes: c.tx_hashes.clone(),
                failed: c.results.txs.iter().filter(|r| !r.is_ok()).count(),
            });
        }
        if self.events {
            out.extend(
                block_events(c.block.header.height, &c.results)
                    .into_iter()
                    .filter(|e| self.kinds.is_empty() || self.kinds.contains(&e.event.kind))
                    .map(WsFrame::Event),
            );
        }
        out
    }
}

/// One open subscription in the gateway's count, for as long as it lives.
struct OpenSubscription {
    metrics: Arc<GatewayMetrics>,
    /// The count including this one.
    count: u64,
}

impl OpenSubscription {
    fn new(metrics: Arc<GatewayMetrics>) -> Self {
        let count = metrics.ws_open.fetch_add(1, Ordering::Relaxed) + 1;
        OpenSubscription { metrics, count }
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.metrics.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn split(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) async fn upgrade(
    State(ctx): State<Ctx>,
    query: Result<Query<WsQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let ws = ws.map_err(|e| ApiError::bad_request("not_websocket", e.body_text()))?;
    let topics = match query.topics.as_deref() {
        None => TOPICS.iter().map(|s| s.to_string()).collect(),
        some => split(some),
    };
    let sub = Subscription::parse(&topics, split(query.kinds.as_deref()))
        .map_err(|e| ApiError::bad_request("bad_topic", e))?;
    // Counted from here until the connection ends (or the upgrade is abandoned): the guard goes with it.
    let open = OpenSubscription::new(ctx.metrics.clone());
    if open.count > ctx.config.max_subscriptions {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_subscriptions",
            format!(
                "{} subscriptions are open, the limit",
                ctx.config.max_subscriptions
            ),
        ));
    }
    let blocks = ctx.api.subscribe();
    Ok(ws.on_upgrade(move |socket| async move {
        let _open = open;
        run(socket, blocks, sub).await;
    }))
}

async fn send(socket: &mut WebSocket, frame: &WsFrame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

async fn run(mut socket: WebSocket, mut blocks: broadcast::Receiver<Arc<Committed>>, mut sub: Subscription) {
    if !send(&mut socket, &sub.frame()).await {
        return;
    }
    loop {
        tokio::select! {
            block = blocks.recv() => match block {
                Ok(c) => {
                    for frame in sub.frames_for(&c) {
                        if !send(&mut socket, &frame).await {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    if !send(&mut socket, &WsFrame::Lagged { missed }).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<WsSubscribe>(text.as_str())
                        .map_err(|e| e.to_string())
                        .and_then(|s| Subscription::parse(&s.subscribe, s.kinds))
                    {
                        Ok(new) => {
                            sub = new;
                            sub.frame()
                        }
                        Err(message) => WsFrame::Error(ErrorBody { code: "bad_subscription".into(), message }),
                    };
                    if !send(&mut socket, &reply).await {
                        return;
                    }
                }
                // Pings are answered by the WebSocket layer; binary frames carry nothing for us.
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use std::sync::Arc;

    use causeway_light_client::{Address, Block, ChainId, CommitCertificate, Hash, Header, Time};

    use super::Subscription;
    use crate::app::{BlockResults, Committed};
    use crate::exec::{Event, TxResult};
    use crate::gateway::types::WsFrame;

    fn committed() -> Committed {
        let header = Header {
            app_version: 1,
            chain_id: ChainId::new("c").unwrap(),
            height: 7,
            time: Time(1),
            parent_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            last_commit_hash: Hash::ZERO,
            state_root: Hash::ZERO,
            validators_hash: Hash::ZERO,
            next_validators_hash: Hash::ZERO,
            proposer: Address([0; 20]),
        };
        let tx = |n: u8, kinds: &[&str], ok: bool| TxResult {
            hash: Hash([n; 32]),
            sender: Address([n; 20]),
            failure: (!ok).then_some(crate::exec::TxFailure::Overflow),
            events: kinds.iter().map(|k| Event::new(k, &[])).collect(),
        };
        let results = BlockResults {
            txs: vec![tx(1, &["transfer", "record"], true), tx(2, &[], false)],
            end_events: vec![Event::new("gov.decided", &[])],
        };
        Committed {
            block: Arc::new(Block {
                header,
                txs: vec![],
                last_commit: None,
            }),
            block_id: Hash([9; 32]),
            certificate: CommitCertificate {
                height: 7,
                round: 0,
                block_id: Hash([9; 32]),
                signatures: vec![],
            },
            results: Arc::new(results),
            tx_hashes: vec![Hash([1; 32]), Hash([2; 32])],
        }
    }

    #[test]
    fn frames_follow_the_subscription() {
        let c = committed();
        let all = Subscription::parse(&["blocks".into(), "events".into()], vec![]).unwrap();
        let frames = all.frames_for(&c);
        assert_eq!(frames.len(), 4);
        assert!(matches!(
            &frames[0],
            WsFrame::Block {
                height: 7,
                failed: 1,
                ..
            }
        ));
        let kinds: Vec<&str> = frames[1..]
            .iter()
            .map(|f| match f {
                WsFrame::Event(e) => e.event.kind.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["transfer", "record", "gov.decided"]);
        let transfers = Subscription::parse(&["events".into()], vec!["transfer".into()]).unwrap();
        let frames = transfers.frames_for(&c);
        assert_eq!(frames.len(), 1);
        assert!(matches!(&frames[0], WsFrame::Event(e) if e.tx_hash == Some(Hash([1; 32]))));
        assert!(Subscription::parse(&["blocks".into(), "mempool".into()], vec![]).is_err());
        // Frames survive a JSON round trip (what the typed client reads).
        for f in all.frames_for(&c) {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<WsFrame>(&json).unwrap(), f);
        }
    }
}
