//! The message map's writer. Which Matrix event became or came from which MSN message is
//! recorded with group commit: the mappings asked for while a write is in progress go
//! together in the next one, so messages bridged at the same time share one commit
//! instead of queueing for the database one by one. A lone mapping is written at once.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{MessageMapping, Store, StoreError};

/// Most mappings in one write: one statement's worth.
const MOST_AT_ONCE: usize = crate::store::ROWS_PER_STATEMENT;

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
            // One bad mapping must not fail the others: each is written on its own, so
            // only its own caller (or every caller, in a real outage) hears the error.
            Err(_) if mappings.len() > 1 => {
                for (mapping, reply) in mappings.iter().zip(replies) {
                    let _ = reply.send(store.insert_message(mapping).await.map_err(Arc::new));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(event: &str, room: &str) -> MessageMapping {
        MessageMapping {
            matrix_event_id: event.into(),
            part: 0,
            room_id: room.into(),
            receiver: "@bob:localhost".into(),
            msn_message_id: String::new(),
            direction: "to_msn".into(),
        }
    }

    /// Mappings asked for together share a write; a row the database refuses fails only
    /// its own caller. (A trigger stands in for a row the database refuses, as
    /// PostgreSQL refuses text holding a NUL.)
    #[tokio::test(flavor = "current_thread")]
    async fn one_refused_mapping_fails_only_its_caller() {
        let store = Store::connect("sqlite::memory:", 1).await.expect("store");
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON message_map WHEN NEW.room_id = '!bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(store.pool())
        .await
        .expect("trigger");
        let log = MessageLog::start(store);
        // All three are queued before the writer runs (one thread): one batch.
        let (a, bad, b) = tokio::join!(
            log.record(mapping("$a", "!ok")),
            log.record(mapping("$bad", "!bad")),
            log.record(mapping("$b", "!ok")),
        );
        assert!(matches!(a, Ok(true)), "{a:?}");
        assert!(bad.is_err(), "{bad:?}");
        assert!(matches!(b, Ok(true)), "{b:?}");
        // Already recorded: not new.
        assert!(matches!(log.record(mapping("$a", "!ok")).await, Ok(false)));
    }
}
