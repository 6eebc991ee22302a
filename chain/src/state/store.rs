//! RocksDB-backed store: one Jellyfish Merkle tree per namespace, the top-level root over namespace roots.

use causeway_light_client::CodecError;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A key or value breaks the size limits.
    #[error("state limit: {0}")]
    Limit(CodecError),
}

/// The persistent store.
pub struct Store;
