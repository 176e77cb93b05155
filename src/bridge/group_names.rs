//! Group portals named after their participants ("Alice, Carol (MSN group)"), renamed as
//! they come and go, until a Matrix user names the room; from then on the name is
//! theirs. A name the bridge did not make from participants (a circle's) is kept.

use ruma::{RoomId, UserId};

use super::remote::{Chat, MsnConnector};
use super::{Bridge, MatrixPort, lock};
use crate::store::Portal;

/// What names a group portal after its participants.
const PARTICIPANTS_SUFFIX: &str = " (MSN group)";
/// The name of a group portal whose participants are not known.
const UNNAMED_GROUP: &str = "MSN group chat";

/// A group portal's name from its participants' names.
pub(super) fn participants_name(names: &[&str]) -> String {
    if names.is_empty() {
        UNNAMED_GROUP.to_owned()
    } else {
        format!("{}{PARTICIPANTS_SUFFIX}", names.join(", "))
    }
}

/// Whether the bridge made `name` from participants (and may make it again).
fn made_from_participants(name: &str) -> bool {
    name == UNNAMED_GROUP || name.ends_with(PARTICIPANTS_SUFFIX)
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// A Matrix user named `room_id`: a group portal's name is theirs from now on.
    pub(super) async fn on_room_named(&self, room_id: &RoomId, sender: &UserId, name: &str) {
        let Some(mut portal) = self.portal_by_room(room_id).await else {
            return;
        };
        if portal.kind != "group" || portal.name.as_deref() == Some(name) {
            return;
        }
        tracing::info!(%sender, "a user named the group portal; the bridge no longer renames it");
        portal.name = None;
        self.keep_portal(room_id, &portal).await;
    }

    /// Renames `mxid`'s group portal of `chat` after its members now, if the bridge named
    /// it from participants before.
    pub(super) async fn rename_group(&self, mxid: &UserId, chat: &Chat) {
        if !matches!(chat, Chat::Group(_)) {
            return;
        }
        let key = chat.key();
        let Some(room) = self.stored_portal_room(mxid, &key).await else {
            return;
        };
        let Some(mut portal) = self.portal_by_room(&room).await else {
            return;
        };
        let Some(current) = portal.name.clone().filter(|n| made_from_participants(n)) else {
            return;
        };
        let members = match self.store.group_members(&key, mxid).await {
            Ok(members) => members,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a group's members to name it");
                return;
            }
        };
        let names: Vec<&str> = members.iter().map(|(_, name)| name.as_str()).collect();
        let name = participants_name(&names);
        if name == current {
            return;
        }
        let bot = self.matrix.bot().to_owned();
        if let Err(e) = self.matrix.set_room_name(&room, &name, &bot).await {
            tracing::warn!(error = %e, %room, "cannot rename the group portal");
            return;
        }
        portal.name = Some(name);
        self.keep_portal(&room, &portal).await;
    }

    /// Stores a changed portal, and its cached row.
    async fn keep_portal(&self, room_id: &RoomId, portal: &Portal) {
        if let Err(e) = self.store.upsert_portal(portal).await {
            tracing::error!(error = %e, "cannot store the portal's name");
        }
        *lock(&self.portals.entry(room_id).row) = Some(portal.clone());
    }
}
