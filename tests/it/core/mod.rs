//! The core tested without Synapse: the real `Bridge` (store, ingress, worker, the real
//! MSN link against the in-repo MSN server) with a recording homeserver behind its
//! `MatrixPort`, under tokio's paused clock. Each test has its own server on port 0 and
//! its own store, so they run in parallel; the Synapse end-to-end tests cover the real
//! homeserver.

mod circles;
mod files;
mod groups;
mod harness;
mod homeserver;
mod offline;
mod scenarios;
