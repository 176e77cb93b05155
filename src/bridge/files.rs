//! Files between MSN and Matrix, in the core's terms. A contact's file comes in through
//! the durable outbox (its local copy named in the entry) and is uploaded to the media
//! repository and posted as `m.image`, `m.video`, `m.audio` or `m.file` when its turn
//! comes; what is coming, refused or lost is a notice in the portal. A Matrix user's
//! media message is downloaded (authenticated media, streamed to disk) and offered to
//! the contacts of the portal; the message's send status and, when it does not arrive,
//! a notice say how it ended.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ruma::{EventId, OwnedEventId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use super::event::Media;
use super::ids::MsnAddress;
use super::media::identify;
use super::outbox::{Failed, Outgoing, Shape};
use super::port::OutgoingMedia;
use super::portals::outgoing;
use super::remote::{
    Chat, DeliveryError, FileTransfer, MsnConnector, MsnSessionPort as _, OutgoingFile,
    RECEIVED_FILE_PREFIX,
};
use super::{Bridge, MatrixPort};
use crate::store::{MessageMapping, OutboxEntry};

/// Files from this size on are announced when they start coming: over the switchboard
/// they take a while (about 1.2 KB per message, one message per server round trip:
/// a second or more from here on).
const ANNOUNCE_FROM: u64 = 256 * 1024;

/// How the bridge names a Matrix file on its way to MSN in the file directory (the link
/// names contacts' files `from-msn-…`).
const TO_MSN_PREFIX: &str = "to-msn";

/// The size the preview of an offered image is scaled to fit (MSN shows 96×96).
const PREVIEW_SIDE: u32 = 96;
/// The largest preview attached: it travels base64-encoded inside the offer, whose
/// MSNSLP message may not pass 64 KiB.
const MAX_PREVIEW: usize = 32 * 1024;

/// A contact's file on the bridge's disk, waiting in the outbox to be posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LocalFile {
    pub path: String,
    pub size: u64,
}

/// The Matrix message types that carry a file MSN can take.
pub(super) fn is_file_message(msgtype: &str) -> bool {
    matches!(msgtype, "m.image" | "m.file" | "m.video" | "m.audio")
}

/// A size for people: `812 B`, `3.4 KB`, `5.0 MB`.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = "KB";
    for next in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// The name a file goes by: its last path part, never empty.
fn file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    if last.is_empty() {
        "file".to_owned()
    } else {
        last.to_owned()
    }
}

/// A fresh path in the file directory.
fn fresh_path(dir: &Path, prefix: &str) -> PathBuf {
    let mut random = [0u8; 8];
    // Without randomness the name still differs by time.
    if getrandom::fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        random = (nanos as u64).to_le_bytes();
    }
    dir.join(format!("{prefix}-{:016x}", u64::from_le_bytes(random)))
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %path.display(), "cannot remove a bridged file");
    }
}

/// Where a file transfer's progress notice stands ([`Outgoing::progress`]): a long
/// transfer is announced in one notice, which its end edits to say how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(super) enum Progress {
    /// This notice announces transfer `key`.
    Announce { key: String },
    /// This post ends transfer `key`; its announcement, if any, now reads `text`.
    Conclude { key: String, text: String },
}

/// The message-map name of the announcement of transfer `key`.
fn announcement_mark(key: &str) -> String {
    format!("msn-file-{key}")
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// A contact's file, from offer to arrival, into its portal: transfer `key`.
    pub(super) async fn relay_file(
        self: &Arc<Self>,
        mxid: &UserId,
        (chat, from): (&Chat, &MsnAddress),
        key: &str,
        name: &str,
        transfer: FileTransfer,
    ) {
        let name = file_name(name);
        let key = key.to_owned();
        let (mut post, progress) = match transfer {
            FileTransfer::Receiving { size } if size >= ANNOUNCE_FROM => {
                let text = format!("is sending {name} ({})…", human_size(size));
                let post = outgoing(chat, from, Shape::Notice, text, None);
                (post, Some(Progress::Announce { key }))
            }
            FileTransfer::Receiving { .. } => return,
            FileTransfer::Received { path, size } => {
                let text = format!("sent {name} ({}).", human_size(size));
                let mut post = outgoing(chat, from, Shape::File, name, None);
                post.file = Some(LocalFile {
                    path: path.to_string_lossy().into_owned(),
                    size,
                });
                (post, Some(Progress::Conclude { key, text }))
            }
            FileTransfer::TooLarge { size, limit } => {
                let text = format!(
                    "offered {name} ({}), larger than the bridge takes ({}): it was declined.",
                    human_size(size),
                    human_size(limit)
                );
                (outgoing(chat, from, Shape::Notice, text, None), None)
            }
            FileTransfer::Failed { why } => {
                let text = format!("sent {name}, but it did not arrive: {why}.");
                let post = outgoing(chat, from, Shape::Notice, text.clone(), None);
                (post, Some(Progress::Conclude { key, text }))
            }
        };
        post.progress = progress;
        self.post_to_matrix(mxid, post).await;
    }

    /// The announcement of transfer `key`, if one was posted.
    async fn announcement(&self, mxid: &UserId, key: &str) -> Option<OwnedEventId> {
        if key.is_empty() {
            return None;
        }
        let mark = announcement_mark(key);
        match self.store.event_of_msn_message(mxid.as_str(), &mark).await {
            Ok(found) => found.and_then(|id| OwnedEventId::try_from(id).ok()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up a transfer's announcement");
                None
            }
        }
    }

    /// A failure notice ending an announced transfer edits the announcement instead of
    /// being posted: true when it did.
    pub(super) async fn concluded_in_place(
        &self,
        mxid: &UserId,
        room: &RoomId,
        puppet: &UserId,
        entry: &OutboxEntry,
        post: &Outgoing,
    ) -> Result<bool, Failed> {
        let (Shape::Notice, Some(Progress::Conclude { key, text })) = (post.shape, &post.progress)
        else {
            return Ok(false);
        };
        let Some(announcement) = self.announcement(mxid, key).await else {
            return Ok(false);
        };
        let txn = format!("msn-outbox-{}-{}", entry.seq, entry.created_at);
        match self
            .matrix
            .edit_notice(room, &announcement, text, &txn, puppet)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if M::is_transient(&e) => Err(Failed::Transient(e.to_string())),
            Err(e) => {
                tracing::info!(error = %e, "cannot edit a transfer's announcement; posting the notice");
                Ok(false)
            }
        }
    }

    /// After `post` went out as `event_id`: an announcement is remembered, and a file
    /// that ends an announced transfer edits its announcement to say it is in.
    pub(super) async fn after_progress(
        &self,
        mxid: &UserId,
        room: &RoomId,
        puppet: &UserId,
        entry: &OutboxEntry,
        post: &Outgoing,
        event_id: &EventId,
    ) {
        match &post.progress {
            Some(Progress::Announce { key }) => {
                let mapping = MessageMapping {
                    matrix_event_id: event_id.to_string(),
                    part: 0,
                    room_id: room.to_string(),
                    receiver: mxid.to_string(),
                    msn_message_id: announcement_mark(key),
                    direction: "to_matrix".into(),
                };
                if let Err(e) = self.messages.record(mapping).await {
                    tracing::warn!(error = %e, "cannot remember a transfer's announcement");
                }
            }
            Some(Progress::Conclude { key, text }) if post.shape == Shape::File => {
                let Some(announcement) = self.announcement(mxid, key).await else {
                    return;
                };
                let txn = format!("msn-outbox-{}-{}-done", entry.seq, entry.created_at);
                if let Err(e) = self
                    .matrix
                    .edit_notice(room, &announcement, text, &txn, puppet)
                    .await
                {
                    tracing::info!(error = %e, "cannot edit a transfer's announcement");
                }
            }
            _ => {}
        }
    }

    /// Uploads and posts the file of an outbox entry as `sender`; the local copy is
    /// removed by the caller once the post is recorded.
    pub(super) async fn post_file(
        &self,
        room: &RoomId,
        post: &Outgoing,
        txn: &str,
        at_ms: i64,
        sender: &UserId,
    ) -> Result<OwnedEventId, Failed> {
        let Some(file) = &post.file else {
            return Err(Failed::Permanent("the entry names no file".into()));
        };
        let path = Path::new(&file.path);
        let kind = identify(path, &post.body)
            .await
            .map_err(|e| Failed::Permanent(format!("the received file is gone ({e})")))?;
        let failure = |e: M::Error| {
            if M::is_transient(&e) {
                Failed::Transient(e.to_string())
            } else {
                Failed::Permanent(e.to_string())
            }
        };
        let url = self
            .matrix
            .upload_file(path, &kind.mimetype, &post.body)
            .await
            .map_err(failure)?;
        let media = OutgoingMedia {
            msgtype: kind.msgtype,
            name: &post.body,
            url: &url,
            mimetype: &kind.mimetype,
            size: file.size,
            dimensions: kind.dimensions,
            at_ms: Some(at_ms),
            mark: Some(txn),
        };
        self.matrix
            .send_media(room, media, txn, sender)
            .await
            .map_err(failure)
    }

    /// Removes the files an earlier run left in the file directory that nothing will
    /// post: transfers a stop cut short, Matrix files whose offer the stop ended. Kept:
    /// what the outbox still names, anything written since this run started, and any
    /// file the bridge does not name itself. Nothing is removed when the outbox cannot
    /// be read.
    pub(super) async fn sweep_files(&self) {
        let dir = self.config.msn.file_dir();
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            return;
        };
        let Some(named) = self.files_in_outbox().await else {
            return;
        };
        let started = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(self.started_ms).unwrap_or(0));
        let mut removed = 0;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let ours = entry.file_name().to_str().is_some_and(|name| {
                name.starts_with(RECEIVED_FILE_PREFIX) || name.starts_with(TO_MSN_PREFIX)
            });
            let path = entry.path();
            if !ours || named.contains(&path) {
                continue;
            }
            let earlier = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|at| at < started);
            if earlier {
                remove(&path).await;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "removed files an earlier run left unfinished");
        }
    }

    /// The files the outbox names (received files waiting to be posted).
    async fn files_in_outbox(&self) -> Option<std::collections::HashSet<PathBuf>> {
        const PAGE: i64 = 256;
        let mut named = std::collections::HashSet::new();
        let receivers = self.store.outbox_receivers().await.ok()?;
        for receiver in receivers {
            let mut after = 0;
            loop {
                let page = self.store.outbox_of(&receiver, after, PAGE).await.ok()?;
                for entry in &page {
                    if let Ok(Outgoing {
                        file: Some(file), ..
                    }) = self.open_outgoing(&entry.payload)
                    {
                        named.insert(PathBuf::from(file.path));
                    }
                }
                match page.last() {
                    Some(last) if page.len() as i64 == PAGE => after = last.seq,
                    _ => break,
                }
            }
        }
        Some(named)
    }

    /// Removes the local copy of a posted file.
    pub(super) async fn forget_file(post: &Outgoing) {
        if let Some(file) = &post.file {
            remove(Path::new(&file.path)).await;
        }
    }

    /// A Matrix user's media message to the contacts of `chat`: fetched from the media
    /// repository, offered, and its outcome reported when the transfer ends (a contact
    /// may take minutes to accept, so the portal's next messages do not wait for it).
    pub(super) async fn send_file_to_msn(
        self: &Arc<Self>,
        (room_id, event_id): (&RoomId, &EventId),
        sender: &UserId,
        chat: &Chat,
        (msgtype, media): (&str, &Media),
        caption: &str,
    ) {
        let notifier = self.notifier(chat);
        let offered = self
            .offer_file(sender, chat, (msgtype, media), caption)
            .await;
        let (delivery, path) = match offered {
            Ok(offered) => offered,
            Err(why) => {
                self.conclude(room_id, event_id, &notifier, Err(why)).await;
                return;
            }
        };
        let this = self.clone();
        let (room_id, event_id) = (room_id.to_owned(), event_id.to_owned());
        tokio::spawn(async move {
            let outcome = match delivery.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the MSN session ended before it was sent".into()),
            };
            remove(&path).await;
            if outcome.is_ok() {
                this.metrics.message("to_msn");
            }
            this.conclude(&room_id, &event_id, &notifier, outcome).await;
        });
    }

    /// Fetches the file and offers it; the delivery to wait for and the local copy.
    async fn offer_file(
        self: &Arc<Self>,
        sender: &UserId,
        chat: &Chat,
        (msgtype, media): (&str, &Media),
        caption: &str,
    ) -> Result<(super::remote::FileDelivery, PathBuf), String> {
        let max = self.config.msn.max_file_bytes;
        if let Some(size) = media.size.filter(|size| *size > max) {
            return Err(format!(
                "the file is {}, and the bridge sends files up to {}",
                human_size(size),
                human_size(max)
            ));
        }
        let name = file_name(media.filename.as_deref().unwrap_or(caption));
        self.user_is_active(sender).await;
        let dir = self.config.msn.file_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("the bridge cannot store files ({e})"))?;
        let path = fresh_path(&dir, TO_MSN_PREFIX);
        let size = self
            .matrix
            .download_to_file(&media.url, &path, max)
            .await
            .map_err(|e| format!("the bridge could not fetch it from the homeserver ({e})"))?;
        let preview = match msgtype {
            "m.image" => self.preview_of(&media.url).await,
            _ => None,
        };
        let file = OutgoingFile {
            name,
            size,
            path,
            preview,
        };
        let mut sent = self.offer_to_session(sender, chat, file.clone()).await;
        if matches!(sent, Err(DeliveryError::NotConnected)) {
            // The connection dropped under it: it waits for the session, as a text does.
            self.wait_for_session(sender).await;
            sent = self.offer_to_session(sender, chat, file.clone()).await;
        }
        match sent {
            Ok(delivery) => Ok((delivery, file.path)),
            Err(e) => {
                remove(&file.path).await;
                Err(e.to_string())
            }
        }
    }

    /// The homeserver's thumbnail of an image, as the offer's preview, when it is a PNG
    /// (the preview MSN clients expect) and small enough.
    async fn preview_of(&self, mxc: &str) -> Option<Vec<u8>> {
        let thumbnail = self
            .matrix
            .download(mxc, Some(PREVIEW_SIDE), MAX_PREVIEW)
            .await
            .map_err(|e| tracing::debug!(error = %e, "no thumbnail for the offer's preview"))
            .ok()?;
        thumbnail
            .starts_with(b"\x89PNG\r\n\x1a\n")
            .then_some(thumbnail)
    }

    async fn offer_to_session(
        &self,
        sender: &UserId,
        chat: &Chat,
        file: OutgoingFile,
    ) -> Result<super::remote::FileDelivery, DeliveryError> {
        let Some(session) = self.session_of(sender) else {
            return Err(DeliveryError::Failed(
                "you are not logged in to MSN (send `login` in your management room)".into(),
            ));
        };
        session.send_file(chat, file).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names_read_as_people_write_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(3 * 1024 + 400), "3.4 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MB");
        assert_eq!(human_size(100 * 1024 * 1024 * 1024), "100.0 GB");
        assert_eq!(file_name("C:\\Users\\bob\\photo.jpg"), "photo.jpg");
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("  "), "file");
        assert!(is_file_message("m.image") && !is_file_message("m.location"));
    }
}
