//! Circles end to end over raw MSNP18 sockets, with the `msnp` client's own address-book
//! request and readers: the circles and the ticket in `ABFindContactsPaged`, `USR SHA A`,
//! the circle `ADL` and its order rule, joining with `PUT` (rosters to everyone), `SDG`
//! relayed to every other endpoint (the sender's other endpoint too), and the `NFY DEL`
//! of a member whose last endpoint drops or who leaves the circle.

use super::super::test_http::post;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use msnp::abch::circles::{Circle, find_contacts_paged, parse_circles};
use msnp::abch::parse_address_book;
use msnp::auth::{Secret, parse_rst_tokens, sso_rst_request, token_for};
use msnp::frame::{Direction, Frame, parse};
use msnp::limits::Limits;

use super::super::{MsnServer, MsnServerConfig, MsnServerHandle};
use super::wire;

const BRIDGE: &str = "bridge@example.com";
const ALICE: &str = "alice@example.com";
const BRIDGE_GUID: &str = "{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9}";
const ALICE_GUID: &str = "{11111111-2222-4333-8444-555555555555}";
const ALICE_GUID_2: &str = "{aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee}";

/// One raw MSNP18 NS connection.
struct Client {
    email: &'static str,
    /// The endpoint's GUID as the `From` of `PUT`/`SDG` names it (lower case, braces).
    epid: String,
    stream: TcpStream,
    buf: BytesMut,
    trid: u32,
    /// The ticket of the login (the address book takes it too).
    ticket: String,
}

/// The command line of a frame without its payload length, e.g. `PUT 5 OK`.
fn line(frame: &Frame) -> String {
    let mut parts = vec![frame.verb.to_string()];
    parts.extend(frame.trid.map(|t| t.to_string()));
    parts.extend(frame.args.iter().map(str::to_owned));
    parts.join(" ")
}

impl Client {
    /// Sends `command` with `{t}` replaced by the next TrID; returns that TrID.
    async fn send(&mut self, command: &str) -> u32 {
        self.trid += 1;
        let command = command.replace("{t}", &self.trid.to_string());
        self.stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        self.trid
    }

    /// Sends `verb trid len` and `payload`; returns the TrID.
    async fn send_payload(&mut self, verb: &str, payload: &[u8]) -> u32 {
        self.trid += 1;
        let mut bytes = format!("{verb} {} {}\r\n", self.trid, payload.len()).into_bytes();
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).await.unwrap();
        self.trid
    }

    /// The next frame of any kind.
    async fn next_any(&mut self) -> Frame {
        loop {
            if let Some(frame) = parse(
                &mut self.buf,
                &Limits::default(),
                Direction::ServerToClient,
                18,
            )
            .unwrap()
            {
                return frame;
            }
            let read = timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf))
                .await
                .unwrap_or_else(|_| panic!("{}: a frame in time", self.email))
                .unwrap();
            assert!(read > 0, "{}: the server closed the connection", self.email);
        }
    }

    /// The next frame that is not login or presence chatter.
    async fn next(&mut self) -> Frame {
        loop {
            let frame = self.next_any().await;
            if !matches!(
                frame.verb.as_str(),
                "MSG" | "SBS" | "UBX" | "GCF" | "NLN" | "ILN" | "FLN" | "NOT"
            ) {
                return frame;
            }
        }
    }

    /// Reads the next frame and checks its line.
    async fn expect(&mut self, want: &str) -> Frame {
        let frame = self.next().await;
        assert_eq!(line(&frame), want, "{}", self.email);
        frame
    }

    /// Checks that nothing is waiting: a `PNG` is answered by the next frame, `QNG`.
    async fn quiet(&mut self) {
        self.send("PNG").await;
        let frame = self.next().await;
        assert_eq!(line(&frame), "QNG 60", "{}", self.email);
    }

    /// `ABFindContactsPaged` of the user's own book: (status, body).
    async fn find_contacts(&self, server: &MsnServerHandle) -> (u16, String) {
        let base = format!("http://{}", server.http_addr());
        post(find_contacts_paged(&base, &Secret::new(self.ticket.clone())).unwrap()).await
    }

    /// Reads the circle ticket from the address book and presents it with `USR SHA A`.
    async fn authenticate(&mut self, server: &MsnServerHandle) {
        let (status, body) = self.find_contacts(server).await;
        let ticket = parse_circles(status, &body).unwrap().ticket.unwrap();
        let nonce = STANDARD.encode(ticket.as_bytes());
        let t = self.send(&format!("USR {{t}} SHA A {nonce}")).await;
        self.expect(&format!("USR {t} OK {} 0 0", self.email)).await;
    }

    /// The contacts' initial `ADL`.
    async fn initial_adl(&mut self, contact: &str) {
        let (local, domain) = contact.split_once('@').unwrap();
        let ml = format!(r#"<ml l="1"><d n="{domain}"><c n="{local}" l="3" t="1"/></d></ml>"#);
        let t = self.send_payload("ADL", ml.as_bytes()).await;
        self.expect(&format!("ADL {t} OK")).await;
    }

    /// The circle `ADL` of `id`; returns the answer's line.
    async fn circle_adl(&mut self, id: &str) -> (u32, String) {
        let ml = format!(r#"<ml l="1"><d n="live.com"><c n="{id}" l="3" t="9"/></d></ml>"#);
        assert_eq!(ml.len(), 92);
        let t = self.send_payload("ADL", ml.as_bytes()).await;
        (t, line(&self.next().await))
    }

    /// The `PUT` that joins circle `id` (364 bytes, §15.4 step 5); returns the TrID.
    async fn join(&mut self, id: &str) -> u32 {
        let body = format!(
            "<circle><roster><id>IM</id><user><id>1:{}</id></user></roster></circle>",
            self.email
        );
        let payload = format!(
            "Routing: 1.0\r\nTo: 9:{id}@live.com\r\nFrom: 1:{};epid={}\r\n\r\nReliability: 1.0\r\nStream: 0\r\nSegment: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nContent-Type: application/circles+xml\r\nContent-Length: {}\r\n\r\n{body}",
            self.email,
            self.epid,
            body.len()
        );
        self.send_payload("PUT", payload.as_bytes()).await
    }

    /// An `SDG` text payload into circle `id` from this endpoint (`epid` as given).
    fn text(&self, id: &str, epid: &str, to_param: &str, text: &str) -> Vec<u8> {
        format!(
            "Routing: 1.0\r\nTo: 9:{id}@live.com{to_param}\r\nFrom: 1:{};epid={epid}\r\n\r\nReliability: 1.0\r\nStream: 0\r\nSegment: 1\r\n\r\nMessaging: 1.0\r\nContent-Length: {}\r\nContent-Type: Text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Type: Text\r\nMIME-Version: 1.0\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=; CO=0; CS=1; PF=0\r\n\r\n{text}",
            self.email,
            text.len()
        )
        .into_bytes()
    }

    /// Expects `NFY PUT` with the roster `members` of circle `id`.
    async fn expect_roster(&mut self, id: &str, members: &[&str]) {
        let frame = self.expect("NFY PUT").await;
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        assert_eq!(
            frame.payload.as_deref(),
            Some(wire::roster_payload(self.email, id, &members).as_bytes()),
            "{}",
            self.email
        );
    }

    /// Expects `NFY DEL` telling that `who` left circle `id`.
    async fn expect_left(&mut self, id: &str, who: &str) {
        let frame = self.expect("NFY DEL").await;
        let payload = String::from_utf8(frame.payload.unwrap().to_vec()).unwrap();
        assert!(
            payload.starts_with(&format!(
                "Routing: 1.0\r\nTo: 1:{}\r\nFrom: 9:{id}@live.com\r\n\r\n",
                self.email
            )),
            "{payload}"
        );
        assert!(
            payload.ends_with(&format!("\r\n\r\nNotification: 1.0\r\nNotifNum: 2\r\nUri: /circle/roster(IM)/user(1:{who})\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 0\r\n\r\n")),
            "{payload}"
        );
    }
}

/// Signs `email` in on MSNP18 with single sign-on (RST, MBI) from endpoint `guid`.
async fn sign_in(server: &MsnServerHandle, email: &'static str, guid: &str) -> Client {
    let request =
        sso_rst_request(&server.rst_url(), email, &Secret::new("pw"), "MBI_KEY_OLD").unwrap();
    let (status, body) = post(request).await;
    let tokens = parse_rst_tokens(status, &body).unwrap();
    let clear = token_for(&tokens, status, "messengerclear.live.com").unwrap();
    let ticket = clear.ticket.expose().to_owned();
    let secret = clear.binary_secret.as_ref().unwrap().expose().to_owned();
    let mut client = Client {
        email,
        epid: guid.to_lowercase(),
        stream: TcpStream::connect(server.ns_addr()).await.unwrap(),
        buf: BytesMut::new(),
        trid: 0,
        ticket: ticket.clone(),
    };
    client.send("VER {t} MSNP18 CVR0").await;
    client.expect("VER 1 MSNP18").await;
    client
        .send(&format!(
            "CVR {{t}} 0x0409 winnt 6.1 i386 MSNMSGR 14.0.8117.0416 msmsgs {email}"
        ))
        .await;
    assert!(line(&client.next().await).starts_with("CVR 2 "));
    client.send(&format!("USR {{t}} SSO I {email}")).await;
    let challenge = client.next().await;
    assert_eq!(
        challenge.arg(2),
        Some("MBI_KEY_OLD"),
        "{}",
        line(&challenge)
    );
    let nonce = challenge.arg(3).unwrap().to_owned();
    let blob = msnp::mbi::response(&secret, &nonce, [7; 8]).unwrap();
    let t = client
        .send(&format!("USR {{t}} SSO S {ticket} {blob} {guid}"))
        .await;
    client.expect(&format!("USR {t} OK {email} 1 0")).await;
    client
}

#[tokio::test]
async fn circles_round_trip_at_msnp18() {
    let server = MsnServer::start(MsnServerConfig {
        versions: 18..=18,
        ..MsnServerConfig::default()
    })
    .await
    .unwrap();
    server.add_account(BRIDGE, "pw", "Bridge");
    server.add_account(ALICE, "pw", "Alice");
    server.make_friends(BRIDGE, ALICE);
    let id = server.create_circle("Book club", ALICE, &[BRIDGE]);
    assert_eq!(id, "00000000-0000-0000-0009-000000000001");
    let other = server.create_circle("Invited", ALICE, &[]);
    server.invite_to_circle(&other, BRIDGE);

    let mut bridge = sign_in(&server, BRIDGE, BRIDGE_GUID).await;
    let mut alice = sign_in(&server, ALICE, ALICE_GUID).await;

    // The address book: Alice a contact, the circles not; both circles with their state.
    let (status, body) = bridge.find_contacts(&server).await;
    let book = parse_address_book(status, &body).unwrap();
    let contacts: Vec<&str> = book.contacts.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(contacts, [ALICE]);
    assert!(body.contains("<contactType>Circle</contactType>"), "{body}");
    assert!(body.contains("<Role>Member</Role><State>Accepted</State>"));
    assert!(body.contains("<Role>Member</Role><State>WaitingResponse</State>"));
    let circles = parse_circles(status, &body).unwrap();
    assert_eq!(
        circles.circles,
        [
            Circle {
                id: id.clone(),
                name: "Book club".to_owned(),
                accepted: true
            },
            Circle {
                id: other.clone(),
                name: "Invited".to_owned(),
                accepted: false
            }
        ]
    );
    let ticket = circles.ticket.unwrap();
    assert!(ticket.starts_with("<?xml version=\"1.0\" encoding=\"utf-16\"?><SignedTicket "));

    // The circle's own book lists its members.
    let base = format!("http://{}", server.http_addr());
    let mut request = find_contacts_paged(&base, &Secret::new(bridge.ticket.clone())).unwrap();
    let edited = request.body.expose().replace(
        "<filterOptions>",
        &format!("<abHandle><ABId>{id}</ABId><Puid>0</Puid><Cid>0</Cid></abHandle><filterOptions>"),
    );
    request.body = Secret::new(edited);
    let (status, members) = post(request).await;
    assert_eq!(status, 200, "{members}");
    assert!(members.contains("<passportName>alice@example.com</passportName>"));
    assert!(members.contains(
        "<RelationshipState>3</RelationshipState><RelationshipRole>1</RelationshipRole>"
    ));
    assert!(members.contains(&format!("<passportName>{id}@live.com</passportName>")));

    // The circle ADL wants USR SHA A first; a wrong nonce is 911.
    bridge.initial_adl(ALICE).await;
    let (t, answer) = bridge.circle_adl(&id).await;
    assert_eq!(answer, format!("933 {t}"));
    let t = bridge.send("USR {t} SHA A d3Jvbmc=").await;
    bridge.expect(&format!("911 {t}")).await;
    let t = bridge
        .send(&format!("USR {{t}} SHA A {}", STANDARD.encode(&ticket)))
        .await;
    bridge.expect(&format!("USR {t} OK {BRIDGE} 0 0")).await;
    // An invitation not yet accepted cannot be added.
    let (t, answer) = bridge.circle_adl(&other).await;
    assert_eq!(answer, format!("933 {t}"));
    let (t, answer) = bridge.circle_adl(&id).await;
    assert_eq!(answer, format!("ADL {t} OK"));

    // Alice adds the circle before her contacts' initial ADL: answered, but no PUT.
    alice.authenticate(&server).await;
    let (t, answer) = alice.circle_adl(&id).await;
    assert_eq!(answer, format!("ADL {t} OK"));
    let t = alice.join(&id).await;
    alice.expect(&format!("201 {t}")).await;
    alice.initial_adl(BRIDGE).await;
    let (t, answer) = alice.circle_adl(&id).await;
    assert_eq!(answer, format!("ADL {t} OK"));
    let t = alice.join(&id).await;
    let ok = alice.expect(&format!("PUT {t} OK")).await;
    assert_eq!(ok.payload.as_deref(), Some(&b""[..]));
    alice.expect_roster(&id, &[ALICE]).await;

    // The bridge joins: the roster of both to both.
    let t = bridge.join(&id).await;
    bridge.expect(&format!("PUT {t} OK")).await;
    bridge.expect_roster(&id, &[ALICE, BRIDGE]).await;
    alice.expect_roster(&id, &[ALICE, BRIDGE]).await;
    assert_eq!(server.circle_roster(&id), [ALICE, BRIDGE]);

    // SDG: relayed unchanged to the others, not echoed, no reply.
    let hello = bridge.text(&id, &bridge.epid, ";path=IM", "hello");
    assert_eq!(hello.len(), 402);
    bridge.send_payload("SDG", &hello).await;
    let relayed = alice.expect("SDG 0").await;
    assert_eq!(relayed.payload.as_deref(), Some(&hello[..]));
    bridge.quiet().await;
    assert!(
        server
            .frames(BRIDGE)
            .iter()
            .any(|f| f.verb == "SDG" && f.payload.as_deref() == Some(&hello[..]))
    );
    // The GUID in upper case, another endpoint's, no `path=IM`, a short body: 201.
    for payload in [
        bridge.text(&id, BRIDGE_GUID, ";path=IM", "hello"),
        bridge.text(&id, &alice.epid, ";path=IM", "hello"),
        bridge.text(&id, &bridge.epid, "", "hello"),
        String::from_utf8(bridge.text(&id, &bridge.epid, ";path=IM", "hello"))
            .unwrap()
            .replace("Content-Length: 5", "Content-Length: 9")
            .into_bytes(),
    ] {
        let t = bridge.send_payload("SDG", &payload).await;
        bridge.expect(&format!("201 {t}")).await;
    }
    alice.quiet().await;

    // A second endpoint of Alice's joins; SDG reaches every endpoint but the sender's.
    let mut alice2 = sign_in(&server, ALICE, ALICE_GUID_2).await;
    alice2.authenticate(&server).await;
    alice2.initial_adl(BRIDGE).await;
    let (t, answer) = alice2.circle_adl(&id).await;
    assert_eq!(answer, format!("ADL {t} OK"));
    let t = alice2.join(&id).await;
    alice2.expect(&format!("PUT {t} OK")).await;
    for client in [&mut alice, &mut bridge, &mut alice2] {
        client.expect_roster(&id, &[ALICE, BRIDGE]).await;
    }
    let from_alice2 = alice2.text(&id, &alice2.epid, ";path=IM", "hi from my phone");
    alice2.send_payload("SDG", &from_alice2).await;
    for client in [&mut alice, &mut bridge] {
        let relayed = client.expect("SDG 0").await;
        assert_eq!(relayed.payload.as_deref(), Some(&from_alice2[..]));
    }
    alice2.quiet().await;

    // Alice's first endpoint drops: she is still there through the other, no NFY DEL.
    server.drop_connections(ALICE);
    timeout(Duration::from_secs(5), async {
        while server.endpoint_count(ALICE) != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    bridge.quiet().await;
    // In the order of the endpoints still there: Alice's second joined after the bridge.
    assert_eq!(server.circle_roster(&id), [BRIDGE, ALICE]);

    // Alice leaves the circle: the bridge is told, and her endpoint that the bridge left.
    server.leave_circle(&id, ALICE);
    bridge.expect_left(&id, ALICE).await;
    alice2.expect_left(&id, BRIDGE).await;
    assert_eq!(server.circle_roster(&id), [BRIDGE]);
    let t = alice2.join(&id).await;
    alice2.expect(&format!("201 {t}")).await;

    // A member whose last endpoint drops leaves the roster with an NFY DEL.
    let id3 = server.create_circle("Third", BRIDGE, &[ALICE]);
    let mut alice3 = sign_in(&server, ALICE, ALICE_GUID).await;
    alice3.authenticate(&server).await;
    alice3.initial_adl(BRIDGE).await;
    bridge.authenticate(&server).await;
    for client in [&mut alice3, &mut bridge] {
        let (t, answer) = client.circle_adl(&id3).await;
        assert_eq!(answer, format!("ADL {t} OK"));
        let t = client.join(&id3).await;
        client.expect(&format!("PUT {t} OK")).await;
    }
    alice3.expect_roster(&id3, &[ALICE]).await;
    alice3.expect_roster(&id3, &[ALICE, BRIDGE]).await;
    bridge.expect_roster(&id3, &[ALICE, BRIDGE]).await;
    drop(alice2);
    drop(alice3);
    bridge.expect_left(&id3, ALICE).await;
    assert_eq!(server.circle_roster(&id3), [BRIDGE]);
    bridge.quiet().await;
}
