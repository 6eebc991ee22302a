//! # causeway-chain
//!
//! **Owns**: the ledger engine every Causeway chain runs: namespaced, versioned, provable state on RocksDB
//! ([`state`]), signed transactions ([`tx`], [`message`]), deterministic block execution through the modules
//! ([`exec`]: accounts, assets, records, governance), the application that builds, validates and commits blocks
//! with their block store ([`app`]), the mempool ([`mempool`]), geneses ([`genesis`]), key files ([`keys`]), a
//! network-less chain for tests and simulations ([`testkit`]), and (as they land) consensus shell, network, mempool and
//! gateway, plus the `causeway-chain` binary.
//!
//! **Must never**: trust a peer, a file or a client without checking it; panic on bad input; let execution depend
//! on anything but the block and the state (no clocks, no randomness, no I/O in execution).
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod exec;
/// The node's REST + WebSocket API, its typed client and access tokens.
pub mod gateway;
pub mod genesis;
pub mod keys;
pub mod ledger;
pub mod mempool;
pub mod message;
/// The peer-to-peer network shell: libp2p gossip and request-response between allowed peers.
pub mod net;
pub mod node;
pub mod state;
pub mod testkit;
pub mod tx;
pub mod xchain;
