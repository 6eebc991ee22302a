//! # causeway-light-client
//!
//! **Owns**: the canonical types every Causeway chain signs and hashes (headers, commit certificates, validator
//! sets), their versioned encoding, the signature suites (ed25519, SM2/SM3, secp256k1), the two-level state
//! commitment with its membership and non-membership proofs, the [`LightClient`] trait that
//! every chain family implements, the verification of commit certificates ([`commit`]) and the light client of
//! native Causeway chains ([`native`]). With the `testgen` feature, [`testgen`] generates signed chains, state
//! proofs and corruptions of them for other crates' tests and benchmarks.
//!
//! **Must never**: perform I/O, read a clock, spawn threads or depend on an async runtime. Time is always an
//! argument. The hub, the relayer and the chains call into this crate; it calls nobody.
#![forbid(unsafe_code)]
// Tests state their expectations with `unwrap`; a failure there is the test failing, not a panic on input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod client;
pub mod codec;
pub mod commit;
pub mod crypto;
pub mod hash;
pub mod key_proof;
pub mod native;
pub mod proof;
#[cfg(any(test, feature = "testgen"))]
pub mod testgen;
pub mod types;

pub use client::{ClientStatus, ConsensusState, LightClient, TrustThreshold, UpdateOutcome};
pub use codec::{Canonical, CodecError};
pub use commit::{verify_commit, verify_commit_light, verify_commit_trusting, CommitError};
pub use crypto::{Address, CryptoError, PublicKey, SecretKey, SignKind, Signature, Suite};
pub use hash::{Hash, HashAlg};
pub use native::{HeaderUpdate, Misbehaviour, NativeClient, NativeError, TrustOptions};
pub use proof::{ProofError, StatePath, StateProof};
pub use types::{Block, ChainId, CommitCertificate, CommitSig, Header, Namespace, Time, Validator, ValidatorSet};
