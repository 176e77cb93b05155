//! The async shell around the sans-IO MSNP core: sockets, the Passport HTTP login, timers,
//! and cheap cloneable handles for the bridge.
//!
//! Owns: one driver task per socket (notification server or switchboard), which alone
//! touches that socket and its `msnp` state machine; handles that send commands over a
//! channel and await their reply by TrID (every request has a timeout); typed events out.
//! Must not import: the bridge core, the Matrix layer.

mod address_book;
mod backoff;
mod contact_edit;
mod error;
mod ns_client;
mod offline_messages;
mod p2p;
mod passport;
mod redact;
mod sb_client;
mod session;
mod settings;
mod soap_post;
mod wire;

pub use address_book::{AddressBook, AddressBookError};
pub use backoff::Backoff;
pub use contact_edit::ContactEdit;
pub use error::NetError;
pub use ns_client::{CircleState, NsClient, NsEvents};
pub use offline_messages::{FetchedMessage, OfflineError, OfflineSender, OfflineText};
pub use p2p::{P2P_MIN_INTERVAL, P2P_WINDOW, TransferError, random_seed};
pub use passport::{
    PassportError, SsoTokens, fetch_sso_tokens, fetch_ticket, fetch_ticket_by_route,
    fetch_ticket_not_rst, fetch_ticket_rst, http_client,
};
pub use sb_client::{FileSink, FileSource, SbClient, SbEvents, SwitchboardEvent};
pub use session::{EndReason, MsnSession, SessionEvent, SessionEvents};
pub use settings::{MsnSettings, TicketRoute};
pub use soap_post::PostError;
