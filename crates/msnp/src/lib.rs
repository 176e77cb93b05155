//! Sans-IO MSNP protocol core (MSNP.md §1–§7, §11): framing, numeric server
//! errors, challenges, percent-encoding, `MSG` MIME payloads, TWN and SSO ticket steps as data
//! (`auth`, `mbi`), `<ml>` documents (`ml`), XML read with quick-xml (`xml`), and the
//! notification-server (`ns`) and switchboard (`sb`) state machines
//! (inputs via `handle_*(now, …)`, outputs via `poll_*()`).
//!
//! Owns pure parsing and encoding only: no tokio, no sockets, no clock, no randomness.
//! Every length read from the network is checked against [`Limits`] before allocation.
//! Its manifest has no async runtime, HTTP client, database or randomness, and no other
//! crate of the workspace (`tests/it/layers.rs` checks).

pub mod abch;
pub mod args;
pub mod auth;
pub mod challenge;
pub mod circle;
pub mod error;
pub mod escape;
pub mod frame;
pub mod limits;
pub mod mbi;
pub mod message;
pub mod ml;
pub mod ns;
pub mod oim;
pub mod p2p;
pub mod sb;
pub mod soap;
pub mod verb;
pub mod xml;

pub use args::Args;
pub use auth::{AuthError, FaultCode, HttpMethod, HttpRequest, LoginResponse, PostRequest, Secret};
pub use error::{ServerError, description};
pub use frame::{Direction, EncodeError, Frame, FrameError, parse};
pub use limits::{Limits, SB_MSG_SEND_LIMIT};
pub use message::{
    ChunkAssembler, ChunkPart, Effects, EmoticonDecl, Headers, InkFormat, MessageError,
    MimeMessage, MsgPayload, Rgb, TextFormat, classify, parse_msg,
};
pub use ns::{
    CloseReason, CommandError, Contact, ContactList, List, ListChange, LoginError, NsConfig,
    NsEvent, NsSession, Presence, SbRequestId, Status,
};
pub use sb::{
    AckMode, MessageId, Participant, SbCloseReason, SbConfig, SbEvent, SbSession, SendError,
    SendFailure,
};
pub use verb::Verb;
