//! Display pictures over P2P/MSNSLP through the test MSN server, against the independent
//! `msnp11-sdk` client: we fetch its picture (its `set_display_picture`), and it fetches
//! ours (its `request_contact_display_picture`); a small picture and one over 100 KB
//! (many 1202-byte chunks). Every step awaits an event under a timeout.

use std::time::Duration;

use bytes::Bytes;
use matrix_msn::net::{
    FileSource, MsnSettings, NsClient, NsEvents, SbClient, SbEvents, SwitchboardEvent,
    TransferError, http_client,
};
use msn_testkit::MsnServerHandle;
use msnp::p2p::{FetchError, MsnObject, P2pEvent};
use msnp::{NsConfig, NsEvent, SbConfig, SbEvent, Secret};
use msnp11_sdk::Event;
use tokio::time::timeout;

use crate::testkit_msnp11_sdk::{answered, collect_sb, login, online, picture, server, wait_for};

const T: Duration = Duration::from_secs(20);
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

pub(crate) async fn connect(server: &MsnServerHandle) -> (NsClient, NsEvents, MsnSettings) {
    // `NET_TEST_LOG=1` prints the (redacted) wire trace of a failing test.
    if std::env::var_os("NET_TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_test_writer()
            .try_init();
    }
    let mut settings = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    settings.versions = vec![11];
    settings.connect_timeout = Duration::from_secs(5);
    settings.request_timeout = Duration::from_secs(5);
    let http = http_client(None, Duration::from_secs(5)).expect("http client");
    let (client, events) = timeout(
        T,
        NsClient::connect(
            settings.clone(),
            &http,
            NsConfig::new(ALICE),
            Secret::new("secret"),
        ),
    )
    .await
    .expect("login hangs")
    .expect("login");
    (client, events, settings)
}

/// The first event from `rx` matching `pred`, within [`T`].
async fn wait<E, S: crate::support::EventSource<E>>(
    rx: &mut S,
    what: &str,
    pred: impl Fn(&E) -> bool,
) -> E {
    crate::support::wait_for(rx, T, what, pred).await
}

/// Opens a P2P-capable switchboard from alice to bob and waits for bob to join.
pub(crate) async fn open_with_bob(
    client: &NsClient,
    settings: &MsnSettings,
    bob_events: &mut crate::testkit_msnp11_sdk::Events,
) -> (SbClient, SbEvents, std::sync::Arc<msnp11_sdk::Switchboard>) {
    let (address, auth) = timeout(T, client.request_switchboard())
        .await
        .expect("XFR hangs")
        .expect("XFR");
    let (sb, mut events) = timeout(
        T,
        SbClient::open(
            settings,
            SbConfig::new(ALICE, client.version()),
            &address,
            &auth,
            &[BOB],
        ),
    )
    .await
    .expect("SB open hangs")
    .expect("SB open");
    let bob_sb = answered(bob_events).await;
    wait(&mut events, "bob joins", |e| {
        matches!(e, SwitchboardEvent::Session(SbEvent::Joined { participant, .. })
            if participant.email == BOB)
    })
    .await;
    (sb, events, bob_sb)
}

// Multi-threaded so the timeouts fire even if a peer's task spins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_fetch_the_display_picture_of_an_msnp11_sdk_client() {
    let server = server().await;
    let (bob, mut bob_events) = login(&server, BOB).await;
    for (n, len) in [(0u8, 700usize), (1, 120_000)] {
        let pic = picture(len, n);
        let sha1d = timeout(T, bob.set_display_picture(pic.clone()))
            .await
            .expect("set picture hangs")
            .expect("set picture");
        online(&bob).await;

        let (alice, mut alice_events, settings) = connect(&server).await;
        let presence = wait(&mut alice_events, "bob's msnobj", |e| {
            matches!(e, NsEvent::PresenceChanged(p)
                if p.contact == BOB && p.msn_object.as_deref().is_some_and(|o| o.contains(&sha1d)))
        })
        .await;
        let NsEvent::PresenceChanged(presence) = presence else {
            unreachable!()
        };
        let msnobj = presence.msn_object.unwrap_or_default();

        let (sb, mut events, _bob_sb) = open_with_bob(&alice, &settings, &mut bob_events).await;
        let (object, data) = timeout(T, sb.fetch(BOB, &msnobj))
            .await
            .expect("fetch hangs")
            .unwrap_or_else(|e| panic!("fetch of {len} bytes: {e}"));
        assert_eq!(data.as_ref(), pic.as_slice(), "{len} bytes");
        assert_eq!(object.sha1d, sha1d);
        assert_eq!(object.size, len as u64);
        assert!(object.matches_data(&data));

        // An object bob does not have: the SDK never answers (it ignores a context that
        // is not its own), so the fetch must end by itself; here through closing.
        let other = MsnObject::for_data(BOB, 3, "0", "", b"not bob's");
        // Polled in order: the fetch's request reaches the driver before the close.
        let other_xml = other.to_xml();
        let (res, ()) = timeout(T, async {
            tokio::join!(sb.fetch(BOB, &other_xml), sb.close())
        })
        .await
        .expect("close hangs");
        assert!(
            matches!(
                res,
                Err(TransferError::Fetch(FetchError::Closed)) | Err(TransferError::Net(_))
            ),
            "{res:?}"
        );
        wait(&mut events, "closed", |e| {
            matches!(e, SwitchboardEvent::Session(SbEvent::Closed(_)))
        })
        .await;
        drop(alice);
    }
}

// Multi-threaded so the timeouts fire even if a peer's task spins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_msnp11_sdk_client_fetches_our_display_picture() {
    let server = server().await;
    let (bob, mut bob_events) = login(&server, BOB).await;
    online(&bob).await;
    let (alice, _alice_events, settings) = connect(&server).await;
    for (n, len) in [(0u8, 500usize), (1, 110_000)] {
        let pic = picture(len, 7 + n);
        let object = MsnObject::for_data(ALICE, 3, "0", "me", &pic);
        let (sb, mut events, bob_sb) = open_with_bob(&alice, &settings, &mut bob_events).await;
        assert!(
            sb.publish(object.clone(), Bytes::from(pic.clone()))
                .await
                .expect("publish")
        );
        let mut bob_sb_events = collect_sb(&bob_sb);
        timeout(
            T,
            bob_sb.request_contact_display_picture(ALICE, &object.to_xml()),
        )
        .await
        .expect("SDK fetch hangs")
        .expect("SDK fetch");
        let got = wait_for(
            &mut bob_sb_events,
            "DisplayPicture",
            |e| matches!(e, Event::DisplayPicture { email, .. } if email == ALICE),
        )
        .await;
        let Event::DisplayPicture { data, .. } = got else {
            unreachable!()
        };
        assert_eq!(data, pic, "{len} bytes");
        wait(&mut events, "served", |e| {
            matches!(e, SwitchboardEvent::Transfer(P2pEvent::Served { complete: true, peer, .. })
                if peer == BOB)
        })
        .await;
        sb.close().await;
    }
}

// Multi-threaded so the timeouts fire even if a peer's task spins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_msnp11_sdk_client_is_offered_our_pictures_with_their_preview() {
    // The SDK takes an offer from the INVITE's first chunk alone, and an offer with a
    // preview always spans chunks. Each offer draws a new SessionID (8 to 10 digits), so
    // the Context starts at a different place: every one must reach the SDK.
    let server = server().await;
    let (bob, mut bob_events) = login(&server, BOB).await;
    online(&bob).await;
    let (alice, _alice_events, settings) = connect(&server).await;
    let (sb, _events, bob_sb) = open_with_bob(&alice, &settings, &mut bob_events).await;
    let mut bob_sb_events = collect_sb(&bob_sb);
    let image = picture(2_000, 3);
    for n in 0..12 {
        let name = format!("cat-{n}.png");
        let file = msnp::p2p::FileContext {
            name: name.clone(),
            size: image.len() as u64,
            preview: Some(picture(3_000, n)),
        };
        let source: FileSource = Box::new(std::io::Cursor::new(image.clone()));
        let outcome = timeout(T, sb.send_file(BOB, file, source))
            .await
            .expect("offer hangs")
            .expect("offer");
        let offer = wait_for(
            &mut bob_sb_events,
            &name,
            |e| matches!(e, Event::FileTransferRequest { file_name, .. } if *file_name == name),
        )
        .await;
        let Event::FileTransferRequest {
            file_size, request, ..
        } = offer
        else {
            unreachable!()
        };
        assert_eq!(file_size, image.len() as u64);
        timeout(T, bob_sb.decline_file_request(request))
            .await
            .expect("decline hangs")
            .expect("decline");
        let declined = timeout(T, outcome).await.expect("the answer hangs");
        assert!(
            matches!(
                declined,
                Ok(Err(TransferError::Fetch(FetchError::Declined {
                    code: 603
                })))
            ),
            "{declined:?}"
        );
    }
}
