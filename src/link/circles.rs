//! Circles in the link (MSNP18 group chats on the notification server, MSNP.md §15.4):
//! a circle is the group chat `circle:<id>` to the core, named after the circle. What
//! the server routes from it becomes the core's group events (members, messages,
//! typing, nudges); what the core sends to it goes as `SDG` on the notification server,
//! never over a switchboard.

use crate::bridge::formatting::RichText;
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{Chat, DeliveryError, RemoteEvent};
use crate::net::CircleState;
use msnp::circle::{FromCircle, Outgoing};

use super::convert::{rich_text, text_format};
use super::{LinkSession, delivery};

/// The prefix of a circle's group id.
const CIRCLE: &str = "circle:";

/// The circle a chat is, if it is one.
pub(super) fn circle_of(chat: &Chat) -> Option<&str> {
    match chat {
        Chat::Group(id) => id.strip_prefix(CIRCLE),
        Chat::Contact(_) => None,
    }
}

fn chat(circle: &str) -> Chat {
    Chat::Group(format!("{CIRCLE}{circle}"))
}

impl LinkSession {
    /// The core's event for what circle `event` routed, if any.
    pub(super) fn on_circle(&self, event: FromCircle) -> Option<RemoteEvent> {
        let me = self.account.to_ascii_lowercase();
        match event {
            FromCircle::Roster { circle, members } => {
                let name = self
                    .session
                    .client()
                    .and_then(|ns| ns.circle(&circle))
                    .map(|c| c.name);
                let members = members
                    .into_iter()
                    .filter(|m| *m != me)
                    .map(|m| {
                        let address = MsnAddress::from_server(&m);
                        let shown = self.known_name(&address);
                        (address, shown)
                    })
                    .collect();
                Some(RemoteEvent::GroupMembers {
                    chat: chat(&circle),
                    members,
                    name,
                })
            }
            FromCircle::Left { circle, member } if member != me => Some(RemoteEvent::GroupLeft {
                chat: chat(&circle),
                address: MsnAddress::from_server(&member),
            }),
            FromCircle::Text {
                circle,
                from,
                text,
                format,
                ..
            } if from != me => Some(RemoteEvent::Message {
                chat: chat(&circle),
                from: MsnAddress::from_server(&from),
                text: rich_text(text, Some(&format)),
                emoticons: Vec::new(),
            }),
            FromCircle::Typing { circle, from } if from != me => Some(RemoteEvent::Typing {
                chat: chat(&circle),
                from: MsnAddress::from_server(&from),
            }),
            FromCircle::Nudge { circle, from } if from != me => Some(RemoteEvent::Nudge {
                chat: chat(&circle),
                from: MsnAddress::from_server(&from),
            }),
            // The user's own lines from their Messenger, and circle properties: not shown.
            _ => None,
        }
    }

    /// Where the user's circles are, for `status` (nothing before MSNP18).
    pub(super) fn circle_note(&self) -> Option<String> {
        let (circles, state) = self.session.client()?.circles();
        let names: Vec<&str> = circles.iter().map(|c| c.name.as_str()).collect();
        Some(match state {
            CircleState::NotInVersion => return None,
            CircleState::NoneListed if names.is_empty() => {
                "Circles: none (or the server offers none).".to_owned()
            }
            CircleState::NoneListed | CircleState::Joining => {
                format!("Circles: joining {}.", names.join(", "))
            }
            CircleState::Joined => format!("Circles: {} (each a group portal).", names.join(", ")),
            CircleState::Refused(code) => format!(
                "Circles: the server refused them (error {code}); everything else works without them."
            ),
        })
    }

    /// The name the contact list has for `address`, else the address.
    fn known_name(&self, address: &MsnAddress) -> String {
        self.contacts_lock()
            .get(address.as_str())
            .map_or_else(|| address.to_string(), |c| c.name.clone())
    }

    /// Sends `what` into `circle` on the notification server.
    pub(super) async fn send_to_circle(
        &self,
        circle: &str,
        what: CircleSend,
    ) -> Result<(), DeliveryError> {
        let ns = self.ns()?;
        let circle = circle.to_owned();
        ns.command(move |s, now| {
            let format;
            let outgoing = match &what {
                CircleSend::Text(rich) => {
                    format = text_format(&rich.style);
                    Outgoing::Text {
                        text: &rich.text,
                        format: &format,
                    }
                }
                CircleSend::Typing => Outgoing::Typing,
                CircleSend::Nudge => Outgoing::Nudge,
            };
            s.send_to_circle(now, &circle, &outgoing)
        })
        .await
        .map_err(delivery)
    }
}

/// What the core sends into a circle.
pub(super) enum CircleSend {
    Text(RichText),
    Typing,
    Nudge,
}
