//! The gateway's view of a running node: [`crate::gateway::NodeApi`] for [`Shared`].

use std::sync::Arc;

use causeway_light_client::Hash;
use tokio::sync::broadcast;

use super::{Shared, SubmitError};
use crate::app::Committed;
use crate::gateway::{AppGuard, NodeApi, Rejection, Status};
use crate::tx::SignedTx;

#[async_trait::async_trait]
impl NodeApi for Shared {
    fn status(&self) -> Status {
        Shared::status(self)
    }

    async fn submit(&self, tx: SignedTx) -> Result<Hash, Rejection> {
        Shared::submit(self, tx).await.map_err(|e| match e {
            SubmitError::Tx(e) => Rejection::Tx(e),
            SubmitError::Mempool(e) => Rejection::Mempool(e),
            SubmitError::ShuttingDown => Rejection::Unavailable("the node is shutting down".into()),
        })
    }

    fn app(&self) -> AppGuard<'_> {
        Box::new(Shared::app(self))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.blocks.subscribe()
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}
