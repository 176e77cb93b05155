//! Accounts and their server-side contact lists (MSNP.md §4.1–§4.3): list bits, groups,
//! privacy settings (`BLP`/`GTC`), friendly name and personal message.
//!
//! Pure data with small helpers; knows nothing about sockets or wire formats beyond
//! the stored (percent-encoded) friendly names. Used only through `state::State`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::BitOr;

use bytes::Bytes;

/// A set of contact lists as the MSNP list bits (§4.1): FL=1, AL=2, BL=4, RL=8, PL=16.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Lists(pub u8);

impl Lists {
    /// No list.
    pub const NONE: Lists = Lists(0);
    /// Forward list: people the owner added.
    pub const FL: Lists = Lists(1);
    /// Allow list.
    pub const AL: Lists = Lists(2);
    /// Block list.
    pub const BL: Lists = Lists(4);
    /// Reverse list: people who have the owner on their FL (maintained by the server).
    pub const RL: Lists = Lists(8);
    /// Pending list.
    pub const PL: Lists = Lists(16);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Lists) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// `self` with the bits of `other` cleared.
    pub fn without(self, other: Lists) -> Lists {
        Lists(self.0 & !other.0)
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses a list name (`FL`, `AL`, `BL`, `RL`, `PL`).
    pub fn from_name(name: &str) -> Option<Lists> {
        Some(match name {
            "FL" => Lists::FL,
            "AL" => Lists::AL,
            "BL" => Lists::BL,
            "RL" => Lists::RL,
            "PL" => Lists::PL,
            _ => return None,
        })
    }
}

impl BitOr for Lists {
    type Output = Lists;
    fn bitor(self, rhs: Lists) -> Lists {
        Lists(self.0 | rhs.0)
    }
}

impl fmt::Debug for Lists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [("FL", 1), ("AL", 2), ("BL", 4), ("RL", 8), ("PL", 16)]
            .iter()
            .filter(|(_, bit)| self.0 & bit != 0)
            .map(|(n, _)| *n)
            .collect();
        write!(f, "Lists({})", names.join("|"))
    }
}

/// One entry of an owner's contact list.
#[derive(Debug, Clone)]
pub(crate) struct ContactEntry {
    /// Lower-case e-mail address.
    pub email: String,
    /// Server-stored friendly name, percent-encoded as on the wire (`F=`).
    pub name_enc: String,
    /// List membership.
    pub lists: Lists,
    /// Contact GUID (`C=`, MSNP10+), stable for the entry's lifetime.
    pub guid: String,
    /// Numeric ids of the groups this FL contact is in.
    pub groups: Vec<u32>,
}

/// A contact group: numeric id for MSNP8–9, GUID for MSNP10+ (§4.2/§4.3).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: u32,
    pub guid: String,
    /// Percent-encoded name as on the wire.
    pub name_enc: String,
}

/// A registered account.
pub(crate) struct Account {
    pub email: String,
    pub password: String,
    /// Percent-encoded friendly name, relayed as stored (R2M behaviour, §5.6).
    pub name_enc: String,
    /// Last `UUX` document (MSNP11+), relayed in `UBX`.
    pub psm: Bytes,
    /// `BLP`: `true` = `AL` (allow everyone not blocked), `false` = `BL`.
    pub allow_all: bool,
    /// `GTC` value (`A` or `N`).
    pub gtc: String,
    pub contacts: BTreeMap<String, ContactEntry>,
    pub groups: Vec<Group>,
    /// MSNP8–9 list version, bumped on every list change.
    pub list_version: u32,
    /// Member id used in the profile message.
    pub member_id: u64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("name_enc", &self.name_enc)
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn new(email: &str, password: &str, name_enc: String, member_id: u64) -> Account {
        Account {
            email: email.to_owned(),
            password: password.to_owned(),
            name_enc,
            psm: Bytes::new(),
            allow_all: true,
            gtc: "A".to_owned(),
            contacts: BTreeMap::new(),
            groups: Vec::new(),
            list_version: 0,
            member_id,
        }
    }

    /// The lists `other` is on for this account (empty when unknown).
    pub fn lists_of(&self, other: &str) -> Lists {
        self.contacts.get(other).map_or(Lists::NONE, |c| c.lists)
    }

    /// Whether this account lets `viewer` see its presence and contact it (§4.1):
    /// never when blocked; otherwise `BLP AL` allows everyone, `BLP BL` only AL members.
    pub fn allows(&self, viewer: &str) -> bool {
        let lists = self.lists_of(viewer);
        if lists.contains(Lists::BL) {
            return false;
        }
        self.allow_all || lists.contains(Lists::AL)
    }

    /// Finds a contact by its `C=` GUID.
    pub fn contact_by_guid(&self, guid: &str) -> Option<&ContactEntry> {
        self.contacts.values().find(|c| c.guid == guid)
    }

    /// Finds a group by GUID (MSNP10+) or decimal id (MSNP8–9).
    pub fn group_by_token(&self, token: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.guid == token || token.parse::<u32>().is_ok_and(|id| id == g.id))
    }

    /// Drops entries that are on no list any more.
    pub fn prune(&mut self) {
        self.contacts.retain(|_, c| !c.lists.is_empty());
    }
}
