//! Test support shared by the integration tests and the load program: a real, in-process
//! MSNP8–12 server ([`msn_server`]) that behaves like the revival servers of MSNP.md §2.8
//! (dispatch, notification server, switchboard, Passport 1.4 HTTP) with fault injection.
//!
//! Owns only test infrastructure. May use `crate::msnp` framing (frame, verb, limits,
//! challenge, message, escape) but must not import `net`, `matrix`, `bridge` or `store`,
//! so that the bridge is always tested against an independent server. [`homeserver`] is a
//! fast stand-in for Synapse on the Matrix side, speaking plain JSON; [`synapse`] helps
//! drive a real one.

pub mod homeserver;
pub mod msn_server;
pub mod synapse;

pub use msn_server::{
    Lists, LoggedFrame, MsnServer, MsnServerConfig, MsnServerHandle, ServerEvent, ServerKind,
};
