//! Two of the bridge's own MSN clients, Alice and Bob, in one switchboard of the in-repo
//! test server on loopback: what the benchmarks move pictures and files through.

use std::time::Duration;

use matrix_msn::net::{
    MsnSettings, NsClient, NsEvents, SbClient, SbEvents, SwitchboardEvent, http_client,
};
use msn_testkit::{MsnServer, MsnServerConfig, MsnServerHandle};
use msnp::{NsConfig, NsEvent, SbConfig, SbEvent, Secret};
use tokio::time::timeout;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const T: Duration = Duration::from_secs(30);
/// The bridge's default pacing of P2P messages.
#[allow(dead_code, reason = "not every benchmark paces")]
pub const DEFAULT_PACING: Duration = matrix_msn::net::P2P_MIN_INTERVAL;

/// Alice and Bob in one switchboard; the server and their sign-ins live as long.
pub struct Pair {
    pub alice: SbClient,
    pub alice_events: SbEvents,
    pub bob: SbClient,
    pub bob_events: SbEvents,
    _kept: (MsnServerHandle, NsClient, NsEvents, NsClient, NsEvents),
}

/// A fresh server with Alice and Bob signed in (MSNP11) and in one switchboard, with
/// `tune` applied to both clients' settings.
pub async fn pair(tune: impl Fn(&mut MsnSettings)) -> Pair {
    let server: MsnServerHandle = MsnServer::start(MsnServerConfig::default())
        .await
        .expect("start test server");
    server.add_account(ALICE, "secret", "Alice");
    server.add_account(BOB, "secret", "Bob");
    server.make_friends(ALICE, BOB);
    let mut settings = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    settings.versions = vec![11];
    settings.connect_timeout = Duration::from_secs(5);
    settings.request_timeout = Duration::from_secs(5);
    tune(&mut settings);
    let (alice_ns, alice_ns_events) = connect(&settings, ALICE).await;
    let (bob_ns, mut bob_ns_events) = connect(&settings, BOB).await;
    let (address, auth) = timeout(T, alice_ns.request_switchboard())
        .await
        .expect("XFR hangs")
        .expect("XFR");
    let (alice, mut alice_events) = SbClient::open(
        &settings,
        SbConfig::new(ALICE, alice_ns.version()),
        &address,
        &auth,
        &[BOB],
    )
    .await
    .expect("SB open");
    let NsEvent::SwitchboardInvite {
        session_id,
        address,
        auth,
        ..
    } = wait(&mut bob_ns_events, "RNG", |e| {
        matches!(e, NsEvent::SwitchboardInvite { .. })
    })
    .await
    else {
        unreachable!()
    };
    let (bob, bob_events) = SbClient::answer(
        &settings,
        SbConfig::new(BOB, bob_ns.version()),
        &address,
        &auth,
        &session_id,
    )
    .await
    .expect("ANS");
    wait(&mut alice_events, "bob joins", |e| {
        matches!(e, SwitchboardEvent::Session(SbEvent::Joined { .. }))
    })
    .await;
    Pair {
        alice,
        alice_events,
        bob,
        bob_events,
        _kept: (server, alice_ns, alice_ns_events, bob_ns, bob_ns_events),
    }
}

async fn connect(settings: &MsnSettings, email: &str) -> (NsClient, NsEvents) {
    let http = http_client(None, Duration::from_secs(5)).expect("http client");
    let (client, mut events) = timeout(
        T,
        NsClient::connect(
            settings.clone(),
            &http,
            NsConfig::new(email),
            Secret::new("secret"),
        ),
    )
    .await
    .expect("login hangs")
    .expect("login");
    wait(&mut events, "own status", |e| {
        matches!(e, NsEvent::OwnStatus { .. })
    })
    .await;
    (client, events)
}

/// The first event `pred` accepts.
pub async fn wait<E, F: Fn(&E) -> bool>(
    rx: &mut matrix_msn::channel::Events<E>,
    what: &str,
    pred: F,
) -> E {
    let fut = async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    timeout(T, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("events ended waiting for {what}"))
}

/// Keeps a switchboard's event channel drained so its driver never blocks on it.
pub fn drain(mut rx: SbEvents) {
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
}
