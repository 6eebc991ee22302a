//! The mempool: verified transactions waiting for a block, deduplicated, ordered per signer by nonce, bounded.
//!
//! **Owns**: admission rules (no duplicate, no nonce already used, no nonce too far ahead, bounds on count and
//! bytes), the choice of transactions for a proposal (each signer's consecutive nonces from its account nonce,
//! signers interleaved), and eviction once transactions are committed or stale.
//! **Must never**: verify signatures (it admits [`VerifiedTx`]s only: the node batch-verifies before), or grow
//! without bound: when full it refuses, and the caller reports back-pressure to the client.

use std::collections::{BTreeMap, HashMap};

use causeway_light_client::{Address, Hash};

use crate::tx::VerifiedTx;

/// How far beyond the account's nonce a transaction may be queued.
pub const MAX_NONCE_GAP: u64 = 10_000;

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The pool is at its bound: try again later.
    #[error("mempool full ({txs} transactions, {bytes} bytes)")]
    Full {
        /// Transactions held.
        txs: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// This exact transaction is already waiting.
    #[error("transaction already in the mempool")]
    Duplicate,
    /// Another transaction of the signer already waits with this nonce.
    #[error("nonce {0} of this signer is already taken by another waiting transaction")]
    NonceTaken(u64),
    /// The nonce was already used on chain.
    #[error("nonce {got} already used (account nonce is {expected})")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The nonce is too far ahead of the account's.
    #[error("nonce {got} is more than {MAX_NONCE_GAP} ahead of the account nonce {expected}")]
    NonceTooHigh {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
}

/// Bounds of a mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
}

impl Default for MempoolLimits {
    /// 100 000 transactions or 256 MiB, whichever is reached first.
    fn default() -> Self {
        MempoolLimits { max_txs: 100_000, max_bytes: 256 * 1024 * 1024 }
    }
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    txs: HashMap<Hash, VerifiedTx>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash>>,
    bytes: usize,
}

impl Mempool {
    /// An empty pool.
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool { limits, txs: HashMap::new(), by_sender: BTreeMap::new(), bytes: 0 }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many more transactions fit (by count; the byte bound is checked on insertion).
    pub fn room(&self) -> usize {
        self.limits.max_txs.saturating_sub(self.txs.len())
    }

    /// The refusal a full pool gives.
    pub fn full_error(&self) -> MempoolError {
        MempoolError::Full { txs: self.txs.len(), bytes: self.bytes }
    }

    /// Whether a transaction is waiting.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.txs.contains_key(hash)
    }

    /// A waiting transaction (already verified: block validation need not verify it again).
    pub fn get(&self, hash: &Hash) -> Option<VerifiedTx> {
        self.txs.get(hash).cloned()
    }

    /// Admit `tx`, whose signer's account nonce on chain is `account_nonce`.
    pub fn insert(&mut self, tx: VerifiedTx, account_nonce: u64) -> Result<(), MempoolError> {
        let hash = tx.hash();
        if self.txs.contains_key(&hash) {
            return Err(MempoolError::Duplicate);
        }
        let nonce = tx.tx().nonce;
        if nonce < account_nonce {
            return Err(MempoolError::NonceTooLow { expected: account_nonce, got: nonce });
        }
        if nonce - account_nonce > MAX_NONCE_GAP {
            return Err(MempoolError::NonceTooHigh { expected: account_nonce, got: nonce });
        }
        let sender = tx.tx().sender();
        if self.by_sender.get(&sender).is_some_and(|q| q.contains_key(&nonce)) {
            return Err(MempoolError::NonceTaken(nonce));
        }
        if self.txs.len() >= self.limits.max_txs || self.bytes + tx.encoded_len() > self.limits.max_bytes {
            return Err(MempoolError::Full { txs: self.txs.len(), bytes: self.bytes });
        }
        self.bytes += tx.encoded_len();
        self.by_sender.entry(sender).or_default().insert(nonce, hash);
        self.txs.insert(hash, tx);
        Ok(())
    }

    /// Choose transactions for a block: for every signer its waiting transactions with consecutive nonces from
    /// its account nonce, signers interleaved round by round, until `max_txs` or `max_bytes` is reached.
    pub fn reap(&self, max_txs: usize, max_bytes: usize, account_nonce: impl Fn(&Address) -> u64) -> Vec<VerifiedTx> {
        // Each signer's executable run, in nonce order.
        let mut runs: Vec<Vec<&VerifiedTx>> = Vec::new();
        for (sender, queue) in &self.by_sender {
            let first = account_nonce(sender);
            let mut run = Vec::new();
            for (expected, (nonce, hash)) in (first..).zip(queue.range(first..)) {
                if *nonce != expected {
                    break;
                }
                if let Some(tx) = self.txs.get(hash) {
                    run.push(tx);
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut depth = 0usize;
        let mut exhausted = vec![false; runs.len()];
        loop {
            let mut progressed = false;
            for (i, run) in runs.iter().enumerate() {
                if exhausted[i] {
                    continue;
                }
                let Some(tx) = run.get(depth) else {
                    exhausted[i] = true;
                    continue;
                };
                if out.len() >= max_txs {
                    return out;
                }
                if bytes + tx.encoded_len() > max_bytes {
                    // Later nonces of this signer cannot be taken without this one.
                    exhausted[i] = true;
                    continue;
                }
                bytes += tx.encoded_len();
                out.push((*tx).clone());
                progressed = true;
            }
            if !progressed {
                return out;
            }
            depth += 1;
        }
    }

    /// Drop transactions that a committed block carried, and every waiting transaction whose nonce is now used.
    /// `account_nonce` reads the state after the block.
    pub fn update_after_commit(&mut self, committed: &[Hash], account_nonce: impl Fn(&Address) -> u64) {
        let mut senders = Vec::new();
        for h in committed {
            if let Some(tx) = self.txs.get(h) {
                senders.push(tx.tx().sender());
            }
            self.remove(h);
        }
        senders.sort();
        senders.dedup();
        for sender in senders {
            let floor = account_nonce(&sender);
            let stale: Vec<Hash> = self
                .by_sender
                .get(&sender)
                .map(|q| q.range(..floor).map(|(_, h)| *h).collect())
                .unwrap_or_default();
            for h in stale {
                self.remove(&h);
            }
        }
    }

    fn remove(&mut self, hash: &Hash) {
        let Some(tx) = self.txs.remove(hash) else { return };
        self.bytes -= tx.encoded_len();
        let sender = tx.tx().sender();
        if let Some(q) = self.by_sender.get_mut(&sender) {
            q.remove(&tx.tx().nonce);
            if q.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Amount, Denom, Message};
    use crate::tx::Transaction;
    use causeway_light_client::{ChainId, HashAlg, SecretKey, Suite};
    use proptest::prelude::*;

    fn tx(key: &SecretKey, nonce: u64) -> VerifiedTx {
        let chain = ChainId::new("c").unwrap();
        Transaction {
            chain_id: chain.clone(),
            signer: key.public_key(),
            nonce,
            messages: vec![Message::Transfer { to: Address([1; 20]), denom: Denom::new("x").unwrap(), amount: Amount(1) }],
        }
        .sign(key)
        .verify(&chain, HashAlg::Sha256)
        .unwrap()
    }

    fn pool(max_txs: usize) -> Mempool {
        Mempool::new(MempoolLimits { max_txs, max_bytes: 1 << 20 })
    }

    #[test]
    fn admission_rules() {
        let k = SecretKey::from_bytes(Suite::Ed25519, &[1; 32]).unwrap();
        let mut p = pool(3);
        p.insert(tx(&k, 5), 5).unwrap();
        assert_eq!(p.insert(tx(&k, 5), 5), Err(MempoolError::Duplicate));
        assert_eq!(p.insert(tx(&k, 4), 5), Err(MempoolError::NonceTooLow { expected: 5, got: 4 }));
        assert!(matches!(p.insert(tx(&k, 5 + MAX_NONCE_GAP + 1), 5), Err(MempoolError::NonceTooHigh { .. })));
        p.insert(tx(&k, 6), 5).unwrap();
        p.insert(tx(&k, 7), 5).unwrap();
        assert!(matches!(p.insert(tx(&k, 8), 5), Err(MempoolError::Full { .. })));
        // A different transaction with a nonce already waiting.
        let mut other = tx(&k, 6).into_signed().tx;
        other.messages.push(other.messages[0].clone());
        let other = other.sign(&k).verify(&ChainId::new("c").unwrap(), HashAlg::Sha256).unwrap();
        let mut q = pool(10);
        q.insert(tx(&k, 6), 5).unwrap();
        assert_eq!(q.insert(other, 5), Err(MempoolError::NonceTaken(6)));
    }

    #[test]
    fn reap_takes_consecutive_nonces_interleaved_and_commit_evicts() {
        let a = SecretKey::from_bytes(Suite::Ed25519, &[1; 32]).unwrap();
        let b = SecretKey::from_bytes(Suite::Ed25519, &[2; 32]).unwrap();
        let mut p = pool(100);
        for n in [0, 1, 2, 4] {
            p.insert(tx(&a, n), 0).unwrap();
        }
        for n in [0, 1] {
            p.insert(tx(&b, n), 0).unwrap();
        }
        let got = p.reap(100, usize::MAX, |_| 0);
        let order: Vec<(bool, u64)> = got.iter().map(|t| (t.tx().signer == a.public_key(), t.tx().nonce)).collect();
        assert_eq!(order.len(), 5, "nonce 4 of a waits for 3");
        // Interleaved: a0/b0 first, then a1/b1, then a2.
        assert_eq!(order.iter().filter(|(_, n)| *n == 0).count(), 2);
        assert_eq!(order[4], (true, 2));
        assert_eq!(p.reap(3, usize::MAX, |_| 0).len(), 3);
        let hashes: Vec<Hash> = got.iter().take(2).map(|t| t.hash()).collect();
        p.update_after_commit(&hashes, |_| 1);
        assert_eq!(p.len(), 4);
        assert_eq!(p.reap(100, usize::MAX, |_| 1).len(), 3);
    }

    proptest! {
        #[test]
        fn bounds_hold_and_reap_is_executable(ops in proptest::collection::vec((0u8..4, 0u64..12), 1..80), max in 1usize..40) {
            let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i; 32]).unwrap()).collect();
            let mut p = pool(max);
            for (who, nonce) in ops {
                let _ = p.insert(tx(&keys[who as usize], nonce), 0);
                prop_assert!(p.len() <= max);
            }
            let reaped = p.reap(usize::MAX, usize::MAX, |_| 0);
            // Per signer: exactly 0, 1, 2, … with no gap.
            for k in &keys {
                let nonces: Vec<u64> = reaped.iter().filter(|t| t.tx().signer == k.public_key()).map(|t| t.tx().nonce).collect();
                let mut sorted = nonces.clone();
                sorted.sort();
                prop_assert_eq!(sorted, (0..nonces.len() as u64).collect::<Vec<_>>());
            }
        }
    }
}
