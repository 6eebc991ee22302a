//! `causeway-scenarios devnet --exit-after-demo` runs the whole alliance and its demo, prints every step as
//! verified and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::process::Command;

const STEPS: [&str; 12] = [
    "three chains running",
    "hub admits alpha and beta",
    "members create their hub clients",
    "issue bond on alpha, cash on beta",
    "transfer: 100 bond escrowed on alpha",
    "transfer: voucher credited on beta",
    "transfer: success ack back on alpha",
    "DvP: both legs prepared (locked)",
    "DvP: hub decides COMMIT",
    "DvP: both legs settled",
    "record of alpha proven on beta via the hub",
    "bond conserved",
];

#[test]
fn devnet_demo_verifies_every_step_and_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-scenarios"))
        .args(["devnet", "--exit-after-demo", "--data"])
        .arg(data.path().join("devnet"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for step in STEPS {
        assert!(
            stdout.contains(&format!("VERIFIED {step} (")),
            "step not verified: {step}\n{stdout}"
        );
    }
    assert!(stdout.contains("all 12 demo steps verified"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    // Every chain's gateway was printed with its URL, and beta runs SM2 keys with SM3.
    for chain in ["hub", "alpha", "beta"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("chain {chain}")) && l.contains("gateway http://127.0.0.1:")),
            "no gateway line for {chain}\n{stdout}"
        );
    }
    assert!(stdout.contains("(Sm2, Sm3)"), "{stdout}");
}

#[test]
fn devnet_refuses_a_non_empty_data_directory() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("something"), b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-scenarios"))
        .args(["devnet", "--exit-after-demo", "--data"])
        .arg(data.path())
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
}
