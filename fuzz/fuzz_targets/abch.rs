//! Address-book and offline-message answers (MSNP.md §15.1, §15.5): any body, with any
//! status, reads into memberships, an address book, a new contact id, a Mail-Data list
//! or an offline message, a Store2 answer, or an error, never a panic; what reads merges into a contact
//! list whose entries are keyed by their own address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::abch;

fuzz_target!(|data: &[u8]| {
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let status = 150 + u16::from(status) * 2;
    let memberships = abch::parse_memberships(status, body).unwrap_or_default();
    let book = abch::parse_address_book(status, body).unwrap_or_default();
    let _ = abch::parse_contact_added(status, body);
    let _ = abch::parse_ack(status, body);
    let _ = msnp::oim::parse_mail_data(body);
    if let Ok(message) = msnp::oim::parse_message(status, body) {
        assert!(message.text.len() <= msnp::oim::MAX_OIM_TEXT);
    }
    let _ = msnp::oim::decode_word(body);
    let _ = msnp::oim::parse_metadata(status, body);
    let _ = msnp::oim::store::parse_stored(status, body, u32::from(status));
    let _ = msnp::oim::received_ms(body);
    let list = abch::contact_list(&book, &memberships);
    for (key, contact) in &list.contacts {
        assert_eq!(key, &contact.email);
    }
});
