//! msnobj (MSNP.md §8.1, §8.4, §10.2): every object `MsnObject::parse` accepts writes
//! XML that parses back to the same object (when it fits `MAX_MSNOBJ_LEN`), and the
//! percent-encoded and base64 `Context` forms round-trip too. Objects built from
//! arbitrary fields round-trip the same way.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use msnp::p2p::MsnObject;
use msnp::p2p::msnobject::MAX_MSNOBJ_LEN;

fn round_trip(obj: &MsnObject) {
    let xml = obj.to_xml();
    if xml.len() > MAX_MSNOBJ_LEN {
        return;
    }
    assert_eq!(MsnObject::parse(&xml).as_ref(), Ok(obj), "xml {xml:?}");
    assert_eq!(
        MsnObject::parse_url_encoded(&obj.to_url_encoded()).as_ref(),
        Ok(obj)
    );
    let _ = (obj.friendly_text(), obj.sha1c_valid());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(obj) = MsnObject::parse(&text) {
            round_trip(&obj);
        }
        let _ = MsnObject::parse_context(&text);
        let _ = MsnObject::parse_url_encoded(&text);
    } else {
        let mut u = Unstructured::new(rest);
        let Ok((creator, size, kind, location, friendly, sha1d, sha1c)) =
            <(String, u64, u32, String, String, String, Option<String>)>::arbitrary(&mut u)
        else {
            return;
        };
        // The writer leaves out what XML cannot carry (documented as lossy): only
        // fields it can write whole are expected back.
        let fields = [&creator, &location, &friendly, &sha1d];
        let writable = fields
            .iter()
            .copied()
            .chain(sha1c.as_ref())
            .all(|f| msnp::xml::escape(f).is_ok());
        if !writable {
            return;
        }
        round_trip(&MsnObject {
            creator,
            size,
            kind,
            location,
            friendly,
            sha1d,
            sha1c,
        });
    }
});
