//! `causeway-byzantine-relayer`: a malicious relayer for the container fault tests. It reads the same gateways an
//! honest relayer reads, takes a packet that is really pending on the source member, and submits forgeries built
//! from real material: a tampered packet with its genuine proof, an invented sequence, a proof of absence passed
//! off as presence, a header whose state root was altered, a hub proof of another key on the destination. Then
//! it relays the packet honestly once and replays that same message under a new nonce.
//!
//! It prints one JSON line: for every attempt, whether the chain accepted it and why not. The test asserts that
//! every forgery and the replay were refused and the honest relay accepted. Exit status 1 when it could not set
//! the attempts up (no pending packet, a gateway down); the attempts' outcomes never change the exit status.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use causeway_chain::gateway::client::{BlockRef, EventQuery, GatewayClient};
use causeway_chain::keys;
use causeway_chain::message::{Amount, Message};
use causeway_chain::tx::Transaction;
use causeway_chain::xchain::client::Slot;
use causeway_chain::xchain::types::{
    hub_keys, member_keys, namespace, Packet, Payload, HUB_NAMESPACE, NAMESPACE,
};
use causeway_chain::xchain::EndpointMsg;
use causeway_hub::HubMsg;
use causeway_light_client::native::{ClientState, HeaderUpdate};
use causeway_light_client::{Canonical, ChainId, SecretKey, StateProof};
use clap::Parser;
use serde_json::json;

/// Submit forged cross-chain messages and report how each chain answered.
#[derive(Parser, Debug)]
#[command(name = "causeway-byzantine-relayer", version, about)]
struct Args {
    /// The hub's gateway.
    #[arg(long)]
    hub: String,
    /// The source member's gateway (a packet must be pending there).
    #[arg(long)]
    source: String,
    /// The destination member's gateway.
    #[arg(long)]
    destination: String,
    /// The relayer's key file (any fresh key: relaying needs no permission).
    #[arg(long)]
    key: PathBuf,
    /// How many recent source heights to search for a pending packet.
    #[arg(long, default_value_t = 400)]
    search: u64,
}

/// One chain as the forger sees it.
struct Chain {
    id: ChainId,
    gateway: GatewayClient,
}

impl Chain {
    async fn connect(url: &str) -> Result<Chain> {
        let gateway = GatewayClient::new(url).with_context(|| format!("gateway {url}"))?;
        let id = gateway
            .status()
            .await
            .with_context(|| format!("status of {url}"))?
            .chain_id;
        Ok(Chain { id, gateway })
    }

    async fn tip(&self) -> Result<u64> {
        Ok(self.gateway.status().await?.height)
    }

    /// The value (if any) under `key` at `height` and its proof, checked against that height's state root.
    async fn prove(
        &self,
        ns: &'static str,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, StateProof)> {
        let v = self
            .gateway
            .state_verified(&namespace(ns), key, Some(height))
            .await?;
        Ok((v.value.map(|b| b.0), v.proof))
    }

    /// What moves a client of this chain from `trusted` to `target`.
    async fn header_update(&self, trusted: u64, target: u64) -> Result<HeaderUpdate> {
        Ok(HeaderUpdate {
            header: self.gateway.header(BlockRef::Height(target)).await?.header,
            commit: self.gateway.commit(BlockRef::Height(target)).await?.certificate,
            validators: self
                .gateway
                .validators(BlockRef::Height(target))
                .await?
                .validators,
            trusted_height: trusted,
            trusted_validators: self
                .gateway
                .validators(BlockRef::Height(trusted + 1))
                .await?
                .validators,
        })
    }

    /// Sign and submit one message; `Ok(None)` when the chain applied it, `Ok(Some(reason))` when it refused it
    /// at the gateway or committed it as failed.
    async fn attempt(&self, key: &SecretKey, message: Message) -> Result<Option<String>> {
        let nonce = self
            .gateway
            .account(&key.public_key().address(), &[])
            .await?
            .nonce;
        let tx = Transaction {
            chain_id: self.id.clone(),
            signer: key.public_key(),
            nonce,
            messages: vec![message],
        }
        .sign(key);
        match self.gateway.submit_and_wait(&tx, Duration::from_secs(60)).await {
            Err(e) => Ok(Some(format!("refused at the gateway: {e}"))),
            Ok(view) => match view.result {
                None => bail!("{}: transaction {} not committed within 60 s", self.id, view.hash),
                Some(r) => Ok(r.failure.map(|f| f.to_string())),
            },
        }
    }
}

/// A packet sent by `source` whose commitment is still stored at `height` (so it is pending, not yet resolved),
/// searched from the newest block back (the gateway answers at most 100 heights per event query).
async fn pending_packet(source: &Chain, height: u64, search: u64) -> Result<Packet> {
    let floor = height.saturating_sub(search).max(1);
    let mut to = height;
    while to >= floor {
        let from = to.saturating_sub(99).max(floor);
        let q = EventQuery {
            from: Some(from),
            to: Some(to),
            kind: Some("xchain.send".into()),
            ..Default::default()
        };
        for e in source.gateway.events(&q).await?.events.iter().rev() {
            let Some(raw) = e.event.attribute("packet") else {
                continue;
            };
            let packet = Packet::decode(&hex::decode(raw)?)?;
            let (value, _) = source
                .prove(NAMESPACE, &member_keys::commitment(packet.sequence), height)
                .await?;
            if value.is_some() {
                return Ok(packet);
            }
        }
        if from == floor {
            break;
        }
        to = from - 1;
    }
    bail!(
        "no packet of {} is pending at height {height} (searched heights {floor}..={height})",
        source.id
    )
}

/// A light client as read from its host's state: its state and the heights it keeps.
struct SeenClient {
    state: ClientState,
    kept: Vec<u64>,
}

impl SeenClient {
    fn latest_height(&self) -> u64 {
        self.state.latest_height
    }

    fn trusts(&self, height: u64) -> bool {
        self.kept.binary_search(&height).is_ok()
    }
}

async fn read_client(host: &Chain, namespace: &'static str, slot: &Slot) -> Result<SeenClient> {
    let tip = host.tip().await?;
    let (raw, _) = host.prove(namespace, slot.key(), tip).await?;
    let raw = raw.with_context(|| format!("{} has no such client", host.id))?;
    let state = ClientState::decode(&raw)?;
    let (raw, _) = host.prove(namespace, &slot.heights_key(), tip).await?;
    let kept = borsh::from_slice(&raw.with_context(|| format!("{} keeps no heights", host.id))?)?;
    Ok(SeenClient { state, kept })
}

async fn client_on_hub(hub: &Chain, of: &ChainId) -> Result<SeenClient> {
    read_client(hub, HUB_NAMESPACE, &Slot::of_member(of)).await
}

async fn client_of_hub(member: &Chain) -> Result<SeenClient> {
    read_client(member, NAMESPACE, &Slot::of_hub()).await
}

async fn run(args: Args) -> Result<serde_json::Value> {
    let key = keys::load(&args.key).with_context(|| format!("key {}", args.key.display()))?;
    let me = key.public_key().address();
    let hub = Chain::connect(&args.hub).await?;
    let source = Chain::connect(&args.source).await?;
    let destination = Chain::connect(&args.destination).await?;

    // A packet really pending on the source, and the hub's client of the source brought to that height by an
    // honest update (anyone may submit a valid header).
    let height = source.tip().await?;
    let packet = pending_packet(&source, height, args.search).await?;
    let client = client_on_hub(&hub, &source.id).await?;
    let mut outcomes = serde_json::Map::new();
    if !client.trusts(height) {
        let update = source.header_update(client.latest_height(), height).await?;
        let refused = hub
            .attempt(
                &key,
                HubMsg::UpdateClient {
                    chain: source.id.clone(),
                    update,
                }
                .into_message(),
            )
            .await?;
        if let Some(why) = refused {
            bail!(
                "the hub refused an honest client update to {} height {height}: {why}",
                source.id
            );
        }
    }
    let (_, genuine_proof) = source
        .prove(NAMESPACE, &member_keys::commitment(packet.sequence), height)
        .await?;

    // 1. The genuine proof with a tampered packet: more tokens, paid to the forger.
    let mut tampered = packet.clone();
    let Payload::Transfer(data) = &mut tampered.payload;
    data.amount = Amount(data.amount.0.saturating_mul(1000).max(1_000_000));
    data.receiver = me;
    let msg = HubMsg::RecvPacket {
        packet: tampered,
        proof_height: height,
        proof: genuine_proof.clone(),
    };
    outcomes.insert(
        "tampered_packet".into(),
        verdict(hub.attempt(&key, msg.into_message()).await?),
    );

    // 2. An invented sequence carried by another packet's proof.
    let mut invented = packet.clone();
    invented.sequence = packet.sequence.saturating_add(1_000_000);
    let msg = HubMsg::RecvPacket {
        packet: invented.clone(),
        proof_height: height,
        proof: genuine_proof.clone(),
    };
    outcomes.insert(
        "invented_sequence".into(),
        verdict(hub.attempt(&key, msg.into_message()).await?),
    );

    // 3. A proof that the invented packet's commitment is absent, passed off as proof of presence.
    let (absent, absence_proof) = source
        .prove(NAMESPACE, &member_keys::commitment(invented.sequence), height)
        .await?;
    if absent.is_some() {
        bail!(
            "sequence {} unexpectedly committed on {}",
            invented.sequence,
            source.id
        );
    }
    let msg = HubMsg::RecvPacket {
        packet: invented.clone(),
        proof_height: height,
        proof: absence_proof,
    };
    outcomes.insert(
        "absence_as_presence".into(),
        verdict(hub.attempt(&key, msg.into_message()).await?),
    );

    // 4. A header whose state root was swapped for one that would "prove" anything, with the real certificate.
    let client = client_on_hub(&hub, &source.id).await?;
    let mut next = source.tip().await?;
    while next <= client.latest_height() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        next = source.tip().await?;
    }
    let mut update = source.header_update(client.latest_height(), next).await?;
    update.header.state_root = causeway_light_client::Hash([0xAB; 32]);
    let msg = HubMsg::UpdateClient {
        chain: source.id.clone(),
        update,
    };
    outcomes.insert(
        "forged_header".into(),
        verdict(hub.attempt(&key, msg.into_message()).await?),
    );

    // 5. On the destination: a packet "forwarded by the hub" proven with a hub proof of another (real) key.
    let hub_client = client_of_hub(&destination).await?;
    let at = hub_client.latest_height();
    let (real, other_proof) = hub
        .prove(HUB_NAMESPACE, &hub_keys::client(&source.id), at)
        .await?;
    if real.is_none() {
        bail!("the hub had no client of {} at height {at}", source.id);
    }
    let mut forwarded = invented.clone();
    forwarded.destination = destination.id.clone();
    let msg = EndpointMsg::RecvPacket {
        packet: forwarded,
        proof_height: at,
        proof: other_proof,
    };
    outcomes.insert(
        "foreign_key_proof".into(),
        verdict(destination.attempt(&key, msg.into_message()).await?),
    );

    // 6. The packet relayed honestly (accepted unless an honest relayer was faster), then the very same message
    //    again under a new nonce: the hub must execute it at most once.
    let honest = HubMsg::RecvPacket {
        packet: packet.clone(),
        proof_height: height,
        proof: genuine_proof,
    };
    let first = hub.attempt(&key, honest.clone().into_message()).await?;
    let replay = hub.attempt(&key, honest.into_message()).await?;

    let forged = outcomes.len();
    let accepted = outcomes.values().filter(|v| v["accepted"] == true).count();
    Ok(json!({
        "packet": { "source": packet.source.to_string(), "sequence": packet.sequence, "proof_height": height },
        "forged": forged,
        "accepted": accepted,
        "rejected": forged - accepted,
        "attempts": outcomes,
        "honest_relay": verdict(first),
        "replay": verdict(replay),
    }))
}

fn verdict(refused: Option<String>) -> serde_json::Value {
    match refused {
        None => json!({ "accepted": true }),
        Some(why) => json!({ "accepted": false, "why": why }),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
