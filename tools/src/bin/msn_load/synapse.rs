//! `--synapse` mode: a dedicated Synapse, started and stopped with the project's
//! `scripts/synapse-up.sh` / `synapse-down.sh`, and the Matrix users' side of the load run
//! against it: users registered with the shared-secret admin API, DMs with the bot, joins
//! and sends over the client-server API, and one `/sync` long-poll loop per user feeding
//! what the bridge sent into the same [`Observer`] the stand-in mode uses.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Observer;
use msn_testkit::synapse::{SHARED_SECRET, registration_mac};

/// Longest a request (other than a sync long-poll) may take.
const REQUEST: Duration = Duration::from_secs(30);
/// How long the server holds a `/sync` open; the request itself gets 30 s more.
const SYNC_HOLD_MS: u64 = 10_000;
/// Enough timeline per room that a burst between two syncs is never cut (`limited`).
const SYNC_FILTER: &str =
    r#"{"room":{"timeline":{"limit":1000}},"presence":{"types":[]},"account_data":{"types":[]}}"#;

fn script(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("scripts")
        .join(name)
}

/// A Synapse started by `synapse-up.sh`; stopped by `synapse-down.sh` when dropped.
pub struct SynapseProcess {
    dir: PathBuf,
    pub url: String,
}

impl SynapseProcess {
    /// Starts Synapse from `dir` on `port` with `registration`, waiting at most `limit`
    /// (the script installs Synapse first if it is not cached).
    pub fn start(dir: &Path, registration: &Path, port: u16, limit: Duration) -> Result<Self> {
        Self::run_up(dir, registration, port, limit, false)
    }

    /// Stops this Synapse and starts it again on its data (a restart, as an upgrade does).
    #[allow(dead_code)] // msn-fault's; msn-load includes this file too.
    pub fn restart(&mut self, registration: &Path, port: u16, limit: Duration) -> Result<()> {
        self.stop();
        let again = Self::run_up(&self.dir, registration, port, limit, true)?;
        self.url = again.url.clone();
        // `again` and `self` name the same Synapse: only one may stop it.
        std::mem::forget(again);
        Ok(())
    }

    fn run_up(
        dir: &Path,
        registration: &Path,
        port: u16,
        limit: Duration,
        keep_data: bool,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out_path = dir.join("synapse-up.out");
        let mut command = Command::new(script("synapse-up.sh"));
        command
            .arg(dir)
            .arg(registration)
            .env("SYNAPSE_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(File::create(&out_path)?);
        if keep_data {
            command.env("SYNAPSE_KEEP_DATA", "1");
        }
        let mut child = command.spawn().context("running scripts/synapse-up.sh")?;
        // From here on, whatever happens, the drop guard runs synapse-down.sh.
        let mut started = Self {
            dir: dir.to_owned(),
            url: String::new(),
        };
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("synapse-up.sh did not finish within {} s", limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !status.success() {
            bail!("synapse-up.sh failed ({status}); its reason is above");
        }
        started.url = std::fs::read_to_string(&out_path)?.trim().to_owned();
        if !started.url.starts_with("http") {
            bail!("synapse-up.sh printed {:?}, not a URL", started.url);
        }
        Ok(started)
    }
}

impl SynapseProcess {
    /// The pid Synapse wrote (it daemonizes, so it is not the script's child).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("synapse.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for SynapseProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SynapseProcess {
    fn stop(&self) {
        match Command::new(script("synapse-down.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("synapse-down.sh {}: {status}", self.dir.display()),
            Err(e) => eprintln!("cannot run synapse-down.sh: {e}"),
        }
    }
}

/// The Matrix users' side against a real Synapse.
pub struct Synapse {
    url: url::Url,
    http: reqwest::Client,
    bot: String,
    observer: Arc<Observer>,
    pid: Option<u32>,
    /// Access token per registered user.
    tokens: Mutex<HashMap<String, String>>,
    txn: AtomicU64,
    requests: Arc<AtomicU64>,
    syncs: Arc<AtomicU64>,
    /// Ends the sync loops.
    stop: CancellationToken,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Synapse {
    pub fn new(url: &str, pid: Option<u32>, bot: &str, observer: Arc<Observer>) -> Result<Self> {
        Ok(Self {
            url: url::Url::parse(url).with_context(|| format!("homeserver URL {url:?}"))?,
            http: reqwest::Client::builder().timeout(REQUEST).build()?,
            bot: bot.to_owned(),
            observer,
            pid,
            tokens: Mutex::default(),
            txn: AtomicU64::new(0),
            requests: Arc::default(),
            syncs: Arc::default(),
            stop: CancellationToken::new(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn summary(&self) -> String {
        format!(
            "Synapse at {}: {} users, {} client requests, {} sync responses",
            self.url,
            self.tokens.lock().unwrap_or_else(|e| e.into_inner()).len(),
            self.requests.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed)
        )
    }

    /// `/_matrix/client/v3/` followed by `segments`, each percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Result<url::Url> {
        endpoint(&self.url, segments)
    }

    fn token(&self, mxid: &str) -> Result<String> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(mxid)
            .cloned()
            .with_context(|| format!("{mxid} is not registered"))
    }

    /// Sends `request` as `mxid` (when given) and returns the JSON answer, failing on a
    /// non-2xx status with Synapse's error body.
    async fn call(&self, mxid: Option<&str>, request: reqwest::RequestBuilder) -> Result<Value> {
        let request = match mxid {
            Some(mxid) => request.bearer_auth(self.token(mxid)?),
            None => request,
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("answer {text:?}"))
    }

    /// Registers `localpart` with the shared secret (nonce + HMAC-SHA1) and, with `sync`,
    /// starts its sync loop once the initial sync is done (a user that only sends needs
    /// none, and each one is load on Synapse).
    pub async fn register(&self, mxid: &str, sync: bool) -> Result<()> {
        let localpart = mxid
            .strip_prefix('@')
            .and_then(|s| s.split(':').next())
            .with_context(|| format!("not a user ID: {mxid}"))?;
        let password = format!("{localpart}-load-password");
        let url = self.url.join("_synapse/admin/v1/register")?;
        let nonce = self.call(None, self.http.get(url.clone())).await?;
        let nonce = nonce["nonce"].as_str().context("no nonce")?;
        let mac = registration_mac(SHARED_SECRET, nonce, localpart, &password, false);
        let body = json!({"nonce": nonce, "username": localpart, "password": password,
            "admin": false, "mac": mac});
        let answer = self
            .call(None, self.http.post(url).json(&body))
            .await
            .with_context(|| format!("registering {mxid}"))?;
        let token = answer["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        if answer["user_id"].as_str() != Some(mxid) {
            bail!("registered {:?}, not {mxid}", answer["user_id"]);
        }
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mxid.to_owned(), token.clone());
        if !sync {
            return Ok(());
        }
        let mut sync = SyncLoop {
            http: self.http.clone(),
            base: self.url.clone(),
            token,
            mxid: mxid.to_owned(),
            bot: self.bot.clone(),
            observer: self.observer.clone(),
            syncs: self.syncs.clone(),
            since: None,
        };
        sync.once(0).await.context("initial sync")?;
        let stop = self.stop.clone();
        tokio::spawn(async move { sync.run(stop).await });
        Ok(())
    }

    /// Registers `mxid` if needed and creates a DM with the bot (`is_direct`, bot invited).
    pub async fn open_dm(&self, mxid: &str) -> Result<String> {
        let bot = self.bot.clone();
        self.create_room(mxid, &[&bot], true)
            .await
            .with_context(|| format!("{mxid} creating a DM with the bot"))
    }

    /// Registers `creator` (with its sync loop) if needed and creates a private room
    /// inviting `invite`.
    pub async fn create_room(
        &self,
        creator: &str,
        invite: &[&str],
        direct: bool,
    ) -> Result<String> {
        let known = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(creator);
        if !known {
            self.register(creator, true).await?;
        }
        let body = json!({"preset": "trusted_private_chat", "is_direct": direct,
            "invite": invite});
        let answer = self
            .call(
                Some(creator),
                self.http.post(self.endpoint(&["createRoom"])?).json(&body),
            )
            .await?;
        Ok(answer["room_id"]
            .as_str()
            .context("createRoom gave no room_id")?
            .to_owned())
    }

    pub async fn join(&self, room: &str, mxid: &str) -> Result<()> {
        let url = self.endpoint(&["join", room])?;
        self.call(Some(mxid), self.http.post(url).json(&json!({})))
            .await
            .with_context(|| format!("{mxid} joining {room}"))?;
        Ok(())
    }

    pub async fn say(&self, room: &str, mxid: &str, body: &str) -> Result<()> {
        let txn = format!("load{}", self.txn.fetch_add(1, Ordering::Relaxed));
        self.say_with_txn(room, mxid, body, &txn).await
    }

    /// [`Synapse::say`] with the client's own transaction ID, so that sending again after
    /// a failure cannot post the message twice.
    pub async fn say_with_txn(&self, room: &str, mxid: &str, body: &str, txn: &str) -> Result<()> {
        let url = self.endpoint(&["rooms", room, "send", "m.room.message", txn])?;
        let content = json!({"msgtype": "m.text", "body": body});
        self.call(Some(mxid), self.http.put(url).json(&content))
            .await
            .with_context(|| format!("{mxid} sending into {room}"))?;
        Ok(())
    }

    /// Sends every `(room, user, body)` at once, each on its own task.
    pub async fn say_all(self: &Arc<Self>, batch: &[(String, String, String)]) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for item in batch {
            let (room, mxid, body) = item.clone();
            let me = self.clone();
            tasks.spawn(async move { me.say(&room, &mxid, &body).await });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(())
    }
}

fn endpoint(base: &url::Url, segments: &[&str]) -> Result<url::Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base} cannot be a base URL"))?
        .pop_if_empty()
        .extend(["_matrix", "client", "v3"])
        .extend(segments);
    Ok(url)
}

/// One user's `/sync` long-poll: records the bot's and puppets' messages (with the instant
/// the response arrived) and the bot's joins, and joins every room the user is invited to
/// (the portals).
struct SyncLoop {
    http: reqwest::Client,
    base: url::Url,
    token: String,
    mxid: String,
    bot: String,
    observer: Arc<Observer>,
    syncs: Arc<AtomicU64>,
    since: Option<String>,
}

impl SyncLoop {
    async fn run(mut self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.once(SYNC_HOLD_MS) => r,
            };
            if let Err(e) = result {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    eprintln!("sync of {} failed ({failures}×): {e:#}", self.mxid);
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }

    async fn once(&mut self, hold_ms: u64) -> Result<()> {
        let url = endpoint(&self.base, &["sync"])?;
        let mut query = vec![
            ("timeout", hold_ms.to_string()),
            ("filter", SYNC_FILTER.to_owned()),
        ];
        if let Some(since) = &self.since {
            query.push(("since", since.clone()));
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .query(&query)
            .timeout(Duration::from_millis(hold_ms) + REQUEST)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        let at = Instant::now();
        if !status.is_success() {
            bail!("sync: {status}: {text}");
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let body: Value = serde_json::from_str(&text).context("sync answer")?;
        self.since = Some(
            body["next_batch"]
                .as_str()
                .context("sync without next_batch")?
                .to_owned(),
        );
        self.record(at, &body);
        Ok(())
    }

    fn record(&self, at: Instant, body: &Value) {
        if let Some(joined) = body["rooms"]["join"].as_object() {
            for (room, data) in joined {
                let state = data["state"]["events"].as_array().into_iter().flatten();
                let timeline = data["timeline"]["events"].as_array().into_iter().flatten();
                for event in state.chain(timeline) {
                    self.event(at, room, event);
                }
            }
        }
        if let Some(invited) = body["rooms"]["invite"].as_object() {
            for room in invited.keys() {
                let (http, base, token) =
                    (self.http.clone(), self.base.clone(), self.token.clone());
                let (room, mxid) = (room.clone(), self.mxid.clone());
                tokio::spawn(async move {
                    let joined = async {
                        let url = endpoint(&base, &["join", &room])?;
                        let r = http
                            .post(url)
                            .bearer_auth(token)
                            .json(&json!({}))
                            .send()
                            .await?;
                        anyhow::Ok(r.error_for_status()?)
                    };
                    if let Err(e) = joined.await {
                        eprintln!("{mxid} cannot join {room}: {e:#}");
                    }
                });
            }
        }
    }

    fn event(&self, at: Instant, room: &str, event: &Value) {
        let sender = event["sender"].as_str().unwrap_or_default();
        match event["type"].as_str() {
            Some("m.room.message") if sender != self.mxid => {
                let body = event["content"]["body"].as_str().unwrap_or_default();
                let event_id = event["event_id"].as_str().unwrap_or_default();
                self.observer.message(at, room, body, event_id);
            }
            Some("m.room.member")
                if event["state_key"].as_str() == Some(self.bot.as_str())
                    && event["content"]["membership"].as_str() == Some("join") =>
            {
                self.observer.bot_joined(room);
            }
            _ => {}
        }
    }
}
