//! What nodes send each other besides consensus messages: transaction batches (gossip) and block sync requests
//! and responses (request-response). Canonical encodings with limits, decoded defensively.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::types::MAX_BLOCK_BYTES;
use causeway_light_client::{Block, Canonical, CodecError, CommitCertificate};

use crate::tx::MAX_TX_BYTES;

/// Most transactions in one gossiped batch.
pub const MAX_BATCH_TXS: usize = 4_096;
/// Most blocks in one sync response.
pub const MAX_SYNC_BLOCKS: u32 = 16;

/// Transactions gossiped together (each a canonical [`crate::tx::SignedTx`] encoding).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    /// The encoded transactions.
    pub txs: Vec<Vec<u8>>,
}

impl Canonical for TxBatch {
    const KIND: &'static str = "transaction batch";
    const MAX_LEN: usize = 16 * 1024 * 1024;
    fn validate(&self) -> Result<(), CodecError> {
        if self.txs.is_empty() || self.txs.len() > MAX_BATCH_TXS {
            return Err(CodecError::Invalid { kind: Self::KIND, reason: format!("{} transactions", self.txs.len()) });
        }
        if self.txs.iter().any(|t| t.len() > MAX_TX_BYTES) {
            return Err(CodecError::Invalid { kind: Self::KIND, reason: "a transaction is over the size limit".into() });
        }
        Ok(())
    }
}

/// A block sync request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// Committed blocks from `from` on, at most `max` (capped at [`MAX_SYNC_BLOCKS`]).
    Blocks {
        /// First height.
        from: u64,
        /// How many.
        max: u32,
    },
}

impl Canonical for SyncRequest {
    const KIND: &'static str = "sync request";
    const MAX_LEN: usize = 64;
}

/// A committed block with the certificate that decided it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncedBlock {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: CommitCertificate,
}

/// The answer to a [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    /// Consecutive committed blocks from the requested height (empty if the peer has none there); `latest` is the
    /// peer's latest height.
    Blocks {
        /// The peer's latest height.
        latest: u64,
        /// The blocks.
        blocks: Vec<SyncedBlock>,
    },
}

impl Canonical for SyncResponse {
    const KIND: &'static str = "sync response";
    const MAX_LEN: usize = MAX_BLOCK_BYTES;
    fn validate(&self) -> Result<(), CodecError> {
        let SyncResponse::Blocks { blocks, .. } = self;
        if blocks.len() > MAX_SYNC_BLOCKS as usize {
            return Err(CodecError::Invalid { kind: Self::KIND, reason: format!("{} blocks", blocks.len()) });
        }
        if blocks.windows(2).any(|w| w[0].block.header.height + 1 != w[1].block.header.height) {
            return Err(CodecError::Invalid { kind: Self::KIND, reason: "blocks are not consecutive".into() });
        }
        for b in blocks {
            b.block.validate()?;
            b.certificate.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn batches_are_bounded() {
        assert!(TxBatch::decode(&TxBatch { txs: vec![] }.encode()).is_err());
        let ok = TxBatch { txs: vec![vec![1, 2, 3]] };
        assert_eq!(TxBatch::decode(&ok.encode()).unwrap(), ok);
        assert!(TxBatch::decode(&TxBatch { txs: vec![vec![0; MAX_TX_BYTES + 1]] }.encode()).is_err());
        let req = SyncRequest::Blocks { from: 5, max: 3 };
        assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = TxBatch::decode(&bytes);
            let _ = SyncRequest::decode(&bytes);
            let _ = SyncResponse::decode(&bytes);
        }
    }
}
