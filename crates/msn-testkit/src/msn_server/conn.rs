//! Socket plumbing shared by the dispatch, notification and switchboard handlers: a
//! frame reader over the read half (client frames parsed with
//! `Direction::ClientToServer` and [`Limits`]), one writer task per socket fed by a
//! channel (so frames from other connections' tasks are written whole and in order,
//! MSNP.md §1.3/§11.4), fault application (delay, split writes) and redaction of logged
//! frames (tickets and cookies never reach logs).
//!
//! Knows no command semantics.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use msnp::args::Args;
use msnp::frame::{Direction, Frame, parse};
use msnp::limits::Limits;
use msnp::verb::Verb;

use super::state::{ServerKind, Shared};

/// Something for a connection's writer task.
#[derive(Debug)]
pub(crate) enum Out {
    /// A frame, encoded and written in one piece (unless `split_writes` is on).
    Frame(Frame),
    /// Raw bytes, for quirks the encoder refuses to produce (trailing spaces, §1.1).
    Raw(Bytes),
    /// Flush what is queued, then close the socket.
    Close,
}

/// A cheap handle to one connection: queue frames, close it gracefully or kill it.
#[derive(Debug, Clone)]
pub(crate) struct ConnTx {
    pub id: u64,
    tx: mpsc::UnboundedSender<Out>,
    pub cancel: CancellationToken,
}

impl ConnTx {
    /// Queues a frame.
    pub fn send(&self, frame: Frame) {
        let _ = self.tx.send(Out::Frame(frame));
    }

    /// Queues raw bytes.
    pub fn raw(&self, bytes: impl Into<Bytes>) {
        let _ = self.tx.send(Out::Raw(bytes.into()));
    }

    /// Closes after everything queued so far has been written.
    pub fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }

    /// Closes at once, dropping anything still queued (a crash or network cut).
    pub fn kill(&self) {
        self.cancel.cancel();
    }
}

/// A numeric error line `NNN trid` (§1.4).
pub(crate) fn error(code: u16, trid: Option<u32>) -> Frame {
    Frame {
        verb: Verb::Error(code),
        trid,
        args: Args::default(),
        payload: None,
    }
}

/// Splits a socket, spawns its writer task and returns the reader and the handle.
pub(crate) fn start(
    stream: TcpStream,
    shared: &std::sync::Arc<Shared>,
    parent: &CancellationToken,
) -> (FrameReader, ConnTx) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = parent.child_token();
    let conn = ConnTx {
        id: shared.next_id(),
        tx,
        cancel: cancel.clone(),
    };
    tokio::spawn(writer(wr, rx, cancel, shared.clone()));
    let reader = FrameReader {
        rd,
        buf: BytesMut::with_capacity(4096),
        limits: shared.config.limits.clone(),
    };
    (reader, conn)
}

async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    cancel: CancellationToken,
    shared: std::sync::Arc<Shared>,
) {
    loop {
        let out = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        let bytes = match out {
            Out::Frame(frame) => match frame.to_bytes() {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(error = %e, "test server could not encode a frame");
                    continue;
                }
            },
            Out::Raw(bytes) => bytes,
            Out::Close => {
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                cancel.cancel();
                break;
            }
        };
        let delay = shared.faults.delay();
        if !delay.is_zero() {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        let result = if shared.faults.split_writes() {
            write_split(&mut wr, &bytes).await
        } else {
            wr.write_all(&bytes).await
        };
        if result.is_err() {
            cancel.cancel();
            break;
        }
    }
}

/// Writes in 5-byte pieces with a flush and a short pause after each, so that the
/// client sees lines and payloads split over many TCP segments.
async fn write_split(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(5) {
        wr.write_all(piece).await?;
        wr.flush().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Incremental reader of client frames.
pub(crate) struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    limits: Limits,
}

/// What [`FrameReader::next`] produced.
pub(crate) enum Read {
    Frame(Frame),
    /// EOF, a socket error, or a framing error after which the stream cannot be
    /// resynchronised (the servers drop the connection then).
    Closed,
}

impl FrameReader {
    /// The next client frame. Cancel-safe: bytes already read stay buffered.
    pub async fn next(&mut self, version: u8) -> Read {
        loop {
            match parse(
                &mut self.buf,
                &self.limits,
                Direction::ClientToServer,
                version,
            ) {
                Ok(Some(frame)) => return Read::Frame(frame),
                Ok(None) => {}
                // A line that does not start with a verb was consumed; keep going.
                Err(e) if !e.is_fatal() => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "test server drops a connection on a framing error");
                    return Read::Closed;
                }
            }
            match self.rd.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(_) => {}
            }
        }
    }
}

/// A client frame as recorded by the server, with secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedFrame {
    /// Which server received it.
    pub server: ServerKind,
    /// The verb (`"USR"`, or the number for an error line).
    pub verb: String,
    /// The TrID, if any.
    pub trid: Option<u32>,
    /// Arguments; tickets and switchboard cookies are replaced by `<redacted>`.
    pub args: Vec<String>,
    /// The payload for `MSG`, `UUX` and the circles' `PUT` and `SDG`; `None` otherwise
    /// (the `QRY` answer is not kept).
    pub payload: Option<Bytes>,
}

/// Builds the log record of a received frame.
pub(crate) fn redact(server: ServerKind, frame: &Frame) -> LoggedFrame {
    let mut args: Vec<String> = frame.args.iter().map(str::to_owned).collect();
    let secret_from = match (server, frame.verb.as_str()) {
        // NS `USR trid TWN S <ticket>`, and MSNP18's `USR trid SHA A <circle ticket>`.
        (ServerKind::Ns | ServerKind::Dispatch, "USR")
            if frame.arg(1) == Some("S") || frame.arg(0) == Some("SHA") =>
        {
            Some(2)
        }
        // SB `USR trid email cookie`, `ANS trid email cookie sessid`.
        (ServerKind::Sb, "USR" | "ANS") => Some(1),
        _ => None,
    };
    if let Some(from) = secret_from {
        for (i, arg) in args.iter_mut().enumerate() {
            if i == from {
                *arg = "<redacted>".to_owned();
            }
        }
    }
    let payload = match frame.verb.as_str() {
        "MSG" | "UUX" | "PUT" | "SDG" => frame.payload.clone(),
        _ => None,
    };
    LoggedFrame {
        server,
        verb: frame.verb.to_string(),
        trid: frame.trid,
        args,
        payload,
    }
}
