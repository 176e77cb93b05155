//! The OIM services end to end against the `msnp` client's own requests: two MSNP13
//! accounts signed in over raw sockets, a stored OIM listed at the first `CHG`, `Store2`
//! with the lock-key round and the live notice, RSI fetch, delete and metadata.

use super::super::test_http::post;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use msnp::auth::{PostRequest, Secret};
use msnp::challenge::PROD0119;
use msnp::oim::store::{StoreRefusal, StoreRequest, lock_key, parse_stored, store_message};
use msnp::oim::{self, MailData};

use super::super::{MsnServer, MsnServerConfig, MsnServerHandle, StoredOim};
use super::{markup_escape, session_token};

/// One raw NS connection.
struct Ns {
    reader: BufReader<TcpStream>,
    trid: u32,
}

impl Ns {
    async fn send(&mut self, line: &str) {
        self.trid += 1;
        let line = line.replace("{t}", &self.trid.to_string());
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next frame: its line and, for `MSG`, its payload.
    async fn next(&mut self) -> (String, String) {
        let mut line = String::new();
        timeout(Duration::from_secs(5), self.reader.read_line(&mut line))
            .await
            .expect("a frame in time")
            .unwrap();
        let line = line.trim_end().to_owned();
        let mut payload = String::new();
        if line.starts_with("MSG ") {
            let len: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
            let mut buf = vec![0; len];
            self.reader.read_exact(&mut buf).await.unwrap();
            payload = String::from_utf8(buf).unwrap();
        }
        (line, payload)
    }

    /// Reads until a `MSG` whose payload contains `needle`.
    async fn msg_with(&mut self, needle: &str) -> String {
        loop {
            let (line, payload) = self.next().await;
            if line.starts_with("MSG Hotmail Hotmail") && payload.contains(needle) {
                return payload;
            }
        }
    }
}

/// Signs `email` in on MSNP13 and sends the first `CHG`; returns the connection (the
/// login `Mail-Data` still unread) and the ticket.
async fn sign_in(server: &MsnServerHandle, email: &str) -> (Ns, String) {
    let http = reqwest::Client::new();
    let answer = http
        .get(server.login_url())
        .header(
            "Authorization",
            format!("Passport1.4 OrgVerb=GET,sign-in={email},pwd=pw,ct=1"),
        )
        .send()
        .await
        .unwrap();
    let info = answer.headers()["Authentication-Info"].to_str().unwrap();
    let ticket = info
        .split("from-PP='")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'')
        .to_owned();
    let stream = TcpStream::connect(server.ns_addr()).await.unwrap();
    let mut ns = Ns {
        reader: BufReader::new(stream),
        trid: 0,
    };
    ns.send("VER {t} MSNP13 CVR0").await;
    assert!(ns.next().await.0.starts_with("VER"));
    ns.send(&format!(
        "CVR {{t}} 0x0409 winnt 5.1 i386 MSNMSGR 8.1.0178 msmsgs {email}"
    ))
    .await;
    assert!(ns.next().await.0.starts_with("CVR"));
    ns.send(&format!("USR {{t}} TWN I {email}")).await;
    assert!(ns.next().await.0.starts_with("USR"));
    ns.send(&format!("USR {{t}} TWN S {ticket}")).await;
    assert!(ns.next().await.0.starts_with("USR"));
    ns.send("CHG {t} NLN 0").await;
    (ns, ticket)
}

/// `request` with `from` replaced by `to` in its body.
fn edited(request: &PostRequest, from: &str, to: &str) -> PostRequest {
    let body = request.body.expose();
    assert!(body.contains(from), "{from} not in {body}");
    PostRequest {
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: Secret::new(body.replace(from, to)),
    }
}

#[tokio::test]
async fn offline_messages_round_trip() {
    let server = MsnServer::start(MsnServerConfig {
        versions: 13..=13,
        ..MsnServerConfig::default()
    })
    .await
    .unwrap();
    for (email, name) in [
        ("bridge@example.com", "Bridge"),
        ("carol@example.com", "Carol"),
    ] {
        server.add_account(email, "pw", name);
    }
    server.store_offline_message(
        "bridge@example.com",
        StoredOim {
            sender: "alice@example.com".into(),
            friendly_name: "Alice".into(),
            text: "Hello Bridge, are you there?".into(),
            stored_ms: 1_795_684_443_000,
            run_id: "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}".into(),
            sequence: 1,
            ..StoredOim::default()
        },
    );
    let stored = server.offline_messages("bridge@example.com");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].run_id, "3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B");

    // Listed at the first CHG.
    let (mut bridge, bridge_ticket) = sign_in(&server, "bridge@example.com").await;
    let body = bridge
        .msg_with("text/x-msmsgsinitialmdatanotification")
        .await;
    let MailData::Listed(listed) = oim::parse_mail_data(&body).unwrap() else {
        panic!("listed")
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, stored[0].id);
    assert_eq!(listed[0].sender, "alice@example.com");
    assert_eq!(listed[0].friendly, "Alice");
    assert_eq!(listed[0].received.as_deref(), Some("2026-11-26T09:14:03Z"));

    // Carol stores one for the bridge: lock-key round, then stored and announced live.
    let (_carol, carol_ticket) = sign_in(&server, "carol@example.com").await;
    let base = format!("http://{}", server.http_addr());
    let secret = Secret::new(carol_ticket.clone());
    let mut request = StoreRequest {
        from: "carol@example.com",
        friendly_name: Some("Carol"),
        to: "bridge@example.com",
        ticket: &secret,
        product: PROD0119,
        lock_key: "",
        run_id: "{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5}",
        sequence: 1,
        text: "See you tomorrow",
    };
    let (status, answer) = post(store_message(&base, &request).unwrap()).await;
    assert_eq!(status, 500);
    let challenge = match parse_stored(status, &answer, 1) {
        Err(StoreRefusal::LockKey(challenge)) => challenge,
        other => panic!("{other:?}"),
    };
    assert_eq!(challenge, "1850937852");
    let key = lock_key(&challenge, PROD0119);
    request.lock_key = &key;
    let (status, answer) = post(store_message(&base, &request).unwrap()).await;
    assert_eq!(parse_stored(status, &answer, 1), Ok(()), "{answer}");
    let live = bridge.msg_with("text/x-msmsgsoimnotification").await;
    assert!(live.contains("<F>.!!OIM</F><N>=?utf-8?B?Q2Fyb2w= ?=</N></M><SU> </SU>"));
    let MailData::Listed(live) = oim::parse_mail_data(&live).unwrap() else {
        panic!("listed")
    };
    assert_eq!(live[0].friendly, "Carol");

    // A stranger's ticket, another sender and a blocked sender are refused.
    let stranger = Secret::new("t=ABCDEFGHIJKLMNOPQRST&p=x".to_owned());
    let refused = StoreRequest {
        ticket: &stranger,
        ..request.clone()
    };
    let (status, answer) = post(store_message(&base, &refused).unwrap()).await;
    assert!(matches!(
        parse_stored(status, &answer, 1),
        Err(StoreRefusal::LockKey(_))
    ));
    let refused = StoreRequest {
        from: "bridge@example.com",
        ..request.clone()
    };
    let (status, answer) = post(store_message(&base, &refused).unwrap()).await;
    assert_eq!(
        parse_stored(status, &answer, 1),
        Err(StoreRefusal::Unreachable)
    );
    server.set_allow_all("bridge@example.com", false);
    let (status, answer) = post(store_message(&base, &request).unwrap()).await;
    assert_eq!(
        parse_stored(status, &answer, 1),
        Err(StoreRefusal::Unreachable)
    );
    server.set_allow_all("bridge@example.com", true);
    // A name that is no encoded word: a bare 500; a broken content rule: InvalidContent.
    let good = store_message(&base, &request).unwrap();
    let plain_name = edited(&good, "=?utf-8?B?Q2Fyb2w=?=", "Carol");
    assert_eq!(post(plain_name).await, (500, String::new()));
    for (from, to) in [
        (
            "<MessageNumber>1</MessageNumber>",
            "<MessageNumber>2</MessageNumber>",
        ),
        ("U2VlIHlvdSB0b21vcnJvdw==", &"A".repeat(80)),
        ("OfflineMessage", "Other"),
        ("base64&#13;", "7bit&#13;"),
    ] {
        let (status, answer) = post(edited(&good, from, to)).await;
        assert_eq!(
            parse_stored(status, &answer, 1),
            Err(StoreRefusal::InvalidContent),
            "{from}"
        );
    }
    assert_eq!(server.offline_messages("bridge@example.com").len(), 2);

    // Fetch, delete (the deleting endpoint hears of it), and the id is gone.
    let ticket = Secret::new(bridge_ticket);
    let ids: Vec<String> = server
        .offline_messages("bridge@example.com")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids.len(), 2);
    let (status, answer) = post(oim::get_message(&base, &ticket, &ids[0]).unwrap()).await;
    let message = oim::parse_message(status, &answer).unwrap();
    assert_eq!(message.text, "Hello Bridge, are you there?");
    assert_eq!(message.sender.as_deref(), Some("alice@example.com"));
    assert_eq!(message.sequence, Some(1));
    let (status, answer) = post(oim::get_message(&base, &ticket, &ids[1]).unwrap()).await;
    let message = oim::parse_message(status, &answer).unwrap();
    assert_eq!(message.text, "See you tomorrow");
    assert_eq!(message.sender.as_deref(), Some("carol@example.com"));
    let metadata = oim::get_metadata(&base, &ticket).unwrap();
    let (status, answer) = post(edited(&metadata, "GetMetadata", "GetMetadata")).await;
    assert_eq!(oim::parse_metadata(status, &answer).unwrap().len(), 2);
    let empty = edited(
        &metadata,
        "<alsoMarkAsRead>false</alsoMarkAsRead></GetMetadata>",
        "</GetMetadata>",
    );
    assert_eq!(post(empty).await, (500, String::new()));

    let (status, answer) = post(oim::delete_message(&base, &ticket, "NOPE").unwrap()).await;
    assert!(oim::parse_deleted(status, &answer).is_err());
    let (status, answer) = post(oim::delete_message(&base, &ticket, &ids[0]).unwrap()).await;
    assert_eq!(oim::parse_deleted(status, &answer), Ok(()));
    let notice = bridge.msg_with("text/x-msmsgsactivemailnotification").await;
    assert!(
        notice.ends_with("Src-Folder: .!!OIM\r\nDest-Folder: .!!trAsH\r\nMessage-Delta: 1\r\n")
    );
    let (status, answer) = post(oim::get_message(&base, &ticket, &ids[0]).unwrap()).await;
    assert_eq!((status, answer.as_str()), (500, ""));
    assert_eq!(server.offline_messages("bridge@example.com").len(), 1);
}

#[test]
fn tokens_are_escargots() {
    assert_eq!(
        session_token("t=ABCDEFGHIJKLMNOPQRSTUVWX&p=YZ"),
        "ABCDEFGHIJKLMNOPQRST"
    );
    assert_eq!(session_token("t=short&p=x"), "short&p=x");
    assert_eq!(
        session_token("ABCDEFGHIJKLMNOPQRSTUV"),
        "ABCDEFGHIJKLMNOPQRSTUV"
    );
    assert_eq!(
        markup_escape("<a & 'b'>\r\n"),
        "&lt;a &amp; &#39;b&#39;&gt;\r\n"
    );
}
