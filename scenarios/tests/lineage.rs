//! `causeway-scenarios scenario split|merge|public-spinoff --json` run end to end in seconds and end with one JSON
//! line that says every check passed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::process::Command;

fn run(scenario: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-scenarios"))
        .args(["scenario", scenario, "--json", "--users", "8", "--blocks", "3"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("one JSON line");
    serde_json::from_str(last).expect("the last line is JSON")
}

fn check_common(r: &serde_json::Value) {
    assert_eq!(r["verified"], true, "{r}");
    assert!(r["records"].as_u64().unwrap() > 20, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicated"], 0, "{r}");
    assert_eq!(r["proof_root_mismatch"], 0, "{r}");
    assert_eq!(r["supply_conserved"], true, "{r}");
    assert_eq!(r["tampered_rejected"], true, "{r}");
    let [refused, resubmitted] = [
        &r["refused_then_resubmitted"][0],
        &r["refused_then_resubmitted"][1],
    ];
    assert!(refused.as_u64().unwrap() > 0, "the load meets the freeze: {r}");
    assert_eq!(refused, resubmitted, "{r}");
}

#[test]
fn split_scenario_verifies() {
    let r = run("split");
    check_common(&r);
    assert_eq!(r["moved_namespaces"], 2);
}

#[test]
fn merge_scenario_verifies() {
    let r = run("merge");
    check_common(&r);
    assert_eq!(r["parents_halted"], true);
    assert_eq!(r["clashing_plan_refused"], true);
}

#[test]
fn public_spinoff_scenario_verifies() {
    let r = run("public-spinoff");
    check_common(&r);
    assert_eq!(r["profile_public"], true);
    assert_eq!(r["outsider_tx_committed"], true);
    assert_eq!(r["outsider_verified_record"], true);
}
