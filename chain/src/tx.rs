//! Signed transaction envelopes: what a client submits, what a block carries, and how signatures are checked once.
//!
//! A [`SignedTx`] is `{ chain id, signer key, nonce, messages }` plus the signer's signature over the canonical
//! encoding of that body, domain-separated as a transaction of that chain ([`SignKind::Tx`]). The signer's key
//! carries its suite (ed25519, SM2, secp256k1), so any suite may sign on any chain.
//!
//! Signatures are verified exactly once per node: a [`VerifiedTx`] can only be made by verifying (singly or in a
//! batch), and execution takes only `VerifiedTx`, so execution never re-verifies what the mempool or block
//! validation already verified.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::crypto::{verify_batch, BatchItem};
use causeway_light_client::{
    Address, Canonical, ChainId, CodecError, CryptoError, Hash, HashAlg, PublicKey, SecretKey, SignKind, Signature,
};
use serde::{Deserialize, Serialize};

use crate::message::Message;

/// Largest encoded signed transaction (a relayer's batch of header updates and proofs can be large).
pub const MAX_TX_BYTES: usize = 1024 * 1024;
/// Most messages in one transaction.
pub const MAX_MESSAGES: usize = 512;

/// Why a transaction was refused before execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Codec(#[from] CodecError),
    /// The transaction names another chain.
    #[error("transaction for chain {got}, this is {expected}")]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// The signer's key is not usable (invalid point or weak key).
    #[error("signer key: {0}")]
    Key(CryptoError),
    /// The signature does not verify, or its suite differs from the key's.
    #[error("bad signature: {0}")]
    Signature(CryptoError),
}

/// What the signer asks for: messages executed in order, all or none.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The chain this transaction is for (also bound into the signature).
    pub chain_id: ChainId,
    /// The signer's public key; its address is the account that pays and acts.
    pub signer: PublicKey,
    /// The signer account's next nonce (starts at 0, one per executed transaction).
    pub nonce: u64,
    /// The messages (1 to [`MAX_MESSAGES`]).
    pub messages: Vec<Message>,
}

impl Transaction {
    /// The signer's address.
    pub fn sender(&self) -> Address {
        self.signer.address()
    }

    /// The bytes the signer signs (before domain separation): the canonical body.
    pub fn sign_message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = BorshSerialize::serialize(self, &mut out);
        out
    }

    /// Sign with `key` (which must be the key named in `signer`).
    pub fn sign(self, key: &SecretKey) -> SignedTx {
        let signature = key.sign(self.chain_id.as_str(), SignKind::Tx, &self.sign_message());
        SignedTx { tx: self, signature }
    }
}

/// A transaction with its signature: the unit clients submit and blocks carry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTx {
    /// The body.
    pub tx: Transaction,
    /// The signer's signature over the body.
    pub signature: Signature,
}

impl Canonical for SignedTx {
    const KIND: &'static str = "transaction";
    const MAX_LEN: usize = MAX_TX_BYTES;
    fn validate(&self) -> Result<(), CodecError> {
        let n = self.tx.messages.len();
        if n == 0 || n > MAX_MESSAGES {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: format!("{n} messages (allowed: 1 to {MAX_MESSAGES})"),
            });
        }
        for m in &self.tx.messages {
            m.validate().map_err(|reason| CodecError::Invalid { kind: Self::KIND, reason })?;
        }
        Ok(())
    }
}

impl SignedTx {
    /// The transaction hash (of the canonical encoding), as carried in the block's tx root.
    pub fn hash(&self, alg: HashAlg) -> Hash {
        alg.hash(&self.encode())
    }

    fn check_chain(&self, chain_id: &ChainId) -> Result<(), TxError> {
        if &self.tx.chain_id != chain_id {
            return Err(TxError::WrongChain { expected: chain_id.clone(), got: self.tx.chain_id.clone() });
        }
        self.tx.signer.validate().map_err(TxError::Key)
    }

    /// Check chain id, key and signature, singly.
    pub fn verify(self, chain_id: &ChainId, alg: HashAlg) -> Result<VerifiedTx, TxError> {
        self.check_chain(chain_id)?;
        self.tx
            .signer
            .verify(chain_id.as_str(), SignKind::Tx, &self.tx.sign_message(), &self.signature)
            .map_err(TxError::Signature)?;
        Ok(VerifiedTx::new_unchecked(self, alg))
    }
}

/// A transaction whose signature was verified on this node, with its hash cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    signed: SignedTx,
    hash: Hash,
    encoded: std::sync::Arc<[u8]>,
}

impl VerifiedTx {
    fn new_unchecked(signed: SignedTx, alg: HashAlg) -> Self {
        let encoded = signed.encode();
        VerifiedTx { hash: alg.hash(&encoded), encoded: encoded.into(), signed }
    }

    /// Re-wrap a transaction taken from this node's own committed blocks (verified before it was committed).
    /// Never call this on bytes from the network or a client.
    pub fn from_committed(signed: SignedTx, alg: HashAlg) -> Self {
        Self::new_unchecked(signed, alg)
    }

    /// The transaction.
    pub fn signed(&self) -> &SignedTx {
        &self.signed
    }

    /// The body.
    pub fn tx(&self) -> &Transaction {
        &self.signed.tx
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// Length of its canonical encoding.
    pub fn encoded_len(&self) -> usize {
        self.encoded.len()
    }

    /// Its canonical encoding (what blocks carry).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Unwrap.
    pub fn into_signed(self) -> SignedTx {
        self.signed
    }
}

/// Verify many transactions at once (ed25519 signatures in one batch; other suites one by one). The result at
/// index `i` is the verdict on `txs[i]`: one bad transaction never condemns the others.
pub fn verify_many(txs: Vec<SignedTx>, chain_id: &ChainId, alg: HashAlg) -> Vec<Result<VerifiedTx, TxError>> {
    let mut verdicts: Vec<Option<TxError>> = txs.iter().map(|t| t.check_chain(chain_id).err()).collect();
    let messages: Vec<Vec<u8>> = txs
        .iter()
        .map(|t| causeway_light_client::crypto::sign_bytes(chain_id.as_str(), SignKind::Tx, &t.tx.sign_message()))
        .collect();
    let candidates: Vec<usize> = (0..txs.len()).filter(|&i| verdicts[i].is_none()).collect();
    let items: Vec<BatchItem<'_>> =
        candidates.iter().map(|&i| (&txs[i].tx.signer, messages[i].as_slice(), &txs[i].signature)).collect();
    if verify_batch(&items).is_err() {
        // At least one is bad: find every culprit individually (rare path).
        for &i in &candidates {
            if let Err(e) = txs[i].tx.signer.verify_raw(&messages[i], &txs[i].signature) {
                verdicts[i] = Some(TxError::Signature(e));
            }
        }
    }
    txs.into_iter()
        .zip(verdicts)
        .map(|(t, v)| match v {
            None => Ok(VerifiedTx::new_unchecked(t, alg)),
            Some(e) => Err(e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Amount, Denom};
    use causeway_light_client::Suite;
    use proptest::prelude::*;

    fn chain() -> ChainId {
        ChainId::new("alpha").unwrap()
    }

    fn transfer(key: &SecretKey, nonce: u64, amount: u128) -> SignedTx {
        Transaction {
            chain_id: chain(),
            signer: key.public_key(),
            nonce,
            messages: vec![Message::Transfer {
                to: Address([9; 20]),
                denom: Denom::new("cash").unwrap(),
                amount: Amount(amount),
            }],
        }
        .sign(key)
    }

    #[test]
    fn every_suite_signs_and_verifies() {
        for suite in Suite::ALL {
            let key = SecretKey::generate(suite);
            let tx = transfer(&key, 0, 5);
            let bytes = tx.encode();
            let decoded = SignedTx::decode(&bytes).unwrap();
            assert!(decoded.clone().verify(&chain(), HashAlg::Sha256).is_ok(), "{suite:?}");
            // Another chain id: refused before any signature work, and the signature would not verify there.
            let other = ChainId::new("beta").unwrap();
            assert!(matches!(decoded.clone().verify(&other, HashAlg::Sha256), Err(TxError::WrongChain { .. })));
            let mut moved = decoded.clone();
            moved.tx.chain_id = other.clone();
            assert!(matches!(moved.verify(&other, HashAlg::Sha256), Err(TxError::Signature(_))));
        }
    }

    #[test]
    fn batch_finds_exactly_the_bad_ones() {
        let keys: Vec<SecretKey> = (0..6).map(|_| SecretKey::generate(Suite::Ed25519)).collect();
        let mut txs: Vec<SignedTx> = keys.iter().enumerate().map(|(i, k)| transfer(k, 0, i as u128 + 1)).collect();
        txs.push(transfer(&SecretKey::generate(Suite::Sm2), 0, 7));
        // Tamper with one body after signing, and give another a signature of the wrong suite.
        txs[2].tx.nonce = 1;
        txs[4].signature = Signature::Sm2(*txs[4].signature.as_bytes());
        let verdicts = verify_many(txs, &chain(), HashAlg::Sha256);
        let bad: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| v.is_err()).map(|(i, _)| i).collect();
        assert_eq!(bad, vec![2, 4]);
    }

    #[test]
    fn limits_are_enforced_on_decode() {
        let key = SecretKey::generate(Suite::Ed25519);
        let mut tx = transfer(&key, 0, 1);
        tx.tx.messages.clear();
        assert!(matches!(SignedTx::decode(&tx.encode()), Err(CodecError::Invalid { .. })));
        let big = vec![0u8; MAX_TX_BYTES + 1];
        assert!(matches!(SignedTx::decode(&big), Err(CodecError::TooLong { .. })));
        let mut zero = transfer(&key, 0, 0);
        zero.tx.nonce = 3;
        assert!(matches!(SignedTx::decode(&zero.encode()), Err(CodecError::Invalid { .. })));
    }

    proptest! {
        #[test]
        fn signed_transactions_round_trip(nonce in any::<u64>(), amount in 1u128.., seed in any::<[u8; 32]>()) {
            let key = SecretKey::from_bytes(Suite::Ed25519, &seed).unwrap();
            let tx = transfer(&key, nonce, amount);
            prop_assert_eq!(SignedTx::decode(&tx.encode()).unwrap(), tx.clone());
            let json = serde_json::to_string(&tx).unwrap();
            prop_assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), tx);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedTx::decode(&bytes);
        }
    }
}
