//! Puppets: the Matrix user of each MSN contact. Registered once, display name from the
//! friendly name through the configured template (set only when it changes, and a burst of
//! renames within [`NAME_DEBOUNCE`] becomes one change), presence and status message from
//! the MSN status and personal message.

use ruma::{OwnedUserId, UserId};
use std::sync::Arc;
use std::time::Duration;

use super::ids::MsnAddress;
use super::presence::{MatrixPresence, contact_presence};
use super::remote::{ContactInfo, MsnConnector};
use super::{Bridge, MatrixPort, ids, lock};
use crate::store::Puppet;

/// How long a contact's new friendly name waits for a newer one before it is shown: every
/// rename changes the puppet's member event in each of its rooms.
pub const NAME_DEBOUNCE: Duration = Duration::from_secs(2);

/// The friendly name a puppet shows, and a newer one waiting out [`NAME_DEBOUNCE`].
#[derive(Default)]
pub(super) struct NameState {
    pub(super) shown: String,
    pending: Option<String>,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// The puppet's user ID for an MSN address; `None` (logged) for an address that
    /// makes no valid user ID (one so long that the ID would pass 255 bytes).
    pub(super) fn puppet_id(&self, address: &MsnAddress) -> Option<OwnedUserId> {
        let mxid = ids::puppet_mxid(
            &self.config.bridge.username_template,
            &self.config.homeserver.domain,
            address.as_str(),
        );
        match OwnedUserId::try_from(mxid) {
            Ok(mxid) => Some(mxid),
            Err(e) => {
                tracing::warn!(error = %e, %address, "this MSN address makes no valid Matrix user ID");
                None
            }
        }
    }

    /// Makes sure the puppet of `address` exists and shows `name`; returns its user ID.
    pub(super) async fn ensure_puppet(
        &self,
        address: &MsnAddress,
        name: Option<&str>,
    ) -> Option<OwnedUserId> {
        let mxid = self.puppet_id(address)?;
        let stored = match self.store.puppet(address.as_str()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the puppet");
                return None;
            }
        };
        let mut puppet = stored.clone().unwrap_or(Puppet {
            msn_address: address.to_string(),
            mxid: mxid.clone(),
            display_name: None,
            avatar_mxc: None,
            avatar_sha1d: None,
            registered: false,
        });
        if !puppet.registered {
            if let Err(e) = self.matrix.register(mxid.localpart()).await {
                tracing::warn!(error = %e, %mxid, "cannot register the puppet");
                return None;
            }
            puppet.registered = true;
        }
        // Without a name (a chat opened before the contact list said it), keep what is set.
        let wanted = match name.filter(|n| !n.trim().is_empty()) {
            Some(name) => Some(
                self.config
                    .bridge
                    .displayname_template
                    .replace("{displayname}", name),
            ),
            None if puppet.display_name.is_none() => Some(
                self.config
                    .bridge
                    .displayname_template
                    .replace("{displayname}", address.as_str()),
            ),
            None => None,
        };
        if let Some(wanted) = wanted.filter(|w| puppet.display_name.as_deref() != Some(w.as_str()))
        {
            match self.matrix.set_displayname(&mxid, &wanted).await {
                Ok(()) => {
                    if puppet.display_name.is_some() {
                        self.rename_dm_portals(address, &mxid, &wanted).await;
                    }
                    puppet.display_name = Some(wanted);
                }
                Err(e) => tracing::warn!(error = %e, %mxid, "cannot set the puppet's name"),
            }
        }
        if stored.as_ref() != Some(&puppet)
            && let Err(e) = self.store.upsert_puppet(&puppet).await
        {
            tracing::error!(error = %e, "cannot store the puppet");
        }
        Some(mxid)
    }

    /// A contact's DM portals show their picture as the room's avatar (the puppet created
    /// them, so it may set it).
    pub(super) async fn show_in_dm_portals(
        &self,
        address: &MsnAddress,
        puppet: &UserId,
        mxc: &str,
    ) {
        let portals = match self.store.portals_of_chat(address.as_str()).await {
            Ok(portals) => portals,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the contact's portals for their picture");
                return;
            }
        };
        for room in portals
            .into_iter()
            .filter(|p| p.kind == "dm")
            .filter_map(|p| p.room_id)
        {
            if let Err(e) = self.matrix.set_room_avatar(&room, mxc, puppet).await {
                tracing::warn!(error = %e, %room, "cannot set the portal's avatar");
            }
        }
    }

    /// A renamed contact's DM portals take the new name (the puppet created them, so it
    /// may name them), in the room and in the store.
    async fn rename_dm_portals(&self, address: &MsnAddress, puppet: &UserId, name: &str) {
        let portals = match self.store.portals_of_chat(address.as_str()).await {
            Ok(portals) => portals,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the contact's portals to rename them");
                return;
            }
        };
        for mut portal in portals.into_iter().filter(|p| p.kind == "dm") {
            let Some(room) = portal.room_id.clone() else {
                continue;
            };
            if portal.name.as_deref() == Some(name) {
                continue;
            }
            if let Err(e) = self.matrix.set_room_name(&room, name, puppet).await {
                tracing::warn!(error = %e, %room, "cannot rename the portal");
                continue;
            }
            portal.name = Some(name.to_owned());
            if let Err(e) = self.store.upsert_portal(&portal).await {
                tracing::error!(error = %e, "cannot store the portal's new name");
            }
        }
    }

    /// Brings a contact's puppet in line: name, presence, status message.
    pub(super) async fn sync_contact(self: &Arc<Self>, contact: &ContactInfo) {
        let address = &contact.address;
        let name = self.name_now(address, &contact.name);
        let Some(mxid) = self.ensure_puppet(address, name.as_deref()).await else {
            return;
        };
        let wanted = contact_presence(contact);
        if lock(&self.presence).get(&mxid) == Some(&wanted) {
            return;
        }
        match self
            .matrix
            .set_presence(&mxid, wanted.0, wanted.1.as_deref())
            .await
        {
            Ok(()) => {
                lock(&self.presence).insert(mxid, wanted);
            }
            Err(e) => tracing::warn!(error = %e, %mxid, "cannot set the puppet's presence"),
        }
    }

    /// The name to show now: the first one seen at once; a change only after
    /// [`NAME_DEBOUNCE`] without a newer one (a timer then shows the latest).
    fn name_now(self: &Arc<Self>, address: &MsnAddress, name: &str) -> Option<String> {
        let puppet = self.puppets.entry(address);
        let mut slot = lock(&puppet.name);
        let state = match slot.as_mut() {
            None => {
                *slot = Some(NameState {
                    shown: name.to_owned(),
                    pending: None,
                });
                return Some(name.to_owned());
            }
            Some(state) if state.shown == name && state.pending.is_none() => {
                return Some(name.to_owned());
            }
            Some(state) => state,
        };
        let timer_running = state.pending.is_some();
        state.pending = Some(name.to_owned());
        if !timer_running {
            let bridge = self.clone();
            let address = address.to_owned();
            tokio::spawn(async move {
                tokio::select! {
                    () = bridge.shutdown.cancelled() => return,
                    () = tokio::time::sleep(NAME_DEBOUNCE) => {}
                }
                let latest = lock(&bridge.puppets.entry(&address).name)
                    .as_mut()
                    .and_then(|s| {
                        let latest = s.pending.take()?;
                        s.shown = latest.clone();
                        Some(latest)
                    });
                if let Some(latest) = latest {
                    bridge.ensure_puppet(&address, Some(&latest)).await;
                }
            });
        }
        None
    }

    /// Sets every puppet that is not offline again, every `period`, until shutdown: Synapse
    /// turns a user offline when its presence was not set for about 30 s.
    pub async fn refresh_presence(self: &Arc<Self>, period: Duration) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let live: Vec<(OwnedUserId, (MatrixPresence, Option<String>))> = lock(&self.presence)
                .iter()
                .filter(|(_, (p, _))| *p != MatrixPresence::Offline)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (mxid, (presence, status)) in live {
                if let Err(e) = self
                    .matrix
                    .set_presence(&mxid, presence, status.as_deref())
                    .await
                {
                    tracing::debug!(error = %e, %mxid, "cannot refresh a puppet's presence");
                }
            }
        }
    }
}
