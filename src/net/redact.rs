//! What of a frame may be logged: commands that carry tickets or switchboard cookies
//! (USR, ANS, XFR, RNG) are logged as verb and TrID only, and payloads only by length.

use msnp::Frame;

/// A log-safe one-line rendering of `frame`.
pub(crate) fn frame_for_log(frame: &Frame) -> String {
    let verb = frame.verb.as_str();
    let trid = frame.trid.map(|t| format!(" {t}")).unwrap_or_default();
    let payload = frame
        .payload
        .as_ref()
        .map(|p| format!(" <{} bytes>", p.len()))
        .unwrap_or_default();
    if matches!(verb, "USR" | "ANS" | "XFR" | "RNG" | "QRY") {
        format!("{verb}{trid} <redacted>{payload}")
    } else {
        format!(
            "{verb}{trid} {}{payload}",
            frame.args.iter().collect::<Vec<_>>().join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_and_cookies_are_redacted() {
        let usr = Frame::command(msnp::Verb::USR, 4, ["TWN", "S", "t=secret&p=x"]);
        let line = frame_for_log(&usr);
        assert!(!line.contains("secret"), "{line}");
        let chg = Frame::command(msnp::Verb::CHG, 5, ["NLN", "0"]);
        assert_eq!(frame_for_log(&chg), "CHG 5 NLN 0");
    }
}
