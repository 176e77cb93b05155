//! The core's [`MatrixPort`] implemented over the client-server API (the calls themselves
//! live in `endpoints.rs`).

use ruma::api::client::{
    membership::join_room_by_id, membership::leave_room, message::send_message_event,
};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedTransactionId, OwnedUserId, RoomId, UserId};

use super::client::{Client, ClientError};
use crate::bridge::MatrixPort;
use crate::bridge::port::{BridgeInfo, OutgoingMedia, OutgoingText, SendStatus};
use crate::bridge::presence::MatrixPresence;
use ruma::presence::PresenceState;

/// The content key of [`OutgoingText::mark`] (namespaced, as custom keys must be).
const MARK_KEY: &str = "net.matrix_msn.mark";
use super::{DOUBLE_PUPPET_KEY, DOUBLE_PUPPET_SOURCE};
/// How many of a room's latest events [`MatrixPort::find_marked`] reads.
const MARK_LOOK_BACK: u32 = 50;

impl MatrixPort for Client {
    type Error = ClientError;

    fn bot(&self) -> &UserId {
        Client::bot(self)
    }

    fn can_double_puppet(&self, user: &UserId) -> bool {
        self.double_puppet_token(user).is_some()
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`.
    async fn send_notice(
        &self,
        room_id: &RoomId,
        text: &str,
        html: Option<&str>,
        txn_id: &str,
        as_user_id: Option<&UserId>,
    ) -> Result<OwnedEventId, ClientError> {
        let content = match html {
            Some(html) => RoomMessageEventContent::notice_html(text, html),
            None => RoomMessageEventContent::notice_plain(text),
        };
        let request = send_message_event::v3::Request::new(
            room_id.to_owned(),
            OwnedTransactionId::from(txn_id),
            &content,
        )
        .map_err(|e| ClientError::Build(e.to_string()))?;
        let response = self.send(request, as_user_id).await?;
        Ok(response.event_id)
    }

    /// `POST /_matrix/client/v3/rooms/{roomId}/join`.
    async fn join(&self, room_id: &RoomId, as_user_id: Option<&UserId>) -> Result<(), ClientError> {
        let request = join_room_by_id::v3::Request::new(room_id.to_owned());
        self.send(request, as_user_id).await.map(|_| ())
    }

    /// `POST /_matrix/client/v3/rooms/{roomId}/leave`.
    async fn leave(
        &self,
        room_id: &RoomId,
        reason: Option<&str>,
        as_user_id: Option<&UserId>,
    ) -> Result<(), ClientError> {
        let mut request = leave_room::v3::Request::new(room_id.to_owned());
        request.reason = reason.map(str::to_owned);
        self.send(request, as_user_id).await.map(|_| ())
    }

    async fn register(&self, localpart: &str) -> Result<(), ClientError> {
        self.ensure_registered(localpart).await
    }

    async fn set_displayname(&self, user_id: &UserId, name: &str) -> Result<(), ClientError> {
        Client::set_displayname(self, user_id, name).await
    }

    async fn create_dm(
        &self,
        creator: &UserId,
        invitee: &UserId,
        name: &str,
    ) -> Result<OwnedRoomId, ClientError> {
        self.create_room(Some(creator), &[invitee], Some(name), true)
            .await
    }

    async fn create_group(
        &self,
        creator: &UserId,
        invitees: &[OwnedUserId],
        name: &str,
    ) -> Result<OwnedRoomId, ClientError> {
        let refs: Vec<&UserId> = invitees.iter().map(|u| u.as_ref()).collect();
        self.create_room(Some(creator), &refs, Some(name), false)
            .await
    }

    async fn invite(
        &self,
        room_id: &RoomId,
        invitee: &UserId,
        as_user: Option<&UserId>,
    ) -> Result<(), ClientError> {
        Client::invite(self, room_id, invitee, as_user).await
    }

    async fn send_text(
        &self,
        room_id: &RoomId,
        text: OutgoingText<'_>,
        txn_id: &str,
        as_user_id: &UserId,
    ) -> Result<OwnedEventId, ClientError> {
        let OutgoingText {
            kind,
            body,
            html,
            at_ms,
            mark,
            as_real_user,
        } = text;
        let msgtype = kind.msgtype();
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
        if as_real_user {
            // mautrix's marker: the bridge's own echo, not the user writing in Matrix.
            content.insert(DOUBLE_PUPPET_KEY.into(), DOUBLE_PUPPET_SOURCE.into());
            return self
                .send_message_as_real_user(
                    room_id,
                    &serde_json::Value::Object(content),
                    txn_id,
                    as_user_id,
                    at_ms,
                    mark.is_some(),
                )
                .await;
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

    async fn edit_notice(
        &self,
        room_id: &RoomId,
        target: &EventId,
        body: &str,
        txn_id: &str,
        as_user_id: &UserId,
    ) -> Result<OwnedEventId, ClientError> {
        let content = serde_json::json!({
            "msgtype": "m.notice",
            "body": format!("* {body}"),
            "m.new_content": { "msgtype": "m.notice", "body": body },
            "m.relates_to": { "rel_type": "m.replace", "event_id": target.as_str() },
        });
        self.send_message(room_id, &content, txn_id, Some(as_user_id), None)
            .await
    }

    async fn send_media(
        &self,
        room_id: &RoomId,
        media: OutgoingMedia<'_>,
        txn_id: &str,
        as_user_id: &UserId,
    ) -> Result<OwnedEventId, ClientError> {
        let mut info = serde_json::json!({
            "mimetype": media.mimetype,
            "size": media.size,
        });
        if let (Some((w, h)), Some(info)) = (media.dimensions, info.as_object_mut()) {
            info.insert("w".into(), w.into());
            info.insert("h".into(), h.into());
        }
        let mut content = serde_json::json!({
            "msgtype": media.msgtype,
            "body": media.name,
            "filename": media.name,
            "url": media.url,
            "info": info,
        });
        if let (Some(mark), Some(content)) = (media.mark, content.as_object_mut()) {
            content.insert(MARK_KEY.into(), mark.into());
        }
        self.send_message_with(
            room_id,
            &content,
            txn_id,
            Some(as_user_id),
            media.at_ms,
            media.mark.is_some(),
        )
        .await
    }

    async fn find_marked(
        &self,
        room_id: &RoomId,
        as_user_id: &UserId,
        mark: &str,
    ) -> Result<Option<OwnedEventId>, ClientError> {
        let events = self
            .latest_events(room_id, as_user_id, MARK_LOOK_BACK)
            .await?;
        Ok(events.iter().find_map(|event| {
            let field = |key: &str| event.get(key).and_then(serde_json::Value::as_str);
            let event_mark = event
                .get("content")
                .and_then(|content| content.get(MARK_KEY));
            let marked = field("sender") == Some(as_user_id.as_str())
                && event_mark.and_then(serde_json::Value::as_str) == Some(mark);
            marked
                .then(|| field("event_id").and_then(|id| OwnedEventId::try_from(id).ok()))
                .flatten()
        }))
    }

    fn is_transient(error: &ClientError) -> bool {
        error.is_transient()
    }

    async fn set_typing(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), ClientError> {
        Client::set_typing(self, room_id, user_id, timeout).await
    }

    async fn set_presence(
        &self,
        user_id: &UserId,
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

    async fn redact(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        reason: &str,
    ) -> Result<(), ClientError> {
        Client::redact(self, room_id, event_id, Some(reason), None).await
    }

    async fn presence(&self, user_id: &UserId) -> Result<Option<MatrixPresence>, ClientError> {
        Ok(MatrixPresence::parse(
            self.get_presence(user_id).await?.as_str(),
        ))
    }

    async fn displayname(&self, user_id: &UserId) -> Result<Option<String>, ClientError> {
        self.get_displayname(user_id).await
    }

    async fn avatar_url(&self, user_id: &UserId) -> Result<Option<String>, ClientError> {
        self.get_avatar_url(user_id).await
    }

    async fn set_avatar(&self, user_id: &UserId, mxc: &str) -> Result<(), ClientError> {
        Client::set_avatar(self, user_id, mxc).await
    }

    async fn upload(
        &self,
        data: Vec<u8>,
        content_type: &str,
        filename: &str,
    ) -> Result<String, ClientError> {
        Client::upload(self, data, content_type, Some(filename), None).await
    }

    async fn upload_file(
        &self,
        path: &std::path::Path,
        content_type: &str,
        filename: &str,
    ) -> Result<String, ClientError> {
        self.upload_path(path, content_type, filename).await
    }

    async fn download_to_file(
        &self,
        mxc: &str,
        path: &std::path::Path,
        max: u64,
    ) -> Result<u64, ClientError> {
        self.download_path(mxc, path, max).await
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

    async fn create_space(&self, invitee: &UserId, name: &str) -> Result<OwnedRoomId, ClientError> {
        self.create_space_room(invitee, name).await
    }

    async fn set_space_child(
        &self,
        space: &RoomId,
        child: &RoomId,
        present: bool,
    ) -> Result<(), ClientError> {
        // `via` names the server to join through; an empty content removes the child.
        let content = if present {
            serde_json::json!({ "via": [self.bot().server_name().as_str()] })
        } else {
            serde_json::json!({})
        };
        self.set_state(space, "m.space.child", child.as_str(), &content, None)
            .await
            .map(|_| ())
    }

    async fn send_status(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        status: &SendStatus,
        as_user: &UserId,
    ) -> Result<(), ClientError> {
        let relates = serde_json::json!({"rel_type": "m.reference", "event_id": event_id.as_str()});
        let content = match status {
            SendStatus::Delivered => serde_json::json!({
                "network": "msn", "m.relates_to": relates, "status": "SUCCESS",
            }),
            SendStatus::Failed(why) => serde_json::json!({
                "network": "msn", "m.relates_to": relates, "status": "FAIL_PERMANENT",
                "reason": "m.foreign_network_error", "message": why,
            }),
        };
        let txn = format!("status-{event_id}");
        self.send_event(
            room_id,
            "com.beeper.message_send_status",
            &content,
            &txn,
            Some(as_user),
        )
        .await
        .map(|_| ())
    }

    async fn set_room_avatar(
        &self,
        room_id: &RoomId,
        mxc: &str,
        as_user: &UserId,
    ) -> Result<(), ClientError> {
        let content = serde_json::json!({ "url": mxc });
        self.set_state(room_id, "m.room.avatar", "", &content, Some(as_user))
            .await
            .map(|_| ())
    }

    async fn set_room_name(
        &self,
        room_id: &RoomId,
        name: &str,
        as_user: &UserId,
    ) -> Result<(), ClientError> {
        let content = serde_json::json!({ "name": name });
        self.set_state(room_id, "m.room.name", "", &content, Some(as_user))
            .await
            .map(|_| ())
    }

    /// `m.bridge` and the older `uk.half-shot.bridge` state (MSC2346), state key
    /// `net.msnp://msn/<contact>`.
    async fn mark_bridged(
        &self,
        room_id: &RoomId,
        info: &BridgeInfo,
        as_user: &UserId,
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
