//! Portal metadata following MSN: group portals named after their participants (renamed
//! as members come and go, until the user names the room themselves), a DM portal's
//! avatar after the contact's picture.

use matrix_msn::bridge::MatrixEvent;
use matrix_msn::bridge::ids::MsnAddress;
use matrix_msn::bridge::remote::{Chat, MsnSessionPort};

use super::harness::{BOB, CAROL, Contact, Scene, USER, drive, until};
use crate::support::{eid, rid, uid};

const PUPPET_CAROL: &str = "@msn_carol=40example.com:localhost";

/// The name of `room` once it is `name`.
async fn named(scene: &Scene, room: &str, name: &str) {
    let hs = scene.hs.clone();
    until(&format!("the group named {name:?}"), || {
        (hs.room(room)?.name.as_deref() == Some(name)).then_some(())
    })
    .await;
}

/// Alice asks Carol into her conversation with Bob.
async fn alice_asks_carol(alice: &Contact) {
    let with_bob = Chat::Contact(MsnAddress::from_server(BOB));
    drive(
        "Carol asked in",
        alice
            .session
            .invite(&with_bob, &MsnAddress::from_server(CAROL)),
    )
    .await
    .expect("invited");
}

/// Bob (the user) chatting with Alice, who asks Carol in: Alice, Carol and the group
/// portal, which the user has joined.
pub(super) async fn group_of_three(scene: &mut Scene) -> (Contact, Contact, String) {
    let (alice, dm) = scene.chat_with_alice("let's ask Carol").await;
    let carol = Contact::sign_in(&scene.msn, CAROL).await;
    alice_asks_carol(&alice).await;
    let hs = scene.hs.clone();
    let group = until("the group portal", || {
        hs.rooms()
            .into_iter()
            .find_map(|(id, room)| (id != dm && room.joined.contains(PUPPET_CAROL)).then_some(id))
    })
    .await;
    scene.hs.user_joins(&group, USER);
    (alice, carol, group)
}

#[tokio::test(start_paused = true)]
async fn a_group_portal_is_renamed_as_members_come_and_go() {
    let mut scene = Scene::start().await;
    let (_alice, carol, group) = group_of_three(&mut scene).await;
    named(&scene, &group, "Alice Ä, Carol (MSN group)").await;

    // Carol leaves: the name follows.
    carol.sign_out(&scene.msn, CAROL).await;
    named(&scene, &group, "Alice Ä (MSN group)").await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_group_portal_the_user_named_keeps_their_name() {
    let mut scene = Scene::start().await;
    let (mut alice, carol, group) = group_of_three(&mut scene).await;
    let hs = scene.hs.clone();
    named(&scene, &group, "Alice Ä, Carol (MSN group)").await;
    scene.hs.user_names_room(&group, "Plans");
    scene
        .push(vec![MatrixEvent::RoomNamed {
            room_id: rid(&group),
            event_id: eid("$named"),
            sender: uid(USER),
            name: "Plans".into(),
        }])
        .await;
    // A room's events are handled in order: once this message is at Alice's, the core
    // has seen the name (a transaction is accepted before it is handled).
    scene.say(&group, USER, "named it").await;
    let (_, text) = alice.message().await;
    assert_eq!(text, "named it");
    // Carol leaves; once her puppet is out, the name is settled (renamed first).
    carol.sign_out(&scene.msn, CAROL).await;
    until("Carol's puppet out", || {
        (!hs.room(&group)?.joined.contains(PUPPET_CAROL)).then_some(())
    })
    .await;
    assert_eq!(
        scene.hs.room(&group).and_then(|r| r.name).as_deref(),
        Some("Plans"),
        "the bridge renamed a room the user named"
    );
    drop(alice);
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_dm_portal_shows_the_contacts_picture() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("a new picture").await;
    let picture = bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\nnot much of a picture");
    drive("Alice's picture", alice.session.set_picture(Some(picture)))
        .await
        .expect("set");
    let hs = scene.hs.clone();
    let avatar = until("Alice's puppet avatar", || {
        hs.avatar_of("@msn_alice=40example.com:localhost")
    })
    .await;
    until("the portal's avatar", || {
        (hs.room(&portal)?.avatar.as_deref() == Some(avatar.as_str())).then_some(())
    })
    .await;
    scene.stop().await;
}
