//! One MSNP socket as frames: a bounded read buffer fed to `msnp::parse`, and frame writes
//! with a timeout. Only the driver task that owns a `Wire` touches its socket.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::NetError;
use super::redact::frame_for_log;
use msnp::{Direction, Frame, Limits, parse};

/// How long a write may block before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Wire {
    stream: TcpStream,
    buf: BytesMut,
    out: BytesMut,
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
            buf: BytesMut::with_capacity(4096),
            out: BytesMut::with_capacity(1024),
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
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(NetError::Io)?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// Writes `frames` in one go.
    pub(crate) async fn write_frames(&mut self, frames: &[Frame]) -> Result<(), NetError> {
        if frames.is_empty() {
            return Ok(());
        }
        self.out.clear();
        for frame in frames {
            tracing::trace!(frame = %frame_for_log(frame), "->");
            if let Err(e) = frame.encode(&mut self.out) {
                // A frame the machine built but cannot encode is a bug there; skip it
                // rather than desynchronise the stream.
                tracing::error!(error = %e, verb = frame.verb.as_str(), "cannot encode a frame; dropped");
            }
        }
        tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&self.out))
            .await
            .map_err(|_| NetError::Timeout)?
            .map_err(NetError::Io)
    }
}
