//! `msn-fault`: the fault suite. Runs the whole bridge (in a child process, so it can be
//! killed) against the test MSN server (in a child process, so it can be restarted) and a
//! real Synapse (started with `scripts/synapse-up.sh`), with Matrix users observed through
//! their own `/sync` and MSN contacts logged in with the bridge's own MSN client. For each
//! fault it sends messages both ways at a steady pace, injects the fault a third of the
//! way through, waits for the flow to settle, and prints per direction: messages sent,
//! delivered, visibly failed (a "not delivered" notice in the portal, or an error at the
//! MSN sender), lost (neither), duplicated, and how long after the fault the first message
//! sent after it arrived.
//!
//! Faults: the bridge killed with SIGKILL and started again; Synapse restarted on its
//! data; the MSN server killed and back after 10 s on the same ports (every MSN connection
//! drops); every switchboard of the bridged users dropped mid-conversation.
//!
//! ```text
//! cargo run --release -p msn-tools --bin msn-fault -- [--users 10] [--messages 100] [--rate 40]
//!     [--faults bridge-kill,synapse-restart,msn-restart,switchboard-drop]
//!     [--synapse-port 18449] [--bridge-port 29556] [--drain-seconds 240]
//! ```
//!
//! Everything is on loopback, every wait is bounded, and it stops by itself. Nothing is
//! asserted; the goal is 0 lost and 0 duplicated for every fault.
#![allow(
    clippy::indexing_slicing,
    reason = "a measuring tool reading JSON it asked for; unwrap, expect and panic stay denied"
)]

// The Synapse process and Matrix users of msn-load; not all of it is used here.
#[allow(dead_code)]
#[path = "msn_load/synapse.rs"]
mod synapse;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use matrix_msn::bridge::formatting::{RichText, Style};
use matrix_msn::bridge::ids::MsnAddress;
use matrix_msn::bridge::remote::{Chat, MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent};
use matrix_msn::config::{Config, PermissionLevel};
use matrix_msn::link::{LinkSession, MsnLink};
use matrix_msn::matrix::registration::Registration;
use matrix_msn::net::MsnSettings;
use msn_testkit::{MsnServer, MsnServerConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use synapse::{Synapse, SynapseProcess};

const PASSWORD: &str = "pw-fault";
const DOMAIN: &str = "fault.test";
/// Longest wait for one setup step.
const STEP: Duration = Duration::from_secs(60);
/// How long the MSN server stays away in its restart.
const MSN_AWAY: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "Fault suite for the MSN bridge (see the module docs)")]
struct Args {
    /// Bridged users, each with one MSN contact.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Messages per user and direction in each fault's run (10 × 100 = 1,000 each way).
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Messages per second sent each way.
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Which faults to inject, in order.
    #[arg(long, value_delimiter = ',', default_values_t = [
        "bridge-kill".to_owned(), "synapse-restart".to_owned(),
        "msn-restart".to_owned(), "switchboard-drop".to_owned()])]
    faults: Vec<String>,
    /// How long to wait, after the last send of a run, for every message to settle.
    #[arg(long, default_value_t = 240)]
    drain_seconds: u64,
    /// The port Synapse listens on (127.0.0.1).
    #[arg(long, default_value_t = 18449)]
    synapse_port: u16,
    /// The port the bridge listens on (named in its registration).
    #[arg(long, default_value_t = 29556)]
    bridge_port: u16,
    /// Where the databases go (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: run the test MSN server (child process).
    #[arg(long, hide = true)]
    serve_msn: bool,
    /// Internal: run the bridge from this config file (child process).
    #[arg(long, hide = true)]
    serve_bridge: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    dispatch_port: u16,
    #[arg(long, hide = true, default_value_t = 0)]
    http_port: u16,
}

fn user_account(i: usize) -> String {
    format!("u{i}@{DOMAIN}")
}
fn contact_account(i: usize) -> String {
    format!("c{i}@{DOMAIN}")
}
fn matrix_user(i: usize) -> String {
    format!("@fault{i}:localhost")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.serve_msn {
        return serve_msn(&args).await;
    }
    if let Some(config) = &args.serve_bridge {
        return serve_bridge(config).await;
    }
    run(args).await
}

// ----- the child processes -------------------------------------------------------------------

/// The test MSN server on fixed dispatch and HTTP ports, with the users and their contacts;
/// `close-switchboards` on stdin drops every switchboard of the users. Ends with stdin.
async fn serve_msn(args: &Args) -> Result<()> {
    let server = MsnServer::start(MsnServerConfig {
        dispatch_port: args.dispatch_port,
        http_port: args.http_port,
        ..MsnServerConfig::default()
    })
    .await?;
    for i in 0..args.users {
        server.add_account(&user_account(i), PASSWORD, &format!("User {i}"));
        server.add_account(&contact_account(i), PASSWORD, &format!("Contact {i}"));
        server.make_friends(&user_account(i), &contact_account(i));
    }
    println!("ready");
    let users = args.users;
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        if line.trim() == "close-switchboards" {
            for i in 0..users {
                server.close_switchboards(&user_account(i));
            }
        }
    }
    Ok(())
}

/// The bridge, as `matrix-msn -c CONFIG` would run it; stops when stdin closes (or with
/// SIGKILL, which is the point).
async fn serve_bridge(config: &Path) -> Result<()> {
    let config = Config::load(config)?;
    matrix_msn::logging::init(&config.logging, std::io::stderr).map_err(anyhow::Error::msg)?;
    let registration = Registration::from_config(&config);
    let shutdown = CancellationToken::new();
    let running = matrix_msn::app::start(config, Some(&registration), shutdown.clone()).await?;
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await?;
    shutdown.cancel();
    running.wait().await?;
    Ok(())
}

/// A child process of this program, killed when dropped.
struct Kid {
    child: Child,
    name: &'static str,
}

impl Kid {
    fn spawn(name: &'static str, args: &[String], wait_line: Option<&str>) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning the {name}"))?;
        if let Some(wanted) = wait_line {
            let stdout = child.stdout.take().context("child stdout")?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            if line.trim() != wanted {
                bail!("the {name} said {line:?}");
            }
        }
        Ok(Self { child, name })
    }

    fn tell(&mut self, line: &str) -> Result<()> {
        let stdin = self.child.stdin.as_mut().context("child stdin")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cannot kill the {}: {e}", self.name);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        // Closing stdin asks for a clean stop; a kill follows if that takes too long.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

// ----- what the Matrix users see ---------------------------------------------------------------

/// Fed by the users' `/sync` loops (`synapse.rs`).
#[derive(Default)]
struct Observer {
    seen: Mutex<Seen>,
    changed: Notify,
}

#[derive(Default)]
struct Seen {
    /// Arrivals of each load message from MSN, by body: one per event (a sync that is
    /// answered again after a lost answer shows the same event twice; that is not a
    /// duplicate).
    texts: HashMap<String, Vec<Instant>>,
    /// The events seen, so each is counted once.
    events: HashSet<String>,
    /// "Not delivered" notices: their text.
    refusals: Vec<String>,
    /// The portal of each user, found by its first message (`hello <i>`).
    portals: HashMap<usize, String>,
    bot_rooms: HashSet<String>,
    logged_in: usize,
}

impl Observer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message the user saw in `room` (from the bot or a puppet).
    fn message(&self, at: Instant, room: &str, body: &str, event_id: &str) {
        let mut seen = self.lock();
        if !seen.events.insert(event_id.to_owned()) {
            return;
        }
        if body.starts_with("x2m ") {
            seen.texts.entry(body.to_owned()).or_default().push(at);
        } else if body.contains("was not delivered") {
            seen.refusals.push(body.to_owned());
        } else if let Some(i) = body
            .strip_prefix("hello ")
            .and_then(|i| i.parse::<usize>().ok())
        {
            seen.portals.insert(i, room.to_owned());
        } else if body.starts_with("Logged in to MSN as ") {
            seen.logged_in += 1;
        } else {
            return;
        }
        drop(seen);
        self.changed.notify_waiters();
    }

    fn bot_joined(&self, room: &str) {
        self.lock().bot_rooms.insert(room.to_owned());
        self.changed.notify_waiters();
    }

    async fn wait(&self, what: &str, done: impl Fn(&Seen) -> bool) -> Result<()> {
        let deadline = Instant::now() + STEP;
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
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

// ----- what the MSN contacts see ---------------------------------------------------------------

/// Arrivals of each load message from Matrix at the contacts, by body.
#[derive(Default)]
struct Inbox {
    texts: Mutex<HashMap<String, Vec<Instant>>>,
}

fn read_contact_events(mut events: matrix_msn::channel::Events<RemoteEvent>, inbox: Arc<Inbox>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let RemoteEvent::Message { text, .. } = event
                && text.text.starts_with("m2x ")
            {
                inbox
                    .texts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(text.text)
                    .or_default()
                    .push(Instant::now());
            }
        }
    });
}

fn plain(text: String) -> RichText {
    RichText {
        text,
        style: Style::default(),
    }
}

// ----- the run --------------------------------------------------------------------------------

struct World {
    args: Args,
    dir: PathBuf,
    config_path: PathBuf,
    registration_path: PathBuf,
    msn_args: Vec<String>,
    msn: Kid,
    bridge: Kid,
    synapse_process: SynapseProcess,
    synapse: Arc<Synapse>,
    observer: Arc<Observer>,
    inbox: Arc<Inbox>,
    contacts: Vec<LinkSession>,
    portals: Vec<String>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn bridge_config(args: &Args, dir: &Path, dispatch: u16, http: u16, hs: &str) -> Result<Config> {
    let mut config = Config::parse(include_str!("../../../config.example.yaml"))?;
    config.homeserver.domain = "localhost".into();
    config.homeserver.address = hs.into();
    config.appservice.as_token = "as-token-fault-0123456789abcdef".into();
    config.appservice.hs_token = "hs-token-fault-0123456789abcdef".into();
    config.appservice.hostname = "127.0.0.1".into();
    config.appservice.port = args.bridge_port;
    config.appservice.address = format!("http://127.0.0.1:{}", args.bridge_port);
    config.database.uri = format!("sqlite:{}", dir.join("bridge.db").display());
    config.bridge.credentials_key = "5a".repeat(32);
    config.bridge.permissions = [("localhost".to_owned(), PermissionLevel::User)]
        .into_iter()
        .collect();
    config.msn.server = format!("127.0.0.1:{dispatch}");
    config.msn.nexus_url = format!("http://127.0.0.1:{http}/rdr/pprdr.asp");
    config.msn.reconnect_initial_seconds = 1;
    config.msn.reconnect_max_seconds = 4;
    config.logging.level = "warn".into();
    Ok(config)
}

impl World {
    fn spawn_bridge(&self) -> Result<Kid> {
        Kid::spawn(
            "bridge",
            &[
                "--serve-bridge".to_owned(),
                self.config_path.display().to_string(),
            ],
            None,
        )
    }

    async fn bridge_ready(&self) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/health/ready", self.args.bridge_port);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the bridge is not ready at {url}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn build_world(args: Args) -> Result<World> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("msn-fault-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (dispatch, http) = (free_port()?, free_port()?);
    let msn_args = vec![
        "--serve-msn".to_owned(),
        "--users".to_owned(),
        args.users.to_string(),
        "--dispatch-port".to_owned(),
        dispatch.to_string(),
        "--http-port".to_owned(),
        http.to_string(),
    ];
    let msn = Kid::spawn("MSN server", &msn_args, Some("ready"))?;

    let registration_path = dir.join("registration.yaml");
    let placeholder = bridge_config(&args, &dir, dispatch, http, "http://127.0.0.1:1")?;
    std::fs::write(
        &registration_path,
        Registration::from_config(&placeholder).to_yaml()?,
    )?;
    eprintln!(
        "msn-fault: starting Synapse on 127.0.0.1:{}",
        args.synapse_port
    );
    let (data, reg, port) = (
        dir.join("synapse"),
        registration_path.clone(),
        args.synapse_port,
    );
    let synapse_process =
        tokio::task::spawn_blocking(move || SynapseProcess::start(&data, &reg, port, STEP * 5))
            .await??;
    let config = bridge_config(&args, &dir, dispatch, http, &synapse_process.url)?;
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, serde_yaml::to_string(&config)?)?;
    let observer = Arc::new(Observer::default());
    let synapse = Arc::new(Synapse::new(
        &synapse_process.url,
        synapse_process.pid(),
        &config.bot_mxid(),
        observer.clone(),
    )?);
    let bridge = Kid::spawn(
        "bridge",
        &[
            "--serve-bridge".to_owned(),
            config_path.display().to_string(),
        ],
        None,
    )?;
    let mut world = World {
        args,
        dir,
        config_path,
        registration_path,
        msn_args,
        msn,
        bridge,
        synapse_process,
        synapse,
        observer,
        inbox: Arc::new(Inbox::default()),
        contacts: Vec::new(),
        portals: Vec::new(),
    };
    world.bridge_ready().await?;

    // The users log in through their management rooms.
    let users = world.args.users;
    for i in 0..users {
        let room = world.synapse.open_dm(&matrix_user(i)).await?;
        world
            .observer
            .wait("the bot in a management room", |s| {
                s.bot_rooms.contains(&room)
            })
            .await?;
        world
            .synapse
            .say(
                &room,
                &matrix_user(i),
                &format!("login {} {PASSWORD}", user_account(i)),
            )
            .await?;
    }
    world
        .observer
        .wait("every login", |s| s.logged_in >= users)
        .await?;

    // The contacts log in with the bridge's own MSN client and open the portals.
    let settings = MsnSettings::new(
        format!("127.0.0.1:{dispatch}"),
        format!("http://127.0.0.1:{http}/rdr/pprdr.asp"),
    );
    let link = MsnLink::new(settings, Duration::from_secs(1), Duration::from_secs(4))?;
    for i in 0..users {
        let (session, events) = link
            .login(&contact_account(i), PASSWORD, OwnProfile::default())
            .await
            .map_err(|e| anyhow::anyhow!("login of {}: {e}", contact_account(i)))?;
        read_contact_events(events, world.inbox.clone());
        session
            .send_text(
                &Chat::Contact(MsnAddress::from_server(&user_account(i))),
                plain(format!("hello {i}")),
            )
            .await
            .map_err(|e| anyhow::anyhow!("hello {i}: {e}"))?;
        world.contacts.push(session);
    }
    world
        .observer
        .wait("every portal", |s| s.portals.len() >= users)
        .await?;
    world.portals = (0..users)
        .map(|i| {
            world
                .observer
                .lock()
                .portals
                .get(&i)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    Ok(world)
}

/// One direction's figures for one fault.
#[derive(Default, Debug)]
struct Flow {
    /// Messages the sender's side took: Synapse accepted them (Matrix→MSN), or the MSN
    /// server acknowledged them (MSN→Matrix).
    sent: usize,
    delivered: usize,
    /// Matrix→MSN: "not delivered" notices for sent messages. MSN→Matrix: messages the
    /// MSN server refused to the contact (not counted in `sent`).
    failed: usize,
    /// Whether `failed` counts messages of `sent` (Matrix→MSN) or others (MSN→Matrix).
    failures_among_sent: bool,
    lost: usize,
    duplicated: usize,
    /// From the fault until the first message sent after it arrived.
    back_after: Option<Duration>,
}

impl Flow {
    fn settle(
        &mut self,
        sends: &[(String, Instant)],
        arrivals: &HashMap<String, Vec<Instant>>,
        fault_at: Instant,
    ) {
        self.sent = sends.len();
        self.delivered = 0;
        self.duplicated = 0;
        let mut first_after: Option<Instant> = None;
        for (body, sent_at) in sends {
            if let Some(times) = arrivals.get(body) {
                self.delivered += 1;
                self.duplicated += times.len().saturating_sub(1);
                if *sent_at >= fault_at
                    && let Some(at) = times.iter().min()
                {
                    first_after = Some(first_after.map_or(*at, |f| f.min(*at)));
                }
            }
        }
        let accounted = if self.failures_among_sent {
            self.delivered + self.failed
        } else {
            self.delivered
        };
        self.lost = self.sent.saturating_sub(accounted);
        self.back_after = first_after.map(|at| at.saturating_duration_since(fault_at));
    }
}

async fn inject(world: &mut World, fault: &str) -> Result<()> {
    match fault {
        "bridge-kill" => {
            world.bridge.kill();
            world.bridge = world.spawn_bridge()?;
        }
        "synapse-restart" => {
            let (reg, port) = (world.registration_path.clone(), world.args.synapse_port);
            let process = &mut world.synapse_process;
            tokio::task::block_in_place(|| process.restart(&reg, port, STEP * 2))?;
        }
        "msn-restart" => {
            world.msn.kill();
            tokio::time::sleep(MSN_AWAY).await;
            world.msn = Kid::spawn("MSN server", &world.msn_args, Some("ready"))?;
        }
        "switchboard-drop" => world.msn.tell("close-switchboards")?,
        other => bail!("unknown fault {other:?}"),
    }
    Ok(())
}

/// The reasons of the "not delivered" notices since `from`, counted.
fn refusal_reasons(world: &World, from: usize) -> Vec<String> {
    let mut counted: HashMap<String, usize> = HashMap::new();
    for body in world.observer.lock().refusals.iter().skip(from) {
        let reason = body.split(": ").skip(1).collect::<Vec<_>>().join(": ");
        *counted.entry(reason).or_default() += 1;
    }
    let mut lines: Vec<String> = counted
        .into_iter()
        .map(|(reason, n)| format!("{n} × {reason}"))
        .collect();
    lines.sort();
    lines
}

async fn run_fault(world: &mut World, case: usize, fault: &str) -> Result<(Flow, Flow)> {
    let (users, per_user) = (world.args.users, world.args.messages);
    let total = users * per_user;
    let gap = Duration::from_secs_f64(1.0 / f64::from(world.args.rate.max(1)));
    let refusals_before = world.observer.lock().refusals.len();

    // Matrix → MSN: each user writes in their portal, a message every `gap` in all.
    let m2x = {
        let (synapse, portals) = (world.synapse.clone(), world.portals.clone());
        tokio::spawn(async move {
            let mut sends = Vec::with_capacity(total);
            for n in 0..total {
                let (i, k) = (n % users, n / users);
                let body = format!("m2x {case} {i} {k}");
                let txn = format!("fault-{case}-{i}-{k}");
                let started = Instant::now();
                // A client sends again (same transaction) until the homeserver takes it.
                while synapse
                    .say_with_txn(&portals[i], &matrix_user(i), &body, &txn)
                    .await
                    .is_err()
                {
                    if started.elapsed() > STEP * 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                if started.elapsed() <= STEP * 2 {
                    sends.push((body, Instant::now()));
                }
                tokio::time::sleep(gap).await;
            }
            sends
        })
    };
    // MSN → Matrix: each contact writes to its user; an error is what its sender sees.
    let x2m = {
        let contacts = world.contacts.clone();
        tokio::spawn(async move {
            let mut sends = Vec::with_capacity(total);
            let mut failed = 0;
            for n in 0..total {
                let (i, k) = (n % users, n / users);
                let body = format!("x2m {case} {i} {k}");
                let sent_at = Instant::now();
                match contacts[i]
                    .send_text(
                        &Chat::Contact(MsnAddress::from_server(&user_account(i))),
                        plain(body.clone()),
                    )
                    .await
                {
                    Ok(_) => sends.push((body, sent_at)),
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(gap).await;
            }
            (sends, failed)
        })
    };

    tokio::time::sleep(gap * u32::try_from(total / 3).unwrap_or(u32::MAX)).await;
    let fault_at = Instant::now();
    eprintln!("msn-fault: {fault}");
    inject(world, fault).await?;
    let m2x_sends = m2x.await?;
    let (x2m_sends, x2m_failed) = x2m.await?;

    // Settle: every message arrived or was refused, or the drain time is over.
    let drain = Duration::from_secs(world.args.drain_seconds);
    let deadline = Instant::now() + drain;
    let mut to_msn = Flow {
        failures_among_sent: true,
        ..Flow::default()
    };
    let mut to_matrix = Flow {
        failed: x2m_failed,
        ..Flow::default()
    };
    // Counts both directions against what arrived so far.
    let measure = |to_msn: &mut Flow, to_matrix: &mut Flow| {
        to_msn.failed = world.observer.lock().refusals.len() - refusals_before;
        let inbox = world
            .inbox
            .texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        to_msn.settle(&m2x_sends, &inbox, fault_at);
        let texts = world.observer.lock().texts.clone();
        to_matrix.settle(&x2m_sends, &texts, fault_at);
    };
    loop {
        measure(&mut to_msn, &mut to_matrix);
        if (to_msn.lost == 0 && to_matrix.lost == 0) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Late duplicates show up after the last original: look once more a little later.
    tokio::time::sleep(Duration::from_secs(5)).await;
    measure(&mut to_msn, &mut to_matrix);
    for reason in refusal_reasons(world, refusals_before) {
        eprintln!("msn-fault: {fault}: not delivered to MSN: {reason}");
    }
    Ok((to_msn, to_matrix))
}

fn row(fault: &str, direction: &str, flow: &Flow) -> String {
    let back = flow.back_after.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.1} s", d.as_secs_f64()),
    );
    format!(
        "| {fault} | {direction} | {} | {} | {} | {} | {} | {back} |",
        flow.sent, flow.delivered, flow.failed, flow.lost, flow.duplicated
    )
}

async fn run(args: Args) -> Result<()> {
    let faults = args.faults.clone();
    eprintln!(
        "msn-fault: {} users, {} messages each way per fault at {} msg/s, faults {faults:?}",
        args.users,
        args.users * args.messages,
        args.rate
    );
    let mut world = build_world(args).await?;
    let mut rows = Vec::new();
    for (case, fault) in faults.iter().enumerate() {
        let (to_msn, to_matrix) = run_fault(&mut world, case, fault).await?;
        rows.push(row(fault, "Matrix→MSN", &to_msn));
        rows.push(row(fault, "MSN→Matrix", &to_matrix));
        for line in rows.iter().rev().take(2).rev() {
            eprintln!("{line}");
        }
    }
    println!();
    println!(
        "| fault | direction | sent | delivered | visibly failed | lost | duplicated | flowing again after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for line in &rows {
        println!("{line}");
    }
    for contact in &world.contacts {
        contact.logout().await;
    }
    let dir = world.dir.clone();
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
