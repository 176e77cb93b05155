//! The user's circles in the address book (MSNP.md §15.4 step 1, §15.5): the MSNP18
//! login read `ABFindContactsPaged`, which holds the contacts as `ABFindAll` does and,
//! under `CircleResult`, each circle the user belongs to with its name, the user's
//! membership state, and the circle ticket that `USR SHA A` presents. No I/O.

use super::{AB_PATH, AbchError, Scenario, field, request, result};
use crate::auth::{PostRequest, Secret};
use crate::xml::Element;

/// A circle of the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// `00000000-0000-0000-0009-<12 hex>`.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The user's membership is accepted (not an invitation waiting for an answer).
    pub accepted: bool,
}

/// What `CircleResult` holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Circles {
    pub circles: Vec<Circle>,
    /// The circle ticket (XML-unescaped text), for `USR SHA A`.
    pub ticket: Option<String>,
}

/// `ABFindContactsPaged` of the user's own address book with the circles (§15.5).
pub fn find_contacts_paged(base: &str, ticket: &Secret) -> Result<PostRequest, AbchError> {
    request(
        base,
        AB_PATH,
        ticket,
        Scenario::Initial,
        "ABFindContactsPaged",
        "<filterOptions><DeltasOnly>false</DeltasOnly><LastChanged>0001-01-01T00:00:00.0000000-08:00</LastChanged><ContactFilter><IncludeHiddenContacts>true</IncludeHiddenContacts></ContactFilter></filterOptions><abView>MessengerClient8</abView><extendedContent>AB AllGroups CircleResult</extendedContent>",
    )
}

/// Reads the circles of an `ABFindContactsPaged` answer (its contacts are read by
/// [`super::parse_address_book`]). No `CircleResult`: no circles.
pub fn parse_circles(status: u16, body: &str) -> Result<Circles, AbchError> {
    let root = result(status, body)?;
    let Some(found) = root.find("CircleResult") else {
        return Ok(Circles::default());
    };
    let circles = found
        .find_all("CircleInverseInfo")
        .into_iter()
        .filter_map(|info| {
            let content = info.find("Content")?;
            let id = content.find("Handle").and_then(|h| field(h, &["Id"]))?;
            let name = content
                .find("Info")
                .and_then(|i| field(i, &["DisplayName"]))
                .unwrap_or(id);
            let state = info
                .find("CirclePersonalMembership")
                .and_then(|m| field(m, &["State"]));
            Some(Circle {
                id: id.to_ascii_lowercase(),
                name: name.to_owned(),
                accepted: state == Some("Accepted"),
            })
        })
        .collect();
    // The ticket is an XML document: white space around it (a pretty-printed answer)
    // is not part of it, and `USR SHA` must present it byte for byte.
    let ticket = found
        .find("CircleTicket")
        .map(Element::text)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    Ok(Circles { circles, ticket })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circles_their_state_and_the_ticket_are_read() {
        let body = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ABFindContactsPagedResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABFindContactsPagedResult><Contacts/><CircleResult><Circles><CircleInverseInfo><Content><Handle><Id>00000000-0000-0000-0009-5C1E2D3F4A5B</Id></Handle><Info><DisplayName>Book club</DisplayName></Info></Content><PersonalInfo><MembershipInfo><CirclePersonalMembership><Role>Member</Role><State>Accepted</State></CirclePersonalMembership></MembershipInfo></PersonalInfo></CircleInverseInfo><CircleInverseInfo><Content><Handle><Id>00000000-0000-0000-0009-000000000002</Id></Handle><Info><DisplayName>Invited</DisplayName></Info></Content><PersonalInfo><MembershipInfo><CirclePersonalMembership><Role>StatePendingOutbound</Role><State>WaitingResponse</State></CirclePersonalMembership></MembershipInfo></PersonalInfo></CircleInverseInfo></Circles><CircleTicket>
  &lt;?xml version="1.0" encoding="utf-16"?&gt;&lt;SignedTicket/&gt;
</CircleTicket></CircleResult></ABFindContactsPagedResult></ABFindContactsPagedResponse></soap:Body></soap:Envelope>"#;
        let circles = parse_circles(200, body).expect("read");
        assert_eq!(
            circles.circles,
            vec![
                Circle {
                    id: "00000000-0000-0000-0009-5c1e2d3f4a5b".into(),
                    name: "Book club".into(),
                    accepted: true,
                },
                Circle {
                    id: "00000000-0000-0000-0009-000000000002".into(),
                    name: "Invited".into(),
                    accepted: false,
                },
            ]
        );
        assert_eq!(
            circles.ticket.as_deref(),
            Some(r#"<?xml version="1.0" encoding="utf-16"?><SignedTicket/>"#)
        );
        let none = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ABFindContactsPagedResponse/></soap:Body></soap:Envelope>"#;
        assert_eq!(parse_circles(200, none), Ok(Circles::default()));
        let request = find_contacts_paged("http://h", &Secret::new("t=x&p=")).expect("request");
        assert!(
            request
                .body
                .expose()
                .contains("<extendedContent>AB AllGroups CircleResult</extendedContent>")
        );
    }
}
