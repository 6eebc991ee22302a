//! `causeway-scenarios scenario dvp --json` runs one building block of the alliance alone and ends with one JSON
//! line saying it verified. (`transfer` and `record` run the same code paths as the devnet demo, which
//! `tests/devnet.rs` checks step by step; one alliance scenario here keeps the suite fast.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::process::Command;

#[test]
fn dvp_scenario_verifies_and_prints_one_json_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-scenarios"))
        .args(["scenario", "dvp", "--json"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout holds only the JSON line:\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(report["scenario"], "dvp", "{report}");
    assert_eq!(report["verified"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for step in [
        "DvP: both legs prepared (locked)",
        "DvP: hub decides COMMIT",
        "DvP: both legs settled",
        "bond conserved",
    ] {
        assert!(steps.contains(&step), "step {step} missing: {report}");
    }
    assert!(
        !steps.iter().any(|s| s.starts_with("transfer")),
        "only the DvP ran: {report}"
    );
    // The step log went to standard error.
    assert!(stderr.contains("VERIFIED DvP: hub decides COMMIT"), "{stderr}");
}
