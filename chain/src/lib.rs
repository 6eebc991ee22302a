//! # causeway-chain
//!
//! **Owns**: the ledger engine every Causeway chain runs: namespaced, versioned, provable state on RocksDB
//! ([`state`]), and (as they land) transactions, modules, block execution, consensus shell, network, mempool and
//! gateway, plus the `causeway-chain` binary.
//!
//! **Must never**: trust a peer, a file or a client without checking it; panic on bad input; let execution depend
//! on anything but the block and the state (no clocks, no randomness, no I/O in execution).
#![forbid(unsafe_code)]

/// The peer-to-peer network shell: libp2p gossip and request-response between allowed peers.
pub mod net;
pub mod state;
