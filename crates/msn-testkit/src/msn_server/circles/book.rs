//! The circles in the address book (MSNP.md §15.4 step 1, §15.5), as Escargot's
//! `ABFindContactsPaged` writes them: for the user's own book, the `CircleResult` (one
//! `CircleInverseInfo` per circle the user is a member of, and the circle ticket, kept
//! in the state for `USR SHA A`) and one `Contact` of type `Circle` per circle; for a
//! circle's book (`abHandle/ABId` = its id), its members as contacts with their
//! relationship and the circle's own `Me` entry. XML fragments only; the SOAP envelope is
//! `abch`'s.

use msnp::xml::escape_lossy;

use super::super::state::State;
use super::{MemberState, Role, wire};

/// `<CircleResult>`: the circles `me` is a member of and `me`'s circle ticket, which is
/// stored as the one `USR SHA A` must present.
pub(crate) fn circle_result(state: &mut State, me: &str) -> String {
    let mine: Vec<_> = state
        .circles
        .values()
        .filter_map(|c| c.member(me).map(|m| (c, m)))
        .collect();
    let infos: String = mine
        .iter()
        .map(|(circle, member)| {
            let name = escape_lossy(&circle.name);
            format!(
                "<CircleInverseInfo><Content><Handle><Id>{}</Id></Handle><Info><Domain>1</Domain><HostedDomain>live.com</HostedDomain><Type>2</Type><MembershipAccess>0</MembershipAccess><IsPresenceEnabled>true</IsPresenceEnabled><RequestMembershipOption>2</RequestMembershipOption><DisplayName>{name}</DisplayName></Info></Content><PersonalInfo><MembershipInfo><CirclePersonalMembership><Role>{}</Role><State>{}</State></CirclePersonalMembership></MembershipInfo><Name>{name}</Name></PersonalInfo><Deleted>false</Deleted></CircleInverseInfo>",
                circle.id,
                member.role.as_str(),
                member.state.as_str()
            )
        })
        .collect();
    let accepted: Vec<&str> = mine
        .iter()
        .filter(|(_, m)| m.state == MemberState::Accepted)
        .map(|(c, _)| c.id.as_str())
        .collect();
    let cid = state.accounts.get(me).map_or(0, |a| a.member_id);
    let ticket = wire::ticket(cid, &accepted);
    let escaped = escape_lossy(&ticket);
    state.circle_tickets.insert(me.to_owned(), ticket);
    let circles = if infos.is_empty() {
        String::new()
    } else {
        format!("<Circles>{infos}</Circles>")
    };
    format!("<CircleResult>{circles}<CircleTicket>{escaped}</CircleTicket></CircleResult>")
}

/// A `Contact` of type `Circle` for every circle `me` is a member of (not a buddy).
pub(crate) fn circle_contacts(state: &State, me: &str) -> String {
    state
        .circles
        .values()
        .filter(|c| c.member(me).is_some())
        .map(|c| {
            format!(
                "<Contact><contactId>{id}</contactId><contactInfo><contactType>Circle</contactType><passportName>{id}@live.com</passportName><displayName>{}</displayName><isMessengerUser>true</isMessengerUser></contactInfo><fDeleted>false</fDeleted></Contact>",
                escape_lossy(&c.name),
                id = c.id
            )
        })
        .collect()
}

/// The inside of `ABFindContactsPagedResult` for circle `id`'s own book: its members
/// (`Live`, or `LivePending` while invited; `RelationshipState` 3 accepted or 1 invited,
/// `RelationshipRole` 1 admin or 3 member) and its `Me` entry `<id>@live.com`. `None`
/// unless `me` is a member.
pub(crate) fn members_book(state: &State, me: &str, id: &str) -> Option<String> {
    let circle = state.circles.get(id)?;
    circle.member(me)?;
    let members: String = circle
        .members
        .iter()
        .map(|m| {
            let (kind, relation) = match m.state {
                MemberState::Accepted => ("Live", 3),
                MemberState::WaitingResponse => ("LivePending", 1),
            };
            let role = match m.role {
                Role::Admin => 1,
                Role::Member => 3,
            };
            let account = state.accounts.get(&m.email);
            let name = account.map_or_else(
                || m.email.clone(),
                |a| msnp::escape::decode_lossy(&a.name_enc),
            );
            let name = escape_lossy(&name);
            format!(
                "<Contact><contactId>00000000-0000-0000-0000-{:012x}</contactId><contactInfo><contactType>{kind}</contactType><passportName>{}</passportName><displayName>{name}</displayName><isMessengerUser>true</isMessengerUser><NetworkInfoList><NetworkInfo><DomainId>1</DomainId><SourceId>WL</SourceId><DisplayName>{name}</DisplayName><RelationshipType>5</RelationshipType><RelationshipState>{relation}</RelationshipState><RelationshipRole>{role}</RelationshipRole></NetworkInfo></NetworkInfoList></contactInfo><fDeleted>false</fDeleted></Contact>",
                account.map_or(0, |a| a.member_id) & 0xffff_ffff_ffff,
                escape_lossy(&m.email)
            )
        })
        .collect();
    let me_entry = format!(
        "<Contact><contactId>{id}</contactId><contactInfo><contactType>Me</contactType><passportName>{id}@live.com</passportName><displayName>{}</displayName><isMessengerUser>false</isMessengerUser></contactInfo><fDeleted>false</fDeleted></Contact>",
        escape_lossy(&circle.name),
        id = circle.id
    );
    Some(format!(
        "<Contacts>{members}{me_entry}</Contacts><Ab><abId>{}</abId></Ab>",
        circle.id
    ))
}
