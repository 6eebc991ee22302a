//! The application a node runs under consensus: it builds proposed blocks, validates blocks proposed by others by
//! executing them, and commits decided blocks together with their state in one atomic write.
//!
//! **Owns**: the block rules (height, parent, time, transaction root, last commit, validator hashes, limits, state
//! root), execution of blocks through [`crate::exec`], the cache of executed-but-undecided blocks, and the block
//! store (blocks, certificates, results, transaction index, validator sets per height).
//! **Must never**: vote, sign or talk to the network (that is consensus and the node shell); accept a block whose
//! state root or next validators it did not compute itself; re-verify a signature it already verified.

use std::path::Path;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::commit::{verify_commit, CommitError};
use causeway_light_client::{
    Address, Block, Canonical, ChainId, CodecError, CommitCertificate, Hash, HashAlg, Header, Time, ValidatorSet,
};
use serde::{Deserialize, Serialize};

use crate::exec::{self, BlockContext, Event, ExecError, Extension, TxResult};
use crate::genesis::{Genesis, GenesisError};
use crate::state::{BlockData, PreparedCommit, StateError, Store, StoreOptions};
use crate::tx::{verify_many, SignedTx, TxError, VerifiedTx};

/// A failure of the node's own machinery (storage, corrupt data): the node must stop, not go on.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Storage failed.
    #[error("storage: {0}")]
    State(#[from] StateError),
    /// Execution hit a fatal error.
    #[error("execution: {0}")]
    Exec(#[from] ExecError),
    /// Stored bytes do not decode.
    #[error("corrupt block store: {0}")]
    Corrupt(String),
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The store belongs to another chain or genesis.
    #[error("the data directory holds chain {found}, not {expected}")]
    WrongChain {
        /// The genesis' chain.
        expected: ChainId,
        /// The store's chain.
        found: String,
    },
    /// The chain merged out: it produces nothing after its final height.
    #[error("the chain stopped at its final height {0} (merged out)")]
    Halted(u64),
    /// The block was executed on another height than the latest.
    #[error("block at height {got} cannot be committed on top of height {latest}")]
    Stale {
        /// Its height.
        got: u64,
        /// The latest committed height.
        latest: u64,
    },
}

/// Why a proposed or synced block is invalid. Nothing is stored for an invalid block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Wrong chain id.
    #[error("block of chain {0}")]
    WrongChain(ChainId),
    /// Not the next height.
    #[error("block at height {got}, expected {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// Parent hash mismatch.
    #[error("parent hash {got} is not the last block {expected}")]
    WrongParent {
        /// The last block's id.
        expected: Hash,
        /// The header's parent hash.
        got: Hash,
    },
    /// Time not after the parent's.
    #[error("block time {got:?} is not after the parent's {parent:?}")]
    TimeNotAfterParent {
        /// The parent's time.
        parent: Time,
        /// The block's.
        got: Time,
    },
    /// Time too far ahead of the local clock.
    #[error("block time {got:?} is ahead of the local clock {now:?} by more than the allowed drift")]
    TimeInFuture {
        /// Local time.
        now: Time,
        /// The block's.
        got: Time,
    },
    /// A header field breaks a rule.
    #[error("header field {field}: {reason}")]
    Header {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The last commit does not prove the parent.
    #[error("last commit: {0}")]
    LastCommit(String),
    /// The chain merged out and stopped at this final height.
    #[error("the chain stopped at its final height {0} (merged out)")]
    Halted(u64),
    /// Too many transactions or bytes.
    #[error("block exceeds limits: {0}")]
    Limits(String),
    /// A transaction does not decode or its signature is bad.
    #[error("transaction {index}: {error}")]
    Tx {
        /// Its position.
        index: usize,
        /// Why.
        error: TxError,
    },
    /// The same transaction twice.
    #[error("transaction {index} appears twice")]
    DuplicateTx {
        /// Its second position.
        index: usize,
    },
    /// Executing the block gives another state root or validator set than the header claims.
    #[error("header claims {field} {claimed}, execution gives {computed}")]
    Execution {
        /// `state_root` or `next_validators_hash`.
        field: &'static str,
        /// In the header.
        claimed: Hash,
        /// Computed.
        computed: Hash,
    },
}

/// Either an invalid block or a fatal error.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The block is invalid.
    #[error(transparent)]
    Invalid(#[from] BlockError),
    /// The node failed.
    #[error(transparent)]
    Fatal(#[from] AppError),
}

impl From<StateError> for ValidateError {
    fn from(e: StateError) -> Self {
        ValidateError::Fatal(AppError::State(e))
    }
}

impl From<ExecError> for ValidateError {
    fn from(e: ExecError) -> Self {
        ValidateError::Fatal(AppError::Exec(e))
    }
}

/// What the block store keeps of a block's execution.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockResults {
    /// One result per transaction, in order.
    pub txs: Vec<TxResult>,
    /// Events of end-of-block processing.
    pub end_events: Vec<Event>,
}

/// Where a committed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// A block that was committed.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The block.
    pub block: Arc<Block>,
    /// Its id.
    pub block_id: Hash,
    /// The certificate that decided it.
    pub certificate: CommitCertificate,
    /// Its results.
    pub results: Arc<BlockResults>,
    /// Hashes of its transactions, in order.
    pub tx_hashes: Vec<Hash>,
}

/// A block executed against the latest state but not yet decided: what [`App::commit`] writes when consensus
/// decides it. Valid only while the latest height does not change.
pub struct Executed {
    block: Arc<Block>,
    block_id: Hash,
    results: BlockResults,
    next_validators: ValidatorSet,
    tx_hashes: Vec<Hash>,
    prepared: PreparedCommit,
}

impl std::fmt::Debug for Executed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed").field("height", &self.block.header.height).field("block_id", &self.block_id).finish()
    }
}

impl Executed {
    /// The block.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }

    /// Its id (header hash).
    pub fn block_id(&self) -> Hash {
        self.block_id
    }

    /// Its height.
    pub fn height(&self) -> u64 {
        self.block.header.height
    }

    /// Hashes of its transactions, in order.
    pub fn tx_hashes(&self) -> &[Hash] {
        &self.tx_hashes
    }
}

/// Settings of the application.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// State retention (heights); `None` keeps all.
    pub retention: Option<u64>,
    /// fsync each commit.
    pub sync: bool,
    /// Largest accepted gap between a proposed block's time and the local clock.
    pub max_clock_drift: std::time::Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions { retention: None, sync: true, max_clock_drift: std::time::Duration::from_secs(10) }
    }
}

/// The application of one node.
pub struct App {
    genesis: Genesis,
    options: AppOptions,
    store: Store,
    extensions: Vec<Arc<dyn Extension>>,
    last_id: Hash,
    last_time: Time,
    last_commit: Option<CommitCertificate>,
    validators: ValidatorSet,
    next_validators: ValidatorSet,
    /// Set once a merge-out record is committed: no block after this height.
    final_height: Option<u64>,
}

const KEY_GENESIS: &[u8] = b"genesis";

impl App {
    /// Open the application's store in `dir`, initialising it from `genesis` when empty.
    pub fn open(
        dir: &Path,
        genesis: Genesis,
        extensions: Vec<Arc<dyn Extension>>,
        options: AppOptions,
    ) -> Result<App, AppError> {
        Self::open_inner(dir, genesis, None, extensions, options)
    }

    /// Open a chain born of a split or merge. The first time, height 0 is built from `carried` (a snapshot of the
    /// carried namespaces only, as `causeway-chain ledger split|merge` writes it), adopted only if its root is
    /// the root over the genesis' carried namespaces, plus the genesis' own writes; later opens ignore `carried`.
    pub fn open_carried(
        dir: &Path,
        genesis: Genesis,
        carried: &mut dyn std::io::Read,
        extensions: Vec<Arc<dyn Extension>>,
        options: AppOptions,
        progress: &indicatif::ProgressBar,
    ) -> Result<App, AppError> {
        Self::open_inner(dir, genesis, Some((carried, progress)), extensions, options)
    }

    fn open_inner(
        dir: &Path,
        genesis: Genesis,
        carried: Option<(&mut dyn std::io::Read, &indicatif::ProgressBar)>,
        extensions: Vec<Arc<dyn Extension>>,
        options: AppOptions,
    ) -> Result<App, AppError> {
        genesis.validate()?;
        let store_options = StoreOptions { hash_alg: genesis.hash, retention: options.retention, sync: options.sync };
        let mut store = Store::open(dir, store_options.clone())?;
        let genesis_id = genesis.hash();
        let fresh = store.get_block_data(BlockData::Blocks, KEY_GENESIS)?.is_none();
        if let (true, Some(lineage)) = (fresh, &genesis.lineage) {
            let Some((input, progress)) = carried else {
                return Err(AppError::Genesis(GenesisError::Invalid(
                    "this genesis carries state from a split or merge: start it from its carried-state file".into(),
                )));
            };
            drop(store);
            let set = genesis.validator_set()?;
            let block_data = [
                (BlockData::Validators, 1u64.to_be_bytes().to_vec(), set.encode()),
                (BlockData::Blocks, KEY_GENESIS.to_vec(), genesis_id.0.to_vec()),
            ];
            let writes = genesis.initial_writes()?;
            let root = lineage.carried_root(genesis.hash);
            let mut input = input;
            store = crate::state::snapshot::import_with(dir, store_options, &mut input, &root, &writes, &block_data, progress)?.0;
        }
        match store.get_block_data(BlockData::Blocks, KEY_GENESIS)? {
            Some(raw) => {
                if raw != genesis_id.0 {
                    return Err(AppError::WrongChain {
                        expected: genesis.chain_id.clone(),
                        found: format!("with genesis {}", Hash(raw.try_into().unwrap_or([0; 32]))),
                    });
                }
            }
            None => {
                let writes = genesis.initial_writes()?;
                let mut prepared = store.prepare(0, &writes)?;
                let set = genesis.validator_set()?;
                prepared.put(&store, BlockData::Validators, &1u64.to_be_bytes(), &set.encode())?;
                prepared.put(&store, BlockData::Blocks, KEY_GENESIS, &genesis_id.0)?;
                store.apply(prepared)?;
            }
        }
        let validators = genesis.validator_set()?;
        let mut app = App {
            last_time: genesis.genesis_time,
            genesis,
            options,
            store,
            extensions,
            last_id: Hash::ZERO,
            last_commit: None,
            next_validators: validators.clone(),
            validators,
            final_height: None,
        };
        app.load_tip()?;
        Ok(app)
    }

    fn load_tip(&mut self) -> Result<(), AppError> {
        let h = self.height();
        if h > 0 {
            let block = self.block(h)?.ok_or_else(|| AppError::Corrupt(format!("block {h} missing")))?;
            self.last_id = block.header.hash(self.hash_alg());
            self.last_time = block.header.time;
            self.last_commit = self.commit_at(h)?;
            if self.last_commit.is_none() {
                return Err(AppError::Corrupt(format!("certificate of block {h} missing")));
            }
        }
        self.validators = self.validators_at(h.max(1))?;
        self.next_validators = self.validators_at(h + 1)?;
        self.final_height = exec::lineage::final_height(&self.store.latest_view())?;
        Ok(())
    }

    /// The final height, once the chain merged out: it builds, accepts and commits no block after it.
    pub fn final_height(&self) -> Option<u64> {
        self.final_height
    }

    /// Whether the chain reached its final height and stopped.
    pub fn halted(&self) -> bool {
        self.final_height.is_some_and(|f| self.height() >= f)
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.genesis.chain_id
    }

    /// The chain's hash function.
    pub fn hash_alg(&self) -> HashAlg {
        self.genesis.hash
    }

    /// The state store (proofs, views).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest committed height (0: only genesis).
    pub fn height(&self) -> u64 {
        self.store.latest_height().unwrap_or(0)
    }

    /// The id of the latest block (zero at genesis).
    pub fn last_block_id(&self) -> Hash {
        self.last_id
    }

    /// The time of the latest block (the genesis time at genesis).
    pub fn last_time(&self) -> Time {
        self.last_time
    }

    /// The certificate of the latest block (none at genesis).
    pub fn last_commit(&self) -> Option<&CommitCertificate> {
        self.last_commit.as_ref()
    }

    /// The validators of the latest height (of height 1 at genesis).
    pub fn last_validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The validators of the next height.
    pub fn next_validators(&self) -> &ValidatorSet {
        &self.next_validators
    }

    /// The validator set that signs `height` (known up to the next height).
    pub fn validators_at(&self, height: u64) -> Result<ValidatorSet, AppError> {
        let raw = self
            .store
            .get_block_data(BlockData::Validators, &height.to_be_bytes())?
            .ok_or_else(|| AppError::Corrupt(format!("no validator set for height {height}")))?;
        ValidatorSet::decode(&raw).map_err(|e| AppError::Corrupt(format!("validators of {height}: {e}")))
    }

    /// A committed block.
    pub fn block(&self, height: u64) -> Result<Option<Block>, AppError> {
        self.decode_at(BlockData::Blocks, height, |raw| Block::decode(raw).map_err(|e| e.to_string()))
    }

    /// The certificate that decided a committed block.
    pub fn commit_at(&self, height: u64) -> Result<Option<CommitCertificate>, AppError> {
        self.decode_at(BlockData::Commits, height, |raw| CommitCertificate::decode(raw).map_err(|e| e.to_string()))
    }

    /// The results of a committed block.
    pub fn results(&self, height: u64) -> Result<Option<BlockResults>, AppError> {
        self.decode_at(BlockData::Results, height, |raw| BlockResults::try_from_slice(raw).map_err(|e| e.to_string()))
    }

    /// Where a committed transaction is.
    pub fn tx_location(&self, hash: &Hash) -> Result<Option<TxLocation>, AppError> {
        match self.store.get_block_data(BlockData::Txs, &hash.0)? {
            None => Ok(None),
            Some(raw) => TxLocation::try_from_slice(&raw)
                .map(Some)
                .map_err(|e| AppError::Corrupt(format!("tx index: {e}"))),
        }
    }

    fn decode_at<T>(
        &self,
        family: BlockData,
        height: u64,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Option<T>, AppError> {
        match self.store.get_block_data(family, &height.to_be_bytes())? {
            None => Ok(None),
            Some(raw) => decode(&raw).map(Some).map_err(|e| AppError::Corrupt(format!("{family:?} {height}: {e}"))),
        }
    }

    fn context(&self, header: &Header) -> BlockContext {
        BlockContext {
            chain_id: self.genesis.chain_id.clone(),
            height: header.height,
            time: header.time,
            proposer: header.proposer,
        }
    }

    /// Build the next block from `txs` (already verified, in the order given): execute them and fill in the state
    /// root and next validators. Transactions beyond the chain's limits are left out. The result is committed
    /// with [`App::commit`] once decided.
    pub fn build_block(&self, proposer: Address, time: Time, mut txs: Vec<VerifiedTx>) -> Result<Executed, AppError> {
        if let (true, Some(f)) = (self.halted(), self.final_height) {
            return Err(AppError::Halted(f));
        }
        let params = exec::governance::params(&self.store.latest_view())?;
        let mut bytes = 0u64;
        let mut keep = 0usize;
        for tx in &txs {
            let len = tx.encoded_len() as u64;
            if keep >= params.max_block_txs as usize || bytes + len > params.max_block_bytes {
                break;
            }
            bytes += len;
            keep += 1;
        }
        txs.truncate(keep);
        let alg = self.hash_alg();
        let height = self.height() + 1;
        let time = if time > self.last_time { time } else { Time(self.last_time.0 + 1) };
        let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encoded().to_vec()).collect();
        let mut header = Header {
            app_version: self.genesis.app_version,
            chain_id: self.genesis.chain_id.clone(),
            height,
            time,
            parent_hash: self.last_id,
            tx_root: Block::tx_root(alg, &encoded),
            last_commit_hash: self.last_commit.as_ref().map_or(Hash::ZERO, |c| c.hash(alg)),
            state_root: Hash::ZERO,
            validators_hash: self.next_validators.hash(alg),
            next_validators_hash: Hash::ZERO,
            proposer,
        };
        let (prepared, results, next_validators) = self.execute(&header, &txs)?;
        header.state_root = prepared.state_root();
        header.next_validators_hash = next_validators.hash(alg);
        let block = Arc::new(Block { header, txs: encoded, last_commit: self.last_commit.clone() });
        let block_id = block.header.hash(alg);
        let tx_hashes = txs.iter().map(|t| t.hash()).collect();
        Ok(Executed { block, block_id, results, next_validators, tx_hashes, prepared })
    }

    fn execute(
        &self,
        header: &Header,
        txs: &[VerifiedTx],
    ) -> Result<(PreparedCommit, BlockResults, ValidatorSet), AppError> {
        let ctx = self.context(header);
        let outcome = exec::execute_block(self.store.latest_view(), &ctx, txs, &self.extensions)?;
        let prepared = self.store.prepare(header.height, &outcome.writes)?;
        Ok((prepared, BlockResults { txs: outcome.results, end_events: outcome.end_events }, outcome.next_validators))
    }

    /// Check every rule of a block proposed for the next height (or delivered by sync) and execute it. `known`
    /// returns transactions this node already verified (its mempool), which are not verified again. With `now`,
    /// the block's time may not be ahead of it by more than the allowed drift (proposals); sync passes `None`.
    /// Returns the execution, for [`App::commit`] once the block is decided.
    pub fn validate_block(
        &self,
        block: Arc<Block>,
        now: Option<Time>,
        known: &dyn Fn(&Hash) -> Option<VerifiedTx>,
    ) -> Result<Executed, ValidateError> {
        let alg = self.hash_alg();
        let block_id = block.header.hash(alg);
        self.check_header(&block, now)?;
        let txs = self.check_txs(&block, known)?;
        let (prepared, results, next_validators) = self.execute(&block.header, &txs)?;
        let h = &block.header;
        if prepared.state_root() != h.state_root {
            return Err(BlockError::Execution {
                field: "state_root",
                claimed: h.state_root,
                computed: prepared.state_root(),
            }
            .into());
        }
        let next_hash = next_validators.hash(alg);
        if next_hash != h.next_validators_hash {
            return Err(BlockError::Execution {
                field: "next_validators_hash",
                claimed: h.next_validators_hash,
                computed: next_hash,
            }
            .into());
        }
        let tx_hashes = txs.iter().map(|t| t.hash()).collect();
        Ok(Executed { block, block_id, results, next_validators, tx_hashes, prepared })
    }

    fn check_header(&self, block: &Block, now: Option<Time>) -> Result<(), BlockError> {
        let alg = self.hash_alg();
        let h = &block.header;
        if h.chain_id != self.genesis.chain_id {
            return Err(BlockError::WrongChain(h.chain_id.clone()));
        }
        if let (true, Some(f)) = (self.halted(), self.final_height) {
            return Err(BlockError::Halted(f));
        }
        let expected = self.height() + 1;
        if h.height != expected {
            return Err(BlockError::WrongHeight { expected, got: h.height });
        }
        if h.parent_hash != self.last_id {
            return Err(BlockError::WrongParent { expected: self.last_id, got: h.parent_hash });
        }
        if h.time <= self.last_time {
            return Err(BlockError::TimeNotAfterParent { parent: self.last_time, got: h.time });
        }
        if let Some(now) = now {
            if h.time > now.plus(self.options.max_clock_drift) {
                return Err(BlockError::TimeInFuture { now, got: h.time });
            }
        }
        if h.app_version != self.genesis.app_version {
            return Err(BlockError::Header { field: "app_version", reason: format!("{} is not {}", h.app_version, self.genesis.app_version) });
        }
        if h.validators_hash != self.next_validators.hash(alg) {
            return Err(BlockError::Header { field: "validators_hash", reason: "not the validator set of this height".into() });
        }
        if self.next_validators.index_of(&h.proposer).is_none() {
            return Err(BlockError::Header { field: "proposer", reason: format!("{} is not a validator", h.proposer) });
        }
        if h.tx_root != Block::tx_root(alg, &block.txs) {
            return Err(BlockError::Header { field: "tx_root", reason: "does not match the transactions".into() });
        }
        let commit_hash = block.last_commit.as_ref().map_or(Hash::ZERO, |c| c.hash(alg));
        if h.last_commit_hash != commit_hash {
            return Err(BlockError::Header { field: "last_commit_hash", reason: "does not match the last commit".into() });
        }
        match (&block.last_commit, expected) {
            (None, 1) => {}
            (Some(_), 1) => return Err(BlockError::LastCommit("block 1 carries no last commit".into())),
            (None, _) => return Err(BlockError::LastCommit("missing".into())),
            (Some(c), _) => {
                if c.height != expected - 1 || c.block_id != self.last_id {
                    return Err(BlockError::LastCommit(format!(
                        "certifies {} at height {}, not the last block",
                        c.block_id, c.height
                    )));
                }
                verify_commit(self.genesis.chain_id.as_str(), &self.validators, c)
                    .map_err(|e: CommitError| BlockError::LastCommit(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn check_txs(&self, block: &Block, known: &dyn Fn(&Hash) -> Option<VerifiedTx>) -> Result<Vec<VerifiedTx>, BlockError> {
        let params = exec::governance::params(&self.store.latest_view()).map_err(|e| BlockError::Limits(e.to_string()))?;
        if block.txs.len() > params.max_block_txs as usize {
            return Err(BlockError::Limits(format!("{} transactions, limit {}", block.txs.len(), params.max_block_txs)));
        }
        let bytes: u64 = block.txs.iter().map(|t| t.len() as u64).sum();
        if bytes > params.max_block_bytes {
            return Err(BlockError::Limits(format!("{bytes} bytes of transactions, limit {}", params.max_block_bytes)));
        }
        let alg = self.hash_alg();
        let mut out: Vec<Option<VerifiedTx>> = Vec::with_capacity(block.txs.len());
        let mut unknown: Vec<(usize, SignedTx)> = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(block.txs.len());
        for (index, raw) in block.txs.iter().enumerate() {
            let hash = alg.hash(raw);
            if !seen.insert(hash) {
                return Err(BlockError::DuplicateTx { index });
            }
            match known(&hash) {
                Some(v) => out.push(Some(v)),
                None => {
                    let signed = SignedTx::decode(raw)
                        .map_err(|e: CodecError| BlockError::Tx { index, error: TxError::Codec(e) })?;
                    unknown.push((index, signed));
                    out.push(None);
                }
            }
        }
        let (indices, signed): (Vec<usize>, Vec<SignedTx>) = unknown.into_iter().unzip();
        for (index, verdict) in indices.into_iter().zip(verify_many(signed, &self.genesis.chain_id, alg)) {
            out[index] = Some(verdict.map_err(|error| BlockError::Tx { index, error })?);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Commit a block validated or built here, decided by `certificate` (checked by consensus), with its state,
    /// results and index entries in one atomic write.
    pub fn commit(&mut self, executed: Executed, certificate: CommitCertificate) -> Result<Committed, AppError> {
        let Executed { block, block_id, results, next_validators, tx_hashes, mut prepared } = executed;
        let h = block.header.height;
        if h != self.height() + 1 {
            return Err(AppError::Stale { got: h, latest: self.height() });
        }
        let key = h.to_be_bytes();
        prepared.put(&self.store, BlockData::Blocks, &key, &block.encode())?;
        prepared.put(&self.store, BlockData::Commits, &key, &certificate.encode())?;
        prepared.put(&self.store, BlockData::Results, &key, &borsh::to_vec(&results).map_err(|e| AppError::Corrupt(e.to_string()))?)?;
        prepared.put(&self.store, BlockData::Validators, &(h + 1).to_be_bytes(), &next_validators.encode())?;
        for (index, hash) in tx_hashes.iter().enumerate() {
            let loc = TxLocation { height: h, index: index as u32 };
            prepared.put(&self.store, BlockData::Txs, &hash.0, &borsh::to_vec(&loc).map_err(|e| AppError::Corrupt(e.to_string()))?)?;
        }
        self.store.apply(prepared)?;
        self.last_id = block_id;
        self.last_time = block.header.time;
        self.last_commit = Some(certificate.clone());
        self.validators = std::mem::replace(&mut self.next_validators, next_validators);
        if self.final_height.is_none() {
            self.final_height = exec::lineage::final_height(&self.store.latest_view())?;
        }
        Ok(Committed { block, block_id, certificate, results: Arc::new(results), tx_hashes })
    }
}
