//! The bridge core's MSN port over the real client (`link`), against the test server with
//! an msnp11-sdk contact: conversations reopen when their switchboard closed, undeliverable
//! messages are typed errors, and incoming chats become the core's events.

use std::time::Duration;

use bytes::Bytes;
use matrix_msn::bridge::formatting::{RichText, Style};
use matrix_msn::bridge::remote::{Chat, MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent};
use matrix_msn::link::MsnLink;
use matrix_msn::net::{MsnSettings, SbClient, SwitchboardEvent};
use msnp::message::EmoticonDecl;
use msnp::p2p::MsnObject;
use msnp::{SbConfig, SbEvent, TextFormat};
use tokio::time::timeout;

use crate::testkit_msnp11_sdk as sdk;

const T: Duration = Duration::from_secs(10);

fn plain(text: &str) -> RichText {
    RichText {
        text: text.into(),
        style: Style::default(),
    }
}

async fn bob_link(
    server: &msn_testkit::MsnServerHandle,
) -> (
    impl MsnSessionPort,
    matrix_msn::channel::Events<RemoteEvent>,
) {
    let settings = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    let link = MsnLink::new(
        settings,
        Duration::from_millis(50),
        Duration::from_millis(200),
    )
    .expect("link");
    timeout(
        T,
        link.login("bob@example.com", "secret", OwnProfile::default()),
    )
    .await
    .expect("login timed out")
    .expect("login")
}

async fn next_message(events: &mut matrix_msn::channel::Events<RemoteEvent>) -> (String, String) {
    loop {
        match timeout(T, events.recv())
            .await
            .expect("no event in time")
            .expect("events open")
        {
            RemoteEvent::Message { from, text, .. } => return (from.to_string(), text.text),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_closed_switchboard_is_reopened_for_the_next_message() {
    let server = sdk::server().await;
    let (alice, mut alice_events) = sdk::login(&server, "alice@example.com").await;
    sdk::online(&alice).await;
    let (bob, _events) = bob_link(&server).await;

    bob.send_text(&Chat::Contact("alice@example.com".into()), plain("first"))
        .await
        .expect("first delivered");
    let sb = sdk::answered(&mut alice_events).await;
    let mut sb_events = sdk::collect_sb(&sb);
    sdk::got_text(&mut sb_events, "bob@example.com", "first").await;

    // The server closes Bob's switchboards between two messages. The second may race
    // the close: written before Bob's side saw it, it may or may not have reached the
    // server, and then it is reported, not sent twice; seen in time, it goes on a fresh
    // switchboard. Either way the next text opens a fresh one and arrives.
    server.close_switchboards("bob@example.com");
    let second = bob
        .send_text(&Chat::Contact("alice@example.com".into()), plain("second"))
        .await;
    bob.send_text(&Chat::Contact("alice@example.com".into()), plain("third"))
        .await
        .expect("third delivered");
    let sb2 = sdk::answered(&mut alice_events).await;
    let mut sb2_events = sdk::collect_sb(&sb2);
    if second.is_ok() {
        sdk::got_text(&mut sb2_events, "bob@example.com", "second").await;
    }
    sdk::got_text(&mut sb2_events, "bob@example.com", "third").await;
}

#[tokio::test]
async fn an_offline_contact_is_a_delivery_error_and_incoming_chats_are_events() {
    let server = sdk::server().await;
    let (bob, mut events) = bob_link(&server).await;
    let err = bob
        .send_text(
            &Chat::Contact("carol@example.com".into()),
            plain("are you there?"),
        )
        .await
        .expect_err("carol is offline");
    assert!(!err.to_string().is_empty());
    // A nudge has no acknowledgement, but it is not lost silently either.
    let err = timeout(
        T,
        bob.send_nudge(&Chat::Contact("carol@example.com".into())),
    )
    .await
    .expect("the nudge's fate in time")
    .expect_err("carol is offline");
    assert!(err.to_string().contains("did not receive"), "{err}");

    let (alice, _alice_events) = sdk::login(&server, "alice@example.com").await;
    sdk::online(&alice).await;
    let sb = timeout(T, alice.create_session("bob@example.com"))
        .await
        .expect("XFR timed out")
        .expect("sb");
    let mut sb_events = sdk::collect_sb(&sb);
    sdk::joined(&mut sb_events, "bob@example.com").await;
    sdk::say(&sb, "hi bob").await;
    assert_eq!(
        next_message(&mut events).await,
        ("alice@example.com".into(), "hi bob".into())
    );
    // The contact list came in, with Alice online.
    let contacts = bob.contacts().await.expect("contacts");
    let alice_info = contacts
        .iter()
        .find(|c| c.address.as_str() == "alice@example.com")
        .expect("alice listed");
    assert!(alice_info.is_friend);
}

/// Alice on our own client (msnp11-sdk cannot send emoticons): what must stay alive for
/// her picture to be served, and the emoticon she used.
pub(crate) struct EmoticonSender {
    _ns: matrix_msn::net::NsClient,
    _sb: SbClient,
    /// The picture of `(cat)`.
    pub(crate) cat: Vec<u8>,
    pub(crate) object: MsnObject,
}

/// Alice opens a switchboard with `to` and writes "look (cat)!", with `(cat)` declared as
/// a custom emoticon (and a `(dog)` the text does not use).
pub(crate) async fn alice_writes_with_emoticon(
    server: &msn_testkit::MsnServerHandle,
    to: &str,
) -> EmoticonSender {
    let (alice, _alice_events, settings) = crate::p2p::connect(server).await;
    let (address, auth) = timeout(T, alice.request_switchboard())
        .await
        .expect("XFR hangs")
        .expect("XFR");
    let config = SbConfig::new("alice@example.com", alice.version());
    let (sb, mut sb_events) = SbClient::open(&settings, config, &address, &auth, &[to])
        .await
        .expect("SB open");
    crate::support::wait_for(&mut sb_events, T, "the contact joins", |e| {
        matches!(e, SwitchboardEvent::Session(SbEvent::Joined { .. }))
    })
    .await;

    let cat = b"GIF89a a cat, animated".to_vec();
    let object = MsnObject::for_data("alice@example.com", 2, "0", "", &cat);
    let unused = MsnObject::for_data("alice@example.com", 2, "0", "", b"GIF89a a dog");
    assert!(
        sb.publish(object.clone(), Bytes::from(cat.clone()))
            .await
            .expect("publish")
    );
    let declare = |shortcut: &str, object: &MsnObject| EmoticonDecl {
        shortcut: shortcut.into(),
        msnobj: object.to_xml(),
    };
    sb.send_emoticons(vec![declare("(cat)", &object), declare("(dog)", &unused)])
        .await
        .expect("declaration");
    sb.send_text("look (cat)!".into(), TextFormat::default())
        .await
        .expect("text");
    EmoticonSender {
        _ns: alice,
        _sb: sb,
        cat,
        object,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_emoticons_come_with_their_text_and_their_pictures_can_be_fetched() {
    let server = sdk::server().await;
    let (bob, mut events) = bob_link(&server).await;
    let alice = alice_writes_with_emoticon(&server, "bob@example.com").await;
    let (cat, object) = (&alice.cat, &alice.object);

    let (chat, from, emoticons) = loop {
        match timeout(T, events.recv()).await.expect("no message") {
            Some(RemoteEvent::Message {
                chat,
                from,
                text,
                emoticons,
            }) => {
                assert_eq!(text.text, "look (cat)!");
                break (chat, from, emoticons);
            }
            Some(_) => continue,
            None => panic!("events ended"),
        }
    };
    assert_eq!(emoticons.len(), 1, "only the emoticon the text uses");
    assert_eq!(emoticons[0].shortcut, "(cat)");
    assert_eq!(emoticons[0].picture.hash, object.sha1d);
    let got = timeout(T, bob.fetch_picture(&chat, &from, &emoticons[0].picture))
        .await
        .expect("fetch hangs")
        .expect("fetch");
    assert_eq!(got.as_ref(), cat.as_slice());
}

/// A switchboard that never answers `USR` (R2M now and then, MSNP.md §2.8) is given up
/// after one step's time, and the text goes on a fresh one: it arrives once, and quickly
/// enough for `T` (it waited 35 s and failed before).
#[tokio::test]
async fn a_hanging_switchboard_is_replaced_and_the_text_sent_once() {
    let server = sdk::server().await;
    let (alice, mut alice_events) = sdk::login(&server, "alice@example.com").await;
    sdk::online(&alice).await;
    let mut settings = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    settings.switchboard_step = Duration::from_secs(1);
    let link = MsnLink::new(
        settings,
        Duration::from_millis(50),
        Duration::from_millis(200),
    )
    .expect("link");
    let (bob, _events) = timeout(
        T,
        link.login("bob@example.com", "secret", OwnProfile::default()),
    )
    .await
    .expect("login timed out")
    .expect("login");

    server.hang_switchboards(1);
    timeout(
        T,
        bob.send_text(&Chat::Contact("alice@example.com".into()), plain("once")),
    )
    .await
    .expect("sent within the test's patience")
    .expect("delivered on the second switchboard");
    let sb = sdk::answered(&mut alice_events).await;
    let mut sb_events = sdk::collect_sb(&sb);
    sdk::got_text(&mut sb_events, "bob@example.com", "once").await;
    bob.send_text(&Chat::Contact("alice@example.com".into()), plain("next"))
        .await
        .expect("next delivered");
    // The next text on the same conversation: "once" came only once before it.
    let next = sdk::wait_for(&mut sb_events, "the next text", |e| {
        matches!(e, msnp11_sdk::Event::TextMessage { .. })
    })
    .await;
    assert!(
        matches!(&next, msnp11_sdk::Event::TextMessage { message, .. } if message.text == "next"),
        "{next:?}"
    );
}

/// The session lives in the task that turns its events into the core's: once the core
/// stops reading them (its user's task ended), the account signs out and leaves its
/// conversations, even while the core still holds the session's handle.
#[tokio::test]
async fn the_core_dropping_its_events_signs_the_account_out() {
    let server = sdk::server().await;
    let (alice, mut alice_events) = sdk::login(&server, "alice@example.com").await;
    sdk::online(&alice).await;
    let (bob, events) = bob_link(&server).await;
    bob.send_text(
        &Chat::Contact("alice@example.com".into()),
        plain("bye soon"),
    )
    .await
    .expect("delivered");
    let sb = sdk::answered(&mut alice_events).await;
    let mut sb_events = sdk::collect_sb(&sb);
    sdk::got_text(&mut sb_events, "bob@example.com", "bye soon").await;
    let mut srv = server.subscribe();
    drop(events);
    sdk::wait_for(&mut sb_events, "bob leaves the conversation", |e| {
        matches!(e, msnp11_sdk::Event::ParticipantLeftSwitchboard { email } if email == "bob@example.com")
    })
    .await;
    crate::support::wait_for(&mut srv, T, "bob signed out", |e| {
        matches!(e, msn_testkit::ServerEvent::Disconnected { email } if email == "bob@example.com")
    })
    .await;
    assert_eq!(server.online("bob@example.com"), None);
    crate::support::poll_until("the handle to see the session gone", || async {
        !bob.is_connected()
    })
    .await;
}
