//! The core's [`MatrixPort`] implemented over the client-server API, plus the calls the
//! bridge makes at startup (ping, bot profile) and that later issues use (puppets, rooms,
//! media, typing, presence, state).

use ruma::api::client::{
    account::register, appservice::request_ping, membership::join_room_by_id,
    membership::leave_room, message::send_message_event, profile::set_avatar_url,
    profile::set_display_name,
};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedRoomId, OwnedTransactionId, OwnedUserId, UserId};

use super::client::{Client, ClientError};
use crate::bridge::MatrixPort;

fn room(room_id: &str) -> Result<OwnedRoomId, ClientError> {
    // Room IDs are opaque (room version 12 has no server part): only the sigil is checked.
    OwnedRoomId::try_from(room_id)
        .map_err(|e| ClientError::Build(format!("room id {room_id:?}: {e}")))
}

fn user(user_id: &str) -> Result<OwnedUserId, ClientError> {
    OwnedUserId::try_from(user_id)
        .map_err(|e| ClientError::Build(format!("user id {user_id:?}: {e}")))
}

fn as_user(user_id: Option<&str>) -> Result<Option<OwnedUserId>, ClientError> {
    user_id.map(user).transpose()
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

    /// `PUT /_matrix/client/v3/profile/{userId}/avatar_url`, as that user.
    #[allow(deprecated)]
    pub async fn set_avatar(&self, user_id: &UserId, mxc: &str) -> Result<(), ClientError> {
        let request = set_avatar_url::v3::Request::new(user_id.to_owned(), Some(mxc.into()));
        self.send(request, Some(user_id)).await.map(|_| ())
    }
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
}
