//! Wire-level tests of the test server (`testkit::msn_server`) with a raw client built
//! on the crate's own frame parser: MSNP8–10 forms the MSNP11 SDK cannot exercise,
//! challenges, refusals and fault injection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use msn_testkit::{Lists, MsnServer, MsnServerConfig, MsnServerHandle, ServerEvent};
use msnp::challenge::{self, PROD0061, PROD0090};
use msnp::frame::{Direction, Frame, parse};
use msnp::limits::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

pub(crate) struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    pub(crate) version: u8,
    trid: u32,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            version: 0,
            trid: 0,
        }
    }

    /// A TrID for a frame the test builds itself (payload commands).
    pub(crate) fn next_trid_for_payload(&mut self) -> u32 {
        self.next_trid()
    }

    fn next_trid(&mut self) -> u32 {
        self.trid += 1;
        self.trid
    }

    /// Sends `VERB trid args…` and returns the TrID.
    pub(crate) async fn cmd(&mut self, verb_and_args: &str) -> u32 {
        let trid = self.next_trid();
        let (verb, rest) = verb_and_args.split_once(' ').unwrap_or((verb_and_args, ""));
        let line = if rest.is_empty() {
            format!("{verb} {trid}\r\n")
        } else {
            format!("{verb} {trid} {rest}\r\n")
        };
        self.raw(line.as_bytes()).await;
        trid
    }

    pub(crate) async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub(crate) async fn frame(&mut self, frame: &Frame) {
        let bytes = frame.to_bytes().expect("encode");
        self.raw(&bytes).await;
    }

    /// The next frame, or `None` on EOF / timeout.
    pub(crate) async fn next_within(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            match parse(
                &mut self.buf,
                &Limits::default(),
                Direction::ServerToClient,
                self.version,
            ) {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(e) => panic!("server sent unparsable bytes: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Skips frames until one with this verb (`"911"` for errors) arrives.
    pub(crate) async fn expect(&mut self, verb: &str) -> Frame {
        loop {
            match self.next_within(T).await {
                Some(f) if f.verb.to_string() == verb => return f,
                Some(_) => {}
                None => panic!("no {verb} before EOF/timeout"),
            }
        }
    }

    /// The very next frame must have this verb.
    pub(crate) async fn expect_now(&mut self, verb: &str) -> Frame {
        let f = self
            .next_within(T)
            .await
            .unwrap_or_else(|| panic!("no {verb}"));
        assert_eq!(f.verb.to_string(), verb, "{f:?}");
        f
    }

    /// Nothing but EOF follows (frames before it are skipped).
    pub(crate) async fn expect_closed(&mut self) {
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            if self.next_within(T).await.is_none() {
                return;
            }
        }
        panic!("connection not closed");
    }

    pub(crate) async fn silent_for(&mut self, d: Duration) -> bool {
        self.next_within(d).await.is_none()
    }
}

/// Passport 1.4 over a raw HTTP/1.1 exchange; returns the `from-PP` ticket.
pub(crate) async fn ticket(
    server: &MsnServerHandle,
    email: &str,
    password: &str,
) -> Option<String> {
    let mut s = TcpStream::connect(server.http_addr()).await.ok()?;
    let req = format!(
        "GET /login.srf HTTP/1.1\r\nHost: {}\r\nAuthorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in={},pwd={},ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\nConnection: close\r\n\r\n",
        server.http_addr(),
        email.replace('@', "%40"),
        password
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.ok()?;
    let start = resp.find("from-PP='")? + "from-PP='".len();
    let end = resp[start..].find('\'')? + start;
    Some(resp[start..end].to_owned())
}

pub(crate) async fn login(server: &MsnServerHandle, email: &str, version: u8) -> Raw {
    let mut c = Raw::connect(server.ns_addr()).await;
    let t = c.cmd(&format!("VER MSNP{version} CVR0")).await;
    let f = c.expect_now("VER").await;
    assert_eq!(
        (f.trid, f.arg(0)),
        (Some(t), Some(format!("MSNP{version}").as_str()))
    );
    c.version = version;
    c.cmd(&format!(
        "CVR 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 msmsgs {email}"
    ))
    .await;
    c.expect_now("CVR").await;
    c.cmd(&format!("USR TWN I {email}")).await;
    let s = c.expect_now("USR").await;
    assert_eq!(
        s.arg(2),
        Some("ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
    );
    let tk = ticket(server, email, "secret").await.expect("ticket");
    let t = c.cmd(&format!("USR TWN S {tk}")).await;
    let ok = c.expect_now("USR").await;
    assert_eq!(
        (ok.trid, ok.arg(0), ok.arg(1)),
        (Some(t), Some("OK"), Some(email))
    );
    if version <= 9 {
        assert_eq!(
            ok.args.len(),
            5,
            "MSNP8–9 USR OK carries the friendly name: {ok:?}"
        );
    } else {
        assert_eq!(ok.args.len(), 4, "{ok:?}");
        c.expect_now("SBS").await;
    }
    let profile = c.expect_now("MSG").await;
    let body = String::from_utf8_lossy(profile.payload.as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("text/x-msmsgsprofile"), "{body}");
    c
}

pub(crate) async fn chg(c: &mut Raw, status: &str) {
    let t = c.cmd(&format!("CHG {status} 1342177280")).await;
    let f = c.expect("CHG").await;
    assert_eq!(f.trid, Some(t));
}

async fn server() -> MsnServerHandle {
    server_with(MsnServerConfig::default()).await
}

/// A server with Alice, Bob and Carol (password `secret`); Alice and Bob are friends.
pub(crate) async fn server_with(config: MsnServerConfig) -> MsnServerHandle {
    let server = MsnServer::start(config).await.expect("start");
    for (e, n) in [
        ("alice@example.com", "Alice"),
        ("bob@example.com", "Bob"),
        ("carol@example.com", "Carol"),
    ] {
        server.add_account(e, "secret", n);
    }
    server.make_friends("alice@example.com", "bob@example.com");
    server
}

#[tokio::test]
async fn msnp8_login_sync_and_list_changes() {
    let server = server().await;
    let mut carol = login(&server, "carol@example.com", 12).await;
    chg(&mut carol, "NLN").await;
    let mut a = login(&server, "alice@example.com", 8).await;
    let t = a.cmd("SYN 0").await;
    let syn = a.expect_now("SYN").await;
    assert_eq!(syn.trid, Some(t));
    assert_eq!(syn.args.iter().skip(1).collect::<Vec<_>>(), ["1", "1"]); // one contact, group 0 only
    a.expect_now("GTC").await;
    a.expect_now("BLP").await;
    let lsg = a.expect_now("LSG").await;
    assert_eq!(lsg.args, ["0", "Other%20Contacts", "0"]);
    let lst = a.expect_now("LST").await;
    assert_eq!(lst.args, ["bob@example.com", "Bob", "11", "0"]);
    a.expect_now("BPR").await;

    chg(&mut a, "NLN").await;
    a.raw(b"PNG\r\n").await;
    let qng = a.expect("QNG").await;
    assert!(qng.args.is_empty(), "MSNP8 QNG has no interval: {qng:?}");

    // ADD FL: reply with list version and group; carol (MSNP12) is told via ADC 0 RL.
    let t = a.cmd("ADD FL carol@example.com Carol 0").await;
    let add = a.expect("ADD").await;
    assert_eq!(add.trid, Some(t));
    assert_eq!(add.arg(0), Some("FL"));
    assert_eq!(
        add.args.iter().skip(2).collect::<Vec<_>>(),
        ["carol@example.com", "Carol", "0"]
    );
    let rl = carol.expect("ADC").await;
    assert_eq!(rl.trid, Some(0));
    assert_eq!(rl.args, ["RL", "N=alice@example.com", "F=Alice"]);
    // Carol is online and allows everyone: Alice now gets her NLN.
    let nln = a.expect("NLN").await;
    assert_eq!(nln.arg(1), Some("carol@example.com"));
    assert!(
        server
            .lists("carol@example.com", "alice@example.com")
            .contains(Lists::RL)
    );

    let t = a.cmd("ADD FL carol@example.com Carol 0").await;
    assert_eq!(a.expect("215").await.trid, Some(t));
    let t = a.cmd("ADD FL nobody@example.com x 0").await;
    assert_eq!(a.expect("205").await.trid, Some(t));

    let t = a.cmd("REA alice@example.com Alice%20Eight").await;
    let rea = a.expect("REA").await;
    assert_eq!((rea.trid, rea.arg(2)), (Some(t), Some("Alice%20Eight")));
    // MSNP10+ commands are disabled at MSNP8.
    let t = a.cmd("ADC FL N=carol@example.com").await;
    assert_eq!(a.expect("502").await.trid, Some(t));
    let t = a.cmd("PRP MFN x").await;
    assert_eq!(a.expect("502").await.trid, Some(t));
    let t = a.cmd("FOO bar").await;
    assert_eq!(a.expect("200").await.trid, Some(t));

    let t = a.cmd("REM FL carol@example.com").await;
    let rem = a.expect("REM").await;
    assert_eq!(rem.trid, Some(t));
    let rl = carol.expect("REM").await;
    assert_eq!(rl.args, ["RL", "N=alice@example.com"]);

    // Carol's list now has nobody; a raw SYN from her (MSNP12) still parses.
    let t = carol.cmd("SYN 0 0").await;
    let syn = carol.expect("SYN").await;
    assert_eq!((syn.trid, syn.arg(2)), (Some(t), Some("0")));
}

#[tokio::test]
async fn msnp10_groups_and_guid_forms() {
    let server = server().await;
    server.add_contact("alice@example.com", "carol@example.com", Lists::AL);
    let mut a = login(&server, "alice@example.com", 10).await;
    a.cmd("SYN 0 0").await;
    let syn = a.expect_now("SYN").await;
    assert_eq!(syn.args.iter().skip(2).collect::<Vec<_>>(), ["2", "0"]);
    a.expect_now("GTC").await;
    a.expect_now("BLP").await;
    let prp = a.expect_now("PRP").await;
    assert_eq!(prp.args, ["MFN", "Alice"]);
    let mut bob_guid = String::new();
    for _ in 0..2 {
        let lst = a.expect("LST").await;
        if lst.arg(0) == Some("N=bob@example.com") {
            assert_eq!(lst.arg(1), Some("F=Bob"));
            bob_guid = lst
                .arg(2)
                .and_then(|c| c.strip_prefix("C="))
                .expect("C=")
                .to_owned();
            assert_eq!(lst.arg(3), Some("11"), "MSNP10 has no network field");
        } else {
            // Not on FL: no C=, no groups (sent with R2M's trailing space).
            assert_eq!(lst.args, ["N=carol@example.com", "F=Carol", "2"]);
        }
    }
    let t = a.cmd("ADG Work").await;
    let adg = a.expect("ADG").await;
    assert_eq!(
        (adg.trid, adg.arg(0), adg.arg(1)),
        (Some(t), Some("1"), Some("Work"))
    );
    let group = adg.arg(2).expect("guid").to_owned();
    let t = a.cmd("ADG Work").await;
    assert_eq!(a.expect("228").await.trid, Some(t));
    let t = a.cmd(&format!("ADC FL C={bob_guid} {group}")).await;
    assert_eq!(a.expect("ADC").await.trid, Some(t));
    let t = a.cmd(&format!("REM FL {bob_guid} {group}")).await;
    assert_eq!(a.expect("REM").await.trid, Some(t));
    let t = a.cmd(&format!("REG {group} Play")).await;
    let reg = a.expect("REG").await;
    assert_eq!(
        (reg.trid, reg.arg(1), reg.arg(2)),
        (Some(t), Some("Play"), Some(group.as_str()))
    );
    let t = a.cmd(&format!("RMG {group}")).await;
    assert_eq!(a.expect("RMG").await.trid, Some(t));
    let t = a.cmd("REA alice@example.com x").await;
    assert_eq!(a.expect("502").await.trid, Some(t));
    let t = a.cmd("ADC FL N=nobody@example.com F=x").await;
    assert_eq!(a.expect("208").await.trid, Some(t));
    let t = a.cmd("GCF Shields.xml").await;
    let gcf = a.expect("GCF").await;
    assert_eq!(gcf.trid, Some(t));
    assert!(gcf.payload.is_some_and(|p| p.starts_with(b"<?xml")));
}

#[tokio::test]
async fn version_negotiation_and_pre_login_rules() {
    let server = server().await;
    let mut c = Raw::connect(server.ns_addr()).await;
    let t = c.cmd("VER MSNP18 MSNP13 CVR0").await;
    let v = c.expect_now("VER").await;
    assert_eq!(v.trid, Some(t));
    assert_eq!(v.args, ["0"]);
    c.expect_closed().await;

    // PNG before login closes (Escargot).
    let mut c = Raw::connect(server.ns_addr()).await;
    c.raw(b"PNG\r\n").await;
    c.expect_closed().await;

    // Unknown account: 911 and disconnect at USR I (R2M).
    let mut c = Raw::connect(server.ns_addr()).await;
    c.cmd("VER MSNP12 CVR0").await;
    c.expect_now("VER").await;
    let t = c.cmd("USR TWN I nobody@example.com").await;
    assert_eq!(c.expect_now("911").await.trid, Some(t));
    c.expect_closed().await;

    // A bad ticket: 911 and disconnect.
    let mut c = Raw::connect(server.ns_addr()).await;
    c.cmd("VER MSNP12 CVR0").await;
    c.expect_now("VER").await;
    c.cmd("USR TWN I alice@example.com").await;
    c.expect_now("USR").await;
    let t = c.cmd("USR TWN S t=forged&p=").await;
    assert_eq!(c.expect_now("911").await.trid, Some(t));
    c.expect_closed().await;
    assert!(
        ticket(&server, "alice@example.com", "wrong")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn challenges_are_checked() {
    let server = server().await;
    let mut events = server.subscribe();
    for (version, product) in [(12u8, PROD0090), (9, PROD0061)] {
        let mut a = login(&server, "alice@example.com", version).await;
        chg(&mut a, "NLN").await;
        assert!(server.send_challenge("alice@example.com"));
        let chl = a.expect("CHL").await;
        assert_eq!(chl.trid, Some(0));
        let t = a.next_trid();
        a.frame(&challenge::qry_frame(
            t,
            version,
            chl.arg(0).expect("challenge"),
            product,
        ))
        .await;
        let ok = a.expect("QRY").await;
        assert_eq!((ok.trid, ok.payload.as_ref()), (Some(t), None));
        // A wrong answer: 540 and disconnect.
        assert!(server.send_challenge("alice@example.com"));
        a.expect("CHL").await;
        let t = a.next_trid();
        a.frame(&challenge::qry_frame(
            t,
            version,
            "not-the-challenge",
            product,
        ))
        .await;
        assert_eq!(a.expect("540").await.trid, Some(t));
        a.expect_closed().await;
    }
    let mut answers = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let ServerEvent::ChallengeAnswered { correct, .. } = e {
            answers.push(correct);
        }
    }
    assert_eq!(answers, [true, false, true, false]);
}

#[tokio::test]
async fn unanswered_challenge_disconnects() {
    let config = MsnServerConfig {
        challenge_interval: Some(Duration::from_millis(200)),
        challenge_timeout: Duration::from_millis(300),
        ..MsnServerConfig::default()
    };
    let server = MsnServer::start(config).await.expect("start");
    server.add_account("alice@example.com", "secret", "Alice");
    let mut a = login(&server, "alice@example.com", 11).await;
    chg(&mut a, "NLN").await;
    a.expect("CHL").await;
    a.expect_closed().await;
    assert_eq!(server.online("alice@example.com"), None);
}

#[tokio::test]
async fn presence_privacy_and_xfr_refusals() {
    let server = server().await;
    let mut a = login(&server, "alice@example.com", 12).await;
    let mut b = login(&server, "bob@example.com", 9).await;
    let t = a.cmd("XFR SB").await;
    assert_eq!(a.expect("913").await.trid, Some(t));
    chg(&mut a, "HDN").await;
    let t = a.cmd("XFR SB").await;
    assert_eq!(a.expect("913").await.trid, Some(t));

    // Bob's first CHG: no ILN for hidden Alice. Alice going NLN: Bob gets NLN (MSNP9).
    chg(&mut b, "NLN").await;
    chg(&mut a, "NLN").await;
    let nln = b.expect("NLN").await;
    assert_eq!(
        nln.args,
        ["NLN", "alice@example.com", "Alice", "1342177280"]
    );
    // MSNP12 Alice sees Bob's later changes with UBX after NLN.
    chg(&mut b, "AWY").await;
    let nln = a.expect("NLN").await;
    assert_eq!(nln.arg(0), Some("AWY"));
    a.expect_now("UBX").await;

    // Alice blocks Bob: Bob sees her go offline; Bob cannot reach her in a switchboard.
    let t = a.cmd("ADC BL N=bob@example.com").await;
    assert_eq!(a.expect("ADC").await.trid, Some(t));
    let fln = b.expect("FLN").await;
    assert_eq!(fln.args, ["alice@example.com"]);
    let t = b.cmd("XFR SB").await;
    let xfr = b.expect("XFR").await;
    assert_eq!(
        (xfr.trid, xfr.arg(0), xfr.arg(2)),
        (Some(t), Some("SB"), Some("CKI"))
    );
    let mut sb = Raw::connect(server.sb_addr()).await;
    let t = sb
        .cmd(&format!(
            "USR bob@example.com {}",
            xfr.arg(3).expect("cookie")
        ))
        .await;
    let ok = sb.expect_now("USR").await;
    assert_eq!(ok.trid, Some(t));
    assert_eq!(ok.args, ["OK", "bob@example.com", "Bob"]);
    let t = sb.cmd("CAL alice@example.com").await;
    assert_eq!(sb.expect_now("216").await.trid, Some(t));
    let t = sb.cmd("CAL carol@example.com").await;
    assert_eq!(sb.expect_now("217").await.trid, Some(t));
    // A cookie is single-use.
    let mut sb2 = Raw::connect(server.sb_addr()).await;
    let t = sb2
        .cmd(&format!(
            "USR bob@example.com {}",
            xfr.arg(3).expect("cookie")
        ))
        .await;
    assert_eq!(sb2.expect_now("911").await.trid, Some(t));
    sb2.expect_closed().await;
}

/// Opens a switchboard from `caller` (NS `c`) and has `callee` (NS `d`) answer; returns
/// both SB connections.
async fn open_sb(
    server: &MsnServerHandle,
    c: &mut Raw,
    caller: &str,
    d: &mut Raw,
    callee: &str,
) -> (Raw, Raw) {
    c.cmd("XFR SB").await;
    let xfr = c.expect("XFR").await;
    let mut s1 = Raw::connect(server.sb_addr()).await;
    s1.cmd(&format!("USR {caller} {}", xfr.arg(3).expect("cookie")))
        .await;
    s1.expect_now("USR").await;
    let t = s1.cmd(&format!("CAL {callee}")).await;
    let ringing = s1.expect_now("CAL").await;
    assert_eq!((ringing.trid, ringing.arg(0)), (Some(t), Some("RINGING")));
    let rng = d.expect("RNG").await;
    assert_eq!(rng.arg(0), ringing.arg(1));
    assert_eq!(rng.arg(1), Some(server.sb_addr().to_string().as_str()));
    assert_eq!(rng.arg(4), Some(caller));
    let mut s2 = Raw::connect(server.sb_addr()).await;
    let t = s2
        .cmd(&format!(
            "ANS {callee} {} {}",
            rng.arg(3).expect("cookie"),
            rng.arg(0).expect("id")
        ))
        .await;
    let iro = s2.expect_now("IRO").await;
    assert_eq!(
        (iro.trid, iro.arg(0), iro.arg(1), iro.arg(2)),
        (Some(t), Some("1"), Some("1"), Some(caller))
    );
    assert_eq!(s2.expect_now("ANS").await.args, ["OK"]);
    let joi = s1.expect_now("JOI").await;
    assert_eq!(joi.arg(0), Some(callee));
    (s1, s2)
}

#[tokio::test]
async fn switchboard_ack_modes_limits_and_faults() {
    let server = server().await;
    let mut a = login(&server, "alice@example.com", 12).await;
    let mut b = login(&server, "bob@example.com", 11).await;
    chg(&mut a, "NLN").await;
    chg(&mut b, "NLN").await;
    let (mut s1, mut s2) = open_sb(
        &server,
        &mut a,
        "alice@example.com",
        &mut b,
        "bob@example.com",
    )
    .await;

    let body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi";
    s1.raw(format!("MSG 5 N {}\r\n{body}", body.len()).as_bytes())
        .await;
    let msg = s2.expect_now("MSG").await;
    assert_eq!(msg.args, ["alice@example.com", "Alice"]);
    assert_eq!(msg.payload.as_deref(), Some(body.as_bytes()));
    assert!(
        s1.silent_for(Duration::from_millis(200)).await,
        "N mode: no ACK on success"
    );

    // Split writes: the client must reassemble lines and payloads.
    server.split_writes(true);
    s2.raw(format!("MSG 9 A {}\r\n{body}", body.len()).as_bytes())
        .await;
    let msg = s1.expect_now("MSG").await;
    assert_eq!(msg.payload.as_deref(), Some(body.as_bytes()));
    assert_eq!(s2.expect_now("ACK").await.trid, Some(9));
    server.split_writes(false);

    // Delayed replies.
    server.delay_replies(Duration::from_millis(300));
    let started = Instant::now();
    a.raw(b"PNG\r\n").await;
    let qng = a.expect("QNG").await;
    assert_eq!(qng.args, ["60"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.delay_replies(Duration::ZERO);

    // Never answering.
    server.stop_answering("alice@example.com", true);
    a.raw(b"PNG\r\n").await;
    assert!(a.silent_for(Duration::from_millis(300)).await);
    server.stop_answering("alice@example.com", false);
    a.raw(b"PNG\r\n").await;
    a.expect("QNG").await;

    // The server kicks Alice out of her switchboards: Bob sees BYE alice 1.
    server.close_switchboards("alice@example.com");
    let bye = s2.expect_now("BYE").await;
    assert_eq!(bye.args, ["alice@example.com", "1"]);
    s1.expect_closed().await;
    // Alone now: A-mode messages are NAKed.
    s2.raw(format!("MSG 10 A {}\r\n{body}", body.len()).as_bytes())
        .await;
    assert_eq!(s2.expect_now("NAK").await.trid, Some(10));
    // A bad ack letter closes the switchboard (Escargot).
    s2.raw(format!("MSG 11 X {}\r\n{body}", body.len()).as_bytes())
        .await;
    s2.expect_closed().await;
    assert_eq!(server.switchboard_count(), 0);

    // An oversized payload closes the switchboard too.
    let (mut s1, _s2) = open_sb(
        &server,
        &mut a,
        "alice@example.com",
        &mut b,
        "bob@example.com",
    )
    .await;
    let big = "x".repeat(1700);
    s1.raw(format!("MSG 3 A {}\r\n{big}", big.len()).as_bytes())
        .await;
    s1.expect_closed().await;

    // Dropping Alice's NS: Bob (MSNP11) gets FLN.
    server.drop_connections("alice@example.com");
    a.expect_closed().await;
    let fln = b.expect("FLN").await;
    assert_eq!(fln.args, ["alice@example.com"]);
    assert_eq!(server.online("alice@example.com"), None);
}

#[tokio::test]
async fn second_login_and_shutdown() {
    let server = server().await;
    let mut first = login(&server, "alice@example.com", 12).await;
    let mut b = login(&server, "bob@example.com", 12).await;
    chg(&mut first, "NLN").await;
    chg(&mut b, "NLN").await;
    let _second = login(&server, "alice@example.com", 11).await;
    let out = first.expect("OUT").await;
    assert_eq!(out.args, ["OTH"]);
    first.expect_closed().await;
    // Her contacts see her go offline until the new session sends CHG.
    assert_eq!(b.expect("FLN").await.args, ["alice@example.com"]);
    assert_eq!(server.version("alice@example.com"), Some(11));

    server.shutdown().await;
    let out = b.expect("OUT").await;
    assert_eq!(out.args, ["SSD"]);
    b.expect_closed().await;
}
