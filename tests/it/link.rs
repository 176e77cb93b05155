//! The bridge core's MSN port over the real client (`link`), against the test server with
//! an msnp11-sdk contact: conversations reopen when their switchboard closed, undeliverable
//! messages are typed errors, and incoming chats become the core's events.

use std::time::Duration;

use matrix_msn::bridge::formatting::{RichText, Style};
use matrix_msn::bridge::remote::{Chat, MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent};
use matrix_msn::link::MsnLink;
use matrix_msn::net::MsnSettings;
use tokio::sync::mpsc;
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
    server: &matrix_msn::testkit::MsnServerHandle,
) -> (impl MsnSessionPort, mpsc::Receiver<RemoteEvent>) {
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

async fn next_message(events: &mut mpsc::Receiver<RemoteEvent>) -> (String, String) {
    loop {
        match timeout(T, events.recv())
            .await
            .expect("no event in time")
            .expect("events open")
        {
            RemoteEvent::Message { from, text, .. } => return (from, text.text),
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

    // The server closes Bob's switchboards between two messages.
    server.close_switchboards("bob@example.com");
    bob.send_text(&Chat::Contact("alice@example.com".into()), plain("second"))
        .await
        .expect("second delivered");
    let sb2 = sdk::answered(&mut alice_events).await;
    let mut sb2_events = sdk::collect_sb(&sb2);
    sdk::got_text(&mut sb2_events, "bob@example.com", "second").await;
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
    assert!(!err.0.is_empty());

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
        .find(|c| c.address == "alice@example.com")
        .expect("alice listed");
    assert!(alice_info.is_friend);
}
