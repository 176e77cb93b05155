//! The message map's writer. Which Matrix event became or came from which MSN message is
//! recorded with group commit: the mappings asked for while a write is in progress go
//! together in the next one, so messages bridged at the same time share one commit
//! instead of queueing for the database one by one. A lone mapping is written at once.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{MessageMapping, Store, StoreError};

/// Most mappings in one write.
const MOST_AT_ONCE: usize = 256;

/// What a waiting caller hears: whether its mapping was new, or why it was not written
/// (shared by every mapping of the failed write).
pub type Recorded = Result<bool, Arc<StoreError>>;

struct Request {
    mapping: MessageMapping,
    reply: oneshot::Sender<Recorded>,
}

/// A handle on the writer; its task ends when the last handle is dropped.
pub struct MessageLog {
    requests: mpsc::UnboundedSender<Request>,
}

impl MessageLog {
    /// Starts the writer on the current runtime.
    pub fn start(store: Store) -> Self {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(store, rx));
        Self { requests }
    }

    /// Records `mapping` once written: `Ok(false)` when that (event, part) was recorded
    /// before, which is how an event is bridged once.
    pub async fn record(&self, mapping: MessageMapping) -> Recorded {
        let (reply, answer) = oneshot::channel();
        let gone = || Arc::new(StoreError::Closed);
        self.requests
            .send(Request { mapping, reply })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn write(store: Store, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::with_capacity(MOST_AT_ONCE);
    while requests.recv_many(&mut batch, MOST_AT_ONCE).await > 0 {
        let (mappings, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|r| (r.mapping, r.reply)).unzip();
        match store.insert_messages(&mappings).await {
            Ok(fresh) => {
                for (reply, fresh) in replies.into_iter().zip(fresh) {
                    let _ = reply.send(Ok(fresh));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
