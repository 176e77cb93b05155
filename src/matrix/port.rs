//! The core's [`MatrixPort`] implemented over the client-server API (the calls themselves
//! live in `endpoints.rs`).

use ruma::api::client::{
    membership::join_room_by_id, membership::leave_room, message::send_message_event,
};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedRoomId, OwnedTransactionId, OwnedUserId};

use super::client::{Client, ClientError};
use crate::bridge::port::{BridgeInfo, OutgoingText};
use crate::bridge::presence::MatrixPresence;
use crate::bridge::{MatrixPort, MessageKind};
use ruma::presence::PresenceState;

/// The content key of [`OutgoingText::mark`] (namespaced, as custom keys must be).
const MARK_KEY: &str = "net.matrix_msn.mark";
/// How many of a room's latest events [`MatrixPort::find_marked`] reads.
const MARK_LOOK_BACK: u32 = 50;

pub(super) fn room(room_id: &str) -> Result<OwnedRoomId, ClientError> {
    // Room IDs are opaque (room version 12 has no server part): only the sigil is checked.
    OwnedRoomId::try_from(room_id)
        .map_err(|e| ClientError::Build(format!("room id {room_id:?}: {e}")))
}

pub(super) fn user(user_id: &str) -> Result<OwnedUserId, ClientError> {
    OwnedUserId::try_from(user_id)
        .map_err(|e| ClientError::Build(format!("user id {user_id:?}: {e}")))
}

fn as_user(user_id: Option<&str>) -> Result<Option<OwnedUserId>, ClientError> {
    user_id.map(user).transpose()
}

impl MatrixPort for Client {
    type Error = ClientError;

    fn bot(&self) -> &str {
        Client::bot(self).as_str()
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`.
    async fn send_notice(
        &self,
        room_id: &str,
        text: &str,
        html: Option<&str>,
        txn_id: &str,
        as_user_id: Option<&str>,
    ) -> Result<String, ClientError> {
        let content = match html {
            Some(html) => RoomMessageEventContent::notice_html(text, html),
            None => RoomMessageEventContent::notice_plain(text),
        };
        let request = send_message_event::v3::Request::new(
            room(room_id)?,
            OwnedTransactionId::from(txn_id),
            &content,
        )
        .map_err(|e| ClientError::Build(e.to_string()))?;
        let sender = as_user(as_user_id)?;
        let response = self.send(request, sender.as_deref()).await?;
        Ok(response.event_id.to_string())
    }

    /// `POST /_matrix/client/v3/rooms/{roomId}/join`.
    async fn join(&self, room_id: &str, as_user_id: Option<&str>) -> Result<(), ClientError> {
        let request = join_room_by_id::v3::Request::new(room(room_id)?);
        let sender = as_user(as_user_id)?;
        self.send(request, sender.as_deref()).await.map(|_| ())
    }

    /// `POST /_matrix/client/v3/rooms/{roomId}/leave`.
    async fn leave(
        &self,
        room_id: &str,
        reason: Option<&str>,
        as_user_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let mut request = leave_room::v3::Request::new(room(room_id)?);
        request.reason = reason.map(str::to_owned);
        let sender = as_user(as_user_id)?;
        self.send(request, sender.as_deref()).await.map(|_| ())
    }

    async fn register(&self, localpart: &str) -> Result<(), ClientError> {
        self.ensure_registered(localpart).await
    }

    async fn set_displayname(&self, user_id: &str, name: &str) -> Result<(), ClientError> {
        Client::set_displayname(self, &user(user_id)?, name).await
    }

    async fn create_dm(
        &self,
        creator: &str,
        invitee: &str,
        name: &str,
    ) -> Result<String, ClientError> {
        self.create_room(Some(creator), &[invitee], Some(name), true)
            .await
    }

    async fn create_group(
        &self,
        creator: &str,
        invitees: &[String],
        name: &str,
    ) -> Result<String, ClientError> {
        let refs: Vec<&str> = invitees.iter().map(String::as_str).collect();
        self.create_room(Some(creator), &refs, Some(name), false)
            .await
    }

    async fn invite(
        &self,
        room_id: &str,
        invitee: &str,
        as_user: Option<&str>,
    ) -> Result<(), ClientError> {
        Client::invite(self, room_id, invitee, as_user).await
    }

    async fn send_text(
        &self,
        room_id: &str,
        text: OutgoingText<'_>,
        txn_id: &str,
        as_user_id: &str,
    ) -> Result<String, ClientError> {
        let OutgoingText {
            kind,
            body,
            html,
            at_ms,
            mark,
        } = text;
        let msgtype = match kind {
            MessageKind::Text => "m.text",
            MessageKind::Emote => "m.emote",
            MessageKind::Notice => "m.notice",
            MessageKind::Other(other) => other.as_str(),
        };
        let mut content = serde_json::Map::new();
        content.insert("msgtype".into(), msgtype.into());
        content.insert("body".into(), body.into());
        if let Some(html) = html {
            content.insert("format".into(), "org.matrix.custom.html".into());
            content.insert("formatted_body".into(), html.into());
        }
        // A marked message is retried by its sender, who looks for the mark first (a
        // retry here would not).
        if let Some(mark) = mark {
            content.insert(MARK_KEY.into(), mark.into());
        }
        self.send_message_with(
            room_id,
            &serde_json::Value::Object(content),
            txn_id,
            Some(as_user_id),
            at_ms,
            mark.is_some(),
        )
        .await
    }

    async fn find_marked(
        &self,
        room_id: &str,
        as_user_id: &str,
        mark: &str,
    ) -> Result<Option<String>, ClientError> {
        let events = self
            .latest_events(room_id, as_user_id, MARK_LOOK_BACK)
            .await?;
        Ok(events.iter().find_map(|event| {
            let field = |key: &str| event.get(key).and_then(serde_json::Value::as_str);
            let event_mark = event
                .get("content")
                .and_then(|content| content.get(MARK_KEY));
            let marked = field("sender") == Some(as_user_id)
                && event_mark.and_then(serde_json::Value::as_str) == Some(mark);
            marked
                .then(|| field("event_id").map(str::to_owned))
                .flatten()
        }))
    }

    fn is_transient(error: &ClientError) -> bool {
        error.is_transient()
    }

    async fn set_typing(
        &self,
        room_id: &str,
        user_id: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), ClientError> {
        Client::set_typing(self, room_id, user_id, timeout).await
    }

    async fn set_presence(
        &self,
        user_id: &str,
        presence: MatrixPresence,
        status_msg: Option<&str>,
    ) -> Result<(), ClientError> {
        let presence = match presence {
            MatrixPresence::Online => PresenceState::Online,
            MatrixPresence::Unavailable => PresenceState::Unavailable,
            MatrixPresence::Offline => PresenceState::Offline,
        };
        Client::set_presence(self, user_id, presence, status_msg).await
    }

    async fn redact(&self, room_id: &str, event_id: &str, reason: &str) -> Result<(), ClientError> {
        Client::redact(self, room_id, event_id, Some(reason), None).await
    }

    async fn presence(&self, user_id: &str) -> Result<Option<MatrixPresence>, ClientError> {
        Ok(MatrixPresence::parse(
            self.get_presence(user_id).await?.as_str(),
        ))
    }

    async fn displayname(&self, user_id: &str) -> Result<Option<String>, ClientError> {
        self.get_displayname(&user(user_id)?).await
    }

    async fn avatar_url(&self, user_id: &str) -> Result<Option<String>, ClientError> {
        self.get_avatar_url(&user(user_id)?).await
    }

    async fn set_avatar(&self, user_id: &str, mxc: &str) -> Result<(), ClientError> {
        Client::set_avatar(self, &user(user_id)?, mxc).await
    }

    async fn upload(
        &self,
        data: Vec<u8>,
        content_type: &str,
        filename: &str,
    ) -> Result<String, ClientError> {
        Client::upload(self, data, content_type, Some(filename), None).await
    }

    async fn download(
        &self,
        mxc: &str,
        thumbnail: Option<u32>,
        max: usize,
    ) -> Result<Vec<u8>, ClientError> {
        let bytes = match thumbnail {
            Some(size) => Client::thumbnail(self, mxc, size).await?,
            None => Client::download(self, mxc).await?.0,
        };
        if bytes.len() > max {
            return Err(ClientError::Response(format!(
                "media {mxc} has {} bytes, more than the {max} allowed",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// `m.bridge` and the older `uk.half-shot.bridge` state (MSC2346), state key
    /// `net.msnp://msn/<contact>`.
    async fn mark_bridged(
        &self,
        room_id: &str,
        info: &BridgeInfo,
        as_user: &str,
    ) -> Result<(), ClientError> {
        let content = serde_json::json!({
            "bridgebot": info.bridgebot,
            "creator": info.creator,
            "protocol": {"id": "msn", "displayname": "MSN Messenger"},
            "channel": {"id": info.channel_id, "displayname": info.channel_name},
        });
        let key = format!("net.msnp://msn/{}", info.channel_id);
        for event_type in ["m.bridge", "uk.half-shot.bridge"] {
            self.set_state(room_id, event_type, &key, &content, Some(as_user))
                .await?;
        }
        Ok(())
    }
}
