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
    /// `RST.srf` for single sign-on (MSNP15+); `None`: the [`TicketRoute::Rst`] URL if
    /// that is the route, else `/RST.srf` on the nexus host, where both revival servers
    /// serve it (§2.8).
    pub sso_url: Option<String>,
    /// The address book's base URL (MSNP13+); `None`: the nexus host, where Escargot
    /// serves it (§2.8).
    pub address_book_url: Option<String>,
    /// An extra CA certificate (PEM) trusted for the Passport HTTPS endpoints.
    pub extra_ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// How long a request (a command, a login step) may wait for its answer.
    pub request_timeout: Duration,
    /// How long one step of opening a switchboard (`XFR SB`, `USR`/`ANS`, `CAL` until
    /// the contact joins) may take before that switchboard is given up (MSNP.md §2.8:
    /// some servers never answer now and then).
    pub switchboard_step: Duration,
    /// Least time between two P2P messages on a switchboard ([`P2P_MIN_INTERVAL`] by
    /// default; zero paces by the server's acknowledgements alone).
    ///
    /// [`P2P_MIN_INTERVAL`]: super::P2P_MIN_INTERVAL
    pub p2p_min_interval: Duration,
    /// The largest file a contact may send (larger offers are declined).
    pub max_file_bytes: u64,
    /// Where files from contacts are written as they arrive.
    pub file_dir: std::path::PathBuf,
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
            sso_url: None,
            address_book_url: None,
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            switchboard_step: Duration::from_secs(5),
            p2p_min_interval: super::P2P_MIN_INTERVAL,
            max_file_bytes: 100 * 1024 * 1024,
            file_dir: std::env::temp_dir().join("matrix-msn-files"),
            limits: Limits::default(),
        }
    }
}

impl MsnSettings {
    /// The `RST.srf` URL single sign-on posts to.
    pub fn sso_url(&self) -> String {
        if let Some(url) = &self.sso_url {
            return url.clone();
        }
        match &self.ticket_route {
            TicketRoute::Rst { url } => url.clone(),
            _ => format!("{}/RST.srf", origin(&self.nexus_url)),
        }
    }

    /// The address book's base URL.
    pub fn address_book_url(&self) -> String {
        self.address_book_url
            .clone()
            .unwrap_or_else(|| origin(&self.nexus_url))
    }
}

/// The scheme and authority of `url` (a bare host gets `https://`, as the nexus does).
fn origin(url: &str) -> String {
    let full = msnp::auth::normalize_url(url, "/").unwrap_or_else(|_| url.to_owned());
    match full.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_default_to_the_nexus_host() {
        let mut s = MsnSettings::new("127.0.0.1:1863", "http://127.0.0.1:8080/rdr/pprdr.asp");
        assert_eq!(s.sso_url(), "http://127.0.0.1:8080/RST.srf");
        assert_eq!(s.address_book_url(), "http://127.0.0.1:8080");
        s.nexus_url = "login.example".into();
        assert_eq!(s.sso_url(), "https://login.example/RST.srf");
        s.ticket_route = TicketRoute::Rst {
            url: "https://rst.example/RST2.srf".into(),
        };
        assert_eq!(s.sso_url(), "https://rst.example/RST2.srf");
        s.sso_url = Some("https://sso.example/RST.srf".into());
        s.address_book_url = Some("https://ab.example".into());
        assert_eq!(s.sso_url(), "https://sso.example/RST.srf");
        assert_eq!(s.address_book_url(), "https://ab.example");
    }
}
