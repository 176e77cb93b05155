//! Offline messages (MSNP13+) over HTTP(S) (MSNP.md §15.1, §15.2.1): reading the ones a
//! `Mail-Data` lists (fetched, then put in the order their senders wrote them), deleting
//! one once the bridge has delivered it, and storing the user's messages to offline
//! contacts with the session's run id, numbers and lock key. Requests and answers are
//! built and read by `msnp::oim`; this module only performs them, on the address book's
//! host with its ticket (Escargot serves all three there and takes any ticket of the
//! session). Tickets and texts never reach a log line.

use msnp::challenge::Product;
use msnp::oim::store::{self as oim_store, StoreRefusal, StoreRequest};
use msnp::oim::{self, MailData, OfflineMessage, OimError, OimRef};
use tokio::sync::Mutex;

use super::address_book::AddressBook;
use super::soap_post::{self, PostError};

/// Largest answer read: one message, or a list of a few hundred.
const MAX_BODY: usize = 1024 * 1024;
/// How often one message is offered with a fresh lock key before giving up.
const STORE_TRIES: usize = 3;

/// Why an offline-message call failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("the offline-message service is not reachable: {0}")]
    Post(#[from] PostError),
    #[error(transparent)]
    Oim(#[from] OimError),
    #[error(transparent)]
    Refused(#[from] StoreRefusal),
}

/// A listed offline message, fetched.
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub listed: OimRef,
    /// When it was stored (ms since the epoch), if the listing said.
    pub stored_ms: Option<i64>,
    pub message: OfflineMessage,
}

async fn call(
    http: &reqwest::Client,
    request: Result<msnp::PostRequest, OimError>,
) -> Result<(u16, String), OfflineError> {
    Ok(soap_post::post(http, &request?, MAX_BODY).await?)
}

impl AddressBook {
    /// The offline messages `mail_data` lists (asking for the list when it was too large
    /// to inline), fetched and in the order they were written. One that cannot be
    /// fetched (deleted by the user's own Messenger meanwhile, say) is left out.
    pub async fn offline_messages(
        &self,
        http: &reqwest::Client,
        mail_data: MailData,
    ) -> Result<Vec<FetchedMessage>, OfflineError> {
        let listed = match mail_data {
            MailData::Listed(listed) => listed,
            MailData::TooLarge => {
                let (status, body) =
                    call(http, oim::get_metadata(&self.base, &self.ticket)).await?;
                oim::parse_metadata(status, &body)?
            }
        };
        let mut fetched = Vec::with_capacity(listed.len());
        for item in listed {
            let answer = call(http, oim::get_message(&self.base, &self.ticket, &item.id)).await;
            let message = answer.and_then(|(status, body)| Ok(oim::parse_message(status, &body)?));
            match message {
                Ok(message) => fetched.push(FetchedMessage {
                    stored_ms: item.received.as_deref().and_then(oim::received_ms),
                    listed: item,
                    message,
                }),
                Err(e) => {
                    tracing::info!(error = %e, id = %item.id, "an offline message cannot be fetched; consumed elsewhere?")
                }
            }
        }
        Ok(oim::sort_as_written(
            fetched,
            |f| f.stored_ms,
            |f| &f.message,
        ))
    }

    /// Deletes the offline message `id` from the server.
    pub async fn delete_offline_message(
        &self,
        http: &reqwest::Client,
        id: &str,
    ) -> Result<(), OfflineError> {
        let (status, body) = call(http, oim::delete_message(&self.base, &self.ticket, id)).await?;
        Ok(oim::parse_deleted(status, &body)?)
    }
}

/// What a session's offline messages share: one run id, numbers from 1 advanced only by
/// a stored message, and the lock key once a challenge asked for it. Behind a lock, so
/// messages are stored one at a time, in order.
#[derive(Debug)]
pub struct OfflineSender {
    state: Mutex<SenderState>,
}

#[derive(Debug)]
struct SenderState {
    run_id: String,
    next: u32,
    lock_key: String,
}

/// One message to store.
#[derive(Debug, Clone, Copy)]
pub struct OfflineText<'a> {
    pub from: &'a str,
    pub friendly_name: Option<&'a str>,
    pub to: &'a str,
    pub text: &'a str,
}

impl OfflineSender {
    /// A sender for one session, its run id made from `random`.
    pub fn new(random: [u8; 16]) -> Self {
        let run_id = msnp::p2p::slp::Guid(u128::from_be_bytes(random)).to_string();
        Self {
            state: Mutex::new(SenderState {
                run_id,
                next: 1,
                lock_key: String::new(),
            }),
        }
    }

    /// Stores `message` as an offline message, answering a lock-key challenge on the way.
    pub async fn store(
        &self,
        book: &AddressBook,
        http: &reqwest::Client,
        product: Product,
        message: OfflineText<'_>,
    ) -> Result<(), OfflineError> {
        let mut state = self.state.lock().await;
        let mut refusal = None;
        for _ in 0..STORE_TRIES {
            let request = StoreRequest {
                from: message.from,
                friendly_name: message.friendly_name,
                to: message.to,
                ticket: &book.ticket,
                product,
                lock_key: &state.lock_key,
                run_id: &state.run_id,
                sequence: state.next,
                text: message.text,
            };
            let (status, body) = call(http, oim_store::store_message(&book.base, &request)).await?;
            match oim_store::parse_stored(status, &body, state.next) {
                Ok(()) => {
                    state.next += 1;
                    return Ok(());
                }
                Err(StoreRefusal::LockKey(challenge)) => {
                    tracing::debug!("the offline-message service asks for the lock key");
                    state.lock_key = oim_store::lock_key(&challenge, product);
                    refusal = Some(StoreRefusal::LockKey(challenge));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(refusal.unwrap_or(StoreRefusal::TicketExpired).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_a_braced_guid() {
        let sender = OfflineSender::new([0xAB; 16]);
        let state = sender.state.try_lock().expect("free");
        assert_eq!(state.run_id, "{ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB}");
        assert_eq!(state.next, 1);
    }
}
