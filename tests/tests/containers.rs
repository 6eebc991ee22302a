//! A whole alliance as containers on one private Docker network, each with its own address: a hub of 4
//! validators (`causeway-hub`), two member chains (`causeway-chain`), two relayers (`causeway-relayer`), all set
//! up through the command lines and gateways like an operator would. Then, in turn:
//!
//! 1. **kill -9 a hub validator under load** (hub transfers and packets in flight) and restart it: it catches up
//!    and never signs two messages for one slot;
//! 2. **partition the hub 2|2**: no side holds 2/3 of the power, so nothing commits; after healing, progress
//!    resumes and the packets sent meanwhile arrive;
//! 3. **pause a member longer than a packet's timeout**: that packet is refunded, exactly once;
//! 4. **kill both relayers mid-flight** and restart them;
//! 5. **a Byzantine relayer** (`causeway-byzantine-relayer`, in its own container) submits forged proofs and
//!    headers and replays a message: every forgery and the replay are refused.
//!
//! After every scenario: per-asset supply conserved across all chains, every validator of the hub holds the same
//! block at every height, no equivocation anywhere, every packet delivered or refunded exactly once (none lost,
//! none duplicated) — and one summary line with the counts.
//!
//! The image is built here from the workspace's own binaries (`causeway_tests::docker`). Without a Docker engine
//! the test prints why and passes, except under `CI=true`, where a missing engine fails it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use causeway_chain::exec::assets::AssetMeta;
use causeway_chain::gateway::client::{EventQuery, GatewayClient};
use causeway_chain::gateway::types::SubmitView;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::tx::{SignedTx, Transaction};
use causeway_chain::xchain::types::{escrow_address, DenomTrace, Packet};
use causeway_chain::xchain::EndpointMsg;
use causeway_light_client::{Address, Canonical, ChainId, Hash, SecretKey, Suite, Time};
use causeway_tests::docker::{self, docker, docker_ok, sibling, IMAGE, TAG};
use testcontainers::core::{ContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const NET: &str = "cwy-alliance";
/// The other side of the hub partition: validators 2 and 3 moved here still see each other (a true 2|2 split)
/// and stay reachable from the test through their published ports.
const NET_B: &str = "cwy-alliance-b";
const GATEWAY: u16 = 8600;
const METRICS: u16 = 9100;
const WAIT: Duration = Duration::from_secs(180);

/// One container and, for a node, a client of its gateway through the host port Docker publishes.
struct Container {
    name: String,
    _container: ContainerAsync<GenericImage>,
    gateway: Option<GatewayClient>,
}

impl Container {
    async fn start(
        name: &str,
        cmd: Vec<String>,
        mount: &Path,
        at: &str,
        ready: &str,
        port: u16,
    ) -> Container {
        let container = GenericImage::new(IMAGE, TAG)
            .with_exposed_port(ContainerPort::Tcp(port))
            .with_wait_for(WaitFor::message_on_stderr(ready))
            .with_cmd(cmd)
            .with_network(NET)
            .with_container_name(name)
            .with_mount(Mount::bind_mount(mount.to_str().unwrap(), at))
            .start()
            .await
            .unwrap_or_else(|e| panic!("container {name} starts: {e}"));
        let gateway = if port == GATEWAY {
            let host = container.get_host_port_ipv4(GATEWAY).await.unwrap();
            Some(GatewayClient::new(&format!("http://127.0.0.1:{host}")).unwrap())
        } else {
            None
        };
        Container {
            name: name.to_string(),
            _container: container,
            gateway,
        }
    }

    fn gw(&self) -> &GatewayClient {
        self.gateway.as_ref().expect("a node")
    }

    /// The gateway's current host URL (Docker may publish it on a new port after a restart or reconnect).
    fn refresh(&mut self) {
        let port = docker::published_port(&self.name, GATEWAY)
            .unwrap_or_else(|| panic!("no published gateway port for {}", self.name));
        self.gateway = Some(GatewayClient::new(&format!("http://127.0.0.1:{port}")).unwrap());
    }

    fn url(&self) -> String {
        self.gw().base_url().to_string()
    }

    /// The URL other containers use.
    fn inner_url(&self) -> String {
        format!("http://{}:{GATEWAY}", self.name)
    }
}

/// What the scenarios have done so far, to check against the chains.
#[derive(Default)]
struct Ledger {
    txs_sent: u64,
    txs_committed: u64,
    packets_sent: u64,
    timeouts_expected: u64,
    agreed_up_to: u64,
}

struct Alliance {
    dir: tempfile::TempDir,
    hub: Vec<Container>,
    alpha: Container,
    beta: Container,
    relayers: Vec<Container>,
    alice: SecretKey,
    bob: Address,
    gold: Denom,
    minted: u128,
    ledger: Ledger,
}

fn chain_id(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Time(d.as_nanos() as u64)
}

/// Run one of the workspace's command lines on the host; its standard output.
fn cli(bin: &str, args: &[&str]) -> String {
    let out = Command::new(sibling(bin)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `init` a chain of `n` validators reached at `<prefix>-v<i>` inside the network.
fn init_chain(bin: &str, id: &str, n: usize, dir: &Path) -> (PathBuf, Vec<String>) {
    let net = dir.join(id);
    let hosts: Vec<String> = (0..n).map(|i| format!("cwy-{id}-v{i}")).collect();
    cli(
        bin,
        &[
            "init",
            "--chain-id",
            id,
            "--validators",
            &n.to_string(),
            "--hosts",
            &hosts.join(","),
            "--out",
            net.to_str().unwrap(),
        ],
    );
    (net, hosts)
}

async fn start_node(bin: &str, net: &Path, host: &str, i: usize) -> Container {
    let cmd = vec![
        format!("/{bin}"),
        "start".into(),
        "--config".into(),
        format!("/net/node{i}/config.toml"),
    ];
    Container::start(host, cmd, net, "/net", "gateway serving", GATEWAY).await
}

/// [`testkit::wait_until`] with this file's deadline and polling period.
async fn wait_until<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    causeway_chain::testkit::wait_until(what, WAIT, Duration::from_millis(300), cond).await
}

async fn height(c: &GatewayClient) -> Option<u64> {
    tokio::time::timeout(Duration::from_secs(2), c.status())
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|s| s.height)
}

/// Every committed event of `kind` on `c`.
async fn events(c: &GatewayClient, kind: &str) -> Vec<causeway_chain::exec::Event> {
    let top = c.status().await.unwrap().height;
    let mut out = Vec::new();
    let mut from = 1;
    while from <= top {
        let to = top.min(from + 99);
        let q = EventQuery {
            from: Some(from),
            to: Some(to),
            kind: Some(kind.into()),
            ..EventQuery::default()
        };
        out.extend(c.events(&q).await.unwrap().events.into_iter().map(|e| e.event));
        from = to + 1;
    }
    out
}

/// How many times each packet `(source, sequence)` appears among `events` of the given form.
fn tally(
    events: &[causeway_chain::exec::Event],
    key: impl Fn(&causeway_chain::exec::Event) -> (String, u64),
) -> BTreeMap<(String, u64), u32> {
    let mut seen = BTreeMap::new();
    for e in events {
        *seen.entry(key(e)).or_insert(0) += 1;
    }
    seen
}

fn from_packet(e: &causeway_chain::exec::Event) -> (String, u64) {
    let p = Packet::decode(&hex::decode(e.attribute("packet").unwrap()).unwrap()).unwrap();
    (p.source.to_string(), p.sequence)
}

async fn balance(c: &GatewayClient, who: &Address, denom: &Denom) -> u128 {
    let a = c.account(who, &[denom.as_str()]).await.unwrap();
    a.balances.get(denom.as_str()).map(|x| x.0).unwrap_or(0)
}

/// The asset's total supply on the chain behind `c`, read with a verified state proof.
async fn supply(c: &GatewayClient, denom: &Denom) -> u128 {
    let v = c.state_verified(&denom.namespace(), b"meta", None).await.unwrap();
    v.value
        .map(|raw| borsh::from_slice::<AssetMeta>(&raw.0).unwrap().supply.0)
        .unwrap_or(0)
}

async fn equivocations(c: &GatewayClient) -> f64 {
    c.metrics()
        .await
        .unwrap()
        .lines()
        .find(|l| l.starts_with("causeway_equivocations_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

impl Alliance {
    async fn start() -> Alliance {
        docker::build_image();
        docker::create_network(NET);
        docker::create_network(NET_B);
        let dir = tempfile::tempdir().unwrap();
        let (hub_net, hub_hosts) = init_chain("causeway-hub", "hub", 4, dir.path());
        let (alpha_net, alpha_hosts) = init_chain("causeway-chain", "alpha", 1, dir.path());
        let (beta_net, beta_hosts) = init_chain("causeway-chain", "beta", 1, dir.path());
        let mut hub = Vec::new();
        for (i, host) in hub_hosts.iter().enumerate() {
            hub.push(start_node("causeway-hub", &hub_net, host, i).await);
        }
        let alpha = start_node("causeway-chain", &alpha_net, &alpha_hosts[0], 0).await;
        let beta = start_node("causeway-chain", &beta_net, &beta_hosts[0], 0).await;
        for n in hub.iter().chain([&alpha, &beta]) {
            wait_until(&format!("{} at height 2", n.name), || async {
                height(n.gw()).await.is_some_and(|h| h >= 2)
            })
            .await;
        }
        let alice = SecretKey::from_bytes(Suite::Ed25519, &[11; 32]).unwrap();
        let bob = SecretKey::from_bytes(Suite::Ed25519, &[12; 32])
            .unwrap()
            .public_key()
            .address();
        let mut a = Alliance {
            dir,
            hub,
            alpha,
            beta,
            relayers: Vec::new(),
            alice,
            bob,
            gold: Denom::new("gold").unwrap(),
            minted: 1_000_000,
            ledger: Ledger::default(),
        };
        a.govern();
        let issue = Message::Issue {
            denom: a.gold.clone(),
            amount: Amount(a.minted),
            to: a.alice.public_key().address(),
        };
        a.submit_alpha(vec![issue]).await;
        for i in 0..2 {
            a.start_relayer(i).await;
        }
        a
    }

    fn key_file(&self, chain: &str, i: usize) -> String {
        self.dir
            .path()
            .join(chain)
            .join(format!("node{i}/validator_key.json"))
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Governance as the operators would do it: a hub validator proposes admitting each member, two more vote
    /// yes (3 of 4 is above 2/3); each member's validator creates its client of the hub.
    fn govern(&self) {
        let hub_url = self.hub[0].url();
        for m in [&self.alpha, &self.beta] {
            let k0 = self.key_file("hub", 0);
            let out = cli(
                "causeway-hub",
                &[
                    "gov",
                    "admit-member",
                    "--gateway",
                    &hub_url,
                    "--member-gateway",
                    &m.url(),
                    "--wait",
                    "--key",
                    &k0,
                ],
            );
            let view: SubmitView = serde_json::from_str(&out).expect("the proposal's answer");
            let events = view.result.expect("committed").events;
            let id = events
                .iter()
                .find(|e| e.kind == "gov.proposal")
                .and_then(|e| e.attribute("id"))
                .expect("a gov.proposal event")
                .to_string();
            for i in [1, 2] {
                let ki = self.key_file("hub", i);
                let url = self.hub[i].url();
                cli(
                    "causeway-hub",
                    &[
                        "tx",
                        "vote",
                        "--proposal",
                        &id,
                        "--gateway",
                        &url,
                        "--wait",
                        "--key",
                        &ki,
                    ],
                );
            }
            let chain = m
                .name
                .trim_start_matches("cwy-")
                .trim_end_matches("-v0")
                .to_string();
            let km = self.key_file(&chain, 0);
            cli(
                "causeway-chain",
                &[
                    "tx",
                    "create-hub-client",
                    "--gateway",
                    &m.url(),
                    "--hub-gateway",
                    &hub_url,
                    "--wait",
                    "--key",
                    &km,
                ],
            );
        }
    }

    /// Relayer `i` in its own container, with its own key, watching hub validator `i` (another validator's
    /// failure does not blind it).
    async fn start_relayer(&mut self, i: usize) {
        let cfg = self.dir.path().join("relayers");
        std::fs::create_dir_all(&cfg).unwrap();
        let key = cfg.join(format!("relayer{i}_key.json"));
        cli(
            "causeway-relayer",
            &["keys", "generate", "--out", key.to_str().unwrap()],
        );
        let toml = format!(
            "key = \"relayer{i}_key.json\"\nlisten = \"0.0.0.0:{METRICS}\"\npoll_ms = 300\n\
             [batch]\nmax_messages = 16\n\
             [retry]\nmin_delay_ms = 100\nmax_delay_ms = 2000\nmax_retries = 6\n\
             [hub]\nid = \"hub\"\ngateway = \"{}\"\n\
             [[members]]\nid = \"alpha\"\ngateway = \"{}\"\n\
             [[members]]\nid = \"beta\"\ngateway = \"{}\"\n",
            self.hub[i].inner_url(),
            self.alpha.inner_url(),
            self.beta.inner_url()
        );
        std::fs::write(cfg.join(format!("relayer{i}.toml")), toml).unwrap();
        let cmd = vec![
            "/causeway-relayer".into(),
            "start".into(),
            "--config".into(),
            format!("/cfg/relayer{i}.toml"),
        ];
        let name = format!("cwy-relayer{i}");
        self.relayers
            .push(Container::start(&name, cmd, &cfg, "/cfg", "serving /metrics", METRICS).await);
    }

    /// Sign `messages` as alice on alpha and wait for the commit; panics unless executed.
    async fn submit_alpha(&mut self, messages: Vec<Message>) {
        let c = self.alpha.gw();
        let nonce = c
            .account(&self.alice.public_key().address(), &[])
            .await
            .unwrap()
            .nonce;
        let tx = Transaction {
            chain_id: chain_id("alpha"),
            signer: self.alice.public_key(),
            nonce,
            messages,
        }
        .sign(&self.alice);
        self.ledger.txs_sent += 1;
        let v = c.submit_and_wait(&tx, Duration::from_secs(60)).await.unwrap();
        let r = v.result.expect("committed");
        assert!(r.is_ok(), "refused on alpha: {:?}", r.failure);
        self.ledger.txs_committed += 1;
    }

    /// `n` packets of 10 gold from alice on alpha to bob on beta, in transactions of at most 5.
    async fn send_packets(&mut self, n: u64, timeout_time: Time) {
        let mut left = n;
        while left > 0 {
            let k = left.min(5);
            let msgs = (0..k)
                .map(|_| {
                    EndpointMsg::SendTransfer {
                        destination: chain_id("beta"),
                        denom: self.gold.clone(),
                        amount: Amount(10),
                        receiver: self.bob,
                        timeout_height: 0,
                        timeout_time,
                    }
                    .into_message()
                })
                .collect();
            self.submit_alpha(msgs).await;
            left -= k;
        }
        self.ledger.packets_sent += n;
    }

    fn far() -> Time {
        Time(now().0 + 900 * 1_000_000_000)
    }

    /// Wait until every packet sent so far is resolved on alpha, then check every invariant and print the
    /// scenario's summary line.
    async fn settle_and_check(&mut self, scenario: &str) {
        let sent = self.ledger.packets_sent as usize;
        let alpha = self.alpha.gw().clone();
        wait_until(
            &format!("{scenario}: all {sent} packets resolved on alpha"),
            || async { events(&alpha, "xchain.resolved").await.len() >= sent },
        )
        .await;

        // Exactly once, per packet, at every step.
        let resolved = events(&alpha, "xchain.resolved").await;
        let resolved_once = tally(&resolved, |e| {
            ("alpha".into(), e.attribute("sequence").unwrap().parse().unwrap())
        });
        let received = events(self.beta.gw(), "xchain.recv").await;
        let received_once = tally(&received, |e| {
            (
                e.attribute("source").unwrap().to_string(),
                e.attribute("sequence").unwrap().parse().unwrap(),
            )
        });
        let forwarded = tally(&events(self.hub[0].gw(), "hub.forward").await, from_packet);
        let outcomes = tally(&events(self.hub[0].gw(), "hub.outcome").await, from_packet);
        let duplicated = [&resolved_once, &received_once, &forwarded, &outcomes]
            .iter()
            .map(|t| t.values().filter(|&&n| n > 1).count())
            .sum::<usize>();
        let timeouts = resolved
            .iter()
            .filter(|e| e.attribute("outcome") == Some("timeout"))
            .count() as u64;
        let delivered = received_once.len() as u64;
        let lost = self.ledger.packets_sent.saturating_sub(delivered + timeouts);
        assert_eq!(duplicated, 0, "{scenario}: a packet was executed twice somewhere");
        assert_eq!(resolved_once.len(), sent, "{scenario}: packets resolved on alpha");
        assert_eq!(timeouts, self.ledger.timeouts_expected, "{scenario}: refunds");
        assert_eq!(lost, 0, "{scenario}: packets neither delivered nor refunded");
        assert_eq!(forwarded.len(), sent, "{scenario}: packets forwarded by the hub");
        assert_eq!(outcomes.len(), sent, "{scenario}: outcomes on the hub");

        // Supply conserved: gold on alpha = minted = alice + escrow; vouchers on beta = escrow = bob's.
        let voucher = DenomTrace {
            home: chain_id("alpha"),
            base: self.gold.clone(),
        }
        .voucher_denom();
        let escrow = balance(&alpha, &escrow_address(), &self.gold).await;
        let alice_gold = balance(&alpha, &self.alice.public_key().address(), &self.gold).await;
        assert_eq!(
            supply(&alpha, &self.gold).await,
            self.minted,
            "{scenario}: gold supply on alpha"
        );
        assert_eq!(alice_gold + escrow, self.minted, "{scenario}: gold held on alpha");
        assert_eq!(
            escrow,
            u128::from(delivered) * 10,
            "{scenario}: escrow backs exactly the delivered packets"
        );
        assert_eq!(
            supply(self.beta.gw(), &voucher).await,
            escrow,
            "{scenario}: vouchers on beta = escrow on alpha"
        );
        assert_eq!(
            balance(self.beta.gw(), &self.bob, &voucher).await,
            escrow,
            "{scenario}: bob's vouchers"
        );

        // One block per height on every hub validator; no equivocation anywhere.
        let common = self.check_agreement(scenario).await;
        println!(
            "scenario {scenario}: txs sent {}, committed {}, packets sent {}, delivered {delivered}, refunded \
             {timeouts}, lost {lost}, duplicated {duplicated}; hub heights 1..={common} agree on all 4 validators",
            self.ledger.txs_sent, self.ledger.txs_committed, self.ledger.packets_sent
        );
    }

    async fn check_agreement(&mut self, scenario: &str) -> u64 {
        let mut heights = Vec::new();
        for n in &self.hub {
            heights.push(
                height(n.gw())
                    .await
                    .unwrap_or_else(|| panic!("{scenario}: {} does not answer", n.name)),
            );
        }
        let common = heights.into_iter().min().unwrap();
        for h in self.ledger.agreed_up_to + 1..=common {
            let mut ids = Vec::new();
            for n in &self.hub {
                ids.push(n.gw().block(h).await.unwrap().block_id);
            }
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "{scenario}: hub validators disagree at height {h}"
            );
        }
        self.ledger.agreed_up_to = common;
        for n in self.hub.iter().chain([&self.alpha, &self.beta]) {
            assert_eq!(
                equivocations(n.gw()).await,
                0.0,
                "{scenario}: {} saw conflicting signatures",
                n.name
            );
        }
        common
    }

    async fn hub_heights(&self) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for n in &self.hub {
            out.push(height(n.gw()).await);
        }
        out
    }
}

impl Drop for Alliance {
    fn drop(&mut self) {
        // testcontainers removes the containers; remove them here too (in case of a panic mid-way) and then the
        // network, which cannot go while a container is attached.
        for n in self
            .hub
            .iter()
            .chain([&self.alpha, &self.beta])
            .chain(self.relayers.iter())
        {
            let _ = docker(&["rm", "-f", &n.name]);
        }
        let _ = docker(&["rm", "-f", "cwy-byzantine"]);
        let _ = docker(&["network", "rm", NET]);
        let _ = docker(&["network", "rm", NET_B]);
    }
}

/// The receiver of the hub transfers.
fn hub_receiver() -> Address {
    SecretKey::from_bytes(Suite::Ed25519, &[22; 32])
        .unwrap()
        .public_key()
        .address()
}

/// Signed hub transactions of a user (key seed `seed`): nonce 0 issues `denom`, each later nonce transfers 1 of
/// it to [`hub_receiver`].
fn hub_transfers(seed: u8, denom: &str, n: u64) -> Vec<SignedTx> {
    let user = SecretKey::from_bytes(Suite::Ed25519, &[seed; 32]).unwrap();
    let denom = Denom::new(denom).unwrap();
    (0..n)
        .map(|nonce| {
            let m = if nonce == 0 {
                Message::Issue {
                    to: user.public_key().address(),
                    denom: denom.clone(),
                    amount: Amount(1_000_000),
                }
            } else {
                Message::Transfer {
                    to: hub_receiver(),
                    denom: denom.clone(),
                    amount: Amount(1),
                }
            };
            Transaction {
                chain_id: chain_id("hub"),
                signer: user.public_key(),
                nonce,
                messages: vec![m],
            }
            .sign(&user)
        })
        .collect()
}

/// Submit `txs` through `c` as one batch; every one must be admitted.
async fn submit_batch(c: &GatewayClient, txs: &[SignedTx]) -> Vec<Hash> {
    let view = c.submit_batch(txs).await.unwrap();
    assert_eq!(view.rejected, 0, "hub transfers refused: {:?}", view.results);
    view.results.into_iter().map(|r| r.hash.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_alliance_survives_crashes_partitions_pauses_and_a_byzantine_relayer() {
    if !docker::docker_available() {
        return;
    }
    let mut a = Alliance::start().await;

    // 1. kill -9 one hub validator under load (two users' transfers on the hub, packets), restart it.
    let mut hashes = submit_batch(a.hub[0].gw(), &hub_transfers(21, "cash", 101)).await;
    a.send_packets(20, Alliance::far()).await;
    docker_ok(&["kill", "-s", "KILL", &a.hub[3].name]);
    hashes.extend(submit_batch(a.hub[1].gw(), &hub_transfers(23, "coin", 101)).await);
    a.send_packets(20, Alliance::far()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker_ok(&["start", &a.hub[3].name]);
    a.hub[3].refresh();
    a.ledger.txs_sent += hashes.len() as u64;
    let gw2 = a.hub[2].gw().clone();
    let (cash, coin) = (Denom::new("cash").unwrap(), Denom::new("coin").unwrap());
    wait_until("the hub transfers committed", || async {
        balance(&gw2, &hub_receiver(), &cash).await == 100
            && balance(&gw2, &hub_receiver(), &coin).await == 100
    })
    .await;
    for h in &hashes {
        let view = gw2.tx(h).await.unwrap();
        assert!(
            view.result.is_ok(),
            "hub transaction {h} failed: {:?}",
            view.result.failure
        );
    }
    a.ledger.txs_committed += hashes.len() as u64;
    let top = a.hub_heights().await.into_iter().flatten().max().unwrap();
    let restarted = a.hub[3].gw().clone();
    wait_until("the restarted validator catches up", || async {
        height(&restarted).await.is_some_and(|h| h >= top)
    })
    .await;
    a.settle_and_check("kill-hub-validator").await;

    // 2. Partition the hub 2|2: validators 2 and 3 move to another network, where they see only each other.
    //    No side has more than 2/3 of the power: nothing commits on either side (all four are watched).
    for i in [2, 3] {
        docker_ok(&["network", "disconnect", NET, &a.hub[i].name]);
        docker_ok(&["network", "connect", NET_B, &a.hub[i].name]);
        a.hub[i].refresh();
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // blocks already decided settle before sampling
    let frozen = a.hub_heights().await;
    assert!(frozen.iter().all(Option::is_some), "every hub validator answers during the partition: {frozen:?}");
    a.send_packets(10, Alliance::far()).await; // committed on alpha; the hub cannot take them yet
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = a.hub_heights().await;
    assert_eq!(frozen, later, "partition: a side without 2/3 of the power committed a block");
    for i in [2, 3] {
        docker_ok(&["network", "disconnect", NET_B, &a.hub[i].name]);
        docker_ok(&["network", "connect", NET, &a.hub[i].name]);
        a.hub[i].refresh();
    }
    let resume_from = later.into_iter().flatten().max().unwrap_or(0);
    for n in &a.hub {
        let c = n.gw().clone();
        wait_until("hub progress after the heal", || async {
            height(&c).await.is_some_and(|h| h > resume_from + 1)
        })
        .await;
    }
    a.settle_and_check("partition-hub-2-2").await;

    // 3. Pause beta longer than one packet's timeout: that packet is refunded, the others delivered.
    docker_ok(&["pause", &a.beta.name]);
    a.send_packets(1, Time(now().0 + 3_000_000_000)).await;
    a.ledger.timeouts_expected += 1;
    a.send_packets(5, Alliance::far()).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    docker_ok(&["unpause", &a.beta.name]);
    a.settle_and_check("pause-member-past-timeout").await;

    // 4. Kill both relayers mid-flight; restart them.
    a.send_packets(20, Alliance::far()).await;
    let beta = a.beta.gw().clone();
    let voucher = DenomTrace {
        home: chain_id("alpha"),
        base: a.gold.clone(),
    }
    .voucher_denom();
    let before = balance(&beta, &a.bob, &voucher).await;
    let bob = a.bob;
    wait_until("relaying under way", || async {
        balance(&beta, &bob, &voucher).await > before
    })
    .await;
    for r in &a.relayers {
        docker_ok(&["kill", "-s", "KILL", &r.name]);
    }
    a.send_packets(20, Alliance::far()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in &a.relayers {
        docker_ok(&["start", &r.name]);
    }
    a.settle_and_check("kill-relayers").await;

    // 5. A Byzantine relayer: honest relayers paused so a packet stays pending, then forgeries and a replay.
    for r in &a.relayers {
        docker_ok(&["pause", &r.name]);
    }
    a.send_packets(3, Alliance::far()).await;
    let forger_key = a.dir.path().join("relayers/byzantine_key.json");
    cli(
        "causeway-relayer",
        &["keys", "generate", "--out", forger_key.to_str().unwrap()],
    );
    let mount = format!("{}:/cfg", a.dir.path().join("relayers").display());
    let report = docker_ok(&[
        "run",
        "--name",
        "cwy-byzantine",
        "--network",
        NET,
        "-v",
        &mount,
        &format!("{IMAGE}:{TAG}"),
        "/causeway-byzantine-relayer",
        "--hub",
        &a.hub[1].inner_url(),
        "--source",
        &a.alpha.inner_url(),
        "--destination",
        &a.beta.inner_url(),
        "--key",
        "/cfg/byzantine_key.json",
    ]);
    let _ = docker(&["rm", "-f", "cwy-byzantine"]);
    let report: serde_json::Value = serde_json::from_str(report.trim().lines().last().unwrap()).unwrap();
    assert_eq!(report["forged"], 5, "{report}");
    assert_eq!(report["accepted"], 0, "a forgery was accepted: {report}");
    assert_eq!(
        report["honest_relay"]["accepted"], true,
        "the honest relay of a pending packet: {report}"
    );
    assert_eq!(
        report["replay"]["accepted"], false,
        "the replayed message was executed twice: {report}"
    );
    for r in &a.relayers {
        docker_ok(&["unpause", &r.name]);
    }
    a.settle_and_check("byzantine-relayer").await;
    println!(
        "byzantine relayer: forged {}, accepted 0, refused {} ({})",
        report["forged"],
        report["rejected"],
        report["attempts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}: {}", v["why"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
