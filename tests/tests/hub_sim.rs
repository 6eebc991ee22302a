//! The alliance under adversarial relaying: a hub and three member chains, users making random transfers and
//! atomic (DvP) deals, and three relayers that drop, delay (reorder), duplicate and forge messages. After every
//! block of every chain: per-asset supply is conserved across chains, no once-only fact happened twice (a packet
//! received, forwarded, resolved; a decision taken or applied), no deal has both a committed and an aborted leg, and
//! every forged transaction was rejected. At the end, once an honest relayer has drained everything, every packet
//! is resolved, every deal is all-commit or all-abort, and escrow equals vouchers outstanding exactly.
//!
//! Deterministic: seeded ChaCha. `CAUSEWAY_SIM_SEEDS` (default 3) and `CAUSEWAY_SIM_ROUNDS` (default 50) scale it
//! (e.g. 20 seeds of 200 rounds: thousands of transfers and hundreds of deals).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use causeway_chain::message::{Amount, Denom};
use causeway_chain::xchain::types::{AtomicSpec, DenomTrace, Leg, Outcome};
use causeway_chain::xchain::EndpointMsg;
use causeway_light_client::{SecretKey, Suite};
use causeway_tests::alliance::{failed, Alliance, Job, Knowledge, Target, COIN};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Relayer {
    key: SecretKey,
    drop: f64,
    delay: f64,
    duplicate: f64,
    forge: f64,
    held: Vec<Job>,
}

#[derive(Debug, Default)]
struct Stats {
    sends: usize,
    packets: usize,
    delivered: usize,
    refunded: usize,
    deals: usize,
    committed: usize,
    aborted: usize,
    forged: usize,
    relayed: usize,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A prepare a payer will submit at `round`.
struct LaterPrepare {
    round: usize,
    member: usize,
    user: usize,
    spec: AtomicSpec,
    index: u32,
}

fn user_actions(
    a: &mut Alliance,
    rng: &mut ChaCha8Rng,
    round: usize,
    later: &mut Vec<LaterPrepare>,
    s: &mut Stats,
) {
    let coin = Denom::new(COIN).unwrap();
    let n = a.members.len();
    for _ in 0..rng.gen_range(1..=3) {
        let src = rng.gen_range(0..n);
        let mut dst = rng.gen_range(0..n - 1);
        if dst >= src {
            dst += 1;
        }
        let user = rng.gen_range(0..a.users.len());
        let key = a.users[user].clone();
        let receiver = a.users[rng.gen_range(0..a.users.len())].public_key().address();
        // A voucher going home (or, sometimes, the wrong way: refused at send), else the native coin.
        let denom = match rng.gen_range(0..10) {
            0..=2 => DenomTrace {
                home: a.members[dst].id(),
                base: coin.clone(),
            }
            .voucher_denom(),
            3 => {
                let third = (0..n).find(|i| *i != src && *i != dst).unwrap_or(dst);
                DenomTrace {
                    home: a.members[third].id(),
                    base: coin.clone(),
                }
                .voucher_denom()
            }
            _ => coin.clone(),
        };
        let held = a.members[src].balance(&denom, &key.public_key().address());
        let amount = if held > 0 && rng.gen_bool(0.8) {
            rng.gen_range(1..=held.min(5_000))
        } else {
            rng.gen_range(1..5_000)
        };
        let timeout = a.members[dst]
            .chain
            .next_time()
            .plus(std::time::Duration::from_secs(rng.gen_range(2..15)));
        let msg = EndpointMsg::SendTransfer {
            destination: a.members[dst].id(),
            denom,
            amount: Amount(amount),
            receiver,
            timeout_height: 0,
            timeout_time: timeout,
        };
        a.members[src].submit(&key, vec![msg.into_message()]);
        s.sends += 1;
    }
    if rng.gen_bool(0.35) {
        let legs_n = rng.gen_range(2..=n);
        let mut chains: Vec<usize> = (0..n).collect();
        chains.shuffle(rng);
        let legs: Vec<(usize, usize, Leg)> = chains[..legs_n]
            .iter()
            .map(|&m| {
                let from = rng.gen_range(0..a.users.len());
                let to = rng.gen_range(0..a.users.len());
                let leg = Leg {
                    chain: a.members[m].id(),
                    from: a.users[from].public_key().address(),
                    to: a.users[to].public_key().address(),
                    denom: coin.clone(),
                    amount: Amount(rng.gen_range(1..2_000)),
                };
                (m, from, leg)
            })
            .collect();
        let deadline = a
            .hub
            .chain
            .next_time()
            .plus(std::time::Duration::from_secs(rng.gen_range(3..10)));
        let spec = AtomicSpec {
            salt: rng.gen(),
            deadline,
            legs: legs.iter().map(|(_, _, l)| l.clone()).collect(),
        };
        s.deals += 1;
        for (index, (m, from, _)) in legs.into_iter().enumerate() {
            // Most payers prepare at once or a little later; some never do (the deal must then abort).
            if rng.gen_bool(0.9) {
                later.push(LaterPrepare {
                    round: round + rng.gen_range(0..4),
                    member: m,
                    user: from,
                    spec: spec.clone(),
                    index: index as u32,
                });
            }
        }
    }
}

fn run(seed: u64, rounds: usize) -> Stats {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = Alliance::new(3, 6);
    let mut k = Knowledge::default();
    let mut s = Stats::default();
    let relayer = |i: u8, drop, delay, duplicate, forge| Relayer {
        key: SecretKey::from_bytes(Suite::Ed25519, &[200 + i; 32]).unwrap(),
        drop,
        delay,
        duplicate,
        forge,
        held: vec![],
    };
    // A lossy duplicating relayer, a slow reordering one, and a liar that mostly forges.
    let mut relayers = [
        relayer(0, 0.5, 0.0, 0.3, 0.0),
        relayer(1, 0.3, 0.5, 0.1, 0.0),
        relayer(2, 0.3, 0.2, 0.0, 0.6),
    ];
    let mut later: Vec<LaterPrepare> = vec![];
    let drain_limit = 60;
    let mut finished = false;
    for round in 0..rounds + drain_limit {
        let draining = round >= rounds;
        if !draining {
            user_actions(&mut a, &mut rng, round, &mut later, &mut s);
        }
        let (due, rest): (Vec<_>, Vec<_>) = later.drain(..).partition(|p| p.round <= round);
        later = rest;
        for p in due {
            let key = a.users[p.user].clone();
            a.members[p.member].submit(
                &key,
                vec![EndpointMsg::PrepareLeg {
                    spec: p.spec.clone(),
                    index: p.index,
                }
                .into_message()],
            );
            k.specs.insert(p.spec.id(), p.spec);
        }

        let jobs = a.jobs(&k);
        let settled = || {
            jobs.is_empty()
                && later.is_empty()
                && k.packets.values().all(|p| !a.in_flight(p))
                && a.check_atomic(&k, true).is_ok()
        };
        if draining && settled() {
            finished = true;
            break;
        }
        let mut forged: Vec<(Target, usize)> = vec![];
        for (ri, r) in relayers.iter_mut().enumerate() {
            let mut mine = jobs.clone();
            mine.append(&mut r.held);
            mine.shuffle(&mut rng);
            // While draining, relayer 0 is honest and reliable: the liveness assumption.
            let reliable = draining && ri == 0;
            for job in mine {
                if !reliable && rng.gen_bool(r.drop) {
                    continue;
                }
                if !reliable && rng.gen_bool(r.delay) {
                    r.held.push(job);
                    continue;
                }
                if rng.gen_bool(r.forge) {
                    if let Some((t, msgs)) = a.forge(&job, &mut rng) {
                        let at = a.chain_mut(t).submit(&r.key, msgs);
                        forged.push((t, at));
                    }
                    continue;
                }
                let (t, msgs) = a.build(&job);
                a.chain_mut(t).submit(&r.key, msgs.clone());
                s.relayed += 1;
                if rng.gen_bool(r.duplicate) {
                    a.chain_mut(t).submit(&r.key, msgs);
                }
            }
        }

        // One chain at a time (in a shuffled order), checking the whole alliance after every block.
        let mut order: Vec<Target> = std::iter::once(Target::Hub)
            .chain((0..a.members.len()).map(Target::Member))
            .collect();
        order.shuffle(&mut rng);
        for t in order {
            let c = a.chain_mut(t).produce();
            k.observe(&a.chain(t).id(), &c.results);
            for (_, at) in forged.iter().filter(|(ft, _)| *ft == t) {
                let r = &c.results.txs[*at];
                assert!(
                    failed(r),
                    "seed {seed} round {round}: a forged transaction on {t:?} was accepted: {:?}",
                    r.events
                );
                s.forged += 1;
            }
            let repeated = k.repeated();
            assert!(
                repeated.is_empty(),
                "seed {seed} round {round}: once-only facts repeated: {repeated:?}"
            );
            a.check_supply(&k)
                .unwrap_or_else(|e| panic!("seed {seed} round {round} after {t:?}: supply: {e}"));
            a.check_atomic(&k, false)
                .unwrap_or_else(|e| panic!("seed {seed} round {round} after {t:?}: atomicity: {e}"));
        }
    }
    assert!(
        finished,
        "seed {seed}: the honest relayer did not drain everything: {:?}",
        a.jobs(&k)
    );
    a.check_atomic(&k, true)
        .unwrap_or_else(|e| panic!("seed {seed} at the end: atomicity: {e}"));
    for p in k.packets.values() {
        assert!(
            !a.in_flight(p),
            "seed {seed}: packet {}/{} never resolved",
            p.source,
            p.sequence
        );
    }
    a.check_supply(&k).unwrap();
    s.packets = k.packets.len();
    s.delivered = k.outcomes.values().filter(|o| !o.is_failure()).count();
    s.refunded = k.outcomes.values().filter(|o| o.is_failure()).count();
    for id in k.specs.keys() {
        match causeway_hub::decision(&a.hub.view(), id).unwrap() {
            Some(causeway_chain::xchain::types::Decision::Commit) => s.committed += 1,
            _ => s.aborted += 1,
        }
    }
    let timeouts = k
        .outcomes
        .values()
        .filter(|o| matches!(o, Outcome::TimedOut))
        .count();
    assert!(
        s.delivered > 0 && timeouts > 0 && s.committed > 0 && s.aborted > 0 && s.forged > 0,
        "seed {seed}: the run did not exercise every path: {s:?}, {timeouts} timeouts"
    );
    s
}

#[test]
fn alliance_survives_adversarial_relayers() {
    let seeds = env("CAUSEWAY_SIM_SEEDS", 3) as u64;
    let rounds = env("CAUSEWAY_SIM_ROUNDS", 50);
    for seed in 0..seeds {
        let s = run(seed, rounds);
        eprintln!("seed {seed}: {s:?}");
    }
}
