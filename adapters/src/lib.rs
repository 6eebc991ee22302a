//! # causeway-adapters
//!
//! How the hub and the relayer see a foreign chain family. Each family module pairs a light client (an
//! implementation of [`causeway_light_client::LightClient`]) with the parsers that turn what the family's nodes
//! serve (JSON-RPC responses, RLP blocks) into the types that light client checks.
//!
//! - [`tendermint`]: Tendermint/CometBFT chains. Header verification is delegated to
//!   `tendermint-light-client-verifier` (sequential and skipping, trusting period, trust threshold); state proofs
//!   are ICS-23 commitment proofs checked with the `ics23` crate.
//! - [`ethereum`]: permissioned Hyperledger Besu chains running QBFT, IBFT 2.0 or IBFT 1.0. Headers are checked by
//!   recovering committed seals with secp256k1 (k256) against the trusted validator set (quorum ceil(2n/3) of
//!   distinct validators), following validator-set votes; account and storage proofs come from EIP-1186
//!   `eth_getProof` and are checked against a verified header's state root with `alloy-trie`.
//!
//! Each family's client ([`tendermint::TendermintClient`], [`ethereum::BesuClient`]) implements the light-client
//! trait; the clients, their updates ([`tendermint::TendermintHeader`], [`ethereum::BesuHeader`]), misbehaviour
//! evidence and proofs serialise as serde JSON and as the canonical versioned binary form
//! ([`causeway_light_client::Canonical`], bounded on decoding), so the hub can carry them in transactions.
//!
//! [`source`] holds the small traits a relayer reads a chain through (headers, proofs), implemented per family.
//!
//! **Owns**: the per-family verification rules (hash rules, seal rules, proof formats), each family's light-client
//! state, and the parsing of the family's wire formats into verified-ready types.
//!
//! **Must never**: perform I/O, read a clock or spawn tasks in verification code: time is always an argument and
//! the parsing functions take bytes or strings, never paths or sockets. It must never accept a header or proof on a
//! relayer's word: everything is re-verified from signatures and hashes. It never re-implements what
//! `tendermint-light-client-verifier`, `ics23`, `alloy-rlp`, `alloy-trie`, `alloy-consensus` or `k256` provide.
#![forbid(unsafe_code)]

pub mod ethereum;
pub mod source;
pub mod tendermint;
