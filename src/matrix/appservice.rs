//! The appservice HTTP API (application service API v1) served to the homeserver, plus
//! liveness and readiness endpoints.
//!
//! Owns: the routes, the `hs_token` check (constant time, `Authorization: Bearer`, with
//! the legacy `access_token` query parameter accepted for older homeservers), body limits,
//! Matrix-shaped error responses, and durable queueing of each transaction's events before
//! it is acknowledged. Events are never processed inside the request: once the queue
//! commit is done they are handed to the core's worker through its [`EventFeed`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use super::transaction::{EchoFilter, TransactionError, parse_transaction};
use crate::bridge::credentials::CredentialBox;
use crate::bridge::feed::RoomClaim;
use crate::bridge::{EventFeed, MatrixEvent};
use crate::store::{Store, StoreError};

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hs_token: Arc<str>,
    pub filter: Arc<EchoFilter>,
    /// Takes events once queued.
    pub feed: EventFeed,
    /// Seals events before they are queued (a message may hold a password).
    pub seal: CredentialBox,
    /// Set once startup (homeserver ping, bot profile) has succeeded.
    pub ready: watch::Receiver<bool>,
    /// Set when the homeserver has pinged us (`POST /_matrix/app/v1/ping`).
    pub pinged: Arc<Notify>,
    pub max_body_bytes: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// An error as the Matrix spec shapes it: `{"errcode": ..., "error": ...}`.
#[derive(Debug)]
pub struct MatrixError {
    status: StatusCode,
    errcode: &'static str,
    error: String,
}

impl MatrixError {
    fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        Self {
            status,
            errcode,
            error: error.into(),
        }
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"errcode": self.errcode, "error": self.error})),
        )
            .into_response()
    }
}

/// The router with every route, for the bridge and for tests.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let matrix = Router::new()
        .route(
            "/_matrix/app/v1/transactions/{txn_id}",
            put(put_transaction),
        )
        .route("/_matrix/app/v1/users/{user_id}", get(get_user))
        .route("/_matrix/app/v1/rooms/{room_alias}", get(get_room_alias))
        .route("/_matrix/app/v1/ping", post(post_ping))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_hs_token,
        ))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .merge(matrix)
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .fallback(|| async {
            MatrixError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unknown endpoint")
        })
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

/// One span per request, naming the method and path (never the query: it may hold a token).
async fn request_span(request: Request, next: Next) -> Response {
    let span =
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    next.run(request).instrument(span).await
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// Checks the homeserver's token: missing gives 401 `M_MISSING_TOKEN`, wrong 403 `M_FORBIDDEN`.
async fn require_hs_token(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let presented = bearer.or(query.access_token.as_deref());
    match presented {
        None => MatrixError::new(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "missing homeserver token",
        )
        .into_response(),
        Some(token) if !token_matches(token, &state.hs_token) => {
            tracing::warn!("request with a wrong homeserver token");
            MatrixError::new(
                StatusCode::FORBIDDEN,
                "M_FORBIDDEN",
                "wrong homeserver token",
            )
            .into_response()
        }
        Some(_) => next.run(request).await,
    }
}

/// Constant-time token comparison (only the length can leak, which the token format fixes).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// `PUT /_matrix/app/v1/transactions/{txnId}` (AS API §"Pushing events").
async fn put_transaction(
    State(state): State<AppState>,
    Path(txn_id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, MatrixError> {
    let span = tracing::info_span!("txn", id = %txn_id);
    let started = std::time::Instant::now();
    let metrics = state.metrics.clone();
    let result = async move {
        let body = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                MatrixError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "M_TOO_LARGE",
                    "transaction too large",
                )
            } else {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", e.body_text())
            }
        })?;
        let parsed = parse_transaction(&body, &state.filter).map_err(|e| match e {
            TransactionError::NotJson(_) => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", e.to_string())
            }
            TransactionError::BadShape(_) => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", e.to_string())
            }
        })?;
        let rows = parsed
            .events
            .iter()
            .map(|event| {
                let json = serde_json::to_string(event).map_err(internal)?;
                let payload = state.seal.seal_text(&json).map_err(internal)?;
                Ok((event.kind().to_owned(), payload))
            })
            .collect::<Result<Vec<_>, MatrixError>>()?;
        let (queued, malformed, echoes, ignored) =
            (rows.len(), parsed.malformed, parsed.echoes, parsed.ignored);
        // Room for the events among those not handled yet: waiting here holds the
        // homeserver back (nothing is queued yet, so hanging up loses nothing).
        let claim = state.feed.room_for(rows.len()).await;
        // Its own task: the homeserver hanging up cannot cancel it between the commit and
        // the hand-over, which would leave committed events waiting for a restart.
        let queueing = tokio::spawn(
            queue_and_hand_over(
                state.store.clone(),
                (state.feed.clone(), state.seal.clone()),
                txn_id,
                parsed.content_key,
                (rows, parsed.events),
                claim,
            )
            .in_current_span(),
        );
        let fresh = queueing.await.map_err(internal)?.map_err(internal)?;
        if fresh {
            tracing::debug!(queued, malformed, echoes, ignored, "transaction accepted");
        } else {
            tracing::info!("replayed transaction ignored");
        }
        Ok(Json(json!({})))
    }
    .instrument(span)
    .await;
    metrics
        .transaction_seconds
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Queues a transaction's events (unless it is a replay: `false`) and hands them to the
/// worker, in one turn at the feed.
async fn queue_and_hand_over(
    store: Store,
    (feed, seal): (EventFeed, CredentialBox),
    txn_id: String,
    content_key: String,
    (rows, events): (Vec<(String, String)>, Vec<MatrixEvent>),
    claim: RoomClaim,
) -> Result<bool, StoreError> {
    let turn = feed.turn().await;
    let Some(seqs) = store
        .enqueue_transaction(&txn_id, &content_key, &rows)
        .await?
    else {
        // A replay. Its events are normally handled or in hand; any still queued and
        // never handed over (its first attempt was told the commit failed, although it
        // went through) are handed over now.
        let left = store.queued_events_of(&txn_id).await?;
        let left = left
            .into_iter()
            .filter_map(|q| match MatrixEvent::from_queue(&seal, &q.payload) {
                Ok(event) => Some((q.seq, event)),
                Err(e) => {
                    tracing::error!(error = %e, seq = q.seq, "queued event cannot be read");
                    None
                }
            })
            .collect();
        let recovered = turn.hand_over_unseen(left);
        if recovered > 0 {
            tracing::warn!(recovered, "a replay found events never handed over");
        }
        return Ok(false);
    };
    turn.hand_over(seqs.into_iter().zip(events).collect(), claim);
    Ok(true)
}

fn internal(e: impl std::fmt::Display) -> MatrixError {
    tracing::error!(error = %e, "cannot accept the transaction");
    MatrixError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "M_UNKNOWN",
        "internal error; retry later",
    )
}

/// `GET /_matrix/app/v1/users/{userId}`: does this puppet exist?
async fn get_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, MatrixError> {
    if state.filter.is_ours(&user_id)
        && state
            .store
            .puppet_by_mxid(&user_id)
            .await
            .map_err(internal)?
            .is_some()
    {
        return Ok(Json(json!({})));
    }
    Err(MatrixError::new(
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
        "no such user",
    ))
}

/// `GET /_matrix/app/v1/rooms/{roomAlias}`: the bridge does not create rooms from aliases.
async fn get_room_alias(Path(_alias): Path<String>) -> MatrixError {
    MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no such room alias")
}

/// `POST /_matrix/app/v1/ping`: the homeserver checking that it can reach us.
async fn post_ping(State(state): State<AppState>) -> Json<serde_json::Value> {
    state.pinged.notify_waiters();
    Json(json!({}))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let ready = *state.ready.borrow() && state.store.ping().await;
    if ready && state.metrics.outbox_retrying.get() > 0 {
        // Still taking transactions, but events from MSN wait for the homeserver.
        (
            StatusCode::OK,
            "ready, degraded: events from MSN are waiting for the homeserver",
        )
    } else if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
