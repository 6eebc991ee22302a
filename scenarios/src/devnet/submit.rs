//! Submitting the demo's own transactions in process (validator 0 of a chain) and waiting for their commit.
//! The relaying itself is the `causeway-relayer` engine, over the chains' gateways.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use causeway_chain::exec::TxResult;
use causeway_chain::message::Message;
use causeway_chain::node::Shared;
use causeway_chain::tx::Transaction;
use causeway_light_client::SecretKey;

/// How long a submitted transaction may take to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Submit `messages` signed by `key` to `node` and wait until they are committed; the height and the result.
pub async fn submit_and_wait(
    node: &Shared,
    key: &SecretKey,
    messages: Vec<Message>,
) -> Result<(u64, TxResult)> {
    let signer = key.public_key();
    let nonce = node.account_nonce(&signer.address());
    let tx = Transaction {
        chain_id: node.chain_id().clone(),
        signer,
        nonce,
        messages,
    }
    .sign(key);
    let hash = node
        .submit(tx)
        .await
        .with_context(|| format!("submitting to {}", node.chain_id()))?;
    let start = Instant::now();
    loop {
        let found = {
            let app = node.app();
            match app.tx_location(&hash)? {
                Some(loc) => {
                    let results = app
                        .results(loc.height)?
                        .ok_or_else(|| anyhow!("no results stored for block {}", loc.height))?;
                    let r = results
                        .txs
                        .get(loc.index as usize)
                        .cloned()
                        .ok_or_else(|| anyhow!("no result for tx {hash} in block {}", loc.height))?;
                    Some((loc.height, r))
                }
                None => None,
            }
        };
        if let Some(found) = found {
            return Ok(found);
        }
        if start.elapsed() > COMMIT_WAIT {
            bail!(
                "transaction {hash} not committed on {} within {COMMIT_WAIT:?}",
                node.chain_id()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
