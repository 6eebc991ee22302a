//! The `causeway-hub` binary: the ledger's command line with the hub module, and the hub's governance commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_causeway-hub");

#[test]
fn init_writes_a_hub_chain_and_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hub");
    let init = Command::new(BIN)
        .args(["init", "--chain-id", "hub", "--validators", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    assert!(out.join("genesis.json").exists() && out.join("node0/config.toml").exists());

    // Admission needs the member's gateway: an unreachable one is an error, not a panic.
    let admit = Command::new(BIN)
        .args(["gov", "admit-member", "--member-gateway", "http://127.0.0.1:1", "--key"])
        .arg(out.join("node0/validator_key.json"))
        .output()
        .unwrap();
    assert_eq!(admit.status.code(), Some(1));
    let err = String::from_utf8_lossy(&admit.stderr);
    assert!(err.contains("error:") && err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A missing key file is named.
    let no_key = Command::new(BIN)
        .args(["gov", "admit-member", "--member-gateway", "http://127.0.0.1:1", "--key", "/nonexistent.json"])
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(1));

    // The node's own subcommands are all there.
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for sub in ["init", "start", "keys", "tx", "query", "token", "gov"] {
        assert!(help.contains(sub), "{sub} missing from\n{help}");
    }
}
