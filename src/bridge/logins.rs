//! Logins: `login`, `logout`, `status`, `reconnect`, restoring logins after a bridge
//! restart, and each session's event loop, which turns MSN events into Matrix actions.
//! The password is kept only sealed (see `credentials.rs`) and never logged.

use ruma::{EventId, OwnedUserId, RoomId, UserId};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::credentials::Password;
use super::ids::MsnAddress;
use super::readiness::Phase;
use super::registry::Login;
use super::remote::{
    Availability, LoginFailure, MsnConnector, MsnSessionPort, OwnProfile, RemoteEvent, SessionEnd,
};
use super::{Bridge, MatrixPort, commands, lock};
use crate::config::PermissionLevel;
use crate::store::BridgeUser;

/// Login states as stored (`bridge_user.login_state`).
pub(super) const CONNECTED: &str = "connected";
const LOGGED_OUT: &str = "logged_out";
/// `login <email>` was sent; the password is the next message.
const AWAITING_PASSWORD: &str = "awaiting_password";
/// How long the password of a two-step login is waited for.
const PASSWORD_WAIT: Duration = Duration::from_secs(300);
const BAD_CREDENTIALS: &str = "bad_credentials";
const SIGNED_IN_ELSEWHERE: &str = "signed_in_elsewhere";

/// Connection notices closer together than this are not sent (a flapping link).
const NOTICE_GAP: Duration = Duration::from_secs(60);

/// What a user was told about their connection, to keep notices few.
#[derive(Debug, Default)]
pub(super) struct StatusMemo {
    connected: bool,
    told_lost: bool,
    last_lost_notice: Option<Instant>,
}

/// Where a user's MSN login stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginStatus {
    /// Connected on MSNP`version`; `notes` say what the session offers.
    Connected {
        account: String,
        version: u8,
        notes: Vec<String>,
    },
    /// Logged in, the connection being restored.
    Reconnecting { account: String },
    /// MSN refused the stored password.
    BadCredentials { account: String },
    /// Signed out by a sign-in from another place.
    SignedInElsewhere { account: String },
    /// Not logged in.
    LoggedOut,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Whether a restart logs `user` back in: they were logged in, and the config still
    /// lets them use the bridge.
    pub(super) fn restorable(&self, user: &BridgeUser) -> bool {
        user.login_state == CONNECTED
            && self.config.permission_of(&user.mxid) != PermissionLevel::None
    }

    pub(super) async fn cmd_login(
        self: &Arc<Self>,
        cx: &commands::Context<'_>,
        args: &[&str],
    ) -> String {
        let Some(typed) = args.first() else {
            return "Usage: `login <email> [password]`.".into();
        };
        let Some(account) = MsnAddress::parse(typed).map(|a| a.to_string()) else {
            return format!("`{typed}` does not look like an MSN address (name@domain).");
        };
        if let Some(current) = self.users.get(cx.sender).and_then(|u| u.account()) {
            return format!("You are already logged in as {current}. Send `logout` first.");
        }
        match args.get(1..).filter(|rest| !rest.is_empty()) {
            Some(rest) => {
                // The password was in the command: take it out of the room first.
                self.redact_secret(cx.room_id, cx.event_id).await;
                let password = rest.join(" ");
                self.login_with_password(cx.sender, cx.room_id, cx.event_id, &account, &password)
                    .await;
                String::new()
            }
            None => {
                // Noted in the store too: a restart meanwhile must not leave the password
                // to be read as a command (see `take_awaited_password`).
                if let Err(e) = self
                    .store
                    .set_login(cx.sender, Some(&account), AWAITING_PASSWORD, None)
                    .await
                {
                    tracing::warn!(error = %e, "cannot note the awaited password");
                }
                *lock(&self.users.entry(cx.sender).awaiting_password) =
                    Some((account.clone(), Instant::now()));
                format!(
                    "Send the password of {account} as your next message here. I will redact it as soon as I read it."
                )
            }
        }
    }

    /// A message in the management room while a password may be awaited. Returns whether
    /// it was taken (as the password, or redacted as one that came too late: after a
    /// bridge restart); `false` when it is to be read as a command.
    pub(super) async fn take_awaited_password(
        self: &Arc<Self>,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        body: &str,
    ) -> bool {
        let waiting = self
            .users
            .get(sender)
            .and_then(|user| lock(&user.awaiting_password).take());
        if waiting.is_some() {
            // No longer awaited, whatever comes of this message.
            let _ = self.store.set_login_state(sender, LOGGED_OUT).await;
        }
        match waiting {
            Some((account, asked)) if asked.elapsed() <= PASSWORD_WAIT => {
                self.redact_secret(room_id, event_id).await;
                self.login_with_password(sender, room_id, event_id, &account, body.trim())
                    .await;
                true
            }
            // Too late: the message is read as a command.
            Some(_) => false,
            None => {
                let noted = self.store.user(sender).await.ok().flatten();
                if noted.is_none_or(|u| u.login_state != AWAITING_PASSWORD) {
                    return false;
                }
                // The bridge restarted between `login <email>` and this message, which
                // may be the password: take it out of the room, and start over.
                self.redact_secret(room_id, event_id).await;
                let _ = self.store.set_login_state(sender, LOGGED_OUT).await;
                let txn = format!("reply-{event_id}");
                let text = "The bridge restarted while it waited for your password, so I removed your message in case it was the password. Send `login <email>` again.";
                self.reply(room_id, &txn, text, None).await;
                true
            }
        }
    }

    /// Logs in and reports the outcome in the management room.
    pub(super) async fn login_with_password(
        self: &Arc<Self>,
        mxid: &UserId,
        room_id: &RoomId,
        event_id: &EventId,
        account: &str,
        password: &str,
    ) {
        let txn = |step: &str| format!("login-{step}-{event_id}");
        self.reply(
            room_id,
            &txn("start"),
            &format!("Logging in to MSN as {account}…"),
            None,
        )
        .await;
        match self.log_in(mxid, account, password).await {
            Ok(version) => {
                let text = format!(
                    "Logged in to MSN as {account} (MSNP{version} on {}). Your contacts will appear as Matrix users; messages open chat rooms.",
                    self.msn.server()
                );
                self.reply(room_id, &txn("done"), &text, None).await;
            }
            Err(e) => {
                self.reply(
                    room_id,
                    &txn("failed"),
                    &format!("Login failed: {e}."),
                    None,
                )
                .await;
            }
        }
    }

    /// Logs `mxid` in as `account` (a command or the provisioning API): the protocol
    /// version, or why not. The user's space is made (and filled) at their first login;
    /// restored logins meet theirs when a new portal needs it.
    pub(super) async fn log_in(
        self: &Arc<Self>,
        mxid: &UserId,
        account: &str,
        password: &str,
    ) -> Result<u8, LoginFailure> {
        self.set_phase(mxid, Phase::Coming);
        let connected = self
            .connect(mxid, account, &Password::new(password), Connect::UnlessUp)
            .await;
        match &connected {
            Ok(_) => {
                let bridge = self.clone();
                let user = mxid.to_owned();
                tokio::spawn(
                    async move { bridge.ensure_space(&user).await }
                        .instrument(tracing::info_span!("space", mxid = %mxid)),
                );
            }
            Err(_) => self.set_phase(mxid, Phase::Down),
        }
        connected
    }

    /// The user's MSN endpoint id, chosen at the first login and kept in the store.
    async fn machine_guid(&self, mxid: &UserId) -> Result<String, LoginFailure> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| LoginFailure::Other(format!("no randomness for the endpoint id: {e}")))?;
        let fresh = super::ids::machine_guid(random);
        self.store
            .machine_guid(mxid, &fresh)
            .await
            .map_err(|e| LoginFailure::Other(format!("cannot store the endpoint id: {e}")))
    }

    /// Logs `account` in for `mxid`, stores the sealed password, and starts the event loop.
    async fn connect(
        self: &Arc<Self>,
        mxid: &UserId,
        account: &str,
        password: &Password,
        how: Connect,
    ) -> Result<u8, LoginFailure> {
        // One at a time per user: a login command in the first moments after a restart
        // and the restore of the stored login must not both sign in (the second would
        // sign the first out, as the same endpoint).
        let user = self.users.entry(mxid);
        let _one_at_a_time = user.connecting.lock().await;
        if how == Connect::UnlessUp
            && let Some(session) = user.session()
        {
            tracing::info!("already logged in meanwhile");
            return Ok(session.protocol_version());
        }
        // A few at a time: a burst of logins (many users at once) neither floods the MSN
        // server nor lifts the bridge's memory high-water mark for good.
        let _turn = self
            .login_permits
            .acquire()
            .await
            .map_err(|e| LoginFailure::Other(e.to_string()))?;
        let mut profile = OwnProfile {
            status: self.current_own_status(mxid).await,
            ..OwnProfile::default()
        };
        if self.config.msn.sync_display_name {
            match self.matrix.displayname(mxid).await {
                Ok(name) => profile.friendly_name = name.filter(|n| !n.trim().is_empty()),
                Err(e) => tracing::debug!(error = %e, "cannot read the user's display name"),
            }
        }
        let avatar = match self.matrix.avatar_url(mxid).await {
            Ok(avatar) => avatar,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the user's avatar");
                None
            }
        };
        profile.picture = self.own_picture(avatar.as_deref()).await;
        profile.endpoint = Some(self.machine_guid(mxid).await?);
        // What the MSN picture shows, unknown while the avatar could not be downloaded.
        let shown_avatar = (avatar.is_none() || profile.picture.is_some())
            .then(|| avatar.clone().unwrap_or_default());
        let profile_status = profile.status;
        let (session, mut events) = self.msn.login(account, password.expose(), profile).await?;
        let sealed = self
            .credentials
            .seal(password)
            .map_err(|e| LoginFailure::Other(e.to_string()))?;
        if let Err(e) = self
            .store
            .set_login(mxid, Some(account), CONNECTED, Some(&sealed))
            .await
        {
            tracing::error!(error = %e, "cannot store the login");
        }
        let version = session.protocol_version();
        let user = self.users.entry(mxid);
        *lock(&user.own_status) = Some(profile_status);
        if let Some(shown) = shown_avatar {
            *lock(&user.own_avatar) = Some(shown);
        }
        let generation = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *lock(&user.login) = Some(Login {
            account: account.to_owned(),
            session: session.clone(),
            generation,
        });
        self.set_phase(mxid, Phase::Up);
        let bridge = self.clone();
        let user = mxid.to_owned();
        let span = tracing::info_span!("user", mxid = %user);
        tokio::spawn(
            async move {
                // Until the session ends, or the bridge stops (its store closes then).
                loop {
                    let event = tokio::select! {
                        () = bridge.shutdown.cancelled() => break,
                        event = events.recv() => event,
                    };
                    let Some(event) = event else { break };
                    // Boxed: handling an event can go deep (a picture fetch, an upload),
                    // and an idle session's task should not carry that state's size.
                    Box::pin(bridge.on_remote(&user, (&session, generation), event)).await;
                }
            }
            .instrument(span),
        );
        Ok(version)
    }

    pub(super) async fn cmd_logout(&self, mxid: &UserId) -> String {
        match self.log_out(mxid).await {
            Some(account) => {
                format!("Logged out of MSN ({account}). Your stored password is deleted.")
            }
            None => "You are not logged in.".into(),
        }
    }

    /// Logs `mxid` out and forgets their password: the account they were logged in as.
    pub(super) async fn log_out(&self, mxid: &UserId) -> Option<String> {
        let login = self.users.get(mxid).and_then(|user| user.take_login());
        self.set_phase(mxid, Phase::Down);
        self.set_connected(mxid, false, |memo| {
            *memo = StatusMemo::default();
            false
        });
        if let Err(e) = self.store.set_login(mxid, None, LOGGED_OUT, None).await {
            tracing::error!(error = %e, "cannot store the logout");
        }
        let login = login?;
        login.session.logout().await;
        Some(login.account)
    }

    pub(super) async fn cmd_status(&self, mxid: &UserId) -> String {
        let server = self.msn.server();
        match self.login_status(mxid).await {
            LoginStatus::Connected {
                account,
                version,
                notes,
            } => {
                let mut text =
                    format!("Logged in as {account}: connected, MSNP{version}, server {server}.");
                for note in notes {
                    text.push('\n');
                    text.push_str(&note);
                }
                text
            }
            LoginStatus::Reconnecting { account } => format!(
                "Logged in as {account}: reconnecting to {server} (messages wait until the connection is back)."
            ),
            LoginStatus::BadCredentials { account } => format!(
                "Not logged in: MSN refused the stored password of {account}. Send `login` again."
            ),
            LoginStatus::SignedInElsewhere { account } => format!(
                "Not logged in: {account} signed in from another place. Send `reconnect` to take the session back."
            ),
            LoginStatus::LoggedOut => "Not logged in. Send `login <email>` to start.".into(),
        }
    }

    /// Where `mxid`'s MSN login stands.
    pub(super) async fn login_status(&self, mxid: &UserId) -> LoginStatus {
        let live = self.users.get(mxid).and_then(|user| {
            lock(&user.login).as_ref().map(|l| {
                (
                    l.account.clone(),
                    l.session.is_connected(),
                    l.session.protocol_version(),
                    l.session.notes(),
                )
            })
        });
        match live {
            Some((account, true, version, notes)) => LoginStatus::Connected {
                account,
                version,
                notes,
            },
            Some((account, false, _, _)) => LoginStatus::Reconnecting { account },
            None => match self.store.user(mxid).await {
                Ok(Some(user)) if user.login_state == BAD_CREDENTIALS => {
                    LoginStatus::BadCredentials {
                        account: user.msn_login.unwrap_or_default(),
                    }
                }
                Ok(Some(user)) if user.login_state == SIGNED_IN_ELSEWHERE => {
                    LoginStatus::SignedInElsewhere {
                        account: user.msn_login.unwrap_or_default(),
                    }
                }
                _ => LoginStatus::LoggedOut,
            },
        }
    }

    pub(super) async fn cmd_reconnect(self: &Arc<Self>, cx: &commands::Context<'_>) -> String {
        let existing = self.users.get(cx.sender).and_then(|user| user.take_login());
        self.set_phase(cx.sender, Phase::Coming);
        if let Some(login) = existing {
            login.session.logout().await;
        }
        let outcome = match self.stored_login(cx.sender).await {
            Some((account, password)) => match self
                .connect(cx.sender, &account, &password, Connect::Anew)
                .await
            {
                Ok(version) => Ok(format!("Reconnected to MSN as {account} (MSNP{version}).")),
                Err(e) => Err(format!("Reconnecting failed: {e}.")),
            },
            None => Err("There is no stored login to reconnect with. Send `login <email>`.".into()),
        };
        outcome.unwrap_or_else(|failed| {
            self.set_phase(cx.sender, Phase::Down);
            failed
        })
    }

    async fn stored_login(&self, mxid: &UserId) -> Option<(String, Password)> {
        let user = self.store.user(mxid).await.ok()??;
        let account = user.msn_login?;
        let sealed = user.credentials?;
        match self.credentials.open(&sealed) {
            Ok(password) => Some((account, password)),
            Err(e) => {
                tracing::warn!(error = %e, "stored credentials cannot be opened");
                None
            }
        }
    }

    /// Events of one user's MSN session, in order.
    async fn on_remote(
        self: &Arc<Self>,
        mxid: &UserId,
        (session, generation): (&C::Session, u64),
        event: RemoteEvent,
    ) {
        // A session logged out (or replaced by `reconnect`) may still have events on its
        // way: they must not mark the user connected again, nor reach their rooms.
        let current = self.users.get(mxid).is_some_and(|user| {
            lock(&user.login)
                .as_ref()
                .is_some_and(|login| login.generation == generation)
        });
        if !current && !matches!(event, RemoteEvent::Ended(_)) {
            tracing::debug!("an event of an ended session; ignored");
            return;
        }
        match event {
            RemoteEvent::Connected { protocol_version } => {
                tracing::info!(protocol_version, "MSN session connected");
                self.set_phase(mxid, Phase::Up);
                let _ = self.store.set_login_state(mxid, CONNECTED).await;
                let was_lost =
                    self.set_connected(mxid, true, |memo| std::mem::take(&mut memo.told_lost));
                if was_lost {
                    self.tell_user(mxid, "Reconnected to MSN.").await;
                }
            }
            RemoteEvent::Reconnecting {
                attempt,
                delay,
                reason,
            } => {
                tracing::info!(attempt, ?delay, %reason, "MSN session reconnecting");
                self.set_reconnecting(mxid);
                self.metrics.reconnect(&reason);
                let tell = self.set_connected(mxid, false, |memo| {
                    let quiet = memo
                        .last_lost_notice
                        .is_some_and(|t| t.elapsed() < NOTICE_GAP);
                    if memo.told_lost || quiet {
                        return false;
                    }
                    memo.told_lost = true;
                    memo.last_lost_notice = Some(Instant::now());
                    true
                });
                if tell {
                    self.tell_user(
                        mxid,
                        &format!("Lost the connection to MSN ({reason}); reconnecting…"),
                    )
                    .await;
                }
            }
            RemoteEvent::Ended(end) => self.on_session_end(mxid, generation, end).await,
            RemoteEvent::Contacts(contacts) => {
                for contact in contacts.iter().filter(|c| c.is_friend) {
                    self.sync_contact(contact).await;
                    self.sync_avatar(mxid, session, contact);
                }
            }
            RemoteEvent::ContactChanged(contact) => {
                if contact.availability != Availability::Offline {
                    self.contact_seen_online(mxid, &contact.address);
                }
                self.sync_contact(&contact).await;
                self.sync_avatar(mxid, session, &contact);
            }
            RemoteEvent::AddedBy { address, name } => {
                let prefix = &self.config.bridge.command_prefix;
                self.tell_user(
                    mxid,
                    &format!(
                        "{name} ({address}) added you to their MSN contact list. Send `{prefix} accept {address}` to add them back, or `{prefix} block {address}`."
                    ),
                )
                .await;
            }
            RemoteEvent::Message {
                chat,
                from,
                text,
                emoticons,
            } => {
                let images = self
                    .emoticon_images(session, &chat, &from, &emoticons)
                    .await;
                self.relay_to_matrix(mxid, &chat, &from, text, &images)
                    .await
            }
            RemoteEvent::OfflineMessage {
                id,
                from,
                text,
                written_ms,
            } => {
                let message = super::offline::Offline {
                    id,
                    from,
                    text,
                    written_ms,
                };
                self.relay_offline_message(mxid, message).await
            }
            RemoteEvent::OwnMessage { chat, via, text } => {
                self.relay_own_message(mxid, &chat, &via, text).await
            }
            RemoteEvent::Typing { chat, from } => self.relay_typing(mxid, &chat, &from).await,
            RemoteEvent::Nudge { chat, from } => self.relay_nudge(mxid, &chat, &from).await,
            RemoteEvent::Unsupported { chat, from, what } => {
                self.relay_unsupported(mxid, &chat, &from, &what).await
            }
            RemoteEvent::GroupMembers {
                chat,
                members,
                name,
            } => {
                self.on_group_members(mxid, &chat, &members, name.as_deref())
                    .await
            }
            RemoteEvent::GroupJoined {
                chat,
                address,
                name,
            } => self.on_group_joined(mxid, &chat, &address, &name).await,
            RemoteEvent::GroupLeft { chat, address } => {
                self.on_group_left(mxid, &chat, &address).await
            }
            RemoteEvent::File {
                chat,
                from,
                key,
                name,
                transfer,
            } => {
                self.relay_file(mxid, (&chat, &from), &key, &name, transfer)
                    .await
            }
        }
    }

    /// Records whether `mxid`'s session is connected, updates the gauge, and runs `memo_fn`
    /// on the user's notice memo.
    fn set_connected(
        &self,
        mxid: &UserId,
        connected: bool,
        memo_fn: impl FnOnce(&mut StatusMemo) -> bool,
    ) -> bool {
        let user = self.users.entry(mxid);
        let mut memo = lock(&user.status);
        // The gauge moves with each change (counting every user's session here would make
        // restoring N logins cost N² at start-up).
        match (memo.connected, connected) {
            (false, true) => {
                self.metrics.msn_sessions.inc();
            }
            (true, false) => {
                self.metrics.msn_sessions.dec();
            }
            _ => {}
        }
        memo.connected = connected;
        memo_fn(&mut memo)
    }

    async fn on_session_end(&self, mxid: &UserId, generation: u64, end: SessionEnd) {
        {
            let user = self.users.entry(mxid);
            let mut login = lock(&user.login);
            match login.as_ref() {
                Some(login) if login.generation != generation => {
                    // A later session of this user is live: this end is old news.
                    tracing::debug!("an earlier session ended");
                    return;
                }
                Some(_) => {
                    *login = None;
                    self.set_phase(mxid, Phase::Down);
                }
                // Already taken away (a logout, a `reconnect`): whoever did says where the
                // user's session is.
                None => {}
            }
        }
        self.set_connected(mxid, false, |_| false);
        let (state, text) = match &end {
            SessionEnd::LoginRefused(why) => (
                BAD_CREDENTIALS,
                format!("MSN refused the login ({why}). Send `login` to log in again."),
            ),
            SessionEnd::SignedInElsewhere => (
                SIGNED_IN_ELSEWHERE,
                "You signed in to MSN from another place, so this session was closed. Send `reconnect` to take it back.".to_owned(),
            ),
            SessionEnd::SignedOutRemotely => (
                SIGNED_IN_ELSEWHERE,
                "You signed the bridge out of MSN from your Messenger, so it stays offline. Send `reconnect` to bring it back.".to_owned(),
            ),
            SessionEnd::LoggedOut => return,
        };
        let user = self.store.user(mxid).await.ok().flatten();
        let account = user.as_ref().and_then(|u| u.msn_login.clone());
        let sealed = user.and_then(|u| u.credentials);
        if let Err(e) = self
            .store
            .set_login(mxid, account.as_deref(), state, sealed.as_deref())
            .await
        {
            tracing::error!(error = %e, "cannot store the login state");
        }
        self.tell_user(mxid, &text).await;
    }
}

/// Whether a login replaces a live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connect {
    /// Only if there is none (a login command, a restore).
    UnlessUp,
    /// Always (a `reconnect`).
    Anew,
}

/// Logs back in every stored login that was connected: started at
/// [`MsnConfig::restore_logins_per_second`] (the logins themselves run at most
/// [`LOGINS_AT_ONCE`] at a time), each retried with backoff while the MSN server cannot be
/// reached.
///
/// [`MsnConfig::restore_logins_per_second`]: crate::config::MsnConfig::restore_logins_per_second
/// [`LOGINS_AT_ONCE`]: super::LOGINS_AT_ONCE
pub(super) async fn restore<M: MatrixPort, C: MsnConnector>(bridge: &Arc<Bridge<M, C>>) {
    let users = match bridge.store.users().await {
        Ok(users) => users,
        Err(e) => {
            tracing::error!(error = %e, "cannot list users to restore their logins");
            return;
        }
    };
    let mut restoring = tokio::task::JoinSet::new();
    // Paced, so a restart does not hammer the MSN server; a late tick does not make the
    // next ones come in a burst.
    let per_second = bridge.config.msn.restore_logins_per_second.max(1);
    let mut pace = tokio::time::interval(Duration::from_secs(1) / per_second);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for user in users.into_iter().filter(|u| u.login_state == CONNECTED) {
        if bridge.shutdown.is_cancelled() {
            return;
        }
        if !bridge.restorable(&user) {
            // The config no longer lets this user use the bridge.
            tracing::info!(mxid = %user.mxid, "login not restored: no permission any more");
            continue;
        }
        let Some((account, password)) = bridge.stored_login(&user.mxid).await else {
            bridge.set_phase(&user.mxid, Phase::Down);
            continue;
        };
        pace.tick().await;
        let span = tracing::info_span!("restore", mxid = %user.mxid);
        restoring.spawn(restore_one(bridge.clone(), user.mxid, account, password).instrument(span));
        // Reap the restores already done, so 10,000 finished tasks are not kept.
        while restoring.try_join_next().is_some() {}
    }
    while restoring.join_next().await.is_some() {}
}

async fn restore_one<M: MatrixPort, C: MsnConnector>(
    bridge: Arc<Bridge<M, C>>,
    mxid: OwnedUserId,
    account: String,
    password: Password,
) {
    let mut delay = Duration::from_secs(bridge.config.msn.reconnect_initial_seconds);
    let longest = Duration::from_secs(bridge.config.msn.reconnect_max_seconds);
    let mut told = false;
    loop {
        let e = match bridge
            .connect(&mxid, &account, &password, Connect::UnlessUp)
            .await
        {
            Ok(version) => {
                tracing::info!(version, "login restored");
                if told {
                    bridge
                        .tell_user(&mxid, &format!("Logged in to MSN as {account} again."))
                        .await;
                }
                return;
            }
            Err(e) => e,
        };
        tracing::warn!(error = %e, "cannot restore a login");
        bridge.metrics.error("login_restore");
        if !matches!(e, LoginFailure::Unreachable(_) | LoginFailure::Other(_)) {
            bridge.set_phase(&mxid, Phase::Down);
            bridge
                .tell_user(&mxid, &format!("After a bridge restart, logging in to MSN as {account} failed: {e}. Send `reconnect` to try again."))
                .await;
            return;
        }
        if !told {
            told = true;
            bridge
                .tell_user(&mxid, &format!("After a bridge restart, logging in to MSN as {account} failed: {e}. Trying again until it works (or send `logout`)."))
                .await;
        }
        tokio::select! {
            () = bridge.shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(longest);
        // The user may have logged in again, or out, meanwhile.
        let still_wanted = bridge
            .users
            .get(&mxid)
            .is_none_or(|user| lock(&user.login).is_none())
            && bridge
                .store
                .user(&mxid)
                .await
                .ok()
                .flatten()
                .is_some_and(|u| u.login_state == CONNECTED);
        if !still_wanted {
            return;
        }
    }
}
