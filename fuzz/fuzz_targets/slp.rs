//! MSNSLP (MSNP.md §10.1): every message `SlpMessage::parse` accepts re-encodes to text
//! that parses back to the same message, and encoding is stable after one round.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::p2p::SlpMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = SlpMessage::parse(data) else {
        return;
    };
    let wire = msg.encode();
    let again = SlpMessage::parse(&wire).unwrap_or_else(|e| {
        panic!(
            "re-parse of {:?} failed: {e}",
            String::from_utf8_lossy(&wire)
        )
    });
    assert_eq!(again, msg, "wire {:?}", String::from_utf8_lossy(&wire));
    assert_eq!(again.encode(), wire);
    // Accessors never panic.
    let _ = (msg.session_id(), msg.app_id(), msg.method(), msg.status());
});
