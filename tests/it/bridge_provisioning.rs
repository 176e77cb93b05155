//! The provisioning API end to end (Synapse, the bridge in-process, the test MSN server, a
//! matrix-sdk user): every endpoint as an integration manager calls it, with its errors
//! (no secret, a wrong one, no user, a user without permission, a wrong password, a
//! login step that is not theirs, a bad address, a logout of another account).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::bridge_e2e::{ALICE, BOB, PUPPET_ALICE, world};
use crate::e2e::{Seen, TURN, new_user, unique};
use crate::support::{self, TestBridge};

const SECRET: &str = "provisioning-secret-for-e2e";

/// Calls the API: (status, body).
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/_matrix/provision/v3/{path}", self.base));
        if let Some(user) = user {
            request = request.query(&[("user_id", user)]);
        }
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the bridge answers");
        let status = answer.status();
        let body = answer.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str, user: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(user), Some(SECRET), None)
            .await
    }

    async fn post(&self, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(user), Some(SECRET), body)
            .await
    }
}

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn e2e_provisioning_api_logs_in_lists_opens_chats_and_logs_out() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (msn, _dir, mut cfg) = world(&hs).await;
    cfg.bridge.provisioning_secret = SECRET.into();
    let bridge = TestBridge::start(cfg.clone()).await;
    let api = Api {
        base: format!("http://127.0.0.1:{}", cfg.appservice.port),
        http: reqwest::Client::new(),
    };
    let mut bob = new_user(&hs, &unique("pbob"), "bob-password-provisioning").await;
    let user = bob.user_id.to_string();

    // Who may call it.
    let get = reqwest::Method::GET;
    let (status, body) = api
        .call(get.clone(), "whoami", Some(&user), None, None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
    let (status, body) = api
        .call(
            get.clone(),
            "whoami",
            Some(&user),
            Some("not-the-secret-at-all"),
            None,
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );
    let (status, body) = api
        .call(get.clone(), "whoami", None, Some(SECRET), None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_MISSING_PARAM")
    );
    let (status, body) = api.get("whoami", "@stranger:elsewhere.example").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not allowed")),
        "{body}"
    );

    // Before the login.
    let (status, body) = api.get("whoami", &user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["logins"], json!([]));
    assert_eq!(body["bridge_bot"], "@msnbot:localhost");
    assert_eq!(body["login_flows"][0]["id"], "password");
    let (status, body) = api.get("contacts", &user).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "NET.MATRIX-MSN.NOT_LOGGED_IN")
    );

    // The login, in its two steps; a wrong password first.
    let (status, body) = api.get("login/flows", &user).await;
    assert_eq!(
        (status, body["flows"][0]["id"].as_str()),
        (StatusCode::OK, Some("password"))
    );
    let (status, body) = api.post("login/start/qr", &user, None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let step = |body: &Value| {
        (
            body["login_id"].as_str().unwrap_or_default().to_owned(),
            body["step_id"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (status, body) = api.post("login/start/password", &user, None).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::OK, Some("user_input")),
        "{body}"
    );
    let fields = body["user_input"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(fields.len(), 2, "e-mail and password: {body}");
    let (login_id, step_id) = step(&body);
    let path = format!("login/step/{login_id}/{step_id}/user_input");
    let (status, body) = api
        .post(
            &path,
            "@other:localhost",
            Some(json!({"email": BOB, "password": "secret"})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
        "not theirs"
    );
    let (status, body) = api
        .post(
            &path,
            &user,
            Some(json!({"email": BOB, "password": "wrong"})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "NET.MATRIX-MSN.WRONG_CREDENTIALS"),
        "{body}"
    );
    let (_, body) = api.post("login/start/password", &user, None).await;
    let (login_id, step_id) = step(&body);
    let path = format!("login/step/{login_id}/{step_id}/user_input");
    let (status, body) = api.post(&path, &user, Some(json!({"email": BOB}))).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    let (status, body) = api
        .post(
            &path,
            &user,
            Some(json!({"email": BOB, "password": "secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "complete");
    assert_eq!(body["complete"]["user_login_id"], BOB);
    let (status, body) = api.post("login/start/password", &user, None).await;
    assert_eq!(status, StatusCode::OK);
    let (login_id, step_id) = step(&body);
    let (status, body) = api
        .post(
            &format!("login/step/{login_id}/{step_id}/user_input"),
            &user,
            Some(json!({"email": BOB, "password": "secret"})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::CONFLICT, "NET.MATRIX-MSN.ALREADY_LOGGED_IN")
    );

    // Status and contacts.
    let (_, body) = api.get("whoami", &user).await;
    assert_eq!(body["logins"][0]["id"], BOB, "{body}");
    assert_eq!(body["logins"][0]["state"]["state_event"], "CONNECTED");
    let (status, body) = api.get("contacts", &user).await;
    assert_eq!(status, StatusCode::OK);
    let contacts = body["contacts"].as_array().cloned().unwrap_or_default();
    let alice = contacts
        .iter()
        .find(|c| c["id"] == ALICE)
        .unwrap_or_else(|| panic!("Alice is a contact: {body}"));
    assert_eq!(alice["mxid"], PUPPET_ALICE);
    assert_eq!(alice["name"], "Alice Ä");

    // A chat: the room the user is invited to.
    let (status, body) = api.post("create_dm/not-an-address", &user, None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, body) = api.post(&format!("create_dm/{ALICE}"), &user, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mxid"], PUPPET_ALICE);
    let room = body["dm_room_mxid"].as_str().unwrap_or_default().to_owned();
    let invited = bob.accept_invite().await;
    assert_eq!(invited.as_str(), room);
    bob.wait_for("Alice's puppet in the chat", |s| {
        matches!(s, Seen::Member { room: r, target, .. } if r.as_str() == room && target == PUPPET_ALICE)
    })
    .await;

    // The logout: of another account, then of theirs.
    let (status, body) = api.post("logout/carol@example.com", &user, None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = api.post(&format!("logout/{BOB}"), &user, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (_, body) = api.get("whoami", &user).await;
    assert_eq!(body["logins"], json!([]));
    let msn_ref = &msn;
    support::poll_until("Bob offline on MSN", || async move {
        msn_ref.online(BOB).is_none()
    })
    .await;
    bridge.stop().await;
}

#[tokio::test]
async fn e2e_provisioning_is_off_without_a_secret() {
    let Some(hs) = support::homeserver_url() else {
        return;
    };
    let _turn = TURN.lock().await;
    let (_msn, _dir, cfg) = world(&hs).await;
    let bridge = TestBridge::start(cfg.clone()).await;
    let answer = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/_matrix/provision/v3/whoami?user_id=@a:localhost",
            cfg.appservice.port
        ))
        .bearer_auth("")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(errcode(&body), "M_UNRECOGNIZED");
    bridge.stop().await;
}
