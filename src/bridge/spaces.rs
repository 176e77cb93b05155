//! Each user's "MSN" space (as the mautrix bridges keep one per login): a private space
//! the bot makes once, at the user's first login or first new portal (its id is stored,
//! so a restart adds to the same one), filled then with the user's management room and
//! every portal of theirs; later portals join it as they are made, and a portal the user
//! leaves is taken out of it.

use ruma::{OwnedRoomId, RoomId, UserId};

use super::remote::MsnConnector;
use super::{Bridge, MatrixPort};

/// The space's name.
const SPACE_NAME: &str = "MSN";

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// The user's space, made on first use.
    async fn space_of(&self, mxid: &UserId) -> Option<OwnedRoomId> {
        let user = self.users.entry(mxid);
        let mut known = user.space.lock().await;
        if let Some(space) = known.clone() {
            return Some(space);
        }
        let space = match self.store.space(mxid).await {
            Ok(Some(space)) => space,
            Ok(None) => match self.matrix.create_space(mxid, SPACE_NAME).await {
                Ok(space) => {
                    tracing::info!(%space, "space created");
                    if let Err(e) = self.store.set_space(mxid, &space).await {
                        tracing::error!(error = %e, "cannot store the user's space");
                    }
                    self.fill_space(mxid, &space).await;
                    space
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the user's space");
                    return None;
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user's space");
                return None;
            }
        };
        *known = Some(space.clone());
        Some(space)
    }

    /// Puts `room` in the user's space (or takes it out).
    pub(super) async fn place_in_space(&self, mxid: &UserId, room: &RoomId, present: bool) {
        let Some(space) = self.space_of(mxid).await else {
            return;
        };
        if let Err(e) = self.matrix.set_space_child(&space, room, present).await {
            tracing::warn!(error = %e, %room, "cannot change the user's space");
        }
    }

    /// Makes sure the user has a space (made and filled if they have none yet).
    pub(super) async fn ensure_space(&self, mxid: &UserId) {
        self.space_of(mxid).await;
    }

    /// Puts the user's management room and every portal of theirs into a new `space`.
    async fn fill_space(&self, mxid: &UserId, space: &RoomId) {
        let mut rooms = match self.store.portal_rooms_of(mxid).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the user's portals for their space");
                Vec::new()
            }
        };
        if let Ok(Some(user)) = self.store.user(mxid).await
            && let Some(management) = user.management_room
        {
            rooms.push(management);
        }
        for room in rooms {
            if let Err(e) = self.matrix.set_space_child(space, &room, true).await {
                tracing::warn!(error = %e, %room, "cannot put a room in the user's space");
            }
        }
    }
}
