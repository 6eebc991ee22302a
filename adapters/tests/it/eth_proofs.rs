//! EIP-1186 `eth_getProof` responses against the recorded block's state root, and Merkle-Patricia trie vectors.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, B256};
use alloy_trie::{HashBuilder, Nibbles};
use causeway_adapters::ethereum::parse::header_from_json;
use causeway_adapters::ethereum::proof::{verify_account_proof, verify_path};
use causeway_adapters::ethereum::{AccountProof, EthStateProof};
use serde_json::Value;

use super::fixtures;

fn block_state_root() -> Option<B256> {
    let io = fixtures::text("ethereum/getproof/get-latest.io")?;
    let (header, claimed) = header_from_json(&fixtures::io_response(&io)).expect("block parses");
    assert_eq!(
        Some(header.hash_slow()),
        claimed,
        "recomputed block hash matches the node's"
    );
    Some(header.state_root)
}

fn proofs() -> Option<Vec<(String, String)>> {
    let files = fixtures::files("ethereum/getproof", "io")?;
    Some(
        files
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("get-account-proof"))
            })
            .map(|p| {
                let io = std::fs::read_to_string(&p).expect("read");
                (
                    p.file_name().expect("name").to_string_lossy().to_string(),
                    fixtures::io_response(&io),
                )
            })
            .collect(),
    )
}

#[test]
fn every_get_proof_response_verifies_against_the_block() {
    let (Some(root), Some(proofs)) = (block_state_root(), proofs()) else {
        return;
    };
    assert_eq!(proofs.len(), 3);
    let mut slots = 0;
    for (name, json) in &proofs {
        let p = AccountProof::from_json(json).expect("parses");
        let v = verify_account_proof(root, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.exists, "{name}");
        slots += v.storage.len();
    }
    assert_eq!(slots, 1, "the with-storage case proves slot 0");
}

/// The response that proves a storage slot too.
fn with_storage(proofs: &[(String, String)]) -> &str {
    proofs
        .iter()
        .find(|(n, _)| n.contains("with-storage"))
        .map(|(_, j)| j.as_str())
        .expect("storage case")
}

#[test]
fn flipped_bytes_in_proof_nodes_values_or_roots_are_rejected() {
    let (Some(root), Some(proofs)) = (block_state_root(), proofs()) else {
        return;
    };
    let json = with_storage(&proofs);
    let good: Value = serde_json::from_str(json).expect("json");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v["result"]);
        AccountProof::from_json(&v.to_string()).map(|p| verify_account_proof(root, &p))
    };
    let flip = |v: &mut Value, i: usize| {
        let s = v.as_str().expect("hex").to_string();
        *v = Value::String(fixtures::flip_hex(&s, i));
    };
    type Mutation<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "account proof node",
            Box::new(|r: &mut Value| flip(&mut r["accountProof"][1], 40)),
        ),
        (
            "leaf node",
            Box::new(|r: &mut Value| flip(&mut r["accountProof"][2], 60)),
        ),
        (
            "balance",
            Box::new(|r: &mut Value| r["balance"] = Value::String("0x77".into())),
        ),
        (
            "nonce",
            Box::new(|r: &mut Value| r["nonce"] = Value::String("0x1".into())),
        ),
        ("code hash", Box::new(|r: &mut Value| flip(&mut r["codeHash"], 5))),
        (
            "storage hash",
            Box::new(|r: &mut Value| flip(&mut r["storageHash"], 31)),
        ),
        (
            "storage proof node",
            Box::new(|r: &mut Value| flip(&mut r["storageProof"][0]["proof"][1], 20)),
        ),
        (
            "storage value",
            Box::new(|r: &mut Value| r["storageProof"][0]["value"] = Value::String("0x39".into())),
        ),
        (
            "storage value zeroed",
            Box::new(|r: &mut Value| r["storageProof"][0]["value"] = Value::String("0x0".into())),
        ),
        (
            "storage key",
            Box::new(|r: &mut Value| r["storageProof"][0]["key"] = Value::String("0x1".into())),
        ),
        ("address", Box::new(|r: &mut Value| flip(&mut r["address"], 19))),
    ];
    for (what, f) in cases {
        if let Ok(Ok(_)) = mutate(&*f) {
            panic!("a changed {what} was accepted");
        }
    }
    let mut wrong_root = root;
    wrong_root.0[0] ^= 1;
    let p = AccountProof::from_json(json).expect("parses");
    assert!(verify_account_proof(wrong_root, &p).is_err());
}

#[test]
fn light_client_paths_prove_accounts_and_slots() {
    let (Some(root), Some(proofs)) = (block_state_root(), proofs()) else {
        return;
    };
    let json = with_storage(&proofs);
    let p = AccountProof::from_json(json).expect("parses");
    let account = EthStateProof::from_account_proof(&p, None).expect("proof");
    let rlp = alloy_rlp::encode(p.trie_account());
    verify_path(root, p.address.as_slice(), Some(&rlp), &account).expect("account path");
    let mut path = p.address.to_vec();
    path.extend_from_slice(p.storage_proof[0].key.as_slice());
    let slot = EthStateProof::from_account_proof(&p, Some(0)).expect("slot proof");
    verify_path(root, &path, Some(&[0x38]), &slot).expect("slot path");
    assert!(verify_path(root, &path, Some(&[0x39]), &slot).is_err());
    assert!(
        verify_path(root, &path, None, &slot).is_err(),
        "a stored slot is not absent"
    );
    let other = Address::repeat_byte(0x42);
    assert!(verify_path(root, other.as_slice(), Some(&rlp), &account).is_err());
}

/// Ethereum test convention: `0x…` strings are hex, others are raw bytes.
fn bytes_of(v: &str) -> Vec<u8> {
    match v.strip_prefix("0x") {
        Some(h) => hex::decode(h).expect("hex"),
        None => v.as_bytes().to_vec(),
    }
}

/// Root of the trie holding `entries` (fixed-length keys), built with alloy-trie's hash builder.
fn root_of(entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> B256 {
    let mut hb = HashBuilder::default();
    for (k, v) in entries {
        hb.add_leaf(Nibbles::unpack(k), v);
    }
    hb.root()
}

/// The final contents after applying the vector's inserts and deletes in order.
fn final_entries(input: &Value, secure: bool) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let pairs: Vec<(String, Option<String>)> = match input {
        Value::Array(a) => a
            .iter()
            .map(|p| {
                (
                    p[0].as_str().expect("key").to_string(),
                    p[1].as_str().map(str::to_string),
                )
            })
            .collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
            .collect(),
        _ => panic!("unexpected trie input"),
    };
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        let key = bytes_of(&k);
        let key = if secure { keccak256(&key).to_vec() } else { key };
        match v.map(|v| bytes_of(&v)).filter(|v| !v.is_empty()) {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
    }
    map
}

#[test]
fn trie_vectors_give_their_roots_and_a_flipped_value_changes_the_root() {
    let Some(files) = fixtures::files("ethereum/trie", "json") else {
        return;
    };
    let (mut checked, mut skipped) = (0, Vec::new());
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let secure = name.contains("secure");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        for (case, body) in doc.as_object().expect("cases") {
            let entries = final_entries(&body["in"], secure);
            let key_lens: std::collections::BTreeSet<usize> = entries.keys().map(Vec::len).collect();
            if key_lens.len() > 1 {
                // Keys of different lengths (one a prefix of another) need value-bearing branch nodes, which only
                // arbitrary-key tries have; Ethereum's state and storage tries (and alloy-trie) hash keys to 32 bytes.
                skipped.push(format!("{name}/{case}"));
                continue;
            }
            let want: B256 = body["root"].as_str().expect("root").parse().expect("root hash");
            assert_eq!(root_of(&entries), want, "{name}/{case}");
            if let Some((k, v)) = entries.iter().next() {
                let mut changed = entries.clone();
                let mut v = v.clone();
                v[0] ^= 1;
                changed.insert(k.clone(), v);
                assert_ne!(
                    root_of(&changed),
                    want,
                    "{name}/{case}: flipped value kept the root"
                );
            }
            checked += 1;
        }
    }
    eprintln!("trie vectors checked: {checked}; not applicable to fixed-length-key tries: {skipped:?}");
    assert!(checked >= 14, "only {checked} trie vectors checked");
}
