//! The client-server API client: ruma's request types (one type per endpoint, each naming its
//! spec section) sent over reqwest as the bridge bot or, by identity assertion
//! (`?user_id=`), as any puppet.
//!
//! Owns: authentication with the `as_token`, retries (429 and 5xx, honouring `Retry-After`
//! and `retry_after_ms`, plus connection failures) with capped exponential backoff, and
//! typed errors carrying the homeserver's `errcode`.
//! Must not import: the bridge core's logic (it implements the core's `MatrixPort` trait in
//! `port.rs`), MSNP.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use ruma::api::{
    AppserviceUserIdentity, IncomingResponse, MatrixVersion, OutgoingRequest,
    OutgoingRequestAppserviceExt, SupportedVersions,
};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Why a call to the homeserver failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The homeserver answered with a Matrix error.
    #[error("homeserver refused ({status}) {errcode}: {message}")]
    Matrix {
        status: u16,
        errcode: String,
        message: String,
    },
    /// The homeserver could not be reached or the connection broke.
    #[error("cannot reach the homeserver: {0}")]
    Transport(#[source] reqwest::Error),
    /// Building the request failed (a bug or an invalid identifier).
    #[error("cannot build the request: {0}")]
    Build(String),
    /// The homeserver's answer did not have the expected shape.
    #[error("unexpected answer from the homeserver: {0}")]
    Response(String),
    /// Every attempt failed with a retryable error.
    #[error("homeserver still failing after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// Whether the call may work later: the homeserver could not be reached, was
    /// overloaded (429) or failed (5xx), also after the retries here ran out.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::GaveUp { .. } => true,
            Self::Matrix { status, .. } => *status == 429 || *status >= 500,
            Self::Build(_) | Self::Response(_) => false,
        }
    }

    /// The Matrix `errcode`, if the homeserver sent one.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Matrix { errcode, .. } => Some(errcode),
            Self::GaveUp { last, .. } => last.errcode(),
            _ => None,
        }
    }
}

/// How hard to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Most requests to the homeserver in flight at once (the worker's lanes and every
/// session's messages from MSN share them); the others wait their turn.
pub const REQUESTS_IN_FLIGHT: usize = 64;

/// A cheap, cloneable client for one appservice.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Bounds the requests in flight (and so the connections open) to the homeserver.
    in_flight: Arc<Semaphore>,
    base_url: String,
    as_token: String,
    bot: OwnedUserId,
    versions: SupportedVersions,
    retry: RetryPolicy,
    /// Double puppeting: the `as_token` of a second registration per homeserver name,
    /// with which the bridge may act as that server's real users (mautrix's convention).
    double_puppet: Arc<std::collections::HashMap<String, String>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("bot", &self.bot)
            .finish_non_exhaustive()
    }
}

/// Supplies the path-builder input ruma needs for each kind of endpoint.
pub trait PathInput: PathBuilder {
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Self::Input<'_> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_: &SupportedVersions) -> Self::Input<'_> {}
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errcode: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

impl Client {
    /// A client for the homeserver at `base_url`, authenticating with `as_token` and
    /// acting as `bot` unless told to assert another user.
    pub fn new(base_url: &str, as_token: &str, bot: OwnedUserId) -> Result<Self, ClientError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("matrix-msn/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            // As many kept-alive connections as requests may be in flight: a steady flow
            // reuses them instead of opening and closing one per request.
            .pool_max_idle_per_host(REQUESTS_IN_FLIGHT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Self {
            http,
            in_flight: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT)),
            base_url: base_url.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            bot,
            // Synapse 1.163 speaks up to v1.12; asking /versions first would add a round
            // trip for no gain, since every endpoint used here is stable since v1.11.
            versions: SupportedVersions {
                versions: [MatrixVersion::V1_11].into(),
                features: Default::default(),
            },
            retry: RetryPolicy::default(),
            double_puppet: Arc::default(),
        })
    }

    /// Enables double puppeting: `tokens` maps a homeserver name to the `as_token` that
    /// may act as its users.
    pub fn with_double_puppet(mut self, tokens: std::collections::HashMap<String, String>) -> Self {
        self.double_puppet = Arc::new(tokens);
        self
    }

    /// The token that acts as the real user `user`, if double puppeting covers them.
    pub fn double_puppet_token(&self, user: &UserId) -> Option<&str> {
        self.double_puppet
            .get(user.server_name().as_str())
            .map(String::as_str)
    }

    /// Replaces the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The bridge bot's user ID.
    pub fn bot(&self) -> &UserId {
        &self.bot
    }

    /// Sends `request` as `as_user` (the bot when `None`), retrying what can be retried.
    pub async fn send<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_attempts(request, as_user, self.retry.max_attempts)
            .await
    }

    /// [`Client::send`] without retries, for a caller that retries itself (and first
    /// checks whether the earlier attempt went through).
    pub async fn send_once<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_attempts(request, as_user, 1).await
    }

    async fn send_attempts<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
        max_attempts: u32,
    ) -> Result<R::IncomingResponse, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_with_token(request, as_user, max_attempts, &self.as_token)
            .await
    }

    /// [`Client::send`] as the real user `user`, with the double-puppet token of their
    /// homeserver (an error when there is none).
    pub async fn send_as_real_user<R>(
        &self,
        request: R,
        user: &UserId,
        once: bool,
    ) -> Result<R::IncomingResponse, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let token = self
            .double_puppet_token(user)
            .ok_or_else(|| ClientError::Build(format!("no double puppeting for {user}")))?
            .to_owned();
        let attempts = if once { 1 } else { self.retry.max_attempts };
        self.send_with_token(request, Some(user), attempts, &token)
            .await
    }

    async fn send_with_token<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
        max_attempts: u32,
        token: &str,
    ) -> Result<R::IncomingResponse, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let (parts, body) = self.build(request, as_user, token)?.into_parts();
        let span =
            tracing::debug_span!("hs_request", method = %parts.method, path = %parts.uri.path());
        self.send_http::<R>(parts, body, max_attempts)
            .instrument(span)
            .await
    }

    /// The head of `request` as the bot (or `as_user`), for a caller that streams the
    /// body or the answer itself ([`Client::send_streamed`]).
    pub(super) fn request_head<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
    ) -> Result<http::request::Parts, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        Ok(self.build(request, as_user, &self.as_token)?.into_parts().0)
    }

    /// `request` as HTTP, authenticated with `token`, as `as_user` (the bot when `None`).
    fn build<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
        token: &str,
    ) -> Result<http::Request<Vec<u8>>, ClientError>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let identity = match as_user {
            Some(user) if user != self.bot => AppserviceUserIdentity::new(user),
            _ => AppserviceUserIdentity::default(),
        };
        request
            .try_into_http_request_with_identity(
                &self.base_url,
                SendAccessToken::Always(token),
                identity,
                R::PathBuilder::input(&self.versions),
            )
            .map_err(|e| ClientError::Build(e.to_string()))
    }

    /// Sends `head` with `body` once (a stream cannot be sent again) and returns the
    /// answer unread when it is a success, else the homeserver's error.
    pub(super) async fn send_streamed<R: OutgoingRequest>(
        &self,
        head: http::request::Parts,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, ClientError> {
        let mut builder = self
            .http
            .request(head.method.clone(), head.uri.to_string())
            .body(body);
        for (name, value) in &head.headers {
            builder = builder.header(name, value);
        }
        let _permit = self.in_flight.acquire().await;
        let response = builder.send().await.map_err(ClientError::Transport)?;
        if response.status().is_success() {
            return Ok(response);
        }
        match self.read_response::<R>(response).await {
            Err((error, _)) => Err(error),
            Ok(_) => Err(ClientError::Response("a success that was not".into())),
        }
    }

    /// Reads a whole answer to a request made with [`Client::send_streamed`].
    pub(super) async fn read_streamed<R: OutgoingRequest>(
        &self,
        response: reqwest::Response,
    ) -> Result<R::IncomingResponse, ClientError> {
        self.read_response::<R>(response).await.map_err(|(e, _)| e)
    }

    /// Sends a built request, retrying what can be retried, in at most `max_attempts`.
    async fn send_http<R: OutgoingRequest>(
        &self,
        parts: http::request::Parts,
        body: Vec<u8>,
        max_attempts: u32,
    ) -> Result<R::IncomingResponse, ClientError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut builder = self
                .http
                .request(parts.method.clone(), parts.uri.to_string())
                .body(body.clone());
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            let outcome = {
                // Never closed (it lives as long as the client), so this cannot fail.
                let _permit = self.in_flight.acquire().await;
                match builder.send().await {
                    Ok(response) => self.read_response::<R>(response).await,
                    Err(e) => Err((ClientError::Transport(e), None)),
                }
            };
            match outcome {
                Ok(response) => return Ok(response),
                Err((error, retry_after)) => {
                    let retryable = match &error {
                        ClientError::Transport(_) => true,
                        ClientError::Matrix { status, .. } => *status == 429 || *status >= 500,
                        _ => false,
                    };
                    if !retryable {
                        return Err(error);
                    }
                    if attempt >= max_attempts {
                        return Err(ClientError::GaveUp {
                            attempts: attempt,
                            last: Box::new(error),
                        });
                    }
                    let delay = retry_after
                        .unwrap_or_else(|| backoff(self.retry.base_delay, attempt))
                        .min(self.retry.max_delay);
                    tracing::warn!(attempt, ?delay, %error, "homeserver request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn read_response<R: OutgoingRequest>(
        &self,
        response: reqwest::Response,
    ) -> Result<R::IncomingResponse, (ClientError, Option<Duration>)> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| (ClientError::Transport(e), None))?;
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let retry_after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .or_else(|| {
                    parsed
                        .as_ref()
                        .and_then(|b| b.retry_after_ms)
                        .map(Duration::from_millis)
                });
            let (errcode, message) = match parsed {
                Some(b) => (
                    b.errcode.unwrap_or_else(|| "M_UNKNOWN".into()),
                    b.error.unwrap_or_default(),
                ),
                None => (
                    "M_UNKNOWN".into(),
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                ),
            };
            return Err((
                ClientError::Matrix {
                    status: status.as_u16(),
                    errcode,
                    message,
                },
                retry_after,
            ));
        }
        let mut builder = http::Response::builder().status(status);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let http_response = builder
            .body(bytes.to_vec())
            .map_err(|e| (ClientError::Response(e.to_string()), None))?;
        R::IncomingResponse::try_from_http_response(http_response)
            .map_err(|e| (ClientError::Response(e.to_string()), None))
    }
}

/// Exponential backoff with a little deterministic spread: 1, 2, 4, ... times `base`.
fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 1), Duration::from_millis(100));
        assert_eq!(backoff(base, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, 4), Duration::from_millis(800));
        assert!(backoff(base, 60) > Duration::from_secs(60));
    }
}
