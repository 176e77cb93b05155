//! Presence policy: an MSN availability as Matrix presence and status message, and the
//! user's Matrix presence as their MSN status.

use super::remote::{Availability, ContactInfo, OwnStatus};
use crate::config::OfflineStatus;

/// Matrix presence states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixPresence {
    Online,
    Unavailable,
    Offline,
}

impl MatrixPresence {
    /// The state a presence event names (`None`: one the core does not know).
    pub fn parse(presence: &str) -> Option<Self> {
        match presence {
            "online" => Some(Self::Online),
            "unavailable" => Some(Self::Unavailable),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// A contact's presence and status message in Matrix: online for NLN; unavailable (with
/// the MSN status named) for busy, idle, away and the rest; offline for FLN and hidden. The
/// personal message, when set, is the status message.
pub fn contact_presence(contact: &ContactInfo) -> (MatrixPresence, Option<String>) {
    let presence = match contact.availability {
        Availability::Online => MatrixPresence::Online,
        Availability::Offline => MatrixPresence::Offline,
        _ => MatrixPresence::Unavailable,
    };
    let psm = contact
        .personal_message
        .clone()
        .filter(|p| !p.trim().is_empty());
    let status = match (presence, psm) {
        (MatrixPresence::Unavailable, Some(psm)) => {
            Some(format!("{}: {psm}", contact.availability.describe()))
        }
        (MatrixPresence::Unavailable, None) => Some(contact.availability.describe().to_owned()),
        (_, psm) => psm,
    };
    (presence, status)
}

/// The MSN status for a user's Matrix presence.
pub fn own_status(matrix_presence: MatrixPresence, offline: OfflineStatus) -> OwnStatus {
    match (matrix_presence, offline) {
        (MatrixPresence::Online, _) => OwnStatus::Online,
        (MatrixPresence::Unavailable, _) => OwnStatus::Away,
        (MatrixPresence::Offline, OfflineStatus::Away) => OwnStatus::Away,
        (MatrixPresence::Offline, OfflineStatus::Online) => OwnStatus::Online,
        (MatrixPresence::Offline, OfflineStatus::Hidden) => OwnStatus::Hidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(availability: Availability, psm: Option<&str>) -> ContactInfo {
        ContactInfo {
            address: crate::bridge::ids::MsnAddress::from_server("a@b"),
            name: "A".into(),
            availability,
            personal_message: psm.map(str::to_owned),
            is_friend: true,
            blocked: false,
            picture: None,
            network: None,
        }
    }

    #[test]
    fn msn_statuses_map_to_matrix() {
        assert_eq!(
            contact_presence(&contact(Availability::Online, None)),
            (MatrixPresence::Online, None)
        );
        assert_eq!(
            contact_presence(&contact(Availability::Online, Some("at work"))),
            (MatrixPresence::Online, Some("at work".into()))
        );
        assert_eq!(
            contact_presence(&contact(Availability::Busy, None)),
            (MatrixPresence::Unavailable, Some("Busy".into()))
        );
        assert_eq!(
            contact_presence(&contact(Availability::OutToLunch, Some("pizza"))),
            (
                MatrixPresence::Unavailable,
                Some("Out to lunch: pizza".into())
            )
        );
        assert_eq!(
            contact_presence(&contact(Availability::Offline, Some(" "))),
            (MatrixPresence::Offline, None)
        );
    }

    #[test]
    fn matrix_presence_maps_to_msn() {
        use MatrixPresence::*;
        assert_eq!(own_status(Online, OfflineStatus::Hidden), OwnStatus::Online);
        assert_eq!(
            own_status(Unavailable, OfflineStatus::Hidden),
            OwnStatus::Away
        );
        assert_eq!(
            own_status(Offline, OfflineStatus::Hidden),
            OwnStatus::Hidden
        );
        assert_eq!(
            own_status(Offline, OfflineStatus::Online),
            OwnStatus::Online
        );
        // The default: contacts can still write to a user whose client is closed.
        assert_eq!(
            own_status(Offline, OfflineStatus::default()),
            OwnStatus::Away
        );
        assert_eq!(MatrixPresence::parse("offline"), Some(Offline));
        assert_eq!(MatrixPresence::parse("busy"), None);
    }
}
