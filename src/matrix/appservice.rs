//! The appservice HTTP API (application service API v1) served to the homeserver, plus
//! liveness and readiness endpoints.
//!
//! Owns: the routes, the `hs_token` check (constant time, `Authorization: Bearer`, with
//! the legacy `access_token` query parameter accepted for older homeservers), body limits,
//! parsing, and Matrix-shaped error responses. A transaction's events go to the core in
//! one call, [`Ingress::accept`], which queues them durably before the homeserver gets
//! its `200`; events are never processed inside the request.

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
use crate::bridge::{Accepted, Ingress};
use crate::store::Store;

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hs_token: Arc<str>,
    pub filter: Arc<EchoFilter>,
    /// The core's intake: queues a transaction's events and hands them to the worker.
    pub ingress: Ingress,
    /// Set once startup (homeserver ping, bot profile) has succeeded.
    pub ready: watch::Receiver<bool>,
    /// Set when the homeserver has pinged us (`POST /_matrix/app/v1/ping`).
    pub pinged: Arc<Notify>,
    pub max_body_bytes: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The provisioning API, when a secret is configured.
    pub provisioning: Option<super::provisioning::Provisioning>,
}

/// An error as the Matrix spec shapes it: `{"errcode": ..., "error": ...}`.
#[derive(Debug)]
pub struct MatrixError {
    status: StatusCode,
    errcode: &'static str,
    error: String,
}

impl MatrixError {
    pub(super) fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
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
    let provisioning = state.provisioning.clone();
    let app = Router::new()
        .merge(matrix)
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(state);
    let app = match provisioning {
        Some(provisioning) => {
            app.merge(super::provisioning::router(provisioning).layer(DefaultBodyLimit::max(limit)))
        }
        None => app,
    };
    app.fallback(|| async {
        MatrixError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unknown endpoint")
    })
    .layer(middleware::from_fn(request_span))
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
    let presented = bearer(&headers).or(query.access_token.as_deref());
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

/// The token of an `Authorization: Bearer …` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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
        let (malformed, echoes, ignored) = (parsed.malformed, parsed.echoes, parsed.ignored);
        let accepted = state
            .ingress
            .accept(txn_id, parsed.content_key, parsed.events)
            .await
            .map_err(internal)?;
        match accepted {
            Accepted::Fresh { queued } => {
                tracing::debug!(queued, malformed, echoes, ignored, "transaction accepted");
            }
            Accepted::Replay { recovered: 0 } => tracing::info!("replayed transaction ignored"),
            Accepted::Replay { recovered } => {
                tracing::warn!(recovered, "a replay found events never handed over");
            }
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
    let puppet = match ruma::OwnedUserId::try_from(user_id) {
        Ok(user_id) if state.filter.is_ours(user_id.as_str()) => state
            .store
            .puppet_by_mxid(&user_id)
            .await
            .map_err(internal)?,
        // Not a user ID, or not one of ours.
        _ => None,
    };
    if puppet.is_some() {
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
