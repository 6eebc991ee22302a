//! Four `causeway-chain` processes on loopback: `init` writes the chain, `start` runs each validator with its
//! gateway. Transactions submitted to every gateway are committed exactly once; one validator is killed (SIGKILL,
//! no clean shutdown), the other three go on, and the restarted one catches up from its data directory.
//!
//! Every wait polls a condition with a deadline; nothing asserts after a fixed sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use causeway_chain::gateway::client::GatewayClient;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::testkit::ChildProcess;
use causeway_chain::tx::Transaction;
use causeway_light_client::{ChainId, Hash, SecretKey, Suite};

const BIN: &str = env!("CARGO_BIN_EXE_causeway-chain");
const WAIT: Duration = Duration::from_secs(90);

/// A base port with `n` free ports above it, for p2p and for gateways.
fn free_base(n: u16) -> u16 {
    causeway_chain::testkit::free_port_base(n).expect("no free port range")
}

/// A node process started from its config file.
fn node(config: &Path, log: &Path) -> ChildProcess {
    let config = config.display().to_string();
    ChildProcess::start(BIN, &["start", "--config", &config], log)
}

/// [`testkit::wait_until`] with this file's deadline and polling period.
async fn wait_until<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    causeway_chain::testkit::wait_until(what, WAIT, Duration::from_millis(200), cond).await
}

async fn heights(clients: &[GatewayClient]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for c in clients {
        out.push(c.status().await.ok().map(|s| s.height));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_commit_once_survive_a_kill_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let p2p = free_base(4);
    let gw = free_base(4);
    let status = Command::new(BIN)
        .args(["init", "--chain-id", "procs", "--validators", "4", "--out"])
        .arg(&net)
        .args(["--p2p-port", &p2p.to_string(), "--gateway-port", &gw.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "init failed");

    let mut procs: Vec<ChildProcess> = (0..4)
        .map(|i| node(&net.join(format!("node{i}/config.toml")), &dir.path().join(format!("node{i}.log"))))
        .collect();
    let clients: Vec<GatewayClient> =
        (0..4).map(|i| GatewayClient::new(&format!("http://127.0.0.1:{}", gw + i)).unwrap()).collect();
    let logs = || {
        (0..4)
            .map(|i| std::fs::read_to_string(dir.path().join(format!("node{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let started = tokio::time::timeout(WAIT, async {
        loop {
            if heights(&clients).await.iter().all(|h| h.is_some_and(|h| h >= 2)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(started.is_ok(), "validators did not reach height 2; logs:\n{}", logs());

    // Transactions through every gateway, each submitted twice (to two gateways): committed exactly once.
    let chain_id = ChainId::new("procs").unwrap();
    let user = SecretKey::from_bytes(Suite::Ed25519, &[5; 32]).unwrap();
    let to = SecretKey::from_bytes(Suite::Ed25519, &[6; 32]).unwrap().public_key().address();
    let cash = Denom::new("cash").unwrap();
    let sign = |nonce: u64, m: Message| {
        Transaction { chain_id: chain_id.clone(), signer: user.public_key(), nonce, messages: vec![m] }.sign(&user)
    };
    let issue = sign(0, Message::Issue { to: user.public_key().address(), denom: cash.clone(), amount: Amount(1_000) });
    clients[0].submit_and_wait(&issue, Duration::from_secs(30)).await.expect("issue committed");
    let mut hashes: Vec<Hash> = Vec::new();
    for nonce in 1..=24u64 {
        let tx = sign(nonce, Message::Transfer { to, denom: cash.clone(), amount: Amount(2) });
        let first = (nonce % 4) as usize;
        hashes.push(clients[first].submit(&tx).await.expect("accepted").hash);
        let _ = clients[(first + 2) % 4].submit(&tx).await; // a duplicate: refused or deduplicated, never re-run
    }
    wait_until("every transfer committed", || {
        let c = &clients[1];
        let hashes = hashes.clone();
        async move {
            for h in &hashes {
                if c.tx(h).await.is_err() {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let account = clients[3].account(&to, &["cash"]).await.unwrap();
    assert_eq!(account.balances.get("cash"), Some(&Amount(48)), "24 transfers of 2, each exactly once");

    // Kill validator 2 without warning; the other three go on.
    procs[2].kill();
    let before: u64 = heights(&clients).await.into_iter().flatten().max().unwrap();
    wait_until("three validators progress", || {
        let clients = &clients;
        async move {
            let h = heights(clients).await;
            [0usize, 1, 3].iter().all(|&i| h[i].is_some_and(|h| h >= before + 3))
        }
    })
    .await;

    // Restart it: it catches up and follows.
    procs[2].spawn();
    let target = heights(&clients).await.into_iter().flatten().max().unwrap() + 2;
    let caught_up = tokio::time::timeout(WAIT, async {
        loop {
            if heights(&clients).await.iter().all(|h| h.is_some_and(|h| h >= target)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(caught_up.is_ok(), "restarted validator did not catch up; logs:\n{}", logs());

    // Same block at a common height everywhere, and the restarted node sees every transfer.
    let h = target;
    let mut ids = Vec::new();
    for c in &clients {
        ids.push(c.block(h).await.unwrap().block_id);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "validators disagree at height {h}");
    let seen = clients[2].account(&to, &["cash"]).await.unwrap();
    assert_eq!(seen.balances.get("cash"), Some(&Amount(48)));
    for p in &mut procs {
        p.kill();
    }
}
