//! matrix-msn: a Matrix application service bridging MSN Messenger (MSNP) revival servers.
//!
//! Layout (see the README's architecture section): `config` (typed config), `matrix` (the
//! homeserver side), `store` (SQLite/PostgreSQL), `bridge` (the core, which knows neither
//! HTTP routes nor MSNP wire types), `app` (wiring and lifecycle), `logging`.

pub mod app;
pub mod bridge;
pub mod config;
pub mod link;
pub mod logging;
pub mod matrix;
pub mod metrics;
pub mod msnp;
pub mod net;
pub mod store;
pub mod testkit;
