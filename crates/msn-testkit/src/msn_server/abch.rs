//! The address book (ABCH) over HTTP, as Escargot serves it to MSNP13+ clients (MSNP.md
//! §4.5, §15.5): `SharingService.asmx` (`FindMembership`, `AddMember`, `DeleteMember`)
//! and `abservice.asmx` (`ABFindAll`, `ABContactAdd`, `ABContactDelete`, and MSNP18's
//! `ABFindContactsPaged`: the same book under `Groups`/`Contacts`/`Ab` with the circles,
//! or a circle's own book, from `circles/book`).
//!
//! Like Escargot: the `TicketToken` must be a ticket of an account whose NS session is
//! up (else a fault); `deltasOnly` true is a "full sync required" fault; an unknown
//! action, or an action element without children, is a fault; `ABContactAdd` of an
//! unknown account is `InvalidUser`. A contact who added the user stays `Pending` (and
//! out of `Reverse`) until `DeleteMember` of the pending membership answers it. List
//! changes have the same side effects as `ADL`/`RML` on the NS.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use msnp::xml::{Element, escape_lossy};

use super::accounts::Lists;
use super::circles;
use super::ns::change_lists;
use super::state::{Shared, State as StateData};

/// The id of the user's own address book.
const OWN_AB: &str = "00000000-0000-0000-0000-000000000000";

/// The address-book routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/abservice/SharingService.asmx", post(soap))
        .route("/abservice/abservice.asmx", post(soap))
        .with_state(shared)
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn envelope(inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Header><ServiceHeader xmlns="http://www.msn.com/webservices/AddressBook"><Version>15.01.1408.0000</Version></ServiceHeader></soap:Header><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    )
}

fn fault(code: &str, reason: &str) -> Response {
    xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        envelope(&format!(
            "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring><detail><errorcode xmlns=\"http://www.msn.com/webservices/AddressBook\">{code}</errorcode></detail></soap:Fault>",
            escape_lossy(reason)
        )),
    )
}

fn ok(action: &str, result: &str) -> Response {
    xml_response(
        StatusCode::OK,
        envelope(&format!(
            "<{action}Response xmlns=\"http://www.msn.com/webservices/AddressBook\">{result}</{action}Response>"
        )),
    )
}

async fn soap(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let Ok(root) = Element::parse(&body) else {
        return fault("BadRequest", "Invalid XML");
    };
    let Some(ticket) = root.find("TicketToken").map(|t| t.text().trim().to_owned()) else {
        return fault("BadRequest", "No ticket");
    };
    // The ticket names the account; the account must be signed in (Escargot).
    let me = {
        let state = shared.lock();
        state
            .tickets
            .get(&ticket)
            .map(|t| t.email.clone())
            .filter(|email| state.sessions.contains_key(email))
    };
    let Some(me) = me else {
        return fault("BadContextToken", "Invalid ticket");
    };
    let Some(action) = root.find("Body").and_then(|b| b.children().first()) else {
        return fault("BadRequest", "No action");
    };
    if action.children().is_empty() {
        // Escargot reads an action without children as text and fails (§15.5).
        return fault("BadRequest", "Empty action");
    }
    match action.name.as_str() {
        "FindMembership" => ok(
            "FindMembership",
            &format!(
                "<FindMembershipResult>{}</FindMembershipResult>",
                memberships(&shared, &me)
            ),
        ),
        "ABFindAll" => {
            if action.find("deltasOnly").map(Element::text) == Some("true") {
                return fault("FullSyncRequired", "Full sync required.");
            }
            ok(
                "ABFindAll",
                &format!(
                    "<ABFindAllResult>{}</ABFindAllResult>",
                    address_book(&shared.lock(), &me).unwrap_or_default()
                ),
            )
        }
        // Fault: a server that predates circles (or has them switched off).
        "ABFindContactsPaged" if shared.lock().no_circle_service => {
            fault("Unsupported", "ABFindContactsPaged is not supported")
        }
        "ABFindContactsPaged" => find_contacts_paged(&shared, &me, action),
        "ABContactAdd" => contact_add(&shared, &me, action),
        "ABContactDelete" => contact_delete(&shared, &me, action),
        "AddMember" | "DeleteMember" => member(&shared, &me, action),
        other => fault("Unsupported", &format!("{other} is not supported")),
    }
}

/// `<Services>…</Services>` with the Allow, Block, Reverse and Pending memberships.
fn memberships(shared: &Shared, me: &str) -> String {
    let state = shared.lock();
    let Some(account) = state.accounts.get(me) else {
        return String::new();
    };
    // A pending contact is kept out of Reverse until answered (§15.5).
    let holds = |role: &str, lists: Lists| match role {
        "Allow" => lists.contains(Lists::AL),
        "Block" => lists.contains(Lists::BL),
        "Reverse" => lists.contains(Lists::RL) && !lists.contains(Lists::PL),
        _ => lists.contains(Lists::PL),
    };
    let mut out = String::new();
    for role in ["Allow", "Block", "Reverse", "Pending"] {
        let members: String = account
            .contacts
            .values()
            .filter(|c| holds(role, c.lists))
            .map(|c| {
                format!(
                    "<Member xsi:type=\"PassportMember\"><MembershipId>{role}/{}</MembershipId><Type>Passport</Type><State>Accepted</State><Deleted>false</Deleted><PassportName>{}</PassportName></Member>",
                    c.guid,
                    escape_lossy(&c.email)
                )
            })
            .collect();
        out.push_str(&format!(
            "<Membership><MemberRole>{role}</MemberRole><Members>{members}</Members><MembershipIsComplete>true</MembershipIsComplete></Membership>"
        ));
    }
    format!(
        "<Services><Service><Memberships>{out}</Memberships><Info><Handle><Id>1</Id><Type>Messenger</Type><ForeignId /></Handle></Info></Service></Services>"
    )
}

/// The user's own book: the groups, and the forward-list contacts with the `Me` entry,
/// as `ABFindAll` writes them (`<groups>`, `<contacts>`, `<ab>`).
fn address_book(state: &StateData, me: &str) -> Option<String> {
    let (groups, contacts) = book_parts(state, me)?;
    Some(format!(
        "<groups>{groups}</groups><contacts>{contacts}</contacts><ab><abId>{OWN_AB}</abId></ab>"
    ))
}

/// The `Group` entries, and the `Contact` entries of the forward list with the `Me`
/// entry last.
fn book_parts(state: &StateData, me: &str) -> Option<(String, String)> {
    let account = state.accounts.get(me)?;
    let decoded = |enc: &str| escape_lossy(&msnp::escape::decode_lossy(enc));
    let groups: String = account
        .groups
        .iter()
        .map(|g| {
            format!(
                "<Group><groupId>{}</groupId><groupInfo><name>{}</name></groupInfo></Group>",
                g.guid,
                decoded(&g.name_enc)
            )
        })
        .collect();
    let contacts: String = account
        .contacts
        .values()
        .filter(|c| c.lists.contains(Lists::FL))
        .map(|c| {
            let group_ids: String = c
                .groups
                .iter()
                .filter_map(|id| account.groups.iter().find(|g| g.id == *id))
                .map(|g| format!("<guid>{}</guid>", g.guid))
                .collect();
            format!(
                "<Contact><contactId>{}</contactId><contactInfo><contactType>Regular</contactType><passportName>{}</passportName><displayName>{}</displayName><groupIds>{group_ids}</groupIds><isMessengerUser>true</isMessengerUser></contactInfo><fDeleted>false</fDeleted></Contact>",
                c.guid,
                escape_lossy(&c.email),
                decoded(&c.name_enc)
            )
        })
        .collect();
    let blp = if account.allow_all { 1 } else { 2 };
    let me_entry = format!(
        "<Contact><contactId>{}</contactId><contactInfo><annotations><Annotation><Name>MSN.IM.BLP</Name><Value>{blp}</Value></Annotation></annotations><contactType>Me</contactType><passportName>{}</passportName><displayName>{}</displayName><isMessengerUser>false</isMessengerUser></contactInfo></Contact>",
        account.member_id,
        escape_lossy(me),
        decoded(&account.name_enc)
    );
    Some((groups, format!("{contacts}{me_entry}")))
}

/// `ABFindContactsPaged` (MSNP18, §15.5): without `abHandle` (or with the user's own
/// id) the book of `ABFindAll` under `Groups`/`Contacts`/`Ab`, each circle of the user's
/// among the contacts (type `Circle`) and the `CircleResult` with the circle ticket;
/// with a circle's id, that circle's members (a fault unless the user is one).
fn find_contacts_paged(shared: &Shared, me: &str, action: &Element) -> Response {
    if action.find("DeltasOnly").map(Element::text) == Some("true") {
        return fault("FullSyncRequired", "Full sync required.");
    }
    let ab_id = action
        .find("abHandle")
        .and_then(|h| h.find("ABId"))
        .map(|id| id.text().trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty() && id != OWN_AB);
    let mut state = shared.lock();
    let inner = match ab_id {
        Some(id) => match circles::book::members_book(&state, me, &id) {
            Some(inner) => inner,
            None => return fault("ABDoesNotExist", "Address book does not exist"),
        },
        None => {
            let Some((groups, contacts)) = book_parts(&state, me) else {
                return fault("ABDoesNotExist", "Address book does not exist");
            };
            let circle_contacts = circles::book::circle_contacts(&state, me);
            let circle_result = circles::book::circle_result(&mut state, me);
            format!(
                "<Groups>{groups}</Groups><Contacts>{contacts}{circle_contacts}</Contacts>{circle_result}<Ab><abId>{OWN_AB}</abId></Ab>"
            )
        }
    };
    drop(state);
    ok(
        "ABFindContactsPaged",
        &format!("<ABFindContactsPagedResult>{inner}</ABFindContactsPagedResult>"),
    )
}

fn contact_add(shared: &Shared, me: &str, action: &Element) -> Response {
    let Some(email) = action
        .find("passportName")
        .map(|p| p.text().trim().to_lowercase())
    else {
        return fault("BadRequest", "No passportName");
    };
    if !shared.lock().accounts.contains_key(&email) {
        return fault("InvalidUser", "Invalid user");
    }
    change_lists(shared, me, &email, Lists::FL, true);
    let guid = shared
        .lock()
        .accounts
        .get(me)
        .and_then(|a| a.contacts.get(&email))
        .map(|c| c.guid.clone())
        .unwrap_or_default();
    ok(
        "ABContactAdd",
        &format!("<ABContactAddResult><guid>{guid}</guid></ABContactAddResult>"),
    )
}

fn contact_delete(shared: &Shared, me: &str, action: &Element) -> Response {
    let Some(id) = action.find("contactId").map(|c| c.text().trim().to_owned()) else {
        return fault("BadRequest", "No contactId");
    };
    let email = shared
        .lock()
        .accounts
        .get(me)
        .and_then(|a| a.contact_by_guid(&id))
        .map(|c| c.email.clone());
    let Some(email) = email else {
        return fault("ContactDoesNotExist", "Contact does not exist");
    };
    change_lists(shared, me, &email, Lists::FL, false);
    ok("ABContactDelete", "")
}

fn member(shared: &Shared, me: &str, action: &Element) -> Response {
    let adding = action.name == "AddMember";
    for membership in action.find_all("Membership") {
        let role = membership
            .find("MemberRole")
            .map(Element::text)
            .unwrap_or_default();
        for member in membership.find_all("Member") {
            let Some(email) = member
                .find("PassportName")
                .map(|p| p.text().trim().to_lowercase())
            else {
                continue;
            };
            match role {
                "Allow" => change_lists(shared, me, &email, Lists::AL, adding),
                "Block" => change_lists(shared, me, &email, Lists::BL, adding),
                // Answering someone who added the user ends their pending state.
                "Pending" if !adding => {
                    if let Some(entry) = shared
                        .lock()
                        .accounts
                        .get_mut(me)
                        .and_then(|a| a.contacts.get_mut(&email))
                    {
                        entry.lists = entry.lists.without(Lists::PL);
                    }
                }
                _ => {}
            }
        }
    }
    ok(&action.name, "")
}
