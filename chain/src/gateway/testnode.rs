//! An in-process node for tests, benchmarks and demos of everything that talks to a gateway: a real
//! [`TestChain`] (real blocks, certificates and state) fed by a real [`Mempool`], without consensus or network.
//! Blocks are produced when asked ([`TestNode::produce`]) or on a timer ([`TestNode::spawn_producer`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use causeway_light_client::{Hash, SecretKey};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::{AppGuard, NodeApi, Rejection, Status};
use crate::app::{App, AppError, Committed};
use crate::exec::accounts;
use crate::genesis::Genesis;
use crate::mempool::{Mempool, MempoolLimits};
use crate::testkit::{TestChain, TestChainError};
use crate::tx::{verify_many, SignedTx};

/// A chain in this process that a gateway can serve.
pub struct TestNode {
    chain: RwLock<TestChain>,
    mempool: Mutex<Mempool>,
    blocks: broadcast::Sender<Arc<Committed>>,
    moniker: String,
    started: Instant,
    /// Seconds after `started` of the last commit.
    last_commit: AtomicU64,
    committed_txs: AtomicU64,
}

struct ChainApp<'a>(std::sync::RwLockReadGuard<'a, TestChain>);

impl std::ops::Deref for ChainApp<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        self.0.app()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TestNode {
    /// Open a chain in `dir` from `genesis`, certifying blocks with `keys` (the validators' keys).
    pub fn open(dir: &Path, genesis: Genesis, keys: Vec<SecretKey>) -> Result<Arc<TestNode>, AppError> {
        let moniker = format!("{}-test", genesis.chain_id);
        let chain = TestChain::open(dir, genesis, keys, vec![])?;
        let (blocks, _) = broadcast::channel(256);
        Ok(Arc::new(TestNode {
            chain: RwLock::new(chain),
            mempool: Mutex::new(Mempool::new(MempoolLimits {
                max_txs: 200_000,
                max_bytes: 256 * 1024 * 1024,
            })),
            blocks,
            moniker,
            started: Instant::now(),
            last_commit: AtomicU64::new(0),
            committed_txs: AtomicU64::new(0),
        }))
    }

    fn chain(&self) -> std::sync::RwLockReadGuard<'_, TestChain> {
        self.chain.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Transactions waiting.
    pub fn mempool_len(&self) -> usize {
        lock(&self.mempool).len()
    }

    /// Commit the next block with what the mempool holds (possibly nothing) and announce it to subscribers.
    pub fn produce(&self) -> Result<Arc<Committed>, TestChainError> {
        let mut chain = self.chain.write().unwrap_or_else(|p| p.into_inner());
        let txs = {
            let view = chain.app().store().latest_view();
            let params = crate::exec::governance::params(&view).map_err(AppError::from)?;
            lock(&self.mempool).reap(
                params.max_block_txs as usize,
                params.max_block_bytes as usize,
                |a| accounts::account(&view, a).map(|acc| acc.nonce).unwrap_or(0),
            )
        };
        let committed = Arc::new(chain.produce(txs.into_iter().map(|t| t.into_signed()).collect())?);
        {
            let view = chain.app().store().latest_view();
            lock(&self.mempool).update_after_commit(&committed.tx_hashes, |a| {
                accounts::account(&view, a).map(|acc| acc.nonce).unwrap_or(0)
            });
        }
        drop(chain);
        self.last_commit
            .store(self.started.elapsed().as_secs(), Ordering::Relaxed);
        self.committed_txs
            .fetch_add(committed.tx_hashes.len() as u64, Ordering::Relaxed);
        let _ = self.blocks.send(committed.clone());
        Ok(committed)
    }

    /// Produce a block every `interval` until the returned task is aborted (or a block fails, which is logged).
    pub fn spawn_producer(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = node.clone();
                match tokio::task::spawn_blocking(move || n.produce()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(target: "gateway::testnode", error = %e, "block production failed");
                        return;
                    }
                    Err(_) => return,
                }
            }
        })
    }

    fn admit(&self, txs: Vec<SignedTx>) -> Vec<Result<Hash, Rejection>> {
        let (chain_id, alg) = {
            let chain = self.chain();
            (chain.chain_id().clone(), chain.app().hash_alg())
        };
        let verdicts = verify_many(txs, &chain_id, alg);
        let chain = self.chain();
        let view = chain.app().store().latest_view();
        let mut pool = lock(&self.mempool);
        verdicts
            .into_iter()
            .map(|v| {
                let tx = v?;
                let nonce = accounts::account(&view, &tx.tx().sender())
                    .map_err(|e| Rejection::Unavailable(e.to_string()))?
                    .nonce;
                let hash = tx.hash();
                pool.insert(tx, nonce)?;
                Ok(hash)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl NodeApi for TestNode {
    fn status(&self) -> Status {
        let chain = self.chain();
        let app = chain.app();
        Status {
            chain_id: app.chain_id().clone(),
            moniker: self.moniker.clone(),
            validator: None,
            height: app.height(),
            block_id: app.last_block_id(),
            time: app.last_time(),
            hash_alg: app.hash_alg(),
            round: 0,
            peers: 0,
            mempool_txs: self.mempool_len(),
            catching_up: false,
            seconds_since_commit: self
                .started
                .elapsed()
                .as_secs()
                .saturating_sub(self.last_commit.load(Ordering::Relaxed)),
        }
    }

    async fn submit(&self, tx: SignedTx) -> Result<Hash, Rejection> {
        self.admit(vec![tx])
            .pop()
            .unwrap_or_else(|| Err(Rejection::Unavailable("no verdict".into())))
    }

    async fn submit_many(&self, txs: Vec<SignedTx>) -> Vec<Result<Hash, Rejection>> {
        self.admit(txs)
    }

    fn app(&self) -> AppGuard<'_> {
        Box::new(ChainApp(self.chain()))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.blocks.subscribe()
    }

    fn metrics(&self) -> String {
        let height = self.chain().app().height();
        format!(
            "# HELP causeway_height Latest committed height\n# TYPE causeway_height gauge\ncauseway_height {height}\n\
             # HELP causeway_txs_committed Transactions committed\n# TYPE causeway_txs_committed counter\n\
             causeway_txs_committed_total {}\n",
            self.committed_txs.load(Ordering::Relaxed)
        )
    }
}
