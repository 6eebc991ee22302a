//! The relayer daemon end to end, with real processes: a hub (`causeway-hub`) and two members (`causeway-chain`),
//! one validator each, set up by governance through their gateways; then `causeway-relayer start` processes.
//!
//! Faults, in one run: the relayer is killed (SIGKILL) while packets are in flight and restarted; a second relayer
//! runs on the same paths; the destination chain's node (and gateway) is killed for longer than a packet's timeout
//! and restarted. Afterwards every packet is delivered exactly once or refunded exactly once, per-asset supply is
//! conserved, and `causeway-relayer status` reports nothing in flight.
//!
//! Every wait polls a condition with a deadline; nothing asserts after a fixed sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use causeway_chain::gateway::client::{EventQuery, GatewayClient};
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::tx::Transaction;
use causeway_chain::xchain::types::DenomTrace;
use causeway_chain::xchain::EndpointMsg;
use causeway_light_client::{Address, ChainId, SecretKey, Suite, Time};

const RELAYER: &str = env!("CARGO_BIN_EXE_causeway-relayer");
const WAIT: Duration = Duration::from_secs(120);

/// A binary of another workspace package, built beside this test by `cargo test --workspace`.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(bin.exists(), "{} not found: build the workspace first (`cargo build --workspace`)", bin.display());
    bin
}

struct Proc {
    child: Option<Child>,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
}

impl Proc {
    fn start(program: PathBuf, args: &[&str], log: PathBuf) -> Proc {
        let mut p = Proc { child: None, program, args: args.iter().map(|s| s.to_string()).collect(), log };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start process");
        self.child = Some(child);
    }

    /// SIGKILL: no clean shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One single-validator chain run as a process.
struct ChainProc {
    id: ChainId,
    node: Proc,
    gateway: GatewayClient,
    url: String,
    key_file: PathBuf,
}

/// Run a command line to success.
fn cli(bin: &str, args: &[&str], last: &Path) {
    let out = Command::new(sibling(bin)).args(args).arg(last).output().unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_chain(bin: &str, id: &str, dir: &Path) -> ChainProc {
    let p2p = causeway_chain::testkit::free_port_base(1).unwrap();
    let gw = causeway_chain::testkit::free_port_base(1).unwrap();
    let net = dir.join(id);
    let status = Command::new(sibling(bin))
        .args(["init", "--chain-id", id, "--validators", "1", "--out"])
        .arg(&net)
        .args(["--p2p-port", &p2p.to_string(), "--gateway-port", &gw.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{bin} init {id} failed");
    let config = net.join("node0/config.toml");
    let node = Proc::start(
        sibling(bin),
        &["start", "--config", config.to_str().unwrap()],
        dir.join(format!("{id}.log")),
    );
    let url = format!("http://127.0.0.1:{gw}");
    ChainProc {
        id: ChainId::new(id).unwrap(),
        node,
        gateway: GatewayClient::new(&url).unwrap(),
        url,
        key_file: net.join("node0/validator_key.json"),
    }
}

async fn wait_until<F, Fut>(what: &str, logs: impl Fn() -> String, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sign `messages` with `key`, submit through `c`, wait for the commit; panics unless executed successfully.
async fn submit(c: &GatewayClient, chain: &ChainId, key: &SecretKey, messages: Vec<Message>) -> u64 {
    let nonce = c.account(&key.public_key().address(), &[]).await.unwrap().nonce;
    let tx = Transaction { chain_id: chain.clone(), signer: key.public_key(), nonce, messages }.sign(key);
    let v = c.submit_and_wait(&tx, Duration::from_secs(30)).await.unwrap();
    let r = v.result.unwrap();
    assert!(r.is_ok(), "transaction refused on {chain}: {:?}", r.failure);
    v.height.unwrap()
}

async fn balance(c: &GatewayClient, who: &Address, denom: &Denom) -> u128 {
    let a = c.account(who, &[denom.as_str()]).await.unwrap();
    a.balances.get(denom.as_str()).map(|x| x.0).unwrap_or(0)
}

/// Events of `kind` committed on `c` so far.
async fn count_events(c: &GatewayClient, kind: &str) -> usize {
    count_events_where(c, kind, |_| true).await
}

/// Events of `kind` committed on `c` so far that satisfy `keep`.
async fn count_events_where(c: &GatewayClient, kind: &str, keep: impl Fn(&causeway_chain::exec::Event) -> bool) -> usize {
    let top = c.status().await.unwrap().height;
    let mut n = 0;
    let mut from = 1;
    while from <= top {
        let to = top.min(from + 99);
        let q = EventQuery { from: Some(from), to: Some(to), kind: Some(kind.into()), ..EventQuery::default() };
        n += c.events(&q).await.unwrap().events.iter().filter(|e| keep(&e.event)).count();
        from = to + 1;
    }
    n
}

fn now() -> Time {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Time(d.as_nanos() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayers_killed_doubled_and_a_dead_gateway_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_chain("causeway-hub", "hub", dir.path());
    let mut alpha = start_chain("causeway-chain", "alpha", dir.path());
    let mut beta = start_chain("causeway-chain", "beta", dir.path());
    let log_files: Vec<PathBuf> = [&hub, &alpha, &beta].iter().map(|c| c.node.log.clone()).collect();
    let chain_logs = || {
        log_files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect::<Vec<_>>().join("\n----\n")
    };
    for c in [&hub, &alpha, &beta] {
        wait_until(&format!("{} at height 2", c.id), chain_logs, || async {
            c.gateway.status().await.is_ok_and(|s| s.height >= 2)
        })
        .await;
    }

    // Governance through the command lines: the hub admits both members; each member creates its client of the
    // hub (one validator each, so the proposer's own vote passes the proposal).
    for m in [&alpha, &beta] {
        cli(
            "causeway-hub",
            &["gov", "admit-member", "--gateway", &hub.url, "--member-gateway", &m.url, "--wait", "--key"],
            &hub.key_file,
        );
        cli(
            "causeway-chain",
            &["tx", "create-hub-client", "--gateway", &m.url, "--hub-gateway", &hub.url, "--wait", "--key"],
            &m.key_file,
        );
    }

    // An asset on alpha.
    let alice = SecretKey::from_bytes(Suite::Ed25519, &[11; 32]).unwrap();
    let bob = SecretKey::from_bytes(Suite::Ed25519, &[12; 32]).unwrap().public_key().address();
    let gold = Denom::new("gold").unwrap();
    let minted = 1_000_000u128;
    let issue = Message::Issue { denom: gold.clone(), amount: Amount(minted), to: alice.public_key().address() };
    submit(&alpha.gateway, &alpha.id, &alice, vec![issue]).await;
    let voucher = DenomTrace { home: alpha.id.clone(), base: gold.clone() }.voucher_denom();

    let send = |n: usize, amount: u128, timeout_time: Time| -> Vec<Message> {
        (0..n)
            .map(|_| {
                EndpointMsg::SendTransfer {
                    destination: ChainId::new("beta").unwrap(),
                    denom: Denom::new("gold").unwrap(),
                    amount: Amount(amount),
                    receiver: bob,
                    timeout_height: 0,
                    timeout_time,
                }
                .into_message()
            })
            .collect()
    };
    let far = || Time(now().0 + 600 * 1_000_000_000);

    // The relayer's configuration.
    let key = dir.path().join("relayer_key.json");
    let out = Command::new(RELAYER).args(["keys", "generate", "--out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "keys generate: {}", String::from_utf8_lossy(&out.stderr));
    let metrics_port = causeway_chain::testkit::free_port_base(1).unwrap();
    let config = dir.path().join("relayer.toml");
    std::fs::write(
        &config,
        format!(
            "key = \"relayer_key.json\"\nlisten = \"127.0.0.1:{metrics_port}\"\npoll_ms = 300\n\
             [batch]\nmax_messages = 16\n\
             [retry]\nmin_delay_ms = 50\nmax_delay_ms = 1000\nmax_retries = 4\n\
             [hub]\nid = \"hub\"\ngateway = \"{}\"\n\
             [[members]]\nid = \"alpha\"\ngateway = \"{}\"\n\
             [[members]]\nid = \"beta\"\ngateway = \"{}\"\n",
            hub.url, alpha.url, beta.url
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let mut relayer_a = Proc::start(RELAYER.into(), &["start", "--config", &cfg], dir.path().join("relayer_a.log"));

    // 1. Relayer A is killed mid-flight and restarted.
    submit(&alpha.gateway, &alpha.id, &alice, send(20, 10, far())).await;
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), chain_logs());
    wait_until("the first packets delivered", all_logs, || async {
        balance(&beta.gateway, &bob, &voucher).await > 0
    })
    .await;
    relayer_a.kill();
    submit(&alpha.gateway, &alpha.id, &alice, send(20, 10, far())).await;
    relayer_a.spawn();

    // 2. A second relayer on the same paths.
    let _relayer_b = Proc::start(RELAYER.into(), &["start", "--config", &cfg], dir.path().join("relayer_b.log"));
    submit(&alpha.gateway, &alpha.id, &alice, send(20, 10, far())).await;

    // 3. Beta's node and gateway die for longer than a packet's timeout; that packet is refunded.
    wait_until("40 packets delivered", all_logs, || async {
        balance(&beta.gateway, &bob, &voucher).await >= 400
    })
    .await;
    beta.node.kill();
        let short_deadline = Time(now().0 + 2_000_000_000);
    submit(&alpha.gateway, &alpha.id, &alice, send(1, 7, short_deadline)).await;
    submit(&alpha.gateway, &alpha.id, &alice, send(20, 10, far())).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    beta.node.spawn();

    // Everything settles: 80 delivered, 1 refunded, nothing left in flight.
    let delivered = 80u128;
    wait_until("every packet resolved on alpha", all_logs, || async {
        count_events(&alpha.gateway, "xchain.resolved").await == 81
    })
    .await;
    assert_eq!(balance(&beta.gateway, &bob, &voucher).await, delivered * 10, "bob's vouchers on beta");
    assert_eq!(
        balance(&alpha.gateway, &alice.public_key().address(), &gold).await,
        minted - delivered * 10,
        "alice keeps what was refunded"
    );
    assert_eq!(count_events(&beta.gateway, "xchain.recv").await, 80, "each packet received once on beta");
    assert_eq!(count_events(&hub.gateway, "hub.forward").await, 81, "each packet forwarded once by the hub");
    assert_eq!(count_events(&hub.gateway, "hub.outcome").await, 81, "one outcome per packet on the hub");
    let timed_out =
        count_events_where(&alpha.gateway, "xchain.resolved", |e| e.attribute("outcome") == Some("timeout")).await;
    assert_eq!(timed_out, 1, "the packet sent while beta was down timed out, once");

    // The relayer's own view: nothing due, metrics and health served.
    let out = Command::new(RELAYER).args(["status", "--config", &cfg]).output().unwrap();
    assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["packets_in_flight"], 0, "{status}");
    assert_eq!(status["due"], 0, "{status}");
    let http = reqwest_get(metrics_port, "/metrics").await;
    assert!(http.contains("causeway_relayer_submitted_total"), "{http}");
    let health = reqwest_get(metrics_port, "/health").await;
    assert!(health.contains("\"healthy\":true"), "{health}");
    println!(
        "relayer e2e: sent 81, delivered {delivered}, refunded 1, lost 0, duplicated 0 \
         (relayer killed and restarted, two relayers, beta down 4 s)"
    );
    alpha.node.kill();
}

fn relayer_logs(dir: &Path) -> String {
    ["relayer_a.log", "relayer_b.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// A plain HTTP GET on 127.0.0.1 (the relayer's metrics listener).
async fn reqwest_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
