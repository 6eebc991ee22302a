//! The node's Prometheus metrics, declared in one place with their help texts.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Every metric of a node.
pub struct NodeMetrics {
    registry: Registry,
    /// Latest committed height.
    pub height: Gauge,
    /// Current consensus round.
    pub round: Gauge,
    /// Transactions committed.
    pub txs_committed: Counter,
    /// Transactions that failed execution.
    pub txs_failed: Counter,
    /// Transactions in the mempool.
    pub mempool_txs: Gauge,
    /// Bytes in the mempool.
    pub mempool_bytes: Gauge,
    /// Transactions refused at admission (bad signature, full, nonce…).
    pub txs_refused: Counter,
    /// Connected peers.
    pub peers: Gauge,
    /// Seconds between consecutive committed blocks.
    pub block_interval: Histogram,
    /// Seconds to execute a block (build or validate).
    pub execution_seconds: Histogram,
    /// Blocks fetched by block sync.
    pub synced_blocks: Counter,
    /// Consensus messages refused (bad signature, non-validator, malformed…).
    pub consensus_refused: Counter,
    /// Equivocations observed.
    pub equivocations: Counter,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("causeway");
        let m = NodeMetrics {
            height: Gauge::default(),
            round: Gauge::default(),
            txs_committed: Counter::default(),
            txs_failed: Counter::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            txs_refused: Counter::default(),
            peers: Gauge::default(),
            block_interval: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            execution_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            synced_blocks: Counter::default(),
            consensus_refused: Counter::default(),
            equivocations: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("height", "Latest committed height", m.height.clone());
        registry.register("round", "Current consensus round", m.round.clone());
        registry.register("txs_committed", "Transactions committed", m.txs_committed.clone());
        registry.register("txs_failed", "Committed transactions whose execution failed", m.txs_failed.clone());
        registry.register("mempool_txs", "Transactions waiting in the mempool", m.mempool_txs.clone());
        registry.register("mempool_bytes", "Bytes waiting in the mempool", m.mempool_bytes.clone());
        registry.register("txs_refused", "Transactions refused at admission", m.txs_refused.clone());
        registry.register("peers", "Connected allowed peers", m.peers.clone());
        registry.register("block_interval_seconds", "Time between committed blocks", m.block_interval.clone());
        registry.register("execution_seconds", "Time to execute a block", m.execution_seconds.clone());
        registry.register("synced_blocks", "Blocks fetched by block sync", m.synced_blocks.clone());
        registry.register("consensus_refused", "Consensus messages refused", m.consensus_refused.clone());
        registry.register("equivocations", "Equivocations observed", m.equivocations.clone());
        NodeMetrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
