//! Property tests: decoders never panic on arbitrary bytes, and the BFT extraData codec round-trips.

use alloy_primitives::Address;
use causeway_adapters::ethereum::extra::{encode_bft_extra, BftExtra, BftFamily, Vote, SEAL_LEN};
use causeway_adapters::ethereum::parse::{header_from_rlp, headers_from_block_stream};
use causeway_adapters::ethereum::{BesuClient, BesuHeader, BesuMisbehaviour, EthStateProof};
use causeway_adapters::tendermint::{Ics23Proof, TendermintClient, TendermintHeader, TendermintMisbehaviour};
use causeway_light_client::Canonical;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // With and without the version byte, so the bodies are reached too.
        let versioned = [&[1u8][..], &bytes].concat();
        for b in [&bytes, &versioned] {
            let _ = TendermintClient::decode(b);
            let _ = TendermintHeader::decode(b);
            let _ = TendermintMisbehaviour::decode(b);
            let _ = <Ics23Proof as Canonical>::decode(b);
            let _ = BesuClient::decode(b);
            let _ = BesuHeader::decode(b);
            let _ = BesuMisbehaviour::decode(b);
            let _ = EthStateProof::decode(b);
            let _ = Ics23Proof::from_protobuf(b);
            let _ = header_from_rlp(b);
            let _ = headers_from_block_stream(b);
            for family in [BftFamily::Qbft, BftFamily::Ibft2, BftFamily::Ibft1] {
                let _ = BftExtra::decode(family, b);
            }
        }
    }

    #[test]
    fn bft_extra_round_trips(
        qbft in any::<bool>(),
        vanity in any::<[u8; 32]>(),
        seeds in proptest::collection::btree_set(any::<u8>(), 1..12),
        vote in proptest::option::of((any::<u8>(), any::<bool>())),
        round in any::<u32>(),
        seal_bytes in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let family = if qbft { BftFamily::Qbft } else { BftFamily::Ibft2 };
        let validators: Vec<Address> = seeds.iter().map(|s| Address::repeat_byte(*s)).collect();
        let vote = vote.map(|(r, add)| Vote { recipient: Address::repeat_byte(r), add });
        let seals: Vec<[u8; SEAL_LEN]> = seal_bytes.iter().map(|b| [*b; SEAL_LEN]).collect();
        let raw = encode_bft_extra(family, &vanity, &validators, vote, round, &seals).expect("encodes");
        let e = BftExtra::decode(family, &raw).expect("decodes");
        prop_assert_eq!(e.validators, validators);
        prop_assert_eq!(e.vote, vote);
        prop_assert_eq!(e.round, round);
        prop_assert_eq!(e.committed_seals, seals);
        prop_assert_eq!(e.vanity, vanity.to_vec());
    }
}
