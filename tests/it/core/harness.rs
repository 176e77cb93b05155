//! A core under test: the real [`Bridge`] with its real store (SQLite in a temporary
//! directory), ingress and worker, the real MSN link against the in-repo MSN server on
//! port 0, and the recording [`FakeHomeserver`] for the Matrix side.
//!
//! Time is tokio's paused clock, held still by a [`FrozenClock`]: it never jumps while the
//! store's thread or a socket is being waited for. A test moves it on purpose with
//! [`Scene::advance`] (a two-minute delivery wait takes no real time); while a test waits
//! for something, it creeps, so the recoveries the core and the MSN client make on short
//! timers of their own (a reconnect backoff, a switchboard step) happen as they would. It
//! creeps [`TICK`] once the test's parts have been quiet for [`LOOK`] of real time (no
//! frame reached the MSN server, no call the homeserver), and only every [`BUSY_LOOK`]
//! while they work: on a loaded machine, slow work must not look like a silent peer to
//! the timers. A wait that sees nothing for [`STUCK`] of real time fails the test.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use matrix_msn::bridge::credentials::CredentialBox;
use matrix_msn::bridge::remote::{MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent};
use matrix_msn::bridge::{Bridge, Ingress, MatrixEvent, Membership, MessageKind, Parts};
use matrix_msn::config::{Config, PermissionLevel};
use matrix_msn::link::{LinkSession, MsnLink};
use matrix_msn::store::Store;
use msn_testkit::{MsnServer, MsnServerConfig, MsnServerHandle};
use tokio_util::sync::CancellationToken;

use super::homeserver::{BOT, DOMAIN, FakeHomeserver};
use crate::support::{eid, rid, uid};

/// Real time after which a wait fails the test.
pub const STUCK: Duration = Duration::from_secs(45);
/// Real time the parts must be quiet before the clock creeps on by [`TICK`].
pub const LOOK: Duration = Duration::from_millis(50);
/// Real time between creeps while the parts are busy.
pub const BUSY_LOOK: Duration = Duration::from_millis(200);
pub const TICK: Duration = Duration::from_millis(100);

thread_local! {
    /// What this thread's test has done so far (each test runs its parts on its own
    /// thread): set by [`Scene::world`], read by [`drive`].
    static PROGRESS: std::cell::RefCell<Option<Box<dyn Fn() -> u64>>> =
        const { std::cell::RefCell::new(None) };
}

/// The test's parts' count of work done (0 before a world exists).
fn progress() -> u64 {
    PROGRESS.with(|p| p.borrow().as_ref().map_or(0, |count| count()))
}

pub const USER: &str = "@user:localhost";
pub const STRANGER: &str = "@stranger:elsewhere.example";
pub const BOB: &str = "bob@example.com";
pub const ALICE: &str = "alice@example.com";
pub const CAROL: &str = "carol@example.com";
pub const PUPPET_ALICE: &str = "@msn_alice=40example.com:localhost";
/// Where the contacts of the core tests keep the files they receive.
pub fn contacts_file_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("matrix-msn-core-contacts")
}

/// Holds tokio's paused clock still: a paused clock normally jumps to the next timer
/// whenever the runtime has nothing to do, but not while a blocking task runs, and this
/// is one (it ends when the guard is dropped).
pub struct FrozenClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl FrozenClock {
    pub fn hold() -> Arc<Self> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            // Returns when the sender is dropped.
            let _ = released.recv();
        });
        Arc::new(Self { _release: release })
    }
}

/// What outlives one run of the core: the homeserver, the MSN server, the store's
/// directory and the held clock.
pub struct World {
    pub hs: Arc<FakeHomeserver>,
    pub msn: MsnServerHandle,
    pub dir: Arc<tempfile::TempDir>,
    pub clock: Arc<FrozenClock>,
}

/// Runs `future` to completion, the clock creeping while it waits (see the module
/// docs); fails after [`STUCK`] of real time.
pub async fn drive<F: Future>(what: &str, future: F) -> F::Output {
    let started = std::time::Instant::now();
    let mut crept = started;
    let mut quiet_since = started;
    let mut seen = progress();
    let mut future = std::pin::pin!(future);
    loop {
        let polled = std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        if let Some(output) = polled {
            return output;
        }
        assert!(started.elapsed() < STUCK, "stuck waiting for {what}");
        let now = progress();
        if now != seen {
            seen = now;
            quiet_since = std::time::Instant::now();
        }
        if quiet_since.elapsed() >= LOOK || crept.elapsed() >= BUSY_LOOK {
            tokio::time::advance(TICK).await;
            crept = std::time::Instant::now();
            quiet_since = crept;
        }
        tokio::task::yield_now().await;
    }
}

/// Waits (see [`drive`]) until `check` gives a value.
pub async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    drive(what, async {
        loop {
            if let Some(value) = check() {
                return value;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// The MSN server with Alice, Bob (the bridged user's account) and Carol, all friends.
pub async fn msn_server() -> MsnServerHandle {
    let server = drive(
        "the MSN server",
        MsnServer::start(MsnServerConfig {
            versions: 8..=18,
            ..MsnServerConfig::default()
        }),
    )
    .await
    .expect("start the MSN server");
    for (email, name) in [(ALICE, "Alice Ä"), (BOB, "Bob"), (CAROL, "Carol")] {
        server.add_account(email, "secret", name);
    }
    server.make_friends(ALICE, BOB);
    server.make_friends(ALICE, CAROL);
    server.make_friends(BOB, CAROL);
    server
}

/// The bridge's config for `server`, on the SQLite file `db`.
pub fn config(server: &MsnServerHandle, db: &str) -> Config {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
        .expect("example config");
    let mut config = Config::parse(&text).expect("example parses");
    config.homeserver.domain = DOMAIN.into();
    config.homeserver.address = "http://127.0.0.1:1".into();
    config.appservice.as_token = "as_core".into();
    config.appservice.hs_token = "hs_core".into();
    config.database.uri = db.into();
    config.bridge.credentials_key = "5a".repeat(32);
    config.bridge.permissions = [(DOMAIN.to_owned(), PermissionLevel::User)].into();
    config.msn.server = server.dispatch_addr().to_string();
    config.msn.nexus_url = server.nexus_url();
    config.msn.reconnect_initial_seconds = 1;
    config.msn.reconnect_max_seconds = 2;
    config
}

/// Which starts first: the worker, or the restore of the stored logins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    WorkerFirst,
    RestoreFirst,
}

/// One run of the core over a homeserver and an MSN server that outlive it.
pub struct Scene {
    pub hs: Arc<FakeHomeserver>,
    pub msn: MsnServerHandle,
    pub config: Config,
    ingress: Ingress,
    shutdown: CancellationToken,
    worker: tokio::task::JoinHandle<()>,
    pub metrics: Arc<matrix_msn::metrics::Metrics>,
    dir: Arc<tempfile::TempDir>,
    clock: Arc<FrozenClock>,
}

impl Scene {
    /// A core with a fresh store, a fresh homeserver and the MSN server of [`msn_server`].
    pub async fn start() -> Self {
        Self::start_in(Self::world().await).await
    }

    /// A fresh homeserver, MSN server and store directory, with the clock held.
    pub async fn world() -> World {
        // `CORE_TEST_LOG=matrix_msn=debug` prints the core's log of a failing test.
        if std::env::var_os("CORE_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(std::env::var("CORE_TEST_LOG").unwrap_or_default())
                .with_test_writer()
                .try_init();
        }
        let clock = FrozenClock::hold();
        let world = World {
            hs: Arc::new(FakeHomeserver::new()),
            msn: msn_server().await,
            dir: Arc::new(tempfile::tempdir().expect("a temporary directory")),
            clock,
        };
        let (hs, frames) = (world.hs.clone(), world.msn.frames_received());
        PROGRESS.with(|p| {
            *p.borrow_mut() = Some(Box::new(move || {
                hs.calls() + frames.load(std::sync::atomic::Ordering::Relaxed)
            }));
        });
        world
    }

    /// The config of a core in `world`.
    pub fn config_in(world: &World) -> Config {
        let db = format!("sqlite:{}", world.dir.path().join("core.db").display());
        let mut config = config(&world.msn, &db);
        config.msn.file_dir = world.dir.path().join("files").display().to_string();
        config
    }

    /// A core in `world` (a new one, or what an earlier scene left).
    pub async fn start_in(world: World) -> Self {
        let config = Self::config_in(&world);
        Self::start_with(world, config, Order::WorkerFirst).await
    }

    /// [`Scene::start_in`], the stored logins restored in the given order with the start
    /// of the worker (the bridge starts the worker first, and restores once the
    /// homeserver answered; a restore may still finish first).
    pub async fn start_with(world: World, config: Config, order: Order) -> Self {
        let World {
            hs,
            msn,
            dir,
            clock,
        } = world;
        let store = drive(
            "the store",
            Store::connect(&config.database.uri, config.database.max_connections),
        )
        .await
        .expect("store");
        let credentials =
            CredentialBox::from_hex(&config.bridge.credentials_key).expect("credentials key");
        let settings = matrix_msn::app::msn_settings(&config).expect("MSN settings");
        let link = MsnLink::new(
            settings,
            Duration::from_secs(config.msn.reconnect_initial_seconds),
            Duration::from_secs(config.msn.reconnect_max_seconds),
        )
        .expect("link");
        let shutdown = CancellationToken::new();
        let metrics = matrix_msn::metrics::Metrics::new();
        let bridge = Bridge::new(Parts {
            config: Arc::new(config.clone()),
            store: store.clone(),
            matrix: hs.clone(),
            msn: Arc::new(link),
            credentials: credentials.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        });
        let (feed, intake) = matrix_msn::bridge::event_feed();
        let ingress = Ingress::new(store, feed, credentials);
        let restorer = bridge.clone();
        let restoring = async move { restorer.restore_logins().await };
        let restoring = match order {
            Order::RestoreFirst => {
                drive("the logins to be restored", restoring).await;
                None
            }
            Order::WorkerFirst => Some(restoring),
        };
        let worker_bridge = bridge.clone();
        let worker = tokio::spawn(async move {
            worker_bridge.run(intake).await;
            worker_bridge.logout_all().await;
        });
        if let Some(restoring) = restoring {
            tokio::spawn(restoring);
        }
        Self {
            hs,
            msn,
            config,
            ingress,
            shutdown,
            worker,
            metrics,
            dir,
            clock,
        }
    }

    /// Stops the core (its worker finishes and signs every session out); returns what
    /// the next scene needs to run on the same homeserver, MSN server and store.
    pub async fn stop(self) -> World {
        self.shutdown.cancel();
        drive("the worker to stop", self.worker)
            .await
            .expect("the worker ends cleanly");
        World {
            hs: self.hs,
            msn: self.msn,
            dir: self.dir,
            clock: self.clock,
        }
    }

    /// Moves the paused clock by `by`, letting the core's timers run.
    pub async fn advance(&self, by: Duration) {
        drive("time to move", tokio::time::advance(by)).await;
    }

    /// Moves the clock `step` at a time, at most `limit` in all, until `check` gives a
    /// value (what the core does after its own timeouts).
    pub async fn advance_until<T>(
        &self,
        what: &str,
        step: Duration,
        limit: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let mut moved = Duration::ZERO;
        loop {
            // Look for a while (real time: sockets and the store's thread answer in it)
            // before moving the clock on.
            let looked = std::time::Instant::now();
            while looked.elapsed() < Duration::from_millis(50) {
                if let Some(value) = check() {
                    return value;
                }
                drive(what, tokio::task::yield_now()).await;
            }
            assert!(moved < limit, "{what}: nothing after {moved:?}");
            self.advance(step).await;
            moved += step;
        }
    }

    /// The homeserver pushes `events` in one transaction.
    pub async fn push(&mut self, events: Vec<MatrixEvent>) {
        // Unique across scenes on one store, as a homeserver's transaction IDs are.
        static NEXT_TXN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT_TXN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let txn = format!("core-txn-{n}");
        drive(
            "a transaction to be accepted",
            self.ingress.accept(txn.clone(), txn, events),
        )
        .await
        .expect("transaction accepted");
    }

    /// `user` opens a direct chat with the bot; returns the room once the bot greeted.
    pub async fn open_management_room(&mut self, user: &str) -> String {
        let room = self.hs.user_creates_room(user, &[BOT], true);
        self.push(vec![invite(&room, user, BOT, true)]).await;
        let hs = self.hs.clone();
        until("the bot's greeting", || {
            hs.room(&room).and_then(|r| {
                r.timeline
                    .iter()
                    .any(|e| e.sender == BOT && e.body.contains("management room"))
                    .then_some(())
            })
        })
        .await;
        room
    }

    /// `user` writes `body` in `room` (sent through their client, pushed to the bridge).
    pub async fn say(&mut self, room: &str, user: &str, body: &str) -> String {
        let event_id = self.hs.user_sends(room, user, body);
        self.push(vec![message(room, &event_id, user, body)]).await;
        event_id
    }

    /// Waits for a notice from the bot in `room` containing `text`; returns its body.
    pub async fn notice(&self, room: &str, text: &str) -> String {
        self.notice_from(room, BOT, text).await
    }

    /// Waits for a message from `sender` in `room` containing `text`; returns its body.
    pub async fn notice_from(&self, room: &str, sender: &str, text: &str) -> String {
        let hs = self.hs.clone();
        until(&format!("{sender} to say {text:?} in {room}"), || {
            hs.room(room)?
                .timeline
                .iter()
                .find(|e| e.sender == sender && e.body.contains(text))
                .map(|e| e.body.clone())
        })
        .await
    }

    /// Fails if a "not delivered" notice is in `room`, from anyone (in a DM the
    /// contact's puppet says it).
    pub fn assert_nothing_undelivered(&self, room: &str) {
        let bodies: Vec<String> = self
            .hs
            .room(room)
            .map(|r| r.timeline.into_iter().map(|e| e.body).collect())
            .unwrap_or_default();
        assert!(
            !bodies.iter().any(|b| b.contains("not delivered")),
            "no failure notice: {bodies:?}"
        );
    }

    /// The bot's notices in `room`, in order.
    pub fn notices(&self, room: &str) -> Vec<String> {
        self.hs
            .room(room)
            .map(|r| {
                r.timeline
                    .into_iter()
                    .filter(|e| e.sender == BOT)
                    .map(|e| e.body)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `user` logs in to MSN as Bob from a new management room, which it returns.
    pub async fn log_in(&mut self, user: &str) -> String {
        let room = self.open_management_room(user).await;
        self.say(&room, user, &format!("login {BOB} secret")).await;
        self.notice(&room, "Logged in to MSN").await;
        room
    }

    /// The usual start: `USER` logged in as Bob, Alice signed in, her `first` message in
    /// its new portal, which the user has joined. Returns Alice and the portal.
    pub async fn chat_with_alice(&mut self, first: &str) -> (Contact, String) {
        self.log_in(USER).await;
        let alice = Contact::sign_in(&self.msn, ALICE).await;
        alice.say(BOB, first).await;
        let portal = self.portal_with(PUPPET_ALICE, USER).await;
        self.notice_from(&portal, PUPPET_ALICE, first).await;
        self.hs.user_joins(&portal, USER);
        (alice, portal)
    }

    /// Waits for the portal room with `puppet` as its creator, invited `user`.
    pub async fn portal_with(&self, puppet: &str, user: &str) -> String {
        let hs = self.hs.clone();
        until(&format!("a portal from {puppet}"), || {
            hs.rooms().into_iter().find_map(|(id, room)| {
                (room.joined.contains(puppet)
                    && (room.invited.contains(user) || room.joined.contains(user))
                    && room.bridged.is_some())
                .then_some(id)
            })
        })
        .await
    }
}

/// A contact on MSN, signed in with the bridge's own MSN client code.
pub struct Contact {
    pub session: LinkSession,
    pub events: matrix_msn::channel::Events<RemoteEvent>,
}

impl Contact {
    /// Signs `email` in to `server` (on MSNP12, as Messenger 7.5 would).
    pub async fn sign_in(server: &MsnServerHandle, email: &str) -> Self {
        Self::sign_in_with(server, email, None, u64::MAX).await
    }

    /// [`Contact::sign_in`] with a Messenger that declines files over `max` bytes.
    pub async fn sign_in_declining(server: &MsnServerHandle, email: &str, max: u64) -> Self {
        Self::sign_in_with(server, email, None, max).await
    }

    /// Signs `email` in on MSNP18 as the endpoint `guid`: for the bridged user, their
    /// own Messenger beside the bridge.
    pub async fn sign_in_endpoint(server: &MsnServerHandle, email: &str, guid: &str) -> Self {
        Self::sign_in_with(server, email, Some(guid), u64::MAX).await
    }

    async fn sign_in_with(
        server: &MsnServerHandle,
        email: &str,
        guid: Option<&str>,
        max_file: u64,
    ) -> Self {
        let mut settings = matrix_msn::net::MsnSettings::new(
            server.dispatch_addr().to_string(),
            server.nexus_url(),
        );
        if guid.is_some() {
            settings.versions = vec![18];
        }
        settings.file_dir = contacts_file_dir();
        settings.max_file_bytes = max_file;
        let link =
            MsnLink::new(settings, Duration::from_secs(1), Duration::from_secs(2)).expect("link");
        let profile = OwnProfile {
            endpoint: guid.map(str::to_owned),
            ..OwnProfile::default()
        };
        let (session, events) = drive("a contact to sign in", link.login(email, "secret", profile))
            .await
            .expect("the contact signs in");
        Self { session, events }
    }

    /// Waits for the next event `pick` accepts.
    pub async fn next<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(RemoteEvent) -> Option<T>,
    ) -> T {
        drive(what, async {
            loop {
                let event = self
                    .events
                    .recv()
                    .await
                    .expect("the contact's session is open");
                if let Some(value) = pick(event) {
                    return value;
                }
            }
        })
        .await
    }

    /// Signs the contact (`email`) out and waits until `server` has them offline.
    pub async fn sign_out(self, server: &MsnServerHandle, email: &str) {
        self.session.logout().await;
        drop(self);
        until(&format!("{email} offline"), || {
            server.online(email).is_none().then_some(())
        })
        .await;
    }

    /// Waits for a message and returns (from, text).
    pub async fn message(&mut self) -> (String, String) {
        self.next("a message to the contact", |event| match event {
            RemoteEvent::Message { from, text, .. } => Some((from.to_string(), text.text)),
            _ => None,
        })
        .await
    }

    /// Sends `text` to `to`.
    pub async fn say(&self, to: &str, text: &str) {
        let rich = matrix_msn::bridge::formatting::RichText {
            text: text.into(),
            style: Default::default(),
        };
        drive(
            "the contact's message to go",
            self.session.send_text(
                &matrix_msn::bridge::remote::Chat::Contact(
                    matrix_msn::bridge::ids::MsnAddress::from_server(to),
                ),
                rich,
            ),
        )
        .await
        .expect("the contact's message is delivered");
    }
}

/// The invite of `target` into `room` by `sender`.
pub fn invite(room: &str, sender: &str, target: &str, is_direct: bool) -> MatrixEvent {
    MatrixEvent::Membership {
        room_id: rid(room),
        // One per room and invitee (a user's second management room is a new invite).
        event_id: eid(&format!(
            "$invite-{}-{}",
            room.replace(['!', ':'], "-"),
            target.replace(['@', ':'], "-")
        )),
        sender: uid(sender),
        target: uid(target),
        membership: Membership::Invite,
        is_direct,
        displayname: None,
        avatar_url: None,
    }
}

/// A text message.
pub fn message(room: &str, event_id: &str, sender: &str, body: &str) -> MatrixEvent {
    MatrixEvent::Message {
        room_id: rid(room),
        event_id: eid(event_id),
        sender: uid(sender),
        kind: MessageKind::Text,
        body: body.into(),
        html: None,
        media: None,
    }
}

/// The held clock does not move by itself, even with a timer due and nothing to do.
#[tokio::test(start_paused = true)]
async fn a_frozen_clock_moves_only_when_advanced() {
    let _clock = FrozenClock::hold();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let _ = tx.send(());
    });
    let start = tokio::time::Instant::now();
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1000)) => panic!("the clock moved by itself"),
        _ = rx => {}
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}
