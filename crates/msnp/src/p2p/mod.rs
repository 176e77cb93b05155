//! MSN display pictures and custom emoticons peer to peer through the switchboard
//! (MSNP.md §8–§10): the msnobj descriptor, P2P v1 binary framing, MSNSLP, the
//! transfer machine that fetches contacts' objects and serves ours, and the file
//! context of file transfers.
//!
//! Sans-IO like the rest of `msnp`: no sockets, no clock, no randomness of its own
//! (time and a seed are passed in). Must not import anything outside `msnp`.

pub mod file_context;
pub mod header;
pub mod msnobject;
pub mod session;
pub mod slp;

pub use file_context::{FileContext, FileContextError};
pub use header::{Header, HeaderError, MAX_CHUNK, Packet, Reassembly, ReassemblyError};
pub use msnobject::{MsnObject, MsnObjectError};
pub use session::{
    DeclineReason, FILE_FEED_WINDOW, FetchError, P2pConfig, P2pEndpoint, P2pError, P2pEvent, Seed,
    SessionIds, StartError, TransferId,
};
pub use slp::{Guid, SlpError, SlpMessage, StartLine};
