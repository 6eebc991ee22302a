//! The peer-to-peer network shell of a Causeway node: libp2p over TCP with noise and yamux, gossipsub for
//! transactions and consensus messages, request-response for block sync, and an allow-list of peers.
//!
//! **Owns**: one libp2p swarm running on a tokio task ([`spawn`]), the [`NetHandle`] the node drives it with,
//! the [`NetEvent`]s it reports, the allow-list (replaceable at runtime with [`NetHandle::set_allowed`]),
//! redialling of bootstrap peers with backoff ([`redial`]), and the size limits on everything a peer sends.
//!
//! **Must never**: interpret the bytes it moves (blocks, votes and transactions are the node's business), let a
//! peer that is not on the allow-list deliver anything or stay connected, buffer without bound, or panic on
//! anything a peer sends.
//!
//! Delivery is best effort, as gossip is: the consensus layer above tolerates loss and catches up with requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), causeway_chain::net::NetError> {
//! use causeway_chain::net::{spawn, NetConfig, NetEvent, NodeKey, Topic};
//! let config = NetConfig::new("my-chain", "/ip4/0.0.0.0/tcp/26656".parse().unwrap(), NodeKey::generate());
//! let (net, mut events) = spawn(config).await?;
//! net.publish(Topic::Txs, b"signed transaction bytes".to_vec()).await.ok();
//! while let Some(event) = events.recv().await {
//!     if let NetEvent::Request { data, reply, .. } = event {
//!         let _ = reply.send(data); // echo
//!     }
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub mod codec;
pub mod config;
pub mod redial;
mod swarm;

pub use config::{peer_id_of, GossipTuning, Limits, NetConfig, NodeKey, RedialConfig};
/// Re-exported so the node needs no direct libp2p dependency.
pub use libp2p::{Multiaddr, PeerId};

/// The two gossip topics of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Proposals and votes.
    Consensus,
    /// Transactions entering mempools.
    Txs,
}

impl Topic {
    /// Every topic, in a fixed order.
    pub const ALL: [Topic; 2] = [Topic::Consensus, Topic::Txs];

    /// The gossipsub topic name for this chain: `/causeway/<chain id>/<topic>/1`.
    pub fn name(self, chain_id: &str) -> String {
        let kind = match self {
            Topic::Consensus => "consensus",
            Topic::Txs => "txs",
        };
        format!("/causeway/{chain_id}/{kind}/1")
    }
}

/// The request-response protocol name for this chain's block sync.
pub fn sync_protocol(chain_id: &str) -> String {
    format!("/causeway/{chain_id}/sync/1")
}

/// Something the network reports to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message on one of the chain's topics. `from` is the allowed peer that handed it to us (not
    /// necessarily its author: authorship is proven by the signatures inside `data`).
    Gossip {
        /// The topic it came on.
        topic: Topic,
        /// The connected peer it came from.
        from: PeerId,
        /// The payload, as published.
        data: Vec<u8>,
    },
    /// A peer asks for something (block sync). Send the answer on `reply`; dropping `reply`, or not answering
    /// within `limits.request_timeout_ms`, refuses the request.
    Request {
        /// The peer asking.
        from: PeerId,
        /// The request payload.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// An allowed peer is connected and subscribed to both of this chain's topics: from now on it receives what
    /// we publish.
    PeerConnected(PeerId),
    /// A peer reported by [`NetEvent::PeerConnected`] is gone (last connection closed, dropped from the
    /// allow-list, or unsubscribed).
    PeerDisconnected(PeerId),
}

/// Network errors.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is invalid.
    #[error("network configuration: {0}")]
    Config(String),
    /// A key cannot serve as a node key.
    #[error("node key: {0}")]
    Key(String),
    /// The listen address cannot be used.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address asked for.
        addr: Multiaddr,
        /// Why it failed.
        reason: String,
    },
    /// libp2p could not be set up.
    #[error("network setup: {0}")]
    Setup(String),
    /// A message is over its size limit; it was not sent.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was refused.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// No connected peer subscribes to the topic, so a publish reached nobody.
    #[error("no connected peer subscribes to {0:?}")]
    NoPeers(Topic),
    /// The same bytes were published on this network within the duplicate-cache window.
    #[error("the same message was published recently")]
    Duplicate,
    /// Publishing failed for another reason (every peer's send queue full, for instance).
    #[error("publish failed: {0}")]
    Publish(String),
    /// The peer is not on the allow-list.
    #[error("peer {0} is not on the allow-list")]
    NotAllowed(PeerId),
    /// The peer is not connected.
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// A request got no answer in time.
    #[error("request to {0} timed out")]
    Timeout(PeerId),
    /// A request failed (refused, connection lost, protocol error).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
}

/// What the handle asks of the swarm task.
#[derive(Debug)]
enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        done: oneshot::Sender<Result<(), NetError>>,
    },
    Request {
        peer: PeerId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    SetAllowed(Vec<PeerId>, oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Drives the network task. Cheap to clone; the task stops on [`NetHandle::shutdown`] or when every handle is
/// dropped.
#[derive(Clone, Debug)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    limits: Limits,
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Publish `data` on `topic` to every connected peer of the chain.
    ///
    /// Refused without sending when `data` is over the topic's limit ([`NetError::TooLarge`]), when no peer
    /// subscribes ([`NetError::NoPeers`]), or when the same bytes were published recently ([`NetError::Duplicate`]).
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetError> {
        let limit = self.limits.gossip_limit(topic);
        if data.len() > limit {
            tracing::warn!(target: "chain::net", ?topic, len = data.len(), limit, "refused to publish an oversized message");
            return Err(NetError::TooLarge {
                what: "gossip message",
                len: data.len(),
                limit,
            });
        }
        self.call(|done| Command::Publish { topic, data, done }).await?
    }

    /// Ask `peer` and wait at most `timeout` for its answer.
    pub async fn request(&self, peer: PeerId, data: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let limit = self.limits.max_request_bytes;
        if data.len() > limit {
            tracing::warn!(target: "chain::net", %peer, len = data.len(), limit, "refused to send an oversized request");
            return Err(NetError::TooLarge {
                what: "request",
                len: data.len(),
                limit,
            });
        }
        match tokio::time::timeout(timeout, self.call(|done| Command::Request { peer, data, done })).await {
            Ok(answer) => answer?,
            Err(_) => Err(NetError::Timeout(peer)),
        }
    }

    /// The allowed peers currently connected and subscribed to the chain's topics.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(Command::Peers).await
    }

    /// The addresses this node listens on (with the actual port when `/tcp/0` was asked for).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.call(Command::ListenAddrs).await
    }

    /// Replace the allow-list. Connections to peers no longer on it are closed at once and nothing more from
    /// them is delivered; bootstrap peers that are newly allowed are dialled at once.
    pub async fn set_allowed(&self, peers: Vec<PeerId>) -> Result<(), NetError> {
        self.call(|done| Command::SetAllowed(peers, done)).await
    }

    /// Stop the network task, close every connection and the listener, and wait until that is done.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        self.call(Command::Shutdown).await
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(make(done))
            .await
            .map_err(|_| NetError::Stopped)?;
        answer.await.map_err(|_| NetError::Stopped)
    }
}

/// Start the network: listen, dial the bootstrap peers, and run the swarm on a tokio task.
///
/// Returns once the listener is bound, so a port already in use is an error here. Must be called inside a tokio
/// runtime.
pub async fn spawn(config: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    config.validate()?;
    let (commands_tx, commands_rx) = mpsc::channel(1024);
    let (events_tx, events_rx) = mpsc::channel(config.limits.event_buffer);
    let handle = NetHandle {
        commands: commands_tx,
        local_peer_id: config.node_key.peer_id(),
        limits: config.limits.clone(),
    };
    let task = swarm::Task::start(config, commands_rx, events_tx).await?;
    tokio::spawn(task.run());
    Ok((handle, events_rx))
}
