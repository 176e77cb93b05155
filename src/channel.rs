//! Event channels that cost little while idle: each event travels boxed, so the buffer a
//! channel allocates up front (tokio's first block of 32 slots) holds 32 pointers rather
//! than 32 events of up to some 180 bytes. Every logged-in MSN session keeps its event
//! channels open while it idles (README, Performance: memory per idle login).

use tokio::sync::mpsc;

pub use mpsc::error::{SendError, TryRecvError};

/// A channel of `T`s holding at most `capacity` unread.
pub fn channel<T>(capacity: usize) -> (EventSender<T>, Events<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    (EventSender(tx), Events(rx))
}

/// The sending side of [`channel`].
#[derive(Debug)]
pub struct EventSender<T>(mpsc::Sender<Box<T>>);

impl<T> Clone for EventSender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> EventSender<T> {
    /// Sends `event`, waiting for room; gives it back if the receiver is gone.
    pub async fn send(&self, event: T) -> Result<(), SendError<T>> {
        self.0
            .send(Box::new(event))
            .await
            .map_err(|SendError(event)| SendError(*event))
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Waits until the receiver is gone.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

/// The receiving side of [`channel`].
#[derive(Debug)]
pub struct Events<T>(mpsc::Receiver<Box<T>>);

impl<T> Events<T> {
    /// The next event, or `None` once every sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.recv().await.map(|event| *event)
    }

    /// The next event if one is there now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map(|event| *event)
    }

    /// Refuses further events; those already sent can still be read.
    pub fn close(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_arrive_in_order_and_the_end_is_seen() {
        let (tx, mut rx) = channel(4);
        tx.send(1u8).await.expect("open");
        tx.send(2).await.expect("open");
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_send_to_a_closed_channel_gives_the_event_back() {
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send("kept").await, Err(SendError("kept")));
    }
}
