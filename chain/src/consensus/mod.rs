//! Consensus: Tendermint-style BFT with instant finality, as a pure state machine ([`core`]) driven by the node
//! shell.
//!
//! **Owns**: consensus messages and what they sign ([`types`]), the deterministic core that checks every message
//! and turns inputs into effects ([`core`]), the adapter to Malachite's round state machine ([`malachite`], private),
//! the write-ahead log that makes a restart safe ([`wal`]), and a deterministic simulation of whole networks
//! with faults ([`sim`]).
//!
//! **Must never**: perform I/O, read a clock or spawn tasks in [`core`] or [`malachite`] (only [`wal::WalFile`]
//! touches a file, and only when the shell calls it); sign two different messages for one height, round and kind.

pub mod core;
mod malachite;
pub mod sim;
pub mod types;
pub mod wal;

pub use self::core::{Consensus, ConsensusConfig, ConsensusError, Effect, Input, Parent};
pub use self::malachite::RoundTimeouts;
pub use self::types::{
    certificate_from_precommits, proposer_address, proposer_index, verify_commit, CertificateError, ConsensusMsg,
    Proposal, SignedProposal, SignedVote, TimeoutKind, Vote, VoteKind,
};
