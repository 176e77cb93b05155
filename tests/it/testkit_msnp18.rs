//! Wire-level tests of the test server's MSNP13–18 side with a raw client: single
//! sign-on (RST tokens, the MBI response checked byte for byte, the machine GUID), the
//! address book over SOAP (only while the NS session is up), `ADL`/`RML`, presence in
//! the MSNP18 forms, and a contact who adds the user staying pending until answered
//! (MSNP.md §2.5, §2.8, §4.5, §5.4, §15.5).

use std::time::Duration;

use msn_testkit::{MsnServerConfig, MsnServerHandle};
use msnp::abch::{self, Role};
use msnp::auth::{self, CONTACTS_ADDRESS, MESSENGER_CLEAR_ADDRESS, Secret};
use msnp::frame::Frame;
use msnp::verb::Verb;

use super::testkit_raw::{Raw, chg, login, server_with};

const GUID: &str = "{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9}";

async fn server() -> MsnServerHandle {
    server_with(MsnServerConfig {
        versions: 8..=18,
        ..MsnServerConfig::default()
    })
    .await
}

/// The tokens of an RST request for single sign-on: (messenger ticket, its binary
/// secret, address-book ticket).
async fn sso_tokens(
    server: &MsnServerHandle,
    email: &str,
    password: &str,
) -> Result<(Secret, Secret, Secret), auth::AuthError> {
    let req = auth::sso_rst_request(
        &format!("http://{}/RST.srf", server.http_addr()),
        email,
        &Secret::new(password),
        "MBI_KEY_OLD",
    )?;
    let resp = reqwest::Client::new()
        .post(&req.url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(req.body.expose().to_owned())
        .send()
        .await
        .expect("RST answers");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("RST body");
    let tokens = auth::parse_rst_tokens(status, &body)?;
    let clear = auth::token_for(&tokens, status, MESSENGER_CLEAR_ADDRESS)?;
    let contacts = auth::token_for(&tokens, status, CONTACTS_ADDRESS)?;
    Ok((
        clear.ticket.clone(),
        clear.binary_secret.clone().expect("a binary secret"),
        contacts.ticket.clone(),
    ))
}

/// `VER`/`CVR`/`USR SSO I` up to the nonce.
async fn sso_start(server: &MsnServerHandle, email: &str, version: u8) -> (Raw, String) {
    let mut c = Raw::connect(server.ns_addr()).await;
    c.cmd(&format!("VER MSNP{version} CVR0")).await;
    c.expect_now("VER").await;
    c.version = version;
    c.cmd(&format!(
        "CVR 0x0409 winnt 6.1 i386 MSNMSGR 14.0.8117.0416 msmsgs {email}"
    ))
    .await;
    c.expect_now("CVR").await;
    c.cmd(&format!("USR SSO I {email}")).await;
    // Escargot sends its shields before the challenge (§2.5.1).
    let gcf = c.expect_now("GCF").await;
    assert!(gcf.payload.is_some_and(|p| !p.is_empty()));
    let usr = c.expect_now("USR").await;
    assert_eq!(
        (usr.arg(0), usr.arg(1), usr.arg(2)),
        (Some("SSO"), Some("S"), Some("MBI_KEY_OLD"))
    );
    let nonce = usr.arg(3).expect("a nonce").to_owned();
    assert_eq!(nonce.len(), 64);
    (c, nonce)
}

/// A full MSNP18 sign-in; returns the connection and the address-book ticket.
async fn sso_login(server: &MsnServerHandle, email: &str) -> (Raw, Secret) {
    sso_login_as(server, email, GUID).await
}

/// A full MSNP18 sign-in as the endpoint `guid`.
async fn sso_login_as(server: &MsnServerHandle, email: &str, guid: &str) -> (Raw, Secret) {
    let (mut c, nonce) = sso_start(server, email, 18).await;
    let (ticket, secret, contacts) = sso_tokens(server, email, "secret").await.expect("tokens");
    let blob = msnp::mbi::response(secret.expose(), &nonce, [7; 8]).expect("a blob");
    c.cmd(&format!("USR SSO S {} {blob} {guid}", ticket.expose()))
        .await;
    let ok = c.expect_now("USR").await;
    assert_eq!((ok.arg(0), ok.arg(1)), (Some("OK"), Some(email)));
    c.expect_now("SBS").await;
    c.expect_now("MSG").await;
    let ubx = c.expect_now("UBX").await;
    assert_eq!(ubx.args, [format!("1:{email}")]);
    (c, contacts)
}

async fn post(req: msnp::PostRequest) -> (u16, String) {
    let mut builder = reqwest::Client::new().post(&req.url);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let resp = builder
        .body(req.body.expose().to_owned())
        .send()
        .await
        .expect("the address book answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("a body"))
}

fn base(server: &MsnServerHandle) -> String {
    format!("http://{}", server.http_addr())
}

async fn memberships(server: &MsnServerHandle, ticket: &Secret) -> Vec<(Role, String)> {
    memberships_of(server, ticket)
        .await
        .into_iter()
        .map(|m| (m.role, m.address))
        .collect()
}

async fn memberships_of(server: &MsnServerHandle, ticket: &Secret) -> Vec<abch::Membership> {
    let (status, body) = post(abch::find_membership(&base(server), ticket).expect("request")).await;
    abch::parse_memberships(status, &body).expect("memberships")
}

#[tokio::test]
async fn msnp18_single_sign_on_address_book_and_presence() {
    let server = server().await;
    let (mut bob, contacts) = sso_login(&server, "bob@example.com").await;
    assert_eq!(
        server.machine_guid("bob@example.com").as_deref(),
        Some(GUID)
    );

    // No SYN on MSNP13+ (Escargot answers 502).
    let t = bob.cmd("SYN 0 0").await;
    let err = bob.expect_now("502").await;
    assert_eq!(err.trid, Some(t));

    // The address book: Alice is a messenger contact, allowed, and has Bob too.
    let (status, body) = post(abch::find_all(&base(&server), &contacts).expect("request")).await;
    let book = abch::parse_address_book(status, &body).expect("address book");
    assert_eq!(book.own_name.as_deref(), Some("Bob"));
    let alice: Vec<_> = book
        .contacts
        .iter()
        .filter(|c| c.address == "alice@example.com")
        .collect();
    assert!(alice.len() == 1 && alice[0].messenger, "{book:?}");
    let roles = memberships(&server, &contacts).await;
    assert!(
        roles.contains(&(Role::Allow, "alice@example.com".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(Role::Reverse, "alice@example.com".into())),
        "{roles:?}"
    );

    // BLP, the initial ADL (contents ignored), then CHG in the 16+ form, echoed.
    bob.cmd("BLP AL").await;
    bob.expect_now("BLP").await;
    let adl = r#"<ml l="1"><d n="example.com"><c n="alice" l="3" t="1"/></d></ml>"#;
    let t = bob.next_trid_for_payload();
    bob.frame(
        &Frame::command(Verb::ADL, t, Vec::<String>::new()).with_payload(bytes::Bytes::from(adl)),
    )
    .await;
    let ok = bob.expect_now("ADL").await;
    assert_eq!((ok.trid, ok.arg(0)), (Some(t), Some("OK")));
    let t = bob.cmd("CHG NLN 2789003324:48 0").await;
    let echo = bob.expect_now("CHG").await;
    assert_eq!(echo.trid, Some(t));
    assert_eq!(echo.args, ["NLN", "2789003324:48", "0"]);

    // Alice on MSNP12 comes online: Bob reads her in the MSNP18 form.
    let mut alice = login(&server, "alice@example.com", 12).await;
    chg(&mut alice, "NLN").await;
    let nln = bob.expect("NLN").await;
    assert_eq!(
        nln.args,
        [
            "NLN",
            "1:alice@example.com",
            "Alice",
            "1342177280:0",
            "%3Cmsnobj%2F%3E"
        ]
    );
    let ubx = bob.expect_now("UBX").await;
    assert_eq!(ubx.arg(0), Some("1:alice@example.com"));
    // And Alice (whose first CHG came after Bob's) reads him in hers: ILN, caps without
    // the extension.
    let iln = alice.expect("ILN").await;
    assert_eq!(iln.arg(1), Some("bob@example.com"));
    assert_eq!(iln.arg(3), Some("2789003324"));

    // Alice signs out: FLN in the MSNP18 form.
    alice.cmd("OUT").await;
    let fln = bob.expect("FLN").await;
    assert_eq!(fln.args, ["1:alice@example.com", "0:0"]);
}

#[tokio::test]
async fn one_who_adds_the_user_stays_pending_until_answered() {
    let server = server().await;
    let (mut bob, contacts) = sso_login(&server, "bob@example.com").await;
    bob.cmd("CHG NLN 2789003324:48 0").await;
    bob.expect("CHG").await;
    let mut carol = login(&server, "carol@example.com", 12).await;
    chg(&mut carol, "NLN").await;
    carol
        .cmd("ADC FL N=bob@example.com F=bob@example.com")
        .await;
    carol.expect("ADC").await;

    // Bob is told with the server's ADL (l="8", her name in f=).
    let told = bob.expect("ADL").await;
    assert_eq!(told.trid, Some(0));
    let entries = msnp::ml::parse(&String::from_utf8_lossy(
        told.payload.as_deref().unwrap_or_default(),
    ))
    .expect("an ml");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].address.as_str(), entries[0].lists),
        ("carol@example.com", 8)
    );
    assert_eq!(entries[0].friendly.as_deref(), Some("Carol"));

    // Pending, not yet on the reverse list of the address book.
    let roles = memberships(&server, &contacts).await;
    assert!(
        roles.contains(&(Role::Pending, "carol@example.com".into())),
        "{roles:?}"
    );
    assert!(
        !roles.contains(&(Role::Reverse, "carol@example.com".into())),
        "{roles:?}"
    );

    // Bob accepts as Escargot wants it: ABContactAdd, ADL l=3, DeleteMember Pending.
    let (status, body) =
        post(abch::contact_add(&base(&server), &contacts, "carol@example.com").expect("request"))
            .await;
    let id = abch::parse_contact_added(status, &body).expect("a contact id");
    assert!(!id.is_empty());
    let adl = r#"<ml><d n="example.com"><c n="carol" l="3" t="1"/></d></ml>"#;
    let t = bob.next_trid_for_payload();
    bob.frame(
        &Frame::command(Verb::ADL, t, Vec::<String>::new()).with_payload(bytes::Bytes::from(adl)),
    )
    .await;
    bob.expect("ADL").await;
    let roles = memberships(&server, &contacts).await;
    assert!(
        roles.contains(&(Role::Pending, "carol@example.com".into())),
        "still pending: {roles:?}"
    );
    let (status, body) = post(
        abch::member(
            &base(&server),
            &contacts,
            false,
            Role::Pending,
            "carol@example.com",
        )
        .expect("request"),
    )
    .await;
    abch::parse_ack(status, &body).expect("answered");
    let roles = memberships(&server, &contacts).await;
    assert!(
        roles.contains(&(Role::Reverse, "carol@example.com".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(Role::Allow, "carol@example.com".into())),
        "{roles:?}"
    );
    assert!(
        !roles.contains(&(Role::Pending, "carol@example.com".into())),
        "{roles:?}"
    );

    // Bob blocks her on the NS: RML l=2, ADL l=4.
    for (verb, ml) in [
        (
            Verb::RML,
            r#"<ml><d n="example.com"><c n="carol" l="2" t="1"/></d></ml>"#,
        ),
        (
            Verb::ADL,
            r#"<ml><d n="example.com"><c n="carol" l="4" t="1"/></d></ml>"#,
        ),
    ] {
        let t = bob.next_trid_for_payload();
        bob.frame(
            &Frame::command(verb, t, Vec::<String>::new()).with_payload(bytes::Bytes::from(ml)),
        )
        .await;
        let ok = bob.expect(&verb.to_string()).await;
        assert_eq!(ok.arg(0), Some("OK"));
    }
    let roles = memberships(&server, &contacts).await;
    assert!(
        roles.contains(&(Role::Block, "carol@example.com".into())),
        "{roles:?}"
    );
    // Carol no longer sees Bob.
    let fln = carol.expect("FLN").await;
    assert_eq!(fln.arg(0), Some("bob@example.com"));

    // A client may not set the server's lists: 241 and a disconnect.
    let bad = r#"<ml><d n="example.com"><c n="alice" l="8" t="1"/></d></ml>"#;
    let t = bob.next_trid_for_payload();
    bob.frame(
        &Frame::command(Verb::ADL, t, Vec::<String>::new()).with_payload(bytes::Bytes::from(bad)),
    )
    .await;
    bob.expect("241").await;
    bob.expect_closed().await;
    // The address book answers only while the NS session is up.
    let (status, body) = post(abch::find_all(&base(&server), &contacts).expect("request")).await;
    assert!(matches!(
        abch::parse_address_book(status, &body),
        Err(abch::AbchError::Fault { .. })
    ));
}

#[tokio::test]
async fn a_wrong_mbi_or_a_missing_machine_guid_is_refused() {
    let server = server().await;
    // A blob for another nonce.
    let (mut c, _nonce) = sso_start(&server, "bob@example.com", 18).await;
    let (ticket, secret, _) = sso_tokens(&server, "bob@example.com", "secret")
        .await
        .expect("tokens");
    let blob = msnp::mbi::response(secret.expose(), "not the nonce", [1; 8]).expect("a blob");
    c.cmd(&format!("USR SSO S {} {blob} {GUID}", ticket.expose()))
        .await;
    c.expect_now("911").await;
    c.expect_closed().await;

    // MSNP16 needs the machine GUID; MSNP15 takes a login without one.
    for (version, guid, accepted) in [
        (16, "", false),
        (16, " {not-a-guid}", false),
        (15, "", true),
    ] {
        let (mut c, nonce) = sso_start(&server, "bob@example.com", version).await;
        let (ticket, secret, _) = sso_tokens(&server, "bob@example.com", "secret")
            .await
            .expect("tokens");
        let blob = msnp::mbi::response(secret.expose(), &nonce, [2; 8]).expect("a blob");
        c.cmd(&format!("USR SSO S {} {blob}{guid}", ticket.expose()))
            .await;
        let answer = c
            .next_within(Duration::from_secs(5))
            .await
            .expect("an answer");
        let verb = answer.verb.to_string();
        assert_eq!(
            verb == "USR",
            accepted,
            "MSNP{version} {guid:?}: {answer:?}"
        );
    }
    // A wrong password is a SOAP fault from RST.
    assert!(matches!(
        sso_tokens(&server, "bob@example.com", "wrong").await,
        Err(e) if e.is_wrong_credentials()
    ));
    // TWN is refused on MSNP15+ (Escargot closes).
    let mut c = Raw::connect(server.ns_addr()).await;
    c.cmd("VER MSNP18 CVR0").await;
    c.expect_now("VER").await;
    c.version = 18;
    c.cmd("CVR 0x0409 winnt 6.1 i386 MSNMSGR 14.0.8117.0416 msmsgs bob@example.com")
        .await;
    c.expect_now("CVR").await;
    c.cmd("USR TWN I bob@example.com").await;
    c.expect_closed().await;
}

/// MPOP as Escargot does it (§15.3.4, §15.3.5): MSNP16+ endpoints with new GUIDs
/// coexist; a login reusing a GUID in use, or an older login, boots them all; a sign-out
/// request reaches the endpoint it names.
#[tokio::test]
async fn endpoints_coexist_and_are_booted_as_escargot_does() {
    const LAPTOP: &str = "{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}";
    const BRIDGE: &str = "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}";
    let server = server().await;
    let (mut laptop, _) = sso_login_as(&server, "bob@example.com", LAPTOP).await;
    let (mut bridge, _) = sso_login_as(&server, "bob@example.com", BRIDGE).await;
    assert_eq!(server.endpoint_count("bob@example.com"), 2);
    assert!(
        laptop.silent_for(Duration::from_millis(200)).await,
        "no OUT for the laptop"
    );

    // The laptop signs the bridge out: the bridge is told, nobody is disconnected.
    let t = laptop.next_trid_for_payload();
    laptop
        .frame(
            &Frame::command(
                Verb::UUN,
                t,
                [format!("bob@example.com;{BRIDGE}"), "4".into()],
            )
            .with_payload(bytes::Bytes::from_static(b"goawyplzthxbye")),
        )
        .await;
    let ok = laptop.expect("UUN").await;
    assert_eq!(ok.arg(0), Some("OK"));
    let ubn = bridge.expect("UBN").await;
    assert_eq!(
        ubn.arg(0),
        Some(format!("bob@example.com;{LAPTOP}").as_str())
    );
    assert_eq!(ubn.payload.as_deref(), Some(&b"goawyplzthxbye"[..]));
    assert_eq!(server.endpoint_count("bob@example.com"), 2);

    // A login reusing the bridge's GUID boots every endpoint.
    let (_again, _) = sso_login_as(&server, "bob@example.com", BRIDGE).await;
    for old in [&mut laptop, &mut bridge] {
        let out = old.expect("OUT").await;
        assert_eq!(out.arg(0), Some("OTH"));
    }
    assert_eq!(server.endpoint_count("bob@example.com"), 1);
    // An MSNP12 login boots the MSNP16+ one too.
    let _twn = login(&server, "bob@example.com", 12).await;
    assert_eq!(server.endpoint_count("bob@example.com"), 1);
    assert_eq!(server.version("bob@example.com"), Some(12));
}
