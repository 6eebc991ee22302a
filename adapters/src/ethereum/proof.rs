//! EIP-1186 account and storage proofs (`eth_getProof`) checked against a verified header's state root with
//! `alloy-trie`'s Merkle-Patricia proof verification.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_trie::proof::verify_proof;
use alloy_trie::{Nibbles, TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::Canonical;
use serde::{Deserialize, Serialize};

use super::{EthError, Result};

/// One storage slot's proof from an `eth_getProof` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProof {
    /// The slot (left-padded to 32 bytes).
    pub key: B256,
    /// The value the node claims (zero = not stored).
    pub value: U256,
    /// Trie nodes from the storage root down.
    pub proof: Vec<Bytes>,
}

/// An `eth_getProof` result: an account, its proof, and proofs of some of its storage slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The account.
    pub address: Address,
    /// Claimed nonce.
    pub nonce: u64,
    /// Claimed balance.
    pub balance: U256,
    /// Claimed storage root.
    pub storage_hash: B256,
    /// Claimed code hash.
    pub code_hash: B256,
    /// Trie nodes from the state root down.
    pub account_proof: Vec<Bytes>,
    /// Storage slot proofs.
    pub storage_proof: Vec<StorageProof>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageJson {
    key: String,
    value: U256,
    proof: Vec<Bytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountJson {
    address: Address,
    nonce: U256,
    balance: U256,
    storage_hash: B256,
    code_hash: B256,
    account_proof: Vec<Bytes>,
    #[serde(default)]
    storage_proof: Vec<StorageJson>,
}

/// A storage key as nodes print it (`0x0`, `0x01`, or 32 bytes), left-padded to 32 bytes.
pub fn parse_storage_key(s: &str) -> Result<B256> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let digits = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    let bytes = hex::decode(&digits).map_err(|e| EthError::Malformed(format!("storage key {s:?}: {e}")))?;
    if bytes.len() > 32 {
        return Err(EthError::Malformed(format!(
            "storage key {s:?} is longer than 32 bytes"
        )));
    }
    let mut key = [0u8; 32];
    key[32 - bytes.len()..].copy_from_slice(&bytes);
    Ok(B256::from(key))
}

impl AccountProof {
    /// Parse an `eth_getProof` JSON-RPC response, or its `result` object.
    pub fn from_json(json: &str) -> Result<Self> {
        let v = super::parse::rpc_result(json, "eth_getProof response")?;
        let a: AccountJson = serde_json::from_value(v)
            .map_err(|e| EthError::Malformed(format!("eth_getProof result: {e}")))?;
        let nonce =
            u64::try_from(a.nonce).map_err(|_| EthError::Malformed("nonce wider than 64 bits".into()))?;
        let storage_proof = a
            .storage_proof
            .into_iter()
            .map(|s| {
                Ok(StorageProof {
                    key: parse_storage_key(&s.key)?,
                    value: s.value,
                    proof: s.proof,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AccountProof {
            address: a.address,
            nonce,
            balance: a.balance,
            storage_hash: a.storage_hash,
            code_hash: a.code_hash,
            account_proof: a.account_proof,
            storage_proof,
        })
    }

    /// The account as the state trie stores it.
    pub fn trie_account(&self) -> TrieAccount {
        TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_hash,
            code_hash: self.code_hash,
        }
    }

    /// True when the fields are those nodes report for an address with no account (some clients write zero
    /// hashes instead of the empty-trie and empty-code hashes).
    fn looks_absent(&self) -> bool {
        self.nonce == 0
            && self.balance.is_zero()
            && (self.storage_hash == EMPTY_ROOT_HASH || self.storage_hash.is_zero())
            && (self.code_hash == KECCAK_EMPTY || self.code_hash.is_zero())
    }
}

/// What an account proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccount {
    /// The account.
    pub address: Address,
    /// Whether it exists in the state.
    pub exists: bool,
    /// Slots proven (present with their value, or absent as zero).
    pub storage: Vec<(B256, U256)>,
}

fn check(root: B256, key: B256, expected: Option<Vec<u8>>, nodes: &[Bytes], what: &str) -> Result<()> {
    verify_proof(root, Nibbles::unpack(key), expected, nodes)
        .map_err(|e| EthError::ProofRejected(format!("{what}: {e}")))
}

/// Check an `eth_getProof` result against a trusted state root: the account (or its absence) and every storage
/// slot (a zero value must be proven absent). An account whose fields are all empty is first checked as present
/// (an empty account can exist in the trie), then as absent.
pub fn verify_account_proof(state_root: B256, proof: &AccountProof) -> Result<VerifiedAccount> {
    let key = keccak256(proof.address);
    let what = format!("account {}", proof.address);
    let present = check(
        state_root,
        key,
        Some(alloy_rlp::encode(proof.trie_account())),
        &proof.account_proof,
        &what,
    );
    let exists = match present {
        Ok(()) => true,
        Err(e) if !proof.looks_absent() => return Err(e),
        Err(_) => {
            check(state_root, key, None, &proof.account_proof, &what)?;
            false
        }
    };
    // Storage of an absent account is the empty trie, whatever hash the node printed.
    let storage_root = if exists {
        proof.storage_hash
    } else {
        EMPTY_ROOT_HASH
    };
    let mut storage = Vec::with_capacity(proof.storage_proof.len());
    for s in &proof.storage_proof {
        let what = format!("storage slot {} of {}", s.key, proof.address);
        let expected = (!s.value.is_zero()).then(|| alloy_rlp::encode(s.value));
        check(storage_root, keccak256(s.key), expected, &s.proof, &what)?;
        storage.push((s.key, s.value));
    }
    Ok(VerifiedAccount {
        address: proof.address,
        exists,
        storage,
    })
}

/// An account as the state trie stores it, in a form that serialises (JSON and Borsh).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    /// Nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
    /// Hash of the account's code.
    pub code_hash: B256,
}

impl AccountState {
    /// The RLP the state trie holds for this account.
    pub fn rlp(&self) -> Vec<u8> {
        alloy_rlp::encode(TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root,
            code_hash: self.code_hash,
        })
    }
}

/// Largest encoded state proof accepted (a proof is a few kilobytes per trie level).
pub const MAX_PROOF_LEN: usize = 256 * 1024;

/// A state proof as the Besu light client takes it: the account's trie nodes, the account itself when a storage
/// slot is proven, and the slot's trie nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EthStateProof {
    /// Trie nodes from the state root to the account.
    pub account_proof: Vec<Bytes>,
    /// The account, needed for storage paths (its storage root anchors the storage proof). `None` with a storage
    /// path proves the slot absent by proving the whole account absent.
    pub account: Option<AccountState>,
    /// Trie nodes from the storage root to the slot (storage paths only).
    pub storage_proof: Vec<Bytes>,
}

impl Canonical for EthStateProof {
    const KIND: &'static str = "EthStateProof";
    const MAX_LEN: usize = MAX_PROOF_LEN;
}

impl EthStateProof {
    /// The state proof of the account in an `eth_getProof` result, plus slot `index` of its storage proofs.
    pub fn from_account_proof(p: &AccountProof, slot: Option<usize>) -> Result<Self> {
        let storage_proof = match slot {
            Some(i) => p
                .storage_proof
                .get(i)
                .ok_or_else(|| EthError::Malformed(format!("no storage proof #{i}")))?
                .proof
                .clone(),
            None => Vec::new(),
        };
        let t = p.trie_account();
        let account = AccountState {
            nonce: t.nonce,
            balance: t.balance,
            storage_root: t.storage_root,
            code_hash: t.code_hash,
        };
        Ok(EthStateProof {
            account_proof: p.account_proof.clone(),
            account: Some(account),
            storage_proof,
        })
    }
}

/// Check a light-client path: 20 bytes = an account (value: its RLP encoding), 52 bytes = address ‖ slot (value:
/// the slot's big-endian value, at most 32 bytes, not zero). `value` `None` proves absence.
pub fn verify_path(root: B256, path: &[u8], value: Option<&[u8]>, proof: &EthStateProof) -> Result<()> {
    match path.len() {
        20 => {
            let key = keccak256(path);
            check(
                root,
                key,
                value.map(<[u8]>::to_vec),
                &proof.account_proof,
                "account",
            )
        }
        52 => {
            let account_key = keccak256(&path[..20]);
            let Some(account) = proof.account else {
                if value.is_some() {
                    return Err(EthError::Malformed(
                        "a stored slot needs the account it belongs to".into(),
                    ));
                }
                // No account: the slot is absent because the whole account is.
                return check(root, account_key, None, &proof.account_proof, "account");
            };
            check(
                root,
                account_key,
                Some(account.rlp()),
                &proof.account_proof,
                "account",
            )?;
            let expected = match value {
                Some(v) if v.len() > 32 => {
                    return Err(EthError::Malformed("storage value longer than 32 bytes".into()))
                }
                Some(v) => {
                    let n = U256::from_be_slice(v);
                    if n.is_zero() {
                        return Err(EthError::Malformed(
                            "a zero storage value is proven by non-membership".into(),
                        ));
                    }
                    Some(alloy_rlp::encode(n))
                }
                None => None,
            };
            check(
                account.storage_root,
                keccak256(&path[20..]),
                expected,
                &proof.storage_proof,
                "storage slot",
            )
        }
        n => Err(EthError::Malformed(format!(
            "path of {n} bytes: use an address (20) or address ‖ slot (52)"
        ))),
    }
}
