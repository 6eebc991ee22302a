//! Besu headers: the recorded IBFT 1.0 chain (blocks 0–100) and the IBFT 2.0 hash vector, then generated QBFT
//! and IBFT 2.0 chains with validator votes, each corrupted in every way a light client must notice.

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, Bytes, B256, B64};
use causeway_adapters::ethereum::bft::verify_bft_header;
use causeway_adapters::ethereum::extra::{encode_bft_extra, BftExtra, BftFamily, Seal, Vote};
use causeway_adapters::ethereum::parse::{genesis_from_json, header_from_json, headers_from_block_stream};
use causeway_adapters::ethereum::{BesuClient, BesuHeader, BesuMisbehaviour, BesuParams, EthError};
use causeway_adapters::source::{HeaderSource, RecordedBesu};
use causeway_light_client::{Canonical, ClientStatus, LightClient, Time};
use k256::ecdsa::SigningKey;
use serde_json::Value;

use super::fixtures;
use super::tendermint_generated::ready;

// ---------------------------------------------------------------------------------------------------------------
// Recorded data

fn ibft_chain() -> Option<Vec<Header>> {
    let bytes = fixtures::bytes("ethereum/ibft/ibft.blocks")?;
    Some(headers_from_block_stream(&bytes).expect("ibft.blocks decodes"))
}

fn ibft_params() -> Option<BesuParams> {
    let genesis = genesis_from_json(
        &fixtures::text("ethereum/ibft/ibft-genesis.json")?,
        BftFamily::Ibft1,
    )
    .expect("genesis parses");
    // The recorded chain is years old: a trusting period of ten years keeps its genesis usable as the anchor.
    Some(BesuParams {
        trusting_period_secs: 10 * 365 * 24 * 3600,
        ..BesuParams::new(BftFamily::Ibft1, genesis.epoch_length)
    })
}

fn genesis_validators(h: &Header) -> Vec<Address> {
    BftExtra::decode(BftFamily::Ibft1, &h.extra_data)
        .expect("genesis extra")
        .validators
}

fn now_after(h: &Header) -> Time {
    Time::from_secs(h.timestamp + 1)
}

#[test]
fn recorded_ibft_chain_verifies_block_by_block() {
    let (Some(chain), Some(params)) = (ibft_chain(), ibft_params()) else {
        return;
    };
    assert_eq!(chain.len(), 101, "blocks 0..=100");
    let genesis = genesis_from_json(
        &fixtures::text("ethereum/ibft/ibft-genesis.json").expect("genesis"),
        BftFamily::Ibft1,
    )
    .expect("genesis");
    genesis.matches(&chain[0]).expect("block 0 is the genesis file's");
    assert_eq!(genesis.epoch_length, 1000);

    let validators = genesis_validators(&chain[0]);
    assert_eq!(validators.len(), 5);
    let mut client = BesuClient::new("ibft-1337", &chain[0], &validators, params).expect("client");
    let now = now_after(&chain[100]);
    for h in &chain[1..] {
        let out = client
            .verify_header(BesuHeader(h.clone()), now)
            .unwrap_or_else(|e| panic!("block {}: {e}", h.number));
        assert_eq!(out.consensus_state.root, h.state_root.to_vec());
    }
    assert_eq!(client.latest_height(), 100);
    // Every recorded hash is the parent hash the next block carries: the IBFT 1.0 hash rule is reproduced.
    for pair in chain[1..].windows(2) {
        assert_eq!(
            client.recorded(pair[0].number).expect("recorded").hash,
            pair[1].parent_hash
        );
    }
    // Each block was sealed by at least the quorum of 4 of 5 validators.
    let v = verify_bft_header(BftFamily::Ibft1, &chain[57], &validators).expect("block 57");
    assert!(v.signers.len() >= 4);
    // Resubmitting a verified block changes nothing; the client survives both encodings.
    client
        .verify_header(BesuHeader(chain[42].clone()), now)
        .expect("idempotent");
    assert_eq!(BesuClient::decode(&client.encode()).expect("binary"), client);
    let json = serde_json::to_string(&client).expect("json");
    assert_eq!(
        serde_json::from_str::<BesuClient>(&json).expect("from json"),
        client
    );
}

/// Flip one bit of `extra_data` at `at`.
fn with_extra_bit_flipped(h: &Header, at: usize) -> Header {
    let mut extra = h.extra_data.to_vec();
    extra[at] ^= 1;
    Header {
        extra_data: Bytes::from(extra),
        ..h.clone()
    }
}

/// Offsets in an IBFT 1.0 extraData of: the proposer seal's first byte, the first committed seal's first byte.
fn ibft1_seal_offsets(extra: &[u8]) -> (usize, usize) {
    let e = BftExtra::decode(BftFamily::Ibft1, extra).expect("extra");
    let find = |needle: &[u8]| {
        extra
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("seal bytes present")
    };
    (
        find(&e.proposer_seal.expect("proposer seal")),
        find(&e.committed_seals[0]),
    )
}

#[test]
fn recorded_ibft_blocks_with_one_flipped_byte_are_rejected() {
    let (Some(chain), Some(params)) = (ibft_chain(), ibft_params()) else {
        return;
    };
    let validators = genesis_validators(&chain[0]);
    for n in [1usize, 37, 100] {
        let good = &chain[n];
        let set = &validators;
        verify_bft_header(BftFamily::Ibft1, good, set).expect("untouched block verifies");
        let (proposer_at, committed_at) = ibft1_seal_offsets(&good.extra_data);
        let bad: Vec<(&str, Header)> = vec![
            (
                "committed seal byte",
                with_extra_bit_flipped(good, committed_at + 5),
            ),
            (
                "proposer seal byte",
                with_extra_bit_flipped(good, proposer_at + 5),
            ),
            ("vanity byte", with_extra_bit_flipped(good, 3)),
            (
                "state root",
                Header {
                    state_root: flip(good.state_root),
                    ..good.clone()
                },
            ),
            (
                "receipts root",
                Header {
                    receipts_root: flip(good.receipts_root),
                    ..good.clone()
                },
            ),
            (
                "timestamp",
                Header {
                    timestamp: good.timestamp + 1,
                    ..good.clone()
                },
            ),
            (
                "gas used",
                Header {
                    gas_used: good.gas_used ^ 1,
                    ..good.clone()
                },
            ),
        ];
        for (what, h) in bad {
            assert!(
                verify_bft_header(BftFamily::Ibft1, &h, set).is_err(),
                "block {n}: a changed {what} was accepted"
            );
        }
    }
    // Through the client: a tampered block 1 is refused and leaves the client where it was.
    let mut client = BesuClient::new("ibft-1337", &chain[0], &validators, params).expect("client");
    let bad = Header {
        state_root: flip(chain[1].state_root),
        ..chain[1].clone()
    };
    assert!(client
        .verify_header(BesuHeader(bad), now_after(&chain[1]))
        .is_err());
    assert_eq!(client.latest_height(), 0);
    // Skipping a block is refused: BFT headers are followed one by one.
    let skipped = client.verify_header(BesuHeader(chain[2].clone()), now_after(&chain[2]));
    assert!(matches!(skipped, Err(EthError::NotSequential(_))), "{skipped:?}");
    // A wrong validator set does not recover the seals' signers.
    let strangers: Vec<Address> = (1..=5).map(Address::repeat_byte).collect();
    assert!(matches!(
        verify_bft_header(BftFamily::Ibft1, &chain[1], &strangers),
        Err(EthError::NotAValidator(_))
    ));
}

fn flip(h: B256) -> B256 {
    let mut b = h;
    b.0[7] ^= 1;
    b
}

#[test]
fn ibft2_hash_vector_is_reproduced() {
    let Some(text) = fixtures::text("ethereum/ibft/ibft2_header_hash.json") else {
        return;
    };
    let doc: Value = serde_json::from_str(&text).expect("json");
    let case = &doc["hash_of_qbft_block_header"];
    let (header, _) = header_from_json(&case["qbft_block_header"].to_string()).expect("header parses");
    let want_hash: B256 = case["on_chain_hash"]
        .as_str()
        .expect("hash")
        .parse()
        .expect("hex");
    let want_seal: B256 = case["committed_seal_hash"]
        .as_str()
        .expect("hash")
        .parse()
        .expect("hex");
    let extra = BftExtra::decode(BftFamily::Ibft2, &header.extra_data).expect("IBFT 2.0 extra");
    assert_eq!(extra.round, 0x00fe_dcba);
    assert_eq!(
        extra.vote,
        Some(Vote {
            recipient: Address::with_last_byte(3),
            add: true
        })
    );
    assert_eq!(extra.committed_seals.len(), 4);
    assert_eq!(extra.block_hash(&header), want_hash, "on-chain hash");
    assert_eq!(
        extra.committed_seal_digest(&header),
        want_seal,
        "committed-seal hash"
    );
    // The QBFT reading of the same bytes is refused (a 4-byte round with leading zero is not a QBFT integer).
    assert!(BftExtra::decode(BftFamily::Qbft, &header.extra_data).is_err());
    // Any field change moves both hashes; a seal change moves neither (seals are outside both).
    let changed = Header {
        gas_limit: header.gas_limit + 1,
        ..header.clone()
    };
    assert_ne!(extra.block_hash(&changed), want_hash);
    assert_ne!(extra.committed_seal_digest(&changed), want_seal);
    let n = header.extra_data.len();
    let reseal = with_extra_bit_flipped(&header, n - 10);
    let e2 = BftExtra::decode(BftFamily::Ibft2, &reseal.extra_data).expect("still decodes");
    assert_eq!(e2.block_hash(&reseal), want_hash);
    assert_eq!(e2.committed_seal_digest(&reseal), want_seal);
}

// ---------------------------------------------------------------------------------------------------------------
// Generated chains

struct Validator {
    key: SigningKey,
    address: Address,
}

fn validator(seed: u8) -> Validator {
    let key = SigningKey::from_slice(&keccak256([seed]).0).expect("key");
    let point = key.verifying_key().to_encoded_point(false);
    let address = Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..]);
    Validator { key, address }
}

fn seal(key: &SigningKey, digest: B256) -> Seal {
    let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice()).expect("sign");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = recid.to_byte();
    out
}

/// Besu's BFT mix hash ("ctical byzantine fault tolerance").
const BFT_MIX_HASH: B256 =
    alloy_primitives::b256!("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365");

fn sorted(vals: &[&Validator]) -> Vec<Address> {
    let mut a: Vec<Address> = vals.iter().map(|v| v.address).collect();
    a.sort();
    a
}

/// A block at `number` on top of `parent_hash`, listing `listed`, proposed by `proposer`, sealed by `sealers`.
#[allow(clippy::too_many_arguments)]
fn block(
    family: BftFamily,
    number: u64,
    parent_hash: B256,
    listed: &[Address],
    proposer: Address,
    vote: Option<Vote>,
    round: u32,
    sealers: &[&SigningKey],
) -> Header {
    let unsealed = encode_bft_extra(family, &[7; 32], listed, vote, round, &[]).expect("extra");
    let mut header = Header {
        parent_hash,
        beneficiary: proposer,
        state_root: keccak256(number.to_be_bytes()),
        difficulty: alloy_primitives::U256::from(1),
        number,
        gas_limit: 30_000_000,
        timestamp: 1_700_000_000 + number * 2,
        extra_data: Bytes::from(unsealed),
        mix_hash: BFT_MIX_HASH,
        nonce: B64::ZERO,
        ..Header::default()
    };
    let digest = BftExtra::decode(family, &header.extra_data)
        .expect("extra")
        .committed_seal_digest(&header);
    let seals: Vec<Seal> = sealers.iter().map(|k| seal(k, digest)).collect();
    header.extra_data =
        Bytes::from(encode_bft_extra(family, &[7; 32], listed, vote, round, &seals).expect("extra"));
    header
}

fn hash_of(family: BftFamily, h: &Header) -> B256 {
    BftExtra::decode(family, &h.extra_data)
        .expect("extra")
        .block_hash(h)
}

/// Four validators; blocks 1–3 carry votes to add a fifth, which passes at block 3 (3 of 4); from block 4 on the
/// five must seal (quorum 4) and are listed. Epoch length 6: block 6 carries a vote that must be ignored.
struct Generated {
    family: BftFamily,
    vals: Vec<Validator>,
    chain: Vec<Header>,
}

fn generate(family: BftFamily) -> Generated {
    let vals: Vec<Validator> = (1..=5).map(validator).collect();
    let four: Vec<&Validator> = vals[..4].iter().collect();
    let five: Vec<&Validator> = vals.iter().collect();
    let add5 = Vote {
        recipient: vals[4].address,
        add: true,
    };
    let genesis = block(family, 0, B256::ZERO, &sorted(&four), Address::ZERO, None, 0, &[]);
    let mut chain = vec![genesis];
    for n in 1..=8u64 {
        let parent = hash_of(family, chain.last().expect("parent"));
        let (listed, signers): (Vec<Address>, Vec<&Validator>) = if n <= 3 {
            (sorted(&four), four.clone())
        } else {
            (sorted(&five), five.clone())
        };
        let proposer = signers[(n as usize) % signers.len()];
        let vote = match n {
            1..=3 => Some(Vote {
                recipient: add5.recipient,
                add: true,
            }),
            6 => Some(Vote {
                recipient: vals[0].address,
                add: false,
            }),
            _ => None,
        };
        // Blocks 1–3 are proposed by three different validators so their votes count separately.
        let proposer = if n <= 3 { four[(n - 1) as usize] } else { proposer };
        let keys: Vec<&SigningKey> = signers.iter().map(|v| &v.key).collect();
        let round = u32::from(n == 5); // one block decided in round 1
        chain.push(block(
            family,
            n,
            parent,
            &listed,
            proposer.address,
            vote,
            round,
            &keys,
        ));
    }
    Generated { family, vals, chain }
}

fn params(family: BftFamily) -> BesuParams {
    BesuParams {
        epoch_length: 6,
        ..BesuParams::new(family, 6)
    }
}

fn client_of(g: &Generated) -> BesuClient {
    let four: Vec<&Validator> = g.vals[..4].iter().collect();
    BesuClient::new("besu-test", &g.chain[0], &sorted(&four), params(g.family)).expect("client")
}

fn now(g: &Generated) -> Time {
    now_after(g.chain.last().expect("tip"))
}

#[test]
fn a_relayer_loop_over_a_recorded_source_follows_the_chain() {
    let g = generate(BftFamily::Qbft);
    let source = RecordedBesu::new(g.chain.clone());
    let mut client = client_of(&g);
    let tip = ready(source.latest_height()).expect("latest");
    while client.latest_height() < tip {
        let next = client.latest_height() + 1;
        let update = ready(source.update(next, client.latest_height())).expect("update");
        client.verify_header(update, now(&g)).expect("next block");
    }
    assert_eq!(client.latest_height(), 8);
}

#[test]
fn generated_chains_follow_votes_and_epochs() {
    for family in [BftFamily::Qbft, BftFamily::Ibft2] {
        let g = generate(family);
        let mut client = client_of(&g);
        for h in &g.chain[1..] {
            client
                .verify_header(BesuHeader(h.clone()), now(&g))
                .unwrap_or_else(|e| panic!("{family:?} block {}: {e}", h.number));
        }
        assert_eq!(client.latest_height(), 8);
        let five: Vec<&Validator> = g.vals.iter().collect();
        assert_eq!(
            client.chain_state().validators,
            sorted(&five),
            "{family:?}: the vote at block 6 was ignored"
        );
        assert_eq!(
            client.chain_state().tally.pending(),
            0,
            "{family:?}: the epoch block cleared the tally"
        );
        // Round 1 at block 5 is part of the seal digest but not of the block hash.
        assert_eq!(client.recorded(5).expect("block 5").hash, g.chain[6].parent_hash);
    }
}

/// Replace the seals of `h` with seals by `keys` over its own digest.
fn resealed(family: BftFamily, h: &Header, keys: &[&SigningKey], listed: Option<&[Address]>) -> Header {
    let e = BftExtra::decode(family, &h.extra_data).expect("extra");
    let listed = listed.unwrap_or(&e.validators).to_vec();
    let vanity: [u8; 32] = e.vanity.as_slice().try_into().expect("vanity");
    let unsealed = encode_bft_extra(family, &vanity, &listed, e.vote, e.round, &[]).expect("extra");
    let mut header = Header {
        extra_data: Bytes::from(unsealed),
        ..h.clone()
    };
    let digest = BftExtra::decode(family, &header.extra_data)
        .expect("extra")
        .committed_seal_digest(&header);
    let seals: Vec<Seal> = keys.iter().map(|k| seal(k, digest)).collect();
    header.extra_data =
        Bytes::from(encode_bft_extra(family, &vanity, &listed, e.vote, e.round, &seals).expect("x"));
    header
}

/// A corrupted block, and the rejection reasons that fit it.
type Case = (&'static str, Header, fn(&EthError) -> bool);

#[test]
fn generated_blocks_corrupted_are_rejected_with_the_reason() {
    for family in [BftFamily::Qbft, BftFamily::Ibft2] {
        let g = generate(family);
        let mut client = client_of(&g);
        for h in &g.chain[1..=4] {
            client
                .verify_header(BesuHeader(h.clone()), now(&g))
                .expect("prefix verifies");
        }
        let next = &g.chain[5]; // sealed by all five, quorum 4
        let k: Vec<&SigningKey> = g.vals.iter().map(|v| &v.key).collect();
        let outsider = validator(99);
        let cases: Vec<Case> = vec![
            (
                "three seals of five",
                resealed(family, next, &k[..3], None),
                |e| matches!(e, EthError::NoQuorum { .. }),
            ),
            (
                "a repeated seal",
                resealed(family, next, &[k[0], k[1], k[2], k[0]], None),
                |e| matches!(e, EthError::DuplicateSeal(_)),
            ),
            (
                "an outsider's seal",
                resealed(family, next, &[k[0], k[1], k[2], &outsider.key], None),
                |e| matches!(e, EthError::NotAValidator(_)),
            ),
            ("a seal byte", flip_last_seal_byte(next), |e| {
                matches!(e, EthError::NotAValidator(_) | EthError::BadSignature(_))
            }),
            (
                "the state root",
                Header {
                    state_root: flip(next.state_root),
                    ..next.clone()
                },
                |e| matches!(e, EthError::NotAValidator(_) | EthError::BadSignature(_)),
            ),
            (
                "the parent hash",
                Header {
                    parent_hash: flip(next.parent_hash),
                    ..next.clone()
                },
                |e| matches!(e, EthError::HashMismatch(_)),
            ),
            (
                "the number",
                Header {
                    number: 6,
                    ..next.clone()
                },
                |e| matches!(e, EthError::NotSequential(_)),
            ),
            (
                "the validator list",
                resealed(
                    family,
                    next,
                    &k,
                    Some(&sorted(&g.vals[..4].iter().collect::<Vec<_>>())),
                ),
                |e| matches!(e, EthError::NoQuorum { .. } | EthError::ValidatorMismatch { .. }),
            ),
            (
                "a stranger as proposer",
                Header {
                    beneficiary: outsider.address,
                    ..next.clone()
                },
                |e| matches!(e, EthError::NotAValidator(_) | EthError::BadSignature(_)),
            ),
        ];
        for (what, bad, expected) in cases {
            let err = client
                .clone()
                .verify_header(BesuHeader(bad), now(&g))
                .expect_err(what);
            assert!(
                expected(&err),
                "{family:?}: a changed {what} was rejected for the wrong reason: {err}"
            );
        }
        // Validly resealed but with the proposer outside the set: only the proposer rule catches it.
        let stranger_proposed = Header {
            beneficiary: outsider.address,
            ..next.clone()
        };
        let resealed_stranger = resealed(family, &stranger_proposed, &k, None);
        let err = client
            .clone()
            .verify_header(BesuHeader(resealed_stranger), now(&g))
            .expect_err("proposer");
        assert!(matches!(err, EthError::BadProposer(_)), "{err}");
        // A block from the future is refused.
        let early = Time::from_secs(next.timestamp - 100);
        assert!(client
            .clone()
            .verify_header(BesuHeader(next.clone()), early)
            .is_err());
        // None of this moved the client.
        assert_eq!(client.latest_height(), 4);
        client
            .verify_header(BesuHeader(next.clone()), now(&g))
            .expect("the real block 5 still verifies");
    }
}

fn flip_last_seal_byte(h: &Header) -> Header {
    // The last seal ends 1 byte (v) before the end of extraData; flip a byte inside its s value.
    with_extra_bit_flipped(h, h.extra_data.len() - 3)
}

#[test]
fn conflicting_sealed_blocks_freeze_the_client() {
    for family in [BftFamily::Qbft, BftFamily::Ibft2] {
        let g = generate(family);
        let four: Vec<&SigningKey> = g.vals[..4].iter().map(|v| &v.key).collect();
        let mut client = client_of(&g);
        client
            .verify_header(BesuHeader(g.chain[1].clone()), now(&g))
            .expect("block 1");
        // A second block 1 with another state root, sealed by the same quorum.
        let fork = resealed(
            family,
            &Header {
                state_root: B256::repeat_byte(9),
                ..g.chain[1].clone()
            },
            &four,
            None,
        );
        // Identical headers are no evidence.
        let same = BesuMisbehaviour {
            header1: BesuHeader(g.chain[1].clone()),
            header2: BesuHeader(g.chain[1].clone()),
        };
        assert_eq!(client.clone().check_misbehaviour(same, now(&g)), Ok(false));
        // A fork sealed by too few is not evidence either.
        let weak = resealed(family, &fork, &four[..2], None);
        let weak_ev = BesuMisbehaviour {
            header1: BesuHeader(g.chain[1].clone()),
            header2: BesuHeader(weak),
        };
        assert!(client.clone().check_misbehaviour(weak_ev, now(&g)).is_err());
        // Evidence survives the binary encoding.
        let ev = BesuMisbehaviour {
            header1: BesuHeader(g.chain[1].clone()),
            header2: BesuHeader(fork.clone()),
        };
        let ev = BesuMisbehaviour::decode(&ev.encode()).expect("evidence round trip");
        let mut frozen = client.clone();
        assert_eq!(frozen.check_misbehaviour(ev, now(&g)), Ok(true));
        assert_eq!(frozen.status(now(&g)), ClientStatus::Frozen);
        assert_eq!(
            frozen.verify_header(BesuHeader(g.chain[2].clone()), now(&g)),
            Err(EthError::Frozen)
        );
        // Submitting the fork as an update freezes the client the same way.
        let r = client.verify_header(BesuHeader(fork), now(&g));
        assert_eq!(r, Err(EthError::Misbehaviour(1)));
        assert_eq!(client.status(now(&g)), ClientStatus::Frozen);
    }
}

#[test]
fn registration_checks_the_expected_validators_and_decoding_is_bounded() {
    let g = generate(BftFamily::Qbft);
    let wrong: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
    assert!(matches!(
        BesuClient::new("besu-test", &g.chain[0], &wrong, params(BftFamily::Qbft)),
        Err(EthError::ValidatorMismatch { .. })
    ));
    // The wrong family for the extraData layout is refused at registration.
    let four: Vec<&Validator> = g.vals[..4].iter().collect();
    assert!(BesuClient::new("besu-test", &g.chain[0], &sorted(&four), params(BftFamily::Ibft2)).is_err());
    // Encoded states and headers refuse truncation, trailing bytes and oversize input.
    let client = client_of(&g);
    let bytes = client.encode();
    assert!(BesuClient::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(BesuClient::decode(&longer).is_err());
    let header = BesuHeader(g.chain[3].clone());
    assert_eq!(
        BesuHeader::decode(&header.encode()).expect("header round trip"),
        header
    );
    assert!(BesuHeader::decode(&vec![1u8; BesuHeader::MAX_LEN + 1]).is_err());
}
