//! The user's "MSN" space end to end through Synapse: after login the user is invited to
//! a space (a real `m.space` room) holding their management room, and each portal joins
//! it as it is made, also after a restart (still one space); a contact's rename renames
//! their DM portal.

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::events::room::member::MembershipState;

use tokio::time::timeout;

use crate::bridge_e2e::{ALICE, conversation_with_bob, scene};
use crate::e2e::{Seen, User, new_user, unique};
use crate::support::{self, TestBridge};
use crate::testkit_msnp11_sdk as sdk;

use serde_json::Value;

const CAROL: &str = "carol@example.com";

/// A room's state event `kind`/`key` as `user` reads it from Synapse.
async fn state(hs: &str, user: &User, room: &OwnedRoomId, kind: &str, key: &str) -> Option<Value> {
    let token = user.client.access_token().unwrap_or_default();
    let url = format!("{hs}/_matrix/client/v3/rooms/{room}/state/{kind}/{key}");
    let answer = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    answer.json().await.ok()
}

/// Whether Synapse holds `child` in `space` (a non-empty `m.space.child` state event).
async fn in_space(hs: &str, user: &User, space: &OwnedRoomId, child: &OwnedRoomId) -> bool {
    state(hs, user, space, "m.space.child", child.as_str())
        .await
        .and_then(|content| {
            content
                .get("via")
                .and_then(Value::as_array)
                .map(|v| !v.is_empty())
        })
        .unwrap_or(false)
}

/// `contact` writes to Bob: their new portal, which Bob joins, is in `space`. Returns
/// the contact's client, the portal and the conversation (kept open).
async fn writes_in(
    msn: &msn_testkit::MsnServerHandle,
    bob: &mut User,
    contact: &str,
    space: &OwnedRoomId,
) -> (
    msnp11_sdk::Client,
    OwnedRoomId,
    (msnp11_sdk::Switchboard, sdk::Events),
) {
    let (client, _events) = crate::bridge_e2e::msn_contact(msn, contact).await;
    let conversation = conversation_with_bob(&client, &format!("hello from {contact}")).await;
    let portal = bob.accept_invite().await;
    assert_ne!(&portal, space);
    let hs = support::homeserver_url().unwrap_or_default();
    support::poll_until(&format!("{contact}'s portal in the space"), || async {
        in_space(&hs, bob, space, &portal).await
    })
    .await;
    (client, portal, conversation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Synapse: scripts/test.sh runs it"]
async fn e2e_the_users_space_holds_their_rooms() {
    let Some((scene, bridge)) = scene().await else {
        return;
    };
    let mut bob = new_user(&scene.hs, &unique("sbob"), "bob-password-space").await;
    let mgmt = bob.log_in_to_msn().await;
    let me = bob.user_id.to_string();
    let space = match bob
        .wait_for("the space invite", |s| {
            matches!(s, Seen::Member { target, membership: MembershipState::Invite, .. } if *target == me)
        })
        .await
    {
        Seen::Member { room, .. } => room,
        other => panic!("unexpected {other:?}"),
    };
    bob.client
        .join_room_by_id(&space)
        .await
        .expect("join the space");
    support::poll_until("the space to be a space named MSN", || async {
        bob.client
            .get_room(&space)
            .is_some_and(|room| room.is_space() && room.name().as_deref() == Some("MSN"))
    })
    .await;
    support::poll_until("the management room in it", || async {
        in_space(&scene.hs, &bob, &space, &mgmt).await
    })
    .await;

    // A contact writes: the new portal joins the space.
    let (alice, portal, _conversation) = writes_in(&scene.msn, &mut bob, ALICE, &space).await;

    // Alice renames herself on MSN: her DM portal takes the name.
    timeout(sdk::T, alice.set_display_name("Alice Renamed"))
        .await
        .expect("REA hangs")
        .expect("renamed");
    support::poll_until("the portal renamed", || async {
        state(&scene.hs, &bob, &portal, "m.room.name", "")
            .await
            .is_some_and(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Alice Renamed"))
            })
    })
    .await;

    // After a restart, Carol's new portal goes into the same space: still one.
    bridge.stop().await;
    let bridge = TestBridge::start(scene.cfg.clone()).await;
    let msn = &scene.msn;
    support::poll_until("Bob's login restored", || async move {
        msn.online(crate::bridge_e2e::BOB)
            .is_some_and(|status| status != "FLN" && status != "HDN")
    })
    .await;
    let _carol = writes_in(&scene.msn, &mut bob, CAROL, &space).await;
    let spaces = bob
        .client
        .joined_rooms()
        .into_iter()
        .chain(bob.client.invited_rooms())
        .filter(|room| room.is_space())
        .count();
    assert_eq!(spaces, 1, "one space across the restart");
    bridge.stop().await;
}
