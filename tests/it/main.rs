//! The integration tests, one binary: the store suite (SQLite always, PostgreSQL in the full
//! run), the appservice HTTP API over a real socket, migrations, and end to end against a
//! real Synapse with a real Matrix client library (matrix-sdk) playing the user.
//!
//! `scripts/test.sh` starts PostgreSQL and Synapse and sets `MSN_TEST_FULL=1`, which makes
//! the tests that need them fail (instead of skip) when they are missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test and benchmark code: a failure here should stop the run loudly"
)]

mod appservice;
mod bridge_circles;
mod bridge_e2e;
mod bridge_files;
mod bridge_offline;
mod bridge_pictures;
mod bridge_provisioning;
mod bridge_reliability;
mod bridge_space;
mod cli;
mod client_retry;
mod core;
mod deploy;
mod docs;
mod e2e;
mod layers;
mod link;
mod migrations;
mod net;
mod p2p;
mod store;
mod support;
mod testkit_msnp11_sdk;
mod testkit_msnp18;
mod testkit_raw;
