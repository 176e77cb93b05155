//! Pictures both ways. A contact's MSN display picture becomes its puppet's avatar; the
//! custom emoticons of a message become inline images; the user's Matrix avatar becomes
//! their MSN display picture.
//!
//! Every picture from MSN is fetched and uploaded once per SHA1D (the store's picture
//! cache), whoever shows it. Display pictures are fetched beside the session's event
//! loop, [`PICTURE_FETCHES`] at a time, and only from contacts who are online (a
//! transfer needs the contact's client). The user's avatar goes to MSN as a thumbnail of
//! MSN's picture size, so contacts' clients fetch a few KB, not a photo.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ruma::UserId;

use tracing::Instrument;

use super::formatting::InlineImage;
use super::ids::MsnAddress;
use super::remote::OwnStatus;
use super::remote::{
    Availability, Chat, ContactInfo, Emoticon, MsnConnector, MsnSessionPort, PictureRef,
};
use super::{Bridge, MatrixPort, lock};

/// Display pictures fetched from MSN at once, across all users.
pub const PICTURE_FETCHES: usize = 4;

/// The size MSN clients show display pictures at (96×96 pixels).
const MSN_PICTURE_SIZE: u32 = 96;

/// Largest picture sent to MSN (a 96×96 thumbnail is a few KB; an original that the
/// homeserver could not thumbnail is accepted up to this).
const MAX_OWN_PICTURE: usize = 256 * 1024;

/// The media type of picture bytes, from their signature (MSN does not say).
pub fn picture_type(data: &[u8]) -> &'static str {
    match data {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [b'B', b'M', ..] => "image/bmp",
        _ => "application/octet-stream",
    }
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Starts bringing the puppet's avatar in line with the contact's display picture,
    /// unless that already runs for this contact.
    pub(super) fn sync_avatar(
        self: &Arc<Self>,
        mxid: &UserId,
        session: &C::Session,
        contact: &ContactInfo,
    ) {
        let Some(picture) = contact.picture.clone() else {
            return;
        };
        if contact.availability == Availability::Offline {
            return;
        }
        // MSN opens no conversation (so no picture transfer) for a hidden user: the fetch
        // waits until the user is visible again (`avatars_after_hiding`).
        let hidden = self
            .users
            .get(mxid)
            .is_some_and(|user| *lock(&user.own_status) == Some(OwnStatus::Hidden));
        if hidden {
            return;
        }
        let address = contact.address.clone();
        let puppet = self.puppets.entry(&address);
        if lock(&puppet.avatar_shown).as_ref() == Some(&picture.hash)
            || puppet.fetching.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let bridge = self.clone();
        let session = session.clone();
        let span = tracing::info_span!("avatar", contact = %address);
        tokio::spawn(
            async move {
                bridge.update_avatar(&session, &address, &picture).await;
                puppet.fetching.store(false, Ordering::Release);
            }
            .instrument(span),
        );
    }

    /// The user is visible again: the pictures of contacts skipped while hidden are
    /// fetched now (those already shown are skipped again, cheaply).
    pub(super) async fn avatars_after_hiding(
        self: &Arc<Self>,
        mxid: &UserId,
        session: &C::Session,
    ) {
        match session.contacts().await {
            Ok(contacts) => {
                for contact in contacts.iter().filter(|c| c.is_friend) {
                    self.sync_avatar(mxid, session, contact);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot list the contacts"),
        }
    }

    async fn update_avatar(
        &self,
        session: &C::Session,
        address: &MsnAddress,
        picture: &PictureRef,
    ) {
        let puppet = match self.store.puppet(address.as_str()).await {
            Ok(Some(puppet)) => puppet,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the puppet");
                return;
            }
        };
        if puppet.avatar_sha1d.as_deref() == Some(picture.hash.as_str()) {
            self.avatar_shown(address, &picture.hash);
            return;
        }
        let chat = Chat::Contact(address.to_owned());
        let Some(mxc) = self.picture_mxc(session, &chat, address, picture).await else {
            return;
        };
        if let Err(e) = self.matrix.set_avatar(&puppet.mxid, &mxc).await {
            tracing::warn!(error = %e, "cannot set the puppet's avatar");
            return;
        }
        if let Err(e) = self
            .store
            .set_puppet_avatar(address.as_str(), &picture.hash, &mxc)
            .await
        {
            tracing::error!(error = %e, "cannot store the puppet's avatar");
        }
        self.show_in_dm_portals(address, &puppet.mxid, &mxc).await;
        self.avatar_shown(address, &picture.hash);
        tracing::info!(%mxc, "puppet avatar updated");
    }

    /// Remembers that the puppet of `address` shows the picture `hash`, so that presence
    /// changes announcing the same picture cost nothing.
    fn avatar_shown(&self, address: &MsnAddress, hash: &str) {
        *lock(&self.puppets.entry(address).avatar_shown) = Some(hash.to_owned());
    }

    /// The `mxc://` URI of a picture from MSN: from the cache, or fetched from `from`
    /// and uploaded. `None` (logged) when it cannot be had.
    async fn picture_mxc(
        &self,
        session: &C::Session,
        chat: &Chat,
        from: &MsnAddress,
        picture: &PictureRef,
    ) -> Option<String> {
        match self.store.picture_mxc(&picture.hash).await {
            Ok(Some(mxc)) => return Some(mxc),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the picture cache"),
        }
        let data = {
            let _permit = self.picture_permits.acquire().await.ok()?;
            // A second try on a fresh conversation: the contact may have replaced the one
            // the first went over (a conversation they opened meanwhile).
            let first = session.fetch_picture(chat, from, picture).await;
            let fetched = match first {
                Ok(data) => Ok(data),
                Err(e) => {
                    tracing::debug!(error = %e, "picture fetch failed; trying once more");
                    session.fetch_picture(chat, from, picture).await
                }
            };
            match fetched {
                Ok(data) => data,
                Err(e) => {
                    tracing::info!(error = %e, "cannot fetch a picture from MSN");
                    self.metrics.p2p_transfer("fetch", false);
                    return None;
                }
            }
        };
        self.metrics.p2p_transfer("fetch", true);
        let kind = picture_type(&data);
        let mxc = match self.matrix.upload(data.to_vec(), kind, "msn-picture").await {
            Ok(mxc) => mxc,
            Err(e) => {
                tracing::warn!(error = %e, "cannot upload a picture");
                return None;
            }
        };
        if let Err(e) = self.store.put_picture(&picture.hash, &mxc).await {
            tracing::warn!(error = %e, "cannot store the picture cache entry");
        }
        Some(mxc)
    }

    /// The inline images of a message's emoticons that could be had; the others stay
    /// their shortcut text.
    pub(super) async fn emoticon_images(
        &self,
        session: &C::Session,
        chat: &Chat,
        from: &MsnAddress,
        emoticons: &[Emoticon],
    ) -> Vec<InlineImage> {
        let mut images = Vec::with_capacity(emoticons.len());
        for emoticon in emoticons {
            if let Some(mxc) = self
                .picture_mxc(session, chat, from, &emoticon.picture)
                .await
            {
                images.push(InlineImage {
                    text: emoticon.shortcut.clone(),
                    mxc,
                });
            }
        }
        images
    }

    /// The user's Matrix avatar as MSN display picture bytes (`None`: no avatar).
    pub(super) async fn own_picture(&self, mxc: Option<&str>) -> Option<bytes::Bytes> {
        let mxc = mxc?;
        let thumbnail = self
            .matrix
            .download(mxc, Some(MSN_PICTURE_SIZE), MAX_OWN_PICTURE)
            .await;
        let data = match thumbnail {
            Ok(data) => data,
            Err(e) => {
                tracing::debug!(error = %e, "no thumbnail of the avatar; trying the original");
                match self.matrix.download(mxc, None, MAX_OWN_PICTURE).await {
                    Ok(data) => data,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot download the user's avatar");
                        return None;
                    }
                }
            }
        };
        Some(bytes::Bytes::from(data))
    }

    /// A logged-in user's avatar changed (or was seen): their MSN display picture follows.
    pub(super) async fn on_own_avatar(&self, mxid: &UserId, mxc: Option<&str>) {
        let Some(session) = self.session_of(mxid) else {
            return;
        };
        let wanted = mxc.unwrap_or_default().to_owned();
        let user = self.users.entry(mxid);
        if lock(&user.own_avatar).as_ref() == Some(&wanted) {
            return;
        }
        let picture = self.own_picture(mxc).await;
        if mxc.is_some() && picture.is_none() {
            return;
        }
        match session.set_picture(picture).await {
            Ok(()) => {
                *lock(&user.own_avatar) = Some(wanted);
            }
            Err(e) => tracing::debug!(error = %e, "cannot set the MSN display picture"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::picture_type;

    #[test]
    fn picture_types_come_from_signatures() {
        assert_eq!(picture_type(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(picture_type(&[0xFF, 0xD8, 0xFF, 0xE0]), "image/jpeg");
        assert_eq!(picture_type(b"GIF89a"), "image/gif");
        assert_eq!(picture_type(b"BM...."), "image/bmp");
        assert_eq!(picture_type(b""), "application/octet-stream");
        assert_eq!(picture_type(b"<svg"), "application/octet-stream");
    }
}
