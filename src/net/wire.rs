//! One MSNP socket as frames: a bounded read buffer fed to `msnp::parse`, and frame writes
//! with a timeout. Only the driver task that owns a `Wire` touches its socket.
//!
//! An idle session waits minutes between the server's pings, and thousands of them wait
//! at once: while nothing is half-read, the connection waits for the socket to become
//! readable holding no read buffer, and a write's buffer lives only for that write.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::NetError;
use super::redact::frame_for_log;
use msnp::{Direction, Frame, Limits, parse};

/// How long a write may block before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// What a read asks the socket for at least (the buffer grows past it for a long frame,
/// up to the limits of `msnp::parse`).
const READ_CHUNK: usize = 4096;

pub(crate) struct Wire {
    stream: TcpStream,
    buf: BytesMut,
    limits: Limits,
}

impl Wire {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
        limits: Limits,
    ) -> Result<Self, NetError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| NetError::ConnectTimeout(addr.to_owned()))?
            .map_err(|source| NetError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        // Small interactive frames: do not wait to coalesce them.
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            limits,
        })
    }

    /// The next frame from the server; `Ok(None)` when the server closed the connection.
    /// Cancel-safe: bytes already read stay in the buffer.
    pub(crate) async fn read_frame(&mut self, version: u8) -> Result<Option<Frame>, NetError> {
        loop {
            match parse(
                &mut self.buf,
                &self.limits,
                Direction::ServerToClient,
                version,
            ) {
                Ok(Some(frame)) => {
                    tracing::trace!(frame = %frame_for_log(&frame), "<-");
                    return Ok(Some(frame));
                }
                Ok(None) => {}
                Err(e) if e.is_fatal() => return Err(NetError::Frame(e)),
                Err(e) => {
                    // The bad line was consumed; the stream is still in step.
                    tracing::warn!(error = %e, "skipping an unparseable line from the server");
                    continue;
                }
            }
            if self.read_more().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads what the socket has into the buffer; 0 when the server closed the connection.
    /// Cancel-safe: waiting for the socket reads nothing.
    async fn read_more(&mut self) -> Result<usize, NetError> {
        if !self.buf.is_empty() {
            // Part of a frame is here: the rest is on its way.
            self.buf.reserve(READ_CHUNK);
            return self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(NetError::Io);
        }
        // Nothing half-read: wait holding no buffer (the frames taken keep what they
        // need of the last one).
        self.buf = BytesMut::new();
        loop {
            self.stream.readable().await.map_err(NetError::Io)?;
            self.buf.reserve(READ_CHUNK);
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.buf = BytesMut::new();
                }
                Err(e) => return Err(NetError::Io(e)),
            }
        }
    }

    /// Writes `frames` in one go.
    pub(crate) async fn write_frames(&mut self, frames: &[Frame]) -> Result<(), NetError> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut out = BytesMut::new();
        for frame in frames {
            tracing::trace!(frame = %frame_for_log(frame), "->");
            if let Err(e) = frame.encode(&mut out) {
                // A frame the machine built but cannot encode is a bug there; skip it
                // rather than desynchronise the stream.
                tracing::error!(error = %e, verb = frame.verb.as_str(), "cannot encode a frame; dropped");
            }
        }
        tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&out))
            .await
            .map_err(|_| NetError::Timeout)?
            .map_err(NetError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Frames split across reads, a payload several read chunks long, and frames that
    /// come after a wait with no buffer held all arrive whole and in order.
    #[tokio::test]
    async fn frames_arrive_whole_across_reads_and_waits() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let (go_on_tx, mut go_on) = tokio::sync::mpsc::channel::<()>(1);
        let payload = "x".repeat(3 * READ_CHUNK + 17);
        let long = format!("NOT {}\r\n{payload}", payload.len());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            // A line cut in two writes, then the long payload in pieces.
            socket.write_all(b"CHG 1 N").await.expect("write");
            socket.flush().await.expect("flush");
            go_on.recv().await;
            socket.write_all(b"LN 0\r\n").await.expect("write");
            for piece in long.as_bytes().chunks(1000) {
                socket.write_all(piece).await.expect("write");
            }
            go_on.recv().await;
            socket.write_all(b"QNG 50\r\n").await.expect("write");
        });
        let mut wire = Wire::connect(&addr, Duration::from_secs(5), Limits::default())
            .await
            .expect("connect");
        // The first half of the line is read before the rest is written.
        let read = tokio::spawn(async move {
            let first = wire.read_frame(12).await;
            (wire, first)
        });
        tokio::task::yield_now().await;
        go_on_tx.send(()).await.expect("go on");
        let (mut wire, first) = read.await.expect("reader");
        let first = first.expect("read").expect("a frame");
        assert_eq!(first.verb.as_str(), "CHG");
        let long = wire.read_frame(12).await.expect("read").expect("a frame");
        assert_eq!(long.verb.as_str(), "NOT");
        assert_eq!(long.payload.as_deref(), Some(payload.as_bytes()));
        // Nothing is half-read now: the wire waits holding no buffer. (Polled once: it
        // is waiting for the socket when the other branch is taken.)
        tokio::select! {
            biased;
            read = wire.read_frame(12) => panic!("nothing was sent yet: {read:?}"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(wire.buf.capacity(), 0);
        go_on_tx.send(()).await.expect("go on");
        let last = wire.read_frame(12).await.expect("read").expect("a frame");
        assert_eq!(last.verb.as_str(), "QNG");
        server.await.expect("server");
        assert!(wire.read_frame(12).await.expect("read").is_none(), "closed");
    }
}
