//! Prometheus metrics: what the bridge counts, and the text exposition served on its own
//! listener (`metrics.listen`, off by default), so the appservice port never exposes them.
//!
//! Counted: connected MSN sessions, messages bridged per direction, portals whose messages
//! wait for a session to come back, users whose outbox waits for the homeserver, transaction handling time, MSN reconnects by cause, P2P
//! transfers, errors by kind.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Cause {
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transfer {
    /// `fetch` (a picture from MSN) or `serve` (the user's picture to a contact).
    pub direction: &'static str,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

/// Every metric of the bridge. Cheap to share (`Arc`); updating is lock-free.
pub struct Metrics {
    registry: Registry,
    pub msn_sessions: Gauge,
    pub messages: Family<Direction, Counter>,
    pub portals_waiting: Gauge,
    pub outbox_retrying: Gauge,
    pub transaction_seconds: Histogram,
    pub reconnects: Family<Cause, Counter>,
    pub p2p_transfers: Family<Transfer, Counter>,
    pub errors: Family<Kind, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("matrix_msn");
        let msn_sessions = Gauge::default();
        registry.register(
            "msn_sessions_connected",
            "MSN sessions connected now",
            msn_sessions.clone(),
        );
        let messages = Family::<Direction, Counter>::default();
        registry.register(
            "messages_bridged",
            "Messages bridged, by direction",
            messages.clone(),
        );
        let portals_waiting = Gauge::default();
        registry.register(
            "portals_waiting_for_session",
            "Portals whose Matrix messages wait for their user's MSN session to come back",
            portals_waiting.clone(),
        );
        let outbox_retrying = Gauge::default();
        registry.register(
            "outbox_retrying",
            "Users whose events from MSN wait for the homeserver to take them (retrying)",
            outbox_retrying.clone(),
        );
        let transaction_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "transaction_seconds",
            "Time to accept an appservice transaction (parse and durably queue)",
            transaction_seconds.clone(),
        );
        let reconnects = Family::<Cause, Counter>::default();
        registry.register(
            "msn_reconnects",
            "MSN reconnects, by cause",
            reconnects.clone(),
        );
        let p2p_transfers = Family::<Transfer, Counter>::default();
        registry.register(
            "p2p_transfers",
            "P2P picture transfers (display pictures, emoticons), by direction and outcome",
            p2p_transfers.clone(),
        );
        let errors = Family::<Kind, Counter>::default();
        registry.register("errors", "Errors, by kind", errors.clone());
        Arc::new(Self {
            registry,
            msn_sessions,
            messages,
            portals_waiting,
            outbox_retrying,
            transaction_seconds,
            reconnects,
            p2p_transfers,
            errors,
        })
    }

    /// Counts one bridged message (`to_msn` or `to_matrix`).
    pub fn message(&self, direction: &'static str) {
        self.messages.get_or_create(&Direction { direction }).inc();
    }

    /// Counts one P2P transfer (`fetch` or `serve`) and whether it succeeded.
    pub fn p2p_transfer(&self, direction: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.p2p_transfers
            .get_or_create(&Transfer { direction, outcome })
            .inc();
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&Kind { kind }).inc();
    }

    /// How many errors of `kind` were counted.
    pub fn errors_of(&self, kind: &'static str) -> u64 {
        self.errors.get_or_create(&Kind { kind }).get()
    }

    /// Counts one reconnect; the cause is cut to its first words to keep label values few.
    pub fn reconnect(&self, reason: &str) {
        let cause: String = reason
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| !w.is_empty())
            .unwrap_or("unknown")
            .chars()
            .take(32)
            .collect();
        self.reconnects.get_or_create(&Cause { cause }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_exposition() {
        let m = Metrics::new();
        m.message("to_msn");
        m.message("to_msn");
        m.reconnect("ConnectionLost (socket closed)");
        m.error("delivery");
        m.msn_sessions.set(3);
        m.transaction_seconds.observe(0.002);
        let text = m.encode();
        assert!(
            text.contains("matrix_msn_messages_bridged_total{direction=\"to_msn\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("matrix_msn_msn_reconnects_total{cause=\"ConnectionLost\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("matrix_msn_msn_sessions_connected 3"),
            "{text}"
        );
        assert!(
            text.contains("matrix_msn_errors_total{kind=\"delivery\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("matrix_msn_transaction_seconds_count 1"),
            "{text}"
        );
    }
}
