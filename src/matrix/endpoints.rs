//! The client-server API calls the bridge makes, one method per endpoint, each naming it.
//! Users, rooms and events are ruma's ID types, checked where they entered the bridge;
//! `as_user` asserts a puppet's identity (`?user_id=`), `None` acts as the bot.

use std::time::Duration;

use ruma::api::client::{
    account::register, appservice::request_ping, authenticated_media::get_content,
    authenticated_media::get_content_thumbnail, media::create_content, membership::invite_user,
    message::get_message_events, message::send_message_event, presence::get_presence,
    presence::set_presence, profile::get_avatar_url, profile::get_display_name,
    profile::set_avatar_url, profile::set_display_name, redact::redact_event, room::create_room,
    state::get_state_event_for_key, state::send_state_event, typing::create_typing_event,
};
use ruma::events::{MessageLikeEventType, StateEventType};
use ruma::presence::PresenceState;
use ruma::serde::Raw;
use ruma::{EventId, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedTransactionId, RoomId, UserId};
use serde_json::Value;

use super::client::{Client, ClientError};

fn raw<T>(value: &Value) -> Result<Raw<T>, ClientError> {
    serde_json::value::to_raw_value(value)
        .map(Raw::from_json)
        .map_err(|e| ClientError::Build(e.to_string()))
}

impl Client {
    /// `POST /_matrix/client/v1/appservice/{appserviceId}/ping` (spec v1.7+): checks that the
    /// homeserver can reach the bridge, and makes Synapse retry transactions it held back.
    pub async fn ping_homeserver(&self, appservice_id: &str, txn: &str) -> Result<(), ClientError> {
        let mut request = request_ping::v1::Request::new(appservice_id.to_owned());
        request.transaction_id = Some(OwnedTransactionId::from(txn));
        self.send(request, None).await.map(|_| ())
    }

    /// `POST /_matrix/client/v3/register` with `m.login.application_service`: creates a user
    /// in the namespace. An existing user (`M_USER_IN_USE`) counts as success.
    pub async fn ensure_registered(&self, localpart: &str) -> Result<(), ClientError> {
        let mut request = register::v3::Request::new();
        request.username = Some(localpart.to_owned());
        request.login_type = Some(register::LoginType::ApplicationService);
        request.inhibit_login = true;
        match self.send(request, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `PUT /_matrix/client/v3/profile/{userId}/displayname`, as that user. (The generic
    /// profile-field endpoint of v1.16 is newer than some homeservers in use.)
    #[allow(deprecated)]
    pub async fn set_displayname(&self, user_id: &UserId, name: &str) -> Result<(), ClientError> {
        let request = set_display_name::v3::Request::new(user_id.to_owned(), Some(name.to_owned()));
        self.send(request, Some(user_id)).await.map(|_| ())
    }

    /// `GET /_matrix/client/v3/profile/{userId}/displayname`; `None` when unset.
    #[allow(deprecated)]
    pub async fn get_displayname(&self, user_id: &UserId) -> Result<Option<String>, ClientError> {
        let request = get_display_name::v3::Request::new(user_id.to_owned());
        match self.send(request, None).await {
            Ok(response) => Ok(response.displayname),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /_matrix/client/v3/profile/{userId}/avatar_url`; `None` when unset.
    #[allow(deprecated)]
    pub async fn get_avatar_url(&self, user_id: &UserId) -> Result<Option<String>, ClientError> {
        let request = get_avatar_url::v3::Request::new(user_id.to_owned());
        match self.send(request, None).await {
            Ok(response) => Ok(response.avatar_url.map(|u| u.to_string())),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /_matrix/client/v3/profile/{userId}/avatar_url`, as that user.
    #[allow(deprecated)]
    pub async fn set_avatar(&self, user_id: &UserId, mxc: &str) -> Result<(), ClientError> {
        let request = set_avatar_url::v3::Request::new(user_id.to_owned(), Some(mxc.into()));
        self.send(request, Some(user_id)).await.map(|_| ())
    }

    /// `POST /_matrix/media/v3/upload`: returns the `mxc://` URI.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        filename: Option<&str>,
        as_user: Option<&UserId>,
    ) -> Result<String, ClientError> {
        let mut request = create_content::v3::Request::new(bytes);
        request.content_type = Some(content_type.to_owned());
        request.filename = filename.map(str::to_owned);
        let response = self.send(request, as_user).await?;
        Ok(response.content_uri.to_string())
    }

    /// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}` (authenticated media,
    /// v1.11): returns the bytes and their content type.
    pub async fn download(&self, mxc: &str) -> Result<(Vec<u8>, Option<String>), ClientError> {
        let uri = OwnedMxcUri::from(mxc);
        let (server, media_id) = uri
            .parts()
            .map_err(|e| ClientError::Build(format!("media URI {mxc:?}: {e}")))?;
        let mut request = get_content::v1::Request::new(media_id.to_owned(), server.to_owned());
        request.timeout_ms = Duration::from_secs(20);
        let response = self.send(request, None).await?;
        Ok((response.file, response.content_type))
    }

    /// `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}` scaled to fit
    /// `size`×`size` (authenticated media, v1.11): returns the bytes.
    pub async fn thumbnail(&self, mxc: &str, size: u32) -> Result<Vec<u8>, ClientError> {
        let uri = OwnedMxcUri::from(mxc);
        let mut request = get_content_thumbnail::v1::Request::from_uri(
            &uri,
            ruma::UInt::from(size),
            ruma::UInt::from(size),
        )
        .map_err(|e| ClientError::Build(format!("media URI {mxc:?}: {e}")))?;
        request.method = Some(ruma::media::Method::Scale);
        request.timeout_ms = Duration::from_secs(20);
        let response = self.send(request, None).await?;
        Ok(response.file)
    }

    /// `POST /_matrix/client/v3/createRoom` as `creator`: a private direct chat (`is_direct`)
    /// inviting `invitees`; returns the (opaque) room ID.
    pub async fn create_dm(
        &self,
        creator: Option<&UserId>,
        invitees: &[&UserId],
        name: Option<&str>,
    ) -> Result<OwnedRoomId, ClientError> {
        self.create_room(creator, invitees, name, true).await
    }

    /// `POST /_matrix/client/v3/createRoom` as `creator`: a private room inviting `invitees`,
    /// marked direct when `direct`; returns the (opaque) room ID.
    pub async fn create_room(
        &self,
        creator: Option<&UserId>,
        invitees: &[&UserId],
        name: Option<&str>,
        direct: bool,
    ) -> Result<OwnedRoomId, ClientError> {
        let mut request = create_room::v3::Request::new();
        request.is_direct = direct;
        request.preset = Some(if direct {
            create_room::v3::RoomPreset::TrustedPrivateChat
        } else {
            create_room::v3::RoomPreset::PrivateChat
        });
        request.invite = invitees.iter().map(|u| (*u).to_owned()).collect();
        request.name = name.map(str::to_owned);
        let response = self.send(request, creator).await?;
        Ok(response.room_id)
    }

    /// `POST /_matrix/client/v3/createRoom` of a private space as the bot, inviting
    /// `invitee`.
    pub async fn create_space_room(
        &self,
        invitee: &UserId,
        name: &str,
    ) -> Result<OwnedRoomId, ClientError> {
        let mut request = create_room::v3::Request::new();
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.invite = vec![invitee.to_owned()];
        request.name = Some(name.to_owned());
        let mut creation = create_room::v3::CreationContent::new();
        creation.room_type = Some(ruma::room::RoomType::Space);
        request.creation_content =
            Some(ruma::serde::Raw::new(&creation).map_err(|e| ClientError::Build(e.to_string()))?);
        let response = self.send(request, None).await?;
        Ok(response.room_id)
    }

    /// `POST /_matrix/client/v3/rooms/{roomId}/invite`.
    pub async fn invite(
        &self,
        room_id: &RoomId,
        invitee: &UserId,
        as_user: Option<&UserId>,
    ) -> Result<(), ClientError> {
        let request = invite_user::v3::Request::new(
            room_id.to_owned(),
            invite_user::v3::InvitationRecipient::UserId(invite_user::v3::InviteUserId::new(
                invitee.to_owned(),
            )),
        );
        self.send(request, as_user).await.map(|_| ())
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` with any message
    /// content; `txn_id` is derived by the caller from what is sent, so a retry never duplicates.
    pub async fn send_message(
        &self,
        room_id: &RoomId,
        content: &Value,
        txn_id: &str,
        as_user: Option<&UserId>,
        at_ms: Option<i64>,
    ) -> Result<OwnedEventId, ClientError> {
        self.send_message_with(room_id, content, txn_id, as_user, at_ms, false)
            .await
    }

    /// [`Client::send_message`]; `once`: without retries (see [`Client::send_once`]).
    pub async fn send_message_with(
        &self,
        room_id: &RoomId,
        content: &Value,
        txn_id: &str,
        as_user: Option<&UserId>,
        at_ms: Option<i64>,
        once: bool,
    ) -> Result<OwnedEventId, ClientError> {
        let request = message_request(room_id, content, txn_id, at_ms)?;
        let response = if once {
            self.send_once(request, as_user).await?
        } else {
            self.send(request, as_user).await?
        };
        Ok(response.event_id)
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` of any
    /// message-like event, as `as_user` (the bot when `None`).
    pub async fn send_event(
        &self,
        room_id: &RoomId,
        event_type: &str,
        content: &Value,
        txn_id: &str,
        as_user: Option<&UserId>,
    ) -> Result<OwnedEventId, ClientError> {
        let request = send_message_event::v3::Request::new_raw(
            room_id.to_owned(),
            OwnedTransactionId::from(txn_id),
            MessageLikeEventType::from(event_type),
            raw(content)?,
        );
        Ok(self.send(request, as_user).await?.event_id)
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` as the real
    /// user `user` (double puppeting).
    pub async fn send_message_as_real_user(
        &self,
        room_id: &RoomId,
        content: &Value,
        txn_id: &str,
        user: &UserId,
        at_ms: Option<i64>,
        once: bool,
    ) -> Result<OwnedEventId, ClientError> {
        let request = message_request(room_id, content, txn_id, at_ms)?;
        Ok(self.send_as_real_user(request, user, once).await?.event_id)
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}`, as that user.
    pub async fn set_typing(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        typing: Option<Duration>,
    ) -> Result<(), ClientError> {
        let who = user_id.to_owned();
        let state = match typing {
            Some(timeout) => create_typing_event::v3::Typing::Yes(
                create_typing_event::v3::TypingInfo::new(timeout),
            ),
            None => create_typing_event::v3::Typing::No,
        };
        let request = create_typing_event::v3::Request::new(who.clone(), room_id.to_owned(), state);
        self.send(request, Some(&who)).await.map(|_| ())
    }

    /// `PUT /_matrix/client/v3/presence/{userId}/status`, as that user.
    pub async fn set_presence(
        &self,
        user_id: &UserId,
        presence: PresenceState,
        status_msg: Option<&str>,
    ) -> Result<(), ClientError> {
        let who = user_id.to_owned();
        let mut request = set_presence::v3::Request::new(who.clone(), presence);
        request.status_msg = status_msg.map(str::to_owned);
        self.send(request, Some(&who)).await.map(|_| ())
    }

    /// `GET /_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=N`, as `as_user`: the
    /// room's latest timeline events, newest first, as JSON.
    pub async fn latest_events(
        &self,
        room_id: &RoomId,
        as_user: &UserId,
        limit: u32,
    ) -> Result<Vec<Value>, ClientError> {
        let mut request = get_message_events::v3::Request::backward(room_id.to_owned());
        request.limit = limit.into();
        let response = self.send(request, Some(as_user)).await?;
        Ok(response
            .chunk
            .iter()
            .filter_map(|raw| raw.deserialize_as::<Value>().ok())
            .collect())
    }

    /// `GET /_matrix/client/v3/presence/{userId}/status`, as the bot (which shares the
    /// user's management room, so the homeserver shows it their presence).
    pub async fn get_presence(&self, user_id: &UserId) -> Result<PresenceState, ClientError> {
        let request = get_presence::v3::Request::new(user_id.to_owned());
        Ok(self.send(request, None).await?.presence)
    }

    /// `GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`: the content, or
    /// `None` when there is no such state.
    pub async fn get_state(
        &self,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
        as_user: Option<&UserId>,
    ) -> Result<Option<Value>, ClientError> {
        let request = get_state_event_for_key::v3::Request::new(
            room_id.to_owned(),
            StateEventType::from(event_type),
            state_key.to_owned(),
        );
        match self.send(request, as_user).await {
            Ok(response) => serde_json::from_str(response.event_or_content.get())
                .map(Some)
                .map_err(|e| ClientError::Response(e.to_string())),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`: returns the event ID.
    pub async fn set_state(
        &self,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
        content: &Value,
        as_user: Option<&UserId>,
    ) -> Result<OwnedEventId, ClientError> {
        let request = send_state_event::v3::Request::new_raw(
            room_id.to_owned(),
            StateEventType::from(event_type),
            state_key.to_owned(),
            raw(content)?,
        );
        let response = self.send(request, as_user).await?;
        Ok(response.event_id)
    }

    /// `PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}`.
    pub async fn redact(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        reason: Option<&str>,
        as_user: Option<&UserId>,
    ) -> Result<(), ClientError> {
        let mut request = redact_event::v3::Request::new(
            room_id.to_owned(),
            event_id.to_owned(),
            OwnedTransactionId::from(format!("redact-{event_id}")),
        );
        request.reason = reason.map(str::to_owned);
        self.send(request, as_user).await.map(|_| ())
    }
}

/// An `m.room.message` request with `content`, dated `at_ms` when given (appservice
/// timestamp massaging: the event shows when it was written).
fn message_request(
    room_id: &RoomId,
    content: &Value,
    txn_id: &str,
    at_ms: Option<i64>,
) -> Result<send_message_event::v3::Request, ClientError> {
    let mut request = send_message_event::v3::Request::new_raw(
        room_id.to_owned(),
        OwnedTransactionId::from(txn_id),
        MessageLikeEventType::RoomMessage,
        raw(content)?,
    );
    request.timestamp = at_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .and_then(ruma::UInt::new)
        .map(ruma::MilliSecondsSinceUnixEpoch);
    Ok(request)
}
