//! # causeway-relayer
//!
//! **Owns**: the `causeway-relayer` command line ([`cli`]) and, for now, its offline verification of foreign-chain
//! data ([`verify`]): Tendermint light blocks, ICS-23 proofs, EIP-1186 proofs and Besu headers and chains, checked
//! with the same adapters the hub uses. The relay daemon (`start`, `clear`, `status`, `keys`) arrives later as
//! further subcommands beside `verify`.
//!
//! **Must never**: decide a verdict itself. Every check is delegated to `causeway-adapters` and
//! `causeway-light-client`; this crate only reads files, calls them, and reports.
#![forbid(unsafe_code)]

pub mod cli;
pub mod verify;
