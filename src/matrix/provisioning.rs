//! The provisioning API over HTTP, in the shape of the mautrix bridges' (v3): for
//! integration managers and scripts, on the appservice port, off unless
//! `bridge.provisioning_secret` is set. Every request carries
//! `Authorization: Bearer <secret>` and `?user_id=` (the Matrix user acted for, who needs
//! the permission the commands need); every error is `{"errcode", "error"}`.
//!
//! - `GET  /_matrix/provision/v3/whoami`: the user's login, rooms and the bridge.
//! - `GET  /_matrix/provision/v3/login/flows`: the one flow, `password`.
//! - `POST /_matrix/provision/v3/login/start/password`: a login process and its step,
//!   asking for the e-mail address and password.
//! - `POST /_matrix/provision/v3/login/step/{login_id}/{step_id}/user_input` with
//!   `{"email", "password"}`: logs in; the step `complete` names the login.
//! - `POST /_matrix/provision/v3/logout/{login_id}` (the account, or `all`).
//! - `GET  /_matrix/provision/v3/contacts`: the contact list.
//! - `POST /_matrix/provision/v3/create_dm/{address}`: the portal with a contact.
//!
//! The core does the work ([`Provisioner`]); this module knows the routes and shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::appservice::{MatrixError, bearer, token_matches};
use crate::bridge::LoginStatus;
use crate::bridge::provision::{Contact, ProvisionError, Provisioner, Whoami};
use crate::bridge::remote::LoginFailure;

/// The one login flow.
const FLOW: &str = "password";
/// The step that asks for the credentials.
const STEP_CREDENTIALS: &str = "net.matrix-msn.enter_credentials";
/// The step that says the login is done.
const STEP_COMPLETE: &str = "net.matrix-msn.complete";
/// How long a started login waits for its credentials.
const LOGIN_PROCESS_TTL: Duration = Duration::from_secs(600);
/// Most login processes kept at once (the oldest go first).
const MAX_LOGIN_PROCESSES: usize = 1024;

/// What the routes need.
#[derive(Clone)]
pub struct Provisioning {
    provisioner: Arc<dyn Provisioner>,
    secret: Arc<str>,
    bot: OwnedUserId,
    homeserver: String,
    command_prefix: String,
    /// Login processes by id: whose, and since when.
    logins: Arc<Mutex<HashMap<String, (OwnedUserId, Instant)>>>,
}

impl Provisioning {
    /// The API of `provisioner`, guarded by `secret`.
    pub fn new(
        provisioner: Arc<dyn Provisioner>,
        secret: &str,
        bot: OwnedUserId,
        homeserver: &str,
        command_prefix: &str,
    ) -> Self {
        Self {
            provisioner,
            secret: Arc::from(secret),
            bot,
            homeserver: homeserver.to_owned(),
            command_prefix: command_prefix.to_owned(),
            logins: Arc::default(),
        }
    }

    fn logins(&self) -> std::sync::MutexGuard<'_, HashMap<String, (OwnedUserId, Instant)>> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The routes, with their authentication.
pub fn router(state: Provisioning) -> Router {
    Router::new()
        .route("/_matrix/provision/v3/whoami", get(whoami))
        .route("/_matrix/provision/v3/login/flows", get(flows))
        .route(
            "/_matrix/provision/v3/login/start/{flow}",
            post(login_start),
        )
        .route(
            "/_matrix/provision/v3/login/step/{login_id}/{step_id}/user_input",
            post(login_step),
        )
        .route("/_matrix/provision/v3/logout/{login_id}", post(logout))
        .route("/_matrix/provision/v3/contacts", get(contacts))
        .route(
            "/_matrix/provision/v3/create_dm/{identifier}",
            post(create_dm),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

#[derive(Deserialize)]
struct UserQuery {
    user_id: Option<String>,
}

/// The Matrix user a request acts for, checked by [`authenticate`].
#[derive(Clone)]
struct ActingFor(OwnedUserId);

/// Checks the shared secret and reads `?user_id=`.
async fn authenticate(
    State(state): State<Provisioning>,
    Query(query): Query<UserQuery>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    match bearer(&headers) {
        None => {
            return MatrixError::new(
                StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "missing the provisioning secret (Authorization: Bearer …)",
            )
            .into_response();
        }
        Some(secret) if !token_matches(secret, &state.secret) => {
            tracing::warn!("provisioning request with a wrong secret");
            return MatrixError::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "wrong provisioning secret",
            )
            .into_response();
        }
        Some(_) => {}
    }
    let Some(raw) = query.user_id else {
        return MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "missing ?user_id= (the Matrix user to act for)",
        )
        .into_response();
    };
    let Ok(user) = UserId::parse(raw.as_str()) else {
        return MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("{raw:?} is not a Matrix user ID"),
        )
        .into_response();
    };
    request.extensions_mut().insert(ActingFor(user));
    next.run(request).await
}

/// A provisioning failure as the API answers it.
fn failure(error: ProvisionError) -> MatrixError {
    let (status, errcode) = match &error {
        ProvisionError::NotAllowed(_) => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        ProvisionError::NotLoggedIn => (StatusCode::BAD_REQUEST, "NET.MATRIX-MSN.NOT_LOGGED_IN"),
        ProvisionError::AlreadyLoggedIn(_) => {
            (StatusCode::CONFLICT, "NET.MATRIX-MSN.ALREADY_LOGGED_IN")
        }
        ProvisionError::BadAddress(_) => (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ProvisionError::Login(LoginFailure::WrongCredentials) => {
            (StatusCode::FORBIDDEN, "NET.MATRIX-MSN.WRONG_CREDENTIALS")
        }
        ProvisionError::Login(_) => (StatusCode::BAD_GATEWAY, "NET.MATRIX-MSN.LOGIN_FAILED"),
        ProvisionError::Failed(_) => (StatusCode::BAD_GATEWAY, "M_UNKNOWN"),
    };
    MatrixError::new(status, errcode, error.to_string())
}

type Answer = Result<Json<Value>, MatrixError>;

fn flow() -> Value {
    json!({
        "id": FLOW,
        "name": "E-mail address and password",
        "description": "Log in with the e-mail address and password of your MSN (Passport) account.",
    })
}

async fn whoami(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
) -> Answer {
    let who = state.provisioner.whoami(&user).await.map_err(failure)?;
    Ok(Json(whoami_body(&state, &who)))
}

fn whoami_body(state: &Provisioning, who: &Whoami) -> Value {
    let login = |account: &str, event: &str, info: Value| {
        json!({
            "id": account,
            "name": account,
            "state": { "state_event": event, "info": info },
            "space_room": who.space,
        })
    };
    let logins: Vec<Value> = match &who.login {
        LoginStatus::Connected {
            account,
            version,
            notes,
        } => vec![login(
            account,
            "CONNECTED",
            json!({ "protocol": format!("MSNP{version}"), "server": who.server, "notes": notes }),
        )],
        LoginStatus::Reconnecting { account } => {
            vec![login(
                account,
                "TRANSIENT_DISCONNECT",
                json!({ "server": who.server }),
            )]
        }
        LoginStatus::BadCredentials { account } => vec![login(
            account,
            "BAD_CREDENTIALS",
            json!({ "error": "MSN refused the stored password" }),
        )],
        LoginStatus::SignedInElsewhere { account } => vec![login(
            account,
            "UNKNOWN_ERROR",
            json!({ "error": "signed in from another place" }),
        )],
        LoginStatus::LoggedOut => Vec::new(),
    };
    json!({
        "network": { "displayname": "MSN", "network_id": "msn", "beeper_bridge_type": "matrix-msn" },
        "login_flows": [flow()],
        "homeserver": state.homeserver,
        "bridge_bot": state.bot,
        "command_prefix": state.command_prefix,
        "management_room": who.management_room,
        "logins": logins,
    })
}

async fn flows() -> Json<Value> {
    Json(json!({ "flows": [flow()] }))
}

async fn login_start(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
    Path(requested): Path<String>,
) -> Answer {
    if requested != FLOW {
        return Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            format!("no login flow {requested:?}; the one flow is {FLOW:?}"),
        ));
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| {
        MatrixError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            format!("no randomness for a login id: {e}"),
        )
    })?;
    let login_id: String = random.iter().map(|b| format!("{b:02x}")).collect();
    {
        let mut logins = state.logins();
        logins.retain(|_, (_, started)| started.elapsed() < LOGIN_PROCESS_TTL);
        if logins.len() >= MAX_LOGIN_PROCESSES
            && let Some(oldest) = logins
                .iter()
                .min_by_key(|(_, (_, started))| *started)
                .map(|(id, _)| id.clone())
        {
            logins.remove(&oldest);
        }
        logins.insert(login_id.clone(), (user, Instant::now()));
    }
    Ok(Json(json!({
        "login_id": login_id,
        "type": "user_input",
        "step_id": STEP_CREDENTIALS,
        "instructions": "Enter the e-mail address and password of your MSN account.",
        "user_input": { "fields": [
            { "type": "email", "id": "email", "name": "E-mail address" },
            { "type": "password", "id": "password", "name": "Password" },
        ]},
    })))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn login_step(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
    Path((login_id, step_id)): Path<(String, String)>,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    let theirs = state
        .logins()
        .get(&login_id)
        .is_some_and(|(owner, started)| *owner == user && started.elapsed() < LOGIN_PROCESS_TTL);
    if !theirs || step_id != STEP_CREDENTIALS {
        return Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "no such login step for this user (start a login first; it lasts 10 minutes)",
        ));
    }
    let Json(credentials) = body.map_err(|e| {
        MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            format!("expected {{\"email\", \"password\"}}: {}", e.body_text()),
        )
    })?;
    state.logins().remove(&login_id);
    let who = state
        .provisioner
        .login(&user, &credentials.email, &credentials.password)
        .await
        .map_err(failure)?;
    let account = match &who.login {
        LoginStatus::Connected { account, .. } | LoginStatus::Reconnecting { account } => {
            account.clone()
        }
        _ => credentials.email,
    };
    Ok(Json(json!({
        "login_id": login_id,
        "type": "complete",
        "step_id": STEP_COMPLETE,
        "instructions": format!("Logged in to MSN as {account}."),
        "complete": { "user_login_id": account },
    })))
}

async fn logout(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
    Path(login_id): Path<String>,
) -> Answer {
    let who = state.provisioner.whoami(&user).await.map_err(failure)?;
    let current = match &who.login {
        LoginStatus::Connected { account, .. } | LoginStatus::Reconnecting { account } => {
            Some(account.as_str())
        }
        _ => None,
    };
    let named = login_id == "all" || current.is_some_and(|a| a.eq_ignore_ascii_case(&login_id));
    if current.is_none() || !named {
        return Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            format!("{login_id:?} is not a login of this user"),
        ));
    }
    state.provisioner.logout(&user).await.map_err(failure)?;
    Ok(Json(json!({})))
}

fn contact_body(contact: &Contact) -> Value {
    let info = &contact.info;
    json!({
        "id": info.address.as_str(),
        "name": info.name,
        "identifiers": [format!("msn:{}", info.address)],
        "mxid": contact.puppet,
        "status": info.availability.describe(),
        "personal_message": info.personal_message,
        "blocked": info.blocked,
    })
}

async fn contacts(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
) -> Answer {
    let contacts = state.provisioner.contacts(&user).await.map_err(failure)?;
    let contacts: Vec<Value> = contacts.iter().map(contact_body).collect();
    Ok(Json(json!({ "contacts": contacts })))
}

async fn create_dm(
    State(state): State<Provisioning>,
    axum::Extension(ActingFor(user)): axum::Extension<ActingFor>,
    Path(identifier): Path<String>,
) -> Answer {
    let address = identifier.strip_prefix("msn:").unwrap_or(&identifier);
    let (room, contact) = state
        .provisioner
        .start_chat(&user, address)
        .await
        .map_err(failure)?;
    let mut body = contact_body(&contact);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("dm_room_mxid".into(), json!(room));
    }
    Ok(Json(body))
}
