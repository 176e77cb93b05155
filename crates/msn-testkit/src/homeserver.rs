//! A fast in-process homeserver stand-in for the load program and tests: an axum server on
//! `127.0.0.1:0` answering every client-server endpoint the bridge calls, with the JSON
//! shapes, errors and checks Synapse has (the `as_token`, the `?user_id=` assertion limited
//! to registered users of the appservice's namespaces, room membership for sending,
//! inviting, joining and reading state, one event per `(user, txnId)`), and a pusher that
//! delivers events to the bridge as appservice transactions, one at a time and batched as
//! Synapse does. What the bridge asks for is reported, with its arrival [`Instant`], to
//! every [`Homeserver::subscribe`]r.
//!
//! Owns only test infrastructure: it speaks plain JSON and must not import `matrix`,
//! `bridge`, `net` or `store`, so the bridge's Matrix layer is checked against an
//! independent implementation. It keeps no history beyond what the checks need (rooms,
//! members, state, registered users, media, transaction IDs), so its memory stays small.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Settings of a stand-in: the appservice registration's side of things.
#[derive(Clone, Debug)]
pub struct HomeserverConfig {
    /// The server name in user and room IDs (`localhost`).
    pub domain: String,
    /// What the bridge presents (`Authorization: Bearer`).
    pub as_token: String,
    /// What the stand-in presents to the bridge.
    pub hs_token: String,
    /// The appservice's bot, registered from the start (Synapse's `sender_localpart`).
    pub bot: String,
    /// The appservice's exclusive user namespaces (regexes, anchored here).
    pub namespaces: Vec<String>,
    /// Also push the bridge's own events back to it, as Synapse does for rooms its users
    /// are in (the bridge must drop these echoes).
    pub echo: bool,
    /// At most this many events per transaction (Synapse: 100).
    pub max_batch: usize,
}

impl HomeserverConfig {
    /// A config for `domain` with the given tokens, bot and namespaces; echoes on.
    pub fn new(
        domain: &str,
        as_token: &str,
        hs_token: &str,
        bot: &str,
        namespaces: &[&str],
    ) -> Self {
        Self {
            domain: domain.to_owned(),
            as_token: as_token.to_owned(),
            hs_token: hs_token.to_owned(),
            bot: bot.to_owned(),
            namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
            echo: true,
            max_batch: 100,
        }
    }
}

/// One call the bridge made, as the stand-in understood it.
#[derive(Clone, Debug)]
pub enum Call {
    Pinged,
    Registered {
        user: String,
    },
    Displayname {
        user: String,
        name: Option<String>,
    },
    Avatar {
        user: String,
        url: Option<String>,
    },
    Uploaded {
        mxc: String,
        bytes: usize,
    },
    RoomCreated {
        room: String,
        creator: String,
        invitees: Vec<String>,
        is_direct: bool,
        name: Option<String>,
    },
    Membership {
        room: String,
        sender: String,
        target: String,
        membership: &'static str,
    },
    /// `PUT .../send/{eventType}/{txnId}` (a new event, not a replayed txnId).
    Message {
        room: String,
        sender: String,
        event_type: String,
        txn_id: String,
        event_id: String,
        content: Value,
    },
    State {
        room: String,
        sender: String,
        event_type: String,
        state_key: String,
        content: Value,
    },
    Redaction {
        room: String,
        sender: String,
        redacts: String,
    },
    Typing {
        room: String,
        user: String,
        typing: bool,
    },
    Presence {
        user: String,
        presence: String,
        status_msg: Option<String>,
    },
}

/// A call and when it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub call: Call,
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Client-server requests answered (any status).
    pub requests: u64,
    /// Events created by `PUT .../send/...`.
    pub messages: u64,
    /// Appservice transactions the bridge acknowledged, and the events in them.
    pub transactions: u64,
    pub pushed_events: u64,
    /// Transactions the bridge refused or failed (retried).
    pub push_failures: u64,
}

#[derive(Default)]
struct Room {
    /// user → membership (`join`, `invite`, `leave`, `ban`).
    members: HashMap<String, &'static str>,
    /// (type, state_key) → content.
    state: HashMap<(String, String), Value>,
}

#[derive(Default)]
struct World {
    registered: HashSet<String>,
    displaynames: HashMap<String, String>,
    avatars: HashMap<String, String>,
    rooms: HashMap<String, Room>,
    /// (user, room, txnId) → event ID, so a retried send is one event.
    txns: HashMap<(String, String, String), String>,
    media: HashMap<String, (Bytes, String)>,
}

struct Inner {
    config: HomeserverConfig,
    namespaces: Vec<Regex>,
    world: Mutex<World>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Received>>>,
    next_id: AtomicU64,
    requests: AtomicU64,
    messages: AtomicU64,
    transactions: AtomicU64,
    pushed_events: AtomicU64,
    push_failures: AtomicU64,
    outbox: mpsc::UnboundedSender<Value>,
    appservice_url: watch::Sender<Option<String>>,
    http: reqwest::Client,
}

/// A running stand-in. Dropping it stops the server and the pusher.
pub struct Homeserver {
    inner: Arc<Inner>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Homeserver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A Matrix error response, shaped as the spec says.
fn error(status: StatusCode, errcode: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"errcode": errcode, "error": message.into()})),
    )
        .into_response()
}

fn forbidden(message: impl Into<String>) -> Response {
    error(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Homeserver {
    /// Binds `127.0.0.1:0` and starts serving and pushing.
    pub async fn start(config: HomeserverConfig) -> std::io::Result<Homeserver> {
        let namespaces = config
            .namespaces
            .iter()
            .map(|n| Regex::new(&format!("^(?:{n})$")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(std::io::Error::other)?;
        let mut world = World::default();
        world.registered.insert(config.bot.clone());
        let inner = Arc::new(Inner {
            config,
            namespaces,
            world: Mutex::new(world),
            subscribers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            requests: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            pushed_events: AtomicU64::new(0),
            push_failures: AtomicU64::new(0),
            outbox,
            appservice_url: watch::channel(None).0,
            http,
        });
        let shutdown = CancellationToken::new();
        let app = router(inner.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        tokio::spawn(push_loop(inner.clone(), outbox_rx, shutdown.clone()));
        Ok(Homeserver {
            inner,
            addr,
            shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`, the bridge's `homeserver.address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the bridge listens (`http://127.0.0.1:PORT`); pings and transactions wait
    /// for it.
    pub fn set_appservice_url(&self, url: &str) {
        self.inner
            .appservice_url
            .send_replace(Some(url.trim_end_matches('/').to_owned()));
    }

    /// Every call from now on, as it arrives.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Received> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.subscribers).push(tx);
        rx
    }

    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        Stats {
            requests: i.requests.load(Ordering::Relaxed),
            messages: i.messages.load(Ordering::Relaxed),
            transactions: i.transactions.load(Ordering::Relaxed),
            pushed_events: i.pushed_events.load(Ordering::Relaxed),
            push_failures: i.push_failures.load(Ordering::Relaxed),
        }
    }

    /// A (non-appservice) Matrix user creates a room inviting `invitees`; the invites reach
    /// the bridge as `m.room.member` events. Returns the room ID.
    pub fn user_creates_room(&self, creator: &str, invitees: &[&str], is_direct: bool) -> String {
        let invitees: Vec<String> = invitees.iter().map(|s| (*s).to_owned()).collect();
        self.inner.create_room(creator, &invitees, is_direct, None)
    }

    /// A Matrix user joins `room` (accepting an invite); the bridge sees the member event.
    pub fn user_joins(&self, room: &str, user: &str) -> Result<(), String> {
        let mut world = lock(&self.inner.world);
        let r = world.rooms.get_mut(room).ok_or("no such room")?;
        if !matches!(r.members.get(user), Some(&"invite" | &"join")) {
            return Err(format!("{user} is not invited to {room}"));
        }
        r.members.insert(user.to_owned(), "join");
        drop(world);
        self.inner
            .emit_member(room, user, user, "join", false, true);
        Ok(())
    }

    /// A Matrix user sends a text message to `room`; it reaches the bridge in a
    /// transaction. Returns the event ID.
    pub fn user_says(&self, room: &str, user: &str, body: &str) -> Result<String, String> {
        let joined = lock(&self.inner.world)
            .rooms
            .get(room)
            .is_some_and(|r| r.members.get(user) == Some(&"join"));
        if !joined {
            return Err(format!("{user} is not in {room}"));
        }
        let event_id = self.inner.event_id();
        self.inner.queue(json!({
            "type": "m.room.message",
            "room_id": room,
            "sender": user,
            "event_id": event_id,
            "origin_server_ts": now_ms(),
            "content": {"msgtype": "m.text", "body": body},
            "unsigned": {"age": 0},
        }));
        Ok(event_id)
    }

    /// Pushes a raw event (or EDU, with `ephemeral`) to the bridge as it is.
    pub fn push_raw(&self, event: Value) {
        self.inner.queue(event);
    }

    /// The members of `room` and their membership.
    pub fn members(&self, room: &str) -> Vec<(String, &'static str)> {
        lock(&self.inner.world)
            .rooms
            .get(room)
            .map(|r| r.members.iter().map(|(u, m)| (u.clone(), *m)).collect())
            .unwrap_or_default()
    }

    /// How many rooms exist.
    pub fn room_count(&self) -> usize {
        lock(&self.inner.world).rooms.len()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Inner {
    fn record(&self, call: Call) {
        let at = Instant::now();
        let mut subs = lock(&self.subscribers);
        if subs.is_empty() {
            return;
        }
        subs.retain(|tx| {
            tx.send(Received {
                at,
                call: call.clone(),
            })
            .is_ok()
        });
    }

    fn is_ours(&self, user: &str) -> bool {
        user == self.config.bot || self.namespaces.iter().any(|n| n.is_match(user))
    }

    fn event_id(&self) -> String {
        format!("$ev{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn queue(&self, event: Value) {
        let _ = self.outbox.send(event);
    }

    /// Whether the appservice hears of events in `room` (one of its users is a member).
    fn interested(&self, world: &World, room: &str) -> bool {
        world
            .rooms
            .get(room)
            .is_some_and(|r| r.members.keys().any(|u| self.is_ours(u)))
    }

    /// Queues an event to the bridge when it is interested (and, for the bridge's own
    /// events, when echoes are on).
    fn emit(&self, event: Value, by_bridge: bool) {
        if by_bridge && !self.config.echo {
            return;
        }
        let room = event
            .get("room_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let target_ours = event
            .get("state_key")
            .and_then(Value::as_str)
            .is_some_and(|k| self.is_ours(k));
        let interested = target_ours || self.interested(&lock(&self.world), room);
        if interested {
            self.queue(event);
        }
    }

    fn emit_member(
        &self,
        room: &str,
        sender: &str,
        target: &str,
        membership: &str,
        is_direct: bool,
        by_user: bool,
    ) {
        let content = if is_direct {
            json!({ "membership": membership, "is_direct": true })
        } else {
            json!({ "membership": membership })
        };
        let event = json!({
            "type": "m.room.member",
            "room_id": room,
            "sender": sender,
            "state_key": target,
            "event_id": self.event_id(),
            "origin_server_ts": now_ms(),
            "content": content,
            "unsigned": {"age": 0},
        });
        self.emit(event, !by_user);
    }

    fn create_room(
        &self,
        creator: &str,
        invitees: &[String],
        is_direct: bool,
        name: Option<&str>,
    ) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let room_id = format!("!room{n}:{}", self.config.domain);
        let mut room = Room::default();
        room.members.insert(creator.to_owned(), "join");
        for invitee in invitees {
            room.members.insert(invitee.clone(), "invite");
        }
        if let Some(name) = name {
            room.state
                .insert(("m.room.name".into(), String::new()), json!({"name": name}));
        }
        lock(&self.world).rooms.insert(room_id.clone(), room);
        let by_user = !self.is_ours(creator);
        self.emit_member(&room_id, creator, creator, "join", false, by_user);
        for invitee in invitees {
            self.emit_member(&room_id, creator, invitee, "invite", is_direct, by_user);
        }
        room_id
    }
}

/// Delivers queued events as transactions: one in flight, up to `max_batch` events each,
/// retried with backoff until the bridge acknowledges.
async fn push_loop(
    inner: Arc<Inner>,
    mut outbox: mpsc::UnboundedReceiver<Value>,
    shutdown: CancellationToken,
) {
    let mut url_rx = inner.appservice_url.subscribe();
    let mut txn = 0u64;
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            e = outbox.recv() => match e { Some(e) => e, None => return },
        };
        let mut events = vec![first];
        while events.len() < inner.config.max_batch.max(1) {
            match outbox.try_recv() {
                Ok(e) => events.push(e),
                Err(_) => break,
            }
        }
        let base = tokio::select! {
            () = shutdown.cancelled() => return,
            url = url_rx.wait_for(Option::is_some) => match url {
                Ok(u) => u.clone().unwrap_or_default(),
                Err(_) => return,
            },
        };
        txn += 1;
        let (timeline, ephemeral): (Vec<Value>, Vec<Value>) = events
            .into_iter()
            .partition(|e| e.get("event_id").is_some());
        let body = json!({"events": timeline, "ephemeral": ephemeral});
        let count = body
            .get("events")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
            + body
                .get("ephemeral")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
        let mut delay = Duration::from_millis(50);
        loop {
            let sent = inner
                .http
                .put(format!("{base}/_matrix/app/v1/transactions/{txn}"))
                .bearer_auth(&inner.config.hs_token)
                .json(&body)
                .send()
                .await;
            if matches!(&sent, Ok(r) if r.status().is_success()) {
                inner.transactions.fetch_add(1, Ordering::Relaxed);
                inner
                    .pushed_events
                    .fetch_add(count as u64, Ordering::Relaxed);
                break;
            }
            inner.push_failures.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

type Shared = Arc<Inner>;

#[derive(Deserialize)]
struct AuthQuery {
    access_token: Option<String>,
    user_id: Option<String>,
}

/// Who a request acts as, after the `as_token` and the `?user_id=` assertion were checked.
#[derive(Clone)]
struct Acting(String);

async fn authenticate(
    State(inner): State<Shared>,
    Query(query): Query<AuthQuery>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer.or(query.access_token.as_deref()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing access token.",
        );
    };
    if token != inner.config.as_token {
        return error(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Unrecognised access token.",
        );
    }
    let user = match query.user_id {
        None => inner.config.bot.clone(),
        Some(user) => {
            if !inner.is_ours(&user) {
                return forbidden(format!(
                    "Application service cannot masquerade as this user ({user})."
                ));
            }
            if !lock(&inner.world).registered.contains(&user) {
                return forbidden(format!(
                    "Application service has not registered this user ({user})"
                ));
            }
            user
        }
    };
    request.extensions_mut().insert(Acting(user));
    next.run(request).await
}

fn router(inner: Shared) -> Router {
    let client = "/_matrix/client/v3";
    let api = Router::new()
        .route(
            "/_matrix/client/v1/appservice/{id}/ping",
            post(appservice_ping),
        )
        .route(&format!("{client}/register"), post(register))
        .route(
            &format!("{client}/profile/{{user}}/displayname"),
            get(get_displayname).put(put_displayname),
        )
        .route(
            &format!("{client}/profile/{{user}}/avatar_url"),
            get(get_avatar).put(put_avatar),
        )
        .route(&format!("{client}/profile/{{user}}"), get(get_profile))
        .route("/_matrix/media/v3/upload", post(upload))
        .route(
            "/_matrix/client/v1/media/download/{server}/{media}",
            get(download),
        )
        .route(
            "/_matrix/client/v1/media/download/{server}/{media}/{filename}",
            get(download_named),
        )
        .route(&format!("{client}/createRoom"), post(create_room))
        .route(&format!("{client}/rooms/{{room}}/invite"), post(invite))
        .route(&format!("{client}/rooms/{{room}}/join"), post(join))
        .route(&format!("{client}/join/{{room}}"), post(join))
        .route(&format!("{client}/rooms/{{room}}/leave"), post(leave))
        .route(
            &format!("{client}/rooms/{{room}}/send/{{event_type}}/{{txn}}"),
            put(send),
        )
        .route(
            &format!("{client}/rooms/{{room}}/typing/{{user}}"),
            put(typing),
        )
        .route(
            &format!("{client}/presence/{{user}}/status"),
            put(presence).get(get_presence),
        )
        .route(
            &format!("{client}/rooms/{{room}}/state/{{event_type}}"),
            get(get_state_empty).put(put_state_empty),
        )
        .route(
            &format!("{client}/rooms/{{room}}/state/{{event_type}}/"),
            get(get_state_empty).put(put_state_empty),
        )
        .route(
            &format!("{client}/rooms/{{room}}/state/{{event_type}}/{{key}}"),
            get(get_state).put(put_state),
        )
        .route(
            &format!("{client}/rooms/{{room}}/redact/{{event}}/{{txn}}"),
            put(redact),
        )
        .route_layer(middleware::from_fn_with_state(inner.clone(), authenticate));
    Router::new()
        .merge(api)
        .route(
            "/_matrix/client/versions",
            get(|| async { Json(json!({"versions": ["v1.11", "v1.12"]})) }),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "M_UNRECOGNIZED",
                "Unrecognized request",
            )
        })
        .with_state(inner)
}

/// The request body as JSON, or the `M_NOT_JSON` answer (boxed: a response is large).
fn body_json(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, "M_NOT_JSON", e.to_string())))
}

async fn appservice_ping(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Response {
    if user != inner.config.bot {
        return forbidden("Only the application service can ping itself.");
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut url_rx = inner.appservice_url.subscribe();
    let url = match tokio::time::timeout(Duration::from_secs(10), url_rx.wait_for(Option::is_some))
        .await
    {
        Ok(Ok(u)) => u.clone().unwrap_or_default(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "M_URL_NOT_SET",
                "Application service URL is not set.",
            );
        }
    };
    let started = Instant::now();
    let mut payload = serde_json::Map::new();
    if let Some(txn) = body.get("transaction_id") {
        payload.insert("transaction_id".into(), txn.clone());
    }
    let payload = Value::Object(payload);
    let answer = inner
        .http
        .post(format!("{url}/_matrix/app/v1/ping"))
        .bearer_auth(&inner.config.hs_token)
        .json(&payload)
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => {
            inner.record(Call::Pinged);
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Json(json!({"duration_ms": ms})).into_response()
        }
        Ok(r) => error(
            StatusCode::BAD_GATEWAY,
            "M_BAD_STATUS",
            format!("Ping returned error status {}", r.status()),
        ),
        Err(e) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "M_CONNECTION_FAILED",
            e.to_string(),
        ),
    }
}

async fn register(State(inner): State<Shared>, body: Bytes) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if body.get("type").and_then(Value::as_str) != Some("m.login.application_service") {
        return error(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "Appservices must register with type m.login.application_service.",
        );
    }
    let Some(localpart) = body.get("username").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "Missing username",
        );
    };
    let user = format!("@{}:{}", localpart.to_lowercase(), inner.config.domain);
    if !inner.is_ours(&user) {
        return error(
            StatusCode::BAD_REQUEST,
            "M_EXCLUSIVE",
            "This user ID is reserved by an application service.",
        );
    }
    if !lock(&inner.world).registered.insert(user.clone()) {
        return error(
            StatusCode::BAD_REQUEST,
            "M_USER_IN_USE",
            "User ID already taken.",
        );
    }
    inner.record(Call::Registered { user: user.clone() });
    Json(json!({"user_id": user, "home_server": inner.config.domain})).into_response()
}

fn same_user(acting: &str, target: &str, what: &str) -> Result<(), Box<Response>> {
    if acting == target {
        Ok(())
    } else {
        Err(Box::new(forbidden(format!(
            "Cannot set another user's {what}"
        ))))
    }
}

async fn get_displayname(State(inner): State<Shared>, Path(user): Path<String>) -> Response {
    let world = lock(&inner.world);
    match world.displaynames.get(&user) {
        Some(name) => Json(json!({"displayname": name})).into_response(),
        None if world.registered.contains(&user) => Json(json!({})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "Profile was not found",
        ),
    }
}

async fn get_avatar(State(inner): State<Shared>, Path(user): Path<String>) -> Response {
    match lock(&inner.world).avatars.get(&user) {
        Some(url) => Json(json!({"avatar_url": url})).into_response(),
        None => Json(json!({})).into_response(),
    }
}

async fn get_profile(State(inner): State<Shared>, Path(user): Path<String>) -> Response {
    let world = lock(&inner.world);
    let mut profile = serde_json::Map::new();
    if let Some(name) = world.displaynames.get(&user) {
        profile.insert("displayname".into(), name.clone().into());
    }
    if let Some(url) = world.avatars.get(&user) {
        profile.insert("avatar_url".into(), url.clone().into());
    }
    Json(Value::Object(profile)).into_response()
}

async fn put_displayname(
    State(inner): State<Shared>,
    axum::Extension(Acting(acting)): axum::Extension<Acting>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = same_user(&acting, &user, "displayname") {
        return *r;
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let name = body
        .get("displayname")
        .and_then(Value::as_str)
        .map(str::to_owned);
    {
        let mut world = lock(&inner.world);
        match &name {
            Some(n) => world.displaynames.insert(user.clone(), n.clone()),
            None => world.displaynames.remove(&user),
        };
    }
    inner.record(Call::Displayname { user, name });
    Json(json!({})).into_response()
}

async fn put_avatar(
    State(inner): State<Shared>,
    axum::Extension(Acting(acting)): axum::Extension<Acting>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = same_user(&acting, &user, "avatar_url") {
        return *r;
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let url = body
        .get("avatar_url")
        .and_then(Value::as_str)
        .map(str::to_owned);
    {
        let mut world = lock(&inner.world);
        match &url {
            Some(u) => world.avatars.insert(user.clone(), u.clone()),
            None => world.avatars.remove(&user),
        };
    }
    inner.record(Call::Avatar { user, url });
    Json(json!({})).into_response()
}

async fn upload(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let id = format!("media{}", inner.next_id.fetch_add(1, Ordering::Relaxed));
    let mxc = format!("mxc://{}/{id}", inner.config.domain);
    let bytes = body.len();
    lock(&inner.world).media.insert(id, (body, content_type));
    inner.record(Call::Uploaded {
        mxc: mxc.clone(),
        bytes,
    });
    Json(json!({"content_uri": mxc})).into_response()
}

async fn download(
    State(inner): State<Shared>,
    Path((server, media)): Path<(String, String)>,
) -> Response {
    serve_media(&inner, &server, &media)
}

async fn download_named(
    State(inner): State<Shared>,
    Path((server, media, _name)): Path<(String, String, String)>,
) -> Response {
    serve_media(&inner, &server, &media)
}

fn serve_media(inner: &Inner, server: &str, media: &str) -> Response {
    let found = (server == inner.config.domain)
        .then(|| lock(&inner.world).media.get(media).cloned())
        .flatten();
    match found {
        Some((bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_DISPOSITION, "inline".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Not found"),
    }
}

async fn create_room(
    State(inner): State<Shared>,
    axum::Extension(Acting(creator)): axum::Extension<Acting>,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let invitees: Vec<String> = body
        .get("invite")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let is_direct = body
        .get("is_direct")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
    let room = inner.create_room(&creator, &invitees, is_direct, name.as_deref());
    inner.record(Call::RoomCreated {
        room: room.clone(),
        creator,
        invitees,
        is_direct,
        name,
    });
    Json(json!({"room_id": room})).into_response()
}

fn membership_of(inner: &Inner, room: &str, user: &str) -> Option<&'static str> {
    lock(&inner.world)
        .rooms
        .get(room)
        .and_then(|r| r.members.get(user).copied())
}

fn not_in_room(user: &str, room: &str) -> Response {
    forbidden(format!("User {user} not in room {room}"))
}

async fn invite(
    State(inner): State<Shared>,
    axum::Extension(Acting(sender)): axum::Extension<Acting>,
    Path(room): Path<String>,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(target) = body
        .get("user_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "Missing user_id",
        );
    };
    {
        let mut world = lock(&inner.world);
        let Some(r) = world.rooms.get_mut(&room) else {
            return not_in_room(&sender, &room);
        };
        if r.members.get(&sender) != Some(&"join") {
            return not_in_room(&sender, &room);
        }
        if r.members.get(&target) == Some(&"join") {
            return forbidden(format!("{target} is already in the room."));
        }
        r.members.insert(target.clone(), "invite");
    }
    inner.emit_member(&room, &sender, &target, "invite", false, false);
    inner.record(Call::Membership {
        room,
        sender,
        target,
        membership: "invite",
    });
    Json(json!({})).into_response()
}

async fn join(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path(room): Path<String>,
) -> Response {
    match membership_of(&inner, &room, &user) {
        Some("join") => return Json(json!({"room_id": room})).into_response(),
        Some("invite") => {}
        _ => return forbidden("You are not invited to this room."),
    }
    if let Some(r) = lock(&inner.world).rooms.get_mut(&room) {
        r.members.insert(user.clone(), "join");
    }
    inner.emit_member(&room, &user, &user, "join", false, false);
    inner.record(Call::Membership {
        room: room.clone(),
        sender: user.clone(),
        target: user,
        membership: "join",
    });
    Json(json!({"room_id": room})).into_response()
}

async fn leave(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path(room): Path<String>,
) -> Response {
    if !matches!(membership_of(&inner, &room, &user), Some("join" | "invite")) {
        return not_in_room(&user, &room);
    }
    // Emitted before the change so the appservice still counts as interested.
    inner.emit_member(&room, &user, &user, "leave", false, false);
    if let Some(r) = lock(&inner.world).rooms.get_mut(&room) {
        r.members.insert(user.clone(), "leave");
    }
    inner.record(Call::Membership {
        room,
        sender: user.clone(),
        target: user,
        membership: "leave",
    });
    Json(json!({})).into_response()
}

async fn send(
    State(inner): State<Shared>,
    axum::Extension(Acting(sender)): axum::Extension<Acting>,
    Path((room, event_type, txn)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let content = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if membership_of(&inner, &room, &sender) != Some("join") {
        return not_in_room(&sender, &room);
    }
    let key = (sender.clone(), room.clone(), txn.clone());
    let (event_id, fresh) = {
        let mut world = lock(&inner.world);
        match world.txns.get(&key) {
            Some(id) => (id.clone(), false),
            None => {
                let id = inner.event_id();
                world.txns.insert(key, id.clone());
                (id, true)
            }
        }
    };
    if fresh {
        inner.messages.fetch_add(1, Ordering::Relaxed);
        inner.emit(
            json!({
                "type": event_type,
                "room_id": room,
                "sender": sender,
                "event_id": event_id,
                "origin_server_ts": now_ms(),
                "content": content,
                "unsigned": {"age": 0, "transaction_id": txn},
            }),
            true,
        );
        inner.record(Call::Message {
            room,
            sender,
            event_type,
            txn_id: txn,
            event_id: event_id.clone(),
            content,
        });
    }
    Json(json!({"event_id": event_id})).into_response()
}

async fn typing(
    State(inner): State<Shared>,
    axum::Extension(Acting(acting)): axum::Extension<Acting>,
    Path((room, user)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = same_user(&acting, &user, "typing state") {
        return *r;
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(typing) = body.get("typing").and_then(Value::as_bool) else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "Missing typing key");
    };
    if membership_of(&inner, &room, &user) != Some("join") {
        return not_in_room(&user, &room);
    }
    inner.record(Call::Typing { room, user, typing });
    Json(json!({})).into_response()
}

async fn presence(
    State(inner): State<Shared>,
    axum::Extension(Acting(acting)): axum::Extension<Acting>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = same_user(&acting, &user, "presence state") {
        return *r;
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(presence) = body
        .get("presence")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "Missing presence");
    };
    if !matches!(presence.as_str(), "online" | "unavailable" | "offline") {
        return error(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Invalid presence",
        );
    }
    let status_msg = body
        .get("status_msg")
        .and_then(Value::as_str)
        .map(str::to_owned);
    inner.record(Call::Presence {
        user,
        presence,
        status_msg,
    });
    Json(json!({})).into_response()
}

/// `GET /presence/{userId}/status`: the stand-in keeps no presence, so everyone is
/// offline, which is what Synapse says of a user whose client is not syncing.
async fn get_presence(Path(user): Path<String>) -> Response {
    if ruma::UserId::parse(&user).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Invalid user ID",
        );
    }
    Json(json!({ "presence": "offline" })).into_response()
}

fn read_state(inner: &Inner, user: &str, room: &str, event_type: &str, key: &str) -> Response {
    if membership_of(inner, room, user) != Some("join") {
        return not_in_room(user, room);
    }
    let found = lock(&inner.world).rooms.get(room).and_then(|r| {
        r.state
            .get(&(event_type.to_owned(), key.to_owned()))
            .cloned()
    });
    match found {
        Some(content) => Json(content).into_response(),
        None => error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Event not found."),
    }
}

fn write_state(
    inner: &Inner,
    sender: String,
    room: String,
    event_type: String,
    state_key: String,
    body: &Bytes,
) -> Response {
    let content = match body_json(body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if membership_of(inner, &room, &sender) != Some("join") {
        return not_in_room(&sender, &room);
    }
    if let Some(r) = lock(&inner.world).rooms.get_mut(&room) {
        r.state
            .insert((event_type.clone(), state_key.clone()), content.clone());
    }
    let event_id = inner.event_id();
    inner.emit(
        json!({
            "type": event_type,
            "room_id": room,
            "sender": sender,
            "state_key": state_key,
            "event_id": event_id,
            "origin_server_ts": now_ms(),
            "content": content,
            "unsigned": {"age": 0},
        }),
        true,
    );
    inner.record(Call::State {
        room,
        sender,
        event_type,
        state_key,
        content,
    });
    Json(json!({"event_id": event_id})).into_response()
}

async fn get_state(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path((room, event_type, key)): Path<(String, String, String)>,
) -> Response {
    read_state(&inner, &user, &room, &event_type, &key)
}

async fn get_state_empty(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path((room, event_type)): Path<(String, String)>,
) -> Response {
    read_state(&inner, &user, &room, &event_type, "")
}

async fn put_state(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path((room, event_type, key)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    write_state(&inner, user, room, event_type, key, &body)
}

async fn put_state_empty(
    State(inner): State<Shared>,
    axum::Extension(Acting(user)): axum::Extension<Acting>,
    Path((room, event_type)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    write_state(&inner, user, room, event_type, String::new(), &body)
}

async fn redact(
    State(inner): State<Shared>,
    axum::Extension(Acting(sender)): axum::Extension<Acting>,
    Path((room, redacts, _txn)): Path<(String, String, String)>,
) -> Response {
    if membership_of(&inner, &room, &sender) != Some("join") {
        return not_in_room(&sender, &room);
    }
    let event_id = inner.event_id();
    inner.emit(
        json!({
            "type": "m.room.redaction",
            "room_id": room,
            "sender": sender,
            "redacts": redacts,
            "event_id": event_id,
            "origin_server_ts": now_ms(),
            "content": {"redacts": redacts},
            "unsigned": {"age": 0},
        }),
        true,
    );
    inner.record(Call::Redaction {
        room,
        sender,
        redacts,
    });
    Json(json!({"event_id": event_id})).into_response()
}
