//! Where and how to reach an MSN service: the server, the Passport nexus, the protocol
//! versions offered, timeouts.

use std::time::Duration;

use msnp::Limits;

/// How the TWN ticket is obtained (MSNP.md §2.4.2–2.4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TicketRoute {
    /// Passport 1.4: the nexus (or [`MsnSettings::dalogin_url`]), then `DALogin`.
    #[default]
    Nexus,
    /// One WS-Trust `POST` to `RST.srf` (R2M and Escargot both serve it). `url` may be
    /// a bare host or a full URL; without a path `/RST.srf` is used.
    Rst {
        /// The `RST.srf` URL.
        url: String,
    },
    /// One bodiless `POST` to Escargot's `NotRST.srf` with the account and password in
    /// `X-User`/`X-Password` headers; the ticket comes back in `X-Token` (Escargot only).
    /// `url` may be a bare host or a full URL; without a path `/NotRST.srf` is used.
    NotRst {
        /// The `NotRST.srf` URL.
        url: String,
    },
}

/// Connection settings shared by every MSN session of the bridge.
#[derive(Clone, Debug)]
pub struct MsnSettings {
    /// The dispatch or notification server, `host:port`.
    pub server: String,
    /// The Passport 1.4 nexus URL (`.../rdr/pprdr.asp`), or a bare host.
    pub nexus_url: String,
    /// Skip the nexus and use this login URL (DALogin) directly.
    pub dalogin_url: Option<String>,
    /// Passport 1.4 via the nexus (default), `RST.srf` or `NotRST.srf`.
    pub ticket_route: TicketRoute,
    /// Protocol versions offered in `VER`, best first (MSNP.md §12).
    pub versions: Vec<u8>,
    /// An extra CA certificate (PEM) trusted for the Passport HTTPS endpoints.
    pub extra_ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// How long a request (a command, a login step) may wait for its answer.
    pub request_timeout: Duration,
    /// How long one step of opening a switchboard (`XFR SB`, `USR`/`ANS`, `CAL` until
    /// the contact joins) may take before that switchboard is given up (MSNP.md §2.8:
    /// some servers never answer now and then).
    pub switchboard_step: Duration,
    pub limits: Limits,
}

impl MsnSettings {
    /// Settings for `server` and `nexus_url` with the documented defaults.
    pub fn new(server: impl Into<String>, nexus_url: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            nexus_url: nexus_url.into(),
            dalogin_url: None,
            ticket_route: TicketRoute::Nexus,
            versions: vec![12, 11, 10, 9, 8],
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            switchboard_step: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }
}
