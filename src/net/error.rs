//! Errors of the async shell, with the protocol's own reasons kept.

use msnp::{CloseReason, CommandError, FrameError, LoginError, SendError, SendFailure};

use super::address_book::AddressBookError;
use super::passport::PassportError;

/// Why a connection, a login or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    #[error("connection error: {0}")]
    Io(#[source] std::io::Error),
    #[error("the server sent something unparseable: {0}")]
    Frame(#[source] FrameError),
    #[error("Passport login failed: {0}")]
    Passport(#[source] PassportError),
    #[error("the address book failed: {0}")]
    AddressBook(#[source] AddressBookError),
    #[error("login refused: {0}")]
    Login(#[source] LoginError),
    #[error("too many redirects (last to {0})")]
    TooManyRedirects(String),
    #[error("the session closed: {0:?}")]
    Closed(CloseReason),
    #[error("the command was refused before sending: {0}")]
    Command(#[source] CommandError),
    #[error("the server answered error {code} ({description})")]
    Server {
        code: u16,
        description: &'static str,
    },
    #[error("no answer within the request timeout")]
    Timeout,
    #[error("the switchboard refused the message: {0}")]
    Send(#[source] SendError),
    #[error("the message was not delivered: {0:?}")]
    NotDelivered(SendFailure),
    #[error("the connection's driver has stopped")]
    DriverGone,
    #[error("the system has no randomness to sign in with")]
    NoRandomness,
}

impl NetError {
    pub(crate) fn server(code: u16) -> Self {
        Self::Server {
            code,
            description: msnp::description(code),
        }
    }
}
