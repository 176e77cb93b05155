//! `<ml>` documents (MSNP.md §4.5): any server document reads into entries or an error,
//! never a panic; what the client may send of them builds payloads within `ML_SPLIT`
//! that read back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::ml::{self, CLIENT_LIST_BITS, ML_SPLIT};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(entries) = ml::parse(text) else {
        return;
    };
    let mut sendable: Vec<ml::MlEntry> = entries
        .into_iter()
        .filter(|e| e.lists & CLIENT_LIST_BITS != 0)
        .map(|mut e| {
            e.lists &= CLIENT_LIST_BITS;
            e.friendly = None;
            e
        })
        .collect();
    let Ok(payloads) = ml::build(&sendable, true) else {
        return;
    };
    let mut read = Vec::new();
    for payload in &payloads {
        assert!(payload.len() <= ML_SPLIT);
        read.extend(ml::parse(payload).expect("our payload reads back"));
    }
    let key = |e: &ml::MlEntry| (e.address.clone(), e.lists, e.network);
    sendable.sort_by_key(key);
    read.sort_by_key(key);
    assert_eq!(read, sendable);
});
