//! The whole bridge end to end with real parts: Synapse, the bridge in-process, the test
//! MSN server, an msnp11-sdk client as the MSN contact and matrix-sdk as the Element user.

use std::time::Duration;

use matrix_msn::config::PermissionLevel;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::presence::PresenceState;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use msn_testkit::MsnServerHandle;
use msnp11_sdk::{Event, MsnpStatus, PersonalMessage, PlainText};
use tokio::time::timeout;

use crate::e2e::{Seen, TURN, User, new_user, unique};
use crate::support::{self, TestBridge};
use crate::testkit_msnp11_sdk as sdk;

pub(crate) const ALICE: &str = "alice@example.com";
pub(crate) const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
pub(crate) const PUPPET_ALICE: &str = "@msn_alice=40example.com:localhost";

fn bridge_config(hs: &str, db: &str, msn: &MsnServerHandle) -> matrix_msn::config::Config {
    let mut config = support::config(hs, db, &[("localhost", PermissionLevel::User)]);
    config.msn.server = msn.dispatch_addr().to_string();
    config.msn.nexus_url = msn.nexus_url();
    config.msn.reconnect_initial_seconds = 1;
    config.msn.reconnect_max_seconds = 2;
    // A port that was free a moment ago for the metrics listener.
    let port = support::free_port();
    config.metrics.enabled = true;
    config.metrics.listen = format!("127.0.0.1:{port}");
    config
}

/// Where a bridge e2e test starts: its turn at the shared homeserver, the test MSN server
/// and a fresh SQLite file (kept while this lives); the bridge runs beside it.
pub(crate) struct Scene {
    pub(crate) hs: String,
    pub(crate) msn: MsnServerHandle,
    /// The bridge's config (to start it again).
    pub(crate) cfg: matrix_msn::config::Config,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A [`Scene`] with the bridge started on it; `None` without a homeserver to test against.
pub(crate) async fn scene() -> Option<(Scene, TestBridge)> {
    scene_on(8..=12).await
}

/// [`scene`] with an MSN server speaking `versions`.
pub(crate) async fn scene_on(
    versions: std::ops::RangeInclusive<u8>,
) -> Option<(Scene, TestBridge)> {
    scene_offering(versions, None).await
}

/// [`scene_on`] with the bridge offering only `offered` (its default when `None`).
pub(crate) async fn scene_offering(
    versions: std::ops::RangeInclusive<u8>,
    offered: Option<Vec<u8>>,
) -> Option<(Scene, TestBridge)> {
    let hs = support::homeserver_url()?;
    let turn = TURN.lock().await;
    let (msn, dir, mut cfg) = world_on(&hs, versions).await;
    if let Some(offered) = offered {
        cfg.msn.protocol_versions = offered;
    }
    let bridge = TestBridge::start(cfg.clone()).await;
    let scene = Scene {
        hs,
        msn,
        cfg,
        _dir: dir,
        _turn: turn,
    };
    Some((scene, bridge))
}

/// The test MSN server and a bridge config on a fresh SQLite file (kept while the
/// returned directory lives).
pub(crate) async fn world(
    hs: &str,
) -> (
    MsnServerHandle,
    tempfile::TempDir,
    matrix_msn::config::Config,
) {
    world_on(hs, 8..=12).await
}

/// [`world`] with an MSN server speaking `versions`.
pub(crate) async fn world_on(
    hs: &str,
    versions: std::ops::RangeInclusive<u8>,
) -> (
    MsnServerHandle,
    tempfile::TempDir,
    matrix_msn::config::Config,
) {
    let msn = sdk::server_with(msn_testkit::MsnServerConfig {
        versions,
        ..msn_testkit::MsnServerConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("msn.db").display());
    let cfg = bridge_config(hs, &db, &msn);
    (msn, dir, cfg)
}

pub(crate) async fn metrics_text(config: &matrix_msn::config::Config) -> String {
    reqwest::get(format!("http://{}/metrics", config.metrics.listen))
        .await
        .expect("metrics reachable")
        .text()
        .await
        .expect("metrics text")
}

/// The value of one sample line, e.g. `matrix_msn_messages_bridged_total{direction="to_msn"}`.
pub(crate) fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

impl User {
    /// Logs in to MSN as Bob from a new management room, which it returns.
    pub(crate) async fn log_in_to_msn(&mut self) -> OwnedRoomId {
        let mgmt = self.open_management_room().await;
        self.say(&mgmt, &format!("login {BOB} secret")).await;
        self.notice(&mgmt, "Logged in to MSN").await;
        mgmt
    }

    async fn say_id(&self, room: &OwnedRoomId, text: &str) -> String {
        self.client
            .get_room(room)
            .expect("room known")
            .send(RoomMessageEventContent::text_plain(text))
            .await
            .expect("send")
            .response
            .event_id
            .to_string()
    }

    /// Waits for an invite to a room (a portal; the user's MSN space is not one) and
    /// joins it.
    pub(crate) async fn accept_invite(&mut self) -> OwnedRoomId {
        let me = self.user_id.to_string();
        let client = self.client.clone();
        let room = match self
            .wait_for("an invite", |s| matches!(s, Seen::Member { room, target, membership: matrix_sdk::ruma::events::room::member::MembershipState::Invite, .. }
                if *target == me && !client.get_room(room).is_some_and(|r| r.is_space() || r.name().as_deref() == Some("MSN"))))
            .await
        {
            Seen::Member { room, .. } => room,
            other => panic!("unexpected {other:?}"),
        };
        self.client
            .join_room_by_id(&room)
            .await
            .expect("join portal");
        room
    }

    pub(crate) async fn text_from(
        &mut self,
        room: &OwnedRoomId,
        sender: &str,
        body: &str,
    ) -> Option<String> {
        let room = room.clone();
        match self
            .wait_for(&format!("{body:?} from {sender}"), |s| matches!(s, Seen::Text { room: r, sender: from, body: b, .. } if *r == room && from.as_str() == sender && b == body))
            .await
        {
            Seen::Text { html, .. } => html,
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub(crate) async fn msn_contact(
    server: &MsnServerHandle,
    email: &str,
) -> (msnp11_sdk::Client, sdk::Events) {
    let (client, events) = sdk::login(server, email).await;
    sdk::online(&client).await;
    (client, events)
}

/// `client` opens a conversation with Bob, waits for him in it and says `text`: the
/// conversation and its events.
pub(crate) async fn conversation_with_bob(
    client: &msnp11_sdk::Client,
    text: &str,
) -> (msnp11_sdk::Switchboard, sdk::Events) {
    let sb = timeout(sdk::T, client.create_session(BOB))
        .await
        .expect("XFR timed out")
        .expect("switchboard");
    let mut events = sdk::collect_sb(&sb);
    sdk::joined(&mut events, BOB).await;
    sdk::say(&sb, text).await;
    (sb, events)
}

/// Alice (MSN) sees Bob go offline and come back (`what` names the cause in failures).
async fn bob_goes_and_comes_back(alice_events: &mut sdk::Events, what: &str) {
    bob_goes(alice_events, what).await;
    sdk::wait_for(
        alice_events,
        &format!("bob back: {what}"),
        |e| matches!(e, Event::PresenceUpdate { email, .. } if email == BOB),
    )
    .await;
}

/// Alice sees Bob go offline.
pub(crate) async fn bob_goes(alice_events: &mut sdk::Events, what: &str) {
    sdk::wait_for(
        alice_events,
        &format!("bob offline: {what}"),
        |e| matches!(e, Event::ContactOffline { email } if email == BOB),
    )
    .await;
}

/// Alice opens a fresh conversation with Bob, once he joined it.
pub(crate) async fn alice_opens(
    alice: &msnp11_sdk::Client,
) -> (msnp11_sdk::Switchboard, sdk::Events) {
    let sb = timeout(sdk::T, alice.create_session(BOB))
        .await
        .expect("XFR timed out")
        .expect("switchboard");
    let mut events = sdk::collect_sb(&sb);
    sdk::joined(&mut events, BOB).await;
    (sb, events)
}

/// Alice opens a fresh conversation with Bob and says `text`.
pub(crate) async fn alice_opens_and_says(alice: &msnp11_sdk::Client, text: &str) {
    let (sb, _events) = alice_opens(alice).await;
    sdk::say(&sb, text).await;
}

fn bold(text: &str) -> PlainText {
    PlainText {
        bold: true,
        ..sdk::text(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_bridge_chat_with_an_msn_contact() {
    // A server that stops at MSNP12 (as Rusty Retro Messaging does).
    chat_with_an_msn_contact(8..=12, None, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_bridge_chat_on_msnp18() {
    // Escargot's best: single sign-on, the address book, the bridge as an endpoint.
    chat_with_an_msn_contact(8..=18, None, 18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_bridge_chat_on_msnp15() {
    // Single sign-on and the address book, no endpoints.
    chat_with_an_msn_contact(8..=18, Some(vec![15]), 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_bridge_chat_on_msnp8() {
    chat_with_an_msn_contact(8..=18, Some(vec![8]), 8).await;
}

/// The bridge end-to-end scenario (login, puppet, portal, messages both ways with
/// formatting, presence, typing, nudges, undeliverable notices, replays, a database
/// fault) against a server speaking `server`, the bridge offering `offered` (its
/// default when `None`), on MSNP`version`. Alice uses the MSNP11 SDK (a real client
/// library) whatever the bridge speaks.
async fn chat_with_an_msn_contact(
    server: std::ops::RangeInclusive<u8>,
    offered: Option<Vec<u8>>,
    version: u8,
) {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (msn, _dir, mut cfg) = world_on(&hs, server).await;
    if let Some(offered) = offered {
        cfg.msn.protocol_versions = offered;
    }
    let bridge = TestBridge::start(cfg.clone()).await;

    // Alice is on MSN, with a personal message.
    let (alice, mut alice_events) = msn_contact(&msn, ALICE).await;
    timeout(
        sdk::T,
        alice.set_personal_message(&PersonalMessage {
            psm: "Eating cake".into(),
            current_media: String::new(),
        }),
    )
    .await
    .expect("UUX timed out")
    .expect("UUX");

    // Bob logs in from Matrix; the command with the password is redacted.
    let mut bob = new_user(&hs, &unique("mbob"), "bob-password-9").await;
    let mgmt = bob.open_management_room().await;
    let login_event = bob.say_id(&mgmt, &format!("login {BOB} secret")).await;
    bob.wait_for(
        "the login command redacted",
        |s| matches!(s, Seen::Redacted { event_id, .. } if *event_id == login_event),
    )
    .await;
    bob.notice(&mgmt, "Logged in to MSN as bob@example.com (MSNP")
        .await;
    // The command held the password: no file of the database ever had it in plain text
    // (queued events are sealed, the stored login too).
    let db = std::path::PathBuf::from(cfg.database.uri.trim_start_matches("sqlite:"));
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", db.display());
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(16).any(|w| w == b"login bob@exampl"),
            "the login command is in {file} in plain text"
        );
    }
    sdk::wait_for(&mut alice_events, "bob online", |e| matches!(e, Event::PresenceUpdate { email, .. } | Event::InitialPresenceUpdate { email, .. } if email == BOB)).await;
    bob.say(&mgmt, "status").await;
    bob.notice(&mgmt, &format!("connected, MSNP{version}"))
        .await;
    assert_eq!(msn.version(BOB), Some(version));

    // Alice writes: a portal appears with her puppet and the text, escaped.
    let alice_sb = timeout(sdk::T, alice.create_session(BOB))
        .await
        .expect("XFR timed out")
        .expect("switchboard");
    let mut alice_sb_events = sdk::collect_sb(&alice_sb);
    sdk::joined(&mut alice_sb_events, BOB).await;
    sdk::say(&alice_sb, "Hello <b>Bob</b> & co").await;
    let portal = bob.accept_invite().await;
    let html = bob
        .text_from(&portal, PUPPET_ALICE, "Hello <b>Bob</b> & co")
        .await;
    assert_eq!(html, None, "HTML from MSN is text, never markup");
    timeout(sdk::T, alice_sb.send_text_message(&bold("in bold")))
        .await
        .expect("MSG timed out")
        .expect("MSG");
    let html = bob.text_from(&portal, PUPPET_ALICE, "in bold").await;
    assert_eq!(html.as_deref(), Some("<strong>in bold</strong>"));
    let name = bob
        .client
        .get_room(&portal)
        .expect("portal")
        .get_member(&OwnedUserId::try_from(PUPPET_ALICE).expect("id"))
        .await
        .expect("member")
        .expect("puppet in the portal");
    assert_eq!(name.display_name(), Some("Alice Ä (MSN)"));

    // The puppet's presence carries the personal message.
    let puppet_id = OwnedUserId::try_from(PUPPET_ALICE).expect("id");
    let presence = bob
        .client
        .send(
            matrix_sdk::ruma::api::client::presence::get_presence::v3::Request::new(
                puppet_id.clone(),
            ),
        )
        .await
        .expect("presence");
    assert_eq!(presence.presence, PresenceState::Online);
    // Personal messages exist from MSNP11 (UUX/UBX, §5.5).
    let psm = (version >= 11).then_some("Eating cake");
    assert_eq!(presence.status_msg.as_deref(), psm);
    let busy = match psm {
        Some(psm) => format!("Busy: {psm}"),
        None => "Busy".to_owned(),
    };
    // Busy on MSN is unavailable in Matrix, the status saying so beside the message;
    // appearing offline (HDN) is offline.
    timeout(sdk::T, alice.set_presence(MsnpStatus::Busy))
        .await
        .expect("CHG hangs")
        .expect("CHG");
    bob.wait_for("alice busy", |s| {
        matches!(s, Seen::Presence { user, presence: PresenceState::Unavailable, status_msg: Some(m) }
            if *user == puppet_id && *m == busy)
    })
    .await;
    timeout(sdk::T, alice.set_presence(MsnpStatus::AppearOffline))
        .await
        .expect("CHG hangs")
        .expect("CHG");
    bob.wait_for("alice appearing offline", |s| {
        matches!(s, Seen::Presence { user, presence: PresenceState::Offline, .. } if *user == puppet_id)
    })
    .await;
    sdk::online(&alice).await;
    bob.wait_for("alice back online", |s| {
        matches!(s, Seen::Presence { user, presence: PresenceState::Online, .. } if *user == puppet_id)
    })
    .await;

    // Bob answers from Matrix, with formatting.
    bob.client
        .get_room(&portal)
        .expect("portal")
        .send(RoomMessageEventContent::text_html(
            "Hi Alice",
            "<em>Hi Alice</em>",
        ))
        .await
        .expect("send");
    let italic = sdk::wait_for(&mut alice_sb_events, "bob's answer", |e| matches!(e, Event::TextMessage { email, message } if email == BOB && message.text == "Hi Alice")).await;
    match italic {
        Event::TextMessage { message, .. } => {
            assert!(message.italic && !message.bold, "{message:?}")
        }
        _ => unreachable!(),
    }

    // Typing both ways, and a nudge.
    timeout(sdk::T, alice_sb.send_typing_user(ALICE))
        .await
        .expect("typing timed out")
        .expect("typing");
    bob.wait_for("alice typing", |s| matches!(s, Seen::Typing { room, user_ids } if *room == portal && user_ids.iter().any(|u| u.as_str() == PUPPET_ALICE))).await;
    bob.client
        .get_room(&portal)
        .expect("portal")
        .typing_notice(true)
        .await
        .expect("typing");
    sdk::wait_for(
        &mut alice_sb_events,
        "bob typing",
        |e| matches!(e, Event::TypingNotification { email } if email == BOB),
    )
    .await;
    timeout(sdk::T, alice_sb.send_nudge())
        .await
        .expect("nudge timed out")
        .expect("nudge");
    bob.wait_for("the nudge", |s| matches!(s, Seen::Emote { room, body, .. } if *room == portal && body.contains("nudge"))).await;
    bob.say(&portal, "!msn nudge").await;
    sdk::wait_for(
        &mut alice_sb_events,
        "bob's nudge",
        |e| matches!(e, Event::Nudge { email } if email == BOB),
    )
    .await;

    // Bob's Matrix presence becomes his MSN status.
    bob.client
        .send(
            matrix_sdk::ruma::api::client::presence::set_presence::v3::Request::new(
                bob.user_id.clone(),
                PresenceState::Unavailable,
            ),
        )
        .await
        .expect("set presence");
    sdk::wait_for(&mut alice_events, "bob away", |e| matches!(e, Event::PresenceUpdate { email, presence, .. } if email == BOB && matches!(presence.status, MsnpStatus::Away))).await;

    // A contact who is offline: the message comes back as a notice.
    bob.say(&mgmt, &format!("start-chat {CAROL}")).await;
    // The invite and the notice may come in either order (one sync can hold both).
    let me = bob.user_id.to_string();
    let (mut told, mut invited) = (false, None);
    bob.wait_for("the carol portal's invite and notice", |s| {
        match s {
            Seen::Notice { room, body, .. }
                if *room == mgmt && body.contains("Your chat with carol@example.com") =>
            {
                told = true
            }
            Seen::Member {
                room,
                target,
                membership: matrix_sdk::ruma::events::room::member::MembershipState::Invite,
                ..
            } if *target == me => invited = Some(room.clone()),
            _ => {}
        }
        told && invited.is_some()
    })
    .await;
    let carol_portal = invited.expect("invited");
    bob.client
        .join_room_by_id(&carol_portal)
        .await
        .expect("join portal");
    bob.say(&carol_portal, "are you there?").await;
    if version >= 13 {
        // MSN keeps it for her (an offline message), and the portal says so.
        bob.wait_for("the kept-for-later notice", |s| matches!(s, Seen::Notice { room, body, .. } if *room == carol_portal && body.contains("is offline; your messages will be delivered"))).await;
        let kept = msn.offline_messages(CAROL);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            (kept[0].sender.as_str(), kept[0].text.as_str()),
            (BOB, "are you there?")
        );
    } else {
        bob.wait_for("the undelivered notice", |s| matches!(s, Seen::Notice { room, body, .. } if *room == carol_portal && body.contains("not delivered"))).await;
    }
    // A nudge cannot wait for her (MSN keeps none) and has no acknowledgement: it comes
    // back as a notice.
    bob.say(&carol_portal, "!msn nudge").await;
    bob.wait_for("the undelivered nudge", |s| matches!(s, Seen::Notice { room, body, .. } if *room == carol_portal && body.contains("not delivered") && body.contains("did not receive"))).await;

    // A transaction the homeserver sends twice reaches MSN once.
    let txn = unique("replay");
    let event = serde_json::json!([{ "type": "m.room.message", "room_id": portal.as_str(), "event_id": format!("${txn}"),
        "sender": bob.user_id.as_str(), "content": {"msgtype": "m.text", "body": "only once"} }]);
    crate::e2e::push_transaction(&txn, event.clone()).await;
    crate::e2e::push_transaction(&txn, event).await;
    bob.say(&portal, "after the replay").await;
    let mut seen = Vec::new();
    loop {
        let e = sdk::wait_for(&mut alice_sb_events, "bob's messages", |e| {
            matches!(e, Event::TextMessage { .. })
        })
        .await;
        if let Event::TextMessage { message, .. } = e {
            let done = message.text == "after the replay";
            seen.push(message.text);
            if done {
                break;
            }
        }
    }
    assert_eq!(
        seen,
        vec!["only once".to_string(), "after the replay".to_string()]
    );

    // The database failing under the bridge: the message is not sent, and the room is
    // told. (The message map's table is renamed away from a connection of its own.)
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&cfg.database.uri)
        .await
        .expect("database");
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    sqlx::query(&rename("message_map", "message_map_away"))
        .execute(&db)
        .await
        .expect("rename");
    bob.say(&portal, "lost in the database").await;
    bob.wait_for("the database notice", |s| matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("not delivered") && body.contains("database"))).await;
    sqlx::query(&rename("message_map_away", "message_map"))
        .execute(&db)
        .await
        .expect("rename back");
    db.close().await;
    bob.say(&portal, "after the repair").await;
    let next = sdk::wait_for(&mut alice_sb_events, "bob's next message", |e| {
        matches!(e, Event::TextMessage { .. })
    })
    .await;
    assert!(
        matches!(&next, Event::TextMessage { message, .. } if message.text == "after the repair"),
        "{next:?}"
    );

    // Bob's Matrix display name becomes his MSN friendly name.
    bob.client
        .account()
        .set_display_name(Some("Bobby on Matrix"))
        .await
        .expect("set display name");
    sdk::wait_for(&mut alice_events, "bob's new friendly name", |e| {
        matches!(e, Event::PresenceUpdate { email, display_name, .. }
            if email == BOB && display_name == "Bobby on Matrix")
    })
    .await;

    // An emote and a notice reach MSN as text (the emote as "* …"); a message longer than
    // one MSN message arrives whole, in parts, in order.
    let room = bob.client.get_room(&portal).expect("portal known");
    for content in [
        RoomMessageEventContent::emote_plain("waves"),
        RoomMessageEventContent::notice_plain("a notice"),
    ] {
        room.send(content).await.expect("send");
    }
    let long: String = (0..400).map(|n| format!("{n:04} ")).collect();
    bob.say(&portal, &long).await;
    let mut texts = Vec::new();
    let mut joined = String::new();
    while joined.len() < long.len() {
        let e = sdk::wait_for(&mut alice_sb_events, "bob's messages", |e| {
            matches!(e, Event::TextMessage { .. })
        })
        .await;
        if let Event::TextMessage { message, .. } = e {
            if texts.len() < 2 {
                texts.push(message.text);
            } else {
                joined.push_str(&message.text);
            }
        }
    }
    assert_eq!(texts, ["* waves", "a notice"]);
    assert_eq!(joined, long, "the long message, whole and in order");

    // The portal says which network it bridges (MSC2346).
    let reg = support::e2e_registration();
    let as_client = matrix_msn::matrix::client::Client::new(
        &hs,
        &reg.as_token,
        OwnedUserId::try_from("@msnbot:localhost").expect("bot"),
    )
    .expect("client");
    let bridge_state = as_client
        .get_state(
            &portal,
            "m.bridge",
            "net.msnp://msn/alice@example.com",
            Some(&support::uid(PUPPET_ALICE)),
        )
        .await
        .expect("state")
        .expect("m.bridge is set");
    assert_eq!(bridge_state["protocol"]["id"], "msn");
    assert_eq!(bridge_state["channel"]["id"], ALICE);

    // The metrics count what happened so far.
    let text = metrics_text(&cfg).await;
    assert!(
        sample(
            &text,
            "matrix_msn_messages_bridged_total{direction=\"to_msn\"}"
        ) >= 2.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "matrix_msn_messages_bridged_total{direction=\"to_matrix\"}"
        ) >= 2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "matrix_msn_msn_sessions_connected"),
        1.0,
        "{text}"
    );
    assert!(
        sample(&text, "matrix_msn_errors_total{kind=\"delivery\"}") >= 1.0,
        "{text}"
    );

    // The MSN server drops Bob's connection: the bridge reconnects and messages flow again.
    msn.drop_connections(BOB);
    bob.notice(&mgmt, "Lost the connection to MSN").await;
    bob.notice(&mgmt, "Reconnected to MSN").await;
    bob_goes_and_comes_back(&mut alice_events, "bob dropped").await;
    alice_opens_and_says(&alice, "still there?").await;
    bob.text_from(&portal, PUPPET_ALICE, "still there?").await;

    // A flapping link: a second drop within a minute is not announced again.
    msn.drop_connections(BOB);
    bob_goes_and_comes_back(&mut alice_events, "bob dropped again").await;
    bob.say(&mgmt, "status").await;
    let mut notices = Vec::new();
    loop {
        let s = bob
            .wait_for(
                "the status answer",
                |s| matches!(s, Seen::Notice { room, .. } if *room == mgmt),
            )
            .await;
        if let Seen::Notice { body, .. } = s {
            let done = body.starts_with("Logged in as");
            notices.push(body);
            if done {
                break;
            }
        }
    }
    assert!(
        !notices.iter().any(|n| n.contains("Lost the connection")),
        "{notices:?}"
    );
    let text = metrics_text(&cfg).await;
    assert!(
        sample(
            &text,
            "matrix_msn_msn_reconnects_total{cause=\"ConnectionLost\"}"
        ) >= 2.0,
        "{text}"
    );

    // `reconnect` replaces the session: Bob goes and comes back, and the new session is
    // the one in use (the end of the old one does not take it away).
    bob.say(&mgmt, "reconnect").await;
    bob.notice(&mgmt, "Reconnected to MSN as").await;
    bob_goes_and_comes_back(&mut alice_events, "reconnect").await;
    alice_opens_and_says(&alice, "after the reconnect").await;
    bob.text_from(&portal, PUPPET_ALICE, "after the reconnect")
        .await;
    bob.say(&mgmt, "status").await;
    let status = bob.notice(&mgmt, ": connected, MSNP").await;
    assert!(
        status.contains(&format!("server {}", msn.dispatch_addr())),
        "{status}"
    );

    // A bridge restart logs Bob back in and keeps the same portal.
    bridge.stop().await;
    let bridge = TestBridge::start(cfg.clone()).await;
    bob_goes_and_comes_back(&mut alice_events, "bob signed out by the stop").await;
    alice_opens_and_says(&alice, "after the restart").await;
    bob.text_from(&portal, PUPPET_ALICE, "after the restart")
        .await;

    // The config stops letting Bob use the bridge: after a restart his login is not
    // restored, and what he writes in the portal comes back as not delivered.
    bridge.stop().await;
    bob_goes(&mut alice_events, "bob signed out by the stop").await;
    let mut revoked = cfg.clone();
    revoked.bridge.permissions = [("example.org".to_owned(), PermissionLevel::User)].into();
    let bridge = TestBridge::start(revoked).await;
    bob.say(&portal, "not for msn").await;
    bob.wait_for("the refusal", |s| matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("not delivered") && body.contains("not allowed"))).await;
    assert_eq!(msn.online(BOB), None, "not logged back in");
    bridge.stop().await;
    let bridge = TestBridge::start(cfg).await;
    sdk::wait_for(
        &mut alice_events,
        "bob back with his permission",
        |e| matches!(e, Event::PresenceUpdate { email, .. } if email == BOB),
    )
    .await;

    bob.say(&mgmt, "logout").await;
    bob.notice(&mgmt, "Logged out of MSN").await;
    bob_goes(&mut alice_events, "bob offline").await;
    // Logged out, a nudge cannot go: the portal says so.
    bob.say(&portal, "!msn nudge").await;
    bob.wait_for("the undelivered nudge", |s| matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("not delivered") && body.contains("not logged in"))).await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_login_failures_are_explained() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (_msn, _dir, cfg) = world(&hs).await;
    let bridge = TestBridge::start(cfg.clone()).await;
    let mut bob = new_user(&hs, &unique("mbob"), "bob-password-8").await;
    let mgmt = bob.open_management_room().await;

    // Two steps: the password comes in the next message, which is redacted.
    bob.say(&mgmt, &format!("login {BOB}")).await;
    bob.notice(&mgmt, "Send the password").await;
    let secret = bob.say_id(&mgmt, "wrong-password").await;
    bob.wait_for(
        "the password redacted",
        |s| matches!(s, Seen::Redacted { event_id, .. } if *event_id == secret),
    )
    .await;
    bob.notice(
        &mgmt,
        "Login failed: MSN refused the e-mail address or password",
    )
    .await;
    bob.say(&mgmt, "login not-an-address").await;
    bob.notice(&mgmt, "does not look like an MSN address").await;
    bob.say(&mgmt, "status").await;
    bob.notice(&mgmt, "Not logged in").await;

    // The bridge restarts between `login <email>` and the password: the password is not
    // read as a command (nor repeated) but removed, and Bob is asked to start over.
    bob.say(&mgmt, &format!("login {BOB}")).await;
    bob.notice(&mgmt, "Send the password").await;
    bridge.stop().await;
    let bridge = TestBridge::start(cfg).await;
    let secret = bob.say_id(&mgmt, "late-password").await;
    bob.wait_for(
        "the late password redacted",
        |s| matches!(s, Seen::Redacted { event_id, .. } if *event_id == secret),
    )
    .await;
    let reply = bob.notice(&mgmt, "restarted while it waited").await;
    assert!(!reply.contains("late-password"), "{reply}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_three_party_switchboard_becomes_a_group_portal() {
    three_party_switchboard(8..=12).await;
}

/// The same with the bridge on MSNP18 (per-endpoint roster lines in the switchboard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_three_party_switchboard_on_msnp18() {
    three_party_switchboard(8..=18).await;
}

async fn three_party_switchboard(versions: std::ops::RangeInclusive<u8>) {
    let Some((scene, bridge)) = scene_on(versions).await else {
        return;
    };
    let (hs, msn) = (scene.hs.as_str(), &scene.msn);
    let (alice, mut alice_events) = msn_contact(msn, ALICE).await;
    let (_carol, mut carol_events) = msn_contact(msn, CAROL).await;
    let cfg = &scene.cfg;

    let mut bob = new_user(hs, &unique("mbob"), "bob-password-7").await;
    bob.log_in_to_msn().await;

    // Alice talks to Bob, then calls Carol in: the conversation becomes a group.
    let (alice_sb, mut alice_sb_events) = conversation_with_bob(&alice, "just us").await;
    let dm = bob.accept_invite().await;
    bob.text_from(&dm, PUPPET_ALICE, "just us").await;
    timeout(sdk::T, alice_sb.invite(CAROL))
        .await
        .expect("CAL timed out")
        .expect("CAL");
    let carol_sb = sdk::answered(&mut carol_events).await;
    let mut carol_sb_events = sdk::collect_sb(&carol_sb);
    sdk::joined(&mut carol_sb_events, BOB).await;
    sdk::joined(&mut alice_sb_events, CAROL).await;

    let group = bob.accept_invite().await;
    assert_ne!(group, dm, "the group has a portal of its own");
    sdk::say(&alice_sb, "hello group").await;
    bob.text_from(&group, PUPPET_ALICE, "hello group").await;
    sdk::say(&carol_sb, "carol here").await;
    bob.text_from(&group, "@msn_carol=40example.com:localhost", "carol here")
        .await;

    // Bob writes in the group portal: both contacts receive it.
    bob.say(&group, "hi both").await;
    sdk::got_text(&mut alice_sb_events, BOB, "hi both").await;
    sdk::got_text(&mut carol_sb_events, BOB, "hi both").await;

    // After a bridge restart the group is called together again from the stored members
    // (they were only in the old session's memory, and the message came back undelivered).
    bridge.stop().await;
    let bridge = TestBridge::start(cfg.clone()).await;
    sdk::wait_for(
        &mut alice_events,
        "bob back",
        |e| matches!(e, Event::PresenceUpdate { email, .. } if email == BOB),
    )
    .await;
    bob.say(&group, "still both").await;
    let alice_sb = sdk::answered(&mut alice_events).await;
    let mut alice_sb_events = sdk::collect_sb(&alice_sb);
    let carol_sb = sdk::answered(&mut carol_events).await;
    let mut carol_sb_events = sdk::collect_sb(&carol_sb);
    sdk::got_text(&mut alice_sb_events, BOB, "still both").await;
    sdk::got_text(&mut carol_sb_events, BOB, "still both").await;

    // Carol leaves: her puppet leaves the group portal.
    timeout(sdk::T, carol_sb.disconnect())
        .await
        .expect("OUT timed out")
        .expect("OUT");
    bob.wait_for("carol's puppet leaving", |s| matches!(s, Seen::Member { room, target, membership: matrix_sdk::ruma::events::room::member::MembershipState::Leave, .. } if *room == group && target == "@msn_carol=40example.com:localhost")).await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_a_burst_of_renames_changes_the_puppet_once() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (hs, msn) = (scene.hs.as_str(), &scene.msn);
    let (alice, _alice_events) = msn_contact(msn, ALICE).await;
    let mut bob = new_user(hs, &unique("nbob"), "bob-password-9").await;
    bob.log_in_to_msn().await;
    alice_opens_and_says(&alice, "watch my name").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "watch my name").await;

    // Three names 300 ms apart, well inside the debounce: the puppet shows only the last.
    // (The pause is the contact's pace, not a wait for the bridge: without it the
    // homeserver itself folds the renames into one member event, hiding any that the
    // bridge made.)
    for (n, name) in ["Alice One", "Alice Two", "Alice Three"]
        .into_iter()
        .enumerate()
    {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        timeout(sdk::T, alice.set_display_name(name))
            .await
            .expect("rename hangs")
            .expect("rename");
    }
    bob.wait_for("the last name", |s| match s {
        Seen::Member {
            room,
            target,
            displayname: Some(name),
            ..
        } if *room == portal && target == PUPPET_ALICE => {
            assert!(
                !name.contains("One") && !name.contains("Two"),
                "an intermediate name was shown: {name}"
            );
            name.contains("Alice Three")
        }
        _ => false,
    })
    .await;
    bridge.stop().await;
}

/// A copy of `cfg` whose MSN server address leads nowhere (yet), and the port it names.
pub(crate) fn msn_unreachable(
    cfg: &matrix_msn::config::Config,
) -> (matrix_msn::config::Config, u16) {
    let port = support::free_port();
    let mut away = cfg.clone();
    away.msn.server = format!("127.0.0.1:{port}");
    (away, port)
}

/// From now on, `port` (of [`msn_unreachable`]) leads to the MSN server again.
pub(crate) async fn msn_reachable_again(port: u16, msn: &MsnServerHandle) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the old port");
    tokio::spawn(forward(listener, msn.dispatch_addr()));
}

/// Forwards every connection to `listener` to `target` (the way back to the MSN server).
async fn forward(listener: tokio::net::TcpListener, target: std::net::SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// The MSN server cannot be reached when the bridge restarts: the login is retried with
/// backoff (the user is told once) and is back as soon as the server is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_restored_logins_are_retried_until_msn_is_back() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (msn, _dir, cfg) = world(&hs).await;
    let (_alice, mut alice_events) = msn_contact(&msn, ALICE).await;
    let bridge = TestBridge::start(cfg.clone()).await;
    let mut bob = new_user(&hs, &unique("rbob"), "bob-password-10").await;
    let mgmt = bob.log_in_to_msn().await;
    bridge.stop().await;
    bob_goes(&mut alice_events, "bob signed out by the stop").await;

    // The bridge starts again while the MSN server's address leads nowhere.
    let (away, port) = msn_unreachable(&cfg);
    let bridge = TestBridge::start(away).await;
    bob.notice(&mgmt, "Trying again until it works").await;

    // The address leads to the server again: the next try logs Bob back in.
    msn_reachable_again(port, &msn).await;
    bob.notice(&mgmt, "Logged in to MSN as bob@example.com again")
        .await;
    sdk::wait_for(
        &mut alice_events,
        "bob back",
        |e| matches!(e, Event::PresenceUpdate { email, .. } if email == BOB),
    )
    .await;
    bridge.stop().await;
}

/// Someone new adds Bob on MSN: Bob is told, with the commands to answer; `accept` puts
/// them on his allow and forward lists, and `contacts`, `block`, `unblock` and `remove`
/// do what they say, on the server's lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_contact_list_changes_from_the_management_room() {
    contact_list_changes(8..=12, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_contact_list_changes_on_msnp15() {
    contact_list_changes(8..=18, Some(vec![15])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_contact_list_changes_on_msnp8() {
    contact_list_changes(8..=18, Some(vec![8])).await;
}

/// The same on MSNP18: the address book and `ADL`/`RML` behind the same commands, and
/// Dave (on MSNP12) kept pending until Bob accepts, as Escargot does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_contact_list_changes_on_msnp18() {
    contact_list_changes(8..=18, None).await;
}

async fn contact_list_changes(versions: std::ops::RangeInclusive<u8>, offered: Option<Vec<u8>>) {
    use msn_testkit::Lists;
    let negotiated = offered
        .as_ref()
        .and_then(|o| o.first().copied())
        .unwrap_or(*versions.end());
    let on_address_book = negotiated >= 13;
    let Some((scene, bridge)) = scene_offering(versions, offered).await else {
        return;
    };
    let (hs, msn) = (scene.hs.as_str(), &scene.msn);
    const DAVE: &str = "dave@example.com";
    msn.add_account(DAVE, "secret", "Dave");
    let mut bob = new_user(hs, &unique("cbob"), "bob-password-11").await;
    let mgmt = bob.log_in_to_msn().await;
    assert_eq!(msn.version(BOB), Some(negotiated));

    let (dave, _dave_events) = msn_contact(msn, DAVE).await;
    timeout(
        sdk::T,
        dave.add_contact(BOB, "Bob", msnp11_sdk::MsnpList::ForwardList),
    )
    .await
    .expect("ADC hangs")
    .expect("ADC");
    let told = bob
        .notice(&mgmt, "added you to their MSN contact list")
        .await;
    assert!(told.contains(&format!("accept {DAVE}")), "{told}");
    assert!(told.contains(&format!("block {DAVE}")), "{told}");
    if on_address_book {
        assert!(
            msn.lists(BOB, DAVE).contains(Lists::PL),
            "pending until answered"
        );
    }

    bob.say(&mgmt, &format!("accept {DAVE}")).await;
    bob.notice(&mgmt, &format!("{DAVE} is added")).await;
    let lists = msn.lists(BOB, DAVE);
    assert!(
        lists.contains(Lists::FL) && lists.contains(Lists::AL),
        "{lists:?}"
    );
    assert!(!lists.contains(Lists::PL), "answered: {lists:?}");

    bob.say(&mgmt, "contacts").await;
    let contacts = bob.notice(&mgmt, DAVE).await;
    assert!(contacts.contains(ALICE), "{contacts}");

    bob.say(&mgmt, &format!("block {DAVE}")).await;
    bob.notice(&mgmt, &format!("{DAVE} is blocked")).await;
    let lists = msn.lists(BOB, DAVE);
    assert!(
        lists.contains(Lists::BL) && !lists.contains(Lists::AL),
        "{lists:?}"
    );
    bob.say(&mgmt, &format!("unblock {DAVE}")).await;
    bob.notice(&mgmt, &format!("{DAVE} is unblocked")).await;
    let lists = msn.lists(BOB, DAVE);
    assert!(
        lists.contains(Lists::AL) && !lists.contains(Lists::BL),
        "{lists:?}"
    );
    bob.say(&mgmt, &format!("remove {DAVE}")).await;
    bob.notice(&mgmt, &format!("{DAVE} is removed")).await;
    assert!(!msn.lists(BOB, DAVE).contains(Lists::FL));
    bridge.stop().await;
}

/// The double-puppet registration's token (tests/fixtures/e2e-double-puppet.yaml).
const DOUBLE_PUPPET_TOKEN: &str = "as_dp_0123456789abcdef0123456789abcdef";

/// MSNP18 with the user's own Messenger beside the bridge and double puppeting on: what
/// the user writes in their Messenger is their own message in the portal (through a
/// real Synapse with a second registration), Alice gets it once, and the bridge does
/// not send the echo back to MSN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_double_puppeting_shows_the_users_own_line_as_theirs() {
    use matrix_msn::bridge::formatting::RichText;
    use matrix_msn::bridge::ids::MsnAddress;
    use matrix_msn::bridge::remote::{Chat, MsnSessionPort};
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (msn, _dir, mut cfg) = world_on(&hs, 8..=18).await;
    cfg.bridge.double_puppet_secrets.insert(
        "localhost".into(),
        format!("as_token:{DOUBLE_PUPPET_TOKEN}"),
    );
    let bridge = TestBridge::start(cfg.clone()).await;
    let mut bob = new_user(&hs, &unique("dpbob"), "bob-password-dp").await;
    bob.log_in_to_msn().await;

    // Bob's own Messenger: another MSNP18 endpoint of his account.
    let (own, _own_events) = crate::bridge_offline::msnp18_client(&msn, BOB).await;
    support::poll_until("both endpoints of Bob online", || async {
        msn.endpoint_count(BOB) == 2
    })
    .await;

    // Alice writes to Bob once both of his endpoints are in her conversation.
    let (alice, _alice_events) = msn_contact(&msn, ALICE).await;
    let alice_sb = timeout(sdk::T, alice.create_session(BOB))
        .await
        .expect("XFR timed out")
        .expect("switchboard");
    let mut alice_sb_events = sdk::collect_sb(&alice_sb);
    support::poll_until("both of Bob's endpoints with Alice", || async {
        msn.switchboards_of(ALICE)
            .iter()
            .any(|members| members.iter().filter(|m| *m == BOB).count() == 2)
    })
    .await;
    sdk::say(&alice_sb, "hi both").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "hi both").await;

    // Bob answers from his Messenger: in Matrix it is his own message.
    let rich = RichText {
        text: "hello from WLM".into(),
        style: Default::default(),
    };
    timeout(
        sdk::T,
        own.send_text(&Chat::Contact(MsnAddress::from_server(ALICE)), rich),
    )
    .await
    .expect("send hangs")
    .expect("sent");
    let me = bob.user_id.clone();
    bob.wait_for("Bob's own line, as Bob", |s| {
        matches!(s, Seen::Text { room, sender, body, .. }
            if *room == portal && *sender == me && body == "hello from WLM")
    })
    .await;
    // Alice got it once: the bridge did not send the echo back. (Bob's next line from
    // Matrix comes right after it.)
    bob.say(&portal, "next").await;
    let mut texts = Vec::new();
    while texts.last().map(String::as_str) != Some("next") {
        let e = sdk::wait_for(&mut alice_sb_events, "Bob's lines", |e| {
            matches!(e, Event::TextMessage { .. })
        })
        .await;
        if let Event::TextMessage { message, .. } = e {
            texts.push(message.text);
        }
    }
    assert_eq!(texts, ["hello from WLM", "next"]);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_send_status_edits_redactions_and_reactions() {
    use matrix_sdk::ruma::OwnedEventId;
    use matrix_sdk::ruma::events::reaction::ReactionEventContent;
    use matrix_sdk::ruma::events::relation::Annotation;
    use matrix_sdk::ruma::events::room::message::ReplacementMetadata;
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let (alice, _alice_events) = msn_contact(&scene.msn, ALICE).await;
    let mut bob = new_user(&scene.hs, &unique("ebob"), "bob-password-edits").await;
    bob.log_in_to_msn().await;
    let (_alice_sb, mut alice_sb_events) = conversation_with_bob(&alice, "hi").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "hi").await;

    let first = OwnedEventId::try_from(bob.say_id(&portal, "teh typo").await).expect("id");
    sdk::got_text(&mut alice_sb_events, BOB, "teh typo").await;
    // The message's send status, as a client that shows it reads it from the room.
    let token = bob.client.access_token().unwrap_or_default();
    let url = format!(
        "{}/_matrix/client/v3/rooms/{portal}/messages?dir=b&limit=50",
        scene.hs
    );
    support::poll_until("the message's send status", || async {
        let Ok(answer) = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
        else {
            return false;
        };
        let Ok(page) = answer.json::<serde_json::Value>().await else {
            return false;
        };
        page.get("chunk")
            .and_then(|c| c.as_array())
            .is_some_and(|events| {
                events.iter().any(|e| {
                    e.get("type").and_then(|t| t.as_str()) == Some("com.beeper.message_send_status")
                        && e.pointer("/content/m.relates_to/event_id")
                            .and_then(|id| id.as_str())
                            == Some(first.as_str())
                        && e.pointer("/content/status").and_then(|s| s.as_str()) == Some("SUCCESS")
                })
            })
    })
    .await;
    let room = bob.client.get_room(&portal).expect("portal known");
    let edit = RoomMessageEventContent::text_plain("the typo")
        .make_replacement(ReplacementMetadata::new(first.clone(), None));
    room.send(edit).await.expect("edit sent");
    sdk::got_text(&mut alice_sb_events, BOB, "* the typo").await;

    room.redact(&first, None, None).await.expect("redacted");
    bob.wait_for("the notice that MSN cannot take it back", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("MSN cannot take back a message"))
    })
    .await;
    room.send(ReactionEventContent::new(Annotation::new(
        first,
        "👍".into(),
    )))
    .await
    .expect("reaction sent");
    bob.wait_for("the notice that MSN has no reactions", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("MSN has no reactions"))
    })
    .await;
    bridge.stop().await;
}
