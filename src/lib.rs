//! matrix-msn: a Matrix application service bridging MSN Messenger (MSNP) revival servers.
//!
//! Layout (see `docs/architecture.md`): `config` (typed config), `matrix` (the homeserver
//! side), `store` (SQLite/PostgreSQL), `bridge` (the core, which knows neither HTTP routes
//! nor MSNP wire types), `link` and `net` (the MSN side over the sans-IO `msnp` crate),
//! `app` (wiring and lifecycle), `metrics`, `logging`, `memory` (freed memory back to the
//! system).

pub mod app;
pub mod bridge;
pub mod channel;
pub mod config;
pub mod link;
pub mod logging;
pub mod matrix;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod store;
pub mod tls;
