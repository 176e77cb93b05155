//! Test support shared by the integration tests and the load program: a real, in-process
//! MSNP8–12 server ([`msn_server`]) that behaves like the revival servers of MSNP.md §2.8
//! (dispatch, notification server, switchboard, Passport 1.4 HTTP) with fault injection.
//!
//! Owns only test infrastructure. Uses the `msnp` crate's framing (frame, verb, limits,
//! challenge, message, escape) but never the bridge crate (its manifest has no such
//! dependency), so that the bridge is always tested against an independent server. [`homeserver`] is a
//! fast stand-in for Synapse on the Matrix side, speaking plain JSON; [`synapse`] helps
//! drive a real one.

pub mod homeserver;
pub mod msn_server;
pub mod synapse;

pub use msn_server::{
    Lists, LoggedFrame, MsnServer, MsnServerConfig, MsnServerHandle, ServerEvent, ServerKind,
};
