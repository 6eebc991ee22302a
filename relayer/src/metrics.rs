//! The relayer's Prometheus metrics, declared in one place with their help texts (prefix `causeway_relayer`).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label: one chain.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabel {
    /// Chain id.
    pub chain: String,
}

/// Label: the client of `client_of` hosted on `host`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabel {
    /// The chain hosting the client.
    pub host: String,
    /// The chain it follows.
    pub client_of: String,
}

/// Every metric of a relayer.
pub struct RelayerMetrics {
    registry: Registry,
    /// Steps due and not yet relayed.
    pub backlog: Gauge,
    /// Packets not yet resolved on their source.
    pub packets_in_flight: Gauge,
    /// Packets seen resolved.
    pub packets_resolved: Counter,
    /// Transactions committed per target chain.
    pub submitted: Family<ChainLabel, Counter>,
    /// Messages in them.
    pub messages: Family<ChainLabel, Counter>,
    /// Transactions that failed (refused by the gateway, or committed with a failed execution).
    pub failed: Family<ChainLabel, Counter>,
    /// Seconds from a step first found due to its transaction committed.
    pub relay_latency: Histogram,
    /// Latest learned height per chain.
    pub height: Family<ChainLabel, Gauge>,
    /// Seconds between the host's latest block time and the client's latest trusted header time.
    pub client_age: Family<ClientLabel, Gauge>,
    /// Conflicting headers found by the misbehaviour watch and submitted to the client's host.
    pub evidence_submitted: Counter,
}

impl Default for RelayerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RelayerMetrics {
    /// Register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("causeway_relayer");
        let m = RelayerMetrics {
            backlog: Gauge::default(),
            packets_in_flight: Gauge::default(),
            packets_resolved: Counter::default(),
            submitted: Family::default(),
            messages: Family::default(),
            failed: Family::default(),
            relay_latency: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            height: Family::default(),
            client_age: Family::default(),
            evidence_submitted: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "backlog",
            "Relaying steps due and not yet done",
            m.backlog.clone(),
        );
        registry.register(
            "packets_in_flight",
            "Packets not yet resolved on their source",
            m.packets_in_flight.clone(),
        );
        registry.register(
            "packets_resolved",
            "Packets seen resolved on their source",
            m.packets_resolved.clone(),
        );
        registry.register("submitted", "Relay transactions committed", m.submitted.clone());
        registry.register(
            "messages",
            "Messages in committed relay transactions",
            m.messages.clone(),
        );
        registry.register("failed", "Relay transactions refused or failed", m.failed.clone());
        registry.register(
            "relay_latency_seconds",
            "Step found due to committed",
            m.relay_latency.clone(),
        );
        registry.register(
            "chain_height",
            "Latest height learned per chain",
            m.height.clone(),
        );
        registry.register(
            "client_age_seconds",
            "Host time minus the client's latest trusted time",
            m.client_age.clone(),
        );
        registry.register(
            "evidence_submitted",
            "Conflicting headers found by the misbehaviour watch and submitted to the client's host",
            m.evidence_submitted.clone(),
        );
        RelayerMetrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The counter of `chain` in `family`.
    pub fn of(family: &Family<ChainLabel, Counter>, chain: &str) -> Counter {
        family
            .get_or_create(&ChainLabel {
                chain: chain.to_string(),
            })
            .clone()
    }
}
