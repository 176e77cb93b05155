//! Shared test support: which external services this run has, configs for a bridge under
//! test, and starting/stopping an in-process bridge.

use std::collections::BTreeMap;

use matrix_msn::app::{Running, start};
use matrix_msn::config::{Config, PermissionLevel};
use matrix_msn::matrix::registration::Registration;
use tokio_util::sync::CancellationToken;

/// Whether this is the full run, where every external service must be present.
pub fn full_run() -> bool {
    std::env::var("MSN_TEST_FULL").is_ok_and(|v| v == "1")
}

/// An external service's URL from the environment; `None` (skip) outside the full run,
/// a failure inside it.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if full_run() => panic!("{var} is not set, but MSN_TEST_FULL=1 requires it"),
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test.sh sets it)");
            None
        }
    }
}

pub fn postgres_url() -> Option<String> {
    service("MSN_TEST_POSTGRES_URL")
}

pub fn homeserver_url() -> Option<String> {
    service("MSN_TEST_HOMESERVER")
}

/// The registration Synapse was started with in the full run.
pub fn e2e_registration() -> Registration {
    Registration::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/e2e-registration.yaml"
    )))
    .expect("e2e registration fixture")
}

/// A valid config for a bridge on `localhost` with the e2e registration's tokens and port.
pub fn config(homeserver: &str, database: &str, permissions: &[(&str, PermissionLevel)]) -> Config {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
        .expect("example config");
    let mut config = Config::parse(&text).expect("example parses");
    let reg = e2e_registration();
    config.homeserver.domain = "localhost".into();
    config.homeserver.address = homeserver.into();
    config.appservice.as_token = reg.as_token.clone();
    config.appservice.hs_token = reg.hs_token.clone();
    let port = reg
        .address()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in url");
    config.appservice.port = port;
    config.appservice.address = reg.address().to_owned();
    config.database.uri = database.into();
    config.bridge.credentials_key = "5a".repeat(32);
    config.msn.server = "127.0.0.1:1863".into();
    config.msn.nexus_url = "http://127.0.0.1:1/rdr/pprdr.asp".into();
    config.bridge.permissions = permissions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect::<BTreeMap<_, _>>();
    config.logging.level = "matrix_msn=debug".into();
    config
}

/// An in-process bridge and the token that stops it.
pub struct TestBridge {
    pub running: Running,
    pub shutdown: CancellationToken,
}

impl TestBridge {
    /// Starts a bridge and waits until it pinged the homeserver and set up its bot.
    pub async fn start(config: Config) -> Self {
        init_logging();
        let shutdown = CancellationToken::new();
        let reg = Registration::from_config(&config);
        let mut running = start(config, Some(&reg), shutdown.clone())
            .await
            .expect("bridge starts");
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            running.ready.wait_for(|r| *r),
        )
        .await
        .expect("bridge ready within 60 s")
        .expect("ready channel open");
        Self { running, shutdown }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.running.wait().await.expect("bridge stops cleanly");
    }
}

thread_local! {
    /// The log lines captured on this thread, while a capture is on.
    static CAPTURE: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Writes formatted log lines into this thread's capture.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(out) = c.borrow_mut().as_mut() {
                out.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sets the test binary's one global subscriber (only this code sets one): the
/// per-thread capture of [`LogCapture`], and, when `MSN_TEST_TRACE_FILE` names a file,
/// every test's log lines (the bridge's and the test servers' at TRACE, others at WARN)
/// appended there, to read after a failure that does not repeat at will.
pub fn init_logging() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Dynamic: decided per event (a plain `filter_fn` is cached per callsite).
        let capturing = tracing_subscriber::filter::dynamic_filter_fn(|meta, _cx| {
            !meta.target().starts_with("matrix_sdk")
                && !meta.target().starts_with("eyeball")
                && CAPTURE.with(|c| c.borrow().is_some())
        });
        let captured = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .with_filter(capturing);
        let to_file = std::env::var_os("MSN_TEST_TRACE_FILE")
            .and_then(|path| {
                let opened = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                if let Err(e) = &opened {
                    eprintln!(
                        "MSN_TEST_TRACE_FILE {}: {e}; no trace written",
                        path.display()
                    );
                }
                opened.ok()
            })
            .map(|file| {
                let wanted = tracing_subscriber::EnvFilter::new(
                    "warn,matrix_msn=trace,msnp=trace,msn_testkit=trace",
                );
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(wanted)
            });
        let subscriber = tracing_subscriber::registry().with(captured).with(to_file);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Captures every log line (TRACE and up, the Matrix client library's own excepted) written
/// on this thread until [`LogCapture::finish`]. One global subscriber serves every test and
/// decides per event whether this thread captures, so tests running in parallel neither
/// see each other's lines nor fight over tracing's per-callsite interest cache (which a
/// per-test `set_default` subscriber does).
pub struct LogCapture(());

impl LogCapture {
    pub fn start() -> Self {
        init_logging();
        CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
        Self(())
    }

    /// Stops capturing and returns what was written.
    pub fn finish(self) -> String {
        let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Something events can be awaited from: the channels the tests read.
pub trait EventSource<T> {
    /// The next event, or `None` when the source ended.
    fn next_event(&mut self) -> impl std::future::Future<Output = Option<T>>;
}

impl<T> EventSource<T> for tokio::sync::mpsc::Receiver<T> {
    async fn next_event(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl<T> EventSource<T> for matrix_msn::channel::Events<T> {
    async fn next_event(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl EventSource<matrix_msn::net::SessionEvent> for matrix_msn::net::SessionEvents {
    async fn next_event(&mut self) -> Option<matrix_msn::net::SessionEvent> {
        self.recv().await
    }
}

impl<T> EventSource<T> for tokio::sync::mpsc::UnboundedReceiver<T> {
    async fn next_event(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl<T: Clone> EventSource<T> for tokio::sync::broadcast::Receiver<T> {
    async fn next_event(&mut self) -> Option<T> {
        loop {
            match self.recv().await {
                Ok(e) => return Some(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The first event matching `pred` within `limit` (others are skipped); panics naming
/// `what` when the source ends or time runs out.
pub async fn wait_for<T, S: EventSource<T>>(
    source: &mut S,
    limit: std::time::Duration,
    what: &str,
    pred: impl Fn(&T) -> bool,
) -> T {
    let found = async {
        while let Some(e) = source.next_event().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    match tokio::time::timeout(limit, found).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("events ended while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `check` (a reading of state that has no event to await, such as a metric) until
/// it holds, for at most 30 s; panics naming `what` otherwise.
pub async fn poll_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A loopback port nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A TCP way to a server that a test can cut and restore, as a homeserver restart or a
/// network cut does: while cut, connections are refused and the open ones are dropped.
pub struct Gate {
    port: u16,
    target: std::net::SocketAddr,
    cut: CancellationToken,
    listening: Option<tokio::task::JoinHandle<()>>,
}

impl Gate {
    /// A gate on a free loopback port to `target`, open.
    pub async fn open_to(target: std::net::SocketAddr) -> Self {
        let mut gate = Self {
            port: free_port(),
            target,
            cut: CancellationToken::new(),
            listening: None,
        };
        gate.reopen().await;
        gate
    }

    /// `http://127.0.0.1:PORT`: the gate as a base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Refuses new connections (the port is closed once this returns) and drops the open
    /// ones.
    pub async fn cut(&mut self) {
        self.cut.cancel();
        if let Some(listening) = self.listening.take() {
            let _ = listening.await;
        }
    }

    /// Lets connections through again, on the same port.
    pub async fn reopen(&mut self) {
        self.cut = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the gate's port");
        let (cut, target) = (self.cut.clone(), self.target);
        self.listening = Some(tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = cut.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    return;
                };
                let cut = cut.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        tokio::select! {
                            () = cut.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        }
                    }
                });
            }
        }));
    }
}

/// A user ID the test knows is valid.
pub fn uid(id: &str) -> matrix_sdk::ruma::OwnedUserId {
    id.try_into().expect("a valid user ID")
}

/// A room ID the test knows is valid.
pub fn rid(id: &str) -> matrix_sdk::ruma::OwnedRoomId {
    id.try_into().expect("a valid room ID")
}

/// An event ID the test knows is valid.
pub fn eid(id: &str) -> matrix_sdk::ruma::OwnedEventId {
    id.try_into().expect("a valid event ID")
}
