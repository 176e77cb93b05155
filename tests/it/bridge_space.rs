//! The user's "MSN" space end to end through Synapse: after login the user is invited to
//! a space (a real `m.space` room) holding their management room, and each portal joins
//! it as it is made.

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::events::room::member::MembershipState;

use crate::bridge_e2e::{ALICE, conversation_with_bob, scene};
use crate::e2e::{Seen, User, new_user, unique};
use crate::support;

/// Whether Synapse holds `child` in `space` (a non-empty `m.space.child` state event).
async fn in_space(hs: &str, user: &User, space: &OwnedRoomId, child: &OwnedRoomId) -> bool {
    let token = user.client.access_token().unwrap_or_default();
    let url = format!("{hs}/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}");
    let Ok(answer) = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
    else {
        return false;
    };
    let Ok(content) = answer.json::<serde_json::Value>().await else {
        return false;
    };
    content
        .get("via")
        .and_then(|v| v.as_array())
        .is_some_and(|v| !v.is_empty())
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
    let (alice, _alice_events) = crate::bridge_e2e::msn_contact(&scene.msn, ALICE).await;
    let _conversation = conversation_with_bob(&alice, "hello space").await;
    let portal = bob.accept_invite().await;
    assert_ne!(portal, space);
    support::poll_until("the portal in the space", || async {
        in_space(&scene.hs, &bob, &space, &portal).await
    })
    .await;
    bridge.stop().await;
}
