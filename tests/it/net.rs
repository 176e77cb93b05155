//! The async MSN shell (`matrix_msn::net`) for real over loopback: logins through the
//! dispatch server for every version, typed login failures, interop with the third-party
//! `msnp11-sdk` client (presence, names, personal messages, switchboard text, typing,
//! nudges, three-party chats), fault injection (dropped connections, a silent server, a
//! second login, split writes, shutdown) and secrets kept out of the trace log.
//!
//! Nothing sleeps to synchronise: every step awaits an event under a timeout.

use std::sync::Arc;
use std::time::Duration;

use matrix_msn::net::{
    Backoff, ContactEdit, EndReason, MsnSession, MsnSettings, NetError, NsClient, NsEvents,
    PassportError, SbClient, SbEvents, SessionEvent, SessionEvents, SwitchboardEvent, TicketRoute,
    fetch_ticket_not_rst, fetch_ticket_rst, http_client,
};
use msn_testkit::{Lists, MsnServer, MsnServerConfig, MsnServerHandle, ServerEvent};
use msnp::{
    AuthError, CloseReason, FaultCode, LoginError, MsgPayload, NsConfig, NsEvent, SbConfig,
    SbEvent, Secret, Status, TextFormat,
};
use msnp11_sdk::{Client, Event, MsnpStatus, PersonalMessage, PlainText, Switchboard};
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);
const PASSWORD: &str = "pw-Zq8!unique";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

// ----- setup ---------------------------------------------------------------------------

async fn server_with(config: MsnServerConfig) -> MsnServerHandle {
    let server = MsnServer::start(config).await.expect("start test server");
    for (email, name) in [(ALICE, "Alice Ä"), (BOB, "Bob"), (CAROL, "Carol")] {
        server.add_account(email, PASSWORD, name);
    }
    server.make_friends(ALICE, BOB);
    server.make_friends(ALICE, CAROL);
    server.make_friends(BOB, CAROL);
    server
}

async fn server() -> MsnServerHandle {
    server_with(MsnServerConfig::default()).await
}

/// Settings that start at the dispatch server and offer `versions`.
fn settings(server: &MsnServerHandle, versions: &[u8]) -> MsnSettings {
    let mut s = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    s.versions = versions.to_vec();
    s.connect_timeout = Duration::from_secs(5);
    s.request_timeout = Duration::from_secs(5);
    s
}

fn http() -> reqwest::Client {
    // `NET_TEST_LOG=1` prints the (redacted) wire trace of a failing test.
    if std::env::var_os("NET_TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_test_writer()
            .try_init();
    }
    http_client(None, Duration::from_secs(5)).expect("http client")
}

async fn connect_with(
    settings: &MsnSettings,
    email: &str,
    password: &str,
) -> Result<(NsClient, NsEvents), NetError> {
    timeout(
        T * 2,
        NsClient::connect(
            settings.clone(),
            &http(),
            config(email),
            Secret::new(password),
        ),
    )
    .await
    .expect("NsClient::connect hangs")
}

/// The login's configuration, with the endpoint's machine GUID MSNP16+ needs.
fn config(email: &str) -> NsConfig {
    let mut config = NsConfig::new(email);
    config.machine_guid = Some(MACHINE_GUID.to_owned());
    config
}

const MACHINE_GUID: &str = "{0B1C2D3E-4F50-4617-8829-3A4B5C6D7E8F}";

/// Logs in and waits until the server confirmed our first `CHG`.
async fn connect(settings: &MsnSettings, email: &str) -> (NsClient, NsEvents) {
    let (client, mut events) = connect_with(settings, email, PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("login of {email}: {e}"));
    wait_ns(&mut events, "own status", |e| {
        matches!(e, NsEvent::OwnStatus { .. })
    })
    .await;
    (client, events)
}

async fn wait_ns(rx: &mut NsEvents, what: &str, pred: impl Fn(&NsEvent) -> bool) -> NsEvent {
    crate::support::wait_for(rx, T, what, pred).await
}

async fn wait_sb(rx: &mut SbEvents, what: &str, pred: impl Fn(&SbEvent) -> bool) -> SbEvent {
    let event = crate::support::wait_for(
        rx,
        T,
        what,
        |e| matches!(e, SwitchboardEvent::Session(e) if pred(e)),
    )
    .await;
    match event {
        SwitchboardEvent::Session(e) => e,
        SwitchboardEvent::Transfer(e) => panic!("{what}: a transfer event {e:?}"),
    }
}

async fn wait_session(
    rx: &mut SessionEvents,
    what: &str,
    pred: impl Fn(&SessionEvent) -> bool,
) -> SessionEvent {
    crate::support::wait_for(rx, T, what, pred).await
}

async fn wait_server(
    rx: &mut broadcast::Receiver<ServerEvent>,
    what: &str,
    pred: impl Fn(&ServerEvent) -> bool,
) -> ServerEvent {
    crate::support::wait_for(rx, T, what, pred).await
}

fn is_text(e: &SbEvent, sender: &str, body: &str) -> bool {
    matches!(e, SbEvent::Message { from, payload: MsgPayload::Text { text, .. }, .. }
        if from == sender && text == body)
}

/// Opens a switchboard as `client` and calls `invitees`.
async fn open_sb(
    settings: &MsnSettings,
    client: &NsClient,
    invitees: &[&str],
) -> (SbClient, SbEvents) {
    let (address, auth) = timeout(T, client.request_switchboard())
        .await
        .expect("XFR SB hangs")
        .expect("XFR SB");
    timeout(
        T,
        SbClient::open(
            settings,
            SbConfig::new(client.account(), client.version()),
            &address,
            &auth,
            invitees,
        ),
    )
    .await
    .expect("SB open hangs")
    .expect("SB open")
}

/// Waits for an `RNG` on `events` and answers it as `client`.
async fn answer_sb(
    settings: &MsnSettings,
    client: &NsClient,
    events: &mut NsEvents,
    from: &str,
) -> (SbClient, SbEvents) {
    let invite = wait_ns(
        events,
        &format!("RNG from {from}"),
        |e| matches!(e, NsEvent::SwitchboardInvite { inviter, .. } if inviter == from),
    )
    .await;
    let NsEvent::SwitchboardInvite {
        session_id,
        address,
        auth,
        ..
    } = invite
    else {
        unreachable!()
    };
    let (sb, mut sb_events) = timeout(
        T,
        SbClient::answer(
            settings,
            SbConfig::new(client.account(), client.version()),
            &address,
            &auth,
            &session_id,
        ),
    )
    .await
    .expect("ANS hangs")
    .expect("ANS");
    wait_sb(&mut sb_events, "ANS OK", |e| {
        matches!(e, SbEvent::Ready { .. })
    })
    .await;
    (sb, sb_events)
}

async fn send(sb: &SbClient, body: &str) {
    timeout(T, sb.send_text(body.to_owned(), TextFormat::default()))
        .await
        .expect("MSG hangs")
        .expect("MSG acknowledged");
}

async fn set_status(client: &NsClient, status: Status) {
    timeout(
        T,
        client.command(move |s, now| s.set_status(now, status, 0x5000_0000, None)),
    )
    .await
    .expect("CHG hangs")
    .expect("CHG");
}

// ----- msnp11-sdk helpers ---------------------------------------------------------------

type SdkEvents = mpsc::UnboundedReceiver<Event>;

fn plain(s: &str) -> PlainText {
    PlainText {
        bold: false,
        italic: false,
        underline: false,
        strikethrough: false,
        color: "0".to_owned(),
        text: s.to_owned(),
    }
}

fn sdk_collect(client: &Client) -> SdkEvents {
    let (tx, rx) = mpsc::unbounded_channel();
    client.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    rx
}

fn sdk_collect_sb(sb: &Switchboard) -> SdkEvents {
    let (tx, rx) = mpsc::unbounded_channel();
    sb.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    rx
}

/// An SDK user logged in directly at the NS and online.
async fn sdk_login(server: &MsnServerHandle, email: &str) -> (Client, SdkEvents) {
    let client = timeout(T, Client::new("127.0.0.1", server.ns_addr().port()))
        .await
        .expect("SDK connect hangs")
        .expect("SDK connect");
    let events = sdk_collect(&client);
    let event = timeout(
        T,
        client.login(
            email.to_owned(),
            PASSWORD,
            &server.nexus_url(),
            "msnp11-sdk",
            "0.13.0",
        ),
    )
    .await
    .expect("SDK login hangs")
    .expect("SDK login");
    assert!(matches!(event, Event::Authenticated), "{event:?}");
    timeout(T, client.set_presence(MsnpStatus::Online))
        .await
        .expect("SDK CHG hangs")
        .expect("SDK CHG");
    (client, events)
}

async fn sdk_wait(rx: &mut SdkEvents, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let fut = async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    match timeout(T, fut).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("SDK events ended while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

async fn sdk_answered(rx: &mut SdkEvents) -> Arc<Switchboard> {
    match sdk_wait(rx, "SessionAnswered", |e| {
        matches!(e, Event::SessionAnswered(_))
    })
    .await
    {
        Event::SessionAnswered(sb) => sb,
        _ => unreachable!(),
    }
}

async fn sdk_text(rx: &mut SdkEvents, sender: &str, body: &str) {
    sdk_wait(rx, &format!("text {body:?} from {sender}"), |e| {
        matches!(e, Event::TextMessage { email, message } if email == sender && message.text == body)
    })
    .await;
}

async fn sdk_say(sb: &Switchboard, body: &str) {
    timeout(T, sb.send_text_message(&plain(body)))
        .await
        .expect("SDK MSG hangs")
        .expect("SDK MSG acknowledged");
}

// ----- 1. login -------------------------------------------------------------------------

/// Alice logs out: her session closes as logged out, and the server sees her go.
async fn log_out_alice(client: &NsClient, events: &mut NsEvents, server: &MsnServerHandle) {
    let mut srv = server.subscribe();
    timeout(T, client.logout()).await.expect("logout hangs");
    wait_ns(events, "closed", |e| {
        matches!(e, NsEvent::Closed(CloseReason::LoggedOut))
    })
    .await;
    if server.online(ALICE).is_some() {
        wait_server(
            &mut srv,
            "disconnect",
            |e| matches!(e, ServerEvent::Disconnected { email } if email == ALICE),
        )
        .await;
    }
}

#[tokio::test]
async fn login_through_dispatch_for_every_version() {
    let server = server_with(MsnServerConfig {
        versions: 8..=18,
        ..MsnServerConfig::default()
    })
    .await;
    for v in 8u8..=18 {
        let settings = settings(&server, &[v]);
        let (client, mut events) = connect_with(&settings, ALICE, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("MSNP{v} login: {e}"));
        assert_eq!(client.version(), v);
        assert_eq!(server.version(ALICE), Some(v));
        // Before the login completes only the profile (§2.6) may come (the account's own
        // UBX of MSNP16+ is not a contact's); the address book of MSNP13+ is read
        // meanwhile, so its order against `LoggedIn` varies.
        let first = loop {
            let event = timeout(T, events.recv()).await.expect("an event");
            match event {
                Some(NsEvent::Profile(profile)) => {
                    assert!(profile.get("MSPAuth").is_some(), "{profile:?}");
                }
                other => break other,
            }
        };
        assert_eq!(
            first,
            Some(NsEvent::LoggedIn {
                version: v,
                account: ALICE.to_owned()
            })
        );
        let Some(NsEvent::ContactList(list)) = timeout(T, events.recv()).await.expect("list")
        else {
            panic!("MSNP{v}: the second event must be the contact list");
        };
        let emails: Vec<&str> = list.contacts.keys().map(String::as_str).collect();
        assert_eq!(emails, vec![BOB, CAROL], "MSNP{v}");
        for c in list.contacts.values() {
            assert_eq!(c.guid.is_some(), v >= 10, "MSNP{v} GUID of {}", c.email);
        }
        assert_eq!(
            list.own_friendly_name.as_deref(),
            Some("Alice Ä"),
            "MSNP{v}"
        );
        wait_ns(&mut events, "own status", |e| {
            matches!(
                e,
                NsEvent::OwnStatus {
                    status: Status::Online
                }
            )
        })
        .await;
        assert_eq!(server.online(ALICE).as_deref(), Some("NLN"));
        assert_eq!(
            server.machine_guid(ALICE).as_deref(),
            (v >= 16).then_some(MACHINE_GUID),
            "MSNP{v}"
        );
        // The handle's view is the event's, except for `BPR` lines that follow the last
        // `LST` (they arrive after the sync counted complete).
        let mut now = timeout(T, client.contact_list())
            .await
            .expect("contact_list hangs")
            .expect("contact_list");
        let mut then = list.clone();
        for c in now.contacts.values_mut().chain(then.contacts.values_mut()) {
            c.phones.clear();
        }
        assert_eq!(now, then, "MSNP{v}");
        log_out_alice(&client, &mut events, &server).await;
    }
}

/// The contact commands on MSNP18 go through the address book and `ADL`/`RML`, and a
/// contact on MSNP12 sees their effect as on MSNP8–12: added, removed, blocked.
#[tokio::test]
async fn contact_edits_on_msnp18_go_through_the_address_book() {
    const DAVE: &str = "dave@example.com";
    let server = server_with(MsnServerConfig {
        versions: 8..=18,
        ..MsnServerConfig::default()
    })
    .await;
    server.add_account(DAVE, PASSWORD, "Dave");
    let (alice, mut events) = connect(&settings(&server, &[18]), ALICE).await;
    let (_dave, mut dave_events) = connect(&settings(&server, &[12]), DAVE).await;
    let (_bob, mut bob_events) = connect(&settings(&server, &[12]), BOB).await;
    let fl_al = Lists::FL | Lists::AL;

    timeout(T, alice.edit_contact(ContactEdit::Add(DAVE.into())))
        .await
        .expect("add hangs")
        .expect("added");
    assert_eq!(server.lists(ALICE, DAVE), fl_al);
    wait_ns(
        &mut dave_events,
        "Alice added Dave",
        |e| matches!(e, NsEvent::AddedBy { contact, .. } if contact == ALICE),
    )
    .await;
    let list = alice.contact_list().await.expect("list");
    assert!(
        list.contacts.get(DAVE).is_some_and(|c| c.lists & 3 == 3),
        "{list:?}"
    );

    timeout(T, alice.edit_contact(ContactEdit::Remove(DAVE.into())))
        .await
        .expect("remove hangs")
        .expect("removed");
    assert!(!server.lists(ALICE, DAVE).contains(Lists::FL));
    wait_ns(
        &mut dave_events,
        "Alice removed Dave",
        |e| matches!(e, NsEvent::RemovedBy { contact } if contact == ALICE),
    )
    .await;

    // Blocking Bob: he sees Alice go offline; unblocking brings her back.
    timeout(T, alice.edit_contact(ContactEdit::Block(BOB.into())))
        .await
        .expect("block hangs")
        .expect("blocked");
    assert!(server.lists(ALICE, BOB).contains(Lists::BL));
    assert!(!server.lists(ALICE, BOB).contains(Lists::AL));
    wait_ns(
        &mut bob_events,
        "Alice offline for Bob",
        |e| matches!(e, NsEvent::ContactOffline { contact } if contact == ALICE),
    )
    .await;
    timeout(T, alice.edit_contact(ContactEdit::Unblock(BOB.into())))
        .await
        .expect("unblock hangs")
        .expect("unblocked");
    assert!(server.lists(ALICE, BOB).contains(Lists::AL));
    wait_ns(
        &mut bob_events,
        "Alice back for Bob",
        |e| matches!(e, NsEvent::PresenceChanged(p) if p.contact == ALICE),
    )
    .await;

    // Erin, whom Alice never allowed, adds her: she is told, and Erin stays pending
    // until she accepts.
    const ERIN: &str = "erin@example.com";
    server.add_account(ERIN, PASSWORD, "Erin");
    let (erin, _erin_events) = connect(&settings(&server, &[12]), ERIN).await;
    timeout(
        T,
        erin.command(|s, now| s.add_contact(now, msnp::List::Forward, ALICE, None, None)),
    )
    .await
    .expect("Erin's add hangs")
    .expect("Erin added Alice");
    wait_ns(
        &mut events,
        "Erin added Alice",
        |e| matches!(e, NsEvent::AddedBy { contact, .. } if contact == ERIN),
    )
    .await;
    assert!(server.lists(ALICE, ERIN).contains(Lists::PL));
    timeout(T, alice.edit_contact(ContactEdit::Add(ERIN.into())))
        .await
        .expect("accept hangs")
        .expect("accepted");
    let lists = server.lists(ALICE, ERIN);
    assert!(
        lists.contains(fl_al) && lists.contains(Lists::RL),
        "{lists:?}"
    );
    assert!(!lists.contains(Lists::PL), "{lists:?}");
}

// ----- 2. typed login failures ----------------------------------------------------------

#[tokio::test]
async fn login_failures_are_typed() {
    let server = server().await;
    let s = settings(&server, &[12, 11]);

    let wrong = connect_with(&s, ALICE, "wrong").await;
    assert!(
        matches!(
            wrong,
            Err(NetError::Passport(PassportError::WrongCredentials))
        ),
        "{wrong:?}"
    );

    // Single sign-on (MSNP18): the RST fault is the same typed refusal.
    let sso = server_with(MsnServerConfig {
        versions: 8..=18,
        ..MsnServerConfig::default()
    })
    .await;
    let wrong = connect_with(&settings(&sso, &[18]), ALICE, "wrong").await;
    assert!(
        matches!(
            wrong,
            Err(NetError::Passport(PassportError::WrongCredentials))
        ),
        "{wrong:?}"
    );
    // A server whose RST issues no binary secret (one that stops at MSNP12) cannot
    // sign in an MSNP18 session: a clear error, not a hang.
    let mut pretend = settings(&server, &[18]);
    pretend.server = sso.dispatch_addr().to_string();
    let no_secret = connect_with(&pretend, ALICE, PASSWORD).await;
    assert!(
        matches!(
            no_secret,
            Err(NetError::Passport(
                PassportError::Protocol(_) | PassportError::MissingToken(_)
            ))
        ),
        "{no_secret:?}"
    );

    let unknown = connect_with(&s, "nobody@example.com", PASSWORD).await;
    assert!(
        matches!(
            unknown,
            Err(NetError::Login(LoginError::UnknownAccount { .. }))
        ),
        "{unknown:?}"
    );

    let old = server_with(MsnServerConfig {
        versions: 8..=8,
        ..MsnServerConfig::default()
    })
    .await;
    let unsupported = connect_with(&settings(&old, &[12, 11]), ALICE, PASSWORD).await;
    assert!(
        matches!(
            unsupported,
            Err(NetError::Login(LoginError::UnsupportedVersion { .. }))
        ),
        "{unsupported:?}"
    );

    // The reconnecting session reports the same refusal instead of retrying.
    let started = timeout(
        T,
        MsnSession::start(
            s.clone(),
            http(),
            NsConfig::new(ALICE),
            Secret::new("wrong"),
            Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
        ),
    )
    .await
    .expect("MsnSession::start hangs");
    assert!(
        matches!(
            started,
            Err(NetError::Passport(PassportError::WrongCredentials))
        ),
        "{:?}",
        started.err()
    );
    assert_eq!(server.online(ALICE), None);
}

/// A ticket route other than the nexus: logs Alice in and out over `route(url)` for
/// MSNP8 and MSNP12 with the nexus URL pointing nowhere (so the route alone gives the
/// ticket); then a wrong password over `route` at the bare `http://host:port` (the
/// route's default path) is the same typed error as on the nexus route.
async fn check_ticket_route(
    server: &MsnServerHandle,
    url: String,
    route: impl Fn(String) -> TicketRoute,
) {
    for v in [8u8, 12] {
        let mut s = settings(server, &[v]);
        s.nexus_url = "http://127.0.0.1:9/rdr/pprdr.asp".to_owned();
        s.ticket_route = route(url.clone());
        let (client, mut events) = connect(&s, ALICE).await;
        assert_eq!(client.version(), v);
        assert_eq!(server.online(ALICE).as_deref(), Some("NLN"));
        log_out_alice(&client, &mut events, server).await;
    }

    let mut s = settings(server, &[12]);
    s.ticket_route = route(format!("http://{}", server.http_addr()));
    let wrong = connect_with(&s, ALICE, "wrong").await;
    assert!(
        matches!(
            wrong,
            Err(NetError::Passport(PassportError::WrongCredentials))
        ),
        "{wrong:?}"
    );
}

/// The `RST.srf` route to the TWN ticket (§2.4.3): the ticket from the SOAP answer logs
/// in for old and new versions, a wrong password is the typed error, and a policy other
/// than the NS's challenge is refused with a typed SOAP fault.
#[tokio::test]
async fn login_through_rst_srf() {
    let server = server().await;
    check_ticket_route(&server, server.rst_url(), |url| TicketRoute::Rst { url }).await;

    let policy = fetch_ticket_rst(
        &http(),
        &server.rst_url(),
        ALICE,
        &Secret::new(PASSWORD),
        "ct=1,rver=1,wp=MBI,lc=1033,id=507",
    )
    .await;
    assert!(
        matches!(
            policy,
            Err(PassportError::Protocol(AuthError::Fault {
                code: FaultCode::InvalidRequest,
                ..
            }))
        ),
        "{policy:?}"
    );
}

/// Escargot's `NotRST.srf` route (§2.4.3): the `X-Token` logs in for old and new
/// versions; the server answers `200` either way and a missing `X-Token` is the typed
/// wrong-credentials error.
#[tokio::test]
async fn login_through_not_rst_srf() {
    let server = server().await;
    check_ticket_route(&server, server.not_rst_url(), |url| TicketRoute::NotRst {
        url,
    })
    .await;

    // The wire: 200 both ways, `X-Token` only for the right password.
    for (password, token) in [(PASSWORD, true), ("wrong", false)] {
        let response = http()
            .post(server.not_rst_url())
            .header("X-User", ALICE)
            .header("X-Password", password)
            .send()
            .await
            .expect("NotRST.srf answers");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().contains_key("X-Token"),
            token,
            "{password}"
        );
    }
    let ticket = fetch_ticket_not_rst(
        &http(),
        &server.not_rst_url(),
        ALICE,
        &Secret::new(PASSWORD),
    )
    .await
    .expect("ticket");
    assert_eq!(ticket.expose().len(), 20);
}

// ----- 3. interop with msnp11-sdk ------------------------------------------------------

async fn interop(version: u8) {
    let server = server().await;
    let (bob, mut bob_ev) = sdk_login(&server, BOB).await;
    let settings = settings(&server, &[version]);
    let (alice, mut alice_ev) = connect(&settings, ALICE).await;
    assert_eq!(alice.version(), version);

    // Presence from us to the SDK.
    sdk_wait(&mut bob_ev, "NLN alice", |e| {
        matches!(e, Event::PresenceUpdate { email, presence, display_name }
            if email == ALICE && matches!(presence.status, MsnpStatus::Online)
                && display_name == "Alice Ä")
    })
    .await;
    set_status(&alice, Status::Away).await;
    assert_eq!(server.online(ALICE).as_deref(), Some("AWY"));
    sdk_wait(&mut bob_ev, "AWY alice", |e| {
        matches!(e, Event::PresenceUpdate { email, presence, .. }
            if email == ALICE && matches!(presence.status, MsnpStatus::Away))
    })
    .await;
    set_status(&alice, Status::Online).await;

    // Presence and personal message from the SDK to us.
    timeout(T, bob.set_presence(MsnpStatus::Busy))
        .await
        .expect("SDK CHG hangs")
        .expect("SDK CHG");
    wait_ns(&mut alice_ev, "BSY bob", |e| {
        matches!(e, NsEvent::PresenceChanged(p)
            if p.contact == BOB && p.status == Status::Busy && p.friendly_name == "Bob")
    })
    .await;
    timeout(
        T,
        bob.set_personal_message(&PersonalMessage {
            psm: "in a <meeting> & busy".to_owned(),
            current_media: String::new(),
        }),
    )
    .await
    .expect("SDK UUX hangs")
    .expect("SDK UUX");
    wait_ns(&mut alice_ev, "UBX bob", |e| {
        matches!(e, NsEvent::PersonalMessage { contact, psm, .. }
            if contact == BOB && psm == "in a <meeting> & busy")
    })
    .await;

    // Friendly names both ways.
    timeout(
        T,
        alice.command(|s, now| s.set_friendly_name(now, "Alice 100% new")),
    )
    .await
    .expect("rename hangs")
    .expect("rename");
    assert_eq!(
        server.friendly_name(ALICE).as_deref(),
        Some("Alice 100% new")
    );
    sdk_wait(&mut bob_ev, "new name of alice", |e| {
        matches!(e, Event::PresenceUpdate { email, display_name, .. }
            if email == ALICE && display_name == "Alice 100% new")
    })
    .await;
    timeout(T, bob.set_display_name("Bob B"))
        .await
        .expect("SDK PRP hangs")
        .expect("SDK PRP");
    wait_ns(&mut alice_ev, "new name of bob", |e| {
        matches!(e, NsEvent::PresenceChanged(p) if p.contact == BOB && p.friendly_name == "Bob B")
    })
    .await;

    // Our personal message reaches the SDK.
    timeout(
        T,
        alice.command(|s, now| s.set_personal_message(now, "bridged", "")),
    )
    .await
    .expect("UUX hangs")
    .expect("UUX");
    sdk_wait(&mut bob_ev, "UBX alice", |e| {
        matches!(e, Event::PersonalMessageUpdate { email, personal_message }
            if email == ALICE && personal_message.psm == "bridged")
    })
    .await;

    // A switchboard we open: text, typing and nudges both ways.
    let (sb, mut sb_ev) = open_sb(&settings, &alice, &[BOB]).await;
    let bob_sb = sdk_answered(&mut bob_ev).await;
    let mut bob_sb_ev = sdk_collect_sb(&bob_sb);
    wait_sb(
        &mut sb_ev,
        "bob joins",
        |e| matches!(e, SbEvent::Joined { participant, .. } if participant.email == BOB),
    )
    .await;
    assert_eq!(
        sb.participants()
            .await
            .expect("participants")
            .iter()
            .map(|p| p.email.as_str())
            .collect::<Vec<_>>(),
        [BOB]
    );
    send(&sb, "hello bob, ünïcode\nline two").await;
    sdk_text(&mut bob_sb_ev, ALICE, "hello bob, ünïcode\nline two").await;
    sdk_say(&bob_sb, "hi alice").await;
    wait_sb(&mut sb_ev, "text from bob", |e| is_text(e, BOB, "hi alice")).await;

    timeout(T, sb.send_typing())
        .await
        .expect("typing hangs")
        .expect("typing");
    sdk_wait(
        &mut bob_sb_ev,
        "typing alice",
        |e| matches!(e, Event::TypingNotification { email } if email == ALICE),
    )
    .await;
    timeout(T, bob_sb.send_typing_user(BOB))
        .await
        .expect("SDK typing hangs")
        .expect("SDK typing");
    wait_sb(&mut sb_ev, "typing bob", |e| {
        matches!(e, SbEvent::Message { payload: MsgPayload::Typing { user }, .. } if user == BOB)
    })
    .await;

    // A nudge resolves when written (mode N has no ACK); it must not wait for a timeout.
    timeout(Duration::from_secs(3), sb.send_nudge())
        .await
        .expect("nudge waits for an ACK that never comes")
        .expect("nudge");
    sdk_wait(
        &mut bob_sb_ev,
        "nudge alice",
        |e| matches!(e, Event::Nudge { email } if email == ALICE),
    )
    .await;
    timeout(T, bob_sb.send_nudge())
        .await
        .expect("SDK nudge hangs")
        .expect("SDK nudge");
    wait_sb(
        &mut sb_ev,
        "nudge bob",
        |e| matches!(e, SbEvent::Message { from, payload: MsgPayload::Nudge, .. } if from == BOB),
    )
    .await;

    // Three parties: Carol (another SDK user) is invited into our switchboard.
    let (carol, mut carol_ev) = sdk_login(&server, CAROL).await;
    timeout(T, sb.invite(CAROL.to_owned()))
        .await
        .expect("CAL hangs")
        .expect("CAL");
    let carol_sb = sdk_answered(&mut carol_ev).await;
    let mut carol_sb_ev = sdk_collect_sb(&carol_sb);
    wait_sb(
        &mut sb_ev,
        "carol joins",
        |e| matches!(e, SbEvent::Joined { participant, .. } if participant.email == CAROL),
    )
    .await;
    sdk_wait(
        &mut bob_sb_ev,
        "carol joins (bob)",
        |e| matches!(e, Event::ParticipantInSwitchboard { email } if email == CAROL),
    )
    .await;
    send(&sb, "hi both").await;
    sdk_text(&mut bob_sb_ev, ALICE, "hi both").await;
    sdk_text(&mut carol_sb_ev, ALICE, "hi both").await;
    sdk_say(&carol_sb, "carol here").await;
    wait_sb(&mut sb_ev, "text from carol", |e| {
        is_text(e, CAROL, "carol here")
    })
    .await;
    sdk_text(&mut bob_sb_ev, CAROL, "carol here").await;
    timeout(T, carol_sb.disconnect())
        .await
        .expect("SDK OUT hangs")
        .expect("SDK OUT");
    wait_sb(
        &mut sb_ev,
        "carol leaves",
        |e| matches!(e, SbEvent::Left { contact, .. } if contact == CAROL),
    )
    .await;

    // The SDK opens a conversation with us: RNG, ANS, text.
    let carol_to_us = timeout(T, carol.create_session(ALICE))
        .await
        .expect("SDK XFR/CAL hangs")
        .expect("SDK session");
    let (in_sb, mut in_ev) = answer_sb(&settings, &alice, &mut alice_ev, CAROL).await;
    let mut carol_to_us_ev = sdk_collect_sb(&carol_to_us);
    sdk_say(&carol_to_us, "ping from carol").await;
    wait_sb(&mut in_ev, "carol's text", |e| {
        is_text(e, CAROL, "ping from carol")
    })
    .await;
    send(&in_sb, "pong").await;
    sdk_text(&mut carol_to_us_ev, ALICE, "pong").await;

    // Leaving: our OUT reaches the SDK as BYE.
    in_sb.close().await;
    wait_sb(&mut in_ev, "closed", |e| matches!(e, SbEvent::Closed(_))).await;
    sdk_wait(
        &mut carol_to_us_ev,
        "BYE alice",
        |e| matches!(e, Event::ParticipantLeftSwitchboard { email } if email == ALICE),
    )
    .await;
    drop(sb);
}

#[tokio::test]
async fn interop_with_msnp11_sdk_as_msnp11() {
    interop(11).await;
}

#[tokio::test]
async fn interop_with_msnp11_sdk_as_msnp12() {
    interop(12).await;
}

// ----- 4. faults ------------------------------------------------------------------------

fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_millis(200))
}

async fn start_session(settings: &MsnSettings, email: &str) -> (MsnSession, SessionEvents) {
    let (session, mut events) = timeout(
        T * 2,
        MsnSession::start(
            settings.clone(),
            http(),
            NsConfig::new(email),
            Secret::new(PASSWORD),
            backoff(),
        ),
    )
    .await
    .expect("MsnSession::start hangs")
    .expect("MsnSession::start");
    wait_session(&mut events, "connected", |e| {
        matches!(e, SessionEvent::Connected { .. })
    })
    .await;
    wait_session(&mut events, "own status", |e| {
        matches!(e, SessionEvent::Ns(NsEvent::OwnStatus { .. }))
    })
    .await;
    (session, events)
}

#[tokio::test]
async fn dropped_connection_reconnects_and_restores_the_profile() {
    let server = server().await;
    let settings = settings(&server, &[12]);
    let (session, mut events) = start_session(&settings, ALICE).await;
    timeout(T, session.set_status(Status::Away))
        .await
        .expect("hangs")
        .expect("status");
    timeout(T, session.set_friendly_name("Alice Restored".to_owned()))
        .await
        .expect("hangs")
        .expect("name");
    timeout(T, session.set_personal_message("still here".to_owned()))
        .await
        .expect("hangs")
        .expect("psm");
    assert_eq!(server.online(ALICE).as_deref(), Some("AWY"));
    let uux_before = uux_count(&server, "still here");
    // A rename from elsewhere while we are away is undone by the restore.
    server.add_account(ALICE, PASSWORD, "Renamed Elsewhere");

    let mut srv = server.subscribe();
    server.drop_connections(ALICE);
    wait_session(&mut events, "reconnecting", |e| {
        matches!(e, SessionEvent::Reconnecting { .. })
    })
    .await;
    wait_session(&mut events, "connected again", |e| {
        matches!(e, SessionEvent::Connected { version: 12 })
    })
    .await;
    wait_server(&mut srv, "AWY restored", |e| {
        matches!(e, ServerEvent::StatusChanged { email, status } if email == ALICE && status == "AWY")
    })
    .await;
    wait_session(&mut events, "name restored", |e| {
        matches!(e, SessionEvent::Ns(NsEvent::OwnFriendlyName { name }) if name == "Alice Restored")
    })
    .await;
    assert_eq!(server.online(ALICE).as_deref(), Some("AWY"));
    assert_eq!(
        server.friendly_name(ALICE).as_deref(),
        Some("Alice Restored")
    );
    // The UUX follows the first CHG; the server answers in order, so a command round trip
    // after it proves it was processed.
    let client = session.client().expect("connected");
    set_status(&client, Status::Away).await;
    assert!(uux_count(&server, "still here") > uux_before);
    let psm = server.personal_message(ALICE).expect("psm");
    assert!(String::from_utf8_lossy(&psm).contains("<PSM>still here</PSM>"));

    // The handles work on the new connection.
    assert!(session.client().is_some());
    timeout(T, session.set_status(Status::Online))
        .await
        .expect("hangs")
        .expect("status after reconnect");
    timeout(T, session.logout()).await.expect("logout hangs");
    wait_session(&mut events, "ended", |e| {
        matches!(e, SessionEvent::Ended(EndReason::LoggedOut))
    })
    .await;
}

fn uux_count(server: &MsnServerHandle, psm: &str) -> usize {
    server
        .frames(ALICE)
        .iter()
        .filter(|f| {
            f.verb == "UUX"
                && f.payload
                    .as_ref()
                    .is_some_and(|p| String::from_utf8_lossy(p).contains(psm))
        })
        .count()
}

#[tokio::test]
async fn a_silent_server_gives_typed_timeouts() {
    let server = server().await;
    let mut s = settings(&server, &[12]);
    s.request_timeout = Duration::from_millis(300);
    let (alice, _events) = connect(&s, ALICE).await;
    server.stop_answering(ALICE, true);
    let result = timeout(
        Duration::from_secs(3),
        alice.command(|s, now| s.set_status(now, Status::Busy, 0, None)),
    )
    .await
    .expect("a command to a silent server hangs");
    assert!(matches!(result, Err(NetError::Timeout)), "{result:?}");
    let sb = timeout(Duration::from_secs(3), alice.request_switchboard())
        .await
        .expect("XFR SB to a silent server hangs");
    assert!(matches!(sb, Err(NetError::Timeout)), "{sb:?}");
    // Answers again once the fault clears: the connection is still in step.
    server.stop_answering(ALICE, false);
    set_status(&alice, Status::Online).await;
}

#[tokio::test]
async fn second_login_elsewhere_ends_the_session() {
    let server = server().await;
    let settings = settings(&server, &[11]);
    let (session, mut events) = start_session(&settings, ALICE).await;
    let (_other, _other_events) = connect(&settings, ALICE).await;
    wait_session(&mut events, "signed in elsewhere", |e| {
        matches!(e, SessionEvent::Ended(EndReason::SignedInElsewhere))
    })
    .await;
    // No reconnect follows: the stream ends.
    let next = timeout(T, events.recv()).await.expect("stream stays open");
    assert!(next.is_none(), "{next:?}");
    assert!(session.client().is_none());
}

#[tokio::test]
async fn split_writes_still_log_in_and_chat() {
    let server = server().await;
    server.split_writes(true);
    let settings = settings(&server, &[12, 11, 10, 9, 8]);
    let (alice, _alice_ev) = connect(&settings, ALICE).await;
    let (bob, mut bob_ev) = connect(&settings, BOB).await;
    assert_eq!(alice.version(), 12);
    let (sb, mut sb_ev) = open_sb(&settings, &alice, &[BOB]).await;
    let (bob_sb, mut bob_sb_ev) = answer_sb(&settings, &bob, &mut bob_ev, ALICE).await;
    wait_sb(
        &mut sb_ev,
        "bob joins",
        |e| matches!(e, SbEvent::Joined { participant, .. } if participant.email == BOB),
    )
    .await;
    let long = "x".repeat(3000);
    send(&sb, &long).await;
    // Split into parts under the send limit, each delivered.
    let mut got = String::new();
    while got.len() < long.len() {
        let e = wait_sb(&mut bob_sb_ev, "long text", |e| {
            matches!(e, SbEvent::Message { .. })
        })
        .await;
        let SbEvent::Message {
            payload: MsgPayload::Text { text, .. },
            ..
        } = e
        else {
            panic!("{e:?}");
        };
        got.push_str(&text);
    }
    assert_eq!(got, long);
    send(&bob_sb, "back at you").await;
    wait_sb(&mut sb_ev, "reply", |e| is_text(e, BOB, "back at you")).await;
}

#[tokio::test]
async fn server_shutdown_leads_to_reconnect_attempts() {
    let server = server().await;
    let settings = settings(&server, &[12]);
    let (session, mut events) = start_session(&settings, ALICE).await;
    server.shutdown().await;
    let first = wait_session(&mut events, "reconnecting", |e| {
        matches!(e, SessionEvent::Reconnecting { .. })
    })
    .await;
    let SessionEvent::Reconnecting { reason, .. } = first else {
        unreachable!()
    };
    assert!(reason.contains("ServerShutdown"), "{reason}");
    // The server is gone, so attempts keep failing and keep being reported.
    wait_session(
        &mut events,
        "another attempt",
        |e| matches!(e, SessionEvent::Reconnecting { attempt, .. } if *attempt >= 2),
    )
    .await;
    timeout(T, session.logout()).await.expect("logout hangs");
    wait_session(&mut events, "ended", |e| {
        matches!(e, SessionEvent::Ended(EndReason::LoggedOut))
    })
    .await;
}

#[tokio::test]
async fn dropping_every_session_handle_signs_out() {
    let server = server().await;
    let settings = settings(&server, &[12]);
    let (session, mut events) = start_session(&settings, ALICE).await;
    let mut srv = server.subscribe();
    drop(session);
    // The session lives in its reader: reading on, it finds nobody wants it and signs out.
    wait_session(&mut events, "ended", |e| {
        matches!(e, SessionEvent::Ended(_))
    })
    .await;
    wait_server(
        &mut srv,
        "disconnect",
        |e| matches!(e, ServerEvent::Disconnected { email } if email == ALICE),
    )
    .await;
    let next = timeout(T, events.recv()).await.expect("events stay open");
    assert!(next.is_none(), "{next:?}");
}

/// The link's pump waits on the session's events beside other things, so a read is often
/// abandoned half-way: a reconnect must go on across abandoned reads (the backoff's wait
/// and the login under way are kept, not started over), or it would never finish.
#[tokio::test]
async fn a_reconnect_goes_on_across_abandoned_reads() {
    let server = server().await;
    let settings = settings(&server, &[12]);
    let (session, mut events) = start_session(&settings, ALICE).await;
    server.drop_connections(ALICE);
    let mut seen = Vec::new();
    let mut abandoned = 0u32;
    let deadline = tokio::time::Instant::now() + T;
    while !seen
        .iter()
        .any(|e| matches!(e, SessionEvent::Connected { .. }))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnect: {seen:?}"
        );
        match timeout(Duration::from_micros(200), events.recv()).await {
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("the session ended: {seen:?}"),
            Err(_) => abandoned += 1,
        }
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, SessionEvent::Reconnecting { .. })),
        "{seen:?}"
    );
    assert!(
        abandoned > 10,
        "reads were abandoned only {abandoned} times"
    );
    assert!(session.client().is_some());
    set_status(&session.client().expect("connected"), Status::Busy).await;
}

#[tokio::test]
async fn dropping_the_session_and_its_events_signs_out() {
    let server = server().await;
    let settings = settings(&server, &[12]);
    let (session, events) = start_session(&settings, ALICE).await;
    let mut srv = server.subscribe();
    drop(events);
    drop(session);
    wait_server(
        &mut srv,
        "disconnect",
        |e| matches!(e, ServerEvent::Disconnected { email } if email == ALICE),
    )
    .await;
}

// ----- 5. secrets -----------------------------------------------------------------------

#[test]
fn trace_log_holds_no_password_ticket_or_cookie() {
    let capture = crate::support::LogCapture::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cookies = runtime.block_on(async {
        let server = server().await;
        let settings = settings(&server, &[12]);
        let (alice, _alice_ev) = connect(&settings, ALICE).await;
        let (bob, mut bob_ev) = connect(&settings, BOB).await;
        let (address, auth) = timeout(T, alice.request_switchboard())
            .await
            .expect("XFR SB hangs")
            .expect("XFR SB");
        let (sb, mut sb_ev) =
            SbClient::open(&settings, SbConfig::new(ALICE, 12), &address, &auth, &[BOB])
                .await
                .expect("SB open");
        let invite = wait_ns(&mut bob_ev, "RNG", |e| {
            matches!(e, NsEvent::SwitchboardInvite { .. })
        })
        .await;
        let NsEvent::SwitchboardInvite {
            session_id,
            address,
            auth: rng_auth,
            ..
        } = invite
        else {
            unreachable!()
        };
        let (_bob_sb, mut bob_sb_ev) = SbClient::answer(
            &settings,
            SbConfig::new(BOB, 12),
            &address,
            &rng_auth,
            &session_id,
        )
        .await
        .expect("ANS");
        wait_sb(&mut sb_ev, "bob joins", |e| {
            matches!(e, SbEvent::Joined { .. })
        })
        .await;
        send(&sb, "a message body").await;
        wait_sb(&mut bob_sb_ev, "text", |e| {
            is_text(e, ALICE, "a message body")
        })
        .await;
        // A wrong password goes through the same code paths; NotRST.srf sends it in a
        // request header.
        let _ = connect_with(&settings, CAROL, "wrong-Zq8!other").await;
        let mut not_rst = settings.clone();
        not_rst.ticket_route = TicketRoute::NotRst {
            url: server.not_rst_url(),
        };
        let _ = connect_with(&not_rst, CAROL, "wrong-Zq8!other").await;
        alice.logout().await;
        bob.logout().await;
        [auth.expose().to_owned(), rng_auth.expose().to_owned()]
    });
    drop(runtime);
    let log = capture.finish();
    assert!(
        log.contains("CHG") && log.contains("MSG"),
        "the capture must hold the wire trace: {log}"
    );
    for secret in [PASSWORD, "wrong-Zq8!other"] {
        assert!(!log.contains(secret), "the password leaked into the log");
    }
    for cookie in cookies {
        assert!(
            !log.contains(&cookie),
            "a switchboard cookie leaked: {cookie}"
        );
    }
    // Passport tickets look like `t=…&p=…`; the login header carries `pwd=`.
    for needle in ["&p=", "from-PP", "pwd=", "Passport1.4 OrgVerb"] {
        assert!(!log.contains(needle), "{needle:?} found in the log");
    }
}
