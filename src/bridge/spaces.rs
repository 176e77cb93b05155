//! Each user's "MSN" space (as the mautrix bridges keep one per login): a private space
//! the bot makes once (its id is stored, so a restart adds to the same one), holding the
//! user's management room and every portal of theirs; a portal the user leaves is taken
//! out of it.

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

    /// Makes sure the user's space holds their management room and every portal of
    /// theirs (after a login, and after each restart).
    pub(super) async fn fill_space(&self, mxid: &UserId) {
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
            self.place_in_space(mxid, &room, true).await;
        }
    }
}
