//! The switchboard driver's side of file transfers (MSNP.md §10.5): it reads the files
//! we send from their source as the endpoint asks (a window at a time) and writes the
//! files we receive to their sink piece by piece, so a file of any size costs a few
//! kilobytes here. Each transfer's outcome goes to whoever started it.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;

use super::{Driver, TransferError};
use msnp::p2p::{FileContext, P2pEvent, TransferId};

/// Where the bytes of a file we send come from.
pub type FileSource = Box<dyn AsyncRead + Send + Sync + Unpin>;
/// Where the bytes of a file we receive go.
pub type FileSink = Box<dyn AsyncWrite + Send + Sync + Unpin>;
/// Told when a file we send has arrived, or why not.
pub(super) type SentReply = oneshot::Sender<Result<(), TransferError>>;
/// Told the size of a file we received once it is all written, or why not.
pub(super) type ReceivedReply = oneshot::Sender<Result<u64, TransferError>>;

/// Most bytes read from a source at once.
const READ_PIECE: usize = 16 * 1024;

/// A file we send.
pub(super) struct Outbound {
    source: FileSource,
    done: SentReply,
}

/// A file we receive.
pub(super) struct Inbound {
    sink: FileSink,
    written: u64,
    done: ReceivedReply,
}

impl Driver {
    /// Puts an offer on the way.
    pub(super) fn offer_file(
        &mut self,
        now: Instant,
        contact: &str,
        file: &FileContext,
        source: FileSource,
        done: SentReply,
    ) -> Result<(), TransferError> {
        let id = self.endpoint.offer_file(now, contact, file)?;
        self.outbound.insert(id, Outbound { source, done });
        Ok(())
    }

    /// Accepts an offered file into `sink`.
    pub(super) fn accept_file(
        &mut self,
        now: Instant,
        id: TransferId,
        sink: FileSink,
        done: ReceivedReply,
    ) {
        if self.endpoint.accept_file(now, id) {
            let written = 0;
            self.inbound.insert(
                id,
                Inbound {
                    sink,
                    written,
                    done,
                },
            );
        } else {
            let gone = msnp::p2p::FetchError::Cancelled;
            let _ = done.send(Err(gone.into()));
        }
    }

    /// Reads the next pieces of the files being sent, as far as the endpoint takes them.
    pub(super) async fn feed_files(&mut self, now: Instant) {
        while let Some((id, _, max)) = self.endpoint.wanted_file_data() {
            let Some(outbound) = self.outbound.get_mut(&id) else {
                // Nobody feeds it (cannot happen: offers come with a source).
                self.endpoint.cancel(id);
                continue;
            };
            let mut piece = vec![0; max.min(READ_PIECE)];
            let read = match outbound.source.read(&mut piece).await {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than offered",
                )),
                Ok(n) => Ok(n),
                Err(e) => Err(e),
            };
            match read {
                Ok(n) => {
                    piece.truncate(n);
                    self.endpoint.feed_file(now, id, piece.into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a file being sent; cancelled");
                    if let Some(outbound) = self.outbound.remove(&id) {
                        let _ = outbound.done.send(Err(e.into()));
                    }
                    self.endpoint.cancel(id);
                }
            }
        }
    }

    /// Handles a file event of the endpoint; other events are given back.
    pub(super) async fn on_file_event(&mut self, event: P2pEvent) -> Option<P2pEvent> {
        match event {
            P2pEvent::FileData { id, data, .. } => {
                // Data of a transfer nobody receives (cannot happen) is dropped.
                let inbound = self.inbound.get_mut(&id)?;
                if let Err(e) = inbound.sink.write_all(&data).await {
                    tracing::warn!(error = %e, "cannot write a file being received; cancelled");
                    if let Some(inbound) = self.inbound.remove(&id) {
                        let _ = inbound.done.send(Err(e.into()));
                    }
                    self.endpoint.cancel(id);
                    return None;
                }
                inbound.written += data.len() as u64;
                None
            }
            P2pEvent::FileReceived { id, .. } => {
                if let Some(mut inbound) = self.inbound.remove(&id) {
                    let flushed = inbound.sink.flush().await;
                    let _ = inbound
                        .done
                        .send(flushed.map(|()| inbound.written).map_err(Into::into));
                }
                None
            }
            P2pEvent::FileSent { id, .. } => {
                if let Some(outbound) = self.outbound.remove(&id) {
                    let _ = outbound.done.send(Ok(()));
                }
                None
            }
            P2pEvent::FileFailed { id, error, .. } => {
                if let Some(outbound) = self.outbound.remove(&id) {
                    let _ = outbound.done.send(Err(error.into()));
                } else if let Some(inbound) = self.inbound.remove(&id) {
                    let _ = inbound.done.send(Err(error.into()));
                }
                None
            }
            P2pEvent::FileAccepted { .. } => None,
            other => Some(other),
        }
    }
}
