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
use std::process::{Command, Stdio};
use std::time::Duration;

use causeway_chain::gateway::client::{EventQuery, GatewayClient};
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::tx::Transaction;
use causeway_chain::xchain::types::DenomTrace;
use causeway_chain::xchain::EndpointMsg;
use causeway_light_client::{Address, ChainId, HashAlg, SecretKey, Suite, Time};

const RELAYER: &str = env!("CARGO_BIN_EXE_causeway-relayer");
const WAIT: Duration = Duration::from_secs(120);

use causeway_chain::testkit::{sibling_binary as sibling, ChildProcess as Proc};

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
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sign `messages` with `key`, submit through `c`, wait for the commit; panics unless executed successfully.
async fn submit(c: &GatewayClient, chain: &ChainId, key: &SecretKey, messages: Vec<Message>) -> u64 {
    let nonce = c.account(&key.public_key().address(), &[]).await.unwrap().nonce;
    let tx = Transaction {
        chain_id: chain.clone(),
        signer: key.public_key(),
        nonce,
        messages,
    }
    .sign(key);
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
async fn count_events_where(
    c: &GatewayClient,
    kind: &str,
    keep: impl Fn(&causeway_chain::exec::Event) -> bool,
) -> usize {
    let top = c.status().await.unwrap().height;
    let mut n = 0;
    let mut from = 1;
    while from <= top {
        let to = top.min(from + 99);
        let q = EventQuery {
            from: Some(from),
            to: Some(to),
            kind: Some(kind.into()),
            ..EventQuery::default()
        };
        n += c
            .events(&q)
            .await
            .unwrap()
            .events
            .iter()
            .filter(|e| keep(&e.event))
            .count();
        from = to + 1;
    }
    n
}

fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Time(d.as_nanos() as u64)
}

/// The hub and two members, each one validator in its own process, with the members admitted and their hub
/// clients created through the command lines, and gold issued to alice on alpha.
struct Alliance {
    hub: ChainProc,
    alpha: ChainProc,
    beta: ChainProc,
    alice: SecretKey,
    bob: Address,
    gold: Denom,
    voucher: Denom,
    minted: u128,
}

impl Alliance {
    async fn start(dir: &Path) -> Alliance {
        let hub = start_chain("causeway-hub", "hub", dir);
        let alpha = start_chain("causeway-chain", "alpha", dir);
        let beta = start_chain("causeway-chain", "beta", dir);
        let log_files: Vec<PathBuf> = [&hub, &alpha, &beta]
            .iter()
            .map(|c| c.node.log().to_path_buf())
            .collect();
        let chain_logs = || {
            log_files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n----\n")
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
                &[
                    "gov",
                    "admit-member",
                    "--gateway",
                    &hub.url,
                    "--member-gateway",
                    &m.url,
                    "--wait",
                    "--key",
                ],
                &hub.key_file,
            );
            cli(
                "causeway-chain",
                &[
                    "tx",
                    "create-hub-client",
                    "--gateway",
                    &m.url,
                    "--hub-gateway",
                    &hub.url,
                    "--wait",
                    "--key",
                ],
                &m.key_file,
            );
        }

        // An asset on alpha.
        let alice = SecretKey::from_bytes(Suite::Ed25519, &[11; 32]).unwrap();
        let bob = SecretKey::from_bytes(Suite::Ed25519, &[12; 32])
            .unwrap()
            .public_key()
            .address();
        let gold = Denom::new("gold").unwrap();
        let minted = 1_000_000u128;
        let issue = Message::Issue {
            denom: gold.clone(),
            amount: Amount(minted),
            to: alice.public_key().address(),
        };
        submit(&alpha.gateway, &alpha.id, &alice, vec![issue]).await;
        let voucher = DenomTrace {
            home: alpha.id.clone(),
            base: gold.clone(),
        }
        .voucher_denom();
        Alliance {
            hub,
            alpha,
            beta,
            alice,
            bob,
            gold,
            voucher,
            minted,
        }
    }

    fn chain_logs(&self) -> String {
        [&self.hub, &self.alpha, &self.beta]
            .iter()
            .map(|c| std::fs::read_to_string(c.node.log()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// `n` transfers of `amount` gold from alice on alpha to bob on beta.
    fn sends(&self, n: usize, amount: u128, timeout_time: Time) -> Vec<Message> {
        (0..n)
            .map(|_| {
                EndpointMsg::SendTransfer {
                    destination: self.beta.id.clone(),
                    denom: self.gold.clone(),
                    amount: Amount(amount),
                    receiver: self.bob,
                    timeout_height: 0,
                    timeout_time,
                }
                .into_message()
            })
            .collect()
    }

    async fn send(&self, n: usize, amount: u128, timeout_time: Time) {
        submit(
            &self.alpha.gateway,
            &self.alpha.id,
            &self.alice,
            self.sends(n, amount, timeout_time),
        )
        .await;
    }

    async fn vouchers(&self) -> u128 {
        balance(&self.beta.gateway, &self.bob, &self.voucher).await
    }

    /// Per-asset conservation: alice's gold plus what alpha holds in escrow is what was minted, and the escrow
    /// backs exactly the vouchers outstanding on beta.
    async fn check_supply(&self) {
        let escrow = causeway_chain::xchain::types::escrow_address();
        let alice = balance(
            &self.alpha.gateway,
            &self.alice.public_key().address(),
            &self.gold,
        )
        .await;
        let escrowed = balance(&self.alpha.gateway, &escrow, &self.gold).await;
        assert_eq!(
            alice + escrowed,
            self.minted,
            "gold on alpha: alice {alice} + escrow {escrowed}"
        );
        assert_eq!(
            escrowed,
            self.vouchers().await,
            "escrowed gold backs the vouchers on beta"
        );
    }

    /// A relayer configuration over the three chains (`beta_url` instead of beta's gateway when given).
    fn relayer_config(&self, dir: &Path, name: &str, beta_url: Option<&str>) -> (String, u16) {
        let key = dir.join("relayer_key.json");
        if !key.exists() {
            let out = Command::new(RELAYER)
                .args(["keys", "generate", "--out"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "keys generate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let metrics_port = causeway_chain::testkit::free_port_base(1).unwrap();
        let config = dir.join(name);
        std::fs::write(
            &config,
            format!(
                "key = \"relayer_key.json\"\nlisten = \"127.0.0.1:{metrics_port}\"\npoll_ms = 300\n\
                 [batch]\nmax_messages = 16\n\
                 [retry]\nmin_delay_ms = 50\nmax_delay_ms = 1000\nmax_retries = 4\n\
                 [hub]\nid = \"hub\"\ngateway = \"{}\"\n\
                 [[members]]\nid = \"alpha\"\ngateway = \"{}\"\n\
                 [[members]]\nid = \"beta\"\ngateway = \"{}\"\n",
                self.hub.url,
                self.alpha.url,
                beta_url.unwrap_or(&self.beta.url)
            ),
        )
        .unwrap();
        (config.to_str().unwrap().to_string(), metrics_port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayers_killed_doubled_and_a_dead_gateway_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = Alliance::start(dir.path()).await;
    let far = || Time(now().0 + 600 * 1_000_000_000);
    let (cfg, metrics_port) = net.relayer_config(dir.path(), "relayer.toml", None);
    let mut relayer_a = Proc::start(
        RELAYER,
        &["start", "--config", &cfg],
        dir.path().join("relayer_a.log"),
    );

    // 1. Relayer A is killed mid-flight and restarted.
    net.send(20, 10, far()).await;
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());
    wait_until("the first packets delivered", all_logs, || async {
        net.vouchers().await > 0
    })
    .await;
    relayer_a.kill();
    net.send(20, 10, far()).await;
    relayer_a.spawn();

    // 2. A second relayer on the same paths.
    let _relayer_b = Proc::start(
        RELAYER,
        &["start", "--config", &cfg],
        dir.path().join("relayer_b.log"),
    );
    net.send(20, 10, far()).await;

    // 3. Beta's node and gateway die for longer than a packet's timeout; that packet is refunded.
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());
    wait_until("40 packets delivered", all_logs, || async {
        net.vouchers().await >= 400
    })
    .await;
    net.beta.node.kill();
    let short_deadline = Time(now().0 + 2_000_000_000);
    net.send(1, 7, short_deadline).await;
    net.send(20, 10, far()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    net.beta.node.spawn();

    // Everything settles: 80 delivered, 1 refunded, nothing left in flight.
    let delivered = 80u128;
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());
    wait_until("every packet resolved on alpha", all_logs, || async {
        count_events(&net.alpha.gateway, "xchain.resolved").await == 81
    })
    .await;
    assert_eq!(net.vouchers().await, delivered * 10, "bob's vouchers on beta");
    assert_eq!(
        balance(&net.alpha.gateway, &net.alice.public_key().address(), &net.gold).await,
        net.minted - delivered * 10,
        "alice keeps what was refunded"
    );
    net.check_supply().await;
    assert_eq!(
        freezes(&net).await,
        0,
        "the misbehaviour watch found nothing on honest chains"
    );
    assert_eq!(
        count_events(&net.beta.gateway, "xchain.recv").await,
        80,
        "each packet received once on beta"
    );
    assert_eq!(
        count_events(&net.hub.gateway, "hub.forward").await,
        81,
        "each packet forwarded once by the hub"
    );
    assert_eq!(
        count_events(&net.hub.gateway, "hub.outcome").await,
        81,
        "one outcome per packet on the hub"
    );
    let timed_out = count_events_where(&net.alpha.gateway, "xchain.resolved", |e| {
        e.attribute("outcome") == Some("timeout")
    })
    .await;
    assert_eq!(
        timed_out, 1,
        "the packet sent while beta was down timed out, once"
    );

    // The relayer's own view: nothing due, metrics and health served.
    let out = Command::new(RELAYER)
        .args(["status", "--config", &cfg])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    net.alpha.node.kill();
}

/// A TCP proxy in front of a gateway that can be cut while the node behind it keeps running: when cut, it drops
/// every open connection and closes each new one at once (the gateway looks dead; the chain is not).
struct Proxy {
    url: String,
    cut: tokio::sync::watch::Sender<bool>,
    /// Connections closed at once while cut.
    refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cut, watch) = tokio::sync::watch::channel(false);
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = refused.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watch.borrow() {
                    counter.fetch_add(1, Ordering::Relaxed);
                    drop(inbound);
                    continue;
                }
                let mut cut_now = watch.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { url, cut, refused }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }

    fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The delays of the retries the relayer logged (`… failed; retrying`, JSON log lines), in order.
fn retry_delays(log: &str) -> Vec<Duration> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("failed; retrying"))
        })
        .filter_map(|v| {
            // `Debug` of a `Duration`: 73.5ms, 1.2s, 900µs, 40ns.
            let d = v["fields"]["retry_in"].as_str()?.to_string();
            let at = d.find(|c: char| c.is_alphabetic())?;
            let (num, unit) = d.split_at(at);
            let x: f64 = num.parse().ok()?;
            let secs = match unit {
                "s" => x,
                "ms" => x / 1e3,
                "µs" => x / 1e6,
                "ns" => x / 1e9,
                _ => return None,
            };
            Some(Duration::from_secs_f64(secs))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_failing_for_seconds_is_retried_with_backoff_and_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let net = Alliance::start(dir.path()).await;
    let far = || Time(now().0 + 600 * 1_000_000_000);
    // The relayer reaches beta only through the proxy; the test itself talks to beta directly.
    let proxy = Proxy::start(&net.beta.url).await;
    let (cfg, metrics_port) = net.relayer_config(dir.path(), "relayer_proxy.toml", Some(&proxy.url));
    let log = dir.path().join("relayer_a.log");
    let _relayer = Proc::start(
        RELAYER,
        &["start", "--config", &cfg, "--log-format", "json"],
        log.clone(),
    );
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());

    net.send(10, 10, far()).await;
    wait_until("the first 10 packets delivered", all_logs, || async {
        net.vouchers().await == 100
    })
    .await;

    // Beta's gateway fails (as the relayer sees it) for 6 s while packets keep coming; beta keeps producing blocks.
    proxy.set_cut(true);
    let beta_height = net.beta.gateway.status().await.unwrap().height;
    let retries_before = retry_delays(&std::fs::read_to_string(&log).unwrap_or_default()).len();
    let cut_at = std::time::Instant::now();
    net.send(20, 10, far()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.send(20, 10, far()).await;
    // The paths that do not need beta keep moving: the hub receives every new packet from alpha.
    wait_until(
        "the hub forwards the packets sent during the cut",
        all_logs,
        || async { count_events(&net.hub.gateway, "hub.forward").await == 50 },
    )
    .await;
    if let Some(rest) = Duration::from_secs(6).checked_sub(cut_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert_eq!(
        net.vouchers().await,
        100,
        "nothing reaches beta while its gateway is cut"
    );
    assert!(
        net.beta.gateway.status().await.unwrap().height > beta_height,
        "beta's node kept committing"
    );
    let health = reqwest_get(metrics_port, "/health").await;
    assert!(
        health.contains("beta"),
        "the relayer's health names the failing chain: {health}"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let delays = retry_delays(&text)[retries_before..].to_vec();
    assert!(
        proxy.refused() >= 3,
        "the relayer kept trying beta ({} connections refused)",
        proxy.refused()
    );
    // Backoff: within a run of retries the delays grow (exponential, with jitter below the next step).
    assert!(
        delays.len() >= 3,
        "retries logged during the cut: {delays:?}\n{text}"
    );
    assert!(
        delays.windows(2).any(|w| w[1] > w[0]) && delays.iter().any(|d| *d >= Duration::from_millis(200)),
        "retry delays grow: {delays:?}"
    );
    proxy.set_cut(false);

    // Recovery: everything is delivered once, resolved once, and the supply is conserved.
    wait_until("every packet resolved on alpha", all_logs, || async {
        count_events(&net.alpha.gateway, "xchain.resolved").await == 50
    })
    .await;
    assert_eq!(net.vouchers().await, 500, "bob's vouchers on beta");
    assert_eq!(
        count_events(&net.beta.gateway, "xchain.recv").await,
        50,
        "each packet received once on beta"
    );
    assert_eq!(
        count_events(&net.hub.gateway, "hub.forward").await,
        50,
        "each packet forwarded once by the hub"
    );
    assert_eq!(
        count_events(&net.hub.gateway, "hub.outcome").await,
        50,
        "one outcome per packet on the hub"
    );
    net.check_supply().await;
    assert_eq!(
        freezes(&net).await,
        0,
        "the misbehaviour watch found nothing on honest chains"
    );
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());
    wait_until("the relayer's health clears", all_logs, || async {
        reqwest_get(metrics_port, "/health")
            .await
            .contains("\"last_error\":null")
    })
    .await;
    println!(
        "gateway outage e2e: beta's gateway cut 6 s, {} connections refused, {} retries logged; 50 sent, \
         50 delivered once, lost 0, duplicated 0",
        proxy.refused(),
        delays.len()
    );
}

/// The hub's whole client of `of`, read part by part from the hub's state at one height.
async fn hub_client(net: &Alliance, of: &ChainId) -> causeway_light_client::NativeClient {
    use causeway_chain::xchain::client::Slot;
    use causeway_light_client::native::{ClientState, TrustedHeight};
    use causeway_light_client::Canonical;
    let slot = Slot::of_member(of);
    let gw = &net.hub.gateway;
    let head = gw.state(slot.namespace(), slot.key(), None).await.unwrap();
    let at = Some(head.height);
    let state = ClientState::decode(&head.value.unwrap().0).unwrap();
    let heights = gw.state(slot.namespace(), &slot.heights_key(), at).await.unwrap();
    let kept: Vec<u64> = borsh::from_slice(&heights.value.unwrap().0).unwrap();
    let mut all = vec![];
    for h in kept {
        let v = gw.state(slot.namespace(), &slot.height_key(h), at).await.unwrap();
        all.push(TrustedHeight::decode(&v.value.unwrap().0).unwrap());
    }
    causeway_light_client::NativeClient::whole(state, all).unwrap()
}

/// Frozen-client events on every chain (the hub's clients of members, the members' clients of the hub).
async fn freezes(net: &Alliance) -> usize {
    count_events(&net.hub.gateway, "hub.client_frozen").await
        + count_events(&net.alpha.gateway, "xchain.hub_client_frozen").await
        + count_events(&net.beta.gateway, "xchain.hub_client_frozen").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_misbehaviour_watch_freezes_a_client_fed_a_second_signed_header() {
    use causeway_light_client::{CommitCertificate, CommitSig, Hash, HeaderUpdate, LightClient};
    let dir = tempfile::tempdir().unwrap();
    let net = Alliance::start(dir.path()).await;
    let all_logs = || format!("{}\n{}", relayer_logs(dir.path()), net.chain_logs());

    // Alpha's validator signs a second header at a height the hub's client does not trust yet (another state
    // root), and someone feeds it to the hub: the hub cannot tell, it has seen only this one.
    let trusted = hub_client(&net, &net.alpha.id).await.latest_height();
    wait_until("alpha two heights past the hub's client", all_logs, || async {
        net.alpha.gateway.status().await.unwrap().height >= trusted + 2
    })
    .await;
    let h = net.alpha.gateway.status().await.unwrap().height;
    let real = net.alpha.gateway.header(h).await.unwrap();
    let alg = [HashAlg::Sha256, HashAlg::Sm3]
        .into_iter()
        .find(|a| real.header.hash(*a) == real.block_id)
        .unwrap();
    let mut forged = real.header.clone();
    forged.state_root = Hash([7; 32]);
    assert_ne!(forged.hash(alg), real.block_id);
    let validator = causeway_chain::keys::load(&net.alpha.key_file).unwrap();
    let round = net.alpha.gateway.commit(h).await.unwrap().certificate.round;
    let mut commit = CommitCertificate {
        height: h,
        round,
        block_id: forged.hash(alg),
        signatures: vec![],
    };
    let signed = commit.sign_bytes(net.alpha.id.as_str());
    commit.signatures = vec![CommitSig {
        validator_index: 0,
        signature: validator.sign_raw(&signed),
    }];
    let update = HeaderUpdate {
        header: forged,
        commit,
        validators: net.alpha.gateway.validators(h).await.unwrap().validators,
        trusted_height: trusted,
        trusted_validators: net
            .alpha
            .gateway
            .validators(trusted + 1)
            .await
            .unwrap()
            .validators,
    };
    let mallory = SecretKey::from_bytes(Suite::Ed25519, &[66; 32]).unwrap();
    let feed = causeway_hub::HubMsg::UpdateClient {
        chain: net.alpha.id.clone(),
        update,
    }
    .into_message();
    submit(&net.hub.gateway, &net.hub.id, &mallory, vec![feed]).await;
    let client = hub_client(&net, &net.alpha.id).await;
    let held = client.trusted(h).map(|t| t.header_hash);
    assert!(
        held.is_some_and(|x| x != real.block_id),
        "the hub trusts the forged header at {h}"
    );
    assert_eq!(freezes(&net).await, 0);

    // A relayer starts: its watch compares the hub's trusted headers with alpha's and submits alpha's real header
    // at that height, proven from the height before; the hub's client of alpha freezes. Nothing else does.
    let (cfg, metrics_port) = net.relayer_config(dir.path(), "relayer.toml", None);
    let _relayer = Proc::start(
        RELAYER,
        &["start", "--config", &cfg],
        dir.path().join("relayer_a.log"),
    );
    wait_until("the hub's client of alpha frozen", all_logs, || async {
        count_events(&net.hub.gateway, "hub.client_frozen").await == 1
    })
    .await;
    let client = hub_client(&net, &net.alpha.id).await;
    assert_eq!(client.client_state().frozen_height, Some(h));
    assert!(hub_client(&net, &net.beta.id)
        .await
        .client_state()
        .frozen_height
        .is_none());
    let metrics = reqwest_get(metrics_port, "/metrics").await;
    assert!(
        metrics.contains("causeway_relayer_evidence_submitted_total 1"),
        "{metrics}"
    );
    // The watch goes on over the other clients without finding anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(freezes(&net).await, 1, "only the fed client froze");
    println!("misbehaviour e2e: forged header at alpha height {h} fed to the hub; the relayer's watch froze the client");
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
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
