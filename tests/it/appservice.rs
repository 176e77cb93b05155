//! The appservice HTTP API over a real socket, with a real SQLite store: token checks,
//! transaction dedupe (durable across a restart), body limits, errors, health.

use std::sync::Arc;

use matrix_msn::bridge::credentials::{CredentialBox, SEALED_TEXT};
use matrix_msn::bridge::{EventIntake, MatrixEvent, event_feed_with_capacity};
use matrix_msn::matrix::appservice::{AppState, router, token_matches};
use matrix_msn::matrix::transaction::EchoFilter;
use matrix_msn::store::Store;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

const HS_TOKEN: &str = "hs_test_token_abcdef";

fn seal() -> CredentialBox {
    CredentialBox::from_hex(&"2a".repeat(32)).expect("key")
}

/// The event a queued payload holds (queued events are sealed: never plain text).
fn opened(payload: &str) -> MatrixEvent {
    assert!(payload.starts_with(SEALED_TEXT), "not sealed: {payload}");
    MatrixEvent::from_queue(&seal(), payload).expect("open")
}

fn body_of(event: &MatrixEvent) -> &str {
    match event {
        MatrixEvent::Message { body, .. } => body,
        other => panic!("not a message: {other:?}"),
    }
}

struct Server {
    base: String,
    store: Store,
    intake: EventIntake,
    ready: watch::Sender<bool>,
    _shutdown: tokio_util::sync::CancellationToken,
}

async fn serve(db: &std::path::Path) -> Server {
    serve_with_capacity(db, 100).await
}

/// A server whose worker side has places for `room` unhandled events.
async fn serve_with_capacity(db: &std::path::Path, room: usize) -> Server {
    let store = Store::connect(&format!("sqlite:{}", db.display()), 2)
        .await
        .expect("store");
    let (feed, intake) = event_feed_with_capacity(room);
    let (ready_tx, ready) = watch::channel(false);
    let state = AppState {
        store: store.clone(),
        hs_token: Arc::from(HS_TOKEN),
        filter: Arc::new(EchoFilter::new("@msnbot:localhost", "@msn_.+:localhost").expect("regex")),
        ingress: matrix_msn::bridge::Ingress::new(store.clone(), feed, seal()),
        ready,
        pinged: Arc::new(Notify::new()),
        max_body_bytes: 4096,
        metrics: matrix_msn::metrics::Metrics::new(),
        provisioning: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Server {
        base: format!("http://{addr}"),
        store,
        intake,
        ready: ready_tx,
        _shutdown: shutdown,
    }
}

async fn put(server: &Server, txn: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .put(format!("{}/_matrix/app/v1/transactions/{txn}", server.base))
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The next events handed to the worker (they are handed over before the homeserver's
/// answer, so they are there at once when they are there at all).
async fn handed_over(intake: &mut EventIntake) -> Vec<matrix_msn::bridge::QueuedMatrixEvent> {
    tokio::time::timeout(std::time::Duration::from_secs(5), intake.recv())
        .await
        .expect("nothing handed over")
        .expect("feed closed")
}

fn message_txn(body: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"events": [{
        "type": "m.room.message", "room_id": "!r", "event_id": format!("$e-{body}"),
        "sender": "@bob:localhost", "content": {"msgtype": "m.text", "body": body}
    }]}))
    .expect("json")
}

#[tokio::test]
async fn tokens_are_checked_on_every_matrix_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("db")).await;
    let (status, body) = put(&server, "1", None, message_txn("a")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (401, Some("M_MISSING_TOKEN"))
    );
    let (status, body) = put(&server, "1", Some("wrong"), message_txn("a")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN"))
    );
    assert!(
        !server.store.transaction_id_seen("1").await.expect("query"),
        "refused txn not recorded"
    );

    let http = reqwest::Client::new();
    for (method, path) in routes_of_the_router() {
        let url = format!("{}{path}", server.base);
        let method: reqwest::Method = method.parse().expect("method");
        let without = http
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request");
        if path.starts_with("/health/") {
            // The only routes open to anyone: they say nothing but whether the bridge is
            // alive and ready.
            assert!(![401, 403].contains(&without.status().as_u16()), "{path}");
            continue;
        }
        assert_eq!(
            without.status().as_u16(),
            401,
            "{method} {path} without a token"
        );
        let wrong = http
            .request(method.clone(), &url)
            .bearer_auth("nope")
            .send()
            .await
            .expect("request");
        assert_eq!(
            wrong.status().as_u16(),
            403,
            "{method} {path} with a wrong token"
        );
        let right = http
            .request(method, &url)
            .bearer_auth(HS_TOKEN)
            .send()
            .await
            .expect("request");
        assert_ne!(right.status().as_u16(), 401, "{path}");
        assert_ne!(right.status().as_u16(), 403, "{path}");
    }
    // The legacy query-parameter form is accepted too.
    let resp = http
        .post(format!(
            "{}/_matrix/app/v1/ping?access_token={HS_TOKEN}",
            server.base
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
}

/// Every route the appservice router declares (read from its source, so a route added
/// later is checked too), as (method, a path that matches it).
fn routes_of_the_router() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/matrix/appservice.rs"
    ))
    .expect("router source");
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)",\s*([a-z]+)\("#).expect("regex");
    let param = regex::Regex::new(r"\{[a-z_]+\}").expect("regex");
    let routes: Vec<(String, String)> = route
        .captures_iter(&source)
        .map(|c| {
            let path = param.replace_all(&c[1], "%40x%3Alocalhost").into_owned();
            (c[2].to_uppercase(), path)
        })
        .collect();
    // The reading must see the router: the four Matrix routes and two health routes today.
    assert!(routes.len() >= 6, "routes found: {routes:?}");
    routes
}

#[test]
fn token_comparison() {
    assert!(token_matches("abc", "abc"));
    assert!(!token_matches("abd", "abc"));
    assert!(!token_matches("ab", "abc"));
    assert!(!token_matches("", "abc"));
}

#[tokio::test]
async fn transaction_is_queued_once_and_dedupe_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let mut server = serve(&db).await;
    let (status, body) = put(&server, "txn-1", Some(HS_TOKEN), message_txn("first")).await;
    assert_eq!((status, body), (200, json!({})));
    let queued = server.store.queued_events(10).await.expect("queue");
    assert_eq!(queued.len(), 1);
    assert_eq!(body_of(&opened(&queued[0].payload)), "first");
    // The worker is handed the same event, at the same queue position.
    let handed = handed_over(&mut server.intake).await;
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].seq, queued[0].seq);
    assert!(
        matches!(&handed[0].event, MatrixEvent::Message { body, .. } if body == "first"),
        "{handed:?}"
    );

    // A replay (same ID, same events) is acknowledged and ignored.
    let (status, _) = put(&server, "txn-1", Some(HS_TOKEN), message_txn("first")).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.store.queued_events(10).await.expect("queue").len(),
        1
    );
    assert!(
        server.intake.try_recv().is_none(),
        "a replay is not handed over"
    );

    // A restart keeps the dedupe.
    server.store.close().await;
    drop(server);
    let server = serve(&db).await;
    let (status, _) = put(&server, "txn-1", Some(HS_TOKEN), message_txn("first")).await;
    assert_eq!(status, 200);
    let queued = server.store.queued_events(10).await.expect("queue");
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(body_of(&opened(&queued[0].payload)), "first");

    // The same ID with other events is another transaction: Synapse numbers them afresh
    // after it restarts.
    let (status, _) = put(&server, "txn-1", Some(HS_TOKEN), message_txn("second")).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.store.queued_events(10).await.expect("queue").len(),
        2
    );
}

#[tokio::test]
async fn bad_bodies_get_matrix_errors_and_record_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("db")).await;
    let (status, body) = put(&server, "t-json", Some(HS_TOKEN), b"{not json".to_vec()).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_NOT_JSON"))
    );
    let (status, body) = put(
        &server,
        "t-shape",
        Some(HS_TOKEN),
        br#"{"events": {}}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_BAD_JSON"))
    );
    let big = message_txn(&"x".repeat(8192));
    let (status, body) = put(&server, "t-big", Some(HS_TOKEN), big).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (413, Some("M_TOO_LARGE"))
    );
    for txn in ["t-json", "t-shape", "t-big"] {
        assert!(
            !server.store.transaction_id_seen(txn).await.expect("query"),
            "{txn}"
        );
    }
    // One malformed event among good ones: the batch is accepted, the good one queued.
    let mixed = serde_json::to_vec(&json!({"events": [
        {"type": "m.room.message", "room_id": "!r", "sender": "@bob:localhost", "content": {}},
        {"type": "m.room.message", "room_id": "!r", "event_id": "$ok", "sender": "@bob:localhost",
         "content": {"msgtype": "m.text", "body": "ok"}}
    ]}))
    .expect("json");
    let (status, _) = put(&server, "t-mixed", Some(HS_TOKEN), mixed).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.store.queued_events(10).await.expect("queue").len(),
        1
    );
}

#[tokio::test]
async fn queries_health_and_unknown_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("db")).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", server.base))
            .bearer_auth(HS_TOKEN)
            .send()
    };
    let resp = get("/_matrix/app/v1/users/%40msn_nobody%3Alocalhost")
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["errcode"],
        "M_NOT_FOUND"
    );
    server
        .store
        .upsert_puppet(&matrix_msn::store::Puppet {
            msn_address: "alice@hotmail.com".into(),
            mxid: crate::support::uid("@msn_alice=40hotmail.com:localhost"),
            display_name: None,
            avatar_mxc: None,
            avatar_sha1d: None,
            registered: true,
        })
        .await
        .expect("puppet");
    let resp = get("/_matrix/app/v1/users/%40msn_alice%3D40hotmail.com%3Alocalhost")
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = get("/_matrix/app/v1/users/%40bob%3Alocalhost")
        .await
        .expect("request");
    assert_eq!(
        resp.status().as_u16(),
        404,
        "users outside the namespace are not ours"
    );

    assert_eq!(
        get("/health/live")
            .await
            .expect("request")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        get("/health/ready")
            .await
            .expect("request")
            .status()
            .as_u16(),
        503
    );
    server.ready.send_replace(true);
    assert_eq!(
        get("/health/ready")
            .await
            .expect("request")
            .status()
            .as_u16(),
        200
    );
    let resp = get("/_matrix/app/v1/nothing").await.expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["errcode"],
        "M_UNRECOGNIZED"
    );
}

/// With no room left among the unhandled events, a transaction waits (and the homeserver
/// with it) until the worker has handled one; nothing is queued meanwhile.
#[tokio::test]
async fn a_transaction_waits_for_room_among_unhandled_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = serve_with_capacity(&dir.path().join("db"), 1).await;
    let (status, _) = put(&server, "t-1", Some(HS_TOKEN), message_txn("first")).await;
    assert_eq!(status, 200);
    let first = handed_over(&mut server.intake).await;
    assert!(first[0].holds_place);

    let status = {
        let second = put(&server, "t-2", Some(HS_TOKEN), message_txn("second"));
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), &mut second)
                .await
                .is_err(),
            "answered although the only place is taken"
        );
        assert_eq!(
            server.store.queued_events(10).await.expect("queue").len(),
            1,
            "nothing queued while it waits"
        );
        // The worker handles the first event and gives its place back.
        server.intake.capacity().give_back(first[0].holds_place);
        second.await.0
    };
    assert_eq!(status, 200);
    let handed = handed_over(&mut server.intake).await;
    assert!(matches!(&handed[0].event, MatrixEvent::Message { body, .. } if body == "second"));
    assert_eq!(server.intake.capacity().available(), 0);
}

/// A transaction whose commit went through although the handler was told it failed: its
/// events are queued but were never handed to the worker. The homeserver's retry is a
/// replay, and the replay hands them over, once.
#[tokio::test]
async fn a_replay_hands_over_events_its_first_attempt_left_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = serve(&dir.path().join("db")).await;
    let body = message_txn("left behind");
    let filter = EchoFilter::new("@msnbot:localhost", "@msn_.+:localhost").expect("regex");
    let parsed = matrix_msn::matrix::transaction::parse_transaction(&body, &filter).expect("parse");
    let rows: Vec<(String, String)> = parsed
        .events
        .iter()
        .map(|e| (e.kind().to_owned(), serde_json::to_string(e).expect("json")))
        .collect();
    let seqs = server
        .store
        .enqueue_transaction("t-left", &parsed.content_key, &rows)
        .await
        .expect("queue")
        .expect("new");

    let (status, _) = put(&server, "t-left", Some(HS_TOKEN), body.clone()).await;
    assert_eq!(status, 200);
    let handed = handed_over(&mut server.intake).await;
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].seq, seqs[0]);
    assert!(!handed[0].holds_place);
    assert!(matches!(&handed[0].event, MatrixEvent::Message { body, .. } if body == "left behind"));
    // Once handed over, another replay hands over nothing.
    let (status, _) = put(&server, "t-left", Some(HS_TOKEN), body).await;
    assert_eq!(status, 200);
    assert!(server.intake.try_recv().is_none());
}
