//! # causeway-tests
//!
//! **Owns**: end-to-end tests. [`alliance`]: a hub and member chains as in-process [`TestChain`]s (real blocks,
//! certificates, headers and state proofs; no network), with the relaying steps a relayer performs built from those
//! headers and proofs, for protocol tests and the seeded multi-chain simulation (`tests/hub_*.rs`). And tests that
//! run Causeway's real binaries as containers on one private Docker network (`tests/containers.rs`, with the
//! image and `docker` plumbing in [`docker`]): a whole alliance — hub validators, members, relayers and a
//! Byzantine relayer (`src/bin/causeway-byzantine-relayer.rs`) — through crashes, partitions, pauses and forgeries,
//! checked through the gateways.
//!
//! **Must never**: be used by production code; take shortcuts a real relayer could not (every message is built
//! only from what a chain's store and blocks show: headers, certificates, validator sets, proofs, events); pull an
//! image from a registry (the image is built locally from the workspace's binaries), or pass silently when Docker
//! is missing under `CI=true`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use causeway_chain::testkit::TestChain;

pub mod alliance;
pub mod docker;
