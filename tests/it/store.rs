//! The store suite: the same checks on SQLite (always) and PostgreSQL (full run).

use matrix_msn::store::{MessageMapping, Portal, Puppet, Store};
use matrix_sdk::ruma::{room_id, user_id};

use crate::support;

async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:{}", dir.path().join("msn.db").display());
    let store = Store::connect(&uri, 2).await.expect("sqlite store");
    (dir, store)
}

/// A PostgreSQL store on a fresh schema, so runs never see each other's rows.
async fn postgres() -> Option<Store> {
    let url = support::postgres_url()?;
    let schema = format!("t{}", std::process::id() as u64 * 1000 + rand_suffix());
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("postgres reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("schema");
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some(Store::connect(&scoped, 2).await.expect("postgres store"))
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn suite(store: &Store) {
    transactions_are_deduplicated_and_queued(store).await;
    users_round_trip(store).await;
    puppets_round_trip(store).await;
    picture_cache_round_trip(store).await;
    portals_round_trip(store).await;
    message_map_is_idempotent(store).await;
    outbox_keeps_order_per_receiver(store).await;
    group_members_round_trip(store).await;
}

async fn group_members_round_trip(store: &Store) {
    let (group, bob) = ("group:1-0", user_id!("@bob:localhost"));
    store
        .add_group_member(group, bob, "carol@example.com", "Carol")
        .await
        .unwrap();
    store
        .add_group_member(group, bob, "alice@example.com", "Al")
        .await
        .unwrap();
    store
        .add_group_member(group, bob, "alice@example.com", "Alice")
        .await
        .unwrap();
    store
        .add_group_member(group, user_id!("@eve:localhost"), "dan@example.com", "Dan")
        .await
        .unwrap();
    assert_eq!(
        store.group_members(group, bob).await.unwrap(),
        [
            ("alice@example.com".to_owned(), "Alice".to_owned()),
            ("carol@example.com".to_owned(), "Carol".to_owned())
        ]
    );
    store
        .remove_group_member(group, bob, "carol@example.com")
        .await
        .unwrap();
    assert_eq!(store.group_members(group, bob).await.unwrap().len(), 1);
}

async fn outbox_keeps_order_per_receiver(store: &Store) {
    let bob = user_id!("@bob:localhost");
    let a = store.outbox_push(bob, "first").await.unwrap();
    let other = store
        .outbox_push(user_id!("@eve:localhost"), "hers")
        .await
        .unwrap();
    let b = store.outbox_push(bob, "second").await.unwrap();
    assert!(a < other && other < b);
    let waiting = store.outbox_of(bob, 0, 10).await.unwrap();
    let payloads: Vec<&str> = waiting.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads, ["first", "second"]);
    assert!(waiting.iter().all(|e| e.created_at > 0));
    assert_eq!(store.outbox_of(bob, a, 10).await.unwrap().len(), 1);
    let mut receivers = store.outbox_receivers().await.unwrap();
    receivers.sort();
    assert_eq!(
        receivers,
        [user_id!("@bob:localhost"), user_id!("@eve:localhost")]
    );
    store.outbox_remove(&[a, other, b]).await.unwrap();
    assert!(store.outbox_of(bob, 0, 10).await.unwrap().is_empty());
    assert!(store.outbox_receivers().await.unwrap().is_empty());
}

async fn transactions_are_deduplicated_and_queued(store: &Store) {
    let events = vec![
        ("message".to_string(), r#"{"n":1}"#.to_string()),
        ("typing".to_string(), r#"{"n":2}"#.to_string()),
    ];
    assert!(!store.transaction_id_seen("t1").await.unwrap());
    let seqs = store
        .enqueue_transaction("t1", "k1", &events)
        .await
        .unwrap()
        .expect("a new transaction");
    assert!(store.transaction_id_seen("t1").await.unwrap());
    assert_eq!(
        store
            .enqueue_transaction("t1", "k1", &events)
            .await
            .unwrap(),
        None,
        "replay is a no-op"
    );
    assert_eq!(
        store.enqueue_transaction("t2", "k1", &[]).await.unwrap(),
        Some(vec![])
    );
    let queued = store.queued_events(10).await.unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert_eq!(queued[0].payload, r#"{"n":1}"#);
    assert_eq!(queued[1].kind, "typing");
    assert!(queued[0].seq < queued[1].seq);
    assert_eq!(
        seqs,
        vec![queued[0].seq, queued[1].seq],
        "positions in order"
    );
    assert_eq!(store.queued_events_of("t1").await.unwrap(), queued);
    assert!(store.queued_events_of("t2").await.unwrap().is_empty());
    store.finish_event(queued[0].seq).await.unwrap();
    let rest = store.queued_events(10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].seq, queued[1].seq);
    store.finish_event(rest[0].seq).await.unwrap();
    assert!(store.queued_events(10).await.unwrap().is_empty());

    // Many at once (more than one statement's worth), and reading after a position.
    let many: Vec<(String, String)> = (0..300)
        .map(|n| ("message".to_owned(), format!(r#"{{"n":{n}}}"#)))
        .collect();
    let seqs = store
        .enqueue_transaction("t3", "k1", &many)
        .await
        .unwrap()
        .expect("a new transaction");
    let queued = store.queued_events(1000).await.unwrap();
    assert_eq!(queued.len(), 300);
    assert_eq!(seqs, queued.iter().map(|q| q.seq).collect::<Vec<_>>());
    assert!(
        queued
            .iter()
            .enumerate()
            .all(|(n, q)| q.payload == format!(r#"{{"n":{n}}}"#))
    );
    let later = store.queued_events_after(queued[9].seq, 5).await.unwrap();
    assert_eq!(later.first().map(|q| q.seq), Some(queued[10].seq));
    assert_eq!(later.len(), 5);
    let seqs: Vec<i64> = queued.iter().take(299).map(|q| q.seq).collect();
    store.finish_events(&seqs).await.unwrap();
    let left = store.queued_events(1000).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, queued[299].seq);
    store.finish_events(&[]).await.unwrap();
}

async fn users_round_trip(store: &Store) {
    assert!(
        store
            .user(user_id!("@bob:localhost"))
            .await
            .unwrap()
            .is_none()
    );
    store
        .set_management_room(user_id!("@bob:localhost"), room_id!("!mgmt"))
        .await
        .unwrap();
    store
        .set_login(
            user_id!("@bob:localhost"),
            Some("bob@hotmail.com"),
            "connected",
            Some(&[1, 2, 3]),
        )
        .await
        .unwrap();
    let user = store
        .user(user_id!("@bob:localhost"))
        .await
        .unwrap()
        .expect("user");
    assert_eq!(user.management_room.as_deref(), Some(room_id!("!mgmt")));
    assert_eq!(user.msn_login.as_deref(), Some("bob@hotmail.com"));
    assert_eq!(user.credentials.as_deref(), Some(&[1u8, 2, 3][..]));
    // The endpoint id is chosen once: later logins keep it, whatever they offer.
    let bob = user_id!("@bob:localhost");
    let first = store.machine_guid(bob, "{A}").await.unwrap();
    assert_eq!(first, "{A}");
    assert_eq!(store.machine_guid(bob, "{B}").await.unwrap(), "{A}");
    // A user the store has not met yet gets one too.
    assert_eq!(
        store
            .machine_guid(user_id!("@new:localhost"), "{C}")
            .await
            .unwrap(),
        "{C}"
    );
    store
        .set_management_room(user_id!("@bob:localhost"), room_id!("!other"))
        .await
        .unwrap();
    let user = store
        .user(user_id!("@bob:localhost"))
        .await
        .unwrap()
        .expect("user");
    assert_eq!(user.management_room.as_deref(), Some(room_id!("!other")));
    assert_eq!(
        user.login_state, "connected",
        "changing the room keeps the login"
    );
    assert!(
        !format!("{user:?}").contains("[1, 2, 3]"),
        "credentials redacted"
    );
    // Bob and the user given an endpoint id above.
    assert_eq!(store.users().await.unwrap().len(), 2);
}

async fn puppets_round_trip(store: &Store) {
    let mut p = Puppet {
        msn_address: "alice@hotmail.com".into(),
        mxid: user_id!("@msn_alice=40hotmail.com:localhost").to_owned(),
        display_name: Some("Alice ✿".into()),
        avatar_mxc: None,
        avatar_sha1d: None,
        registered: true,
    };
    store.upsert_puppet(&p).await.unwrap();
    assert_eq!(
        store.puppet("alice@hotmail.com").await.unwrap(),
        Some(p.clone())
    );
    // The avatar changes only through its own call; an upsert leaves it alone.
    store
        .set_puppet_avatar("alice@hotmail.com", "c2hhMWQ=", "mxc://localhost/abc")
        .await
        .unwrap();
    p.registered = false;
    store.upsert_puppet(&p).await.unwrap();
    p.avatar_mxc = Some("mxc://localhost/abc".into());
    p.avatar_sha1d = Some("c2hhMWQ=".into());
    assert_eq!(store.puppet_by_mxid(&p.mxid).await.unwrap(), Some(p));
}

async fn picture_cache_round_trip(store: &Store) {
    assert_eq!(store.picture_mxc("c2hhMWQ=").await.unwrap(), None);
    store
        .put_picture("c2hhMWQ=", "mxc://localhost/one")
        .await
        .unwrap();
    store
        .put_picture("c2hhMWQ=", "mxc://localhost/two")
        .await
        .unwrap();
    assert_eq!(
        store.picture_mxc("c2hhMWQ=").await.unwrap().as_deref(),
        Some("mxc://localhost/two")
    );
}

async fn portals_round_trip(store: &Store) {
    let p = Portal {
        msn_chat_id: "alice@hotmail.com".into(),
        receiver: user_id!("@bob:localhost").to_owned(),
        room_id: Some(room_id!("!dm").to_owned()),
        kind: "dm".into(),
        name: Some("Alice".into()),
    };
    store.upsert_portal(&p).await.unwrap();
    assert_eq!(
        store
            .portal("alice@hotmail.com", user_id!("@bob:localhost"))
            .await
            .unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        store.portal_by_room(room_id!("!dm")).await.unwrap(),
        Some(p)
    );
    assert!(
        store
            .portal("alice@hotmail.com", user_id!("@carol:localhost"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn message_map_is_idempotent(store: &Store) {
    let m = MessageMapping {
        matrix_event_id: "$e1".into(),
        part: 0,
        room_id: "!dm".into(),
        receiver: "@bob:localhost".into(),
        msn_message_id: "7".into(),
        direction: "to_msn".into(),
    };
    assert!(store.insert_message(&m).await.unwrap());
    assert!(
        !store.insert_message(&m).await.unwrap(),
        "second insert is a no-op"
    );
    let second = MessageMapping {
        part: 1,
        msn_message_id: "8".into(),
        ..m.clone()
    };
    assert!(store.insert_message(&second).await.unwrap());
    assert_eq!(
        store.messages_of_event("$e1").await.unwrap(),
        vec![m.clone(), second.clone()]
    );

    // Many at once (more than one statement's worth): says which were new, in order,
    // counting a repeat within the batch as not new.
    let mut batch: Vec<MessageMapping> = (0..300)
        .map(|n| MessageMapping {
            matrix_event_id: format!("$batch{n}"),
            ..m.clone()
        })
        .collect();
    batch.insert(5, m.clone());
    batch.push(batch[7].clone());
    let fresh = store.insert_messages(&batch).await.unwrap();
    let expected: Vec<bool> = (0..batch.len())
        .map(|i| i != 5 && i != batch.len() - 1)
        .collect();
    assert_eq!(fresh, expected);
    assert_eq!(store.messages_of_event("$batch299").await.unwrap().len(), 1);
}

#[tokio::test]
async fn store_suite_on_sqlite() {
    let (_dir, store) = sqlite().await;
    suite(&store).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it"]
async fn store_suite_on_postgres() {
    let Some(store) = postgres().await else {
        return;
    };
    suite(&store).await;
}

#[tokio::test]
async fn sqlite_state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite:{}", dir.path().join("msn.db").display());
    let store = Store::connect(&uri, 2).await.unwrap();
    assert!(
        store
            .enqueue_transaction("42", "k", &[])
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;
    let store = Store::connect(&uri, 2).await.unwrap();
    assert!(store.transaction_id_seen("42").await.unwrap());
    assert_eq!(
        store.enqueue_transaction("42", "k", &[]).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:", 4).await.unwrap();
    suite(&store).await;
}
