//! cosmos/ics23 test vectors: existence and non-existence proofs for IAVL, Tendermint and SMT trees.

use causeway_adapters::tendermint::ics23::{verify_membership, verify_non_membership};
use causeway_adapters::tendermint::{Ics23Proof, ProofConfig, SpecKind};
use serde_json::Value;

use super::fixtures;

struct Case {
    name: String,
    config: ProofConfig,
    key: Vec<u8>,
    value: Vec<u8>,
    root: Vec<u8>,
    proof: Vec<u8>,
}

fn field(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().expect("hex field")).expect("hex")
}

fn cases() -> Option<Vec<Case>> {
    let files = fixtures::files("ics23", "json")?;
    Some(
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().to_string();
                let family = name.split('_').next().expect("family");
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
                Case {
                    config: ProofConfig::single(SpecKind::by_name(family).expect("known spec")),
                    key: field(&v, "key"),
                    value: field(&v, "value"),
                    root: field(&v, "root"),
                    proof: field(&v, "proof"),
                    name,
                }
            })
            .collect(),
    )
}

fn check(c: &Case, proof: &[u8], root: &[u8], key: &[u8], value: &[u8]) -> bool {
    let Ok(p) = Ics23Proof::from_protobuf(proof) else {
        return false;
    };
    if value.is_empty() {
        verify_non_membership(&c.config, root, key, &p).is_ok()
    } else {
        verify_membership(&c.config, root, key, value, &p).is_ok()
    }
}

#[test]
fn every_vector_verifies_and_any_flipped_byte_is_rejected() {
    let Some(cases) = cases() else { return };
    assert_eq!(cases.len(), 18);
    for c in &cases {
        assert!(
            check(c, &c.proof, &c.root, &c.key, &c.value),
            "{}: valid proof rejected",
            c.name
        );
        let mut root = c.root.clone();
        root[0] ^= 1;
        assert!(
            !check(c, &c.proof, &root, &c.key, &c.value),
            "{}: wrong root accepted",
            c.name
        );
        let mut key = c.key.clone();
        let last = key.len() - 1;
        key[last] ^= 1;
        if !c.value.is_empty() {
            assert!(
                !check(c, &c.proof, &c.root, &key, &c.value),
                "{}: wrong key accepted",
                c.name
            );
            let mut value = c.value.clone();
            value[0] ^= 1;
            assert!(
                !check(c, &c.proof, &c.root, &c.key, &value),
                "{}: wrong value accepted",
                c.name
            );
        }
        // Flip one byte of a proof node: a byte of the last 32-byte hash in the proof (an inner-node sibling).
        let mut proof = c.proof.clone();
        let at = proof.len() - 5;
        proof[at] ^= 1;
        assert!(
            !check(c, &proof, &c.root, &c.key, &c.value),
            "{}: flipped proof node accepted",
            c.name
        );
        // Existence proofs do not prove absence, nor the reverse.
        if c.value.is_empty() {
            assert!(
                !check(c, &c.proof, &c.root, &c.key, b"anything"),
                "{}: absence proof proved presence",
                c.name
            );
        } else {
            assert!(
                !check(c, &c.proof, &c.root, &c.key, &[]),
                "{}: presence proof proved absence",
                c.name
            );
        }
    }
}
