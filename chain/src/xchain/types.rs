//! The cross-chain protocol's shared vocabulary: packets, acknowledgements, outcomes, asset traces, atomic
//! transaction specs, and where each side keeps what the other side proves.
//!
//! Both the member endpoint ([`super`]) and the hub (`causeway-hub`) use these types, so a commitment written by
//! one side is recomputed bit for bit by the other. Protocol commitments are always SHA-256 over a domain tag and
//! the value's canonical encoding, whatever hash function a chain uses for its own headers and state: the hub and
//! members with different suites agree on them without negotiating.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{
    Address, Canonical, ChainId, CodecError, Hash, HashAlg, Namespace, StatePath, Time,
};
use serde::{Deserialize, Serialize};

use crate::message::{Amount, Denom};

/// The member endpoint's module name (what [`crate::message::Message::Ext`] addresses).
pub const MODULE: &str = "xchain";
/// The hub module's name.
pub const HUB_MODULE: &str = "hub";
/// The member endpoint's state namespace.
pub const NAMESPACE: &str = "sys/xchain";
/// The hub module's state namespace.
pub const HUB_NAMESPACE: &str = "sys/hub";
/// Largest encoded packet.
pub const MAX_PACKET_LEN: usize = 16 * 1024;
/// Most legs of one atomic transaction.
pub const MAX_LEGS: usize = 16;

/// A protocol commitment: SHA-256 of a domain tag and bytes.
pub fn commit(tag: &[u8], bytes: &[u8]) -> Hash {
    HashAlg::Sha256.hash_parts(&[b"causeway/xchain/", tag, &[0], bytes])
}

/// A fixed address no key controls (escrow, voucher authority), derived from a name.
pub fn module_address(name: &str) -> Address {
    let h = commit(b"address", name.as_bytes());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    Address(a)
}

/// Where a packet's tokens wait while its vouchers circulate elsewhere.
pub fn escrow_address() -> Address {
    module_address("escrow")
}

/// Where locked legs of atomic transactions wait for the hub's decision.
pub fn lock_address() -> Address {
    module_address("atomic-lock")
}

/// An asset's identity across chains: the chain that issues it and its denomination there.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct DenomTrace {
    /// The asset's home chain (where the real supply lives).
    pub home: ChainId,
    /// Its denomination there.
    pub base: Denom,
}

impl DenomTrace {
    /// The denomination of this asset's vouchers on any chain other than its home: `v-` and 32 hex digits of the
    /// trace's commitment.
    pub fn voucher_denom(&self) -> Denom {
        let h = commit(b"trace", &borsh::to_vec(self).unwrap_or_default());
        // "v-" + 32 hex digits is a valid denomination by construction.
        Denom::new(format!("v-{}", &h.to_hex()[..32])).unwrap_or_else(|_| self.base.clone())
    }
}

/// A fungible token transfer carried by a packet.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TransferData {
    /// The asset.
    pub trace: DenomTrace,
    /// How much.
    pub amount: Amount,
    /// Who sent it on the source chain (refunded there on timeout or error).
    pub sender: Address,
    /// Who receives it on the destination chain.
    pub receiver: Address,
}

/// What a packet asks its destination to do.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Payload {
    /// Move tokens.
    Transfer(TransferData),
}

/// A message from one member chain to another, routed through the hub.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Packet {
    /// The sending chain.
    pub source: ChainId,
    /// The receiving chain.
    pub destination: ChainId,
    /// The source's sequence number (one counter per source chain, from 1).
    pub sequence: u64,
    /// The packet may not be executed at a destination height at or above this (0: no height limit).
    pub timeout_height: u64,
    /// The packet may not be executed at a destination block time at or after this (0: no time limit).
    pub timeout_time: Time,
    /// What to do.
    pub payload: Payload,
}

impl Canonical for Packet {
    const KIND: &'static str = "packet";
    const MAX_LEN: usize = MAX_PACKET_LEN;
    fn validate(&self) -> Result<(), CodecError> {
        if self.timeout_height == 0 && self.timeout_time == Time(0) {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "no timeout".into(),
            });
        }
        if self.source == self.destination {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "source is the destination".into(),
            });
        }
        Ok(())
    }
}

impl Packet {
    /// The commitment the source stores and the hub re-commits for the destination.
    pub fn commitment(&self) -> Hash {
        commit(b"packet", &self.encode())
    }

    /// Whether a destination block at `height` and `time` is past the packet's deadline.
    pub fn expired_at(&self, height: u64, time: Time) -> bool {
        (self.timeout_height != 0 && height >= self.timeout_height)
            || (self.timeout_time != Time(0) && time >= self.timeout_time)
    }
}

/// The destination's answer to a packet.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Ack {
    /// Executed.
    Success,
    /// Refused by the destination's application (nothing was applied there); the source undoes its side.
    Error(String),
}

impl Ack {
    /// The commitment the destination stores in its receipt.
    pub fn commitment(&self) -> Hash {
        commit(b"ack", &borsh::to_vec(self).unwrap_or_default())
    }
}

/// How a packet ended, as the hub records it for the source.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Outcome {
    /// The destination executed (or refused) it.
    Acknowledged(Ack),
    /// The destination never received it before the deadline.
    TimedOut,
}

impl Outcome {
    /// The commitment the hub stores for the source to prove.
    pub fn commitment(&self) -> Hash {
        commit(b"outcome", &borsh::to_vec(self).unwrap_or_default())
    }

    /// True when the source must undo its side (refund).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Acknowledged(Ack::Success))
    }
}

/// One leg of an atomic transaction: a payment on one chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Leg {
    /// The chain it executes on.
    pub chain: ChainId,
    /// Who pays (and signs the prepare).
    pub from: Address,
    /// Who is paid on commit.
    pub to: Address,
    /// What (a denomination on that chain).
    pub denom: Denom,
    /// How much.
    pub amount: Amount,
}

/// An atomic N-leg transaction (e.g. delivery versus payment): all legs commit or none does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AtomicSpec {
    /// Makes otherwise identical deals distinct.
    pub salt: u64,
    /// The hub commits only if it verified every leg's prepare at a hub block time before this.
    pub deadline: Time,
    /// The legs (2 to [`MAX_LEGS`]).
    pub legs: Vec<Leg>,
}

impl Canonical for AtomicSpec {
    const KIND: &'static str = "atomic spec";
    const MAX_LEN: usize = 64 + MAX_LEGS * 256;
    fn validate(&self) -> Result<(), CodecError> {
        if self.legs.len() < 2 || self.legs.len() > MAX_LEGS {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: format!("{} legs", self.legs.len()),
            });
        }
        if self.legs.iter().any(|l| l.amount.0 == 0) {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "a leg of amount 0".into(),
            });
        }
        Ok(())
    }
}

impl AtomicSpec {
    /// The deal's id: commitment of its canonical encoding.
    pub fn id(&self) -> Hash {
        commit(b"atomic", &self.encode())
    }

    /// What a chain stores when it has locked leg `index`.
    pub fn prepared_commitment(&self, index: u32) -> Hash {
        commit(
            b"prepared",
            &[self.id().0.as_slice(), &index.to_be_bytes()].concat(),
        )
    }
}

/// The hub's decision on an atomic transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Decision {
    /// Every leg was prepared in time: pay.
    Commit,
    /// Not every leg was prepared in time: unlock.
    Abort,
}

impl Decision {
    /// The commitment the hub stores.
    pub fn commitment(&self, id: &Hash) -> Hash {
        let tag: &[u8] = match self {
            Decision::Commit => b"commit",
            Decision::Abort => b"abort",
        };
        commit(b"decision", &[&id.0[..], tag].concat())
    }
}

/// A leg's state on its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum LegState {
    /// Funds locked, waiting for the decision.
    Prepared,
    /// Paid to the receiver.
    Committed,
    /// Unlocked (or never locked) after an abort.
    Aborted,
}

fn with_chain(tag: u8, chain: &ChainId) -> Vec<u8> {
    let c = chain.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + c.len() + 8);
    k.push(tag);
    // Chain ids are at most 64 bytes: one length byte keeps keys of different chains apart.
    k.push(c.len() as u8);
    k.extend_from_slice(c);
    k
}

/// Keys in a member's [`NAMESPACE`].
pub mod member_keys {
    use super::*;

    /// The light client of the hub.
    pub const CLIENT: &[u8] = b"client";
    /// The next packet sequence to send.
    pub const NEXT_SEQUENCE: &[u8] = b"nextseq";

    /// The commitment of the packet sent with `sequence` (deleted when its outcome is applied).
    pub fn commitment(sequence: u64) -> Vec<u8> {
        let mut k = vec![b'c'];
        k.extend_from_slice(&sequence.to_be_bytes());
        k
    }

    /// The receipt of the packet `(source, sequence)`: holds the acknowledgement's commitment.
    pub fn receipt(source: &ChainId, sequence: u64) -> Vec<u8> {
        let mut k = with_chain(b'r', source);
        k.extend_from_slice(&sequence.to_be_bytes());
        k
    }

    /// Amount of a native asset escrowed for vouchers on `chain` (u128). The key lives in the asset's own
    /// namespace (`asset:<denom>`, beside its balances), not in `sys/xchain`: when a split or merge moves the
    /// asset, the escrow that backs its vouchers elsewhere moves with it.
    pub fn escrow(chain: &ChainId) -> Vec<u8> {
        with_chain(b'e', chain)
    }

    /// How many sent packets carrying `denom` (native or voucher) still await their outcome (u64).
    pub fn pending(denom: &Denom) -> Vec<u8> {
        let mut k = vec![b'o'];
        k.extend_from_slice(denom.as_str().as_bytes());
        k
    }

    /// How many sent packets, of any denomination, still await their outcome (u64).
    pub const PENDING_TOTAL: &[u8] = b"pending_total";

    /// The trace of a voucher denomination.
    pub fn trace(voucher: &Denom) -> Vec<u8> {
        let mut k = vec![b't'];
        k.extend_from_slice(voucher.as_str().as_bytes());
        k
    }

    /// The state of leg `index` of atomic transaction `id` ([`LegState`]); while prepared, the hub proves
    /// [`AtomicSpec::prepared_commitment`] under [`prepared`].
    pub fn leg(id: &Hash, index: u32) -> Vec<u8> {
        let mut k = vec![b'l'];
        k.extend_from_slice(&id.0);
        k.extend_from_slice(&index.to_be_bytes());
        k
    }

    /// A record of `chain` verified here through the hub (holds [`attestation_value`] of its bytes).
    pub fn verified_record(chain: &ChainId, height: u64, namespace: &Namespace, key: &[u8]) -> Vec<u8> {
        let mut k = super::hub_keys::attestation(chain, height, namespace, key);
        k[0] = b'w';
        k
    }

    /// The prepare record of leg `index` of `id` (its commitment; never deleted).
    pub fn prepared(id: &Hash, index: u32) -> Vec<u8> {
        let mut k = vec![b'p'];
        k.extend_from_slice(&id.0);
        k.extend_from_slice(&index.to_be_bytes());
        k
    }
}

/// Keys in the hub's [`HUB_NAMESPACE`].
pub mod hub_keys {
    use super::*;

    /// The light client of member `chain`.
    pub fn client(chain: &ChainId) -> Vec<u8> {
        with_chain(b'k', chain)
    }

    /// The hub's record of packet `(source, sequence)` (exactly-once on the hub).
    pub fn receipt(source: &ChainId, sequence: u64) -> Vec<u8> {
        let mut k = with_chain(b'r', source);
        k.extend_from_slice(&sequence.to_be_bytes());
        k
    }

    /// The packet's commitment re-committed for `destination` (deleted once the packet is resolved).
    pub fn forward(destination: &ChainId, source: &ChainId, sequence: u64) -> Vec<u8> {
        let mut k = with_chain(b'f', destination);
        k.extend_from_slice(&with_chain(b'/', source));
        k.extend_from_slice(&sequence.to_be_bytes());
        k
    }

    /// The commitment of the packet's [`Outcome`], for the source to prove.
    pub fn outcome(source: &ChainId, sequence: u64) -> Vec<u8> {
        let mut k = with_chain(b'o', source);
        k.extend_from_slice(&sequence.to_be_bytes());
        k
    }

    /// The legs of atomic transaction `id` verified so far.
    pub fn atomic(id: &Hash) -> Vec<u8> {
        let mut k = vec![b'a'];
        k.extend_from_slice(&id.0);
        k
    }

    /// The hub's attestation that `chain` held `value` under `(namespace, key)` at `height` (its
    /// [`attestation_value`]). Fixed length: a commitment of the four coordinates.
    pub fn attestation(chain: &ChainId, height: u64, namespace: &Namespace, key: &[u8]) -> Vec<u8> {
        let coordinates = borsh::to_vec(&(chain, height, namespace, key)).unwrap_or_default();
        let mut k = vec![b'v'];
        k.extend_from_slice(&commit(b"attestation", &coordinates).0);
        k
    }

    /// The decision on atomic transaction `id` (its [`Decision::commitment`]).
    pub fn decision(id: &Hash) -> Vec<u8> {
        let mut k = vec![b'd'];
        k.extend_from_slice(&id.0);
        k
    }

    /// Where member `chain` comes from, when it was registered as the successor of a split (a `Lineage` record of
    /// the hub module).
    pub fn lineage(chain: &ChainId) -> Vec<u8> {
        with_chain(b'l', chain)
    }

    /// The parents of member `chain`, when it was registered as the chain two members merged into (a `Merger`
    /// record of the hub module).
    pub fn merged_from(chain: &ChainId) -> Vec<u8> {
        with_chain(b'm', chain)
    }

    /// The successor of member `chain` once it merged out (a `Retired` record of the hub module): nothing is
    /// forwarded to it any more, and its client accepts no header past its final height.
    pub fn retired(chain: &ChainId) -> Vec<u8> {
        with_chain(b'x', chain)
    }

    /// Where packets addressed to `chain` for its former namespace `namespace` go now (the [`ChainId`] of the
    /// split child or merged chain that carries it), written when the hub registers that successor.
    pub fn route(chain: &ChainId, namespace: &Namespace) -> Vec<u8> {
        let mut k = with_chain(b'g', chain);
        k.extend_from_slice(namespace.as_str().as_bytes());
        k
    }
}

/// What the hub stores for an attested value: a commitment of the value's bytes.
pub fn attestation_value(value: &[u8]) -> Hash {
    commit(b"attested", value)
}

/// A namespace constant as a [`Namespace`].
pub fn namespace(name: &'static str) -> Namespace {
    crate::exec::sys_namespace(name)
}

/// The encoded [`StatePath`] of a key in a member's endpoint state (the `path` light clients verify).
pub fn member_path(key: Vec<u8>) -> Vec<u8> {
    StatePath::new(namespace(NAMESPACE), key).encode()
}

/// The encoded [`StatePath`] of a key in the hub's state.
pub fn hub_path(key: Vec<u8>) -> Vec<u8> {
    StatePath::new(namespace(HUB_NAMESPACE), key).encode()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chain(s: &str) -> ChainId {
        ChainId::new(s).unwrap()
    }

    fn packet() -> Packet {
        Packet {
            source: chain("alpha"),
            destination: chain("beta"),
            sequence: 7,
            timeout_height: 0,
            timeout_time: Time::from_secs(100),
            payload: Payload::Transfer(TransferData {
                trace: DenomTrace {
                    home: chain("alpha"),
                    base: Denom::new("cash").unwrap(),
                },
                amount: Amount(5),
                sender: Address([1; 20]),
                receiver: Address([2; 20]),
            }),
        }
    }

    #[test]
    fn packets_round_trip_and_commit_to_every_field() {
        let p = packet();
        assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        let mut q = p.clone();
        q.sequence = 8;
        assert_ne!(p.commitment(), q.commitment());
        let mut q = p.clone();
        q.timeout_time = Time::from_secs(101);
        assert_ne!(p.commitment(), q.commitment());
        let mut no_timeout = p.clone();
        no_timeout.timeout_time = Time(0);
        assert!(matches!(
            Packet::decode(&no_timeout.encode()),
            Err(CodecError::Invalid { .. })
        ));
        let mut to_self = p;
        to_self.destination = chain("alpha");
        assert!(Packet::decode(&to_self.encode()).is_err());
    }

    #[test]
    fn expiry_by_height_or_time() {
        let mut p = packet();
        assert!(!p.expired_at(1_000, Time::from_secs(99)));
        assert!(p.expired_at(1, Time::from_secs(100)));
        p.timeout_height = 10;
        assert!(p.expired_at(10, Time::from_secs(1)));
        assert!(!p.expired_at(9, Time::from_secs(1)));
    }

    #[test]
    fn keys_of_different_chains_never_collide() {
        // "ab" + sequence vs "a" + a sequence starting with 'b' would collide without the length byte.
        assert_ne!(
            member_keys::receipt(&chain("ab"), 1),
            member_keys::receipt(&chain("a"), 1)
        );
        assert_ne!(
            hub_keys::forward(&chain("a"), &chain("bc"), 1),
            hub_keys::forward(&chain("ab"), &chain("c"), 1)
        );
        let trace = DenomTrace {
            home: chain("alpha"),
            base: Denom::new("cash").unwrap(),
        };
        let other = DenomTrace {
            home: chain("beta"),
            base: Denom::new("cash").unwrap(),
        };
        assert_ne!(trace.voucher_denom(), other.voucher_denom());
        assert!(trace.voucher_denom().as_str().starts_with("v-"));
    }

    #[test]
    fn outcomes_and_decisions_are_distinct() {
        let id = Hash([9; 32]);
        assert_ne!(Decision::Commit.commitment(&id), Decision::Abort.commitment(&id));
        assert_ne!(
            Outcome::TimedOut.commitment(),
            Outcome::Acknowledged(Ack::Success).commitment()
        );
        assert!(Outcome::TimedOut.is_failure());
        assert!(Outcome::Acknowledged(Ack::Error("x".into())).is_failure());
        assert!(!Outcome::Acknowledged(Ack::Success).is_failure());
    }
}
