//! The node shell: one tokio process that drives the consensus core, the application, the mempool, the p2p
//! network and block sync, and shares what the gateway reads.
//!
//! **Owns**: the performance of consensus effects in order (WAL append and fsync before anything signed leaves,
//! broadcasts, timers, building and validating blocks off the event loop, committing decisions), transaction
//! admission (batched signature verification, then the mempool, then gossip), block sync in both directions, and
//! the node's metrics. **Must never**: decide anything consensus or the application decides, hold a lock across
//! an await, or let a peer's bytes panic it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use causeway_light_client::{Address, Block, Canonical, ChainId, Hash, SecretKey, Suite, Time};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::{App, AppError, AppOptions, Committed, Executed, ValidateError};
use crate::consensus::wal::WalFile;
use crate::consensus::{
    Consensus, ConsensusConfig, ConsensusError, ConsensusMsg, Effect, Input, Parent, RoundTimeouts,
};
use crate::exec::{accounts, governance, Extension};
use crate::genesis::Genesis;
use crate::mempool::{Mempool, MempoolError, MempoolLimits};
use crate::net::{self, NetConfig, NetEvent, NetHandle, PeerId, Topic};
use crate::tx::{verify_many, SignedTx, TxError};

mod api;
pub mod metrics;
pub mod wire;

use metrics::NodeMetrics;
use wire::{SyncRequest, SyncResponse, SyncedBlock, TxBatch, MAX_SYNC_BLOCKS};

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The application failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The network failed.
    #[error("network: {0}")]
    Net(#[from] net::NetError),
    /// The consensus WAL failed.
    #[error("consensus WAL: {0}")]
    Wal(String),
    /// Consensus refused to start.
    #[error("consensus: {0}")]
    Consensus(String),
    /// A setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// Why a submitted transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Wrong chain, bad key or bad signature.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Refused by the mempool (full, duplicate, nonce).
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// Everything needed to start a node.
pub struct NodeSetup {
    /// The chain's genesis.
    pub genesis: Genesis,
    /// A human name.
    pub moniker: String,
    /// Where the state, block store and WAL live.
    pub data_dir: PathBuf,
    /// The consensus key; `None` for a full node.
    pub validator_key: Option<SecretKey>,
    /// Network settings (the allow-list is filled from the genesis validators' node ids plus what is given).
    pub net: NetConfig,
    /// Mempool bounds.
    pub mempool: MempoolLimits,
    /// Application settings.
    pub app: AppOptions,
    /// Consensus timeouts (defaults when `None`).
    pub timeouts: Option<RoundTimeouts>,
    /// Extension modules (the hub module on the hub).
    pub extensions: Vec<Arc<dyn Extension>>,
    /// Least time between a block and its parent: a proposer waits this long after the parent's time before
    /// building (transactions gather meanwhile, and an idle chain does not spin out empty blocks).
    pub min_block_interval: Duration,
}

impl NodeSetup {
    /// Everything a node needs from its configuration file: genesis, keys, network and mempool settings.
    pub fn from_config(
        cfg: &crate::config::NodeConfig,
        extensions: Vec<Arc<dyn Extension>>,
    ) -> Result<NodeSetup, NodeError> {
        let genesis = Genesis::load(&cfg.genesis).map_err(|e| NodeError::Config(e.to_string()))?;
        let c = &cfg.consensus;
        if c.min_block_interval_ms >= c.propose_ms {
            return Err(NodeError::Config(format!(
                "consensus.min_block_interval_ms ({}) must be below consensus.propose_ms ({})",
                c.min_block_interval_ms, c.propose_ms
            )));
        }
        let validator_key = match &cfg.validator_key {
            Some(path) => Some(crate::keys::load(path).map_err(|e| NodeError::Config(e.to_string()))?),
            None => None,
        };
        let node_secret = crate::keys::load(&cfg.node_key).map_err(|e| NodeError::Config(e.to_string()))?;
        let node_key = net::NodeKey::from_secret_key(&node_secret)?;
        let listen: net::Multiaddr =
            cfg.p2p.listen.parse().map_err(|e| NodeError::Config(format!("p2p.listen {:?}: {e}", cfg.p2p.listen)))?;
        let mut net = NetConfig::new(genesis.chain_id.to_string(), listen, node_key);
        for b in &cfg.p2p.bootstrap {
            let addr: net::Multiaddr =
                b.parse().map_err(|e| NodeError::Config(format!("p2p.bootstrap {b:?}: {e}")))?;
            net.bootstrap.push(addr);
        }
        for p in &cfg.p2p.allowed_peers {
            let peer: PeerId = p.parse().map_err(|e| NodeError::Config(format!("p2p.allowed_peers {p:?}: {e}")))?;
            net.allowed_peers.push(peer);
        }
        Ok(NodeSetup {
            genesis,
            moniker: cfg.moniker.clone(),
            data_dir: cfg.data_dir.clone(),
            validator_key,
            net,
            mempool: MempoolLimits { max_txs: cfg.mempool.max_txs, max_bytes: cfg.mempool.max_bytes },
            app: AppOptions { retention: cfg.storage.retention, ..AppOptions::default() },
            timeouts: Some(RoundTimeouts {
                propose: Duration::from_millis(c.propose_ms),
                prevote: Duration::from_millis(c.prevote_ms),
                precommit: Duration::from_millis(c.precommit_ms),
                delta: Duration::from_millis(c.delta_ms),
                rebroadcast: Duration::from_millis(c.rebroadcast_ms.max(50)),
                max: Duration::from_secs(60),
            }),
            extensions,
            min_block_interval: Duration::from_millis(c.min_block_interval_ms),
        })
    }
}

/// What the gateway and operators read from a running node.
pub struct Shared {
    /// The application (block store, state, proofs). Read-locked for queries and execution, write-locked only
    /// to commit.
    pub app: RwLock<App>,
    /// The mempool.
    pub mempool: Mutex<Mempool>,
    /// Metrics.
    pub metrics: NodeMetrics,
    /// Every committed block, as it is committed.
    pub blocks: broadcast::Sender<Arc<Committed>>,
    chain_id: ChainId,
    moniker: String,
    address: Option<Address>,
    round: AtomicU32,
    peers: AtomicUsize,
    last_commit_at: AtomicU64,
    started: Instant,
    syncing: AtomicBool,
    submit: mpsc::Sender<Submission>,
}

/// A snapshot of a node's state for status pages (the gateway's `/v1/status` body).
pub use crate::gateway::Status as NodeStatus;

struct Submission {
    tx: SignedTx,
    reply: oneshot::Sender<Result<Hash, SubmitError>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The wall clock as a block time.
pub fn now() -> Time {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Shared {
    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// Read the application.
    pub fn app(&self) -> std::sync::RwLockReadGuard<'_, App> {
        read(&self.app)
    }

    /// A status snapshot.
    pub fn status(&self) -> NodeStatus {
        let app = read(&self.app);
        let since = self.started.elapsed().as_secs().saturating_sub(self.last_commit_at.load(Ordering::Relaxed));
        NodeStatus {
            chain_id: self.chain_id.clone(),
            moniker: self.moniker.clone(),
            validator: self.address,
            height: app.height(),
            block_id: app.last_block_id(),
            time: app.last_time(),
            hash_alg: app.hash_alg(),
            round: self.round.load(Ordering::Relaxed),
            peers: self.peers.load(Ordering::Relaxed),
            mempool_txs: lock(&self.mempool).len(),
            catching_up: self.syncing.load(Ordering::Relaxed),
            seconds_since_commit: since,
        }
    }

    /// Submit a transaction: verified (in a batch with others), admitted to the mempool and gossiped.
    pub async fn submit(&self, tx: SignedTx) -> Result<Hash, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.submit.send(Submission { tx, reply }).await.map_err(|_| SubmitError::ShuttingDown)?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// The next nonce of `address` in the latest committed state (0 for an unknown account).
    pub fn account_nonce(&self, address: &Address) -> u64 {
        let app = read(&self.app);
        accounts::account(&app.store().latest_view(), address).map(|a| a.nonce).unwrap_or(0)
    }
}

/// A running node.
pub struct Node {
    shared: Arc<Shared>,
    net: NetHandle,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Open the application, recover consensus from the WAL, join the network and start driving consensus.
    pub async fn start(setup: NodeSetup) -> Result<Node, NodeError> {
        let NodeSetup {
            genesis,
            moniker,
            data_dir,
            validator_key,
            mut net,
            mempool,
            app,
            timeouts,
            extensions,
            min_block_interval,
        } = setup;
        std::fs::create_dir_all(&data_dir).map_err(|e| NodeError::Config(format!("{}: {e}", data_dir.display())))?;
        let chain_id = genesis.chain_id.clone();
        let hash_alg = genesis.hash;
        for v in &genesis.validators {
            if let Some(id) = &v.node_id {
                let peer: PeerId =
                    id.parse().map_err(|e| NodeError::Config(format!("node id of {}: {e}", v.name)))?;
                if !net.allowed_peers.contains(&peer) {
                    net.allowed_peers.push(peer);
                }
            }
        }
        net.chain_id = chain_id.to_string();
        let app = App::open(&data_dir.join("state"), genesis, extensions, app)?;
        let (wal, recovered) =
            WalFile::open(data_dir.join("consensus.wal")).map_err(|e| NodeError::Wal(e.to_string()))?;
        let is_validator = validator_key.is_some();
        // A full node runs the core with a throwaway key that no validator set contains: it follows, never votes.
        let key = validator_key.unwrap_or_else(|| SecretKey::generate(Suite::Ed25519));
        let address = is_validator.then(|| key.public_key().address());
        let mut cfg = ConsensusConfig::new(chain_id.clone());
        cfg.hash_alg = hash_alg;
        if let Some(t) = timeouts {
            cfg.timeouts = t;
        }
        let core = Consensus::new(cfg, key);
        let (net_handle, net_events) = net::spawn(net).await?;
        let (submit_tx, submit_rx) = mpsc::channel(16_384);
        let (blocks, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            app: RwLock::new(app),
            mempool: Mutex::new(Mempool::new(mempool)),
            metrics: NodeMetrics::new(),
            blocks,
            chain_id,
            moniker,
            address,
            round: AtomicU32::new(0),
            peers: AtomicUsize::new(0),
            last_commit_at: AtomicU64::new(0),
            started: Instant::now(),
            syncing: AtomicBool::new(false),
            submit: submit_tx,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let (gossip_tx, gossip_rx) = mpsc::channel(1024);
        let mut driver = Driver {
            core,
            shared: shared.clone(),
            net: net_handle.clone(),
            wal,
            work: work_tx,
            gossip_txs: gossip_tx,
            pending: HashMap::new(),
            synced: BTreeMap::new(),
            sync_in_flight: false,
            peers: Vec::new(),
            next_peer: 0,
            last_commit_instant: None,
            min_block_interval,
        };
        driver.start_height(&recovered.entries)?;
        let tasks = vec![
            tokio::spawn(driver.run(net_events, work_rx, shutdown_rx.clone())),
            tokio::spawn(ingest(shared.clone(), net_handle.clone(), submit_rx, gossip_rx, shutdown_rx)),
        ];
        Ok(Node { shared, net: net_handle, shutdown, tasks })
    }

    /// What the gateway reads.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The p2p handle (addresses, peers).
    pub fn net(&self) -> &NetHandle {
        &self.net
    }

    /// Stop every task and the network; the stores are closed when the last reference goes.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.net.shutdown().await;
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Results of work done off the event loop.
enum Work {
    Built { height: u64, round: u32, result: Result<Executed, AppError> },
    Validated { height: u64, block_id: Hash, result: Result<Executed, ValidateError> },
    Timeout { height: u64, round: u32, kind: crate::consensus::TimeoutKind },
    SyncResponse { peer: PeerId, response: Option<SyncResponse> },
}

struct Driver {
    core: Consensus,
    shared: Arc<Shared>,
    net: NetHandle,
    wal: WalFile,
    work: mpsc::UnboundedSender<Work>,
    gossip_txs: mpsc::Sender<(PeerId, Vec<u8>)>,
    /// Executed blocks of the current height, by id.
    pending: HashMap<Hash, Executed>,
    /// Blocks fetched by sync, by height.
    synced: BTreeMap<u64, SyncedBlock>,
    sync_in_flight: bool,
    peers: Vec<PeerId>,
    next_peer: usize,
    last_commit_instant: Option<Instant>,
    min_block_interval: Duration,
}

impl Driver {
    fn start_height(&mut self, wal: &[crate::consensus::wal::WalEntry]) -> Result<(), NodeError> {
        let (height, validators, parent) = {
            let app = read(&self.shared.app);
            if let (true, Some(f)) = (app.halted(), app.final_height()) {
                // A merged-out chain stops here: no proposal, no vote beyond its final height. The node keeps
                // serving its blocks, state and proofs.
                tracing::info!(target: "node", final_height = f, "chain merged out: not starting another height");
                self.pending.clear();
                return Ok(());
            }
            let height = app.height() + 1;
            let parent = app.last_commit().map(|commit| Parent {
                block_id: app.last_block_id(),
                time: app.last_time(),
                commit: commit.clone(),
                validators: app.last_validators().clone(),
            });
            (height, app.next_validators().clone(), parent)
        };
        self.pending.clear();
        let effects = self
            .core
            .start_height(height, validators, parent, wal)
            .map_err(|e| NodeError::Consensus(e.to_string()))?;
        self.perform(effects)?;
        self.feed_synced()
    }

    async fn run(
        mut self,
        mut net_events: mpsc::Receiver<NetEvent>,
        mut work: mpsc::UnboundedReceiver<Work>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let outcome = tokio::select! {
                _ = shutdown.changed() => return,
                Some(ev) = net_events.recv() => self.on_net(ev),
                Some(w) = work.recv() => self.on_work(w),
                else => return,
            };
            if let Err(e) = outcome {
                tracing::error!(target: "node", error = %e, "node halted: cannot go on safely");
                return;
            }
        }
    }

    fn feed(&mut self, input: Input) -> Result<(), NodeError> {
        match self.core.handle(input) {
            Ok(effects) => self.perform(effects),
            Err(ConsensusError::FarFutureHeight { got, current, signer }) => {
                // A validator is more than one height ahead: we missed decisions (restart, partition). Fetch
                // the blocks with their certificates instead of waiting for messages of our height.
                tracing::debug!(target: "node::sync", validator = %signer, height = got, ours = current, "far behind: syncing");
                self.shared.syncing.store(true, Ordering::Relaxed);
                self.request_sync();
                Ok(())
            }
            Err(e) => {
                self.shared.metrics.consensus_refused.inc();
                tracing::debug!(target: "node::consensus", error = %e, "input refused");
                Ok(())
            }
        }
    }

    fn on_net(&mut self, ev: NetEvent) -> Result<(), NodeError> {
        match ev {
            NetEvent::Gossip { topic: Topic::Consensus, from, data } => match ConsensusMsg::decode(&data) {
                Ok(msg) => self.feed(Input::Message(msg)),
                Err(e) => {
                    self.shared.metrics.consensus_refused.inc();
                    tracing::debug!(target: "node::consensus", peer = %from, error = %e, "malformed message");
                    Ok(())
                }
            },
            NetEvent::Gossip { topic: Topic::Txs, from, data } => {
                if self.gossip_txs.try_send((from, data)).is_err() {
                    tracing::debug!(target: "node::mempool", peer = %from, "transaction gossip dropped: ingest busy");
                }
                Ok(())
            }
            NetEvent::Request { from, data, reply } => {
                let shared = self.shared.clone();
                tokio::task::spawn_blocking(move || {
                    let answer = serve_sync(&shared, &data);
                    if let Some(answer) = answer {
                        let _ = reply.send(answer);
                    } else {
                        tracing::debug!(target: "node::sync", peer = %from, "malformed sync request");
                    }
                });
                Ok(())
            }
            NetEvent::PeerConnected(p) => {
                if !self.peers.contains(&p) {
                    self.peers.push(p);
                }
                self.shared.peers.store(self.peers.len(), Ordering::Relaxed);
                self.shared.metrics.peers.set(self.peers.len() as i64);
                Ok(())
            }
            NetEvent::PeerDisconnected(p) => {
                self.peers.retain(|q| *q != p);
                self.shared.peers.store(self.peers.len(), Ordering::Relaxed);
                self.shared.metrics.peers.set(self.peers.len() as i64);
                Ok(())
            }
        }
    }

    fn current_height(&self) -> u64 {
        read(&self.shared.app).height() + 1
    }

    fn on_work(&mut self, w: Work) -> Result<(), NodeError> {
        match w {
            Work::Built { height, round, result } => {
                if height != self.current_height() {
                    return Ok(());
                }
                match result {
                    Ok(executed) => {
                        let block = (**executed.block()).clone();
                        self.pending.insert(executed.block_id(), executed);
                        self.feed(Input::ValueReady { height, round, block })
                    }
                    Err(e) => Err(NodeError::App(e)),
                }
            }
            Work::Validated { height, block_id, result } => {
                if height != self.current_height() {
                    return Ok(());
                }
                let valid = match result {
                    Ok(executed) => {
                        self.pending.insert(block_id, executed);
                        true
                    }
                    Err(ValidateError::Invalid(e)) => {
                        tracing::warn!(target: "node::consensus", height, block = %block_id, error = %e, "proposed block is invalid");
                        false
                    }
                    Err(ValidateError::Fatal(e)) => return Err(NodeError::App(e)),
                };
                self.feed(Input::Verdict { height, block_id, valid })
            }
            Work::Timeout { height, round, kind } => self.feed(Input::TimeoutElapsed { height, round, kind }),
            Work::SyncResponse { peer, response } => {
                self.sync_in_flight = false;
                match response {
                    Some(SyncResponse::Blocks { latest, blocks }) => {
                        let next = self.current_height();
                        for b in blocks {
                            let h = b.block.header.height;
                            if h >= next && self.synced.len() < 4 * MAX_SYNC_BLOCKS as usize {
                                self.synced.insert(h, b);
                            }
                        }
                        self.shared.syncing.store(latest >= next, Ordering::Relaxed);
                        if latest > next + self.synced.len() as u64 {
                            self.request_sync();
                        }
                    }
                    None => {
                        tracing::debug!(target: "node::sync", %peer, "sync request failed");
                        self.next_peer += 1;
                    }
                }
                self.feed_synced()
            }
        }
    }

    /// Feed the synced block of the current height, if we have it.
    fn feed_synced(&mut self) -> Result<(), NodeError> {
        let next = self.current_height();
        self.synced.retain(|h, _| *h >= next);
        if let Some(b) = self.synced.remove(&next) {
            self.shared.metrics.synced_blocks.inc();
            return self.feed(Input::Synced { block: b.block, certificate: b.certificate });
        }
        Ok(())
    }

    fn request_sync(&mut self) {
        if self.sync_in_flight || self.peers.is_empty() {
            return;
        }
        let peer = self.peers[self.next_peer % self.peers.len()];
        let from = self.current_height() + self.synced.len() as u64;
        let req = SyncRequest::Blocks { from, max: MAX_SYNC_BLOCKS }.encode();
        let net = self.net.clone();
        let work = self.work.clone();
        self.sync_in_flight = true;
        tokio::spawn(async move {
            let response = match net.request(peer, req, Duration::from_secs(10)).await {
                Ok(bytes) => SyncResponse::decode(&bytes).ok(),
                Err(_) => None,
            };
            let _ = work.send(Work::SyncResponse { peer, response });
        });
    }

    fn perform(&mut self, effects: Vec<Effect>) -> Result<(), NodeError> {
        for effect in effects {
            match effect {
                Effect::Wal(entry) => self.wal.append(&entry).map_err(|e| NodeError::Wal(e.to_string()))?,
                Effect::FlushWal => self.wal.flush().map_err(|e| NodeError::Wal(e.to_string()))?,
                Effect::Broadcast(msg) => {
                    let r = msg.round();
                    self.shared.round.store(r, Ordering::Relaxed);
                    self.shared.metrics.round.set(i64::from(r));
                    let net = self.net.clone();
                    let bytes = msg.encode();
                    tokio::spawn(async move {
                        if let Err(e) = net.publish(Topic::Consensus, bytes).await {
                            tracing::debug!(target: "node::consensus", error = %e, "broadcast failed");
                        }
                    });
                }
                Effect::ScheduleTimeout { height, round, kind, duration } => {
                    let work = self.work.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(duration).await;
                        let _ = work.send(Work::Timeout { height, round, kind });
                    });
                }
                Effect::RequestValue { height, round, proposer, parent_hash, after, .. } => {
                    let shared = self.shared.clone();
                    let work = self.work.clone();
                    // Wait out the minimum block interval after the parent (transactions gather meanwhile).
                    let ready = Duration::from_nanos(after.0).saturating_add(self.min_block_interval);
                    let wait = ready.saturating_sub(Duration::from_nanos(now().0));
                    tokio::spawn(async move {
                        tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                        let built = tokio::task::spawn_blocking(move || {
                            let started = Instant::now();
                            let result = build(&shared, proposer, parent_hash, after);
                            shared.metrics.execution_seconds.observe(started.elapsed().as_secs_f64());
                            let _ = work.send(Work::Built { height, round, result });
                        });
                        let _ = built.await;
                    });
                }
                Effect::RequestValidation { height, block_id, block } => {
                    if let Some(e) = self.pending.get(&block_id) {
                        let _ = e;
                        self.feed(Input::Verdict { height, block_id, valid: true })?;
                        continue;
                    }
                    let shared = self.shared.clone();
                    let work = self.work.clone();
                    tokio::task::spawn_blocking(move || {
                        let started = Instant::now();
                        let known = |h: &Hash| lock(&shared.mempool).get(h);
                        let result = read(&shared.app).validate_block(Arc::new(block), Some(now()), &known);
                        shared.metrics.execution_seconds.observe(started.elapsed().as_secs_f64());
                        let _ = work.send(Work::Validated { height, block_id, result });
                    });
                }
                Effect::Decided { block, certificate } => self.commit(block, certificate)?,
                Effect::PeerAhead { peer, height } => {
                    tracing::debug!(target: "node::sync", validator = %peer, height, "behind: syncing");
                    self.shared.syncing.store(true, Ordering::Relaxed);
                    self.request_sync();
                }
                Effect::Equivocation { first, second } => {
                    self.shared.metrics.equivocations.inc();
                    tracing::warn!(target: "node::consensus", ?first, ?second, "equivocation observed");
                }
                Effect::DoubleSignPrevented { height, round, what } => {
                    tracing::error!(target: "node::consensus", height, round, what, "refused to sign a conflicting message");
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, block: Block, certificate: causeway_light_client::CommitCertificate) -> Result<(), NodeError> {
        let block_id = block.header.hash(read(&self.shared.app).hash_alg());
        let executed = match self.pending.remove(&block_id) {
            Some(e) => e,
            None => {
                // Decided without our own verdict (e.g. we joined late): validate now; a decided block that is
                // invalid here means this node's state diverged, and it must stop.
                let known = |h: &Hash| lock(&self.shared.mempool).get(h);
                read(&self.shared.app).validate_block(Arc::new(block), None, &known).map_err(|e| match e {
                    ValidateError::Fatal(e) => NodeError::App(e),
                    ValidateError::Invalid(e) => {
                        NodeError::Consensus(format!("decided block {block_id} is invalid here: {e}"))
                    }
                })?
            }
        };
        let certificate_round = certificate.round;
        let committed = write(&self.shared.app).commit(executed, certificate)?;
        let committed = Arc::new(committed);
        tracing::info!(
            target: "node",
            height = committed.block.header.height,
            txs = committed.tx_hashes.len(),
            round = certificate_round,
            "committed"
        );
        let m = &self.shared.metrics;
        m.height.set(committed.block.header.height as i64);
        m.txs_committed.inc_by(committed.tx_hashes.len() as u64);
        m.txs_failed.inc_by(committed.results.txs.iter().filter(|r| !r.is_ok()).count() as u64);
        if let Some(prev) = self.last_commit_instant.replace(Instant::now()) {
            m.block_interval.observe(prev.elapsed().as_secs_f64());
        }
        self.shared.last_commit_at.store(self.shared.started.elapsed().as_secs(), Ordering::Relaxed);
        {
            let app = read(&self.shared.app);
            let view = app.store().latest_view();
            let mut pool = lock(&self.shared.mempool);
            pool.update_after_commit(&committed.tx_hashes, |a| {
                accounts::account(&view, a).map(|acc| acc.nonce).unwrap_or(0)
            });
            m.mempool_txs.set(pool.len() as i64);
            m.mempool_bytes.set(pool.bytes() as i64);
        }
        let _ = self.shared.blocks.send(committed);
        self.start_height(&[])
    }
}

fn build(shared: &Shared, proposer: Address, parent_hash: Hash, after: Time) -> Result<Executed, AppError> {
    let app = read(&shared.app);
    if app.last_block_id() != parent_hash {
        return Err(AppError::Corrupt(format!(
            "consensus asks for a block on {parent_hash}, the application is at {}",
            app.last_block_id()
        )));
    }
    let view = app.store().latest_view();
    let params = governance::params(&view)?;
    let txs = lock(&shared.mempool).reap(params.max_block_txs as usize, params.max_block_bytes as usize, |a| {
        accounts::account(&view, a).map(|acc| acc.nonce).unwrap_or(0)
    });
    let t = now();
    let time = if t > after { t } else { Time(after.0 + 1) };
    app.build_block(proposer, time, txs)
}

fn serve_sync(shared: &Shared, data: &[u8]) -> Option<Vec<u8>> {
    let SyncRequest::Blocks { from, max } = SyncRequest::decode(data).ok()?;
    let app = read(&shared.app);
    let latest = app.height();
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    for h in from..from.saturating_add(u64::from(max.min(MAX_SYNC_BLOCKS))) {
        if h == 0 || h > latest {
            break;
        }
        let (Ok(Some(block)), Ok(Some(certificate))) = (app.block(h), app.commit_at(h)) else { break };
        bytes += block.txs.iter().map(|t| t.len()).sum::<usize>();
        blocks.push(SyncedBlock { block, certificate });
        if bytes > 8 * 1024 * 1024 {
            break;
        }
    }
    Some(SyncResponse::Blocks { latest, blocks }.encode())
}

/// Transaction admission: collects local submissions and gossiped batches for a few milliseconds, verifies all
/// signatures in one batch off the event loop, admits the good ones to the mempool, answers local submitters,
/// and gossips what was submitted locally.
async fn ingest(
    shared: Arc<Shared>,
    net: NetHandle,
    mut submissions: mpsc::Receiver<Submission>,
    mut gossip: mpsc::Receiver<(PeerId, Vec<u8>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    const MAX_BATCH: usize = 2_048;
    const WINDOW: Duration = Duration::from_millis(3);
    loop {
        let mut local: Vec<Submission> = Vec::new();
        let mut remote: Vec<SignedTx> = Vec::new();
        // Wait for the first item, then gather more for a short window.
        tokio::select! {
            _ = shutdown.changed() => return,
            Some(s) = submissions.recv() => local.push(s),
            Some((peer, data)) = gossip.recv() => decode_batch(&peer, &data, &mut remote),
            else => return,
        }
        let deadline = tokio::time::Instant::now() + WINDOW;
        while local.len() + remote.len() < MAX_BATCH {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                Some(s) = submissions.recv() => local.push(s),
                Some((peer, data)) = gossip.recv() => decode_batch(&peer, &data, &mut remote),
                else => break,
            }
        }
        // Back-pressure before the expensive part: what cannot fit in the mempool is refused (local) or dropped
        // (gossip) without verifying its signature, so an overloaded node spends its cores on blocks.
        let (room, full) = {
            let pool = lock(&shared.mempool);
            (pool.room(), pool.full_error())
        };
        if local.len() > room {
            for s in local.drain(room..) {
                shared.metrics.txs_refused.inc();
                let _ = s.reply.send(Err(SubmitError::Mempool(full.clone())));
            }
        }
        remote.truncate(room - local.len());
        let n_local = local.len();
        let (replies, mut txs): (Vec<_>, Vec<_>) = local.into_iter().map(|s| (s.reply, s.tx)).unzip();
        txs.extend(remote);
        if txs.is_empty() {
            continue;
        }
        let chain_id = shared.chain_id.clone();
        let alg = read(&shared.app).hash_alg();
        let verdicts = match tokio::task::spawn_blocking(move || verify_many(txs, &chain_id, alg)).await {
            Ok(v) => v,
            Err(_) => return,
        };
        let mut to_gossip = Vec::new();
        {
            let app = read(&shared.app);
            let view = app.store().latest_view();
            let mut pool = lock(&shared.mempool);
            let mut replies = replies.into_iter();
            for (i, verdict) in verdicts.into_iter().enumerate() {
                let outcome: Result<Hash, SubmitError> = verdict.map_err(SubmitError::from).and_then(|tx| {
                    let nonce = accounts::account(&view, &tx.tx().sender()).map(|a| a.nonce).unwrap_or(0);
                    let hash = tx.hash();
                    let bytes = tx.encoded().to_vec();
                    pool.insert(tx, nonce)?;
                    if i < n_local {
                        to_gossip.push(bytes);
                    }
                    Ok(hash)
                });
                if outcome.is_err() {
                    shared.metrics.txs_refused.inc();
                }
                if i < n_local {
                    if let Some(reply) = replies.next() {
                        let _ = reply.send(outcome);
                    }
                }
            }
            shared.metrics.mempool_txs.set(pool.len() as i64);
            shared.metrics.mempool_bytes.set(pool.bytes() as i64);
        }
        for chunk in to_gossip.chunks(wire::MAX_BATCH_TXS) {
            let batch = TxBatch { txs: chunk.to_vec() }.encode();
            if let Err(e) = net.publish(Topic::Txs, batch).await {
                tracing::debug!(target: "node::mempool", error = %e, "transaction gossip failed");
            }
        }
    }
}

fn decode_batch(peer: &PeerId, data: &[u8], out: &mut Vec<SignedTx>) {
    match TxBatch::decode(data) {
        Ok(batch) => {
            for raw in batch.txs {
                if let Ok(tx) = SignedTx::decode(&raw) {
                    out.push(tx);
                }
            }
        }
        Err(e) => tracing::debug!(target: "node::mempool", %peer, error = %e, "malformed transaction batch"),
    }
}
