//! Offline messages end to end through Synapse on MSNP18 (MSNP.md §15.1–§15.2): what a
//! contact wrote while the user was logged out reaches the portal in order, with its
//! original times, once, even when the bridge stopped between bridging and deleting;
//! what the user writes to an offline contact is read when the contact signs in. The
//! contact is the bridge's own MSNP18 client (the only one here that speaks it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use matrix_msn::bridge::formatting::RichText;
use matrix_msn::bridge::ids::MsnAddress;
use matrix_msn::bridge::remote::{
    Chat, MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent, Sent,
};
use matrix_msn::link::LinkSession;
use msn_testkit::MsnServerHandle;
use tokio::time::timeout;

use crate::bridge_e2e::{ALICE, BOB, PUPPET_ALICE, scene_on};
use crate::e2e::{Seen, new_user, unique};
use crate::support::{self, TestBridge};
use crate::testkit_msnp11_sdk as sdk;

/// `email` signed in on MSNP18 with the bridge's own client, as Messenger 2009 would
/// (for the bridged account: the user's own Messenger, another endpoint).
pub(crate) async fn msnp18_client(
    msn: &MsnServerHandle,
    email: &str,
) -> (LinkSession, matrix_msn::channel::Events<RemoteEvent>) {
    let mut settings =
        matrix_msn::net::MsnSettings::new(msn.dispatch_addr().to_string(), msn.nexus_url());
    settings.versions = vec![18];
    let link =
        matrix_msn::link::MsnLink::new(settings, Duration::from_secs(1), Duration::from_secs(2))
            .expect("link");
    let profile = OwnProfile {
        endpoint: Some("{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}".into()),
        ..OwnProfile::default()
    };
    timeout(sdk::T, link.login(email, "secret", profile))
        .await
        .expect("login hangs")
        .expect("the MSNP18 client signs in")
}

async fn send(session: &LinkSession, to: &str, text: &str) -> Sent {
    let rich = RichText {
        text: text.into(),
        style: Default::default(),
    };
    timeout(
        sdk::T,
        session.send_text(&Chat::Contact(MsnAddress::from_server(to)), rich),
    )
    .await
    .expect("send hangs")
    .expect("sent")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_offline_messages_arrive_in_order_with_their_times_once_and_leave_the_server() {
    let Some((scene, bridge)) = scene_on(8..=18).await else {
        return;
    };
    // Alice writes three while Bob is logged out: MSN keeps them.
    let (alice, _alice_events) = msnp18_client(&scene.msn, ALICE).await;
    for text in ["one", "two", "three"] {
        assert_eq!(send(&alice, BOB, text).await, Sent::StoredOffline);
    }
    assert_eq!(scene.msn.offline_messages(BOB).len(), 3);
    let written_by = now_ms();
    // The bridge will stop between bridging and deleting: here the deletes fail.
    scene.msn.refuse_offline_deletes(true);

    let mut bob = new_user(&scene.hs, &unique("oimbob"), "bob-password-oim").await;
    bob.log_in_to_msn().await;
    let portal = bob.accept_invite().await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = bob
            .wait_for("Alice's kept messages", |s| {
                matches!(s, Seen::Text { room, sender, .. } if *room == portal && sender.as_str() == PUPPET_ALICE)
            })
            .await;
        if let Seen::Text { body, at_ms, .. } = event {
            seen.push((body, at_ms));
        }
    }
    let bodies: Vec<&str> = seen.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"], "in the order written");
    assert!(
        seen.iter().all(|(_, at)| *at <= written_by),
        "each with the time it was written, not bridged: {seen:?} (written by {written_by})"
    );
    assert_eq!(scene.msn.offline_messages(BOB).len(), 3, "not deleted yet");

    // Restarted, with the deletes working: the listing at the restored login is
    // recognised as bridged and only deleted.
    bridge.stop().await;
    scene.msn.refuse_offline_deletes(false);
    let bridge = TestBridge::start(scene.cfg.clone()).await;
    support::poll_until("the server to hold none of them", || async {
        scene.msn.offline_messages(BOB).is_empty()
    })
    .await;
    // Alice writes live now; nothing came into the portal before it.
    support::poll_until("Bob online again", || async {
        scene.msn.online(BOB).is_some()
    })
    .await;
    assert_eq!(send(&alice, BOB, "four").await, Sent::Delivered);
    let next = bob
        .wait_for("Alice's next message", |s| {
            matches!(s, Seen::Text { room, sender, .. } if *room == portal && sender.as_str() == PUPPET_ALICE)
        })
        .await;
    assert!(
        matches!(&next, Seen::Text { body, .. } if body == "four"),
        "no kept message came twice: {next:?}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_a_message_to_an_offline_contact_is_read_when_they_sign_in() {
    let Some((scene, bridge)) = scene_on(8..=18).await else {
        return;
    };
    let mut bob = new_user(&scene.hs, &unique("oimbob2"), "bob-password-oim2").await;
    bob.log_in_to_msn().await;
    let (alice, _alice_events) = msnp18_client(&scene.msn, ALICE).await;
    send(&alice, BOB, "going offline now").await;
    let portal = bob.accept_invite().await;
    bob.text_from(&portal, PUPPET_ALICE, "going offline now")
        .await;
    alice.logout().await;
    drop(alice);
    support::poll_until("Alice offline", || async {
        scene.msn.online(ALICE).is_none()
    })
    .await;

    bob.say(&portal, "see you tomorrow").await;
    bob.wait_for("the notice that MSN keeps it", |s| {
        matches!(s, Seen::Notice { room, body, .. } if *room == portal && body.contains("is offline"))
    })
    .await;
    support::poll_until("MSN to keep it for Alice", || async {
        scene.msn.offline_messages(ALICE).len() == 1
    })
    .await;

    // Alice signs in and is handed it.
    let (_alice, mut events) = msnp18_client(&scene.msn, ALICE).await;
    let read = timeout(sdk::T, async {
        loop {
            match events.recv().await {
                Some(RemoteEvent::OfflineMessage { from, text, .. }) => return (from, text),
                Some(_) => {}
                None => panic!("Alice's session ended"),
            }
        }
    })
    .await
    .expect("no offline message for Alice");
    assert_eq!(
        (read.0.as_str(), read.1.as_str()),
        (BOB, "see you tomorrow")
    );
    bridge.stop().await;
}
