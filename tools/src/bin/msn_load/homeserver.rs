//! The few homeserver operations the load run needs, on either homeserver: the in-process
//! stand-in (`msn_testkit::homeserver`) or a real Synapse (`--synapse`). What the
//! bridge sends is observed separately (stand-in: its call feed; Synapse: each user's /sync),
//! both into the one [`Observer`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use msn_testkit::homeserver::Homeserver;

use super::Observer;
use super::synapse::Synapse;

pub enum Hs {
    StandIn(Homeserver),
    Synapse(Arc<Synapse>),
}

impl Hs {
    /// `mxid` creates a direct room with the bot (on Synapse registering `mxid` first).
    pub async fn open_dm(&self, mxid: &str, bot: &str) -> Result<String> {
        match self {
            Hs::StandIn(hs) => Ok(hs.user_creates_room(mxid, &[bot], true)),
            Hs::Synapse(hs) => hs.open_dm(mxid).await,
        }
    }

    /// Waits until the bot is in every room of `rooms`. Synapse only tells the appservice
    /// about a room's messages once one of its users is a member; the stand-in tells it
    /// everything, so there this returns at once.
    pub async fn wait_bot_in(
        &self,
        observer: &Observer,
        rooms: &[String],
        limit: Duration,
    ) -> Result<()> {
        match self {
            Hs::StandIn(_) => Ok(()),
            Hs::Synapse(_) => {
                observer
                    .wait("the bot joining the management rooms", limit, |s| {
                        rooms.iter().all(|r| s.bot_rooms.contains(r))
                    })
                    .await
            }
        }
    }

    pub async fn join(&self, room: &str, mxid: &str) -> Result<()> {
        match self {
            Hs::StandIn(hs) => hs.user_joins(room, mxid).map_err(anyhow::Error::msg),
            Hs::Synapse(hs) => hs.join(room, mxid).await,
        }
    }

    pub async fn say(&self, room: &str, mxid: &str, body: &str) -> Result<()> {
        match self {
            Hs::StandIn(hs) => hs
                .user_says(room, mxid, body)
                .map(drop)
                .map_err(anyhow::Error::msg),
            Hs::Synapse(hs) => hs.say(room, mxid, body).await,
        }
    }

    /// Sends a batch of `(room, user, body)`: in order on the stand-in (which queues them
    /// into transactions), concurrently on Synapse (one request each).
    pub async fn say_all(&self, batch: &[(String, String, String)]) -> Result<()> {
        match self {
            Hs::StandIn(hs) => {
                for (room, mxid, body) in batch {
                    hs.user_says(room, mxid, body).map_err(anyhow::Error::msg)?;
                }
                Ok(())
            }
            Hs::Synapse(hs) => hs.say_all(batch).await,
        }
    }

    /// The homeserver's process when it is not this one.
    pub fn server_pid(&self) -> Option<u32> {
        match self {
            Hs::StandIn(_) => None,
            Hs::Synapse(hs) => hs.pid(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Hs::StandIn(_) => "the homeserver stand-in",
            Hs::Synapse(_) => "Synapse",
        }
    }

    /// What e2e minus the MSN baseline measures: the bridge alone with the stand-in (whose
    /// own time is negligible), the bridge and Synapse with Synapse.
    pub fn added(&self) -> &'static str {
        match self {
            Hs::StandIn(_) => "bridge-added",
            Hs::Synapse(_) => "bridge+Synapse-added",
        }
    }

    pub fn summary(&self) -> String {
        match self {
            Hs::StandIn(hs) => {
                let stats = hs.stats();
                format!(
                    "stand-in: {} requests, {} messages, {} transactions / {} events pushed, {} push retries",
                    stats.requests,
                    stats.messages,
                    stats.transactions,
                    stats.pushed_events,
                    stats.push_failures
                )
            }
            Hs::Synapse(hs) => hs.summary(),
        }
    }
}
