use super::*;
use causeway_chain::message::{Amount, Denom};
use causeway_chain::xchain::types::{DenomTrace, Leg, Payload, TransferData};
use causeway_light_client::Address;

fn id(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn packet(seq: u64, timeout_height: u64) -> Packet {
    Packet {
        source: id("alpha"),
        destination: id("beta"),
        sequence: seq,
        timeout_height,
        timeout_time: Time(0),
        payload: Payload::Transfer(TransferData {
            trace: DenomTrace {
                home: id("alpha"),
                base: Denom::new("gold").unwrap(),
            },
            amount: Amount(5),
            sender: Address([1; 20]),
            receiver: Address([2; 20]),
        }),
    }
}

fn ev(kind: &str, attrs: &[(&str, String)]) -> Event {
    Event {
        kind: kind.into(),
        attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    }
}

fn send(p: &Packet) -> Event {
    ev(
        "xchain.send",
        &[
            ("sequence", p.sequence.to_string()),
            ("packet", hex::encode(p.encode())),
        ],
    )
}

fn forward(p: &Packet) -> Event {
    forward_to(p, &p.destination)
}

fn forward_to(p: &Packet, to: &ChainId) -> Event {
    ev(
        "hub.forward",
        &[
            ("destination", to.to_string()),
            ("packet", hex::encode(p.encode())),
        ],
    )
}

fn beta() -> Arc<ChainId> {
    Arc::new(id("beta"))
}

fn recv(p: &Packet, ack: &Ack) -> Event {
    ev(
        "xchain.recv",
        &[
            ("source", p.source.to_string()),
            ("sequence", p.sequence.to_string()),
            ("ack", hex::encode(borsh::to_vec(ack).unwrap())),
        ],
    )
}

fn outcome(p: &Packet, o: &Outcome) -> Event {
    ev(
        "hub.outcome",
        &[
            ("outcome", hex::encode(borsh::to_vec(o).unwrap())),
            ("packet", hex::encode(p.encode())),
        ],
    )
}

fn resolved(p: &Packet) -> Event {
    ev("xchain.resolved", &[("sequence", p.sequence.to_string())])
}

fn all() -> BTreeSet<ChainId> {
    [id("hub"), id("alpha"), id("beta")].into_iter().collect()
}

fn tips(beta_height: u64) -> BTreeMap<ChainId, Tip> {
    [(
        id("beta"),
        Tip {
            height: beta_height,
            time: Time(0),
        },
    )]
    .into_iter()
    .collect()
}

#[test]
fn a_packet_moves_through_every_step_and_is_then_forgotten() {
    let p = packet(1, 100);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[send(&p)]).unwrap();
    assert_eq!(k.due(&tips(1), &all()), vec![Job::HubRecv(Arc::new(p.clone()))]);
    k.observe(&id("hub"), &[forward(&p)]).unwrap();
    assert_eq!(
        k.due(&tips(1), &all()),
        vec![Job::MemberRecv(Arc::new(p.clone()), beta())]
    );
    k.observe(&id("beta"), &[recv(&p, &Ack::Success)]).unwrap();
    assert_eq!(
        k.due(&tips(1), &all()),
        vec![Job::HubAck(Arc::new(p.clone()), Ack::Success, beta())]
    );
    let o = Outcome::Acknowledged(Ack::Success);
    k.observe(&id("hub"), &[outcome(&p, &o)]).unwrap();
    assert_eq!(
        k.due(&tips(1), &all()),
        vec![Job::Resolve(Arc::new(p.clone()), o)]
    );
    k.observe(&id("alpha"), &[resolved(&p)]).unwrap();
    assert!(k.due(&tips(1), &all()).is_empty());
    assert_eq!(k.packets_in_flight(), 0);
    assert_eq!(k.resolved(), 1);
}

#[test]
fn learning_chains_out_of_order_gives_the_same_plan() {
    // The relayer may read the destination before the hub: the receipt is known before the forward.
    let p = packet(7, 100);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("beta"), &[recv(&p, &Ack::Success)]).unwrap();
    assert!(
        k.due(&tips(1), &all()).is_empty(),
        "no packet body known yet: nothing to build"
    );
    k.observe(&id("hub"), &[forward(&p)]).unwrap();
    k.observe(&id("alpha"), &[send(&p)]).unwrap();
    assert_eq!(
        k.due(&tips(1), &all()),
        vec![Job::HubAck(Arc::new(p), Ack::Success, beta())]
    );
}

#[test]
fn a_packet_past_its_deadline_at_the_destination_is_timed_out_not_delivered() {
    let p = packet(2, 10);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[send(&p)]).unwrap();
    k.observe(&id("hub"), &[forward(&p)]).unwrap();
    assert_eq!(
        k.due(&tips(9), &all()),
        vec![Job::MemberRecv(Arc::new(p.clone()), beta())]
    );
    assert_eq!(
        k.due(&tips(10), &all()),
        vec![Job::HubTimeout(Arc::new(p), beta())]
    );
}

#[test]
fn a_packet_the_hub_routed_to_a_successor_is_delivered_and_proven_there() {
    // alpha's gold left alpha for "gamma" by a split: the hub forwards gold coming home to alpha to gamma.
    let mut p = packet(4, 10);
    (p.source, p.destination) = (id("beta"), id("alpha"));
    let gamma = Arc::new(id("gamma"));
    let every: BTreeSet<ChainId> = [id("hub"), id("alpha"), id("beta"), id("gamma")]
        .into_iter()
        .collect();
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("beta"), &[send(&p)]).unwrap();
    k.observe(&id("hub"), &[forward_to(&p, &gamma)]).unwrap();
    assert_eq!(
        k.due(&tips(9), &every),
        vec![Job::MemberRecv(Arc::new(p.clone()), gamma.clone())]
    );
    assert_eq!(
        Job::MemberRecv(Arc::new(p.clone()), gamma.clone()).target(&id("hub")),
        &*gamma
    );
    // The deadline is judged on gamma's chain, where the hub judges the timeout.
    let mut gamma_late = tips(9);
    gamma_late.insert(
        id("gamma"),
        Tip {
            height: 10,
            time: Time(0),
        },
    );
    assert_eq!(
        k.due(&gamma_late, &every),
        vec![Job::HubTimeout(Arc::new(p.clone()), gamma.clone())]
    );
    k.observe(&gamma, &[recv(&p, &Ack::Success)]).unwrap();
    let ack = Job::HubAck(Arc::new(p.clone()), Ack::Success, gamma.clone());
    assert_eq!(k.due(&tips(9), &every), vec![ack.clone()]);
    assert_eq!(ack.proven_chain(&id("hub")), Some(&*gamma));
    // A relayer that does not serve gamma leaves the delivery to others.
    let not_gamma: BTreeSet<ChainId> = [id("hub"), id("alpha"), id("beta")].into_iter().collect();
    assert!(k.due(&tips(9), &not_gamma).is_empty());
}

#[test]
fn packets_of_chains_not_served_are_left_alone() {
    let p = packet(3, 10);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[send(&p)]).unwrap();
    k.observe(&id("hub"), &[forward(&p)]).unwrap();
    let only_alpha: BTreeSet<ChainId> = [id("hub"), id("alpha")].into_iter().collect();
    assert!(k.due(&tips(1), &only_alpha).is_empty());
}

#[test]
fn malformed_events_are_errors_and_teach_nothing() {
    let mut k = Knowledge::new(id("hub"));
    let garbage = ev("xchain.send", &[("packet", "zz".into())]);
    assert!(k.observe(&id("alpha"), &[garbage]).is_err());
    let truncated = ev(
        "hub.forward",
        &[("packet", hex::encode(&packet(1, 5).encode()[..10]))],
    );
    assert!(k.observe(&id("hub"), &[truncated]).is_err());
    let spoofed = send(&packet(1, 5));
    assert!(
        k.observe(&id("beta"), &[spoofed]).is_err(),
        "beta cannot send alpha's packet"
    );
    assert_eq!(k.packets_in_flight(), 0);
}

fn spec(deadline: u64) -> AtomicSpec {
    let leg = |c: &str| Leg {
        chain: id(c),
        from: Address([3; 20]),
        to: Address([4; 20]),
        denom: Denom::new("cash").unwrap(),
        amount: Amount(9),
    };
    AtomicSpec {
        salt: 1,
        deadline: Time(deadline),
        legs: vec![leg("alpha"), leg("beta")],
    }
}

fn prepared(s: &AtomicSpec, i: u32) -> Event {
    ev(
        "xchain.leg_prepared",
        &[
            ("id", s.id().to_hex()),
            ("index", i.to_string()),
            ("spec", hex::encode(s.encode())),
        ],
    )
}

fn hub_tip(time: u64) -> BTreeMap<ChainId, Tip> {
    [(
        id("hub"),
        Tip {
            height: 1,
            time: Time(time),
        },
    )]
    .into_iter()
    .collect()
}

#[test]
fn a_deal_is_proven_leg_by_leg_then_applied_everywhere_then_forgotten() {
    let s = spec(1_000);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[prepared(&s, 0)]).unwrap();
    assert_eq!(k.due(&hub_tip(5), &all()), vec![Job::ProvePrepare(s.clone(), 0)]);
    let proven = |i: u32| {
        ev(
            "hub.leg_proven",
            &[("id", s.id().to_hex()), ("index", i.to_string())],
        )
    };
    k.observe(&id("hub"), &[proven(0)]).unwrap();
    k.observe(&id("beta"), &[prepared(&s, 1)]).unwrap();
    assert_eq!(k.due(&hub_tip(5), &all()), vec![Job::ProvePrepare(s.clone(), 1)]);
    let decided = ev(
        "hub.atomic_decided",
        &[("id", s.id().to_hex()), ("decision", "Commit".into())],
    );
    k.observe(&id("hub"), &[proven(1), decided]).unwrap();
    assert_eq!(
        k.due(&hub_tip(5), &all()),
        vec![
            Job::ApplyDecision(s.clone(), 0, Decision::Commit),
            Job::ApplyDecision(s.clone(), 1, Decision::Commit)
        ]
    );
    let applied = |i: u32| {
        ev(
            "xchain.leg_decided",
            &[("id", s.id().to_hex()), ("index", i.to_string())],
        )
    };
    k.observe(&id("alpha"), &[applied(0)]).unwrap();
    assert_eq!(
        k.due(&hub_tip(5), &all()),
        vec![Job::ApplyDecision(s.clone(), 1, Decision::Commit)]
    );
    k.observe(&id("beta"), &[applied(1)]).unwrap();
    assert!(k.due(&hub_tip(5), &all()).is_empty());
    assert_eq!(k.deals_in_flight(), 0);
}

#[test]
fn an_undecided_deal_past_its_deadline_is_aborted() {
    let s = spec(100);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[prepared(&s, 0)]).unwrap();
    assert_eq!(k.due(&hub_tip(99), &all()), vec![Job::ProvePrepare(s.clone(), 0)]);
    assert_eq!(k.due(&hub_tip(100), &all()), vec![Job::AbortExpired(s.clone())]);
    let bad = ev(
        "hub.atomic_decided",
        &[("id", s.id().to_hex()), ("decision", "Maybe".into())],
    );
    assert!(k.observe(&id("hub"), &[bad]).is_err());
}

fn record() -> RecordRequest {
    RecordRequest {
        chain: id("alpha"),
        height: 4,
        namespace: Namespace::new("docs").unwrap(),
        key: "k".into(),
        verifier: id("beta"),
    }
}

#[test]
fn records_are_attested_then_verified() {
    let r = record();
    let mut k = Knowledge::new(id("hub"));
    k.request_record(r.clone());
    k.request_record(r.clone());
    assert_eq!(k.due(&hub_tip(1), &all()), vec![Job::Attest(r.clone())]);
    k.record_attested(&r, Bytes(vec![1]));
    assert_eq!(
        k.due(&hub_tip(1), &all()),
        vec![Job::Verify(r.clone(), Bytes(vec![1]))]
    );
    k.record_verified(&r);
    assert!(k.due(&hub_tip(1), &all()).is_empty());
}

#[test]
fn older_events_read_after_the_resolution_do_not_bring_a_packet_back() {
    // A restarted relayer reads the source (with the resolution) before the hub and the destination.
    let (p, q) = (packet(1, 100), packet(2, 100));
    let o = Outcome::Acknowledged(Ack::Success);
    let mut k = Knowledge::new(id("hub"));
    k.observe(&id("alpha"), &[send(&p), send(&q), resolved(&p)])
        .unwrap();
    k.observe(&id("beta"), &[recv(&p, &Ack::Success), recv(&q, &Ack::Success)])
        .unwrap();
    k.observe(&id("hub"), &[forward(&p), outcome(&p, &o), forward(&q)])
        .unwrap();
    assert_eq!(
        k.due(&tips(1), &all()),
        vec![Job::HubAck(Arc::new(q.clone()), Ack::Success, beta())]
    );
    assert_eq!(k.packets_in_flight(), 1);
    // Resolutions out of order are remembered compactly.
    k.observe(&id("hub"), &[outcome(&q, &o)]).unwrap();
    k.observe(&id("alpha"), &[resolved(&q)]).unwrap();
    k.observe(&id("hub"), &[forward(&q)]).unwrap();
    assert!(k.due(&tips(1), &all()).is_empty());
    assert_eq!(k.packets_in_flight(), 0);
}

#[test]
fn job_keys_tell_steps_and_subjects_apart_and_ignore_the_rest() {
    let (p, q) = (packet(1, 100), packet(2, 100));
    let o = Outcome::Acknowledged(Ack::Success);
    let s = spec(100);
    let r = record();
    let jobs = vec![
        Job::HubRecv(Arc::new(p.clone())),
        Job::MemberRecv(Arc::new(p.clone()), beta()),
        Job::HubAck(Arc::new(p.clone()), Ack::Success, beta()),
        Job::HubTimeout(Arc::new(p.clone()), beta()),
        Job::Resolve(Arc::new(p.clone()), o.clone()),
        Job::HubRecv(Arc::new(q.clone())),
        Job::Resolve(Arc::new(q.clone()), o),
        Job::ProvePrepare(s.clone(), 0),
        Job::ProvePrepare(s.clone(), 1),
        Job::AbortExpired(s.clone()),
        Job::ApplyDecision(s.clone(), 0, Decision::Commit),
        Job::Attest(r.clone()),
        Job::Verify(r.clone(), Bytes(vec![1])),
    ];
    let keys: BTreeSet<JobKey> = jobs.iter().map(Job::key).collect();
    assert_eq!(
        keys.len(),
        jobs.len(),
        "every step of every subject has its own key"
    );
    // The same step of the same packet is the same job, whatever else the job carries.
    let mut later = p.clone();
    later.payload = q.payload.clone();
    assert_eq!(
        Job::HubRecv(Arc::new(p.clone())).key(),
        Job::HubRecv(Arc::new(later)).key()
    );
    assert_eq!(
        Job::HubAck(Arc::new(p.clone()), Ack::Success, beta()).key(),
        Job::HubAck(Arc::new(p), Ack::Error("x".into()), beta()).key()
    );
    assert_eq!(
        Job::Verify(r.clone(), Bytes(vec![1])).key(),
        Job::Verify(r, Bytes(vec![2])).key()
    );
}
