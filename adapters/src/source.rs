//! How a relayer reads a chain: small traits, one per concern, that each family implements.
//!
//! [`HeaderSource`] yields the updates that move a light client of the chain forward; [`ProofSource`] yields a
//! value with its state proof at a height. The relayer implements them over each family's RPC (CometBFT
//! `/commit` + `/validators` + `abci_query`, Besu `eth_getBlockByNumber` + `eth_getProof`), feeding the responses
//! to this crate's parsers; the recorded sources here serve data already fetched (files, tests, simulations), so
//! the code that plans relaying runs without a network. The traits are async because real sources do I/O; this
//! crate still runs none and depends on no runtime.
//!
//! **Must never**: verify anything. A source's answers are untrusted until a light client checks them.

use std::collections::BTreeMap;
use std::future::Future;

use tendermint_light_client_verifier::types::LightBlock;

use crate::ethereum::{BesuHeader, Header};
use crate::tendermint::TendermintHeader;

/// Why a recorded source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source holds nothing at this height.
    #[error("no data at height {0}")]
    Missing(u64),
    /// The source holds no data at all.
    #[error("the source is empty")]
    Empty,
}

/// Reads the updates that move a light client of one chain forward.
pub trait HeaderSource {
    /// What the family's light client takes as an update.
    type Update;
    /// Why reading failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The chain's latest height.
    fn latest_height(&self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// An update to `height` for a client that trusts `trusted_height`. Families without skipping (Besu BFT)
    /// need `height == trusted_height + 1`.
    fn update(
        &self,
        height: u64,
        trusted_height: u64,
    ) -> impl Future<Output = Result<Self::Update, Self::Error>> + Send;
}

/// Reads values with their state proofs.
pub trait ProofSource {
    /// The family's proof type.
    type Proof;
    /// Why reading failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The value under `path` in the state committed at `height`, with its proof.
    fn proof(
        &self,
        height: u64,
        path: &[u8],
    ) -> impl Future<Output = Result<ProvenValue<Self::Proof>, Self::Error>> + Send;
}

/// A value read from a chain's state with the proof a light client checks it by.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenValue<P> {
    /// The value, `None` when the path holds nothing.
    pub value: Option<Vec<u8>>,
    /// Its proof of membership (or, for `None`, of non-membership).
    pub proof: P,
}

/// Tendermint light blocks already fetched, by height.
#[derive(Clone, Debug, Default)]
pub struct RecordedTendermint {
    blocks: BTreeMap<u64, LightBlock>,
}

impl RecordedTendermint {
    /// A source serving `blocks`.
    pub fn new(blocks: impl IntoIterator<Item = LightBlock>) -> Self {
        RecordedTendermint {
            blocks: blocks.into_iter().map(|b| (b.height().value(), b)).collect(),
        }
    }

    fn block(&self, height: u64) -> Result<&LightBlock, SourceError> {
        self.blocks.get(&height).ok_or(SourceError::Missing(height))
    }
}

impl HeaderSource for RecordedTendermint {
    type Update = TendermintHeader;
    type Error = SourceError;

    async fn latest_height(&self) -> Result<u64, SourceError> {
        self.blocks.keys().next_back().copied().ok_or(SourceError::Empty)
    }

    async fn update(&self, height: u64, trusted_height: u64) -> Result<TendermintHeader, SourceError> {
        Ok(TendermintHeader::new(
            self.block(height)?.clone(),
            self.block(trusted_height)?,
        ))
    }
}

/// Besu headers already fetched, by number.
#[derive(Clone, Debug, Default)]
pub struct RecordedBesu {
    headers: BTreeMap<u64, Header>,
}

impl RecordedBesu {
    /// A source serving `headers`.
    pub fn new(headers: impl IntoIterator<Item = Header>) -> Self {
        RecordedBesu {
            headers: headers.into_iter().map(|h| (h.number, h)).collect(),
        }
    }
}

impl HeaderSource for RecordedBesu {
    type Update = BesuHeader;
    type Error = SourceError;

    async fn latest_height(&self) -> Result<u64, SourceError> {
        self.headers.keys().next_back().copied().ok_or(SourceError::Empty)
    }

    async fn update(&self, height: u64, _trusted_height: u64) -> Result<BesuHeader, SourceError> {
        self.headers
            .get(&height)
            .cloned()
            .map(BesuHeader)
            .ok_or(SourceError::Missing(height))
    }
}
