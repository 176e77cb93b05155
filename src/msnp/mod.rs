//! Sans-IO MSNP protocol core (MSNP.md §1, §3, §5.6, §7): framing, numeric server
//! errors, challenges, percent-encoding and `MSG` MIME payloads.
//!
//! Owns pure parsing and encoding only: no tokio, no sockets, no clock, no randomness.
//! Every length read from the network is checked against [`Limits`] before allocation.
//! Must not import anything from `net`, `matrix`, `bridge` or `store`.

pub mod challenge;
pub mod error;
pub mod escape;
pub mod frame;
pub mod limits;
pub mod message;
pub mod verb;

pub use error::{ServerError, description};
pub use frame::{Direction, EncodeError, Frame, FrameError, parse};
pub use limits::{Limits, SB_MSG_SEND_LIMIT};
pub use message::{
    ChunkAssembler, ChunkPart, Effects, EmoticonDecl, Headers, MessageError, MimeMessage,
    MsgPayload, Rgb, TextFormat, classify, parse_msg,
};
pub use verb::Verb;
