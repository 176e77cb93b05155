//! Circles end to end through Synapse on MSNP18 (MSNP.md §15.4): a circle of three is a
//! group portal named after it, carrying messages both ways, also after a bridge
//! restart. The members are the bridge's own MSNP18 client (which joins its circles at
//! sign-in), the only one here that speaks MSNP18.

use matrix_msn::bridge::formatting::RichText;
use matrix_msn::bridge::remote::{Chat, MsnSessionPort, RemoteEvent};
use tokio::time::timeout;

use crate::bridge_e2e::{ALICE, BOB, PUPPET_ALICE, scene_on};
use crate::bridge_offline::msnp18_client;
use crate::e2e::{new_user, unique};
use crate::support::{self, TestBridge};
use crate::testkit_msnp11_sdk as sdk;

const CAROL: &str = "carol@example.com";

/// Waits for the user's line `text` in `circle`.
async fn got(events: &mut matrix_msn::channel::Events<RemoteEvent>, circle: &Chat, text: &str) {
    timeout(sdk::T, async {
        loop {
            match events.recv().await {
                Some(RemoteEvent::Message {
                    chat,
                    from,
                    text: t,
                    ..
                }) if chat == *circle && from.as_str() == BOB && t.text == text => return,
                Some(_) => {}
                None => panic!("the member's session ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{text:?} did not reach the member"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_a_circle_is_a_group_portal_with_messages_both_ways() {
    let Some((scene, bridge)) = scene_on(8..=18).await else {
        return;
    };
    let id = scene.msn.create_circle("Book club", ALICE, &[BOB, CAROL]);
    let circle = Chat::Group(format!("circle:{id}"));
    let (alice, mut alice_events) = msnp18_client(&scene.msn, ALICE).await;
    let (_carol, mut carol_events) = msnp18_client(&scene.msn, CAROL).await;

    let mut bob = new_user(&scene.hs, &unique("cbob"), "bob-password-circle").await;
    bob.log_in_to_msn().await;
    let portal = bob.accept_invite().await;
    support::poll_until("the portal named after the circle", || async {
        bob.client
            .get_room(&portal)
            .and_then(|room| room.name())
            .as_deref()
            == Some("Book club (MSN)")
    })
    .await;

    let rich = RichText {
        text: "hi all".into(),
        style: Default::default(),
    };
    timeout(sdk::T, alice.send_text(&circle, rich))
        .await
        .expect("send hangs")
        .expect("sent");
    bob.text_from(&portal, PUPPET_ALICE, "hi all").await;
    bob.say(&portal, "hello circle").await;
    got(&mut alice_events, &circle, "hello circle").await;
    got(&mut carol_events, &circle, "hello circle").await;

    // Restarted, the bridge joins the circle again with the restored login.
    bridge.stop().await;
    let bridge = TestBridge::start(scene.cfg.clone()).await;
    support::poll_until("the bridge back in the circle", || async {
        scene
            .msn
            .circle_roster(&id)
            .iter()
            .filter(|m| *m == BOB)
            .count()
            == 1
    })
    .await;
    bob.say(&portal, "still here").await;
    got(&mut alice_events, &circle, "still here").await;
    got(&mut carol_events, &circle, "still here").await;
    bridge.stop().await;
}
