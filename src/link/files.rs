//! Files between contacts and the bridge over switchboards (MSNP.md §10.5). A contact's
//! offer is accepted up to [`MsnSettings::max_file_bytes`] and written to a file of the
//! bridge's as it arrives; the core is told when it is coming, when it is in (to post
//! it) and why when it is not. A file from Matrix is offered to every contact of the
//! conversation, read from disk as the transfer goes.

use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::conversations::Conversations;
use super::{LinkSession, delivery, unreachable};
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{
    Chat, DeliveryError, FileDelivery, FileTransfer, OutgoingFile, RECEIVED_FILE_PREFIX,
    RemoteEvent,
};
use crate::net::{MsnSettings, NetError, SbClient, TransferError};
use msnp::InkFormat;
use msnp::p2p::{FetchError, FileContext, TransferId};

/// A contact offers `file` on `sb`: accepted into a new file of the bridge's, or
/// declined when it is too large; the core hears of each step.
pub(super) async fn on_offer(
    conversations: &Conversations,
    sb: &SbClient,
    chat: Chat,
    from: MsnAddress,
    id: TransferId,
    file: FileContext,
) {
    let settings = conversations.settings();
    let name = file.name.clone();
    let event = move |key: &str, transfer| RemoteEvent::File {
        chat: chat.clone(),
        from: from.clone(),
        key: key.to_owned(),
        name: name.clone(),
        transfer,
    };
    if file.size > settings.max_file_bytes {
        tracing::info!(size = file.size, "a file offered is too large; declined");
        sb.decline_file(id).await;
        let limit = settings.max_file_bytes;
        let too_large = FileTransfer::TooLarge {
            size: file.size,
            limit,
        };
        conversations.emit(event("", too_large)).await;
        return;
    }
    let (path, sink) = match new_file(settings).await {
        Ok(created) => created,
        Err(e) => {
            tracing::error!(error = %e, dir = %settings.file_dir.display(), "cannot create a file for an incoming transfer");
            sb.decline_file(id).await;
            let why = format!("the bridge cannot store files ({e})");
            conversations
                .emit(event("", FileTransfer::Failed { why }))
                .await;
            return;
        }
    };
    let key = transfer_key(&path);
    let outcome = match sb.receive_file(id, Box::new(sink)).await {
        Ok(outcome) => outcome,
        Err(e) => {
            remove(&path).await;
            let why = describe(&e.into());
            conversations
                .emit(event(&key, FileTransfer::Failed { why }))
                .await;
            return;
        }
    };
    let receiving = FileTransfer::Receiving { size: file.size };
    conversations.emit(event(&key, receiving)).await;
    let conversations = conversations.clone();
    tokio::spawn(async move {
        let transfer = match outcome.await {
            Ok(Ok(size)) => FileTransfer::Received { path, size },
            failed => {
                remove(&path).await;
                let why = match failed {
                    Ok(Err(e)) => describe(&e),
                    _ => describe(&FetchError::Closed.into()),
                };
                tracing::info!(%why, "an incoming file did not arrive");
                FileTransfer::Failed { why }
            }
        };
        conversations.emit(event(&key, transfer)).await;
    });
}

/// The key of a transfer into `path`: its file name, unique among the bridge's.
fn transfer_key(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A new empty file in the file directory, named so no two collide.
async fn new_file(settings: &MsnSettings) -> std::io::Result<(PathBuf, tokio::fs::File)> {
    tokio::fs::create_dir_all(&settings.file_dir).await?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = format!(
        "{RECEIVED_FILE_PREFIX}{:016x}.part",
        u64::from_le_bytes(random)
    );
    let path = settings.file_dir.join(name);
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await?;
    Ok((path, file))
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(error = %e, path = %path.display(), "cannot remove a partial file");
    }
}

/// Why a transfer failed, for the user.
pub(super) fn describe(error: &TransferError) -> String {
    match error {
        TransferError::Fetch(FetchError::Declined { .. }) => "the contact declined it".into(),
        TransferError::Fetch(FetchError::PeerClosed) => "the contact cancelled it".into(),
        TransferError::Fetch(FetchError::Aborted { .. }) => {
            "the contact's Messenger stopped it".into()
        }
        TransferError::Fetch(FetchError::Timeout) => {
            "it timed out (no answer, or the transfer stalled)".into()
        }
        TransferError::Fetch(FetchError::Closed) | TransferError::Net(NetError::DriverGone) => {
            "the conversation closed before it was complete".into()
        }
        TransferError::Fetch(FetchError::Cancelled) => "it was cancelled".into(),
        TransferError::Fetch(
            FetchError::BadData(_) | FetchError::SizeMismatch { .. } | FetchError::HashMismatch,
        ) => "it arrived damaged".into(),
        TransferError::Io(e) => format!("the bridge could not read or write it ({e})"),
        TransferError::Start(e) => format!("it could not be offered ({e})"),
        TransferError::Net(e) => delivery_text(e),
    }
}

fn delivery_text(e: &NetError) -> String {
    match e {
        NetError::Timeout => "the MSN server did not answer in time".into(),
        other => other.to_string(),
    }
}

/// One contact's transfer of a file we send.
type Offer = (String, oneshot::Receiver<Result<(), TransferError>>);

impl LinkSession {
    /// Offers `file` to every contact of `to` ([`MsnSessionPort::send_file`]).
    ///
    /// [`MsnSessionPort::send_file`]: crate::bridge::remote::MsnSessionPort::send_file
    pub(super) async fn offer_file(
        &self,
        to: &Chat,
        file: OutgoingFile,
    ) -> Result<FileDelivery, DeliveryError> {
        if super::circles::circle_of(to).is_some() {
            return Err(DeliveryError::Failed(
                "files cannot be sent to a circle; MSN circles carry text only".into(),
            ));
        }
        let context = FileContext {
            name: file.name.clone(),
            size: file.size,
            preview: file.preview.clone(),
        };
        let account = self.account.clone();
        let offered = self
            .on_switchboard(to, |sb| {
                let (context, path, account) =
                    (context.clone(), file.path.clone(), account.clone());
                async move { offer_to_all(&sb, &account, &context, &path).await }
            })
            .await;
        let offers = match offered {
            Ok(Ok(offers)) => offers,
            Ok(Err(why)) => return Err(DeliveryError::Failed(why)),
            Err(e) if unreachable(&e) => {
                return Err(DeliveryError::Failed(
                    "the contact is offline (or appears so), and MSN cannot keep files for later"
                        .into(),
                ));
            }
            Err(e) => return Err(delivery(e)),
        };
        let (done, delivery) = oneshot::channel();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let one = offers.len() == 1;
            for (contact, outcome) in offers {
                let why = match outcome.await {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => describe(&e),
                    Err(_) => describe(&FetchError::Closed.into()),
                };
                failures.push(if one {
                    why
                } else {
                    format!("{contact}: {why}")
                });
            }
            let result = if failures.is_empty() {
                Ok(())
            } else {
                Err(DeliveryError::Failed(failures.join("; ")))
            };
            let _ = done.send(result);
        });
        Ok(delivery)
    }
}

/// Offers the file at `path` to everyone on `sb` but the user. The outer error is the
/// switchboard's (retried on a fresh one when nothing went out); the inner one a local
/// reason the file cannot go.
async fn offer_to_all(
    sb: &SbClient,
    account: &str,
    context: &FileContext,
    path: &Path,
) -> Result<Result<Vec<Offer>, String>, NetError> {
    sb.ready().await?;
    let contacts: Vec<String> = sb
        .participants()
        .await?
        .into_iter()
        .map(|p| p.email)
        .filter(|email| {
            let own = email.split(';').next().unwrap_or(email);
            !own.eq_ignore_ascii_case(account)
        })
        .collect();
    let mut offers = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let source = match tokio::fs::File::open(path).await {
            Ok(source) => source,
            Err(e) => return Ok(Err(format!("the bridge cannot read the file ({e})"))),
        };
        match sb
            .send_file(&contact, context.clone(), Box::new(source))
            .await
        {
            Ok(outcome) => offers.push((contact, outcome)),
            Err(TransferError::Net(e)) if offers.is_empty() => return Err(e),
            Err(e) => return Ok(Err(describe(&e))),
        }
    }
    if offers.is_empty() {
        return Err(NetError::NotDelivered(msnp::SendFailure::NotSent));
    }
    Ok(Ok(offers))
}

/// The datacast `ID` of a voice clip (§7.3); its `Data` is the clip's msnobj.
pub(super) const VOICE_CLIP: u32 = 3;

/// A handwritten message: a GIF is posted as a picture (through the same path as a
/// file), ISF, which only Tablet PC ink libraries draw, is named in a notice.
pub(super) async fn on_ink(
    conversations: &Conversations,
    chat: Chat,
    from: MsnAddress,
    format: InkFormat,
    data: bytes::Bytes,
) {
    if format == InkFormat::Isf {
        let what = "a handwritten message (ink in ISF, which Matrix cannot show)".into();
        conversations
            .emit(RemoteEvent::Unsupported { chat, from, what })
            .await;
        return;
    }
    let transfer = kept(conversations.settings(), &data).await;
    conversations
        .emit(RemoteEvent::File {
            chat,
            from,
            key: String::new(),
            name: "ink.gif".into(),
            transfer,
        })
        .await;
}

/// A voice clip: its sound is fetched from the contact over MSNSLP (msnobj Type 11) and
/// posted as audio; one that cannot be fetched is a notice.
pub(super) fn on_voice_clip(
    conversations: &Conversations,
    sb: &SbClient,
    chat: Chat,
    from: String,
    msnobj: String,
) {
    let (conversations, sb) = (conversations.clone(), sb.clone());
    tokio::spawn(async move {
        let transfer = match sb.fetch(&from, &msnobj).await {
            Ok((_, data)) => kept(conversations.settings(), &data).await,
            Err(e) => FileTransfer::Failed { why: describe(&e) },
        };
        let event = RemoteEvent::File {
            chat,
            from: MsnAddress::from_server(&from),
            key: String::new(),
            name: "voice clip.wav".into(),
            transfer,
        };
        conversations.emit(event).await;
    });
}

/// `data` kept in a new file of the bridge's, as a received file.
async fn kept(settings: &MsnSettings, data: &[u8]) -> FileTransfer {
    match keep(settings, data).await {
        Ok((path, size)) => FileTransfer::Received { path, size },
        Err(e) => FileTransfer::Failed {
            why: format!("the bridge cannot store files ({e})"),
        },
    }
}

/// Writes `data` to a new file of the bridge's: its path and size.
async fn keep(settings: &MsnSettings, data: &[u8]) -> std::io::Result<(PathBuf, u64)> {
    use tokio::io::AsyncWriteExt as _;
    let (path, mut file) = new_file(settings).await?;
    let written = async {
        file.write_all(data).await?;
        file.flush().await
    }
    .await;
    match written {
        Ok(()) => Ok((path, data.len() as u64)),
        Err(e) => {
            remove(&path).await;
            Err(e)
        }
    }
}
