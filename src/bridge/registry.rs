//! The core's entities and the registries that hold them: each Matrix user of the bridge
//! ([`UserLogin`]), each MSN contact's puppet ([`PuppetState`]) and each portal room
//! ([`PortalState`]) keeps its own state behind its own locks, so work on one never
//! waits for another's; a [`Registry`] finds an entity by its key, making it on first use.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ruma::{OwnedRoomId, OwnedUserId};
use tokio::sync::{Notify, watch};

use super::lock;
use super::logins::StatusMemo;
use super::presence::MatrixPresence;
use super::puppets::NameState;
use super::readiness::Phase;
use super::remote::OwnStatus;

/// Entities by key, each shared as an `Arc` and made on first use.
pub(super) struct Registry<K, V> {
    entities: Mutex<HashMap<K, Arc<V>>>,
}

impl<K: Eq + Hash + Clone, V: Default> Registry<K, V> {
    pub(super) fn new() -> Self {
        Self {
            entities: Mutex::new(HashMap::new()),
        }
    }

    /// The entity of `key`, if it was ever made.
    pub(super) fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.entities).get(key).cloned()
    }

    /// The entity of `key`, made now if it is new.
    pub(super) fn entry<Q>(&self, key: &Q) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut entities = lock(&self.entities);
        if let Some(entity) = entities.get(key) {
            return entity.clone();
        }
        let entity = Arc::new(V::default());
        entities.insert(key.to_owned(), entity.clone());
        entity
    }

    /// Every entity, with its key.
    pub(super) fn all(&self) -> Vec<(K, Arc<V>)> {
        lock(&self.entities)
            .iter()
            .map(|(key, entity)| (key.clone(), entity.clone()))
            .collect()
    }
}

/// One Matrix user's live MSN login.
pub(super) struct Login<S> {
    pub(super) account: String,
    pub(super) session: S,
    /// Tells this session from a later one of the same user (a `reconnect`, a new login):
    /// the end of an old session must not remove the new one.
    pub(super) generation: u64,
}

/// A Matrix user of the bridge.
pub(super) struct UserLogin<S> {
    /// The live MSN login, if any.
    pub(super) login: Mutex<Option<Login<S>>>,
    /// Held while a login is made: one at a time per user.
    pub(super) connecting: tokio::sync::Mutex<()>,
    /// The user's space, once known (held while it is made).
    pub(super) space: tokio::sync::Mutex<Option<ruma::OwnedRoomId>>,
    /// After `login <email>`: the account, and when its password was asked for.
    pub(super) awaiting_password: Mutex<Option<(String, tokio::time::Instant)>>,
    /// Whether the session is connected, and the connection notices sent.
    pub(super) status: Mutex<StatusMemo>,
    /// Where the MSN session is, watched by the messages waiting for it.
    pub(super) phase: watch::Sender<Phase>,
    /// Wakes the delivery of the user's outbox (events from MSN for Matrix).
    pub(super) outbox: Notify,
    /// Whether the outbox's delivery task runs.
    pub(super) outbox_started: AtomicBool,
    /// The MSN status the bridge last set (a user who writes while hidden is brought
    /// online first).
    pub(super) own_status: Mutex<Option<OwnStatus>>,
    /// The avatar (`mxc://`, empty for none) last made the user's MSN display picture.
    pub(super) own_avatar: Mutex<Option<String>>,
    /// The management room: a read-through cache of the store.
    pub(super) management_room: Mutex<Option<OwnedRoomId>>,
}

impl<S> Default for UserLogin<S> {
    fn default() -> Self {
        Self {
            login: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            space: tokio::sync::Mutex::new(None),
            awaiting_password: Mutex::new(None),
            status: Mutex::new(StatusMemo::default()),
            phase: watch::Sender::new(Phase::Down),
            outbox: Notify::new(),
            outbox_started: AtomicBool::new(false),
            own_status: Mutex::new(None),
            own_avatar: Mutex::new(None),
            management_room: Mutex::new(None),
        }
    }
}

impl<S: Clone> UserLogin<S> {
    /// The live session, if any.
    pub(super) fn session(&self) -> Option<S> {
        lock(&self.login).as_ref().map(|l| l.session.clone())
    }

    /// The account of the live login, if any.
    pub(super) fn account(&self) -> Option<String> {
        lock(&self.login).as_ref().map(|l| l.account.clone())
    }

    /// Takes the live login away (logout, `reconnect`).
    pub(super) fn take_login(&self) -> Option<Login<S>> {
        lock(&self.login).take()
    }
}

/// An MSN contact's puppet, by address.
#[derive(Default)]
pub(super) struct PuppetState {
    /// The friendly name shown, and a rename waiting out its debounce.
    pub(super) name: Mutex<Option<NameState>>,
    /// The picture (SHA1D) the puppet is known to show.
    pub(super) avatar_shown: Mutex<Option<String>>,
    /// Whether its display picture is being fetched now.
    pub(super) fetching: AtomicBool,
}

/// A portal room, by room ID.
#[derive(Default)]
pub(super) struct PortalState {
    /// Its stored row: a read-through cache of the store (a portal's room, chat and user
    /// never change).
    pub(super) row: Mutex<Option<crate::store::Portal>>,
    /// The repeating typing notification towards MSN, while the user types.
    pub(super) typing: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Puppets shown typing in it: a message then clears it.
    pub(super) puppets_typing: Mutex<HashSet<OwnedUserId>>,
    /// The user was told that their messages wait for the (offline) contact; told again
    /// after the contact has been seen online.
    pub(super) told_stored_offline: AtomicBool,
    /// What MSN cannot carry that the user was told of in this portal (once each).
    pub(super) told_unbridgeable: Mutex<HashSet<super::event::Unbridgeable>>,
}

/// The presence last set on each puppet (by its user ID): sent again only on change,
/// and refreshed before the homeserver lets it decay.
pub(super) type PuppetPresence = HashMap<OwnedUserId, (MatrixPresence, Option<String>)>;
