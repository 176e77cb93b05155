//! Wiring and lifecycle: opens the store, starts the appservice HTTP server, pings the
//! homeserver, makes sure the bot exists with its profile, runs the core's worker, and
//! shuts everything down in order when the cancellation token fires.
//!
//! Used by `main.rs` and by the end-to-end tests, which run the bridge in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ruma::OwnedUserId;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bridge::credentials::CredentialBox;
use crate::bridge::{Bridge, Parts};
use crate::config::{Config, MsnConfig};
use crate::link::MsnLink;
use crate::matrix::appservice::{AppState, router};
use crate::matrix::client::{Client, ClientError};
use crate::matrix::provisioning::Provisioning;
use crate::matrix::registration::{Registration, RegistrationError};
use crate::matrix::transaction::EchoFilter;
use crate::metrics::Metrics;
use crate::net::{MsnSettings, TicketRoute};
use crate::store::{Store, StoreError};

/// How often puppets' presence is set again (Synapse's `sync_online_timeout` is 30 s).
const PRESENCE_REFRESH: Duration = Duration::from_secs(25);

/// Why the bridge could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the homeserver client: {0}")]
    Client(#[source] ClientError),
    #[error("the bot's user ID {0:?} is invalid")]
    BotId(String),
    #[error("the puppet namespace is not a valid regex: {0}")]
    Namespace(#[source] regex::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read msn.extra_ca_file {path}: {source}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] crate::bridge::credentials::CredentialsError),
    #[error(transparent)]
    Passport(#[from] crate::net::PassportError),
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bridge that is listening; [`Running::wait`] returns when it has stopped.
pub struct Running {
    pub local_addr: SocketAddr,
    /// Becomes `true` once the homeserver answered the startup ping and the bot is set up.
    pub ready: watch::Receiver<bool>,
    /// How many Matrix events the core has handled since start.
    pub handled_events: Arc<std::sync::atomic::AtomicU64>,
    /// How many of those were room messages.
    pub handled_messages: Arc<std::sync::atomic::AtomicU64>,
    /// The bridge's metrics (what `/metrics` serves when enabled).
    pub metrics: Arc<Metrics>,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    worker: tokio::task::JoinHandle<()>,
    startup: tokio::task::JoinHandle<()>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
    store: Store,
}

impl Running {
    /// Waits for the server and the worker to finish after the shutdown token fired.
    pub async fn wait(self) -> Result<(), RunError> {
        let server = self.server.await;
        let worker = self.worker.await;
        self.startup.abort();
        if let Some(metrics) = self.metrics_server {
            let _ = metrics.await;
        }
        self.store.close().await;
        match server {
            Ok(result) => result.map_err(RunError::Serve)?,
            Err(e) => tracing::error!(error = %e, "HTTP server task panicked"),
        }
        if let Err(e) = worker {
            tracing::error!(error = %e, "worker task panicked");
        }
        Ok(())
    }
}

/// Starts the bridge. `registration`, when given, is checked against the config first.
pub async fn start(
    config: Config,
    registration: Option<&Registration>,
    shutdown: CancellationToken,
) -> Result<Running, RunError> {
    config.validate()?;
    if let Some(registration) = registration {
        registration.check_against(&config)?;
    }
    let config = Arc::new(config);
    let store = Store::connect_with(
        &config.database.uri,
        config.database.max_connections,
        config.database.sqlite_power_safe,
    )
    .await?;
    tracing::info!(dialect = ?store.dialect(), "database ready");

    let bot_id = config.bot_mxid();
    let bot =
        OwnedUserId::try_from(bot_id.as_str()).map_err(|_| RunError::BotId(bot_id.clone()))?;
    let client = Arc::new(
        Client::new(
            &config.homeserver.address,
            &config.appservice.as_token,
            bot.clone(),
        )
        .map_err(RunError::Client)?
        .with_double_puppet(config.bridge.double_puppet_tokens()),
    );
    let filter =
        EchoFilter::new(&bot_id, &config.puppet_namespace_regex()).map_err(RunError::Namespace)?;

    let metrics = Metrics::new();
    let metrics_server = if config.metrics.enabled {
        let addr = config.metrics.listen.clone();
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| RunError::Listen {
                addr: addr.clone(),
                source,
            })?;
        tracing::info!(%addr, "metrics listening");
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        Some(tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener, metrics, shutdown).await {
                tracing::error!(error = %e, "the metrics server failed");
            }
        }))
    } else {
        None
    };
    let credentials = CredentialBox::from_hex(&config.bridge.credentials_key)?;
    let (feed, intake) = crate::bridge::event_feed();
    let (ready_tx, ready) = watch::channel(false);
    let link = Arc::new(MsnLink::new(
        msn_settings(&config)?,
        Duration::from_secs(config.msn.reconnect_initial_seconds),
        Duration::from_secs(config.msn.reconnect_max_seconds),
    )?);
    let bridge = Bridge::new(Parts {
        config: config.clone(),
        store: store.clone(),
        matrix: client.clone(),
        msn: link,
        credentials: credentials.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    });
    let provisioning = (!config.bridge.provisioning_secret.is_empty()).then(|| {
        Provisioning::new(
            bridge.provisioner(),
            &config.bridge.provisioning_secret,
            bot,
            &config.homeserver.domain,
            &config.bridge.command_prefix,
        )
    });
    let state = AppState {
        store: store.clone(),
        hs_token: Arc::from(config.appservice.hs_token.as_str()),
        filter: Arc::new(filter),
        ingress: crate::bridge::Ingress::new(store.clone(), feed, credentials.clone()),
        ready: ready.clone(),
        pinged: Arc::new(Notify::new()),
        max_body_bytes: config.appservice.max_body_bytes,
        metrics: metrics.clone(),
        provisioning,
    };

    let addr = format!("{}:{}", config.appservice.hostname, config.appservice.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| RunError::Listen { addr, source })?;
    tracing::info!(%local_addr, "appservice listening");

    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await
    });

    crate::memory::spawn_trimmer(shutdown.clone());

    let handled_events = bridge.handled_counter();
    let handled_messages = bridge.handled_messages_counter();
    let worker_bridge = bridge.clone();
    let worker = tokio::spawn(
        async move {
            worker_bridge.run(intake).await;
            worker_bridge.logout_all().await;
        }
        .instrument(tracing::info_span!("worker")),
    );

    let startup = tokio::spawn(
        async move {
            if startup_tasks(config, client, ready_tx, shutdown).await {
                let refresher = bridge.clone();
                tokio::spawn(
                    async move { refresher.refresh_presence(PRESENCE_REFRESH).await }
                        .instrument(tracing::info_span!("presence_refresh")),
                );
                bridge.restore_logins().await;
            }
        }
        .instrument(tracing::info_span!("startup")),
    );

    Ok(Running {
        local_addr,
        ready,
        handled_events,
        handled_messages,
        metrics,
        server,
        worker,
        startup,
        metrics_server,
        store,
    })
}

/// The MSN connection settings from the config (reading the extra CA file, if any).
pub fn msn_settings(config: &Config) -> Result<MsnSettings, RunError> {
    let msn = &config.msn;
    let mut settings = MsnSettings::new(msn.server.clone(), msn.nexus_url.clone());
    settings.versions = msn.protocol_versions.clone();
    settings.dalogin_url = Some(msn.dalogin_url.clone()).filter(|u| !u.is_empty());
    settings.ticket_route = ticket_route(msn);
    settings.switchboard_step = std::time::Duration::from_secs(msn.switchboard_step_seconds);
    settings.max_file_bytes = msn.max_file_bytes;
    settings.p2p_min_interval = std::time::Duration::from_millis(msn.p2p_pacing_ms);
    settings.file_dir = msn.file_dir();
    if !msn.extra_ca_file.is_empty() {
        let pem = std::fs::read(&msn.extra_ca_file).map_err(|source| RunError::CaFile {
            path: msn.extra_ca_file.clone(),
            source,
        })?;
        settings.extra_ca_pem = Some(pem);
    }
    Ok(settings)
}

/// The TWN ticket route: `not_rst_url` when set (the most specific choice: Escargot
/// only), else `rst_url`, else the nexus (or `dalogin_url`).
fn ticket_route(msn: &MsnConfig) -> TicketRoute {
    if !msn.not_rst_url.is_empty() {
        TicketRoute::NotRst {
            url: msn.not_rst_url.clone(),
        }
    } else if !msn.rst_url.is_empty() {
        TicketRoute::Rst {
            url: msn.rst_url.clone(),
        }
    } else {
        TicketRoute::Nexus
    }
}

/// Pings the homeserver (which also flushes transactions it held back) and sets up the bot,
/// retrying with backoff until both work: the homeserver may start after the bridge.
async fn startup_tasks(
    config: Arc<Config>,
    client: Arc<Client>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> bool {
    let mut delay = Duration::from_secs(1);
    loop {
        match startup_once(&config, &client).await {
            Ok(()) => {
                ready.send_replace(true);
                tracing::info!("homeserver reachable; bridge ready");
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?delay, "homeserver not usable yet");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

async fn startup_once(config: &Config, client: &Client) -> Result<(), ClientError> {
    let txn = format!("startup-{}", crate::store::now_ms());
    client.ping_homeserver(&config.appservice.id, &txn).await?;
    let bot = &config.appservice.bot;
    client.ensure_registered(&bot.username).await?;
    if let Some(name) = bot.displayname.as_deref().filter(|n| !n.is_empty()) {
        client.set_displayname(client.bot(), name).await?;
    }
    if let Some(avatar) = bot.avatar.as_deref().filter(|a| !a.is_empty()) {
        client.set_avatar(client.bot(), avatar).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_route_precedence_not_rst_then_rst_then_nexus() {
        let mut msn: MsnConfig = serde_yaml::from_str(
            "server: msn.test:1863\nnexus_url: https://msn.test/rdr/pprdr.asp",
        )
        .expect("minimal msn section");
        assert_eq!(ticket_route(&msn), TicketRoute::Nexus);
        msn.rst_url = "https://msn.test/RST.srf".into();
        let rst = TicketRoute::Rst {
            url: msn.rst_url.clone(),
        };
        assert_eq!(ticket_route(&msn), rst);
        msn.not_rst_url = "https://msn.test/NotRST.srf".into();
        let not_rst = TicketRoute::NotRst {
            url: msn.not_rst_url.clone(),
        };
        assert_eq!(ticket_route(&msn), not_rst);
        msn.rst_url.clear();
        assert_eq!(ticket_route(&msn), not_rst);
    }
}
