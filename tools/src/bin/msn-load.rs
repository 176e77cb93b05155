//! `msn-load`: the load program. Drives MSN accounts and Matrix users through a bridge run
//! in-process (`matrix_msn::app::start`), against the test MSN server (run in a child
//! process, so its sockets and memory are not counted as the bridge's) and the in-process
//! homeserver stand-in (`msn_testkit::homeserver`), and prints:
//!
//! * messages/s bridged each way, with end-to-end and bridge-added latency p50/p99
//!   (bridge-added = end-to-end minus the test server's own relay time, measured with two
//!   plain MSN clients);
//! * RSS per logged-in idle MSN account at 100, 1,000 and 10,000 accounts, and idle CPU;
//! * start-up with every login of the run stored: the bridge stopped and started again on
//!   its database, when it is ready and how its logins come back at
//!   `--restore-per-second` (`msn_load/restart.rs`).
//!
//! With `--synapse`, the throughput and latency part runs against a real Synapse instead
//! of the stand-in (the idle stages are skipped): a dedicated one started with
//! `scripts/synapse-up.sh` on `--synapse-port` (stopped with `synapse-down.sh` at the end),
//! the bridge listening on the fixed `--bridge-port` its registration names, the Matrix
//! users registered with Synapse's shared secret and observed through their own `/sync`
//! (see `msn_load/synapse.rs`). The same code measures both modes (`msn_load/homeserver.rs`).
//! After the bridged bursts, the same numbers of messages go between plain Matrix users on
//! the same Synapse in the same two shapes (`msn_load/plain.rs`), and each direction's
//! bridged rate is printed as a fraction of the plain one.
//!
//! ```text
//! cargo run --release -p msn-tools --bin msn-load -- [--users 50] [--messages 100] [--latency-samples 300]
//!                                        [--idle 100,1000,10000] [--cpu-seconds 10]
//!                                        [--idle-budget-seconds 900] [--skip-throughput]
//!                                        [--skip-idle] [--skip-restart] [--restore-per-second 100]
//!                                        [--no-status-events]
//!                                        [--db-dir DIR]
//!                                        [--synapse [--synapse-port 18448] [--bridge-port 29555]]
//! ```
//!
//! `MSN_LOAD_USERS`, `MSN_LOAD_MESSAGES` and `MSN_LOAD_IDLE` stand in for the flags.
//! Everything is on loopback, every wait is bounded, and it stops by itself. Nothing is
//! asserted: the figures are printed (targets: added p50 < 1 ms, >= 5,000 msg/s,
//! <= 64 KB per idle account, idle CPU near zero).
#![allow(
    clippy::indexing_slicing,
    reason = "a measuring tool reading JSON it asked for; unwrap, expect and panic stay denied"
)]

#[path = "msn_load/homeserver.rs"]
mod homeserver;
#[path = "msn_load/plain.rs"]
mod plain;
#[path = "msn_load/restart.rs"]
mod restart;
#[path = "msn_load/synapse.rs"]
mod synapse;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use matrix_msn::config::{Config, PermissionLevel};
use matrix_msn::matrix::registration::Registration;
use matrix_msn::net::{
    MsnSettings, NsClient, NsEvents, SbClient, SbEvents, SwitchboardEvent, http_client,
};
use msn_testkit::homeserver::{Call, Homeserver, HomeserverConfig};
use msn_testkit::{MsnServer, MsnServerConfig};
use msnp::{MsgPayload, NsConfig, NsEvent, SbConfig, SbEvent, Secret, TextFormat};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use homeserver::Hs;
use synapse::{Synapse, SynapseProcess};

const PASSWORD: &str = "pw-load";
const DOMAIN: &str = "load.test";
const T: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(about = "Load program for the MSN bridge (see the module docs)")]
struct Args {
    /// Bridged users (each with one MSN contact) for throughput and latency.
    #[arg(long)]
    users: Option<usize>,
    /// Messages per user and direction in the throughput runs.
    #[arg(long)]
    messages: Option<usize>,
    /// One-at-a-time messages per direction for the unloaded latency figures.
    #[arg(long, default_value_t = 300)]
    latency_samples: usize,
    /// Concurrent sends per MSN contact in the MSN→Matrix throughput run.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Cumulative idle-account stages, comma-separated.
    #[arg(long, value_delimiter = ',')]
    idle: Option<Vec<usize>>,
    /// Seconds over which idle CPU is measured at each stage.
    #[arg(long, default_value_t = 10)]
    cpu_seconds: u64,
    /// Give up logging idle accounts in after this long (the figure reached is reported).
    #[arg(long, default_value_t = 900)]
    idle_budget_seconds: u64,
    #[arg(long)]
    skip_throughput: bool,
    #[arg(long)]
    skip_idle: bool,
    /// Skip the start-up stage (the bridge restarted with every login of the run stored).
    #[arg(long)]
    skip_restart: bool,
    /// The start-up stage's `msn.restore_logins_per_second`.
    #[arg(long, default_value_t = 100)]
    restore_per_second: u32,
    /// Run the bridge with `bridge.message_status_events: false` (no send-status event
    /// per Matrix message).
    #[arg(long)]
    no_status_events: bool,
    /// Where the bridge's SQLite database goes (default: the system temp dir); with
    /// --synapse, Synapse's data and the registration go there too.
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// Measure throughput and latency through a real Synapse (started with
    /// scripts/synapse-up.sh, stopped at the end) instead of the stand-in; the idle stages
    /// are skipped in this mode.
    #[arg(long)]
    synapse: bool,
    /// With --synapse: the port Synapse listens on (127.0.0.1).
    #[arg(long, default_value_t = 18448)]
    synapse_port: u16,
    /// With --synapse: the fixed port the bridge listens on (named in its registration).
    #[arg(long, default_value_t = 29555)]
    bridge_port: u16,
    /// Internal: run the test MSN server (child process mode).
    #[arg(long, hide = true)]
    serve_msn: bool,
    /// Internal (child): how many idle accounts to create.
    #[arg(long, hide = true, default_value_t = 0)]
    idle_accounts: usize,
    /// `cargo bench` passes this; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn env_or<T: std::str::FromStr>(flag: Option<T>, var: &str, default: T) -> T {
    flag.or_else(|| std::env::var(var).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(default)
}

fn user_account(i: usize) -> String {
    format!("u{i}@{DOMAIN}")
}
fn contact_account(i: usize) -> String {
    format!("c{i}@{DOMAIN}")
}
fn idle_account(i: usize) -> String {
    format!("idle{i}@{DOMAIN}")
}
const BASE_A: &str = "base-a@load.test";
const BASE_B: &str = "base-b@load.test";

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve_msn {
        runtime.block_on(serve_msn(&args))
    } else {
        runtime.block_on(run(args))
    }
}

// ----- child: the test MSN server -------------------------------------------------------

async fn serve_msn(args: &Args) -> Result<()> {
    let server = MsnServer::start(MsnServerConfig::default()).await?;
    let users = args.users.unwrap_or(0);
    for i in 0..users {
        server.add_account(&user_account(i), PASSWORD, &format!("User {i}"));
        server.add_account(&contact_account(i), PASSWORD, &format!("Contact {i}"));
        server.make_friends(&user_account(i), &contact_account(i));
    }
    server.add_account(BASE_A, PASSWORD, "Base A");
    server.add_account(BASE_B, PASSWORD, "Base B");
    server.make_friends(BASE_A, BASE_B);
    for i in 0..args.idle_accounts {
        server.add_account(&idle_account(i), PASSWORD, "");
    }
    println!(
        "dispatch={} nexus={}",
        server.dispatch_addr(),
        server.nexus_url()
    );
    // Runs until the parent closes our stdin (or dies).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    Ok(())
}

struct MsnChild {
    child: Child,
    dispatch: String,
    nexus: String,
}

fn spawn_msn_server(users: usize, idle: usize) -> Result<MsnChild> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--serve-msn",
            "--users",
            &users.to_string(),
            "--idle-accounts",
            &idle.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning the test MSN server")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let mut dispatch = None;
    let mut nexus = None;
    for part in line.split_whitespace() {
        if let Some(v) = part.strip_prefix("dispatch=") {
            dispatch = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("nexus=") {
            nexus = Some(v.to_owned());
        }
    }
    match (dispatch, nexus) {
        (Some(dispatch), Some(nexus)) => Ok(MsnChild {
            child,
            dispatch,
            nexus,
        }),
        _ => bail!("the test MSN server said {line:?}"),
    }
}

// ----- process figures --------------------------------------------------------------------

fn rss_kb(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let get = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    get(14).unwrap_or(0) + get(15).unwrap_or(0)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn fd_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| {
                    l.split_whitespace()
                        .skip(3)
                        .take(2)
                        .collect::<Vec<_>>()
                        .join("/")
                })
        })
        .unwrap_or_default()
}

// ----- what the homeserver stand-in saw ----------------------------------------------------

#[derive(Default)]
struct Seen {
    /// Matrix-bound load messages: sequence → (arrival, room).
    arrivals: HashMap<u64, (Instant, String)>,
    /// Rooms the bot joined.
    bot_rooms: HashSet<String>,
    logged_in: u64,
    login_failed: u64,
    last_failure: Option<String>,
}

struct Observer {
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Observer {
    fn new() -> Arc<Self> {
        Arc::new(Observer {
            seen: Mutex::new(Seen::default()),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Seen) -> bool) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.lock()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("timed out waiting for {what}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// A message the bridge sent into `room` (a load message, a login reply or other).
    fn message(&self, at: Instant, room: &str, body: &str, _event_id: &str) {
        if let Some(seq) = body
            .strip_prefix("m2x ")
            .and_then(|s| s.parse::<u64>().ok())
        {
            self.lock()
                .arrivals
                .entry(seq)
                .or_insert_with(|| (at, room.to_owned()));
        } else if body.starts_with("Logged in to MSN as ") {
            self.lock().logged_in += 1;
        } else if body.starts_with("Login failed") {
            let mut s = self.lock();
            s.login_failed += 1;
            s.last_failure = Some(body.to_owned());
        } else {
            return;
        }
        self.changed.notify_waiters();
    }

    fn bot_joined(&self, room: &str) {
        if self.lock().bot_rooms.insert(room.to_owned()) {
            self.changed.notify_waiters();
        }
    }
}

/// Feeds what the stand-in receives from the bridge into `observer`.
fn observe(hs: &Homeserver, bot: String, observer: Arc<Observer>) {
    let mut rx = hs.subscribe();
    tokio::spawn(async move {
        while let Some(received) = rx.recv().await {
            match received.call {
                Call::Message { room, content, .. } => {
                    let body = content["body"].as_str().unwrap_or_default();
                    observer.message(received.at, &room, body, "");
                }
                Call::Membership {
                    room,
                    target,
                    membership,
                    ..
                } if membership == "join" && target == bot => observer.bot_joined(&room),
                _ => {}
            }
        }
    });
}

// ----- MSN-side load clients ----------------------------------------------------------------

/// Matrix→MSN arrivals at the contacts: sequence → instant.
#[derive(Default)]
struct Inbox {
    arrivals: Mutex<HashMap<u64, Instant>>,
    changed: Notify,
    count: AtomicU64,
}

impl Inbox {
    fn got(&self, seq: u64) -> Option<Instant> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seq)
            .copied()
    }

    async fn wait_count(&self, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::Relaxed) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    async fn wait_seq(&self, seq: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = self.got(seq) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

/// Reads a switchboard's events, recording load texts (`<prefix> <seq>`).
fn read_sb(mut events: SbEvents, inbox: Arc<Inbox>, prefix: &'static str) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let SwitchboardEvent::Session(SbEvent::Message {
                payload: MsgPayload::Text { text, .. },
                ..
            }) = event
                && let Some(seq) = text
                    .strip_prefix(prefix)
                    .and_then(|s| s.trim().parse::<u64>().ok())
            {
                let at = Instant::now();
                inbox
                    .arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(seq, at);
                inbox.count.fetch_add(1, Ordering::Relaxed);
                inbox.changed.notify_waiters();
            }
        }
    });
}

fn drain_ns(mut events: NsEvents) {
    tokio::spawn(async move { while events.recv().await.is_some() {} });
}

async fn ns_login(
    settings: &MsnSettings,
    http: &reqwest::Client,
    account: &str,
) -> Result<(NsClient, NsEvents)> {
    let (client, mut events) = tokio::time::timeout(
        T,
        NsClient::connect(
            settings.clone(),
            http,
            NsConfig::new(account),
            Secret::new(PASSWORD),
        ),
    )
    .await
    .context("NS login hangs")?
    .with_context(|| format!("login of {account}"))?;
    tokio::time::timeout(T, async {
        while let Some(e) = events.recv().await {
            if matches!(e, NsEvent::OwnStatus { .. }) {
                return Ok(());
            }
        }
        bail!("NS events ended")
    })
    .await
    .context("own status hangs")??;
    Ok((client, events))
}

/// Opens a switchboard from `client` to `invitee` and waits until the invitee joined.
async fn open_sb(
    settings: &MsnSettings,
    client: &NsClient,
    invitee: &str,
) -> Result<(SbClient, SbEvents)> {
    let (address, auth) = tokio::time::timeout(T, client.request_switchboard())
        .await
        .context("XFR hangs")??;
    let (sb, mut events) = tokio::time::timeout(
        T,
        SbClient::open(
            settings,
            SbConfig::new(client.account(), client.version()),
            &address,
            &auth,
            &[invitee],
        ),
    )
    .await
    .context("SB open hangs")??;
    tokio::time::timeout(T, async {
        while let Some(e) = events.recv().await {
            if matches!(&e, SwitchboardEvent::Session(SbEvent::Joined { participant, .. }) if participant.email == invitee) {
                return Ok(());
            }
        }
        bail!("SB events ended before {invitee} joined")
    })
    .await
    .with_context(|| format!("{invitee} never joined"))??;
    Ok((sb, events))
}

// ----- statistics ---------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[derive(Clone, Copy, Default)]
struct Lat {
    p50: Duration,
    p99: Duration,
    n: usize,
}

fn lat(mut samples: Vec<Duration>) -> Lat {
    samples.sort();
    Lat {
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
        n: samples.len(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn minus(a: Duration, b: Duration) -> String {
    let v = a.as_secs_f64() - b.as_secs_f64();
    format!("{:.3} ms", v * 1000.0)
}

// ----- the run ------------------------------------------------------------------------------

struct Pair {
    mxid: String,
    /// Kept so the contact stays logged in.
    _contact: NsClient,
    sb: SbClient,
    portal: String,
}

struct Bridge {
    hs: Hs,
    observer: Arc<Observer>,
    shutdown: CancellationToken,
    running: matrix_msn::app::Running,
    bot: String,
    /// From the call that started it to its readiness.
    ready_after: Duration,
}

/// The bridge's config; `port` fixes where it listens (else it picks a free port).
fn bridge_config(hs_url: &str, db: &str, msn: &MsnChild, port: Option<u16>) -> Result<Config> {
    let text = include_str!("../../../config.example.yaml");
    let mut config = Config::parse(text)?;
    config.homeserver.domain = "localhost".into();
    config.homeserver.address = hs_url.into();
    config.appservice.as_token = "as-token-load-0123456789abcdef".into();
    config.appservice.hs_token = "hs-token-load-0123456789abcdef".into();
    config.appservice.hostname = "127.0.0.1".into();
    config.appservice.port = port.unwrap_or(0);
    config.appservice.address = format!("http://127.0.0.1:{}", config.appservice.port);
    config.database.uri = db.into();
    config.bridge.credentials_key = "5a".repeat(32);
    config.bridge.permissions = [("localhost".to_owned(), PermissionLevel::User)]
        .into_iter()
        .collect();
    config.msn.server = msn.dispatch.clone();
    config.msn.nexus_url = msn.nexus.clone();
    config.metrics.enabled = false;
    Ok(config)
}

/// Where the Synapse of `--synapse` is and the port the bridge must listen on.
struct SynapseTarget {
    url: String,
    pid: Option<u32>,
    bridge_port: u16,
}

/// Writes the registration Synapse needs for the bridge `start_bridge` will run.
fn write_registration(
    msn: &MsnChild,
    db: &str,
    bridge_port: u16,
    path: &std::path::Path,
) -> Result<()> {
    let config = bridge_config("http://127.0.0.1:1", db, msn, Some(bridge_port))?;
    std::fs::write(path, Registration::from_config(&config).to_yaml()?)
        .with_context(|| format!("writing {}", path.display()))
}

/// What the run changes in the bridge's config.
#[derive(Clone, Copy)]
struct Tuning {
    restore_per_second: u32,
    status_events: bool,
}

impl Tuning {
    fn of(args: &Args) -> Self {
        Tuning {
            restore_per_second: args.restore_per_second,
            status_events: !args.no_status_events,
        }
    }
}

/// Starts the bridge on `db`, with `tuning`.
async fn start_bridge(
    msn: &MsnChild,
    db: &str,
    synapse: Option<&SynapseTarget>,
    tuning: Tuning,
) -> Result<Bridge> {
    let observer = Observer::new();
    let (hs, config) = match synapse {
        Some(target) => {
            let config = bridge_config(&target.url, db, msn, Some(target.bridge_port))?;
            let driver = Synapse::new(
                &target.url,
                target.pid,
                &config.bot_mxid(),
                observer.clone(),
            )?;
            (Hs::Synapse(Arc::new(driver)), config)
        }
        None => {
            // The stand-in must exist before the bridge (its URL is in the config), and the
            // bridge decides its own port: the stand-in learns it once the bridge listens.
            let probe = bridge_config("http://127.0.0.1:1", db, msn, None)?;
            let bot = probe.bot_mxid();
            let hs = Homeserver::start(HomeserverConfig::new(
                "localhost",
                &probe.appservice.as_token,
                &probe.appservice.hs_token,
                &bot,
                &[&probe.puppet_namespace_regex()],
            ))
            .await?;
            observe(&hs, bot, observer.clone());
            let config = bridge_config(&hs.url(), db, msn, None)?;
            (Hs::StandIn(hs), config)
        }
    };
    let mut config = config;
    config.msn.restore_logins_per_second = tuning.restore_per_second;
    config.bridge.message_status_events = tuning.status_events;
    let bot = config.bot_mxid();
    let shutdown = CancellationToken::new();
    let port = config.appservice.port;
    let started = Instant::now();
    let mut running = matrix_msn::app::start(config, None, shutdown.clone())
        .await
        .with_context(|| match port {
            0 => "starting the bridge".to_owned(),
            _ => format!("starting the bridge on port {port} (--bridge-port)"),
        })?;
    if let Hs::StandIn(hs) = &hs {
        hs.set_appservice_url(&format!("http://{}", running.local_addr));
    }
    tokio::time::timeout(Duration::from_secs(60), running.ready.wait_for(|r| *r))
        .await
        .context("bridge not ready in 60 s")??;
    let ready_after = started.elapsed();
    Ok(Bridge {
        hs,
        observer,
        shutdown,
        running,
        bot,
        ready_after,
    })
}

/// Logs `accounts` in through management rooms (`login <email> <password>`), `matrix_user`
/// naming each one's Matrix user. Returns how many logged in within `limit`.
async fn login_all(
    bridge: &Bridge,
    accounts: &[(String, String)],
    limit: Duration,
    progress: bool,
) -> Result<u64> {
    let (start_ok, start_failed) = {
        let s = bridge.observer.lock();
        (s.logged_in, s.login_failed)
    };
    let started = Instant::now();
    let mut rooms = Vec::with_capacity(accounts.len());
    for (mxid, _) in accounts {
        rooms.push(bridge.hs.open_dm(mxid, &bridge.bot).await?);
    }
    bridge
        .hs
        .wait_bot_in(&bridge.observer, &rooms, limit)
        .await?;
    for ((mxid, account), room) in accounts.iter().zip(&rooms) {
        let _ = bridge
            .hs
            .say(room, mxid, &format!("login {account} {PASSWORD}"))
            .await;
    }
    let target = start_ok + accounts.len() as u64;
    let deadline = started + limit;
    let mut last_report = Instant::now();
    loop {
        let (ok, failed) = {
            let s = bridge.observer.lock();
            (s.logged_in, s.login_failed)
        };
        if ok + (failed - start_failed) >= target || Instant::now() >= deadline {
            if failed > start_failed {
                eprintln!(
                    "  {} logins failed; last: {:?}",
                    failed - start_failed,
                    bridge.observer.lock().last_failure
                );
            }
            return Ok(ok - start_ok);
        }
        if progress && last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            let done = ok - start_ok;
            eprintln!(
                "  … {done}/{} logged in after {:.0} s ({:.0}/s), {} fds",
                accounts.len(),
                started.elapsed().as_secs_f64(),
                done as f64 / started.elapsed().as_secs_f64(),
                open_fds()
            );
        }
        let _ = bridge
            .observer
            .wait("logins", Duration::from_millis(500), |s| {
                s.logged_in >= target
            })
            .await;
    }
}

struct Figures {
    lines: Vec<String>,
}

impl Figures {
    fn row(&mut self, what: &str, value: String) {
        let line = format!("{what:<52} {value}");
        println!("{line}");
        self.lines.push(line);
    }
}

async fn run(args: Args) -> Result<()> {
    let users = env_or(args.users, "MSN_LOAD_USERS", 50).max(1);
    let messages = env_or(args.messages, "MSN_LOAD_MESSAGES", 100).max(1);
    let mut stages = args
        .idle
        .clone()
        .or_else(|| {
            std::env::var("MSN_LOAD_IDLE")
                .ok()
                .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        })
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    stages.sort_unstable();
    if args.synapse {
        if args.skip_throughput {
            bail!("--synapse measures throughput and latency only: drop --skip-throughput");
        }
        // The idle stages measure the bridge process alone: the stand-in's run covers them.
        stages.clear();
    }
    let max_idle = if args.skip_idle {
        0
    } else {
        stages.last().copied().unwrap_or(0)
    };
    let pairs = if args.skip_throughput { 0 } else { users };

    eprintln!(
        "msn-load: {pairs} user pairs, {messages} messages each way per user, idle stages {stages:?}; fd limit {}",
        fd_limit()
    );
    let mut msn = spawn_msn_server(pairs, max_idle)?;
    let dir = args
        .db_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("msn-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = format!("sqlite:{}", dir.join("bridge.db").display());
    let result = async {
        // Dropped (Synapse stopped) before the directory holding its data is removed.
        let mut synapse = None;
        if args.synapse {
            let registration = dir.join("registration.yaml");
            write_registration(&msn, &db, args.bridge_port, &registration)?;
            let (data, port) = (dir.join("synapse"), args.synapse_port);
            eprintln!("starting Synapse on 127.0.0.1:{port} (scripts/synapse-up.sh)");
            let process = tokio::task::spawn_blocking(move || {
                SynapseProcess::start(&data, &registration, port, Duration::from_secs(300))
            })
            .await??;
            synapse = Some(process);
        }
        let target = synapse.as_ref().map(|p| SynapseTarget {
            url: p.url.clone(),
            pid: p.pid(),
            bridge_port: args.bridge_port,
        });
        run_with(&args, &msn, &db, pairs, messages, &stages, target).await
    }
    .await;
    drop(msn.child.stdin.take());
    let _ = tokio::task::spawn_blocking(move || msn.child.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_with(
    args: &Args,
    msn: &MsnChild,
    db: &str,
    pairs: usize,
    messages: usize,
    stages: &[usize],
    synapse: Option<SynapseTarget>,
) -> Result<()> {
    let child_pid = msn.child.id();
    let rss_start = rss_kb(None);
    let mut bridge = start_bridge(msn, db, synapse.as_ref(), Tuning::of(args)).await?;
    let mut settings = MsnSettings::new(msn.dispatch.clone(), msn.nexus.clone());
    settings.connect_timeout = Duration::from_secs(10);
    settings.request_timeout = Duration::from_secs(20);
    let http = http_client(None, Duration::from_secs(20))?;
    let mut figures = Figures { lines: Vec::new() };
    println!();
    println!(
        "== msn-load through {} ({} cores, {} clock ticks/s) ==",
        bridge.hs.name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        clock_ticks_per_second()
    );
    figures.row("bridge RSS at start", format!("{} KB", rss_start));

    let mut keep = Vec::new();
    if pairs > 0 {
        keep = throughput(
            &bridge,
            &settings,
            &http,
            pairs,
            messages,
            args,
            &mut figures,
        )
        .await?;
    }

    if !args.skip_idle && !stages.is_empty() {
        idle(&bridge, child_pid, stages, args, &mut figures).await?;
    }
    if !args.skip_restart && synapse.is_none() {
        let logins = bridge.running.metrics.msn_sessions.get().max(1);
        let limit = Duration::from_secs(60)
            + Duration::from_secs_f64(
                logins as f64 / f64::from(args.restore_per_second.max(1)) * 3.0,
            );
        bridge = restart::restart(bridge, msn, db, Tuning::of(args), limit, &mut figures).await?;
    }

    println!();
    println!("== summary ==");
    for line in &figures.lines {
        println!("{line}");
    }
    println!("{}", bridge.hs.summary());
    drop(keep);
    bridge.shutdown.cancel();
    if tokio::time::timeout(Duration::from_secs(120), bridge.running.wait())
        .await
        .is_err()
    {
        eprintln!("the bridge did not stop within 120 s");
    }
    Ok(())
}

async fn throughput(
    bridge: &Bridge,
    settings: &MsnSettings,
    http: &reqwest::Client,
    pairs: usize,
    messages: usize,
    args: &Args,
    figures: &mut Figures,
) -> Result<Vec<Pair>> {
    let seq = AtomicU64::new(1);
    // Baseline: the test server's own relay, between two plain MSN clients.
    let (base_a, base_a_events) = ns_login(settings, http, BASE_A).await?;
    let (base_b, mut base_b_events) = ns_login(settings, http, BASE_B).await?;
    drain_ns(base_a_events);
    let (base_sb, base_sb_events) = {
        let opener = open_sb(settings, &base_a, BASE_B);
        let answer = async {
            let invite = tokio::time::timeout(T, async {
                while let Some(e) = base_b_events.recv().await {
                    if let NsEvent::SwitchboardInvite {
                        session_id,
                        address,
                        auth,
                        ..
                    } = e
                    {
                        return Some((session_id, address, auth));
                    }
                }
                None
            })
            .await?
            .context("no RNG for the baseline")?;
            let (session_id, address, auth) = invite;
            let answered = SbClient::answer(
                settings,
                SbConfig::new(base_b.account(), base_b.version()),
                &address,
                &auth,
                &session_id,
            )
            .await?;
            anyhow::Ok(answered)
        };
        let (opened, answered) = tokio::join!(opener, answer);
        let (b_sb, b_events) = answered?;
        let (sb, _a_events) = opened?;
        (sb, (b_sb, b_events))
    };
    let (base_b_sb, base_sb_events) = base_sb_events;
    drain_ns(base_b_events);
    let base_inbox = Arc::new(Inbox::default());
    read_sb(base_sb_events, base_inbox.clone(), "base ");
    let mut base = Vec::new();
    for _ in 0..args.latency_samples {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        base_sb
            .send_text(format!("base {n}"), TextFormat::default())
            .await?;
        if let Some(at) = base_inbox.wait_seq(n, T).await {
            base.push(at - t0);
        }
    }
    let base = lat(base);
    figures.row(
        "baseline: test server relay (MSN→MSN) p50 / p99",
        format!("{} / {}  (n={})", ms(base.p50), ms(base.p99), base.n),
    );

    // Bridged users log in; their contacts log in and open a conversation each.
    let t = Instant::now();
    let accounts: Vec<(String, String)> = (0..pairs)
        .map(|i| (format!("@lu{i}:localhost"), user_account(i)))
        .collect();
    let ok = login_all(bridge, &accounts, Duration::from_secs(300), false).await?;
    if ok < pairs as u64 {
        bail!("only {ok} of {pairs} bridged users logged in");
    }
    eprintln!(
        "{pairs} bridged users logged in in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let to_msn = Arc::new(Inbox::default());
    let mut contacts = Vec::new();
    for i in 0..pairs {
        let (client, events) = ns_login(settings, http, &contact_account(i)).await?;
        drain_ns(events);
        let (sb, events) = open_sb(settings, &client, &user_account(i)).await?;
        read_sb(events, to_msn.clone(), "x2m ");
        contacts.push((client, sb));
    }
    // The first message from each contact creates its portal.
    let mut warm = Vec::new();
    for (_, sb) in &contacts {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        sb.send_text(format!("m2x {n}"), TextFormat::default())
            .await?;
        warm.push(n);
    }
    let obs = &bridge.observer;
    obs.wait("portals", Duration::from_secs(120), |s| {
        warm.iter().all(|n| s.arrivals.contains_key(n))
    })
    .await?;
    let mut list = Vec::new();
    for (i, ((client, sb), n)) in contacts.into_iter().zip(&warm).enumerate() {
        let portal = obs.lock().arrivals[n].1.clone();
        let mxid = accounts[i].0.clone();
        bridge.hs.join(&portal, &mxid).await?;
        list.push(Pair {
            mxid,
            _contact: client,
            sb,
            portal,
        });
    }
    eprintln!("{pairs} portals ready");
    // Through Synapse: the plain clients' bursts of the same shapes first (see plain.rs).
    let plain = match &bridge.hs {
        Hs::Synapse(synapse) => {
            let users: Vec<String> = list.iter().map(|p| p.mxid.clone()).collect();
            Some(plain::bursts(synapse, obs, &users, messages, &seq).await?)
        }
        Hs::StandIn(_) => None,
    };

    // MSN → Matrix, one at a time.
    let mut e2e = Vec::new();
    for k in 0..args.latency_samples {
        let pair = &list[k % pairs];
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        pair.sb
            .send_text(format!("m2x {n}"), TextFormat::default())
            .await?;
        obs.wait("a message", T, |s| s.arrivals.contains_key(&n))
            .await?;
        let at = obs.lock().arrivals[&n].0;
        e2e.push(at - t0);
    }
    let m2x = lat(e2e);

    // MSN → Matrix, all contacts at once.
    let total = pairs * messages;
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let first = seq.fetch_add(total as u64, Ordering::Relaxed);
    let started = Instant::now();
    let m2x_cpu = CpuMeter::start(bridge.hs.server_pid());
    let mut tasks = tokio::task::JoinSet::new();
    let window = args.window.max(1);
    for (i, pair) in list.iter().enumerate() {
        for w in 0..window {
            let sb = pair.sb.clone();
            let sent_at = sent_at.clone();
            tasks.spawn(async move {
                let mut failures = 0u64;
                for m in (w..messages).step_by(window) {
                    let n = first + (i * messages + m) as u64;
                    sent_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(n, Instant::now());
                    if sb
                        .send_text(format!("m2x {n}"), TextFormat::default())
                        .await
                        .is_err()
                    {
                        failures += 1;
                    }
                }
                failures
            });
        }
    }
    let mut send_failures = 0;
    while let Some(r) = tasks.join_next().await {
        send_failures += r.unwrap_or(0);
    }
    let sent_in = started.elapsed();
    let sent_at = std::mem::take(&mut *sent_at.lock().unwrap_or_else(|e| e.into_inner()));
    let m2x_burst = delivered(
        obs,
        "the MSN→Matrix burst",
        first..first + total as u64,
        started,
        &sent_at,
        m2x_cpu,
    )
    .await;

    // Matrix → MSN, one at a time.
    let mut e2e = Vec::new();
    for k in 0..args.latency_samples {
        let pair = &list[k % pairs];
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        bridge
            .hs
            .say(&pair.portal, &pair.mxid, &format!("x2m {n}"))
            .await?;
        if let Some(at) = to_msn.wait_seq(n, T).await {
            e2e.push(at - t0);
        } else {
            eprintln!("Matrix→MSN message {n} never arrived");
        }
    }
    let x2m = lat(e2e);

    // Matrix → MSN, all users at once (the stand-in batches them into transactions).
    let before = to_msn.count.load(Ordering::Relaxed);
    let first = seq.fetch_add(total as u64, Ordering::Relaxed);
    let started = Instant::now();
    let mut pushed_at = HashMap::with_capacity(total);
    let x2m_cpu = CpuMeter::start(bridge.hs.server_pid());
    for m in 0..messages {
        // One message from every user per round.
        let mut round = Vec::with_capacity(pairs);
        let now = Instant::now();
        for (i, pair) in list.iter().enumerate() {
            let n = first + (m * pairs + i) as u64;
            pushed_at.insert(n, now);
            round.push((pair.portal.clone(), pair.mxid.clone(), format!("x2m {n}")));
        }
        bridge.hs.say_all(&round).await?;
    }
    let complete = to_msn
        .wait_count(before + total as u64, Duration::from_secs(600))
        .await;
    let x2m_cpu = x2m_cpu.finish();
    let (x_arrived, x_last, x_loaded) = {
        let got = to_msn.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = started;
        let mut loaded = Vec::new();
        for (n, t0) in &pushed_at {
            if let Some(at) = got.get(n) {
                last = last.max(*at);
                loaded.push(*at - *t0);
            }
        }
        (loaded.len(), last, lat(loaded))
    };
    if !complete {
        eprintln!("Matrix→MSN burst incomplete: {x_arrived}/{total}");
    }
    let x2m_rate = x_arrived as f64 / (x_last - started).as_secs_f64();

    figures.row(
        "MSN→Matrix e2e unloaded p50 / p99",
        format!("{} / {}  (n={})", ms(m2x.p50), ms(m2x.p99), m2x.n),
    );
    figures.row(
        &format!(
            "MSN→Matrix {} p50 / p99 (e2e − baseline)",
            bridge.hs.added()
        ),
        format!(
            "{} / {}",
            minus(m2x.p50, base.p50),
            minus(m2x.p99, base.p99)
        ),
    );
    figures.row(
        &format!("MSN→Matrix throughput ({pairs}×{messages}, window {window})"),
        format!(
            "{:.0} msg/s  ({}/{total} in {:.2} s; sends took {:.2} s, {send_failures} failed)",
            m2x_burst.rate,
            m2x_burst.arrived,
            m2x_burst.elapsed.as_secs_f64(),
            sent_in.as_secs_f64()
        ),
    );
    figures.row(
        "MSN→Matrix e2e under that load p50 / p99",
        format!(
            "{} / {}",
            ms(m2x_burst.latency.p50),
            ms(m2x_burst.latency.p99)
        ),
    );
    if let Some(cpu) = m2x_burst.cpu.clone() {
        figures.row("MSN→Matrix burst: CPU of a core", cpu);
    }
    figures.row(
        "Matrix→MSN e2e unloaded p50 / p99",
        format!("{} / {}  (n={})", ms(x2m.p50), ms(x2m.p99), x2m.n),
    );
    figures.row(
        &format!(
            "Matrix→MSN {} p50 / p99 (e2e − baseline)",
            bridge.hs.added()
        ),
        format!(
            "{} / {}",
            minus(x2m.p50, base.p50),
            minus(x2m.p99, base.p99)
        ),
    );
    figures.row(
        &format!("Matrix→MSN throughput ({pairs}×{messages})"),
        format!(
            "{x2m_rate:.0} msg/s  ({x_arrived}/{total} in {:.2} s)",
            (x_last - started).as_secs_f64()
        ),
    );
    figures.row(
        "Matrix→MSN e2e under that load p50 / p99",
        format!("{} / {}", ms(x_loaded.p50), ms(x_loaded.p99)),
    );
    if let Some(cpu) = x2m_cpu {
        figures.row("Matrix→MSN burst: CPU of a core", cpu);
    }
    if let Some((as_bridge, as_users)) = &plain {
        let shape = "one sender per room, in order";
        side_by_side(figures, "MSN→Matrix", m2x_burst.rate, as_bridge, shape);
        side_by_side(
            figures,
            "Matrix→MSN",
            x2m_rate,
            as_users,
            "the users' rounds",
        );
    }
    drop((base_a, base_b, base_sb, base_b_sb));
    Ok(list)
}

/// One burst's outcome.
struct Burst {
    /// What `latency` is the time of.
    timed: &'static str,
    rate: f64,
    arrived: usize,
    total: usize,
    elapsed: Duration,
    latency: Lat,
    cpu: Option<String>,
}

/// Waits (at most five minutes) for the Matrix-bound messages `range` (sent from
/// `started`, each at `sent_at`) to be seen, and measures the burst.
async fn delivered(
    observer: &Observer,
    what: &str,
    range: std::ops::Range<u64>,
    started: Instant,
    sent_at: &HashMap<u64, Instant>,
    cpu: CpuMeter,
) -> Burst {
    let complete = observer
        .wait(what, Duration::from_secs(300), |s| {
            range.clone().all(|n| s.arrivals.contains_key(&n))
        })
        .await;
    let cpu = cpu.finish();
    let total = range.clone().count();
    let s = observer.lock();
    let mut last = started;
    let mut loaded = Vec::with_capacity(total);
    for n in range {
        if let Some((at, _)) = s.arrivals.get(&n) {
            last = last.max(*at);
            if let Some(t0) = sent_at.get(&n) {
                loaded.push(*at - *t0);
            }
        }
    }
    let arrived = loaded.len();
    if complete.is_err() {
        eprintln!("{what} incomplete: {arrived}/{total}");
    }
    let elapsed = last - started;
    Burst {
        timed: "e2e",
        rate: arrived as f64 / elapsed.as_secs_f64().max(1e-9),
        arrived,
        total,
        elapsed,
        latency: lat(loaded),
        cpu,
    }
}

/// The plain-client burst of `--synapse` beside the bridged one of the same shape.
fn side_by_side(figures: &mut Figures, direction: &str, bridged: f64, plain: &Burst, shape: &str) {
    figures.row(
        &format!("{direction} shape, plain clients ({shape})"),
        format!(
            "{:.0} msg/s  ({}/{} in {:.2} s; {} p50 / p99 {} / {})",
            plain.rate,
            plain.arrived,
            plain.total,
            plain.elapsed.as_secs_f64(),
            plain.timed,
            ms(plain.latency.p50),
            ms(plain.latency.p99)
        ),
    );
    if let Some(cpu) = &plain.cpu {
        figures.row(
            &format!("{direction} plain burst: CPU of a core"),
            cpu.clone(),
        );
    }
    figures.row(
        &format!("{direction} bridged ÷ plain (goal ≥ 0.9)"),
        format!("{:.2}", bridged / plain.rate.max(1e-9)),
    );
}

async fn idle(
    bridge: &Bridge,
    child_pid: u32,
    stages: &[usize],
    args: &Args,
    figures: &mut Figures,
) -> Result<()> {
    // Let the throughput phase's work settle before the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hz = clock_ticks_per_second() as f64;
    let base_rss = rss_kb(None);
    let base_child = rss_kb(Some(child_pid));
    let base_fds = open_fds();
    figures.row(
        "idle baseline: bridge process RSS / fds",
        format!("{base_rss} KB / {base_fds}"),
    );
    let (cpu, child_cpu) = idle_cpu(args.cpu_seconds, child_pid, hz).await;
    figures.row(
        &format!(
            "idle CPU with 0 idle accounts (over {} s)",
            args.cpu_seconds
        ),
        format!("{cpu:.2}% of a core (test MSN server: {child_cpu:.2}%)"),
    );
    let budget = Instant::now() + Duration::from_secs(args.idle_budget_seconds);
    let mut done = 0usize;
    let mut prev_rss = base_rss;
    for &stage in stages {
        if stage <= done {
            continue;
        }
        let remaining = budget.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            figures.row(
                &format!("{stage} idle accounts"),
                "not attempted (time budget spent)".into(),
            );
            break;
        }
        let accounts: Vec<(String, String)> = (done..stage)
            .map(|i| (format!("@li{i}:localhost"), idle_account(i)))
            .collect();
        let t = Instant::now();
        eprintln!("logging in idle accounts {done}..{stage}");
        let ok = login_all(bridge, &accounts, remaining, true).await? as usize;
        let took = t.elapsed();
        let reached = done + ok;
        // Settled, and past the bridge's next return of freed memory (`memory::trim`).
        tokio::time::sleep(matrix_msn::memory::TRIM_EVERY + Duration::from_secs(2)).await;
        let rss = rss_kb(None);
        let per = (rss.saturating_sub(base_rss)) as f64 / reached.max(1) as f64;
        let per_stage = (rss.saturating_sub(prev_rss)) as f64 / ok.max(1) as f64;
        let (cpu, child_cpu) = idle_cpu(args.cpu_seconds, child_pid, hz).await;
        let label = if reached == stage {
            format!("{stage} idle accounts")
        } else {
            format!("{stage} idle accounts (REACHED {reached})")
        };
        figures.row(
            &format!("{label}: logins"),
            format!(
                "{ok} in {:.1} s ({:.0}/s)",
                took.as_secs_f64(),
                ok as f64 / took.as_secs_f64()
            ),
        );
        figures.row(
            &format!("{label}: RSS per account (all / this stage)"),
            format!(
                "{per:.1} KB / {per_stage:.1} KB  (RSS {rss} KB, fds {}; test server +{:.1} KB/acct)",
                open_fds(),
                rss_kb(Some(child_pid)).saturating_sub(base_child) as f64 / reached.max(1) as f64
            ),
        );
        figures.row(
            &format!("{label}: idle CPU over {} s", args.cpu_seconds),
            format!("{cpu:.2}% of a core (test MSN server: {child_cpu:.2}%)"),
        );
        prev_rss = rss;
        done = reached;
        if reached < stage {
            break;
        }
    }
    Ok(())
}

/// CPU used over a stretch by this process (bridge, MSN clients) and a separate homeserver.
struct CpuMeter {
    at: Instant,
    own: u64,
    server: Option<(u32, u64)>,
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> Self {
        CpuMeter {
            at: Instant::now(),
            own: cpu_ticks(None),
            server: server_pid.map(|pid| (pid, cpu_ticks(Some(pid)))),
        }
    }

    /// The shares of a core, when there is a separate homeserver to compare with.
    fn finish(self) -> Option<String> {
        let (pid, server) = self.server?;
        let per_core = clock_ticks_per_second() as f64 * self.at.elapsed().as_secs_f64() / 100.0;
        let share = |ticks: u64| ticks as f64 / per_core;
        Some(format!(
            "load process (bridge + MSN clients) {:.0}%, homeserver {:.0}%",
            share(cpu_ticks(None).saturating_sub(self.own)),
            share(cpu_ticks(Some(pid)).saturating_sub(server))
        ))
    }
}

/// Percent of one core used by this process and by the child over `seconds`.
async fn idle_cpu(seconds: u64, child_pid: u32, hz: f64) -> (f64, f64) {
    let (a0, c0) = (cpu_ticks(None), cpu_ticks(Some(child_pid)));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (a1, c1) = (cpu_ticks(None), cpu_ticks(Some(child_pid)));
    (
        (a1 - a0) as f64 / hz / secs * 100.0,
        (c1 - c0) as f64 / hz / secs * 100.0,
    )
}
