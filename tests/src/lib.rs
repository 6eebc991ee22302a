//! # causeway-tests
//!
//! End-to-end test support. [`alliance`]: a hub and member chains as in-process [`TestChain`]s (real blocks,
//! certificates, headers and state proofs; no network), with the relaying steps a relayer performs built from those
//! headers and proofs, for protocol tests and the seeded multi-chain simulation.
//!
//! **Must never**: be used by production code; take shortcuts a real relayer could not (every message is built
//! only from what a chain's store and blocks show: headers, certificates, validator sets, proofs, events).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use causeway_chain::testkit::TestChain;

pub mod alliance;
