//! A tiny in-memory chain for execution tests: genesis state, signed transactions, blocks applied in order.

use causeway_light_client::{Address, ChainId, HashAlg, SecretKey, Suite, Time};

use super::{execute_block, BlockContext, BlockOutcome};
use crate::genesis::{Genesis, GenesisAsset, GenesisOrg, GenesisValidator, Profile};
use crate::message::{Amount, Denom, Message, OrgId, Params};
use crate::state::MemState;
use crate::tx::{Transaction, VerifiedTx};

pub(crate) struct TestChain {
    pub state: MemState,
    pub height: u64,
    pub chain_id: ChainId,
    pub validators: Vec<SecretKey>,
    pub users: Vec<SecretKey>,
    nonces: std::collections::HashMap<Address, u64>,
}

pub(crate) fn denom(s: &str) -> Denom {
    Denom::new(s).unwrap()
}

impl TestChain {
    /// 4 validators (power 10 each), 4 users; `cash` issued by user 0 with 1,000,000 to each user; org `acme`
    /// administered by user 0.
    pub fn new() -> Self {
        let validators: Vec<SecretKey> =
            (1..=4u8).map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i; 32]).unwrap()).collect();
        let users: Vec<SecretKey> = (0..4u8)
            .map(|i| SecretKey::from_bytes(Suite::ALL[usize::from(i) % 3], &[100 + i; 32]).unwrap())
            .collect();
        let genesis = Genesis {
            chain_id: ChainId::new("test").unwrap(),
            genesis_time: Time::from_secs(1_000),
            hash: HashAlg::Sha256,
            app_version: 1,
            profile: Profile::Permissioned,
            validators: validators
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisValidator { name: format!("v{i}"), pub_key: k.public_key(), power: 10, node_id: None })
                .collect(),
            params: Params::default(),
            orgs: vec![GenesisOrg { id: OrgId::new("acme").unwrap(), admin: users[0].public_key().address() }],
            assets: vec![GenesisAsset {
                denom: denom("cash"),
                issuer: users[0].public_key().address(),
                balances: users.iter().map(|u| (u.public_key().address(), Amount(1_000_000))).collect(),
            }],
            lineage: None,
        };
        let mut state = MemState::new();
        state.apply(&genesis.initial_writes().unwrap());
        TestChain { state, height: 0, chain_id: genesis.chain_id, validators, users, nonces: Default::default() }
    }

    pub fn addr(key: &SecretKey) -> Address {
        key.public_key().address()
    }

    /// A verified transaction from `key` with its next nonce.
    pub fn tx(&mut self, key: &SecretKey, messages: Vec<Message>) -> VerifiedTx {
        let nonce = self.nonces.entry(Self::addr(key)).or_insert(0);
        let signed = Transaction { chain_id: self.chain_id.clone(), signer: key.public_key(), nonce: *nonce, messages }
            .sign(key);
        *nonce += 1;
        signed.verify(&self.chain_id, HashAlg::Sha256).unwrap()
    }

    /// A verified transaction with an explicit nonce (the tracked nonce is left alone).
    pub fn tx_with_nonce(&self, key: &SecretKey, nonce: u64, messages: Vec<Message>) -> VerifiedTx {
        Transaction { chain_id: self.chain_id.clone(), signer: key.public_key(), nonce, messages }
            .sign(key)
            .verify(&self.chain_id, HashAlg::Sha256)
            .unwrap()
    }

    pub fn block(&mut self, txs: &[VerifiedTx]) -> BlockOutcome {
        self.height += 1;
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: self.height,
            time: Time::from_secs(1_000 + self.height),
            proposer: Self::addr(&self.validators[0]),
        };
        let out = execute_block(&self.state, &ctx, txs, &[]).unwrap();
        self.state.apply(&out.writes);
        out
    }
}
