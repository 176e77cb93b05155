//! `X-MMS-IM-Format` (MSNP.md §7.1): parsing is lenient, and what we write is a normal
//! form: parse(write(parse(x))) == parse(x), write is stable, and the written value is
//! a single header line that never needs more escaping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::TextFormat;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let format = TextFormat::parse(&value);
    let written = format.to_header_value();
    assert!(!written.is_empty());
    assert!(
        !written.contains(['\r', '\n']),
        "header value with a line break: {written:?}"
    );
    let again = TextFormat::parse(&written);
    assert_eq!(again, format, "through {written:?}");
    assert_eq!(again.to_header_value(), written);
});
