//! # causeway-relayer
//!
//! **Owns**: the relayer of a Causeway alliance (DESIGN §8) and the `causeway-relayer` command line ([`cli`]).
//! - [`plan`]: the pure core — what it knows about packets and atomic deals, learned only from committed events,
//!   and which relaying step each needs next;
//! - [`engine`]: the relaying loop — batches of proven messages per target chain behind one client update each,
//!   client refresh ahead of the trusting period, reports;
//! - [`chain`]: each chain through its gateway, with retries (exponential backoff with jitter);
//! - [`daemon`], [`config`], [`metrics`]: `start`, `clear`, `status`, `relayer.toml`, `/metrics` and `/health`;
//! - [`verify`]: offline verification of foreign-chain data (Tendermint light blocks, ICS-23 proofs, EIP-1186
//!   proofs, Besu headers and chains) with the same adapters the hub uses.
//!
//! **Must never**: decide a verdict itself or be trusted for one. Every cross-chain fact it carries is a header,
//! certificate or store proof that the receiving chain verifies; exactly-once delivery, timeouts and atomic
//! decisions are the chains'. It keeps no state a restart could lose: everything is re-learned from the chains.
#![forbid(unsafe_code)]

pub mod chain;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod metrics;
pub mod plan;
pub mod verify;

use causeway_chain::gateway::client::ClientError;
use causeway_light_client::ChainId;

/// Why relaying failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A gateway call failed (after retries, when the failure was transient).
    #[error("{chain}: {what}: {source}")]
    Gateway {
        /// The chain.
        chain: ChainId,
        /// The call.
        what: String,
        /// The gateway's error.
        source: ClientError,
    },
    /// A gateway serves another chain than configured.
    #[error("the gateway configured for {expected} serves {found}")]
    WrongChain {
        /// Configured.
        expected: ChainId,
        /// Served.
        found: ChainId,
    },
    /// A chain's answers contradict each other or what the relayer asked.
    #[error("{chain}: {reason}")]
    Inconsistent {
        /// The chain.
        chain: ChainId,
        /// What.
        reason: String,
    },
    /// A committed event could not be read.
    #[error("{chain}: {source}")]
    Event {
        /// The chain.
        chain: ChainId,
        /// The event.
        source: plan::EventError,
    },
    /// A chain has no client the step needs.
    #[error("{host} has no client of {of}")]
    NoClient {
        /// The chain that should host it.
        host: ChainId,
        /// The chain it should follow.
        of: ChainId,
    },
    /// A step names a chain this relayer does not serve.
    #[error("chain {0} is not served by this relayer")]
    UnknownChain(ChainId),
    /// A step is no longer due at the height its proof would be taken.
    #[error("no longer due: {0}")]
    Stale(String),
    /// The configuration or a key file is unusable.
    #[error("{0}")]
    Config(String),
    /// The metrics listener could not bind.
    #[error("listening on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// Work still due when time ran out.
    #[error("timed out: {0}")]
    Timeout(String),
}
