//! The Matrix side: the only code that knows HTTP routes and Matrix wire types.
//!
//! - `appservice`: the HTTP API the homeserver calls (transactions, queries, ping).
//! - `transaction`: transaction bodies into the core's events.
//! - `client`: client-server API calls as the bot or a puppet.
//! - `port`: the core's `MatrixPort` over the client.
//! - `registration`: the registration file.

pub mod appservice;
pub mod client;
pub mod endpoints;
pub mod port;
pub mod registration;
pub mod transaction;
