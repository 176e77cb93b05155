//! Circles (MSNP18 group chats, MSNP.md §15.4) through the core: a circle is a group
//! portal named after it, with its members as puppets; messages and typing go both ways
//! over the notification server; a member leaving leaves the room.

use matrix_msn::bridge::MatrixEvent;
use matrix_msn::bridge::formatting::RichText;
use matrix_msn::bridge::presence::MatrixPresence;
use matrix_msn::bridge::remote::{Chat, MsnSessionPort, RemoteEvent};

use crate::support::{rid, uid};

use super::harness::{ALICE, BOB, CAROL, Contact, PUPPET_ALICE, Scene, USER, until};

const PUPPET_CAROL: &str = "@msn_carol=40example.com:localhost";

/// Alice and Carol, each on MSNP18 (their client joins the circle at sign-in).
async fn members(scene: &Scene) -> (Contact, Contact) {
    let alice =
        Contact::sign_in_endpoint(&scene.msn, ALICE, "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            .await;
    let carol =
        Contact::sign_in_endpoint(&scene.msn, CAROL, "{1c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            .await;
    (alice, carol)
}

#[tokio::test(start_paused = true)]
async fn a_circle_is_a_group_portal_with_messages_both_ways() {
    let mut scene = Scene::start().await;
    let id = scene.msn.create_circle("Book club", ALICE, &[BOB, CAROL]);
    let (mut alice, mut carol) = members(&scene).await;
    let mgmt = scene.log_in(USER).await;
    let msn = &scene.msn;
    until("all three in the circle's conversation", || {
        (msn.circle_roster(&id).len() == 3).then_some(())
    })
    .await;
    let hs = scene.hs.clone();
    let portal = until("the circle's portal", || {
        hs.rooms().into_iter().find_map(|(room_id, room)| {
            (room.name.as_deref() == Some("Book club (MSN)")).then_some((room_id, room))
        })
    })
    .await;
    let (portal, room) = portal;
    let bridged = room.bridged.expect("m.bridge state");
    assert_eq!(bridged.channel_id, format!("group:circle:{id}"));
    let hs = scene.hs.clone();
    until("both members' puppets in it", || {
        let room = hs.room(&portal)?;
        (room.joined.contains(PUPPET_ALICE) && room.joined.contains(PUPPET_CAROL)).then_some(())
    })
    .await;
    scene.hs.user_joins(&portal, USER);
    scene.say(&mgmt, USER, "status").await;
    scene
        .notice(&mgmt, "Circles: Book club (each a group portal)")
        .await;

    // Alice writes into the circle: it is in the portal, as her.
    let circle = Chat::Group(format!("circle:{id}"));
    let rich = |text: &str| RichText {
        text: text.into(),
        style: Default::default(),
    };
    super::harness::drive(
        "Alice's line",
        alice.session.send_text(&circle, rich("hi all")),
    )
    .await
    .expect("sent");
    scene.notice_from(&portal, PUPPET_ALICE, "hi all").await;

    // The user answers from Matrix: both members get it, in the circle.
    scene.say(&portal, USER, "hello circle").await;
    for member in [&mut alice, &mut carol] {
        let (chat, from, text) = member
            .next("the user's line in the circle", |event| match event {
                // (Carol also gets Alice's line.)
                RemoteEvent::Message {
                    chat, from, text, ..
                } if from.as_str() == BOB => Some((chat, from.to_string(), text.text)),
                _ => None,
            })
            .await;
        assert_eq!(
            (chat, from.as_str(), text.as_str()),
            (circle.clone(), BOB, "hello circle")
        );
    }
    scene.assert_nothing_undelivered(&portal);

    // Typing both ways.
    super::harness::drive("Alice typing", alice.session.send_typing(&circle))
        .await
        .expect("sent");
    let hs = scene.hs.clone();
    until("Alice shown typing", || {
        hs.room(&portal)?
            .typing
            .contains(PUPPET_ALICE)
            .then_some(())
    })
    .await;
    scene
        .push(vec![MatrixEvent::Typing {
            room_id: rid(&portal),
            user_ids: vec![uid(USER)],
        }])
        .await;
    let chat = alice
        .next("the user typing in the circle", |event| match event {
            RemoteEvent::Typing { chat, from } if from.as_str() == BOB => Some(chat),
            _ => None,
        })
        .await;
    assert_eq!(chat, circle);

    // Carol leaves the circle: her puppet leaves the room.
    scene.msn.leave_circle(&id, CAROL);
    let hs = scene.hs.clone();
    until("Carol's puppet to leave", || {
        let room = hs.room(&portal)?;
        (!room.joined.contains(PUPPET_CAROL)).then_some(())
    })
    .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_refuses_the_circles_leaves_the_login_without_them() {
    let mut scene = Scene::start().await;
    scene.msn.create_circle("Book club", ALICE, &[BOB, CAROL]);
    scene.msn.refuse_circle_tickets(true);
    let mgmt = scene.log_in(USER).await;
    // Chats work as before.
    let alice = Contact::sign_in(&scene.msn, ALICE).await;
    alice.say(BOB, "no circles, still chatting").await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "no circles, still chatting")
        .await;
    // The refusal came right after the login: `status` says so.
    scene.say(&mgmt, USER, "status").await;
    let status = scene.notice(&mgmt, "Logged in as").await;
    assert!(
        status.contains("Circles: the server refused them (error 911)"),
        "{status}"
    );
    assert!(status.contains("Offline messages: on"), "{status}");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_member_who_is_not_a_contact_has_presence_by_way_of_the_circle() {
    const DAVE: &str = "dave@example.com";
    const PUPPET_DAVE: &str = "@msn_dave=40example.com:localhost";
    let mut scene = Scene::start().await;
    scene.msn.add_account(DAVE, "secret", "Dave");
    let id = scene.msn.create_circle("Book club", DAVE, &[BOB]);
    let _dave =
        Contact::sign_in_endpoint(&scene.msn, DAVE, "{2c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}").await;
    scene.log_in(USER).await;
    let hs = scene.hs.clone();
    until("Dave online, as the circle says", || {
        let (presence, _) = hs.presence_of(PUPPET_DAVE)?;
        (presence == MatrixPresence::Online).then_some(())
    })
    .await;
    scene.msn.leave_circle(&id, DAVE);
    until("Dave offline once he left it", || {
        let (presence, _) = hs.presence_of(PUPPET_DAVE)?;
        (presence == MatrixPresence::Offline).then_some(())
    })
    .await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_member_who_comes_later_joins_the_portal() {
    let mut scene = Scene::start().await;
    scene.msn.create_circle("Book club", ALICE, &[BOB, CAROL]);
    let _alice =
        Contact::sign_in_endpoint(&scene.msn, ALICE, "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            .await;
    scene.log_in(USER).await;
    let hs = scene.hs.clone();
    let portal = until("the circle's portal with Alice", || {
        hs.rooms().into_iter().find_map(|(room_id, room)| {
            (room.name.as_deref() == Some("Book club (MSN)") && room.joined.contains(PUPPET_ALICE))
                .then_some(room_id)
        })
    })
    .await;
    assert!(
        !hs.room(&portal)
            .expect("portal")
            .joined
            .contains(PUPPET_CAROL)
    );
    // Carol signs in: her client joins the circle's conversation, and her puppet the room.
    let _carol =
        Contact::sign_in_endpoint(&scene.msn, CAROL, "{1c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            .await;
    until("Carol's puppet in the portal", || {
        hs.room(&portal)?
            .joined
            .contains(PUPPET_CAROL)
            .then_some(())
    })
    .await;
    let rooms = hs
        .rooms()
        .into_iter()
        .filter(|(_, room)| room.name.as_deref() == Some("Book club (MSN)"))
        .count();
    assert_eq!(rooms, 1, "one portal for the circle");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_address_book_without_circles_still_logs_in() {
    let mut scene = Scene::start().await;
    scene.msn.create_circle("Book club", ALICE, &[BOB, CAROL]);
    scene.msn.without_circle_service(true);
    let mgmt = scene.log_in(USER).await;
    scene.say(&mgmt, USER, "status").await;
    let status = scene.notice(&mgmt, "Logged in as").await;
    assert!(status.contains("MSNP18"), "{status}");
    assert!(status.contains("Circles: none"), "{status}");
    // The contacts came from ABFindAll.
    scene.say(&mgmt, USER, "contacts").await;
    let list = scene.notice(&mgmt, "Your MSN contacts").await;
    assert!(list.contains(ALICE) && list.contains(CAROL), "{list}");
    scene.stop().await;
}
