//! Interop tests: the third-party `msnp11-sdk` client (MSNP11) against the in-process
//! test server (`testkit::msn_server`), so the server is validated by a client we did
//! not write. Every SDK call is wrapped in a timeout: some of its requests wait forever
//! for an exact reply.

use std::sync::Arc;
use std::time::Duration;

use msn_testkit::{MsnServer, MsnServerConfig, MsnServerHandle, ServerEvent};
use msnp11_sdk::{Client, Event, MsnpStatus, PersonalMessage, PlainText, Switchboard};
use tokio::sync::mpsc;
use tokio::time::timeout;

pub(crate) const T: Duration = Duration::from_secs(10);

pub(crate) type Events = mpsc::UnboundedReceiver<Event>;

pub(crate) fn text(s: &str) -> PlainText {
    PlainText {
        bold: false,
        italic: false,
        underline: false,
        strikethrough: false,
        color: "0".to_owned(),
        text: s.to_owned(),
    }
}

pub(crate) async fn server() -> MsnServerHandle {
    server_with(MsnServerConfig::default()).await
}

/// [`server`] with `config`.
pub(crate) async fn server_with(config: MsnServerConfig) -> MsnServerHandle {
    let server = MsnServer::start(config).await.expect("start test server");
    for (email, name) in [
        ("alice@example.com", "Alice Ä"),
        ("bob@example.com", "Bob"),
        ("carol@example.com", "Carol"),
    ] {
        server.add_account(email, "secret", name);
    }
    server.make_friends("alice@example.com", "bob@example.com");
    server.make_friends("alice@example.com", "carol@example.com");
    server.make_friends("bob@example.com", "carol@example.com");
    server
}

pub(crate) fn collect(client_events: &Client) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    client_events.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    rx
}

pub(crate) fn collect_sb(sb: &Switchboard) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    sb.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    rx
}

/// Connects to `port`, logs in, returns the client and its event stream.
pub(crate) async fn login_at(
    server: &MsnServerHandle,
    port: u16,
    email: &str,
    password: &str,
) -> Result<(Client, Events, Event), msnp11_sdk::SdkError> {
    let client = timeout(T, Client::new("127.0.0.1", port))
        .await
        .expect("connect timed out")?;
    let events = collect(&client);
    let event = timeout(
        T,
        client.login(
            email.to_owned(),
            password,
            &server.nexus_url(),
            "msnp11-sdk",
            "0.13.0",
        ),
    )
    .await
    .expect("login timed out")?;
    Ok((client, events, event))
}

pub(crate) async fn login(server: &MsnServerHandle, email: &str) -> (Client, Events) {
    let (client, events, event) = login_at(server, server.ns_addr().port(), email, "secret")
        .await
        .expect("login");
    assert!(matches!(event, Event::Authenticated), "{event:?}");
    (client, events)
}

pub(crate) async fn online(client: &Client) {
    timeout(T, client.set_presence(MsnpStatus::Online))
        .await
        .expect("CHG timed out")
        .expect("CHG");
}

/// Waits for the first event matching `pred` (others are skipped).
pub(crate) async fn wait_for<F: Fn(&Event) -> bool>(rx: &mut Events, what: &str, pred: F) -> Event {
    crate::support::wait_for(rx, T, what, pred).await
}

pub(crate) async fn answered(rx: &mut Events) -> Arc<Switchboard> {
    match wait_for(rx, "SessionAnswered", |e| {
        matches!(e, Event::SessionAnswered(_))
    })
    .await
    {
        Event::SessionAnswered(sb) => sb,
        _ => unreachable!(),
    }
}

pub(crate) async fn joined(rx: &mut Events, who: &str) {
    wait_for(
        rx,
        &format!("{who} joining"),
        |e| matches!(e, Event::ParticipantInSwitchboard { email } if email == who),
    )
    .await;
}

pub(crate) async fn got_text(rx: &mut Events, from: &str, body: &str) {
    wait_for(rx, &format!("text {body:?} from {from}"), |e| {
        matches!(e, Event::TextMessage { email, message } if email == from && message.text == body)
    })
    .await;
}

pub(crate) async fn say(sb: &Switchboard, body: &str) {
    timeout(T, sb.send_text_message(&text(body)))
        .await
        .expect("MSG timed out")
        .expect("MSG acknowledged");
}

#[tokio::test]
async fn login_via_dispatch_presence_psm_and_one_to_one_chat() {
    let server = server().await;

    // Alice starts at the dispatch server and is redirected to the NS.
    let (_, _, event) = login_at(
        &server,
        server.dispatch_addr().port(),
        "alice@example.com",
        "secret",
    )
    .await
    .expect("dispatch login");
    let Event::RedirectedTo { server: host, port } = event else {
        panic!("expected a redirect, got {event:?}");
    };
    assert_eq!(port, server.ns_addr().port());
    let (alice, mut alice_ev, event) = login_at(&server, port, "alice@example.com", "secret")
        .await
        .expect("NS login");
    assert_eq!(host, "127.0.0.1");
    assert!(matches!(event, Event::Authenticated));

    // The SYN burst carries her own name (PRP MFN), then Bob on her forward list.
    wait_for(
        &mut alice_ev,
        "own name",
        |e| matches!(e, Event::DisplayName(n) if n == "Alice Ä"),
    )
    .await;
    wait_for(
        &mut alice_ev,
        "Bob in FL",
        |e| matches!(e, Event::ContactInForwardList { email, .. } if email == "bob@example.com"),
    )
    .await;

    let (bob, mut bob_ev) = login(&server, "bob@example.com").await;
    assert_eq!(server.online("bob@example.com").as_deref(), Some("FLN"));
    online(&alice).await;
    assert_eq!(server.online("alice@example.com").as_deref(), Some("NLN"));

    // XFR SB is refused (913) before Bob's first CHG: the SDK then waits forever.
    assert!(
        timeout(
            Duration::from_millis(500),
            bob.create_session("alice@example.com")
        )
        .await
        .is_err()
    );

    // Bob's first CHG: ILN for Alice to Bob, NLN for Bob to Alice.
    online(&bob).await;
    wait_for(&mut bob_ev, "ILN alice", |e| {
        matches!(e, Event::InitialPresenceUpdate { email, display_name, .. }
            if email == "alice@example.com" && display_name == "Alice Ä")
    })
    .await;
    wait_for(
        &mut alice_ev,
        "NLN bob",
        |e| matches!(e, Event::PresenceUpdate { email, .. } if email == "bob@example.com"),
    )
    .await;

    // Personal message fan-out (UUX -> UBX).
    timeout(
        T,
        alice.set_personal_message(&PersonalMessage {
            psm: "at work".to_owned(),
            current_media: String::new(),
        }),
    )
    .await
    .expect("UUX timed out")
    .expect("UUX");
    wait_for(&mut bob_ev, "UBX alice", |e| {
        matches!(e, Event::PersonalMessageUpdate { email, personal_message }
            if email == "alice@example.com" && personal_message.psm == "at work")
    })
    .await;

    // Friendly-name change reaches Bob with the next NLN.
    timeout(T, alice.set_display_name("Alice B"))
        .await
        .expect("PRP timed out")
        .expect("PRP");
    wait_for(&mut bob_ev, "NLN with new name", |e| {
        matches!(e, Event::PresenceUpdate { email, display_name, .. }
            if email == "alice@example.com" && display_name == "Alice B")
    })
    .await;
    assert_eq!(
        server.friendly_name("alice@example.com").as_deref(),
        Some("Alice B")
    );

    // Switchboard: Alice calls Bob, Bob's SDK answers the RNG.
    let alice_sb = timeout(T, alice.create_session("bob@example.com"))
        .await
        .expect("XFR/USR/CAL timed out")
        .expect("create session");
    let mut alice_sb_ev = collect_sb(&alice_sb);
    let bob_sb = answered(&mut bob_ev).await;
    let mut bob_sb_ev = collect_sb(&bob_sb);
    joined(&mut alice_sb_ev, "bob@example.com").await;
    joined(&mut bob_sb_ev, "alice@example.com").await; // from IRO

    say(&alice_sb, "hello bob").await;
    got_text(&mut bob_sb_ev, "alice@example.com", "hello bob").await;
    say(&bob_sb, "hi alice\nsecond line").await;
    got_text(&mut alice_sb_ev, "bob@example.com", "hi alice\nsecond line").await;

    timeout(T, alice_sb.send_typing_user("alice@example.com"))
        .await
        .expect("typing timed out")
        .expect("typing");
    wait_for(
        &mut bob_sb_ev,
        "typing",
        |e| matches!(e, Event::TypingNotification { email } if email == "alice@example.com"),
    )
    .await;
    timeout(T, bob_sb.send_nudge())
        .await
        .expect("nudge timed out")
        .expect("nudge");
    wait_for(
        &mut alice_sb_ev,
        "nudge",
        |e| matches!(e, Event::Nudge { email } if email == "bob@example.com"),
    )
    .await;
    assert_eq!(server.switchboards_of("alice@example.com").len(), 1);

    // Bob leaves: Alice sees BYE, and a message into the empty session is NAKed.
    timeout(T, bob_sb.disconnect())
        .await
        .expect("OUT")
        .expect("OUT");
    wait_for(
        &mut alice_sb_ev,
        "BYE bob",
        |e| matches!(e, Event::ParticipantLeftSwitchboard { email } if email == "bob@example.com"),
    )
    .await;
    let nak = timeout(T, alice_sb.send_text_message(&text("anyone?")))
        .await
        .expect("NAK timed out");
    assert!(nak.is_err(), "a message to nobody must be NAKed");

    // Bob signs out: Alice gets FLN.
    timeout(T, bob.disconnect())
        .await
        .expect("OUT")
        .expect("OUT");
    wait_for(
        &mut alice_ev,
        "FLN bob",
        |e| matches!(e, Event::ContactOffline { email } if email == "bob@example.com"),
    )
    .await;
}

#[tokio::test]
async fn three_party_switchboard() {
    let server = server().await;
    let (alice, mut alice_ev) = login(&server, "alice@example.com").await;
    let (bob, mut bob_ev) = login(&server, "bob@example.com").await;
    let (carol, mut carol_ev) = login(&server, "carol@example.com").await;
    for c in [&alice, &bob, &carol] {
        online(c).await;
    }
    let _ = &mut alice_ev;

    let alice_sb = timeout(T, alice.create_session("bob@example.com"))
        .await
        .expect("timed out")
        .expect("session");
    let mut alice_sb_ev = collect_sb(&alice_sb);
    let bob_sb = answered(&mut bob_ev).await;
    let mut bob_sb_ev = collect_sb(&bob_sb);
    joined(&mut alice_sb_ev, "bob@example.com").await;

    timeout(T, alice_sb.invite("carol@example.com"))
        .await
        .expect("CAL timed out")
        .expect("CAL");
    let carol_sb = answered(&mut carol_ev).await;
    let mut carol_sb_ev = collect_sb(&carol_sb);
    // IRO lists both earlier participants; JOI reaches both of them.
    joined(&mut carol_sb_ev, "alice@example.com").await;
    joined(&mut carol_sb_ev, "bob@example.com").await;
    joined(&mut alice_sb_ev, "carol@example.com").await;
    joined(&mut bob_sb_ev, "carol@example.com").await;

    say(&alice_sb, "hi both").await;
    got_text(&mut bob_sb_ev, "alice@example.com", "hi both").await;
    got_text(&mut carol_sb_ev, "alice@example.com", "hi both").await;
    say(&carol_sb, "hi from carol").await;
    got_text(&mut alice_sb_ev, "carol@example.com", "hi from carol").await;
    got_text(&mut bob_sb_ev, "carol@example.com", "hi from carol").await;

    // Calling someone already present is refused (215).
    assert!(
        timeout(T, alice_sb.invite("bob@example.com"))
            .await
            .expect("CAL timed out")
            .is_err()
    );

    timeout(T, carol_sb.disconnect())
        .await
        .expect("OUT")
        .expect("OUT");
    for rx in [&mut alice_sb_ev, &mut bob_sb_ev] {
        wait_for(rx, "BYE carol", |e| {
            matches!(e, Event::ParticipantLeftSwitchboard { email } if email == "carol@example.com")
        })
        .await;
    }
    assert_eq!(server.switchboards_of("alice@example.com")[0].len(), 2);
}

#[tokio::test]
async fn wrong_password_fails_and_is_not_logged() {
    let server = server().await;
    let mut events = server.subscribe();
    let result = login_at(
        &server,
        server.ns_addr().port(),
        "alice@example.com",
        "nope",
    )
    .await;
    assert!(result.is_err(), "wrong password must not log in");
    assert_eq!(server.online("alice@example.com"), None);
    let mut saw_failure = false;
    while let Ok(e) = events.try_recv() {
        if let ServerEvent::LoginFailed { email } = &e {
            saw_failure |= email == "alice@example.com";
        }
        assert!(
            !format!("{e:?}").contains("nope"),
            "password leaked into {e:?}"
        );
    }
    assert!(saw_failure);
    // Unknown account: 911 at USR I.
    let result = login_at(&server, server.ns_addr().port(), "nobody@example.com", "x").await;
    assert!(result.is_err());
}

#[tokio::test]
async fn second_login_gets_out_oth() {
    let server = server().await;
    let (first, mut first_ev) = login(&server, "alice@example.com").await;
    online(&first).await;
    let (_second, _second_ev) = login(&server, "alice@example.com").await;
    wait_for(&mut first_ev, "OUT OTH", |e| {
        matches!(e, Event::LoggedInAnotherDevice)
    })
    .await;
    assert_eq!(server.online("alice@example.com").as_deref(), Some("FLN"));
    // Tickets and cookies never appear in the frame log.
    for f in server.frames("alice@example.com") {
        if f.verb == "USR" && f.args.get(1).map(String::as_str) == Some("S") {
            assert_eq!(f.args[2], "<redacted>");
        }
    }
}

/// Picture bytes with a PNG signature (nothing here decodes them), varied by `salt`.
pub fn picture(len: usize, salt: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len.saturating_sub(8)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)));
    v
}
