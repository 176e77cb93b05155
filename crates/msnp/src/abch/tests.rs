//! Tests for `abch.rs`: requests as MSNP.md §15.5 shows them, and responses shaped like
//! Escargot's (`FindMembershipResponse`, `ABFindAllResponse` with its `Me` entry).

use super::*;

const TICKET: &str = "t=ABCDEFGHIJKLMNOPQRST&p=";

fn ticket() -> Secret {
    Secret::new(TICKET)
}

#[test]
fn requests_carry_the_ticket_and_the_action() {
    let req = find_membership("https://login.example", &ticket()).expect("a request");
    assert_eq!(
        req.url,
        "https://login.example/abservice/SharingService.asmx"
    );
    assert!(req.headers.contains(&(
        "SOAPAction".to_owned(),
        "\"http://www.msn.com/webservices/AddressBook/FindMembership\"".to_owned()
    )));
    let body = req.body.expose();
    assert!(body.contains("<TicketToken>t=ABCDEFGHIJKLMNOPQRST&amp;p=</TicketToken>"));
    let root = Element::parse(body).expect("XML");
    assert_eq!(
        root.find("TicketToken").map(Element::text),
        Some(TICKET),
        "the ticket reads back"
    );
    assert_eq!(
        root.find("FindMembership")
            .map(|f| f.find_all("ServiceType").len()),
        Some(5)
    );
    // A full URL keeps its scheme and authority only.
    let req = find_all("http://127.0.0.1:4000/RST.srf", &ticket()).expect("a request");
    assert_eq!(req.url, "http://127.0.0.1:4000/abservice/abservice.asmx");
    let root = Element::parse(req.body.expose()).expect("XML");
    assert_eq!(root.find("deltasOnly").map(Element::text), Some("false"));
    assert_eq!(
        root.find("PartnerScenario").map(Element::text),
        Some("Initial")
    );

    let add = contact_add("h", &ticket(), "dave@example.com").expect("a request");
    let root = Element::parse(add.body.expose()).expect("XML");
    assert_eq!(
        root.find("passportName").map(Element::text),
        Some("dave@example.com")
    );
    assert_eq!(
        root.find("PartnerScenario").map(Element::text),
        Some("ContactSave")
    );
    let block = member("h", &ticket(), true, Role::Block, "x@y.z").expect("a request");
    let root = Element::parse(block.body.expose()).expect("XML");
    assert!(root.find("AddMember").is_some());
    assert_eq!(root.find("MemberRole").map(Element::text), Some("Block"));
    assert_eq!(root.find("PassportName").map(Element::text), Some("x@y.z"));
    let unpend = member("h", &ticket(), false, Role::Pending, "x@y.z").expect("a request");
    let root = Element::parse(unpend.body.expose()).expect("XML");
    assert!(root.find("DeleteMember").is_some());
    assert_eq!(
        root.find("PartnerScenario").map(Element::text),
        Some("ContactMsgrAPI")
    );
    assert_eq!(
        contact_add("h", &ticket(), "a\u{0}b"),
        Err(AbchError::NotXml("the address"))
    );
    // The ticket never shows in Debug.
    assert!(!format!("{add:?}").contains("ABCDEFGHIJ"));
}

fn memberships_response() -> String {
    let member = |role: &str, email: &str| {
        format!(
            "<Member xsi:type=\"PassportMember\"><MembershipId>{role}/1</MembershipId><Type>Passport</Type><State>Accepted</State><Deleted>false</Deleted><Changes /><PassportName>{email}</PassportName><CID>1</CID></Member>"
        )
    };
    let membership = |role: &str, emails: &[&str]| {
        format!(
            "<Membership><MemberRole>{role}</MemberRole><Members>{}</Members><MembershipIsComplete>true</MembershipIsComplete></Membership>",
            emails.iter().map(|e| member(role, e)).collect::<String>()
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <soap:Header><ServiceHeader xmlns="http://www.msn.com/webservices/AddressBook"><Version>15.01.1408.0000</Version></ServiceHeader></soap:Header>
  <soap:Body><FindMembershipResponse xmlns="http://www.msn.com/webservices/AddressBook"><FindMembershipResult><Services><Service><Memberships>
    {}{}{}{}
    <Membership><MemberRole>Allow</MemberRole><Members><Member xsi:type="EmailMember"><Type>Email</Type><State>Accepted</State><Email>Yahoo@Example.net</Email></Member></Members></Membership>
  </Memberships><Info><Handle><Id>1</Id><Type>Messenger</Type><ForeignId /></Handle></Info></Service>
  <Service><Memberships>{}</Memberships><Info><Handle><Id>2</Id><Type>Profile</Type></Handle></Info></Service></Services></FindMembershipResult></FindMembershipResponse></soap:Body>
</soap:Envelope>"#,
        membership("Allow", &["Bob@Example.com", "carol@example.com"]),
        membership("Block", &["mallory@example.com"]),
        membership("Reverse", &["bob@example.com", "carol@example.com"]),
        membership("Pending", &["dave@example.com"]),
        // Another service's roles are not the Messenger lists.
        membership("Block", &["bob@example.com"]),
    )
}

fn contact(
    id: &str,
    kind: &str,
    email: &str,
    name: &str,
    messenger: bool,
    groups: &[&str],
) -> String {
    let groups = if groups.is_empty() {
        String::new()
    } else {
        format!(
            "<groupIds>{}</groupIds>",
            groups
                .iter()
                .map(|g| format!("<guid>{g}</guid>"))
                .collect::<String>()
        )
    };
    format!(
        "<Contact><contactId>{id}</contactId><contactInfo><contactType>{kind}</contactType><quickName>{name}</quickName><passportName>{email}</passportName><IsPassportNameHidden>false</IsPassportNameHidden><displayName>{name}</displayName><puid>0</puid>{groups}<CID>0</CID><isMessengerUser>{messenger}</isMessengerUser></contactInfo><propertiesChanged /><fDeleted>false</fDeleted></Contact>"
    )
}

fn address_book_response() -> String {
    let me = "<Contact><contactId>me-id</contactId><contactInfo><annotations><Annotation><Name>MSN.IM.GTC</Name><Value>1</Value></Annotation><Annotation><Name>MSN.IM.BLP</Name><Value>2</Value></Annotation></annotations><contactType>Me</contactType><passportName>bridge@example.com</passportName><displayName>Matrix Bridge</displayName><isMessengerUser>false</isMessengerUser></contactInfo></Contact>";
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ABFindAllResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABFindAllResult>
<groups><Group><groupId>g-1</groupId><groupInfo><annotations><Annotation><Name>MSN.IM.Display</Name><Value>1</Value></Annotation></annotations><name>Friends &amp; family</name></groupInfo></Group></groups>
<contacts>{}{}{}{}</contacts><ab><abId>00000000-0000-0000-0000-000000000000</abId></ab></ABFindAllResult></ABFindAllResponse></soap:Body></soap:Envelope>"#,
        contact("c-bob", "Regular", "bob@example.com", "Bob", true, &["g-1"]),
        contact(
            "c-carol",
            "Regular",
            "carol@example.com",
            "Carol",
            true,
            &[]
        ),
        contact(
            "c-mail",
            "Regular",
            "mail-only@example.com",
            "Mail",
            false,
            &[]
        ),
        me,
    )
}

#[test]
fn memberships_and_the_address_book_make_the_contact_list() {
    let memberships = parse_memberships(200, &memberships_response()).expect("memberships");
    assert_eq!(memberships.len(), 7, "{memberships:?}");
    let has = |role, address: &str| {
        memberships
            .iter()
            .any(|m| m.role == role && m.address == address)
    };
    assert!(has(Role::Allow, "bob@example.com"));
    assert!(has(Role::Pending, "dave@example.com"));
    assert!(
        !has(Role::Block, "bob@example.com"),
        "only the Messenger service"
    );
    let book = parse_address_book(200, &address_book_response()).expect("address book");
    assert_eq!(book.own_name.as_deref(), Some("Matrix Bridge"));
    assert_eq!(book.privacy.as_deref(), Some("BL"));
    assert_eq!(
        book.groups,
        [Group {
            id: "g-1".into(),
            name: "Friends & family".into()
        }]
    );
    assert_eq!(book.contacts.len(), 3, "Me is not a contact");

    let list = contact_list(&book, &memberships);
    // A contact of another network keeps it.
    let yahoo = list
        .contacts
        .get("yahoo@example.net")
        .expect("the e-mail member");
    assert_eq!(yahoo.network, Some(NETWORK_EMAIL));
    assert_eq!(yahoo.lists, 2);
    let lists = |email: &str| list.contacts.get(email).map(|c| c.lists);
    let (fl, al, bl, rl, pl) = (1, 2, 4, 8, 16);
    assert_eq!(lists("bob@example.com"), Some(fl | al | rl));
    assert_eq!(lists("carol@example.com"), Some(fl | al | rl));
    assert_eq!(lists("mallory@example.com"), Some(bl));
    assert_eq!(lists("dave@example.com"), Some(pl));
    // An address-book entry that is not a messenger contact is on no list.
    assert_eq!(lists("mail-only@example.com"), Some(0));
    let bob = list.contacts.get("bob@example.com").expect("bob");
    assert_eq!(bob.guid.as_deref(), Some("c-bob"));
    assert_eq!(bob.groups, ["g-1"]);
    assert_eq!(bob.friendly_name, "Bob");
    assert_eq!(list.privacy.as_deref(), Some("BL"));
    assert_eq!(list.own_friendly_name.as_deref(), Some("Matrix Bridge"));
}

#[test]
fn faults_and_garbage_are_errors() {
    let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Full sync required.  Details: Delta sync is not supported.</faultstring><detail><errorcode xmlns="http://www.msn.com/webservices/AddressBook">FullSyncRequired</errorcode></detail></soap:Fault></soap:Body></soap:Envelope>"#;
    assert!(matches!(
        parse_address_book(500, fault),
        Err(AbchError::Fault {
            status: 500,
            code: FaultCode::InvalidRequest,
            ..
        })
    ));
    assert_eq!(
        parse_memberships(200, "<html><body>oops"),
        Err(AbchError::Unexpected { status: 200 })
    );
    assert_eq!(
        parse_ack(503, "<soap:Envelope/>"),
        Err(AbchError::Unexpected { status: 503 })
    );
    assert_eq!(
        parse_ack(200, "<soap:Envelope><soap:Body/></soap:Envelope>"),
        Ok(())
    );
    let added = r#"<soap:Envelope><soap:Body><ABContactAddResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABContactAddResult><guid>new-id</guid></ABContactAddResult></ABContactAddResponse></soap:Body></soap:Envelope>"#;
    assert_eq!(parse_contact_added(200, added).as_deref(), Ok("new-id"));
    assert_eq!(
        parse_contact_added(200, "<soap:Envelope/>"),
        Err(AbchError::Unexpected { status: 200 })
    );
}
