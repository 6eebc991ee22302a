//! # causeway-light-client
//!
//! **Owns**: the canonical types every Causeway chain signs and hashes (headers, commit certificates, validator
//! sets), their versioned encoding, the signature suites (ed25519, SM2/SM3, secp256k1), the two-level state
//! commitment with its membership and non-membership proofs, and the [`LightClient`](client::LightClient) trait
//! that every chain family implements.
//!
//! **Must never**: perform I/O, read a clock, spawn threads or depend on an async runtime. Time is always an
//! argument. The hub, the relayer and the chains call into this crate; it calls nobody.
#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod crypto;
pub mod hash;
pub mod proof;
pub mod types;

pub use client::{ClientStatus, ConsensusState, LightClient, TrustThreshold, UpdateOutcome};
pub use codec::{Canonical, CodecError};
pub use crypto::{Address, CryptoError, PublicKey, SecretKey, SignKind, Signature, Suite};
pub use hash::{Hash, HashAlg};
pub use proof::{ProofError, StateProof};
pub use types::{Block, ChainId, CommitCertificate, CommitSig, Header, Namespace, Time, Validator, ValidatorSet};
