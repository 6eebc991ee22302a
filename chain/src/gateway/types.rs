//! The JSON shapes of the gateway's API, shared by the server ([`super::router`]) and the typed client
//! ([`super::client`]) so the two cannot drift apart. Pure data: no I/O here.

use std::collections::BTreeMap;

use causeway_light_client::{
    Address, ChainId, CommitCertificate, Hash, HashAlg, Header, Namespace, StateProof, Time, ValidatorSet,
};
use serde::{Deserialize, Serialize};

use crate::exec::{Event, TxResult};
use crate::message::{Amount, Bytes};
use crate::tx::SignedTx;

/// The body of every error answer: a stable machine-readable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `bad_height` or `mempool_full`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// A snapshot of the node behind the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The chain.
    pub chain_id: ChainId,
    /// The node's name.
    pub moniker: String,
    /// Its validator address, if it is one.
    pub validator: Option<Address>,
    /// Latest committed height.
    pub height: u64,
    /// Its block id.
    pub block_id: Hash,
    /// Its time.
    pub time: Time,
    /// The chain's hash function (fixed at genesis): what its headers, state roots and proofs use.
    pub hash_alg: HashAlg,
    /// Current consensus round.
    pub round: u32,
    /// Connected peers.
    pub peers: usize,
    /// Transactions waiting in the mempool.
    pub mempool_txs: usize,
    /// True while block sync is catching up.
    pub catching_up: bool,
    /// Seconds since the node last committed a block.
    pub seconds_since_commit: u64,
}

/// `/health`: whether the node committed recently, with its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// True when the node committed within the configured age.
    pub healthy: bool,
    /// Why not, when unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The node's status.
    pub status: Status,
}

/// One transaction in a submission: exactly one of the three encodings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxInput {
    /// Hex of the canonical signed transaction bytes (an optional `0x` prefix is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// Base64 (standard alphabet, padded or not) of the canonical signed transaction bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// The signed transaction as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
}

/// `POST /v1/txs/batch`: many transactions; each item is a [`TxInput`] object or a bare hex string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// The transactions.
    pub txs: Vec<serde_json::Value>,
}

/// Where a submission stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    /// Admitted to the mempool.
    Accepted,
    /// Included in a committed block (its execution may still have failed: see the result).
    Committed,
}

/// The answer to `POST /v1/txs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitView {
    /// The transaction hash.
    pub hash: Hash,
    /// Accepted, or committed (with `?wait=commit`).
    pub status: SubmitStatus,
    /// The block that included it, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Its position in that block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Its execution result, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TxResult>,
}

/// One transaction's fate in a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemView {
    /// Its hash, when it decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    /// Why it was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The answer to `POST /v1/txs/batch`: one item per submitted transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchView {
    /// How many were admitted.
    pub accepted: usize,
    /// How many were refused.
    pub rejected: usize,
    /// Per transaction, in the order submitted.
    pub results: Vec<BatchItemView>,
}

/// A committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// Its hash.
    pub hash: Hash,
    /// The block that included it.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The transaction.
    pub tx: SignedTx,
    /// Its execution result.
    pub result: TxResult,
}

/// A committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Its id (header hash).
    pub block_id: Hash,
    /// Its header.
    pub header: Header,
    /// The certificate of the previous block that it carries (none at height 1).
    pub last_commit: Option<CommitCertificate>,
    /// Hashes of its transactions, in order.
    pub tx_hashes: Vec<Hash>,
    /// Its transactions, in order (left out with `?txs=false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txs: Option<Vec<SignedTx>>,
}

/// A committed header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderView {
    /// Its hash.
    pub block_id: Hash,
    /// The header.
    pub header: Header,
}

/// The certificate that decided a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitView {
    /// The decided height.
    pub height: u64,
    /// The decided block id.
    pub block_id: Hash,
    /// The certificate.
    pub certificate: CommitCertificate,
}

/// The validator set that signs a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsView {
    /// The height it signs.
    pub height: u64,
    /// Its hash (as in the header's `validators_hash`).
    pub hash: Hash,
    /// Total voting power.
    pub total_power: u64,
    /// The set.
    pub validators: ValidatorSet,
}

/// A value in state (or its absence) with a proof against the state root of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// The height proven.
    pub height: u64,
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: Bytes,
    /// The value, or none when absent.
    pub value: Option<Bytes>,
    /// Membership or non-membership proof.
    pub proof: StateProof,
    /// The state root the proof verifies against (the header's `state_root`; at height 0 the genesis state's).
    pub state_root: Hash,
    /// The header of that height (none at height 0).
    pub header: Option<Header>,
    /// The chain's hash function (what the proof hashes with).
    pub hash_alg: HashAlg,
}

/// `POST /v1/proofs`: many keys proven at one height in one request (what a relayer batches).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofsInput {
    /// The height to prove at (default: latest).
    #[serde(default)]
    pub height: Option<u64>,
    /// The keys, each in its namespace (at most [`MAX_PROOF_KEYS`]).
    pub keys: Vec<ProofKey>,
}

/// Keys one `POST /v1/proofs` may ask for, at most.
pub const MAX_PROOF_KEYS: usize = 1024;

/// One key of a [`ProofsInput`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofKey {
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: Bytes,
}

/// Values (or their absence) with proofs against the state root of one height, in the order asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofsView {
    /// The height proven.
    pub height: u64,
    /// The state root every proof verifies against (the header's `state_root`; at height 0 the genesis state's).
    pub state_root: Hash,
    /// The header of that height (none at height 0).
    pub header: Option<Header>,
    /// The chain's hash function.
    pub hash_alg: HashAlg,
    /// One item per key asked, in order.
    pub items: Vec<ProvenItem>,
}

/// One proven key of a [`ProofsView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenItem {
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: Bytes,
    /// The value, or none when absent.
    pub value: Option<Bytes>,
    /// Membership or non-membership proof.
    pub proof: StateProof,
}

/// An event of a committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Block height.
    pub height: u64,
    /// The transaction that emitted it (none for end-of-block events).
    pub tx_hash: Option<Hash>,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// The answer to `GET /v1/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsView {
    /// First height searched.
    pub from: u64,
    /// Last height searched.
    pub to: u64,
    /// The events, in block and transaction order.
    pub events: Vec<EventView>,
}

/// An account: its next nonce and the balances asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// The nonce its next transaction must carry (committed state; transactions waiting in the mempool are not
    /// counted).
    pub nonce: u64,
    /// Balances of the denominations asked for with `?denoms=`.
    pub balances: BTreeMap<String, Amount>,
    /// The height read.
    pub height: u64,
}

/// A frame the server sends on the WebSocket `/v1/ws`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsFrame {
    /// Subscriptions in force (sent first, and after every change).
    Subscribed {
        /// Topics: `blocks`, `events`.
        topics: Vec<String>,
        /// Event kinds filtered on (empty: all).
        kinds: Vec<String>,
    },
    /// A block was committed.
    Block {
        /// Its height.
        height: u64,
        /// Its id.
        block_id: Hash,
        /// Its header.
        header: Box<Header>,
        /// Its transactions' hashes.
        tx_hashes: Vec<Hash>,
        /// How many of them failed execution.
        failed: usize,
    },
    /// An event of a committed block.
    Event(EventView),
    /// The subscriber was too slow: this many blocks were skipped.
    Lagged {
        /// Blocks skipped.
        missed: u64,
    },
    /// A client frame was not understood.
    Error(ErrorBody),
}

/// What a client may send on the WebSocket: replace the subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSubscribe {
    /// Topics: `blocks`, `events`.
    pub subscribe: Vec<String>,
    /// Event kinds to keep (empty: all).
    #[serde(default)]
    pub kinds: Vec<String>,
}
