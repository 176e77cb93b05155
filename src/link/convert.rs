//! Between MSNP's types and the core's words: statuses, text formats, contacts.

use crate::bridge::formatting::{RichText, Style};
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{Availability, ContactInfo, Emoticon, OwnStatus, PictureRef};
use msnp::message::EmoticonDecl;
use msnp::p2p::MsnObject;
use msnp::{Contact, Effects, List, Rgb, Status, TextFormat};

pub(super) fn availability(status: Status) -> Availability {
    match status {
        Status::Online => Availability::Online,
        Status::Busy => Availability::Busy,
        Status::Idle => Availability::Idle,
        Status::BeRightBack => Availability::BeRightBack,
        Status::Away => Availability::Away,
        Status::OnPhone => Availability::OnThePhone,
        Status::OutToLunch => Availability::OutToLunch,
        Status::Hidden | Status::Offline => Availability::Offline,
    }
}

pub(super) fn own_status(status: OwnStatus) -> Status {
    match status {
        OwnStatus::Online => Status::Online,
        OwnStatus::Away => Status::Away,
        OwnStatus::Hidden => Status::Hidden,
    }
}

pub(super) fn rich_text(text: String, format: Option<&TextFormat>) -> RichText {
    let style = match format {
        None => Style::default(),
        Some(f) => Style {
            bold: f.effects.bold,
            italic: f.effects.italic,
            underline: f.effects.underline,
            strike: f.effects.strikethrough,
            color: f.color.map(|c| (c.r, c.g, c.b)),
            font: f.font.clone(),
        },
    };
    RichText { text, style }
}

pub(super) fn text_format(style: &Style) -> TextFormat {
    TextFormat {
        font: style.font.clone().or_else(|| Some("Segoe UI".to_owned())),
        effects: Effects {
            bold: style.bold,
            italic: style.italic,
            underline: style.underline,
            strikethrough: style.strike,
        },
        color: style.color.map(|(r, g, b)| Rgb { r, g, b }),
        charset: Some("0".to_owned()),
        pitch_family: Some("22".to_owned()),
        right_to_left: false,
    }
}

pub(super) fn contact_info(contact: &Contact) -> ContactInfo {
    ContactInfo {
        address: MsnAddress::from_server(&contact.email),
        name: if contact.friendly_name.is_empty() {
            contact.email.clone()
        } else {
            contact.friendly_name.clone()
        },
        availability: Availability::Offline,
        personal_message: None,
        is_friend: contact.on(List::Forward),
        blocked: contact.on(List::Block),
        picture: None,
        network: contact.network.and_then(network_name),
    }
}

/// The name of a contact's network when it is not MSN itself (MSNP.md §4.5, §5.4).
fn network_name(network: u32) -> Option<String> {
    Some(match network {
        0 | 1 => return None,
        2 => "Office Communicator".into(),
        4 => "phone".into(),
        32 => "Yahoo!".into(),
        other => format!("network {other}"),
    })
}

/// The core's reference to an announced msnobj: its SHA1D, and the XML to fetch it
/// with. `None` for an object that does not parse (it could not be fetched either).
pub(super) fn picture_ref(msnobj: &str) -> Option<PictureRef> {
    match MsnObject::parse(msnobj) {
        Ok(object) => Some(PictureRef {
            hash: object.sha1d,
            locator: msnobj.to_owned(),
        }),
        Err(e) => {
            tracing::debug!(error = %e, "unusable msnobj ignored");
            None
        }
    }
}

/// The emoticons of a declaration that `text` uses.
pub(super) fn used_emoticons(declared: &[EmoticonDecl], text: &str) -> Vec<Emoticon> {
    declared
        .iter()
        .filter(|d| !d.shortcut.is_empty() && text.contains(d.shortcut.as_str()))
        .filter_map(|d| {
            Some(Emoticon {
                shortcut: d.shortcut.clone(),
                picture: picture_ref(&d.msnobj)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_of_other_networks_are_named_as_such() {
        let mut c = Contact {
            email: "y@example.net".into(),
            network: Some(32),
            ..Contact::default()
        };
        assert_eq!(contact_info(&c).network.as_deref(), Some("Yahoo!"));
        c.network = Some(1);
        assert_eq!(contact_info(&c).network, None);
        c.network = None;
        assert_eq!(contact_info(&c).network, None);
    }

    #[test]
    fn formats_round_trip_through_styles() {
        let style = Style {
            bold: true,
            italic: false,
            underline: true,
            strike: true,
            color: Some((1, 2, 3)),
            font: Some("Arial".into()),
        };
        let back = rich_text("x".into(), Some(&text_format(&style)));
        assert_eq!(back.style, style);
        assert_eq!(rich_text("y".into(), None).style, Style::default());
    }

    #[test]
    fn only_used_and_readable_emoticons_are_kept() {
        let object = MsnObject::for_data("bob@example.com", 2, "0", "", b"GIF89a..");
        let decl = |shortcut: &str, msnobj: String| EmoticonDecl {
            shortcut: shortcut.into(),
            msnobj,
        };
        let declared = [
            decl("(cat)", object.to_xml()),
            decl("(dog)", object.to_xml()),
            decl("(bad)", "<msnobj Size=\"x\"".into()),
            decl("", object.to_xml()),
        ];
        let used = used_emoticons(&declared, "a (cat) and a (bad) one");
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].shortcut, "(cat)");
        assert_eq!(used[0].picture.hash, object.sha1d);
        assert_eq!(used[0].picture.locator, object.to_xml());
    }

    #[test]
    fn hidden_contacts_look_offline() {
        assert_eq!(availability(Status::Hidden), Availability::Offline);
        assert_eq!(availability(Status::OutToLunch), Availability::OutToLunch);
        assert_eq!(own_status(OwnStatus::Hidden), Status::Hidden);
    }
}
