//! Offline messages (MSNP13+) through the core, on MSNP18 against the in-repo server:
//! the ones kept while the user was away arrive in order with their times and are
//! deleted on MSN once bridged, never twice across a restart; a message to an offline
//! contact is kept by MSN for them.

use matrix_msn::bridge::remote::{MsnSessionPort, RemoteEvent};
use msn_testkit::Lists;
use msn_testkit::msn_server::StoredOim;

use super::harness::{ALICE, BOB, Contact, PUPPET_ALICE, Scene, USER, until};

/// Alice's three messages, stored as her Messenger does while Bob is away: one run,
/// numbered 1–3; the second was stored a second before the first (clocks and lists
/// disagree; the numbers decide), the third an hour later.
fn store_three(scene: &Scene) {
    let at = 1_795_684_443_000;
    let run = "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}";
    for (text, stored, number) in [
        ("third", at + 3_600_000, 3),
        ("first", at, 1),
        ("second", at - 1_000, 2),
    ] {
        let message = StoredOim {
            sender: ALICE.into(),
            friendly_name: "Alice Ä".into(),
            text: text.into(),
            stored_ms: stored,
            run_id: run.into(),
            sequence: number,
            ..StoredOim::default()
        };
        scene.msn.store_offline_message(BOB, message);
    }
}

/// Waits until the server holds no offline message for Bob (the bridge deleted them).
async fn holds_none_for_bob(scene: &Scene) {
    let msn = &scene.msn;
    until("the server to hold none for Bob", || {
        msn.offline_messages(BOB).is_empty().then_some(())
    })
    .await;
}

/// The bodies and times of Alice's messages in `portal`.
fn from_alice(scene: &Scene, portal: &str) -> Vec<(String, Option<i64>)> {
    scene
        .hs
        .room(portal)
        .map(|room| {
            room.timeline
                .into_iter()
                .filter(|e| e.sender == PUPPET_ALICE)
                .map(|e| (e.body, e.ts))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn messages_kept_while_away_arrive_in_order_with_their_times_and_are_deleted() {
    let mut scene = Scene::start().await;
    store_three(&scene);
    scene.log_in(USER).await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "third").await;
    let at = 1_795_684_443_000;
    assert_eq!(
        from_alice(&scene, &portal),
        [
            ("first".to_owned(), Some(at)),
            ("second".to_owned(), Some(at - 1_000)),
            ("third".to_owned(), Some(at + 3_600_000)),
        ],
        "in the order written, each with the time it was stored"
    );
    holds_none_for_bob(&scene).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_offline_message_bridged_but_not_deleted_is_bridged_once() {
    let mut scene = Scene::start().await;
    store_three(&scene);
    // The bridge is stopped after bridging, before deleting: here the deletes fail.
    scene.msn.refuse_offline_deletes(true);
    scene.log_in(USER).await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "third").await;
    assert_eq!(scene.msn.offline_messages(BOB).len(), 3);
    let world = scene.stop().await;

    world.msn.refuse_offline_deletes(false);
    world.hs.forget_transactions();
    let scene = Scene::start_in(world).await;
    // The restored login lists them again: recognised, only deleted.
    holds_none_for_bob(&scene).await;
    let bodies: Vec<String> = from_alice(&scene, &portal)
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(bodies, ["first", "second", "third"], "each once");
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_to_an_offline_contact_is_kept_for_them() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("bye for now").await;
    alice.sign_out(&scene.msn, ALICE).await;

    scene.say(&portal, USER, "see you tomorrow").await;
    scene
        .notice_from(
            &portal,
            PUPPET_ALICE,
            "is offline; your messages will be delivered",
        )
        .await;
    scene.say(&portal, USER, "and bring the cake").await;
    let msn = &scene.msn;
    let kept = until("both to be kept for Alice", || {
        let kept = msn.offline_messages(ALICE);
        (kept.len() == 2).then_some(kept)
    })
    .await;
    assert!(kept.iter().all(|m| m.sender == BOB));
    let announced = scene
        .hs
        .room(&portal)
        .expect("portal")
        .timeline
        .iter()
        .filter(|e| e.body.contains("is offline"))
        .count();
    assert_eq!(announced, 1, "said once");
    scene.assert_nothing_undelivered(&portal);

    // Alice signs in on MSNP18 and is handed both, in order.
    let mut alice =
        Contact::sign_in_endpoint(&scene.msn, ALICE, "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            .await;
    let mut read = Vec::new();
    while read.len() < 2 {
        let (from, text) = alice
            .next("an offline message to Alice", |event| match event {
                RemoteEvent::OfflineMessage { from, text, .. } => Some((from.to_string(), text)),
                _ => None,
            })
            .await;
        read.push((from, text));
    }
    assert_eq!(
        read,
        [
            (BOB.to_owned(), "see you tomorrow".to_owned()),
            (BOB.to_owned(), "and bring the cake".to_owned()),
        ]
    );
    assert!(alice.session.is_connected());
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn more_than_the_listing_holds_are_fetched_by_metadata() {
    let mut scene = Scene::start().await;
    // Past 25 the notification says `too-large`; the list comes from GetMetadata.
    let at = 1_795_684_443_000;
    for n in 1..=30u32 {
        let message = StoredOim {
            sender: ALICE.into(),
            friendly_name: "Alice Ä".into(),
            text: format!("kept {n}"),
            stored_ms: at + i64::from(n) * 1_000,
            run_id: "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}".into(),
            sequence: n,
            ..StoredOim::default()
        };
        scene.msn.store_offline_message(BOB, message);
    }
    scene.log_in(USER).await;
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene.notice_from(&portal, PUPPET_ALICE, "kept 30").await;
    let bodies: Vec<String> = from_alice(&scene, &portal)
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    let expected: Vec<String> = (1..=30).map(|n| format!("kept {n}")).collect();
    assert_eq!(bodies, expected);
    holds_none_for_bob(&scene).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn one_kept_while_the_user_is_online_arrives_at_once() {
    let mut scene = Scene::start().await;
    scene.log_in(USER).await;
    let msn = &scene.msn;
    until("Bob online", || msn.online(BOB).map(|_| ())).await;
    // Stored now (the sender saw Bob offline a moment ago): the live notification.
    let message = StoredOim {
        sender: ALICE.into(),
        friendly_name: "Alice Ä".into(),
        text: "did you get this?".into(),
        stored_ms: 1_795_684_443_000,
        run_id: "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}".into(),
        sequence: 1,
        ..StoredOim::default()
    };
    scene.msn.store_offline_message(BOB, message);
    let portal = scene.portal_with(PUPPET_ALICE, USER).await;
    scene
        .notice_from(&portal, PUPPET_ALICE, "did you get this?")
        .await;
    holds_none_for_bob(&scene).await;
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_contact_who_refuses_offline_messages_from_the_user_is_reported() {
    let mut scene = Scene::start().await;
    let (alice, portal) = scene.chat_with_alice("bye").await;
    alice.sign_out(&scene.msn, ALICE).await;
    // Alice blocks Bob: MSN will not keep his messages for her.
    scene.msn.add_contact(ALICE, BOB, Lists::BL);
    scene.say(&portal, USER, "are you there?").await;
    let notice = scene
        .notice_from(&portal, PUPPET_ALICE, "not delivered")
        .await;
    assert!(
        notice.contains("does not take offline messages from you"),
        "{notice}"
    );
    assert!(scene.msn.offline_messages(ALICE).is_empty());
    scene.stop().await;
}
