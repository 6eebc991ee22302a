//! Test generator: valid chains of signed headers, their state and proofs, and ways to corrupt them.
//!
//! **Owns**: building deterministic (seeded) validator sets of any suite, a chain of headers with commit
//! certificates signed by those sets (with validator-set changes at chosen heights), the state committed at each
//! height with real proofs (Jellyfish trees in memory), [`HeaderUpdate`]s and [`Misbehaviour`] between any two
//! heights, and corruption helpers. **Must never**: be used outside tests and benchmarks — it holds secret keys
//! in memory and panics on misuse (a height outside the chain), like any test helper. Available with the cargo
//! feature `testgen` (and always inside this crate's own tests).

use std::collections::BTreeMap;

use jmt::mock::MockTreeStore;
use jmt::{JellyfishMerkleTree, SimpleHasher};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::crypto::{SecretKey, Signature, Suite};
use crate::hash::{Hash, HashAlg};
use crate::key_proof::KeyProof;
use crate::native::{HeaderUpdate, Misbehaviour, NativeClient, TrustOptions};
use crate::proof::{self, StateProof};
use crate::types::{ChainId, CommitCertificate, CommitSig, Header, Namespace, Time, Validator, ValidatorSet};

/// A validator set together with the secret keys of its members, in the set's (address) order.
#[derive(Clone, Debug)]
pub struct Signers {
    set: ValidatorSet,
    keys: Vec<SecretKey>,
}

impl Signers {
    /// A set of the given keys and powers.
    pub fn new(members: Vec<(SecretKey, u64)>) -> Self {
        let set = ValidatorSet::new(
            members
                .iter()
                .map(|(k, p)| Validator {
                    pub_key: k.public_key(),
                    power: *p,
                })
                .collect(),
        )
        .expect("testgen: invalid validator set");
        let mut keys: Vec<SecretKey> = members.into_iter().map(|(k, _)| k).collect();
        keys.sort_by_cached_key(|k| k.public_key().address());
        Signers { set, keys }
    }

    /// `powers.len()` fresh validators of `suite` with those powers, drawn from `seed`.
    pub fn generate(suite: Suite, powers: &[u64], seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Self::new(
            powers
                .iter()
                .map(|&p| (SecretKey::generate_with(suite, &mut rng), p))
                .collect(),
        )
    }

    /// `n` validators of `suite` with power 10 each.
    pub fn equal(suite: Suite, n: usize, seed: u64) -> Self {
        Self::generate(suite, &vec![10; n], seed)
    }

    /// This set without the members at `indices`, plus `extra` (same suite, fresh keys from `seed`, power 10 each).
    pub fn rotate(&self, indices: &[usize], extra: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let suite = self.keys.first().map_or(Suite::Ed25519, |k| k.suite());
        let mut members: Vec<(SecretKey, u64)> = (0..self.set.len())
            .filter(|i| !indices.contains(i))
            .map(|i| (self.keys[i].clone(), self.set.validators()[i].power))
            .collect();
        members.extend((0..extra).map(|_| (SecretKey::generate_with(suite, &mut rng), 10)));
        Self::new(members)
    }

    /// The validator set.
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    /// The secret keys, in the set's order.
    pub fn keys(&self) -> &[SecretKey] {
        &self.keys
    }

    /// A certificate for `block_id` signed by every member.
    pub fn commit(&self, chain_id: &str, height: u64, round: u32, block_id: Hash) -> CommitCertificate {
        self.commit_by(chain_id, height, round, block_id, |_| true)
    }

    /// A certificate for `block_id` signed by the members whose index passes `signs`.
    pub fn commit_by(
        &self,
        chain_id: &str,
        height: u64,
        round: u32,
        block_id: Hash,
        signs: impl Fn(usize) -> bool,
    ) -> CommitCertificate {
        let mut cert = CommitCertificate {
            height,
            round,
            block_id,
            signatures: Vec::new(),
        };
        let bytes = cert.sign_bytes(chain_id);
        cert.signatures = (0..self.keys.len())
            .filter(|&i| signs(i))
            .map(|i| CommitSig {
                validator_index: i as u32,
                signature: self.keys[i].sign_raw(&bytes),
            })
            .collect();
        cert
    }
}

/// The state every generated header commits to: a fixed base plus the key `height` in namespace `testgen`, so
/// the root changes at every height.
#[derive(Clone, Debug, Default)]
pub struct TestState {
    entries: BTreeMap<Namespace, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl TestState {
    /// Put `value` under `(namespace, key)`.
    pub fn put(&mut self, namespace: &str, key: &[u8], value: &[u8]) -> &mut Self {
        let ns = Namespace::new(namespace).expect("testgen: invalid namespace");
        self.entries
            .entry(ns)
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        self
    }

    /// Build every namespace tree once; the result gives the root and proofs.
    pub fn commit(&self, alg: HashAlg) -> CommittedState {
        let trees: Vec<(Namespace, MockTreeStore, Hash)> = self
            .entries
            .iter()
            .map(|(ns, entries)| {
                let set = entries
                    .iter()
                    .map(|(k, v)| (proof::key_hash(alg, k), Some(v.clone())));
                let store = MockTreeStore::default();
                let (root, batch) = match alg {
                    HashAlg::Sha256 => {
                        JellyfishMerkleTree::<_, sha2::Sha256>::new(&store).put_value_set(set, 0)
                    }
                    HashAlg::Sm3 => JellyfishMerkleTree::<_, sm3::Sm3>::new(&store).put_value_set(set, 0),
                }
                .expect("testgen: tree update");
                store.write_tree_update_batch(batch).expect("testgen: tree write");
                (ns.clone(), store, Hash(root.0))
            })
            .collect();
        let roots: Vec<(Namespace, Hash)> = trees.iter().map(|(ns, _, root)| (ns.clone(), *root)).collect();
        let stores = trees.into_iter().map(|(_, store, _)| store).collect();
        CommittedState {
            alg,
            root: proof::state_root(alg, &roots),
            roots,
            stores,
        }
    }

    /// The state root.
    pub fn root(&self, alg: HashAlg) -> Hash {
        self.commit(alg).root()
    }

    /// The value under `(namespace, key)` and a proof of it, or of its absence.
    pub fn prove(&self, alg: HashAlg, namespace: &Namespace, key: &[u8]) -> (Option<Vec<u8>>, StateProof) {
        self.commit(alg).prove(namespace, key)
    }
}

/// A [`TestState`] with its trees built: its root, and proofs for any key.
pub struct CommittedState {
    alg: HashAlg,
    root: Hash,
    /// Namespace roots, sorted by namespace; `stores[i]` holds the tree of `roots[i]`.
    roots: Vec<(Namespace, Hash)>,
    stores: Vec<MockTreeStore>,
}

impl CommittedState {
    /// The state root.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The value under `(namespace, key)` and a proof of it, or of its absence.
    pub fn prove(&self, namespace: &Namespace, key: &[u8]) -> (Option<Vec<u8>>, StateProof) {
        let alg = self.alg;
        let Ok(index) = self.roots.binary_search_by(|(ns, _)| ns.cmp(namespace)) else {
            let p = proof::prove_namespace_absent(alg, &self.roots, namespace)
                .expect("testgen: namespace is absent");
            return (None, p);
        };
        let store = &self.stores[index];
        let kh = proof::key_hash(alg, key);
        let (value, key_proof) = match alg {
            HashAlg::Sha256 => key_proof::<sha2::Sha256>(alg, store, kh),
            HashAlg::Sm3 => key_proof::<sm3::Sm3>(alg, store, kh),
        };
        let siblings = proof::prove_top(alg, &self.roots, &[index]);
        let p = StateProof::InNamespace {
            ns_root: self.roots[index].1,
            index: index as u32,
            count: self.roots.len() as u32,
            siblings,
            key_proof,
        };
        (value, p)
    }
}

fn key_proof<H: SimpleHasher>(alg: HashAlg, store: &MockTreeStore, key: jmt::KeyHash) -> (Option<Vec<u8>>, Vec<u8>) {
    let (value, proof) = JellyfishMerkleTree::<_, H>::new(store)
        .get_with_proof(key, 0)
        .expect("testgen: proof");
    let jmt_bytes = borsh::to_vec(&proof).expect("testgen: proof encoding");
    let compact = KeyProof::from_jmt_borsh(alg, &jmt_bytes).and_then(|p| p.encode()).expect("testgen: compact proof");
    (value, compact)
}

/// One generated height.
#[derive(Clone, Debug)]
pub struct SignedBlock {
    /// The header.
    pub header: Header,
    /// Its certificate, signed by every validator of the height.
    pub commit: CommitCertificate,
    /// The set that signed it.
    pub validators: ValidatorSet,
    /// The set that signs the next height.
    pub next_validators: ValidatorSet,
}

/// How to generate a chain.
#[derive(Clone, Debug)]
pub struct ChainBuilder {
    chain_id: ChainId,
    hash_alg: HashAlg,
    genesis_time: Time,
    block_secs: u64,
    base_state: TestState,
    /// The set that signs from each height on (height 1 always present).
    sets: BTreeMap<u64, Signers>,
}

impl ChainBuilder {
    /// A chain `chain_id` signed by `signers` from height 1; SHA-256, genesis at 1 700 000 000 s, one block a second.
    pub fn new(chain_id: &str, signers: Signers) -> Self {
        ChainBuilder {
            chain_id: ChainId::new(chain_id).expect("testgen: invalid chain id"),
            hash_alg: HashAlg::Sha256,
            genesis_time: Time::from_secs(1_700_000_000),
            block_secs: 1,
            base_state: TestState::default(),
            sets: BTreeMap::from([(1, signers)]),
        }
    }

    /// Use `alg` for headers, sets and state.
    pub fn hash_alg(mut self, alg: HashAlg) -> Self {
        self.hash_alg = alg;
        self
    }

    /// Time of height 1.
    pub fn genesis_time(mut self, time: Time) -> Self {
        self.genesis_time = time;
        self
    }

    /// Seconds between heights.
    pub fn block_secs(mut self, secs: u64) -> Self {
        self.block_secs = secs;
        self
    }

    /// Entries present in the state at every height.
    pub fn state(mut self, state: TestState) -> Self {
        self.base_state = state;
        self
    }

    /// `signers` sign from `height` on (the header at `height - 1` announces them as its next set).
    pub fn validators_from(mut self, height: u64, signers: Signers) -> Self {
        assert!(height >= 1, "testgen: heights start at 1");
        self.sets.insert(height, signers);
        self
    }

    /// Generate heights 1 to `last`.
    pub fn build(self, last: u64) -> TestChain {
        let mut chain = TestChain {
            spec: self,
            blocks: Vec::new(),
        };
        let mut parent = Hash::ZERO;
        let mut last_commit = Hash::ZERO;
        for height in 1..=last {
            let block = chain.make_block(height, parent, last_commit, 0);
            parent = block.header.hash(chain.spec.hash_alg);
            last_commit = block.commit.hash(chain.spec.hash_alg);
            chain.blocks.push(block);
        }
        chain
    }
}

/// A generated chain.
#[derive(Clone, Debug)]
pub struct TestChain {
    spec: ChainBuilder,
    blocks: Vec<SignedBlock>,
}

impl TestChain {
    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.spec.chain_id
    }

    /// The hash function.
    pub fn hash_alg(&self) -> HashAlg {
        self.spec.hash_alg
    }

    /// Highest generated height.
    pub fn last_height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The block at `height` (1-based).
    pub fn block(&self, height: u64) -> &SignedBlock {
        height
            .checked_sub(1)
            .and_then(|i| self.blocks.get(i as usize))
            .expect("testgen: height outside the chain")
    }

    /// The signers of `height`.
    pub fn signers(&self, height: u64) -> &Signers {
        self.spec
            .sets
            .range(..=height)
            .next_back()
            .map(|(_, s)| s)
            .expect("testgen: no signers")
    }

    /// Block time of `height`.
    pub fn time(&self, height: u64) -> Time {
        Time::from_secs(self.spec.genesis_time.as_secs() + (height - 1) * self.spec.block_secs)
    }

    /// The state committed at `height`: the base state plus `testgen/height` = the height (big-endian).
    pub fn state_at(&self, height: u64) -> TestState {
        let mut state = self.spec.base_state.clone();
        state.put("testgen", b"height", &height.to_be_bytes());
        state
    }

    /// The value under `(namespace, key)` at `height` and its proof against that height's state root.
    pub fn prove(&self, height: u64, namespace: &Namespace, key: &[u8]) -> (Option<Vec<u8>>, StateProof) {
        self.state_at(height).prove(self.spec.hash_alg, namespace, key)
    }

    fn make_block(&self, height: u64, parent_hash: Hash, last_commit_hash: Hash, round: u32) -> SignedBlock {
        let alg = self.spec.hash_alg;
        let signers = self.signers(height);
        let next = self.signers(height + 1);
        let header = Header {
            app_version: 1,
            chain_id: self.spec.chain_id.clone(),
            height,
            time: self.time(height),
            parent_hash,
            tx_root: crate::types::Block::tx_root(alg, &[]),
            last_commit_hash,
            state_root: self.state_at(height).root(alg),
            validators_hash: signers.set().hash(alg),
            next_validators_hash: next.set().hash(alg),
            proposer: signers.set().validators()[(height as usize) % signers.set().len()].address(),
        };
        let commit = signers.commit(self.spec.chain_id.as_str(), height, round, header.hash(alg));
        SignedBlock {
            header,
            commit,
            validators: signers.set().clone(),
            next_validators: next.set().clone(),
        }
    }

    /// Trust options for this chain (defaults of [`TrustOptions::new`]).
    pub fn options(&self) -> TrustOptions {
        TrustOptions::new(self.spec.chain_id.clone(), self.spec.hash_alg)
    }

    /// A time shortly after `height` was produced: a valid `now` for updates up to that height.
    pub fn now_after(&self, height: u64) -> Time {
        self.time(height).plus(std::time::Duration::from_secs(5))
    }

    /// A client trusting `height`, with `options`, created at [`TestChain::now_after`] that height.
    pub fn client(&self, height: u64, options: TrustOptions) -> NativeClient {
        NativeClient::new(options, &self.block(height).header, self.now_after(height))
            .expect("testgen: client creation")
    }

    /// The update proving `height` from `trusted_height`.
    pub fn update(&self, trusted_height: u64, height: u64) -> HeaderUpdate {
        let block = self.block(height);
        HeaderUpdate {
            header: block.header.clone(),
            commit: block.commit.clone(),
            validators: block.validators.clone(),
            trusted_height,
            trusted_validators: self.block(trusted_height).next_validators.clone(),
        }
    }

    /// A different header at `height`, signed by the same validators (an equivocating majority): its state root
    /// differs. Proven from `trusted_height`.
    pub fn fork_update(&self, trusted_height: u64, height: u64) -> HeaderUpdate {
        let alg = self.spec.hash_alg;
        let mut block = self.block(height).clone();
        block.header.state_root = alg.hash(b"testgen/fork");
        block.commit = self.signers(height).commit(
            self.spec.chain_id.as_str(),
            height,
            block.commit.round,
            block.header.hash(alg),
        );
        HeaderUpdate {
            header: block.header,
            commit: block.commit,
            validators: block.validators,
            trusted_height,
            trusted_validators: self.block(trusted_height).next_validators.clone(),
        }
    }

    /// `update` with its header changed by `change` and re-signed by every member of `signers` (whatever set
    /// the header names): a header the chain's validators could really have signed.
    pub fn resigned(
        &self,
        update: &HeaderUpdate,
        signers: &Signers,
        change: impl FnOnce(&mut Header),
    ) -> HeaderUpdate {
        let mut u = update.clone();
        change(&mut u.header);
        u.commit = signers.commit(
            u.header.chain_id.as_str(),
            u.header.height,
            u.commit.round,
            u.header.hash(self.spec.hash_alg),
        );
        u
    }

    /// Evidence of the fork at `height`: the real header and [`TestChain::fork_update`], both from `trusted_height`.
    pub fn misbehaviour(&self, trusted_height: u64, height: u64) -> Misbehaviour {
        Misbehaviour {
            first: self.update(trusted_height, height),
            second: self.fork_update(trusted_height, height),
        }
    }
}

/// A header field to change without re-signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    /// `app_version`.
    AppVersion,
    /// `time` (one second later).
    Time,
    /// `parent_hash`.
    ParentHash,
    /// `tx_root`.
    TxRoot,
    /// `last_commit_hash`.
    LastCommitHash,
    /// `state_root`.
    StateRoot,
    /// `validators_hash`.
    ValidatorsHash,
    /// `next_validators_hash`.
    NextValidatorsHash,
    /// `proposer`.
    Proposer,
}

impl HeaderField {
    /// Every field.
    pub const ALL: [HeaderField; 9] = [
        HeaderField::AppVersion,
        HeaderField::Time,
        HeaderField::ParentHash,
        HeaderField::TxRoot,
        HeaderField::LastCommitHash,
        HeaderField::StateRoot,
        HeaderField::ValidatorsHash,
        HeaderField::NextValidatorsHash,
        HeaderField::Proposer,
    ];
}

/// A way to damage a valid update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Flip one bit of byte `byte % 64` of signature `signature % n`.
    FlipSignatureByte {
        /// Which signature (modulo their number).
        signature: usize,
        /// Which byte (modulo 64).
        byte: usize,
    },
    /// Keep only the first `keep` signatures.
    KeepSigners {
        /// How many signatures remain.
        keep: usize,
    },
    /// Change a header field without re-signing.
    Field(HeaderField),
    /// Replace the chain id (header re-signed by the same validators for the other chain).
    OtherChain,
    /// Move the certificate to the next round (signatures no longer match).
    OtherRound,
    /// Swap two signatures' positions (breaks the index order).
    SwapSignatures,
    /// Repeat the first signature.
    DuplicateSignature,
    /// Point a signature at an index outside the set.
    IndexOutsideSet,
    /// Replace the validator set by another one of equal size.
    OtherValidatorSet {
        /// Seed of the replacement keys.
        seed: u64,
    },
    /// Replace the trusted validator set by another one of equal size.
    OtherTrustedValidatorSet {
        /// Seed of the replacement keys.
        seed: u64,
    },
}

/// A corrupted copy of `update`, an update of `chain`.
pub fn corrupt(chain: &TestChain, update: &HeaderUpdate, corruption: Corruption) -> HeaderUpdate {
    let mut u = update.clone();
    let n = u.commit.signatures.len();
    match corruption {
        Corruption::FlipSignatureByte { signature, byte } => {
            if n > 0 {
                flip_signature_byte(&mut u.commit.signatures[signature % n].signature, byte % 64);
            }
        }
        Corruption::KeepSigners { keep } => u.commit.signatures.truncate(keep),
        Corruption::Field(field) => change_field(&mut u.header, field),
        Corruption::OtherChain => {
            let other = if chain.chain_id().as_str() == "other-chain" {
                "other-chain-2"
            } else {
                "other-chain"
            };
            u.header.chain_id = ChainId::new(other).expect("testgen: chain id");
            let block_id = u.header.hash(chain.hash_alg());
            u.commit =
                chain
                    .signers(u.header.height)
                    .commit(other, u.header.height, u.commit.round, block_id);
        }
        Corruption::OtherRound => u.commit.round += 1,
        Corruption::SwapSignatures => {
            if n >= 2 {
                u.commit.signatures.swap(0, 1);
            }
        }
        Corruption::DuplicateSignature => {
            if let Some(first) = u.commit.signatures.first().cloned() {
                u.commit.signatures.insert(1, first);
            }
        }
        Corruption::IndexOutsideSet => {
            if let Some(last) = u.commit.signatures.last_mut() {
                last.validator_index = u.validators.len() as u32;
            }
        }
        Corruption::OtherValidatorSet { seed } => u.validators = replacement(&u.validators, seed),
        Corruption::OtherTrustedValidatorSet { seed } => {
            u.trusted_validators = replacement(&u.trusted_validators, seed)
        }
    }
    u
}

fn replacement(set: &ValidatorSet, seed: u64) -> ValidatorSet {
    let suite = set
        .validators()
        .first()
        .map_or(Suite::Ed25519, |v| v.pub_key.suite());
    let powers: Vec<u64> = set.validators().iter().map(|v| v.power).collect();
    Signers::generate(suite, &powers, seed ^ 0x5eed).set().clone()
}

/// Flip one bit of byte `byte` (0..64) of `sig`.
pub fn flip_signature_byte(sig: &mut Signature, byte: usize) {
    let mut bytes = *sig.as_bytes();
    bytes[byte % 64] ^= 0x01;
    *sig = match sig.suite() {
        Suite::Ed25519 => Signature::Ed25519(bytes),
        Suite::Sm2 => Signature::Sm2(bytes),
        Suite::Secp256k1 => Signature::Secp256k1(bytes),
    };
}

/// Change `field` of `header` (without re-signing anything).
pub fn change_field(header: &mut Header, field: HeaderField) {
    let bump = |h: &mut Hash| h.0[0] ^= 0xff;
    match field {
        HeaderField::AppVersion => header.app_version ^= 1,
        HeaderField::Time => header.time = header.time.plus(std::time::Duration::from_secs(1)),
        HeaderField::ParentHash => bump(&mut header.parent_hash),
        HeaderField::TxRoot => bump(&mut header.tx_root),
        HeaderField::LastCommitHash => bump(&mut header.last_commit_hash),
        HeaderField::StateRoot => bump(&mut header.state_root),
        HeaderField::ValidatorsHash => bump(&mut header.validators_hash),
        HeaderField::NextValidatorsHash => bump(&mut header.next_validators_hash),
        HeaderField::Proposer => header.proposer.0[0] ^= 0xff,
    }
}
