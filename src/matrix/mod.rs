//! The Matrix side: the only code that knows HTTP routes and Matrix wire types.
//!
//! - `appservice`: the HTTP API the homeserver calls (transactions, queries, ping).
//! - `transaction`: transaction bodies into the core's events.
//! - `client`: client-server API calls as the bot, a puppet, or (double puppeting) the
//!   user.
//! - `media`: media streamed between the media repository and files.
//! - `provisioning`: the provisioning API's routes (mautrix's v3 shape) over the core.
//! - `port`: the core's `MatrixPort` over the client.
//! - `registration`: the registration file.

pub mod appservice;
pub mod client;
pub mod endpoints;
pub mod media;
pub mod port;
pub mod provisioning;
pub mod registration;
pub mod transaction;

/// The content key marking a message a bridge sent as the real user (double puppeting),
/// mautrix's convention: such an event is the bridge's echo, never relayed back.
pub(crate) const DOUBLE_PUPPET_KEY: &str = "fi.mau.double_puppet_source";
/// Our value for [`DOUBLE_PUPPET_KEY`].
pub(crate) const DOUBLE_PUPPET_SOURCE: &str = "matrix-msn";
