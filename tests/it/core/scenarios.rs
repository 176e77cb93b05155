//! The core's policy, scenario by scenario, without Synapse: management room, commands,
//! logins, portals and messages both ways, waits for the session and for the homeserver.

use std::time::Duration;

use matrix_msn::bridge::ids::MsnAddress;
use matrix_msn::bridge::remote::{Chat, MsnSessionPort, RemoteEvent};
use matrix_msn::bridge::{MatrixEvent, NOT_ALLOWED};
use msn_testkit::Lists;

use super::harness::{
    ALICE, BOB, CAROL, Contact, Order, PUPPET_ALICE, STRANGER, Scene, USER, invite, until,
};
use super::homeserver::BOT;
use crate::support::{rid, uid};

#[tokio::test(start_paused = true)]
async fn an_invite_is_greeted_with_the_commands() {
    let mut scene = Scene::start().await;
    let room = scene.open_management_room(USER).await;
    let greeting = scene.notice(&room, "management room").await;
    assert!(greeting.contains("login"), "{greeting}");
    let joined = scene.hs.room(&room).expect("room").joined;
    assert!(joined.contains(BOT), "{joined:?}");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_user_without_permission_is_refused() {
    let mut scene = Scene::start().await;
    let room = scene.hs.user_creates_room(STRANGER, &[BOT], true);
    scene.push(vec![invite(&room, STRANGER, BOT, true)]).await;
    let hs = scene.hs.clone();
    until("the invite to be rejected", || {
        let room = hs.room(&room)?;
        (!room.invited.contains(BOT) && !room.joined.contains(BOT)).then_some(())
    })
    .await;
    assert!(scene.notices(&room).is_empty(), "nothing is said to them");
    // A command in a room the bot shares with them anyway gets the refusal, only.
    let shared = scene.hs.user_creates_room(STRANGER, &[BOT], false);
    scene.hs.user_joins(&shared, BOT);
    scene.say(&shared, STRANGER, "!msn help").await;
    scene.notice(&shared, NOT_ALLOWED).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_command_gets_a_suggestion() {
    let mut scene = Scene::start().await;
    let room = scene.open_management_room(USER).await;
    scene.say(&room, USER, "statsu").await;
    let reply = scene.notice(&room, "not a command").await;
    assert!(reply.contains("`status`"), "{reply}");
    scene.say(&room, USER, "ping").await;
    scene.notice(&room, "Pong").await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_explained_and_the_password_redacted() {
    let mut scene = Scene::start().await;
    let room = scene.open_management_room(USER).await;
    let event = scene
        .say(&room, USER, &format!("login {BOB} not-the-password"))
        .await;
    let failed = scene.notice(&room, "Login failed").await;
    assert!(
        failed.contains("refused the e-mail address or password"),
        "{failed}"
    );
    assert!(
        scene.hs.redactions().contains(&(room.clone(), event)),
        "the message with the password is redacted"
    );
    scene.say(&room, USER, "status").await;
    scene.notice(&room, "Not logged in").await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_password_asked_for_is_taken_and_redacted() {
    let mut scene = Scene::start().await;
    let room = scene.open_management_room(USER).await;
    scene.say(&room, USER, &format!("login {BOB}")).await;
    scene.notice(&room, "Send the password").await;
    let password = scene.say(&room, USER, "secret").await;
    scene.notice(&room, "Logged in to MSN").await;
    assert!(scene.hs.redactions().contains(&(room.clone(), password)));
    // A user active on Matrix is online.
    until("Bob to be online", || {
        (scene.msn.online(BOB)? == "NLN").then_some(())
    })
    .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_password_that_comes_too_late_is_read_as_a_command() {
    let mut scene = Scene::start().await;
    let room = scene.open_management_room(USER).await;
    scene.say(&room, USER, &format!("login {BOB}")).await;
    scene.notice(&room, "Send the password").await;
    // Five minutes pass: the bridge no longer waits for the password.
    scene.advance(Duration::from_secs(301)).await;
    scene.say(&room, USER, "ping").await;
    scene.notice(&room, "Pong").await;
    assert!(scene.hs.redactions().is_empty());
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_contact_message_opens_a_portal_and_the_reply_reaches_the_contact() {
    let mut scene = Scene::start().await;
    scene.log_in(USER).await;
    // The bridge offers MSNP18 first and the server speaks it: the core's scenarios run
    // on single sign-on, the address book and the MSNP18 forms (the Synapse end-to-end
    // tests run on MSNP12).
    assert_eq!(scene.msn.version(BOB), Some(18));
    assert!(scene.msn.machine_guid(BOB).is_some());
    let mut alice = Contact::sign_in(&scene.msn, ALICE).await;
    alice.say(BOB, "hello from MSN").await;

    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "hello from MSN")
        .await;
    let room = scene.hs.room(&portal).expect("portal");
    assert!(room.is_direct, "a one-to-one chat is a direct chat");
    assert!(scene.hs.is_registered(PUPPET_ALICE));
    assert_eq!(room.name.as_deref(), Some("Alice Ä (MSN)"));
    let bridged = room.bridged.expect("m.bridge state");
    assert_eq!(bridged.channel_id, ALICE);
    let name = scene.hs.displayname_of(PUPPET_ALICE);
    assert_eq!(
        name.as_deref(),
        Some("Alice Ä (MSN)"),
        "the puppet is named as on MSN, by the display name template"
    );

    scene.hs.user_joins(&portal, USER);
    scene.say(&portal, USER, "hello from Matrix").await;
    let (from, text) = alice.message().await;
    assert_eq!((from.as_str(), text.as_str()), (BOB, "hello from Matrix"));
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn messages_from_msn_wait_out_a_homeserver_outage_in_order() {
    let mut scene = Scene::start().await;
    scene.log_in(USER).await;
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    alice.say(BOB, "before").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "before").await;

    scene.hs.set_down(true);
    for n in 1..=3 {
        alice.say(BOB, &format!("during {n}")).await;
    }
    // The core keeps trying while the homeserver is away (its calls fail).
    let calls = scene.hs.calls();
    scene.advance(Duration::from_secs(5)).await;
    let hs = scene.hs.clone();
    until("a retry", || (hs.calls() > calls).then_some(())).await;
    scene.advance(Duration::from_secs(60)).await;

    scene.hs.set_down(false);
    // The next retry (at most a minute on) delivers them all.
    let hs = scene.hs.clone();
    scene
        .advance_until(
            "the held messages",
            Duration::from_secs(2),
            Duration::from_secs(180),
            || {
                hs.room(&portal)?
                    .timeline
                    .iter()
                    .any(|e| e.body == "during 3")
                    .then_some(())
            },
        )
        .await;
    let bodies: Vec<String> = scene
        .hs
        .room(&portal)
        .expect("portal")
        .timeline
        .into_iter()
        .filter(|e| e.sender == PUPPET_ALICE)
        .map(|e| e.body)
        .collect();
    assert_eq!(bodies, ["before", "during 1", "during 2", "during 3"]);
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_written_during_a_restart_waits_for_the_restored_login() {
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("are you there?").await;
    let world = scene.stop().await;

    // While the bridge is down the user writes; the homeserver holds the event.
    let event = world
        .hs
        .user_sends(&portal, USER, "written while the bridge was down");
    let mut scene = Scene::start_in(world).await;
    scene
        .push(vec![super::harness::message(
            &portal,
            &event,
            USER,
            "written while the bridge was down",
        )])
        .await;
    let (from, text) = alice.message().await;
    assert_eq!(
        (from.as_str(), text.as_str()),
        (BOB, "written while the bridge was down")
    );
    scene.assert_nothing_undelivered(&portal);
    scene.stop().await;
}

/// After a restart the stored logins start at `msn.restore_logins_per_second`: three of
/// them at one a second take two seconds to be back, not a burst.
#[tokio::test(start_paused = true)]
async fn stored_logins_come_back_at_the_configured_pace() {
    let mut scene = Scene::start().await;
    let users = [
        (USER, BOB),
        ("@second:localhost", ALICE),
        ("@third:localhost", CAROL),
    ];
    for (user, account) in users {
        let room = scene.open_management_room(user).await;
        scene
            .say(&room, user, &format!("login {account} secret"))
            .await;
        scene.notice(&room, "Logged in to MSN").await;
    }
    let world = scene.stop().await;
    let mut config = Scene::config_in(&world);
    config.msn.restore_logins_per_second = 1;
    let started = tokio::time::Instant::now();
    let scene = Scene::start_with(world, config, Order::WorkerFirst).await;
    let metrics = scene.metrics.clone();
    until("the three logins to be back", || {
        (metrics.msn_sessions.get() == 3).then_some(())
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "three logins at one a second were all back after {took:?}"
    );
    assert_eq!(metrics.errors_of("login_restore"), 0);
    scene.stop().await;
}

/// The same when the restore is quicker than the worker's start: the worker must not
/// mark a login that is already up as coming back (its messages would wait for nothing).
#[tokio::test(start_paused = true)]
async fn a_login_restored_before_the_worker_starts_takes_messages_at_once() {
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("are you there?").await;
    let world = scene.stop().await;
    let event = world.hs.user_sends(&portal, USER, "right away");
    let config = Scene::config_in(&world);
    let mut scene = Scene::start_with(world, config, Order::RestoreFirst).await;
    scene
        .push(vec![super::harness::message(
            &portal,
            &event,
            USER,
            "right away",
        )])
        .await;
    let (from, text) = alice.message().await;
    assert_eq!((from.as_str(), text.as_str()), (BOB, "right away"));
    assert_eq!(scene.metrics.portals_waiting.get(), 0);
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_to_an_unreachable_msn_is_reported_after_the_delivery_wait() {
    let mut scene = Scene::start().await;
    let mgmt = scene.log_in(USER).await;
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    alice.say(BOB, "hi").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.hs.user_joins(&portal, USER);

    // MSN stops answering Bob's session, then drops it: the session reconnects and
    // cannot come back while the server keeps refusing.
    scene.msn.stop_answering(BOB, true);
    scene.msn.drop_connections(BOB);
    // Once the bridge saw the connection go, the message waits for it to come back.
    scene.notice(&mgmt, "Lost the connection to MSN").await;
    scene.say(&portal, USER, "into the void").await;
    let metrics = scene.metrics.clone();
    until("the message to wait for the session", || {
        (metrics.portals_waiting.get() > 0).then_some(())
    })
    .await;
    // Nothing is said before the wait is over.
    let wait = Duration::from_secs(scene.config.msn.delivery_wait_seconds);
    scene.advance(wait - Duration::from_secs(1)).await;
    assert_eq!(metrics.portals_waiting.get(), 1, "still waiting");
    // Then the send is tried and fails (after the client's own timeouts): the notice
    // comes in the contact's name, where the message was.
    let hs = scene.hs.clone();
    let notice = scene
        .advance_until(
            "the undelivered notice",
            Duration::from_secs(1),
            Duration::from_secs(120),
            || {
                hs.room(&portal)?
                    .timeline
                    .into_iter()
                    .find(|e| e.sender == PUPPET_ALICE && e.body.contains("not delivered"))
                    .map(|e| e.body)
            },
        )
        .await;
    assert!(notice.contains("MSN"), "{notice}");

    // The next message of the same outage does not wait the whole time again.
    scene.say(&portal, USER, "still there?").await;
    let hs = scene.hs.clone();
    scene
        .advance_until(
            "the second undelivered notice",
            Duration::from_secs(1),
            wait / 2,
            || {
                let count = hs
                    .room(&portal)?
                    .timeline
                    .iter()
                    .filter(|e| e.sender == PUPPET_ALICE && e.body.contains("not delivered"))
                    .count();
                (count == 2).then_some(())
            },
        )
        .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_contacts_status_is_the_puppets_presence() {
    use matrix_msn::bridge::presence::MatrixPresence;
    use matrix_msn::bridge::remote::OwnStatus;

    let mut scene = Scene::start().await;
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    scene.log_in(USER).await;
    let hs = scene.hs.clone();
    until("Alice online on Matrix", || {
        (hs.presence_of(PUPPET_ALICE)?.0 == MatrixPresence::Online).then_some(())
    })
    .await;
    super::harness::drive(
        "Alice to go away",
        alice.session.set_status(OwnStatus::Away),
    )
    .await
    .expect("status set");
    let (presence, message) = until("Alice away on Matrix", || {
        hs.presence_of(PUPPET_ALICE)
            .filter(|(p, _)| *p == MatrixPresence::Unavailable)
    })
    .await;
    assert_eq!(presence, MatrixPresence::Unavailable);
    assert_eq!(message.as_deref(), Some("Away"));
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_contacts_typing_and_nudge_show_in_the_portal() {
    let mut scene = Scene::start().await;
    scene.log_in(USER).await;
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    // The homeserver shows "hi" before the bridge hears back from it; Alice types on
    // meanwhile. Her typing came after the message, so the message must not end it.
    scene.hs.hold_send_replies(true);
    alice.say(BOB, "hi").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "hi").await;
    let to_bob = Chat::Contact(MsnAddress::from_server(BOB));

    super::harness::drive("Alice typing", alice.session.send_typing(&to_bob))
        .await
        .expect("typing sent");
    let hs = scene.hs.clone();
    let typing = || {
        hs.room(&portal)
            .is_some_and(|room| room.typing.contains(PUPPET_ALICE))
    };
    until("the puppet typing", || typing().then_some(())).await;
    scene.hs.hold_send_replies(false);

    // A nudge is an emote; it comes after "hi" in the portal's order.
    super::harness::drive("Alice's nudge", alice.session.send_nudge(&to_bob))
        .await
        .expect("nudge sent");
    let nudge = scene.notice_from(&portal, PUPPET_ALICE, "nudge").await;
    let room = scene.hs.room(&portal).expect("portal");
    let event = room
        .timeline
        .iter()
        .find(|e| e.body == nudge)
        .expect("the nudge event");
    assert_eq!(event.msgtype, "m.emote");
    assert!(typing(), "the typing after \"hi\" still shows");

    // Her next message ends the typing it announced.
    alice.say(BOB, "there?").await;
    scene.notice_from(&portal, PUPPET_ALICE, "there?").await;
    until("the typing to end", || (!typing()).then_some(())).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn matrix_typing_reaches_the_contact() {
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("hi").await;
    scene
        .push(vec![MatrixEvent::Typing {
            room_id: rid(&portal),
            user_ids: vec![uid(USER)],
        }])
        .await;
    alice
        .next("Bob typing", |event| match event {
            RemoteEvent::Typing { from, .. } if from.as_str() == BOB => Some(()),
            _ => None,
        })
        .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn contact_list_commands_change_the_msn_lists() {
    let mut scene = Scene::start().await;
    let room = scene.log_in(USER).await;
    scene.say(&room, USER, "contacts").await;
    let list = scene.notice(&room, "Your MSN contacts").await;
    assert!(list.contains(ALICE) && list.contains(CAROL), "{list}");

    scene.say(&room, USER, &format!("block {CAROL}")).await;
    scene.notice(&room, &format!("{CAROL} is blocked")).await;
    assert!(scene.msn.lists(BOB, CAROL).contains(Lists::BL));
    scene.say(&room, USER, &format!("remove {ALICE}")).await;
    scene
        .notice(&room, &format!("{ALICE} is removed from your contact list"))
        .await;
    assert!(!scene.msn.lists(BOB, ALICE).contains(Lists::FL));
    scene.say(&room, USER, "add not-an-address").await;
    scene
        .notice(&room, "does not look like an MSN address")
        .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn someone_adding_the_user_is_told_with_the_commands_to_answer() {
    let mut scene = Scene::start().await;
    scene.msn.add_account("dave@example.com", "secret", "Dave");
    let room = scene.log_in(USER).await;
    let dave = Contact::sign_in(&scene.msn, "dave@example.com").await;
    let bob = MsnAddress::from_server(BOB);
    super::harness::drive("Dave adding Bob", dave.session.add_contact(&bob))
        .await
        .expect("added");
    let notice = scene
        .notice(&room, "added you to their MSN contact list")
        .await;
    assert!(notice.contains("accept dave@example.com"), "{notice}");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn logout_signs_out_of_msn_and_forgets_the_password() {
    let mut scene = Scene::start().await;
    let room = scene.log_in(USER).await;
    until("Bob online", || scene.msn.online(BOB)).await;
    scene.say(&room, USER, "logout").await;
    scene.notice(&room, "Logged out of MSN").await;
    until("Bob signed out", || {
        scene.msn.online(BOB).is_none().then_some(())
    })
    .await;
    // A restart does not log the user back in.
    let world = scene.stop().await;
    let mut scene = Scene::start_in(world).await;
    scene.say(&room, USER, "status").await;
    scene.notice(&room, "Not logged in").await;
    assert!(scene.msn.online(BOB).is_none());
    scene.stop().await;
}

/// A database that refuses the outbox's write for a while (full, locked) loses nothing:
/// the write is tried again.
#[tokio::test(start_paused = true)]
async fn an_outbox_write_that_fails_is_tried_again() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("first").await;
    let db = super::harness::drive(
        "a second connection to the store",
        sqlx::sqlite::SqlitePool::connect(&scene.config.database.uri),
    )
    .await
    .expect("the store's database");
    let run = |sql: &'static str| super::harness::drive(sql, sqlx::query(sql).execute(&db));
    run("CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .await
        .expect("trigger");
    alice.say(BOB, "second").await;
    scene.advance(Duration::from_secs(3)).await;
    let arrived = |hs: &super::homeserver::FakeHomeserver| {
        hs.room(&portal)?
            .timeline
            .iter()
            .any(|e| e.body == "second")
            .then_some(())
    };
    assert!(arrived(&scene.hs).is_none(), "the write was refused");
    run("DROP TRIGGER refuse_outbox").await.expect("drop");
    let hs = scene.hs.clone();
    scene
        .advance_until(
            "the message written at last",
            Duration::from_secs(1),
            Duration::from_secs(120),
            || arrived(&hs),
        )
        .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_users_own_messenger_stays_online_and_what_it_writes_reaches_the_portal() {
    let mut scene = Scene::start().await;
    let mgmt = scene.log_in(USER).await;
    let (own, _alice, portal) = alice_with_both_of_bobs_endpoints(&mut scene).await;

    // The user answers from their Messenger: the portal shows it as theirs, and it is
    // not sent back to MSN.
    own.say(ALICE, "hello from WLM").await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "you, from Messenger: hello from WLM")
        .await;
    let room = scene.hs.room(&portal).expect("portal");
    let event = room
        .timeline
        .iter()
        .find(|e| e.body.contains("hello from WLM"))
        .expect("the user's line");
    assert_eq!(event.msgtype, "m.notice");

    // Neither endpoint booted the other.
    assert_eq!(scene.msn.endpoint_count(BOB), 2);
    let told = scene.hs.room(&mgmt).expect("management room");
    assert!(
        !told
            .timeline
            .iter()
            .any(|e| e.body.contains("another place")),
        "the bridge was not signed out"
    );
    scene.stop().await;
}

/// WLM 2009 opens a chat by calling its own address first (MSNP.md §15.3.3): the bridge,
/// rung by the user's own endpoint, stays for the contact who joins next, and the
/// conversation is the chat with that contact both ways.
#[tokio::test(start_paused = true)]
async fn a_chat_the_users_own_messenger_starts_is_mirrored_in_the_portal() {
    use super::harness::drive;
    use matrix_msn::net::{MsnSettings, NsClient, http_client};
    use msnp::{NsConfig, NsEvent, Secret};
    const LAPTOP: &str = "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}";

    let mut scene = Scene::start().await;
    scene.log_in(USER).await;
    let mut alice = Contact::sign_in(&scene.msn, ALICE).await;

    // The user's own Messenger: an MSNP18 endpoint of Bob's account.
    let mut settings =
        MsnSettings::new(scene.msn.dispatch_addr().to_string(), scene.msn.nexus_url());
    settings.versions = vec![18];
    let http = http_client(None, Duration::from_secs(5)).expect("http");
    let mut config = NsConfig::new(BOB);
    config.machine_guid = Some(LAPTOP.into());
    let (own, mut own_events) = drive(
        "the user's Messenger to sign in",
        NsClient::connect(settings.clone(), &http, config, Secret::new("secret")),
    )
    .await
    .expect("signed in");
    drive("its first CHG", async {
        while let Some(event) = own_events.recv().await {
            if matches!(event, NsEvent::OwnStatus { .. }) {
                break;
            }
        }
    })
    .await;
    let (address, auth) = drive("a switchboard", own.request_switchboard())
        .await
        .expect("XFR");
    // As WLM 2009 does, on the wire: its own address first (the bridge joins), a line
    // typed before Alice is in, then Alice, then another line.
    let mut wire = RawSb::connect(&address).await;
    wire.send(&format!("USR 1 {BOB};{LAPTOP} {}\r\n", auth.expose()))
        .await;
    wire.until("USR").await;
    wire.send(&format!("CAL 2 {BOB}\r\n")).await;
    wire.until_joined(&format!("{BOB};")).await;
    wire.say(3, "early line").await;
    wire.send(&format!("CAL 4 {ALICE}\r\n")).await;
    wire.until_joined(ALICE).await;
    wire.say(5, "hello from my laptop").await;
    // The bridge was rung by the laptop, stayed, and shows the user's line to Alice's
    // portal; Alice got it too.
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene
        .notice_from(
            &portal,
            PUPPET_ALICE,
            "you, from Messenger: hello from my laptop",
        )
        .await;
    let (from, text) = alice.message().await;
    assert_eq!(
        (from.as_str(), text.as_str()),
        (BOB, "hello from my laptop")
    );
    // The line typed before Alice joined reached the portal too, first.
    let room = scene.hs.room(&portal).expect("portal");
    let lines: Vec<&str> = room
        .timeline
        .iter()
        .filter(|e| e.body.starts_with("you, from Messenger"))
        .map(|e| e.body.as_str())
        .collect();
    assert_eq!(
        lines,
        [
            "you, from Messenger: early line",
            "you, from Messenger: hello from my laptop"
        ]
    );
    // Alice answers in that conversation: the portal gets it from her puppet.
    alice.say(BOB, "hi laptop").await;
    scene.notice_from(&portal, PUPPET_ALICE, "hi laptop").await;
    scene.stop().await;
}

/// A switchboard client on the raw wire (what the bridge's own client library would not
/// do: calling its own address first and writing before anyone joined, as WLM does).
struct RawSb {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

impl RawSb {
    async fn connect(address: &str) -> Self {
        let stream =
            super::harness::drive("the switchboard", tokio::net::TcpStream::connect(address))
                .await
                .expect("connects");
        Self {
            stream,
            buf: bytes::BytesMut::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        super::harness::drive("a write", self.stream.write_all(line.as_bytes()))
            .await
            .expect("written");
    }

    /// Sends `text` as a plain-text `MSG` with ack mode N.
    async fn say(&mut self, trid: u32, text: &str) {
        let payload =
            format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}");
        self.send(&format!("MSG {trid} N {}\r\n{payload}", payload.len()))
            .await;
    }

    /// Reads frames until one `keep` accepts.
    async fn next(&mut self, what: &str, keep: impl Fn(&msnp::frame::Frame) -> bool) {
        use tokio::io::AsyncReadExt;
        super::harness::drive(what, async {
            loop {
                while let Ok(Some(frame)) = msnp::frame::parse(
                    &mut self.buf,
                    &msnp::Limits::default(),
                    msnp::Direction::ServerToClient,
                    18,
                ) {
                    if keep(&frame) {
                        return;
                    }
                }
                let read = self.stream.read_buf(&mut self.buf).await.expect("reads");
                assert!(read > 0, "the switchboard closed");
            }
        })
        .await;
    }

    async fn until(&mut self, verb: &str) {
        self.next(verb, |f| f.verb.to_string() == verb).await;
    }

    async fn until_joined(&mut self, who: &str) {
        self.next(&format!("JOI {who}"), |f| {
            f.verb.to_string() == "JOI" && f.arg(0).is_some_and(|a| a.starts_with(who))
        })
        .await;
    }
}

/// With double puppeting, what the user writes in their own Messenger is their own
/// message in the portal; while they have not joined it (the homeserver refuses), it
/// comes as the notice instead, never lost.
#[tokio::test(start_paused = true)]
async fn with_double_puppeting_the_users_own_line_is_theirs() {
    let mut scene = Scene::start().await;
    scene.hs.allow_double_puppet(true);
    scene.log_in(USER).await;
    let (own, _alice, portal) = alice_with_both_of_bobs_endpoints(&mut scene).await;

    // Not yet in the portal: the homeserver refuses the user's line; a notice says it.
    own.say(ALICE, "before joining").await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "you, from Messenger: before joining")
        .await;
    // Joined: the line is the user's own message.
    scene.hs.user_joins(&portal, USER);
    own.say(ALICE, "hello from WLM").await;
    let hs = scene.hs.clone();
    let event = until("the user's own line", || {
        hs.room(&portal)?
            .timeline
            .into_iter()
            .find(|e| e.body == "hello from WLM")
    })
    .await;
    assert_eq!(event.sender, USER);
    assert_eq!(event.msgtype, "m.text");
    scene.stop().await;
}

/// The user's own Messenger (MSNP18, another machine GUID) signed in beside the bridge,
/// and Alice in a conversation with both of Bob's endpoints, her first line in the
/// portal: (the user's Messenger, Alice, the portal).
async fn alice_with_both_of_bobs_endpoints(scene: &mut Scene) -> (Contact, Contact, String) {
    let own =
        Contact::sign_in_endpoint(&scene.msn, BOB, "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}").await;
    let msn = &scene.msn;
    until("both endpoints of Bob online", || {
        (msn.endpoint_count(BOB) == 2).then_some(())
    })
    .await;
    // Alice calls Bob: both endpoints ring and join her conversation.
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    let to_bob = Chat::Contact(MsnAddress::from_server(BOB));
    let _ = super::harness::drive("Alice opening a chat", alice.session.send_typing(&to_bob)).await;
    until("both of Bob's endpoints in Alice's conversation", || {
        msn.switchboards_of(ALICE)
            .iter()
            .any(|members| members.iter().filter(|m| *m == BOB).count() == 2)
            .then_some(())
    })
    .await;
    alice.say(BOB, "hi both").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "hi both").await;
    (own, alice, portal)
}

#[tokio::test(start_paused = true)]
async fn a_contacts_rename_renames_their_dm_portal() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("hi").await;
    assert_eq!(
        scene.hs.room(&portal).and_then(|r| r.name).as_deref(),
        Some("Alice Ä (MSN)")
    );
    super::harness::drive("Alice's rename", alice.session.set_friendly_name("Alice B"))
        .await
        .expect("renamed");
    let hs = scene.hs.clone();
    scene
        .advance_until(
            "the portal renamed",
            Duration::from_secs(1),
            Duration::from_secs(60),
            || (hs.room(&portal)?.name.as_deref() == Some("Alice B (MSN)")).then_some(()),
        )
        .await;
    assert_eq!(
        scene.hs.displayname_of(PUPPET_ALICE).as_deref(),
        Some("Alice B (MSN)")
    );
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn redactions_and_reactions_are_told_once_per_portal() {
    use matrix_msn::bridge::Unbridgeable;
    let mut scene = Scene::start().await;
    let (_alice, portal) = scene.chat_with_alice("hi").await;
    let event = |n: u32, what| MatrixEvent::Unbridgeable {
        room_id: rid(&portal),
        event_id: crate::support::eid(&format!("$unbridgeable{n}")),
        sender: uid(USER),
        what,
    };
    scene
        .push(vec![
            event(1, Unbridgeable::Redaction),
            event(2, Unbridgeable::Redaction),
            event(3, Unbridgeable::Reaction),
            event(4, Unbridgeable::Reaction),
        ])
        .await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "MSN has no reactions")
        .await;
    let told = |text: &str| {
        scene
            .hs
            .room(&portal)
            .map(|r| r.timeline.iter().filter(|e| e.body.contains(text)).count())
            .unwrap_or_default()
    };
    assert_eq!(told("MSN cannot take back a message"), 1);
    assert_eq!(told("MSN has no reactions"), 1);
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_users_space_holds_their_rooms_once_across_restarts() {
    use matrix_msn::bridge::Membership;
    let mut scene = Scene::start().await;
    let mgmt = scene.log_in(USER).await;
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    alice.say(BOB, "hi").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    let spaces = |hs: &super::homeserver::FakeHomeserver| -> Vec<(String, Vec<String>)> {
        hs.rooms()
            .into_iter()
            .filter(|(_, room)| room.is_space)
            .map(|(id, room)| (id, room.children.into_iter().collect()))
            .collect()
    };
    let hs = scene.hs.clone();
    let space = until("the space with both rooms", || {
        let found = spaces(&hs);
        let (id, children) = found.first()?;
        (found.len() == 1 && children.contains(&mgmt) && children.contains(&portal))
            .then(|| id.clone())
    })
    .await;
    let room = scene.hs.room(&space).expect("space");
    assert_eq!(room.name.as_deref(), Some("MSN"));
    assert!(room.invited.contains(USER) || room.joined.contains(USER));

    // Restarted: a new portal goes into the same space, still one.
    let world = scene.stop().await;
    // Bob's new login, not the old connection the server has yet to see closed (under
    // load, Carol's call rang that one).
    let mut server = world.msn.subscribe();
    let mut scene = Scene::start_in(world).await;
    until("Bob back", || {
        loop {
            match server.try_recv() {
                Ok(msn_testkit::ServerEvent::StatusChanged { email, .. }) if email == BOB => {
                    return Some(());
                }
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await;
    let carol = Contact::sign_in(&scene.msn, CAROL).await;
    carol.say(BOB, "hello").await;
    let carol_portal = scene
        .portal_with("@msn_carol=40example.com:localhost", USER)
        .await;
    let hs = scene.hs.clone();
    until("Carol's portal in the one space", || {
        let found = spaces(&hs);
        let (id, children) = found.first()?;
        (*id == space && children.contains(&carol_portal)).then_some(())
    })
    .await;
    assert_eq!(spaces(&scene.hs).len(), 1, "no second space");
    drop(alice);

    // The user leaves the portal: it leaves the space.
    scene
        .push(vec![MatrixEvent::Membership {
            room_id: rid(&portal),
            event_id: crate::support::eid("$leave-portal"),
            sender: uid(USER),
            target: uid(USER),
            membership: Membership::Leave,
            is_direct: false,
            displayname: None,
            avatar_url: None,
        }])
        .await;
    let hs = scene.hs.clone();
    until("the portal out of the space", || {
        let found = spaces(&hs);
        let (_, children) = found.first()?;
        (!children.contains(&portal) && children.contains(&mgmt)).then_some(())
    })
    .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn send_statuses_can_be_turned_off() {
    let world = Scene::world().await;
    let mut config = Scene::config_in(&world);
    config.bridge.message_status_events = false;
    let mut scene = Scene::start_with(world, config, Order::WorkerFirst).await;
    let (mut alice, portal) = scene.chat_with_alice("hi").await;
    scene.say(&portal, USER, "this one arrives").await;
    alice.message().await;
    // A failure still gets its notice in the room.
    alice.sign_out(&scene.msn, ALICE).await;
    scene.msn.add_contact(ALICE, BOB, Lists::BL);
    scene.say(&portal, USER, "this one does not").await;
    let hs = scene.hs.clone();
    until("the undelivered notice", || {
        hs.room(&portal)?
            .timeline
            .into_iter()
            .find(|e| e.body.contains("not delivered"))
    })
    .await;
    // The first message's status would have been on its way before the second was
    // taken; nothing else is left to run once the clock has moved on.
    scene.advance(Duration::from_secs(1)).await;
    let statuses = hs.room(&portal).map(|r| r.statuses).unwrap_or_default();
    assert!(statuses.is_empty(), "{statuses:?}");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_matrix_message_gets_its_send_status() {
    use matrix_msn::bridge::port::SendStatus;
    let mut scene = Scene::start().await;
    let (mut alice, portal) = scene.chat_with_alice("hi").await;
    let delivered = scene.say(&portal, USER, "this one arrives").await;
    alice.message().await;
    let hs = scene.hs.clone();
    let status_of = |event: &str| {
        hs.room(&portal)?
            .statuses
            .into_iter()
            .find(|(id, _)| id == event)
            .map(|(_, status)| status)
    };
    let status = until("the delivered status", || status_of(&delivered)).await;
    assert_eq!(status, SendStatus::Delivered);

    // Alice goes and blocks Bob: MSN keeps nothing for her, and the status says so.
    alice.sign_out(&scene.msn, ALICE).await;
    scene.msn.add_contact(ALICE, BOB, Lists::BL);
    let failed = scene.say(&portal, USER, "this one does not").await;
    let status = until("the failed status", || status_of(&failed)).await;
    assert!(
        matches!(&status, SendStatus::Failed(why) if why.contains("does not take offline messages")),
        "{status:?}"
    );
    scene.stop().await;
}
