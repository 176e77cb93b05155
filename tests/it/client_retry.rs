//! The client's retry policy against a homeserver double that answers like an overloaded or
//! failing Synapse: 429 with `Retry-After` or `retry_after_ms`, 5xx, errors with errcodes,
//! and a closed port. (A real Synapse cannot be made to rate-limit an appservice on cue.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use matrix_msn::bridge::MatrixPort;
use matrix_msn::matrix::client::{Client, ClientError, RetryPolicy};
use ruma::OwnedUserId;
use serde_json::json;

#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, Instant)>>>);

impl Calls {
    fn of(&self, txn: &str) -> Vec<Instant> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _)| t == txn)
            .map(|(_, at)| *at)
            .collect()
    }
}

async fn send(State(calls): State<Calls>, Path((_room, txn)): Path<(String, String)>) -> Response {
    let n = {
        let mut calls = calls.0.lock().unwrap_or_else(|e| e.into_inner());
        calls.push((txn.clone(), Instant::now()));
        calls.iter().filter(|(t, _)| *t == txn).count()
    };
    let ok = (
        StatusCode::OK,
        axum::Json(json!({"event_id": format!("$ok-{txn}")})),
    )
        .into_response();
    let err = |status: StatusCode, code: &str| {
        (
            status,
            axum::Json(json!({"errcode": code, "error": "no", "retry_after_ms": 300})),
        )
            .into_response()
    };
    match (txn.as_str(), n) {
        ("rate", 1) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"errcode": "M_LIMIT_EXCEEDED"})),
            )
                .into_response();
            r.headers_mut()
                .insert("retry-after", "1".parse().expect("header"));
            r
        }
        ("ratems", 1) => err(StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED"),
        ("boom", 1 | 2) => (StatusCode::INTERNAL_SERVER_ERROR, "not json at all").into_response(),
        ("forbidden", _) => err(StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        ("down", _) => err(StatusCode::BAD_GATEWAY, "M_UNKNOWN"),
        _ => ok,
    }
}

async fn double() -> (String, Calls) {
    let calls = Calls::default();
    let app = Router::new()
        .route(
            "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
            put(send),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

fn client(base: &str) -> Client {
    Client::new(
        base,
        "as_token",
        OwnedUserId::try_from("@msnbot:localhost").expect("bot"),
    )
    .expect("client")
    .with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn retry_after_header_and_body_are_honoured() {
    let (base, calls) = double().await;
    let c = client(&base);
    let id = c
        .send_notice(ruma::room_id!("!room"), "hi", None, "rate", None)
        .await
        .expect("sent after waiting");
    assert_eq!(id, "$ok-rate");
    let at = calls.of("rate");
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_millis(950),
        "waited {:?}",
        at[1] - at[0]
    );

    c.send_notice(ruma::room_id!("!room"), "hi", None, "ratems", None)
        .await
        .expect("sent");
    let at = calls.of("ratems");
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_millis(290),
        "waited {:?}",
        at[1] - at[0]
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    let (base, calls) = double().await;
    let c = client(&base);
    c.send_notice(ruma::room_id!("!room"), "hi", None, "boom", None)
        .await
        .expect("third time lucky");
    assert_eq!(calls.of("boom").len(), 3);

    let err = c
        .send_notice(ruma::room_id!("!room"), "hi", None, "down", None)
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, ClientError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(err.errcode(), Some("M_UNKNOWN"));
    assert_eq!(calls.of("down").len(), 3);
}

#[tokio::test]
async fn client_errors_come_back_typed_at_once() {
    let (base, calls) = double().await;
    let err = client(&base)
        .send_notice(ruma::room_id!("!room"), "hi", None, "forbidden", None)
        .await
        .expect_err("forbidden");
    assert!(
        matches!(&err, ClientError::Matrix { status: 403, errcode, .. } if errcode == "M_FORBIDDEN"),
        "{err}"
    );
    assert_eq!(calls.of("forbidden").len(), 1, "a 403 is not retried");
}

#[tokio::test]
async fn unreachable_homeserver_is_retried_then_reported() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = client(&format!("http://127.0.0.1:{port}"))
        .send_notice(ruma::room_id!("!room"), "hi", None, "t", None)
        .await
        .expect_err("unreachable");
    assert!(
        matches!(&err, ClientError::GaveUp { last, .. } if matches!(**last, ClientError::Transport(_))),
        "{err}"
    );
}
