//! The address book (ABCH) of MSNP13+ as data (MSNP.md §4.5, §15.5): the SOAP requests
//! a bridge makes (`FindMembership` and `ABFindAll` at login; `ABContactAdd`,
//! `ABContactDelete`, `AddMember`, `DeleteMember` for the contact commands) and their
//! responses read into the [`ContactList`] the notification-server machine takes.
//!
//! Owns: the envelopes (the `contacts.msn.com` ticket in `ABAuthHeader/TicketToken`,
//! escaped; always `deltasOnly` false, as Escargot refuses deltas), the `SOAPAction`
//! header, fault detection, and merging memberships (AL/BL/RL/PL) with address-book
//! contacts (FL). Names are matched without namespace and in both cases servers use
//! (`contacts` in `ABFindAll`, `Contacts` in `ABFindContactsPaged`). The shell performs
//! the HTTP. No I/O.

use std::collections::BTreeMap;

use crate::auth::{PostRequest, Secret};
use crate::ns::{Contact, ContactList, Group, List};
use crate::soap::{self, FaultCode};
use crate::xml::{self, Element};

/// The address-book service path (§15.5).
pub const AB_PATH: &str = "/abservice/abservice.asmx";
/// The membership (sharing) service path (§15.5).
pub const SHARING_PATH: &str = "/abservice/SharingService.asmx";
/// The namespace of every action element.
const NS: &str = "http://www.msn.com/webservices/AddressBook";
/// The address-book id meaning "my own" (§15.5).
const MY_AB: &str = "00000000-0000-0000-0000-000000000000";
/// MSP31's application id for MSNP18; servers do not read it (§15.5).
const APPLICATION_ID: &str = "AAD9B99B-58E6-4F23-B975-D9EC1F9EC24A";

/// Why an address-book call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbchError {
    /// The service answered with a SOAP fault.
    #[error("address book fault {code} (HTTP {status}): {reason}")]
    Fault {
        /// The HTTP status.
        status: u16,
        /// The fault code.
        code: FaultCode,
        /// Its text.
        reason: String,
    },
    /// Neither a result nor a fault.
    #[error("unexpected address book response (HTTP {status})")]
    Unexpected {
        /// The HTTP status.
        status: u16,
    },
    /// A value cannot be written into the request (a character XML cannot carry).
    #[error("{0} cannot be sent in an address book request")]
    NotXml(&'static str),
    /// The service URL is not usable.
    #[error("invalid address book URL {0:?}")]
    BadUrl(String),
}

/// Why a call is made (`PartnerScenario`, §15.5); servers log it, Escargot ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The login sync.
    Initial,
    /// Adding a contact.
    ContactSave,
    /// Allow/block memberships.
    BlockUnblock,
    /// Pending/reverse handling (accepting someone who added the user).
    ContactMsgrApi,
    /// Deletes.
    Timer,
}

impl Scenario {
    fn as_str(self) -> &'static str {
        match self {
            Scenario::Initial => "Initial",
            Scenario::ContactSave => "ContactSave",
            Scenario::BlockUnblock => "BlockUnblock",
            Scenario::ContactMsgrApi => "ContactMsgrAPI",
            Scenario::Timer => "Timer",
        }
    }
}

/// A membership role (§15.5): the MSNP13+ form of the AL/BL/RL/PL lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `Allow` (AL).
    Allow,
    /// `Block` (BL).
    Block,
    /// `Reverse` (RL).
    Reverse,
    /// `Pending` (PL).
    Pending,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Allow => "Allow",
            Role::Block => "Block",
            Role::Reverse => "Reverse",
            Role::Pending => "Pending",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "Allow" => Role::Allow,
            "Block" => Role::Block,
            "Reverse" => Role::Reverse,
            "Pending" => Role::Pending,
            _ => return None,
        })
    }

    /// The list this role is.
    pub fn list(self) -> List {
        match self {
            Role::Allow => List::Allow,
            Role::Block => List::Block,
            Role::Reverse => List::Reverse,
            Role::Pending => List::Pending,
        }
    }
}

fn text(field: &'static str, value: &str) -> Result<String, AbchError> {
    xml::escape(value).map_err(|_| AbchError::NotXml(field))
}

/// A `POST` of `action` to `path` on `base` (the login host, or a full service URL's
/// scheme and authority).
fn request(
    base: &str,
    path: &str,
    ticket: &Secret,
    scenario: Scenario,
    action: &str,
    body: &str,
) -> Result<PostRequest, AbchError> {
    let url = service_url(base, path)?;
    let ticket = text("the ticket", ticket.expose())?;
    let envelope = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Header><ABApplicationHeader xmlns="{NS}"><ApplicationId>{APPLICATION_ID}</ApplicationId><IsMigration>false</IsMigration><PartnerScenario>{scenario}</PartnerScenario></ABApplicationHeader><ABAuthHeader xmlns="{NS}"><ManagedGroupRequest>false</ManagedGroupRequest><TicketToken>{ticket}</TicketToken></ABAuthHeader></soap:Header><soap:Body><{action} xmlns="{NS}">{body}</{action}></soap:Body></soap:Envelope>"#,
        scenario = scenario.as_str(),
    );
    Ok(PostRequest {
        url,
        headers: vec![
            (
                "Content-Type".to_owned(),
                "text/xml; charset=utf-8".to_owned(),
            ),
            ("SOAPAction".to_owned(), format!("\"{NS}/{action}\"")),
        ],
        body: Secret::new(envelope),
    })
}

/// `base` with `path` instead of whatever path it has.
fn service_url(base: &str, path: &str) -> Result<String, AbchError> {
    soap::service_url(base, path).ok_or_else(|| AbchError::BadUrl(base.to_owned()))
}

/// `FindMembership` (SharingService, §15.5): the AL/BL/RL/PL memberships.
pub fn find_membership(base: &str, ticket: &Secret) -> Result<PostRequest, AbchError> {
    let types = [
        "Messenger",
        "Invitation",
        "SocialNetwork",
        "Space",
        "Profile",
    ]
    .map(|t| format!("<ServiceType>{t}</ServiceType>"))
    .concat();
    request(
        base,
        SHARING_PATH,
        ticket,
        Scenario::Initial,
        "FindMembership",
        &format!("<serviceFilter><Types>{types}</Types></serviceFilter>"),
    )
}

/// `ABFindAll` (abservice, §15.5): the contacts (FL) and groups, never deltas.
pub fn find_all(base: &str, ticket: &Secret) -> Result<PostRequest, AbchError> {
    request(
        base,
        AB_PATH,
        ticket,
        Scenario::Initial,
        "ABFindAll",
        &format!(
            "<abId>{MY_AB}</abId><abView>Full</abView><deltasOnly>false</deltasOnly><lastChange>0001-01-01T00:00:00.0000000-08:00</lastChange>"
        ),
    )
}

/// `ABContactAdd` (abservice, `ContactSave`): `address` as a messenger contact.
pub fn contact_add(base: &str, ticket: &Secret, address: &str) -> Result<PostRequest, AbchError> {
    let address = text("the address", address)?;
    request(
        base,
        AB_PATH,
        ticket,
        Scenario::ContactSave,
        "ABContactAdd",
        &format!(
            "<abId>{MY_AB}</abId><contacts><Contact><contactInfo><passportName>{address}</passportName><isMessengerUser>true</isMessengerUser></contactInfo></Contact></contacts><options><EnableAllowListManagement>true</EnableAllowListManagement></options>"
        ),
    )
}

/// `ABContactDelete` (abservice, `Timer`) of the contact with id `contact_id`.
pub fn contact_delete(
    base: &str,
    ticket: &Secret,
    contact_id: &str,
) -> Result<PostRequest, AbchError> {
    let id = text("the contact id", contact_id)?;
    request(
        base,
        AB_PATH,
        ticket,
        Scenario::Timer,
        "ABContactDelete",
        &format!(
            "<abId>{MY_AB}</abId><contacts><Contact><contactId>{id}</contactId></Contact></contacts>"
        ),
    )
}

/// `AddMember` (`add`) or `DeleteMember` of `address` in `role` (SharingService).
pub fn member(
    base: &str,
    ticket: &Secret,
    add: bool,
    role: Role,
    address: &str,
) -> Result<PostRequest, AbchError> {
    let address = text("the address", address)?;
    let scenario = match role {
        Role::Allow | Role::Block => Scenario::BlockUnblock,
        Role::Reverse | Role::Pending => Scenario::ContactMsgrApi,
    };
    request(
        base,
        SHARING_PATH,
        ticket,
        scenario,
        if add { "AddMember" } else { "DeleteMember" },
        &format!(
            "<serviceHandle><Id>0</Id><Type>Messenger</Type><ForeignId></ForeignId></serviceHandle><memberships><Membership><MemberRole>{}</MemberRole><Members><Member xsi:type=\"PassportMember\"><Type>Passport</Type><State>Accepted</State><PassportName>{address}</PassportName></Member></Members></Membership></memberships>",
            role.as_str()
        ),
    )
}

/// The result element of a response, after fault and status checks.
fn result(status: u16, body: &str) -> Result<Element, AbchError> {
    soap::answer(status, body).map_err(|refusal| match refusal {
        soap::Refusal::Fault(fault) => AbchError::Fault {
            status,
            code: fault.code,
            reason: fault.reason,
        },
        soap::Refusal::Unexpected => AbchError::Unexpected { status },
    })
}

/// Reads any successful response (`AddMember`, `DeleteMember`, `ABContactDelete` have
/// nothing to read): a fault or a bad status is the error.
pub fn parse_ack(status: u16, body: &str) -> Result<(), AbchError> {
    result(status, body).map(|_| ())
}

/// The network of e-mail (non-Passport) members: Yahoo interop (§4.5 `t=32`).
pub const NETWORK_EMAIL: u32 = 32;

/// One membership of `FindMembership`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The list it is.
    pub role: Role,
    /// The address, lower-cased.
    pub address: String,
    /// 1 for a `PassportMember`, [`NETWORK_EMAIL`] for an `EmailMember`.
    pub network: u32,
}

/// Reads `FindMembership` (`PassportName`, or `Email` for members of other networks).
/// Only the Messenger service's memberships count (the request asks for several).
pub fn parse_memberships(status: u16, body: &str) -> Result<Vec<Membership>, AbchError> {
    let root = result(status, body)?;
    let services = root.find_all("Service");
    let messenger: Vec<&Element> = if services.is_empty() {
        vec![&root]
    } else {
        services
            .into_iter()
            .filter(|s| {
                s.path(&["Info", "Handle", "Type"])
                    .and_then(Element::trimmed_text)
                    .is_none_or(|t| t == "Messenger")
            })
            .collect()
    };
    let mut out = Vec::new();
    for membership in messenger.iter().flat_map(|s| s.find_all("Membership")) {
        let Some(role) = membership
            .find("MemberRole")
            .and_then(Element::trimmed_text)
            .and_then(Role::parse)
        else {
            continue;
        };
        for member in membership.find_all("Member") {
            let passport = member.find("PassportName").and_then(Element::trimmed_text);
            let email = member.find("Email").and_then(Element::trimmed_text);
            let (address, network) = match (passport, email) {
                (Some(a), _) => (a, crate::ml::NETWORK_PASSPORT),
                (None, Some(a)) => (a, NETWORK_EMAIL),
                (None, None) => continue,
            };
            out.push(Membership {
                role,
                address: address.to_ascii_lowercase(),
                network,
            });
        }
    }
    Ok(out)
}

/// One contact of the address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookContact {
    /// `contactId`.
    pub id: String,
    /// `passportName` (or the first e-mail for other networks), lower-cased.
    pub address: String,
    /// `displayName`, if any.
    pub display_name: Option<String>,
    /// `isMessengerUser`: a messenger contact (FL), not just an address-book entry.
    pub messenger: bool,
    /// `contactType` (`Me`, `Circle`, `LivePending`, `Regular`, …).
    pub kind: String,
    /// `groupIds`.
    pub groups: Vec<String>,
}

/// What `ABFindAll` (or `ABFindContactsPaged`) holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressBook {
    /// The contacts, the user's own entry (`Me`) and circles left out.
    pub contacts: Vec<BookContact>,
    /// The groups.
    pub groups: Vec<Group>,
    /// The user's own display name (the `Me` entry).
    pub own_name: Option<String>,
    /// The `BLP` setting (`AL`/`BL`) from the `Me` entry's `MSN.IM.BLP` annotation.
    pub privacy: Option<String>,
}

/// The first of `names` found under `element`, as trimmed text.
fn field<'a>(element: &'a Element, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| element.find(n))
        .and_then(Element::trimmed_text)
}

/// Reads `ABFindAll` / `ABFindContactsPaged`.
pub fn parse_address_book(status: u16, body: &str) -> Result<AddressBook, AbchError> {
    let root = result(status, body)?;
    let mut book = AddressBook::default();
    for group in root.find_all("Group") {
        let (Some(id), Some(name)) = (
            field(group, &["groupId"]),
            group.find("groupInfo").and_then(|i| field(i, &["name"])),
        ) else {
            continue;
        };
        book.groups.push(Group {
            id: id.to_owned(),
            name: name.to_owned(),
        });
    }
    for contact in root.find_all("Contact") {
        let Some(info) = contact.find("contactInfo") else {
            continue;
        };
        let kind = field(info, &["contactType"])
            .unwrap_or("Regular")
            .to_owned();
        let display_name = field(info, &["displayName"]).map(str::to_owned);
        if kind == "Me" {
            book.own_name = display_name;
            book.privacy = info
                .find_all("Annotation")
                .into_iter()
                .find(|a| field(a, &["Name"]) == Some("MSN.IM.BLP"))
                .and_then(|a| match field(a, &["Value"]) {
                    Some("1") => Some("AL".to_owned()),
                    Some("2") => Some("BL".to_owned()),
                    _ => None,
                });
            continue;
        }
        let address = field(info, &["passportName"]).or_else(|| field(info, &["email"]));
        let (Some(id), Some(address)) = (field(contact, &["contactId"]), address) else {
            continue;
        };
        if kind == "Circle" {
            continue;
        }
        book.contacts.push(BookContact {
            id: id.to_owned(),
            address: address.to_ascii_lowercase(),
            display_name,
            messenger: field(info, &["isMessengerUser"]) == Some("true"),
            kind,
            groups: info
                .find("groupIds")
                .map(|g| {
                    g.children_named("guid")
                        .filter_map(Element::trimmed_text)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(book)
}

/// Reads `ABContactAdd`'s answer: the new contact's id (`ABContactAddResult/guid`).
pub fn parse_contact_added(status: u16, body: &str) -> Result<String, AbchError> {
    let root = result(status, body)?;
    root.find("ABContactAddResult")
        .and_then(|r| field(r, &["guid"]))
        .map(str::to_owned)
        .ok_or(AbchError::Unexpected { status })
}

/// The lists as the notification-server machine keeps them: messenger contacts of the
/// address book are the forward list (with their id as GUID and their groups), the
/// memberships the allow, block, reverse and pending lists.
pub fn contact_list(book: &AddressBook, memberships: &[Membership]) -> ContactList {
    let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
    for c in &book.contacts {
        let entry = contacts
            .entry(c.address.clone())
            .or_insert_with(|| Contact {
                email: c.address.clone(),
                friendly_name: c.display_name.clone().unwrap_or_else(|| c.address.clone()),
                network: Some(crate::ml::NETWORK_PASSPORT),
                ..Contact::default()
            });
        entry.guid = Some(c.id.clone());
        entry.groups.clone_from(&c.groups);
        if c.messenger && c.kind != "LivePending" {
            entry.lists |= List::Forward.bit();
        }
    }
    for m in memberships {
        let entry = contacts
            .entry(m.address.clone())
            .or_insert_with(|| Contact {
                email: m.address.clone(),
                friendly_name: m.address.clone(),
                network: Some(m.network),
                ..Contact::default()
            });
        // A contact of another network keeps it (its ADL says so, `t=`).
        if m.network != crate::ml::NETWORK_PASSPORT {
            entry.network = Some(m.network);
        }
        entry.lists |= m.role.list().bit();
    }
    ContactList {
        contacts,
        groups: book.groups.clone(),
        own_friendly_name: book.own_name.clone(),
        privacy: book.privacy.clone(),
        ..ContactList::default()
    }
}

pub mod circles;

#[cfg(test)]
mod tests;
