//! One chain as the relayer sees it: its gateway, read and written with retries.
//!
//! **Owns**: every call the relayer makes to a chain (status, events, values, proofs, header updates, account
//! nonces, submission) and the retry policy around them: exponential backoff with jitter (`backon`) on transport
//! failures and on the gateway's "try again" answers (503: mempool full, unavailable; 5xx), never on answers that
//! would repeat (a 4xx is final). **Must never**: alter what a chain returned, or report a transaction committed
//! before the chain says so.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use causeway_chain::exec::{Event, TxResult};
use causeway_chain::gateway::client::{BlockRef, ClientError, EventQuery, GatewayClient};
use causeway_chain::gateway::types::{Status, SubmitStatus};
use causeway_chain::message::Message;
use causeway_chain::tx::Transaction;
use causeway_light_client::{
    Address, ChainId, Hash, HashAlg, HeaderUpdate, Namespace, SecretKey, StateProof,
};

use crate::RelayError;

/// How hard to retry a failing gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Attempts after the first.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retries: 6,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

/// True for failures worth retrying: the gateway was unreachable or asked to come back later.
pub fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Http(_) | ClientError::Ws(_) => true,
        ClientError::Api { status, .. } => *status >= 500,
        ClientError::Decode(_) | ClientError::Url(_) | ClientError::Tls(_) => false,
    }
}

/// Events in one query, at most (the gateway's default range limit).
const EVENT_PAGE: u64 = 100;

/// Keys proven in one request, at most (the gateway allows 1,024).
pub const PROOF_BATCH: usize = 512;

/// A chain reached through its gateway.
#[derive(Clone, Debug)]
pub struct ChainHandle {
    id: ChainId,
    client: GatewayClient,
    retry: RetryPolicy,
    hash_alg: std::sync::Arc<tokio::sync::OnceCell<HashAlg>>,
}

/// What became of a submitted transaction and its nonce.
#[derive(Debug)]
pub enum Landing {
    /// Committed (applied or failed): the nonce is used by it.
    Committed(Committed),
    /// Refused before it took its nonce (malformed, mempool still full after the retries…): the nonce is free.
    Refused(RelayError),
    /// Another transaction of the signer holds the nonce (`too_low`: already committed; else waiting): this one
    /// will never execute.
    NonceUsed {
        /// The chain's account nonce is past it (rather than another transaction waiting with it).
        too_low: bool,
        /// The answer.
        error: RelayError,
    },
    /// Not seen committed within the timeout, or the gateway could not be reached: it may still commit.
    Unknown(RelayError),
}

/// A committed transaction: its height and result.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The transaction.
    pub hash: Hash,
    /// The block holding it.
    pub height: u64,
    /// What execution made of it.
    pub result: TxResult,
}

impl ChainHandle {
    /// Chain `id` behind `client`.
    pub fn new(id: ChainId, client: GatewayClient, retry: RetryPolicy) -> Self {
        ChainHandle {
            id,
            client,
            retry,
            hash_alg: std::sync::Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// The chain's id.
    pub fn id(&self) -> &ChainId {
        &self.id
    }

    /// The gateway client.
    pub fn client(&self) -> &GatewayClient {
        &self.client
    }

    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, RelayError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        f.retry(self.retry.backoff())
            .when(transient)
            .notify(|e, after| {
                tracing::warn!(chain = %self.id, error = %e, retry_in = ?after, "{what} failed; retrying");
            })
            .await
            .map_err(|source| RelayError::Gateway {
                chain: self.id.clone(),
                what: what.to_string(),
                source,
            })
    }

    /// The chain's hash function (read once from a state answer, which names it).
    pub async fn hash_alg(&self) -> Result<HashAlg, RelayError> {
        self.hash_alg
            .get_or_try_init(|| async { Ok(self.status().await?.hash_alg) })
            .await
            .copied()
    }

    /// The node's status; checks that the gateway serves the configured chain.
    pub async fn status(&self) -> Result<Status, RelayError> {
        let s = self.call("status", || self.client.status()).await?;
        if s.chain_id != self.id {
            return Err(RelayError::WrongChain {
                expected: self.id.clone(),
                found: s.chain_id,
            });
        }
        Ok(s)
    }

    /// [`ChainHandle::status`] asked once, without retries (to probe a gateway that was failing).
    pub async fn status_once(&self) -> Result<Status, RelayError> {
        let s = self.client.status().await.map_err(|source| RelayError::Gateway {
            chain: self.id.clone(),
            what: "status".into(),
            source,
        })?;
        if s.chain_id != self.id {
            return Err(RelayError::WrongChain {
                expected: self.id.clone(),
                found: s.chain_id,
            });
        }
        Ok(s)
    }

    /// Every event committed at heights `from..=to`, in order.
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<Event>, RelayError> {
        let mut out = vec![];
        let mut start = from;
        while start <= to {
            let end = to.min(start + EVENT_PAGE - 1);
            let q = EventQuery {
                from: Some(start),
                to: Some(end),
                ..EventQuery::default()
            };
            let page = self.call("events", || self.client.events(&q)).await?;
            out.extend(page.events.into_iter().map(|e| e.event));
            start = end + 1;
        }
        Ok(out)
    }

    /// The value under `(namespace, key)` at the latest height.
    pub async fn value(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, RelayError> {
        let v = self
            .call("state", || self.client.state(namespace, key, None))
            .await?;
        Ok(v.value.map(|b| b.0))
    }

    /// The value (or its absence) under `(namespace, key)` with its proof at `height`. The proof is checked
    /// against the state root of that height's header before it is used.
    pub async fn prove(
        &self,
        height: u64,
        namespace: &Namespace,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, StateProof), RelayError> {
        let v = self
            .call("state proof", || {
                self.client.state_verified(namespace, key, Some(height))
            })
            .await?;
        if v.height != height {
            return Err(RelayError::Inconsistent {
                chain: self.id.clone(),
                reason: format!("asked a proof at {height}, got one at {}", v.height),
            });
        }
        Ok((v.value.map(|b| b.0), v.proof))
    }

    /// The values (or absences) under `keys` with their proofs at `height`, in order, fetched in batches (one
    /// request per [`PROOF_BATCH`] keys, the header read once per request). Every proof is checked against the state
    /// root of that height's header before it is used.
    pub async fn prove_many(
        &self,
        height: u64,
        keys: &[(Namespace, Vec<u8>)],
    ) -> Result<Vec<(Option<Vec<u8>>, StateProof)>, RelayError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PROOF_BATCH) {
            let v = self
                .call("state proofs", || {
                    self.client.proofs_verified(chunk, Some(height))
                })
                .await?;
            if v.height != height {
                return Err(RelayError::Inconsistent {
                    chain: self.id.clone(),
                    reason: format!("asked proofs at {height}, got them at {}", v.height),
                });
            }
            out.extend(v.items.into_iter().map(|i| (i.value.map(|b| b.0), i.proof)));
        }
        Ok(out)
    }

    /// What moves a client of this chain from `trusted` to `target`: the header and certificate of `target`,
    /// the validators that signed it and those that `trusted` named for its successor.
    pub async fn header_update(&self, trusted: u64, target: u64) -> Result<HeaderUpdate, RelayError> {
        let header = self
            .call("header", || self.client.header(BlockRef::Height(target)))
            .await?;
        let commit = self
            .call("commit", || self.client.commit(BlockRef::Height(target)))
            .await?;
        let validators = self
            .call("validators", || self.client.validators(BlockRef::Height(target)))
            .await?;
        let trusted_validators = self
            .call("validators", || {
                self.client.validators(BlockRef::Height(trusted + 1))
            })
            .await?;
        Ok(HeaderUpdate {
            header: header.header,
            commit: commit.certificate,
            validators: validators.validators,
            trusted_height: trusted,
            trusted_validators: trusted_validators.validators,
        })
    }

    /// The hash (block id) of the chain's header at `height`.
    pub async fn header_hash(&self, height: u64) -> Result<Hash, RelayError> {
        Ok(self
            .call("header", || self.client.header(BlockRef::Height(height)))
            .await?
            .block_id)
    }

    /// The nonce the next transaction of `address` must carry.
    pub async fn nonce(&self, address: &Address) -> Result<u64, RelayError> {
        Ok(self
            .call("account", || self.client.account(address, &[]))
            .await?
            .nonce)
    }

    /// Sign `messages` with `key` at `nonce`, submit, and wait until committed (or `timeout`). Submitting the same
    /// signed transaction again after a lost answer is harmless: the chain executes a nonce once.
    pub async fn submit_and_wait(
        &self,
        key: &SecretKey,
        nonce: u64,
        messages: Vec<Message>,
        timeout: Duration,
    ) -> Result<Committed, RelayError> {
        match self.submit_at(key, nonce, messages, timeout).await {
            Landing::Committed(c) => Ok(c),
            Landing::Refused(e) | Landing::NonceUsed { error: e, .. } | Landing::Unknown(e) => Err(e),
        }
    }

    /// Sign `messages` with `key` at `nonce`, submit, wait until committed (or `timeout`), and say what became of
    /// the nonce: used by this transaction, still free (refused before admission), held by another transaction,
    /// or unknown. Other transactions of the same signer may be waiting at the same time (a pipeline).
    pub async fn submit_at(
        &self,
        key: &SecretKey,
        nonce: u64,
        messages: Vec<Message>,
        timeout: Duration,
    ) -> Landing {
        let tx = Transaction {
            chain_id: self.id.clone(),
            signer: key.public_key(),
            nonce,
            messages,
        }
        .sign(key);
        let hash = match self.hash_alg().await {
            Ok(alg) => tx.hash(alg),
            Err(e) => return Landing::Refused(e),
        };
        let answer = (|| self.client.submit_and_wait(&tx, timeout))
            .retry(self.retry.backoff())
            .when(transient)
            .notify(|e, after| {
                tracing::warn!(chain = %self.id, error = %e, retry_in = ?after, "submit failed; retrying");
            })
            .await;
        let view = match answer {
            Ok(v) => v,
            // A retry of a submission that had reached the node (or a commit wait that ran out): the
            // transaction may be waiting or committed; only the chain can say which.
            Err(e) if matches!(e.code(), Some("duplicate_tx" | "commit_timeout")) => {
                return match self.await_commit(hash, timeout, e).await {
                    Ok(c) => Landing::Committed(c),
                    Err(e) => Landing::Unknown(e),
                };
            }
            // The nonce went to another transaction (committed, or waiting): this one may only be the committed one.
            Err(e) if matches!(e.code(), Some("nonce_too_low" | "nonce_taken" | "nonce_too_high")) => {
                let too_low = e.code() != Some("nonce_taken");
                return match self.await_commit(hash, Duration::ZERO, e).await {
                    Ok(c) => Landing::Committed(c),
                    Err(error) => Landing::NonceUsed { too_low, error },
                };
            }
            // Unreachable after the retries, or refused as it is: the node did not take the nonce (had an earlier
            // attempt reached it, the retry would have been answered `duplicate_tx`).
            Err(source) if transient(&source) => {
                return Landing::Unknown(RelayError::Gateway {
                    chain: self.id.clone(),
                    what: "submit".into(),
                    source,
                })
            }
            Err(source) => {
                return Landing::Refused(RelayError::Gateway {
                    chain: self.id.clone(),
                    what: "submit".into(),
                    source,
                })
            }
        };
        match (view.status, view.height, view.result) {
            (SubmitStatus::Committed, Some(height), Some(result)) => {
                Landing::Committed(Committed { hash, height, result })
            }
            _ => Landing::Unknown(RelayError::Inconsistent {
                chain: self.id.clone(),
                reason: format!("transaction {hash} answered without a commit"),
            }),
        }
    }

    /// Poll for transaction `hash` until committed or `timeout`; `cause` is the error reported if it never is.
    async fn await_commit(
        &self,
        hash: Hash,
        timeout: Duration,
        cause: ClientError,
    ) -> Result<Committed, RelayError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(t) = self.client.tx(&hash).await {
                return Ok(Committed {
                    hash,
                    height: t.height,
                    result: t.result,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RelayError::Gateway {
                    chain: self.id.clone(),
                    what: format!("submit (transaction {hash} not committed)"),
                    source: cause,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
