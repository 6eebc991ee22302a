//! `causeway-chain tx`, `query` and `token` run as real processes against a gateway in front of an in-process
//! chain that produces a block every 100 ms.
#![allow(clippy::unwrap_used)] // a failing test panics by design

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use causeway_chain::gateway::testnode::TestNode;
use causeway_chain::gateway::{self, AuthSettings, GatewayConfig, TokenSecret};
use causeway_chain::genesis::GenesisOrg;
use causeway_chain::keys;
use causeway_chain::message::OrgId;
use causeway_chain::testkit::genesis;
use causeway_light_client::{HashAlg, SecretKey, Suite};

/// Run the binary; (success, stdout, stderr).
async fn run(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_causeway-chain"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn json(list: &[&str]) -> serde_json::Value {
    let (ok, out, err) = run(args(list)).await;
    assert!(ok, "{list:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{list:?} printed no JSON ({e}): {out}"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_submits_and_queries_through_a_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, keys) = genesis("cli", 1, Suite::Ed25519, HashAlg::Sha256);
    let user = SecretKey::from_bytes(Suite::Sm2, &[5; 32]).unwrap();
    let me = user.public_key().address();
    g.orgs.push(GenesisOrg {
        id: OrgId::new("acme").unwrap(),
        admin: me,
    });
    let key_file = dir.path().join("user.json");
    keys::save(&user, &key_file).unwrap();
    let node = TestNode::open(&dir.path().join("chain"), g, keys).unwrap();
    let producer = node.spawn_producer(Duration::from_millis(100));
    let server = gateway::serve(
        node.clone(),
        GatewayConfig {
            listen: "127.0.0.1:0".into(),
            ..GatewayConfig::default()
        },
    )
    .await
    .unwrap();
    let url = server.url();
    let common = ["--gateway", url.as_str(), "--key", path(&key_file)];

    let mut issue = vec!["tx", "issue", "--denom", "cash", "--amount", "1000", "--wait"];
    issue.extend(common);
    let done = json(&issue).await;
    assert_eq!(done["status"], "committed", "{done}");
    let hash = done["hash"].as_str().unwrap().to_string();
    let height = done["height"].as_u64().unwrap();

    let other = "ab".repeat(20);
    let mut transfer = vec![
        "tx",
        "transfer",
        "--to",
        other.as_str(),
        "--denom",
        "cash",
        "--amount",
        "30",
        "--wait",
    ];
    transfer.extend(common);
    assert_eq!(
        json(&transfer).await["result"]["failure"],
        serde_json::Value::Null
    );

    let mut record = vec![
        "tx",
        "put-record",
        "--namespace",
        "org/acme",
        "--record-key",
        "invoice-7",
        "--value",
        "paid",
        "--wait",
    ];
    record.extend(common);
    assert_eq!(json(&record).await["status"], "committed");

    // A transaction that commits but fails execution makes the command fail, with the reason.
    let mut overdraw = vec![
        "tx",
        "transfer",
        "--to",
        other.as_str(),
        "--denom",
        "cash",
        "--amount",
        "99999",
        "--wait",
    ];
    overdraw.extend(common);
    let (ok, _, err) = run(args(&overdraw)).await;
    assert!(!ok);
    assert!(err.contains("insufficient"), "{err}");

    let tx = json(&["query", "tx", &hash, "--gateway", &url]).await;
    assert_eq!(tx["height"].as_u64(), Some(height));
    let block = json(&["query", "block", &height.to_string(), "--gateway", &url]).await;
    assert!(block["tx_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == hash.as_str()));
    let account = json(&[
        "query",
        "account",
        &me.to_hex(),
        "--denoms",
        "cash",
        "--gateway",
        &url,
    ])
    .await;
    assert_eq!(account["nonce"], 4);
    assert_eq!(account["balances"]["cash"], "970");
    let state = json(&["query", "state", "org/acme", "invoice-7", "--gateway", &url]).await;
    assert!(state["value"].is_string(), "{state}");
    let status = json(&["query", "status", "--gateway", &url]).await;
    assert_eq!(status["chain_id"], "cli");
    let events = json(&[
        "query",
        "events",
        "--height",
        &height.to_string(),
        "--kind",
        "issue",
        "--gateway",
        &url,
    ])
    .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    let (ok, _, err) = run(args(&["query", "tx", &"00".repeat(32), "--gateway", &url])).await;
    assert!(!ok && err.contains("tx_not_found"), "{err}");

    // Tokens: a secret for a second gateway that requires them, a token minted by the CLI.
    let secret_file = dir.path().join("gateway.secret");
    let (ok, _, err) = run(args(&["token", "new-secret", "--out", path(&secret_file)])).await;
    assert!(ok, "{err}");
    let auth = AuthSettings {
        secret: TokenSecret::load(&secret_file).unwrap(),
        public_read: false,
    };
    let guarded = gateway::serve(
        node.clone(),
        GatewayConfig {
            listen: "127.0.0.1:0".into(),
            auth: Some(auth),
            ..GatewayConfig::default()
        },
    )
    .await
    .unwrap();
    let (ok, token, err) = run(args(&[
        "token",
        "mint",
        "--secret-file",
        path(&secret_file),
        "--scopes",
        "read",
        "--ttl",
        "1h",
        "--subject",
        "ops",
    ]))
    .await;
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let gurl = guarded.url();
    let (ok, _, err) = run(args(&["query", "status", "--gateway", &gurl])).await;
    assert!(!ok && err.contains("unauthorized"), "{err}");
    assert_eq!(
        json(&["query", "status", "--gateway", &gurl, "--token", &token]).await["chain_id"],
        "cli"
    );
    let mut submit = vec![
        "tx",
        "issue",
        "--denom",
        "cash",
        "--amount",
        "1",
        "--gateway",
        gurl.as_str(),
        "--key",
    ];
    submit.extend([path(&key_file), "--token", token.as_str()]);
    let (ok, _, err) = run(args(&submit)).await;
    assert!(!ok && err.contains("forbidden"), "{err}");

    producer.abort();
    guarded.stop().await.unwrap();
    server.stop().await.unwrap();
}
