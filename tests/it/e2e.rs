//! End to end: a real Synapse (started by scripts/test.sh), the bridge in-process, and a
//! real Matrix client library (matrix-sdk) playing the human user.
//!
//! The scenarios share Synapse and the bridge's registered port, so they take turns.

use std::time::Duration;

use matrix_msn::bridge::{MatrixEvent, MessageKind, NOT_ALLOWED};
use matrix_msn::config::{Config, PermissionLevel};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::room::Room;
use matrix_sdk::ruma::events::room::member::{
    MembershipState, StrippedRoomMemberEvent, SyncRoomMemberEvent,
};
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::typing::SyncTypingEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use msn_testkit::synapse::{SHARED_SECRET, registration_mac};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::support::{self, TestBridge};

/// The scenarios take turns: one Synapse, one registered bridge port.
pub(crate) static TURN: Mutex<()> = Mutex::const_new(());

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// What the user's client saw.
#[derive(Clone, Debug)]
#[allow(dead_code)] // fields are read through Debug in failure messages
pub(crate) enum Seen {
    Notice {
        room: OwnedRoomId,
        sender: OwnedUserId,
        body: String,
    },
    Member {
        room: OwnedRoomId,
        target: String,
        membership: MembershipState,
        reason: Option<String>,
        avatar_url: Option<String>,
        displayname: Option<String>,
    },
    Text {
        room: OwnedRoomId,
        sender: OwnedUserId,
        body: String,
        html: Option<String>,
        /// `origin_server_ts`, in milliseconds.
        at_ms: u64,
    },
    Typing {
        room: OwnedRoomId,
        user_ids: Vec<OwnedUserId>,
    },
    Emote {
        room: OwnedRoomId,
        sender: OwnedUserId,
        body: String,
    },
    Redacted {
        room: OwnedRoomId,
        event_id: String,
    },
    /// An image, file, video or audio message: its content as JSON.
    Media {
        room: OwnedRoomId,
        sender: OwnedUserId,
        content: Value,
    },
    Presence {
        user: OwnedUserId,
        presence: matrix_sdk::ruma::presence::PresenceState,
        status_msg: Option<String>,
    },
}

/// A Matrix user driven through matrix-sdk, syncing in the background.
pub(crate) struct User {
    pub(crate) client: matrix_sdk::Client,
    pub(crate) user_id: OwnedUserId,
    seen: mpsc::UnboundedReceiver<Seen>,
    sync: tokio::task::JoinHandle<()>,
}

impl Drop for User {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{nanos}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Registers a user with Synapse's shared-secret admin API and logs in with matrix-sdk.
pub(crate) async fn new_user(homeserver: &str, name: &str, password: &str) -> User {
    let http = reqwest::Client::new();
    let url = format!("{homeserver}/_synapse/admin/v1/register");
    let nonce: Value = http
        .get(&url)
        .send()
        .await
        .expect("nonce")
        .json()
        .await
        .expect("json");
    let nonce = nonce["nonce"].as_str().expect("nonce string").to_owned();
    let mac = registration_mac(SHARED_SECRET, &nonce, name, password, false);
    let resp = http
        .post(&url)
        .json(&json!({"nonce": nonce, "username": name, "password": password, "admin": false, "mac": mac}))
        .send()
        .await
        .expect("register");
    assert!(
        resp.status().is_success(),
        "register {name}: {}",
        resp.text().await.unwrap_or_default()
    );

    let client = matrix_sdk::Client::builder()
        .homeserver_url(homeserver)
        .build()
        .await
        .expect("client");
    client
        .matrix_auth()
        .login_username(name, password)
        .initial_device_display_name("matrix-msn e2e")
        .await
        .expect("login");
    let user_id = client.user_id().expect("logged in").to_owned();
    let (tx, seen) = mpsc::unbounded_channel();
    let notices = tx.clone();
    client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
        let tx = notices.clone();
        async move {
            match &ev.content.msgtype {
                MessageType::Notice(n) => {
                    let _ = tx.send(Seen::Notice {
                        room: room.room_id().to_owned(),
                        sender: ev.sender.clone(),
                        body: n.body.clone(),
                    });
                }
                MessageType::Emote(e) => {
                    let _ = tx.send(Seen::Emote {
                        room: room.room_id().to_owned(),
                        sender: ev.sender.clone(),
                        body: e.body.clone(),
                    });
                }
                MessageType::Image(_)
                | MessageType::File(_)
                | MessageType::Video(_)
                | MessageType::Audio(_) => {
                    let _ = tx.send(Seen::Media {
                        room: room.room_id().to_owned(),
                        sender: ev.sender.clone(),
                        content: serde_json::to_value(&ev.content).unwrap_or_default(),
                    });
                }
                MessageType::Text(t) => {
                    let _ = tx.send(Seen::Text {
                        room: room.room_id().to_owned(),
                        sender: ev.sender.clone(),
                        body: t.body.clone(),
                        html: t.formatted.as_ref().map(|f| f.body.clone()),
                        at_ms: ev.origin_server_ts.0.into(),
                    });
                }
                _ => {}
            }
        }
    });
    let redactions = tx.clone();
    client.add_event_handler(
        move |ev: matrix_sdk::ruma::events::room::redaction::SyncRoomRedactionEvent, room: Room| {
            let tx = redactions.clone();
            async move {
                if let Some(redacts) = ev
                    .as_original()
                    .and_then(|o| o.redacts.clone().or_else(|| o.content.redacts.clone()))
                {
                    let _ = tx.send(Seen::Redacted {
                        room: room.room_id().to_owned(),
                        event_id: redacts.to_string(),
                    });
                }
            }
        },
    );
    let presences = tx.clone();
    client.add_event_handler(
        move |ev: matrix_sdk::ruma::events::presence::PresenceEvent| {
            let tx = presences.clone();
            async move {
                let _ = tx.send(Seen::Presence {
                    user: ev.sender.clone(),
                    presence: ev.content.presence.clone(),
                    status_msg: ev.content.status_msg.clone(),
                });
            }
        },
    );
    let invites = tx.clone();
    client.add_event_handler(move |ev: StrippedRoomMemberEvent, room: Room| {
        let tx = invites.clone();
        async move {
            let _ = tx.send(Seen::Member {
                room: room.room_id().to_owned(),
                target: ev.state_key.to_string(),
                membership: ev.content.membership.clone(),
                reason: ev.content.reason.clone(),
                avatar_url: ev.content.avatar_url.as_ref().map(ToString::to_string),
                displayname: ev.content.displayname.clone(),
            });
        }
    });
    let typing = tx.clone();
    client.add_event_handler(move |ev: SyncTypingEvent, room: Room| {
        let tx = typing.clone();
        async move {
            let _ = tx.send(Seen::Typing {
                room: room.room_id().to_owned(),
                user_ids: ev.content.user_ids.clone(),
            });
        }
    });
    client.add_event_handler(move |ev: SyncRoomMemberEvent, room: Room| {
        let tx = tx.clone();
        async move {
            let content = ev.as_original().map(|o| &o.content);
            let _ = tx.send(Seen::Member {
                room: room.room_id().to_owned(),
                target: ev.state_key().to_string(),
                membership: ev.membership().clone(),
                reason: content.and_then(|c| c.reason.clone()),
                avatar_url: content
                    .and_then(|c| c.avatar_url.as_ref())
                    .map(ToString::to_string),
                displayname: content.and_then(|c| c.displayname.clone()),
            });
        }
    });
    client
        .sync_once(SyncSettings::default())
        .await
        .expect("first sync");
    let syncing = client.clone();
    let sync = tokio::spawn(async move {
        let _ = syncing
            // `offline`: syncing does not touch the user's presence, so a test's explicit
            // presence is not overwritten by the next sync.
            .sync(
                SyncSettings::default()
                    .timeout(Duration::from_millis(500))
                    .set_presence(matrix_sdk::ruma::presence::PresenceState::Offline),
            )
            .await;
    });
    User {
        client,
        user_id,
        seen,
        sync,
    }
}

impl User {
    /// Waits for something matching `pred`, failing after [`WAIT`].
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Seen) -> bool,
    ) -> Seen {
        let deadline = tokio::time::Instant::now() + WAIT;
        // The last few things seen meanwhile, for the failure message (presence and
        // typing left out: they would crowd out the notices that say what went wrong).
        let mut passed: std::collections::VecDeque<Seen> = std::collections::VecDeque::new();
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) if pred(&seen) => return seen,
                Ok(Some(Seen::Presence { .. } | Seen::Typing { .. })) => {}
                Ok(Some(seen)) => {
                    if passed.len() == 8 {
                        passed.pop_front();
                    }
                    passed.push_back(seen);
                }
                Ok(None) => panic!("sync stopped while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; seen meanwhile: {passed:#?}"),
            }
        }
    }

    /// Waits for a notice from the bot in `room` containing `text`, returning its body.
    pub(crate) async fn notice(&mut self, room: &OwnedRoomId, text: &str) -> String {
        let room = room.clone();
        let text = text.to_owned();
        match self
            .wait_for(&format!("a notice containing {text:?}"), |s| {
                matches!(s, Seen::Notice { room: r, sender, body } if *r == room && sender.as_str() == "@msnbot:localhost" && body.contains(&text))
            })
            .await
        {
            Seen::Notice { body, .. } => body,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn say(&self, room: &OwnedRoomId, text: &str) {
        self.client
            .get_room(room)
            .expect("room known")
            .send(RoomMessageEventContent::text_plain(text))
            .await
            .expect("send");
    }

    /// Creates a DM with the bot and waits for its greeting.
    pub(crate) async fn open_management_room(&mut self) -> OwnedRoomId {
        let bot = OwnedUserId::try_from("@msnbot:localhost").expect("bot id");
        let room = self
            .client
            .create_dm(&bot)
            .await
            .expect("create DM")
            .room_id()
            .to_owned();
        self.notice(&room, "management room").await;
        room
    }
}

fn config(homeserver: &str, db: &str, permissions: &[(&str, PermissionLevel)]) -> Config {
    support::config(homeserver, db, permissions)
}

async fn management_room_scenario(homeserver: &str, db: &str) {
    let bridge = TestBridge::start(config(
        homeserver,
        db,
        &[("localhost", PermissionLevel::User)],
    ))
    .await;
    let mut bob = new_user(homeserver, &unique("bob"), "bob-password-1").await;
    let room = bob.open_management_room().await;

    // The bridge set up its bot's profile at startup.
    #[allow(deprecated)]
    let bot_name = bob
        .client
        .send(
            matrix_sdk::ruma::api::client::profile::get_display_name::v3::Request::new(
                OwnedUserId::try_from("@msnbot:localhost").expect("bot id"),
            ),
        )
        .await
        .expect("bot profile");
    assert_eq!(bot_name.displayname.as_deref(), Some("MSN bridge bot"));

    bob.say(&room, "help").await;
    let help = bob.notice(&room, "Commands").await;
    for command in ["help", "ping", "version"] {
        assert!(help.contains(command), "{help}");
    }
    bob.say(&room, "!msn version").await;
    bob.notice(&room, "matrix-msn ").await;
    bob.say(&room, "pnig").await;
    let reply = bob.notice(&room, "not a command I know").await;
    assert!(reply.contains("Did you mean `ping`"), "{reply}");
    assert!(!reply.contains("pnig"), "the word is not repeated: {reply}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_invite_greets_and_answers_commands() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("msn.db").display());
    management_room_scenario(&hs, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_on_postgres() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let Some(pg) = support::postgres_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    // A fresh schema keeps this run's state apart from earlier ones.
    let schema = unique("e2e");
    let admin = sqlx::PgPool::connect(&pg).await.expect("postgres");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("schema");
    admin.close().await;
    let sep = if pg.contains('?') { '&' } else { '?' };
    management_room_scenario(
        &hs,
        &format!("{pg}{sep}options=-c%20search_path%3D{schema}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_user_without_permission_is_refused() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("msn.db").display());
    let bridge = TestBridge::start(config(
        &hs,
        &db,
        &[("@someone-else:localhost", PermissionLevel::User)],
    ))
    .await;
    let mut eve = new_user(&hs, &unique("eve"), "eve-password-1").await;
    let bot = OwnedUserId::try_from("@msnbot:localhost").expect("bot id");
    let room = eve
        .client
        .create_dm(&bot)
        .await
        .expect("create DM")
        .room_id()
        .to_owned();
    let refusal = eve
        .wait_for("the bot rejecting the invite", |s| {
            matches!(s, Seen::Member { room: r, target, membership: MembershipState::Leave, .. } if *r == room && target == "@msnbot:localhost")
        })
        .await;
    match refusal {
        Seen::Member { reason, .. } => assert_eq!(reason.as_deref(), Some(NOT_ALLOWED)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        matrix_msn::store::Store::connect(&db, 1)
            .await
            .expect("store")
            .user(&eve.user_id)
            .await
            .expect("query")
            .is_none(),
        "nothing is stored for a refused user"
    );
    bridge.stop().await;
}

/// PUTs a transaction of timeline events to the bridge the way the homeserver does.
pub(crate) async fn push_transaction(txn: &str, events: Value) {
    push_body(txn, json!({ "events": events })).await;
}

/// PUTs a transaction with this body (timeline and ephemeral events) to the bridge.
pub(crate) async fn push_body(txn: &str, body: Value) {
    let reg = support::e2e_registration();
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/_matrix/app/v1/transactions/{txn}",
            reg.address()
        ))
        .bearer_auth(&reg.hs_token)
        .json(&body)
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_replayed_transaction_is_processed_once_even_after_restart() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("msn.db").display());
    let cfg = config(&hs, &db, &[("localhost", PermissionLevel::User)]);
    let bridge = TestBridge::start(cfg.clone()).await;
    let mut bob = new_user(&hs, &unique("bob"), "bob-password-2").await;
    let room = bob.open_management_room().await;

    let txn = unique("replay");
    let ping = json!([{ "type": "m.room.message", "room_id": room.as_str(), "event_id": format!("${txn}"),
                        "sender": bob.user_id.as_str(), "content": {"msgtype": "m.text", "body": "ping"} }]);
    // Room messages handled, counted only once a bridge has stopped, when every event it
    // took is finished (the counter moves just after a reply is sent, so reading it earlier
    // would race; ephemeral events such as presence come and go on their own).
    let handled_by = |b: TestBridge| async move {
        let counter = b.running.handled_messages.clone();
        b.stop().await;
        counter.load(std::sync::atomic::Ordering::Relaxed)
    };
    handled_by(bridge).await;

    let bridge = TestBridge::start(cfg.clone()).await;
    push_transaction(&txn, ping.clone()).await;
    bob.notice(&room, "Pong").await;
    // The homeserver retries the same transaction: acknowledged, not handled again.
    push_transaction(&txn, ping.clone()).await;
    // A real message after the replay: events are handled in order, so once its answer is
    // here the replay would have been handled too.
    bob.say(&room, "version").await;
    bob.notice(&room, "matrix-msn ").await;
    assert_eq!(handled_by(bridge).await, 2, "ping once, version once");

    // After a bridge restart the dedupe still holds.
    let bridge = TestBridge::start(cfg.clone()).await;
    push_transaction(&txn, ping).await;
    bob.say(&room, "help").await;
    bob.notice(&room, "Commands").await;
    assert_eq!(handled_by(bridge).await, 1, "only help was handled");

    // An event accepted but not handled before the bridge stopped waits in the queue: the
    // next start handles it, once.
    let store = matrix_msn::store::Store::connect(&db, 1)
        .await
        .expect("store");
    let left = MatrixEvent::Message {
        room_id: room.clone(),
        event_id: crate::support::eid(&format!("${txn}-left")),
        sender: bob.user_id.clone(),
        kind: MessageKind::Text,
        body: "ping".into(),
        html: None,
        media: None,
    };
    let payload = serde_json::to_string(&left).expect("json");
    store
        .enqueue_transaction(&unique("left"), "k", &[("message".into(), payload)])
        .await
        .expect("queue")
        .expect("a new transaction");
    store.close().await;
    let bridge = TestBridge::start(cfg).await;
    bob.notice(&room, "Pong").await;
    bob.say(&room, "version").await;
    bob.notice(&room, "matrix-msn ").await;
    assert_eq!(
        handled_by(bridge).await,
        2,
        "the left-over ping once, version once"
    );
}

/// Every log line the bridge (and the HTTP stack under it) writes at trace level, through a
/// whole session: tokens and passwords appear in none of them.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_logs_never_contain_secrets() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    // Current-thread runtime: every task of this test logs on this thread.
    let capture = support::LogCapture::start();

    let (msn, _dir, cfg) = crate::bridge_e2e::world(&hs).await;
    let msn_password = "msn-password-Zq8!that-must-not-leak";
    msn.add_account("dave@example.com", msn_password, "Dave");
    let bridge = TestBridge::start(cfg.clone()).await;
    let password = "bob-password-that-must-not-leak";
    let mut bob = new_user(&hs, &unique("bob"), password).await;
    let room = bob.open_management_room().await;
    bob.say(&room, "ping").await;
    bob.notice(&room, "Pong").await;
    // An MSN login through the bridge, one step (the password in the command) and two.
    bob.say(&room, &format!("login dave@example.com {msn_password}"))
        .await;
    bob.notice(&room, "Logged in to MSN as dave@example.com")
        .await;
    bob.say(&room, "logout").await;
    bob.notice(&room, "Logged out of MSN").await;
    bob.say(&room, "login dave@example.com").await;
    bob.notice(&room, "Send the password").await;
    bob.say(&room, msn_password).await;
    bob.notice(&room, "Logged in to MSN as dave@example.com")
        .await;
    // A token in the legacy query form, and a wrong one.
    let reg = support::e2e_registration();
    let http = reqwest::Client::new();
    for token in [reg.hs_token.as_str(), "wrong-token-also-secret"] {
        http.post(format!(
            "{}/_matrix/app/v1/ping?access_token={token}",
            reg.address()
        ))
        .send()
        .await
        .expect("ping");
    }
    bridge.stop().await;

    let logs = capture.finish();
    assert!(
        logs.contains("transaction accepted"),
        "the capture works: {} bytes",
        logs.len()
    );
    assert!(
        logs.contains("USR"),
        "the capture holds the MSN wire trace: {} bytes",
        logs.len()
    );
    for secret in [
        cfg.appservice.as_token.as_str(),
        cfg.appservice.hs_token.as_str(),
        cfg.bridge.credentials_key.as_str(),
        password,
        msn_password,
        "wrong-token-also-secret",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    // Passport tickets look like `t=…&p=…`; the login header carries `pwd=`.
    for needle in ["&p=", "from-PP", "pwd=", "Passport1.4 OrgVerb"] {
        assert!(!logs.contains(needle), "{needle:?} found in the logs");
    }
}

/// The client-server calls the bridge makes, as the bot and as a puppet, against Synapse,
/// observed by a real user's client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_client_calls_as_bot_and_puppet() {
    use matrix_msn::matrix::client::Client;
    use matrix_sdk::ruma::presence::PresenceState;

    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let reg = support::e2e_registration();
    let client = Client::new(
        &hs,
        &reg.as_token,
        OwnedUserId::try_from("@msnbot:localhost").expect("bot"),
    )
    .expect("client");
    let local = unique("msn_alice=40hotmail.com");
    let puppet = format!("@{local}:localhost");
    let puppet_uid = crate::support::uid(&puppet);
    client.ensure_registered(&local).await.expect("register");
    client
        .ensure_registered(&local)
        .await
        .expect("registering again is fine");
    let err = client
        .ensure_registered("not_in_namespace")
        .await
        .expect_err("outside the namespace");
    assert_eq!(err.errcode(), Some("M_EXCLUSIVE"), "{err}");

    let puppet_id = OwnedUserId::try_from(puppet.as_str()).expect("puppet id");
    client
        .set_displayname(&puppet_id, "Alice (MSN)")
        .await
        .expect("displayname");
    let picture: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mxc = client
        .upload(
            picture.clone(),
            "image/png",
            Some("alice.png"),
            Some(&*puppet_uid),
        )
        .await
        .expect("upload");
    client.set_avatar(&puppet_id, &mxc).await.expect("avatar");
    let (bytes, content_type) = client.download(&mxc).await.expect("download");
    assert_eq!(bytes, picture);
    assert_eq!(content_type.as_deref(), Some("image/png"));

    let mut bob = new_user(&hs, &unique("bob"), "bob-password-3").await;
    let room = client
        .create_dm(Some(&*puppet_uid), &[&*bob.user_id], Some("Alice"))
        .await
        .expect("create DM");
    let room_id = room.clone();
    let bob_id = bob.user_id.to_string();
    bob.wait_for("the invite", |s| matches!(s, Seen::Member { room: r, target, membership: MembershipState::Invite, .. } if *r == room_id && *target == bob_id)).await;
    bob.client
        .join_room_by_id(&room_id)
        .await
        .expect("bob joins");
    let display = bob
        .client
        .get_room(&room_id)
        .expect("room")
        .display_name()
        .await
        .expect("name");
    assert_eq!(display.to_string(), "Alice");

    let content = json!({"msgtype": "m.text", "body": "hi *bob*", "format": "org.matrix.custom.html", "formatted_body": "hi <b>bob</b>"});
    let first = client
        .send_message(&room, &content, "txn-hello", Some(&*puppet_uid), None)
        .await
        .expect("send");
    let again = client
        .send_message(&room, &content, "txn-hello", Some(&*puppet_uid), None)
        .await
        .expect("retry");
    assert_eq!(first, again, "the same transaction ID gives the same event");
    // A marked message is found again by its mark (how a resend after a lost answer
    // learns it went through), and only by its own.
    use matrix_msn::bridge::MatrixPort as _;
    use matrix_msn::bridge::port::OutgoingText;
    let marked = client
        .send_text(
            &room,
            OutgoingText {
                kind: &matrix_msn::bridge::MessageKind::Text,
                body: "marked",
                html: None,
                at_ms: None,
                mark: Some("mark-1"),
                as_real_user: false,
            },
            "txn-marked",
            &puppet_uid,
        )
        .await
        .expect("send marked");
    assert_eq!(
        client
            .find_marked(&room, &puppet_uid, "mark-1")
            .await
            .expect("look back"),
        Some(marked)
    );
    assert_eq!(
        client
            .find_marked(&room, &puppet_uid, "mark-2")
            .await
            .expect("look back"),
        None
    );
    let seen = bob
        .wait_for(
            "the puppet's message",
            |s| matches!(s, Seen::Text { room: r, .. } if *r == room_id),
        )
        .await;
    match seen {
        Seen::Text {
            sender, body, html, ..
        } => {
            assert_eq!(sender.as_str(), puppet);
            assert_eq!(body, "hi *bob*");
            assert_eq!(html.as_deref(), Some("hi <b>bob</b>"));
        }
        other => panic!("unexpected {other:?}"),
    }

    client
        .set_typing(&room, &puppet_uid, Some(Duration::from_secs(6)))
        .await
        .expect("typing");
    bob.wait_for("the puppet typing", |s| matches!(s, Seen::Typing { room: r, user_ids } if *r == room_id && user_ids.iter().any(|u| u.as_str() == puppet))).await;
    client
        .set_typing(&room, &puppet_uid, None)
        .await
        .expect("stop typing");
    bob.wait_for(
        "the puppet stopping",
        |s| matches!(s, Seen::Typing { room: r, user_ids } if *r == room_id && user_ids.is_empty()),
    )
    .await;

    client
        .set_presence(
            &puppet_uid,
            PresenceState::Unavailable,
            Some("Out to lunch"),
        )
        .await
        .expect("presence");
    let presence = bob
        .client
        .send(
            matrix_sdk::ruma::api::client::presence::get_presence::v3::Request::new(
                puppet_id.clone(),
            ),
        )
        .await
        .expect("get presence");
    assert_eq!(
        presence.presence,
        matrix_sdk::ruma::presence::PresenceState::Unavailable
    );
    assert_eq!(presence.status_msg.as_deref(), Some("Out to lunch"));

    let state = json!({"protocol": {"id": "msn", "displayname": "MSN"}});
    client
        .set_state(&room, "m.bridge", "msn/alice", &state, Some(&*puppet_uid))
        .await
        .expect("set state");
    assert_eq!(
        client
            .get_state(&room, "m.bridge", "msn/alice", Some(&*puppet_uid))
            .await
            .expect("get state"),
        Some(state)
    );
    assert_eq!(
        client
            .get_state(&room, "m.bridge", "nothing", Some(&*puppet_uid))
            .await
            .expect("get state"),
        None
    );

    // A second puppet invited and joining, then leaving: the calls a group portal makes.
    let carol_local = unique("msn_carol=40hotmail.com");
    let carol = format!("@{carol_local}:localhost");
    let carol_uid = crate::support::uid(&carol);
    client
        .ensure_registered(&carol_local)
        .await
        .expect("register carol");
    client
        .invite(&room, &carol_uid, Some(&*puppet_uid))
        .await
        .expect("invite");
    matrix_msn::bridge::MatrixPort::join(&client, &room, Some(&*carol_uid))
        .await
        .expect("join as carol");
    bob.wait_for("carol joining", |s| matches!(s, Seen::Member { room: r, target, membership: MembershipState::Join, .. } if *r == room_id && *target == carol)).await;
    matrix_msn::bridge::MatrixPort::leave(
        &client,
        &room,
        Some("switchboard closed"),
        Some(&*carol_uid),
    )
    .await
    .expect("leave");
    bob.wait_for("carol leaving", |s| matches!(s, Seen::Member { room: r, target, membership: MembershipState::Leave, .. } if *r == room_id && *target == carol)).await;
}
