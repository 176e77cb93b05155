//! A small but real MSNP8–18 server for tests and the load program: dispatch,
//! notification server, switchboard, Passport 1.4 and RST over HTTP, and from MSNP13 the
//! address book (ABCH SOAP), all bound to `127.0.0.1:0`, behaving like the revival
//! servers of MSNP.md §2.8 and §15 (it refuses, times out and kicks where they do), with
//! fault injection and observers. MSNP8–12 is the default; MSNP13+ is
//! `MsnServerConfig::versions`.
//!
//! Files: `accounts` (lists and account data), `state` (shared routing state, events),
//! `conn` (socket reader/writer, faults applied, log redaction), `faults`, `presence`
//! (ILN/NLN/FLN/UBX per version), `passport` (HTTP: Passport, RST), `abch` (address
//! book), `oim` (offline messages for MSNP13+: storage and the NS `Mail-Data` notices,
//! with `oim/store2` and `oim/rsi` the HTTP services, `oim/mime` reading what senders
//! send, `oim/mail` writing what Escargot writes), `circles` (MSNP18 circles: members,
//! conversations and their notices, with `circles/wire` the routed payloads and the
//! circle ticket, `circles/book` their part of the address book), `dispatch`, `ns` (with
//! `ns/sso` and `ns/address_list` for MSNP13+, `ns/endpoints` for MSNP16+, `ns/circles`
//! for MSNP18's `USR SHA`, circle `ADL`, `PUT` and `SDG`), `sb`.
//! Uses the framing, challenge, escaping, XML and MBI parts of `msnp`, never the client
//! state machines.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use msn_testkit::{Lists, MsnServer, MsnServerConfig};
//! let server = MsnServer::start(MsnServerConfig::default()).await?;
//! server.add_account("alice@example.com", "pw", "Alice");
//! server.add_account("bob@example.com", "pw", "Bob");
//! server.add_contact("alice@example.com", "bob@example.com", Lists::FL | Lists::AL);
//! let nexus = server.nexus_url(); // http://127.0.0.1:PORT/rdr/pprdr.asp
//! # Ok(()) }
//! ```

mod abch;
mod accounts;
mod circles;
mod conn;
mod dispatch;
mod faults;
mod ns;
mod oim;
mod passport;
mod presence;
mod sb;
mod state;
#[cfg(test)]
mod test_http;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use msnp::escape;
use msnp::frame::Frame;
use msnp::limits::Limits;
use msnp::verb::Verb;

pub use accounts::Lists;
pub use conn::LoggedFrame;
pub use state::{ServerEvent, ServerKind, StoredOim};

use state::Shared;

/// Settings of a test server. `Default` matches R2M (§2.8): MSNP8–12, 24 h tickets,
/// `QNG 60`, no challenges.
#[derive(Debug, Clone)]
pub struct MsnServerConfig {
    /// Protocol versions accepted by `VER`.
    pub versions: RangeInclusive<u8>,
    /// Lifetime of Passport tickets (R2M 24 h; Escargot 30 s).
    pub ticket_lifetime: Duration,
    /// Value sent in `QNG` (MSNP9+).
    pub qng_seconds: u32,
    /// Send a `CHL` this often after the first `CHG` (`None`: only on demand).
    pub challenge_interval: Option<Duration>,
    /// Time allowed for the `QRY` answer before the NS drops the connection.
    pub challenge_timeout: Duration,
    /// Lifetime of switchboard cookies (`XFR`/`RNG`; Escargot 120 s).
    pub sb_cookie_lifetime: Duration,
    /// Time allowed between connecting to the SB and `USR`/`ANS` (Escargot 60 s).
    pub sb_auth_timeout: Duration,
    /// Parser limits for client frames.
    pub limits: Limits,
    /// The dispatch server's port on 127.0.0.1 (0: any free port). Fixed, a restarted
    /// server is found where clients left it (the NS and SB ports they learn anew).
    pub dispatch_port: u16,
    /// The HTTP (Passport) port on 127.0.0.1 (0: any free port).
    pub http_port: u16,
}

impl Default for MsnServerConfig {
    fn default() -> Self {
        MsnServerConfig {
            versions: 8..=12,
            ticket_lifetime: Duration::from_secs(24 * 3600),
            qng_seconds: 60,
            challenge_interval: None,
            challenge_timeout: Duration::from_secs(50),
            sb_cookie_lifetime: Duration::from_secs(120),
            sb_auth_timeout: Duration::from_secs(60),
            limits: Limits::default(),
            dispatch_port: 0,
            http_port: 0,
        }
    }
}

/// Entry point; see [`MsnServer::start`].
#[derive(Debug)]
pub struct MsnServer;

impl MsnServer {
    /// Binds the dispatch, NS, SB and HTTP listeners on 127.0.0.1 (the dispatch and HTTP
    /// ports as configured, the others free) and starts serving. Everything stops when the
    /// handle is dropped or [`MsnServerHandle::shutdown`] runs.
    pub async fn start(config: MsnServerConfig) -> std::io::Result<MsnServerHandle> {
        let ds = TcpListener::bind(("127.0.0.1", config.dispatch_port)).await?;
        let ns = TcpListener::bind("127.0.0.1:0").await?;
        let sb = TcpListener::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind(("127.0.0.1", config.http_port)).await?;
        let shared = Arc::new(Shared::new(
            config,
            ds.local_addr()?,
            ns.local_addr()?,
            sb.local_addr()?,
            http.local_addr()?,
        ));
        spawn_listener(ds, shared.clone(), |s, sh| {
            tokio::spawn(dispatch::run(s, sh))
        });
        spawn_listener(ns, shared.clone(), |s, sh| tokio::spawn(ns::run(s, sh)));
        spawn_listener(sb, shared.clone(), |s, sh| tokio::spawn(sb::run(s, sh)));
        let router = passport::router(shared.clone())
            .merge(abch::router(shared.clone()))
            .merge(oim::router(shared.clone()));
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(http, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(MsnServerHandle { shared })
    }
}

fn spawn_listener(
    listener: TcpListener,
    shared: Arc<Shared>,
    serve: fn(tokio::net::TcpStream, Arc<Shared>) -> tokio::task::JoinHandle<()>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shared.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        serve(stream, shared.clone());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "test server accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    });
}

/// Control and observation handle of a running test server. Dropping it stops the
/// server (connections are cut without `OUT`); use [`shutdown`](Self::shutdown) for a
/// clean `OUT SSD`.
#[derive(Debug)]
pub struct MsnServerHandle {
    shared: Arc<Shared>,
}

impl Drop for MsnServerHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl MsnServerHandle {
    /// Address of the dispatch server (answers `XFR NS`).
    pub fn dispatch_addr(&self) -> SocketAddr {
        self.shared.dispatch_addr
    }

    /// Address of the notification server.
    pub fn ns_addr(&self) -> SocketAddr {
        self.shared.ns_addr
    }

    /// Address of the switchboard server.
    pub fn sb_addr(&self) -> SocketAddr {
        self.shared.sb_addr
    }

    /// Address of the Passport HTTP server.
    pub fn http_addr(&self) -> SocketAddr {
        self.shared.http_addr
    }

    /// `http://127.0.0.1:PORT/rdr/pprdr.asp`.
    pub fn nexus_url(&self) -> String {
        format!("http://{}/rdr/pprdr.asp", self.shared.http_addr)
    }

    /// `http://127.0.0.1:PORT/login.srf`.
    pub fn login_url(&self) -> String {
        format!("http://{}/login.srf", self.shared.http_addr)
    }

    /// `http://127.0.0.1:PORT/RST.srf` (the WS-Trust route to a TWN ticket, §2.4.3).
    pub fn rst_url(&self) -> String {
        format!("http://{}/RST.srf", self.shared.http_addr)
    }

    /// `http://127.0.0.1:PORT/NotRST.srf` (Escargot's header route to a TWN ticket,
    /// §2.4.3).
    pub fn not_rst_url(&self) -> String {
        format!("http://{}/NotRST.srf", self.shared.http_addr)
    }

    /// Registers an account (or replaces its password and name). `friendly_name` is
    /// plain text; it is stored percent-encoded (§5.6).
    pub fn add_account(&self, email: &str, password: &str, friendly_name: &str) {
        let email = key(email);
        let name = if friendly_name.is_empty() {
            email.clone()
        } else {
            escape::encode(friendly_name)
        };
        let member_id = self.shared.next_id();
        let mut state = self.shared.lock();
        match state.accounts.get_mut(&email) {
            Some(a) => {
                a.password = password.to_owned();
                a.name_enc = name;
            }
            None => {
                state.accounts.insert(
                    email.clone(),
                    accounts::Account::new(&email, password, name, member_id),
                );
            }
        }
    }

    /// Seeds `owner`'s lists with `contact` (both accounts must exist; unknown accounts
    /// are ignored). Adding to FL also puts `owner` on `contact`'s RL, as the server
    /// does; RL/PL in `lists` are applied as given.
    pub fn add_contact(&self, owner: &str, contact: &str, lists: Lists) {
        let (owner, contact) = (key(owner), key(contact));
        let guid = self.shared.guid();
        let back_guid = self.shared.guid();
        let mut state = self.shared.lock();
        if !state.accounts.contains_key(&owner) || !state.accounts.contains_key(&contact) {
            return;
        }
        let contact_name = state.name_of(&contact);
        let owner_name = state.name_of(&owner);
        if let Some(a) = state.accounts.get_mut(&owner) {
            let e = a
                .contacts
                .entry(contact.clone())
                .or_insert_with(|| accounts::ContactEntry {
                    email: contact.clone(),
                    name_enc: contact_name,
                    lists: Lists::NONE,
                    guid,
                    groups: Vec::new(),
                });
            e.lists = e.lists | lists;
            a.list_version += 1;
        }
        if lists.contains(Lists::FL)
            && let Some(a) = state.accounts.get_mut(&contact)
        {
            let e = a
                .contacts
                .entry(owner.clone())
                .or_insert_with(|| accounts::ContactEntry {
                    email: owner.clone(),
                    name_enc: owner_name,
                    lists: Lists::NONE,
                    guid: back_guid,
                    groups: Vec::new(),
                });
            e.lists = e.lists | Lists::RL;
            a.list_version += 1;
        }
    }

    /// Makes `a` and `b` mutual contacts: each has the other on FL and AL (and RL).
    pub fn make_friends(&self, a: &str, b: &str) {
        self.add_contact(a, b, Lists::FL | Lists::AL);
        self.add_contact(b, a, Lists::FL | Lists::AL);
    }

    /// The lists `contact` is on for `owner`.
    pub fn lists(&self, owner: &str, contact: &str) -> Lists {
        self.shared
            .lock()
            .accounts
            .get(&key(owner))
            .map_or(Lists::NONE, |a| a.lists_of(&key(contact)))
    }

    /// Sets `BLP` for an account: `true` = `AL` (allow all not blocked), `false` = `BL`.
    pub fn set_allow_all(&self, email: &str, allow_all: bool) {
        if let Some(a) = self.shared.lock().accounts.get_mut(&key(email)) {
            a.allow_all = allow_all;
        }
    }

    /// The presence of a logged-in account: `None` when it has no NS session,
    /// `Some("FLN")` when logged in but before its first `CHG`, else the status code
    /// (`NLN`, `AWY`, … including `HDN`).
    pub fn online(&self, email: &str) -> Option<String> {
        self.shared
            .lock()
            .sessions
            .get(&key(email))
            .map(|s| s.status.clone().unwrap_or_else(|| "FLN".to_owned()))
    }

    /// The negotiated protocol version of a logged-in account.
    pub fn version(&self, email: &str) -> Option<u8> {
        self.shared
            .lock()
            .sessions
            .get(&key(email))
            .map(|s| s.version)
    }

    /// The friendly name of an account as stored (percent-decoded).
    pub fn friendly_name(&self, email: &str) -> Option<String> {
        self.shared
            .lock()
            .accounts
            .get(&key(email))
            .map(|a| escape::decode_lossy(&a.name_enc))
    }

    /// The last personal-message document (`UUX` payload) of an account.
    pub fn personal_message(&self, email: &str) -> Option<Bytes> {
        self.shared
            .lock()
            .accounts
            .get(&key(email))
            .map(|a| a.psm.clone())
    }

    /// How many NS endpoints of the account are signed in (MSNP16+ MPOP; 1 otherwise).
    pub fn endpoint_count(&self, email: &str) -> usize {
        self.shared
            .lock()
            .sessions
            .get(&key(email))
            .map_or(0, |s| 1 + s.others.len())
    }

    /// The machine GUID the account's NS session signed in with (MSNP16+).
    pub fn machine_guid(&self, email: &str) -> Option<String> {
        self.shared
            .lock()
            .sessions
            .get(&key(email))
            .and_then(|s| s.machine_guid.clone())
    }

    /// Frames received from an account (NS and SB), secrets redacted, oldest first: the
    /// last few thousand (a long file transfer is not kept whole).
    pub fn frames(&self, email: &str) -> Vec<LoggedFrame> {
        self.shared
            .lock()
            .frames
            .get(&key(email))
            .cloned()
            .unwrap_or_default()
    }

    /// A count of every frame the servers received, for a test that waits for them to go
    /// quiet; it outlives the handle.
    pub fn frames_received(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.shared.received.clone()
    }

    /// Subscribes to server events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.shared.events.subscribe()
    }

    /// Number of open switchboard sessions.
    pub fn switchboard_count(&self) -> usize {
        self.shared.lock().switchboards.len()
    }

    /// Participants of every open switchboard session that includes `email`.
    pub fn switchboards_of(&self, email: &str) -> Vec<Vec<String>> {
        let email = key(email);
        self.shared
            .lock()
            .switchboards
            .values()
            .filter(|sb| sb.members.iter().any(|m| m.email == email))
            .map(|sb| sb.members.iter().map(|m| m.email.clone()).collect())
            .collect()
    }

    /// Sends `CHL 0 <challenge>` to a logged-in account now; a wrong `QRY` gets `540`
    /// and a disconnect, no answer within `challenge_timeout` a disconnect.
    pub fn send_challenge(&self, email: &str) -> bool {
        ns::send_challenge(&self.shared, &key(email))
    }

    /// Sends the maintenance warning `MSG Hotmail Hotmail` with
    /// `application/x-msmsgssystemmessage` `Type: 1`, `Arg1: minutes` (§7.6).
    pub fn send_maintenance_warning(&self, email: &str, minutes: u32) -> bool {
        let body = format!(
            "MIME-Version: 1.0\r\nContent-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: {minutes}\r\n"
        );
        let state = self.shared.lock();
        let Some(s) = state.sessions.get(&key(email)) else {
            return false;
        };
        s.conn.send(
            Frame::untracked(Verb::MSG, ["Hotmail", "Hotmail"]).with_payload(Bytes::from(body)),
        );
        true
    }

    /// The offline messages stored for `email` (MSNP13+, MSNP.md §15.1), oldest first:
    /// what `Store2` or [`store_offline_message`](Self::store_offline_message) stored
    /// and RSI `DeleteMessages` has not deleted.
    pub fn offline_messages(&self, email: &str) -> Vec<StoredOim> {
        self.shared
            .lock()
            .oims
            .get(&key(email))
            .map(|list| list.iter().map(|r| r.oim.clone()).collect())
            .unwrap_or_default()
    }

    /// Stores `message` for `to` (an account; others are ignored) as if its sender had
    /// sent it with `Store2` while `to` was away (its `id` is the server's to give). It
    /// is listed in the `Mail-Data` after every first `CHG` of `to` until deleted, and an
    /// MSNP13+ endpoint of `to` that is online now gets the live
    /// `text/x-msmsgsoimnotification` at once, as Escargot sends it.
    pub fn store_offline_message(&self, to: &str, message: StoredOim) {
        oim::inject(&self.shared, &key(to), message);
    }

    /// Creates a circle (MSNP18 group chat, MSNP.md §15.4) named `name` with `admin` as
    /// its admin and `members` as members, everyone's membership accepted, and returns
    /// its id (`00000000-0000-0000-0009-<12 hex>`, counted up from 1). Members see it in
    /// `ABFindContactsPaged` (with a new circle ticket) and may join its conversation
    /// with `USR SHA A`, the circle `ADL` and `PUT`.
    pub fn create_circle(&self, name: &str, admin: &str, members: &[&str]) -> String {
        let members: Vec<String> = members.iter().map(|m| key(m)).collect();
        circles::create(&mut self.shared.lock(), name, &key(admin), &members)
    }

    /// Invites `email` to circle `id`: a member whose membership waits for an answer
    /// (`WaitingResponse`), listed in its `ABFindContactsPaged` but refused by the circle
    /// `ADL` (`933`). Nothing happens for an unknown circle or a member already there.
    pub fn invite_to_circle(&self, id: &str, email: &str) {
        circles::invite(&mut self.shared.lock(), &key(id), &key(email));
    }

    /// The accounts in circle `id`'s conversation (those with an endpoint that joined it
    /// with `PUT` and is still connected), once each, in the order they joined.
    pub fn circle_roster(&self, id: &str) -> Vec<String> {
        self.shared
            .lock()
            .circles
            .get(&key(id))
            .map(circles::Circle::roster)
            .unwrap_or_default()
    }

    /// Member `email` leaves circle `id` (as with `BreakConnection`): no longer a member,
    /// its endpoints out of the conversation. The endpoints still in it get
    /// `NFY DEL` with `Uri: /circle/roster(IM)/user(1:<email>)`; `email`'s own endpoints
    /// that were in it get one for each account still there.
    pub fn leave_circle(&self, id: &str, email: &str) {
        circles::leave(&mut self.shared.lock(), &key(id), &key(email));
    }

    /// Fault: closes the account's NS socket at once, without `OUT` (its contacts see
    /// `FLN`).
    pub fn drop_connections(&self, email: &str) {
        if let Some(s) = self.shared.lock().sessions.get(&key(email)) {
            s.conn.kill();
        }
    }

    /// Fault: the server keeps reading this account's NS and SB commands but never
    /// answers them (R2M's stuck switchboard, §2.8).
    pub fn stop_answering(&self, email: &str, on: bool) {
        self.shared.faults.set_silenced(&key(email), on);
    }

    /// Presence as Escargot 2025 (on) or R2M (off, the default) does it: Escargot does not
    /// relay a `CHG` that keeps the status (a new msnobj alone goes unseen) and reports a
    /// user without a picture with the literal `<msnobj/>` (MSNP.md §2.8).
    pub fn escargot_presence(&self, on: bool) {
        self.shared.lock().escargot_presence = on;
    }

    /// Fault: the next `count` switchboard connections hang at their first step: `USR` or
    /// `ANS` is read and never answered, nor anything after it (R2M now and then, §2.8).
    pub fn hang_switchboards(&self, count: u64) {
        self.shared.faults.set_hanging_switchboards(count);
    }

    /// Fault: while `on`, the address book has no `ABFindContactsPaged` (a fault, as a
    /// server without circles answers an action it does not know).
    pub fn without_circle_service(&self, on: bool) {
        self.shared.lock().no_circle_service = on;
    }

    /// Fault: while `on`, `USR SHA A` is refused (`911`) whatever the ticket: the
    /// circles cannot be joined.
    pub fn refuse_circle_tickets(&self, on: bool) {
        self.shared.lock().refuse_circle_tickets = on;
    }

    /// Fault: while `on`, RSI `DeleteMessages` fails and deletes nothing (what a bridge
    /// stopped between bridging and deleting leaves behind).
    pub fn refuse_offline_deletes(&self, on: bool) {
        self.shared.lock().refuse_oim_deletes = on;
    }

    /// Fault: removes the account from every switchboard session, cutting its SB
    /// sockets; the other participants get `BYE email 1`.
    pub fn close_switchboards(&self, email: &str) {
        let email = key(email);
        let mut state = self.shared.lock();
        let victims: Vec<(u64, u64, conn::ConnTx)> = state
            .switchboards
            .iter()
            .flat_map(|(id, sb)| {
                sb.members
                    .iter()
                    .filter(|m| m.email == email)
                    .map(|m| (*id, m.conn.id, m.conn.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (id, conn_id, conn) in victims {
            sb::remove_member(&mut state, id, conn_id, &email, true);
            conn.kill();
        }
    }

    /// Fault: delays every frame the server writes by `delay` (zero to stop).
    pub fn delay_replies(&self, delay: Duration) {
        self.shared.faults.set_delay(delay);
    }

    /// Fault: writes every frame in 5-byte pieces with flushes, to exercise reassembly.
    pub fn split_writes(&self, on: bool) {
        self.shared.faults.set_split_writes(on);
    }

    /// Sends `OUT SSD` to every NS connection, closes all connections and stops the
    /// listeners.
    pub async fn shutdown(self) {
        {
            let state = self.shared.lock();
            for conn in state.ns_conns.values() {
                conn.send(Frame::untracked(Verb::OUT, ["SSD"]));
                conn.close();
            }
            for (_, conn) in state.sb_conns.values() {
                conn.close();
            }
        }
        // Give the writers a moment to flush before the sockets are cut.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.shared.shutdown.cancel();
    }
}
