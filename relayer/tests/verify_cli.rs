//! `causeway-relayer verify` run as a process on the shared fixtures and on corrupted copies in a temporary
//! directory: exit 0 = verified, 1 = rejected (with the reason), 2 = malformed input (with a message).
//!
//! Fixtures are read from `../shared/fixtures`; when that folder is absent the tests print a SKIP line and pass,
//! unless `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use causeway_adapters::ethereum::parse::{header_to_rlp, headers_from_block_stream};
use causeway_adapters::ethereum::{BftExtra, BftFamily, Header};
use serde_json::{json, Value};

fn fixtures() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures"));
    if p.is_dir() {
        return Some(p);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "fixtures folder {} is missing and CI=true",
        p.display()
    );
    eprintln!(
        "SKIP: fixtures folder {} is absent; relayer verify tests did not run",
        p.display()
    );
    None
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn verify(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-relayer"))
        .arg("verify")
        .args(args)
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn expect(run: &Run, code: i32, needle: &str, what: &str) {
    let text = if code == 0 { &run.stdout } else { &run.stderr };
    assert_eq!(
        run.code, code,
        "{what}: stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert!(text.contains(needle), "{what}: {needle:?} not in {text:?}");
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write temp file");
    p.to_string_lossy().into_owned()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
}

// ---------------------------------------------------------------------------------------------------------------

/// /commit and /validators responses as a CometBFT node serves them, from a LightBlock JSON.
fn rpc_dir(dir: &Path, name: &str, block: &Value) -> String {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("dir");
    let height = &block["signed_header"]["header"]["height"];
    let commit = json!({"jsonrpc": "2.0", "id": -1, "result": {"signed_header": block["signed_header"], "canonical": true}});
    let vals = |set: &Value| {
        let n = set["validators"]
            .as_array()
            .expect("validators")
            .len()
            .to_string();
        json!({"jsonrpc": "2.0", "id": -1, "result": {"block_height": height, "validators": set["validators"], "count": n, "total": n}})
    };
    write(&d, "signed_header.json", commit.to_string());
    write(&d, "validators.json", vals(&block["validator_set"]).to_string());
    write(
        &d,
        "next_validators.json",
        vals(&block["next_validator_set"]).to_string(),
    );
    d.to_string_lossy().into_owned()
}

#[test]
fn tendermint_fixture_verdicts_and_corruptions() {
    let Some(fx) = fixtures() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(fx.join("tendermint/single_step"))
        .expect("single_step")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut checked = 0;
    for (f, path) in files.iter().enumerate() {
        let tc = read_json(path);
        let period = (tc["initial"]["trusting_period"]
            .as_str()
            .expect("period")
            .parse::<u64>()
            .expect("ns")
            / 1_000_000_000)
            .to_string();
        let mut trusted = write(
            tmp.path(),
            &format!("{f}-initial.json"),
            tc["initial"].to_string(),
        );
        for (i, input) in tc["input"].as_array().expect("inputs").iter().enumerate() {
            let untrusted = write(tmp.path(), &format!("{f}-{i}.json"), input["block"].to_string());
            let now = input["now"].as_str().expect("now");
            let args = |u: &str| -> Vec<String> {
                [
                    "--trusted",
                    &trusted,
                    "--untrusted",
                    u,
                    "--now",
                    now,
                    "--trusting-period",
                    &period,
                    "--clock-drift",
                    "0",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            };
            let run_with = |u: &str| {
                let a = args(u);
                let mut v: Vec<&str> = vec!["tendermint"];
                v.extend(a.iter().map(String::as_str));
                verify(&v)
            };
            let what = format!("{} input {i}", path.display());
            match input["verdict"].as_str().expect("verdict") {
                "SUCCESS" => {
                    expect(&run_with(&untrusted), 0, "verified: test-chain", &what);
                    // The same block as CometBFT RPC responses verifies too.
                    let dir = rpc_dir(tmp.path(), &format!("{f}-{i}-rpc"), &input["block"]);
                    expect(&run_with(&dir), 0, "verified", &format!("{what} (RPC directory)"));
                    // One changed byte in the header: rejected.
                    let mut bad = input["block"].clone();
                    let h = bad["signed_header"]["header"]["app_hash"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    bad["signed_header"]["header"]["app_hash"] = Value::String(format!("{h}00"));
                    let bad = write(tmp.path(), &format!("{f}-{i}-bad.json"), bad.to_string());
                    expect(&run_with(&bad), 1, "rejected: invalid header", &what);
                    // Truncated JSON: malformed.
                    let text = input["block"].to_string();
                    let cut = write(tmp.path(), &format!("{f}-{i}-cut.json"), &text[..text.len() / 2]);
                    expect(&run_with(&cut), 2, "malformed input", &what);
                    trusted = untrusted.clone();
                }
                "NOT_ENOUGH_TRUST" => expect(&run_with(&untrusted), 1, "not enough trust", &what),
                _ => expect(&run_with(&untrusted), 1, "rejected: invalid header", &what),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
    // Bad arguments are malformed input.
    let any = files[0].to_string_lossy().into_owned();
    let r = verify(&[
        "tendermint",
        "--trusted",
        &any,
        "--untrusted",
        &any,
        "--now",
        "yesterday",
    ]);
    expect(&r, 2, "--now", "bad time");
    let now = "1970-01-01T00:00:04Z";
    let r = verify(&[
        "tendermint",
        "--trusted",
        &any,
        "--untrusted",
        &any,
        "--now",
        now,
        "--trust-threshold",
        "1/4",
    ]);
    expect(&r, 2, "trust threshold", "threshold below 1/3");
    let r = verify(&[
        "tendermint",
        "--trusted",
        "/nonexistent",
        "--untrusted",
        &any,
        "--now",
        now,
    ]);
    expect(&r, 2, "/nonexistent", "missing file");
}

#[test]
fn ics23_fixtures_and_corruptions() {
    let Some(fx) = fixtures() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(fx.join("ics23"))
        .expect("ics23")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 18);
    for path in &files {
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let spec = name.split('_').next().expect("family").to_string();
        let v = read_json(path);
        let field = |k: &str| v[k].as_str().expect("field").to_string();
        let (root, key, value, proof) = (field("root"), field("key"), field("value"), field("proof"));
        let mut args = vec![
            "ics23", "--spec", &spec, "--root", &root, "--key", &key, "--proof", &proof,
        ];
        if !value.is_empty() {
            args.extend(["--value", value.as_str()]);
        }
        expect(&verify(&args), 0, "verified: key", &name);
        // A flipped byte in the root, then in the value (or, for absence proofs, asking for presence).
        let mut bad_root = hex::decode(&root).expect("hex");
        bad_root[0] ^= 1;
        let bad_root = hex::encode(bad_root);
        let mut args2 = args.clone();
        args2[4] = &bad_root;
        expect(&verify(&args2), 1, "rejected: ICS-23 proof rejected", &name);
        let flipped_value = if value.is_empty() {
            "00".to_string()
        } else {
            format!("{}ff", &value[2..])
        };
        let mut args3 = vec![
            "ics23", "--spec", &spec, "--root", &root, "--key", &key, "--proof", &proof,
        ];
        args3.extend(["--value", flipped_value.as_str()]);
        expect(&verify(&args3), 1, "rejected", &name);
    }
    expect(
        &verify(&["ics23", "--root", "zz", "--key", "00", "--proof", "00"]),
        2,
        "--root is not hex",
        "bad hex",
    );
    expect(
        &verify(&["ics23", "--root", "00", "--key", "00", "--proof", "ffff"]),
        2,
        "malformed ICS-23 proof",
        "garbage",
    );
}

#[test]
fn eth_proofs_and_corruptions() {
    let Some(fx) = fixtures() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let response = |name: &str| -> String {
        let io = std::fs::read_to_string(fx.join("ethereum/getproof").join(name)).expect("io");
        io.lines()
            .find_map(|l| l.strip_prefix("<< "))
            .expect("response line")
            .to_string()
    };
    let block = write(tmp.path(), "block.json", response("get-latest.io"));
    for name in [
        "get-account-proof-blockhash.io",
        "get-account-proof-latest.io",
        "get-account-proof-with-storage.io",
    ] {
        let proof = write(tmp.path(), name, response(name));
        expect(
            &verify(&["eth-proof", "--block", &block, "--proof", &proof]),
            0,
            "verified: account",
            name,
        );
    }
    let good: Value = serde_json::from_str(&response("get-account-proof-with-storage.io")).expect("json");
    let flip_hex = |s: &str, i: usize| {
        let mut b = hex::decode(s.trim_start_matches("0x")).expect("hex");
        b[i] ^= 1;
        format!("0x{}", hex::encode(b))
    };
    let mut node = good.clone();
    node["result"]["accountProof"][1] = Value::String(flip_hex(
        node["result"]["accountProof"][1].as_str().expect("n"),
        40,
    ));
    let mut value = good.clone();
    value["result"]["storageProof"][0]["value"] = Value::String("0x39".into());
    let mut storage_node = good.clone();
    let sn = storage_node["result"]["storageProof"][0]["proof"][0]
        .as_str()
        .expect("node")
        .to_string();
    storage_node["result"]["storageProof"][0]["proof"][0] = Value::String(flip_hex(&sn, 10));
    for (what, doc) in [
        ("account proof node", node),
        ("storage value", value),
        ("storage proof node", storage_node),
    ] {
        let proof = write(tmp.path(), "bad.json", doc.to_string());
        expect(
            &verify(&["eth-proof", "--block", &block, "--proof", &proof]),
            1,
            "rejected: proof rejected",
            what,
        );
    }
    // The block's own fields must hash to the hash it claims.
    let mut b: Value = serde_json::from_str(&response("get-latest.io")).expect("json");
    b["result"]["gasUsed"] = Value::String("0x1".into());
    let bad_block = write(tmp.path(), "bad-block.json", b.to_string());
    let proof = write(tmp.path(), "proof.json", response("get-account-proof-latest.io"));
    expect(
        &verify(&["eth-proof", "--block", &bad_block, "--proof", &proof]),
        1,
        "not to the hash",
        "block field",
    );
    let cut = write(
        tmp.path(),
        "cut.json",
        &response("get-account-proof-latest.io")[..100],
    );
    expect(
        &verify(&["eth-proof", "--block", &block, "--proof", &cut]),
        2,
        "malformed input",
        "truncated proof",
    );
}

/// Blocks 0..=100 of the recorded IBFT 1.0 chain, and its validators.
fn ibft(fx: &Path) -> (Vec<u8>, Vec<Header>, Vec<String>) {
    let raw = std::fs::read(fx.join("ethereum/ibft/ibft.blocks")).expect("blocks");
    let headers = headers_from_block_stream(&raw).expect("decodes");
    let validators = BftExtra::decode(BftFamily::Ibft1, &headers[0].extra_data)
        .expect("extra")
        .validators
        .iter()
        .map(|a| a.to_string())
        .collect();
    (raw, headers, validators)
}

#[test]
fn besu_headers_and_chains_and_corruptions() {
    let Some(fx) = fixtures() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (raw, headers, validators) = ibft(&fx);
    let vals = write(
        tmp.path(),
        "validators.json",
        serde_json::to_string(&validators).expect("json"),
    );
    for n in [1usize, 50, 100] {
        let rlp = hex::encode(header_to_rlp(&headers[n]));
        let h = write(tmp.path(), "header.hex", &rlp);
        let r = besu_header("ibft", &h, &vals);
        expect(&r, 0, &format!("ibft block {n}"), "recorded header");
        // A flipped byte in the state root (a header field) or in the last committed seal.
        let state_root = headers[n].state_root.to_string();
        let at = rlp.find(&state_root[2..]).expect("state root in RLP") + 10;
        let h = write(tmp.path(), "header.hex", flip_hex_digit(&rlp, at));
        let r = besu_header("ibft", &h, &vals);
        expect(&r, 1, "rejected", "state root byte");
        // The header ends with extraData, mixHash (33 bytes) and nonce (9): the last committed seal is just before.
        let seal_at = rlp.len() - 2 * (33 + 9 + 65) + 20;
        let h = write(tmp.path(), "header.hex", flip_hex_digit(&rlp, seal_at));
        let r = besu_header("ibft", &h, &vals);
        assert_eq!(r.code, 1, "seal byte of block {n}: {}", r.stderr);
    }
    // Too few validators given: the seals of the others are from strangers.
    let three = write(
        tmp.path(),
        "three.json",
        serde_json::to_string(&validators[..3]).expect("json"),
    );
    let h = write(tmp.path(), "header.hex", hex::encode(header_to_rlp(&headers[7])));
    expect(&besu_header("ibft", &h, &three), 1, "not a validator", "3 of 5");
    // The IBFT 2.0 vector's seals are placeholders, not signatures of its listed validators: rejected.
    let doc = read_json(&fx.join("ethereum/ibft/ibft2_header_hash.json"));
    let h = write(
        tmp.path(),
        "ibft2.json",
        doc["hash_of_qbft_block_header"]["qbft_block_header"].to_string(),
    );
    let listed = write(
        tmp.path(),
        "listed.json",
        r#"["0x0000000000000000000000000000000000000001","0x0000000000000000000000000000000000000002"]"#,
    );
    let r = besu_header("ibft2", &h, &listed);
    assert_eq!(r.code, 1, "{}", r.stderr);
    expect(&besu_header("qbft", &h, &listed), 2, "QBFT round", "wrong family");
    let empty = write(tmp.path(), "empty.json", "[]");
    expect(
        &besu_header("ibft", &h, &empty),
        2,
        "empty validator list",
        "no validators",
    );

    // The whole chain from its genesis.
    let genesis = fx
        .join("ethereum/ibft/ibft-genesis.json")
        .to_string_lossy()
        .into_owned();
    let blocks = fx
        .join("ethereum/ibft/ibft.blocks")
        .to_string_lossy()
        .into_owned();
    let r = verify(&[
        "besu-chain",
        "--consensus",
        "ibft",
        "--genesis",
        &genesis,
        "--blocks",
        &blocks,
    ]);
    expect(&r, 0, "ibft chain 1337 blocks 0..=100", "recorded chain");
    // A byte flipped inside block 60's last committed seal (its s value, before mixHash and nonce).
    let at = find_after(&raw, &header_to_rlp(&headers[60])) - (33 + 9) - 20;
    let mut bad = raw.clone();
    bad[at] ^= 1;
    let bad_blocks = write(tmp.path(), "bad.blocks", &bad);
    let r = verify(&[
        "besu-chain",
        "--consensus",
        "ibft",
        "--genesis",
        &genesis,
        "--blocks",
        &bad_blocks,
    ]);
    expect(&r, 1, "block 60", "flipped seal byte");
    // A genesis file that is not this chain's.
    let mut g = read_json(Path::new(&genesis));
    g["timestamp"] = Value::String("0x1".into());
    let other = write(tmp.path(), "genesis.json", g.to_string());
    let r = verify(&[
        "besu-chain",
        "--consensus",
        "ibft",
        "--genesis",
        &other,
        "--blocks",
        &blocks,
    ]);
    expect(&r, 1, "not the genesis file's", "other genesis");
    // A truncated block file is malformed.
    let cut = write(tmp.path(), "cut.blocks", &raw[..raw.len() - 7]);
    let r = verify(&[
        "besu-chain",
        "--consensus",
        "ibft",
        "--genesis",
        &genesis,
        "--blocks",
        &cut,
    ]);
    expect(&r, 2, "malformed input", "truncated blocks");
}

fn besu_header(consensus: &str, header: &str, validators: &str) -> Run {
    verify(&[
        "besu-header",
        "--consensus",
        consensus,
        "--header",
        header,
        "--validators",
        validators,
    ])
}

/// `hex` with the digit at `at` changed.
fn flip_hex_digit(hex: &str, at: usize) -> Vec<u8> {
    let mut bytes = hex.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    bytes
}

/// The offset just past `needle`'s first occurrence in `hay`.
fn find_after(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
        + needle.len()
}
