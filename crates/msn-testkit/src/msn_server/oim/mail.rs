//! What the OIM services write, in Escargot's forms (MSNP.md §15.1): the `Mail-Data`
//! `<MD>` document in its three forms (login, live, `GetMetadata`), the NS `MSG Hotmail`
//! bodies that carry it or report a deletion, and the e-mail style message `GetMessage`
//! returns (`format_oim`, with its fixed headers, US Pacific dates always written
//! `-0800` and its odd `FILETIME`). Only formatting; no state.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use time::{Date, Month, OffsetDateTime};

use super::super::state::OimRecord;
use super::mime::encode_charset;

/// Where a `Mail-Data` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// `text/x-msmsgsinitialmdatanotification` after the first `CHG`: mailbox counters,
    /// quota, every OIM (or `too-large` above 25).
    Login,
    /// `text/x-msmsgsoimnotification` for one OIM just stored: no counters, no `RT`,
    /// folder `.!!OIM`, a space before `?=` in `N`, `<SU> </SU>` after `</M>`.
    Live,
    /// RSI `GetMetadata`: quota and every OIM, no counters.
    Metadata,
}

/// Escargot lists at most this many OIMs inline at login.
const MAX_INLINE: usize = 25;

/// The `<MD>` document (or `too-large`) listing `records`.
pub(crate) fn mail_data(records: &[&OimRecord], listing: Listing) -> String {
    if listing == Listing::Login && records.len() > MAX_INLINE {
        return "too-large".to_owned();
    }
    let live = listing == Listing::Live;
    let mut m = String::new();
    for record in records {
        let oim = &record.oim;
        let rt = if live {
            String::new()
        } else {
            format!("<RT>{}</RT>", iso_utc(oim.stored_ms))
        };
        let folder = if live {
            ".!!OIM"
        } else {
            "00000000-0000-0000-0000-000000000009"
        };
        let name = record
            .name_charset
            .as_deref()
            .map(|charset| encoded_word(&oim.friendly_name, charset, live))
            .unwrap_or_default();
        let su = if live { "<SU> </SU>" } else { "" };
        m.push_str(&format!(
            "<M><T>11</T><S>6</S>{rt}<RS>0</RS><SZ>{}</SZ><E>{}</E><I>{}</I><F>{folder}</F><N>{name}</N></M>{su}",
            message(record).chars().count(),
            oim.sender,
            oim.id
        ));
    }
    let e = if listing == Listing::Login {
        "<E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E>"
    } else {
        ""
    };
    let q = if live {
        ""
    } else {
        "<Q><QTM>409600</QTM><QNM>204800</QNM></Q>"
    };
    format!("<MD>{e}{q}{m}</MD>")
}

/// The body of `MSG Hotmail Hotmail` carrying `mail_data` as `content_type`.
pub(crate) fn ns_body(content_type: &str, mail_data: &str) -> Bytes {
    Bytes::from(format!(
        "MIME-Version: 1.0\r\nContent-Type: {content_type}; charset=UTF-8\r\n\r\nMail-Data: {mail_data}\r\n"
    ))
}

/// The body of `MSG Hotmail Hotmail` telling the deleting endpoint that `count` OIMs
/// went to the trash.
pub(crate) fn deletion_body(count: usize) -> Bytes {
    Bytes::from(format!(
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsactivemailnotification; charset=UTF-8\r\n\r\nSrc-Folder: .!!OIM\r\nDest-Folder: .!!trAsH\r\nMessage-Delta: {count}\r\n"
    ))
}

/// `=?charset?B?…?=` of `name` (Escargot re-encodes every name in base64; the live
/// form has a space before `?=`).
pub(crate) fn encoded_word(name: &str, charset: &str, space: bool) -> String {
    let encoded = STANDARD.encode(encode_charset(name, charset));
    let space = if space { " " } else { "" };
    format!("=?{charset}?B?{encoded}{space}?=")
}

/// The e-mail style message `GetMessage` returns (Escargot `format_oim`).
pub(crate) fn message(record: &OimRecord) -> String {
    let oim = &record.oim;
    let friendly = record
        .name_charset
        .as_deref()
        .map(|charset| format!("{} ", encoded_word(&oim.friendly_name, charset, false)))
        .unwrap_or_default();
    let received = pacific(oim.stored_ms, true);
    let mut out = format!(
        "X-Message-Info: cwRBnLifKNE8dVZlNj6AiX8142B67OTjG9BFMLMyzuui1H4Xx7m3NQ==\n\
         Received: from OIM-SSI02.phx.gbl ([65.54.237.206]) by oim1-f1.hotmail.com with Microsoft SMTPSVC(6.0.3790.211);\n\
         \t {received}\n\
         Received: from mail pickup service by OIM-SSI02.phx.gbl with Microsoft SMTPSVC;\n\
         \t {received}\n\
         From: {friendly}<{}>\n\
         To: {}\n\
         Subject: \n\
         X-OIM-originatingSource: {}\n",
        oim.sender, record.to, record.origin
    )
    .replace('\n', "\r\n");
    if let Some(proxy) = &record.proxy {
        out.push_str(&format!("X-OIMProxy: {proxy}\r\n"));
    }
    if record.headers.is_empty() {
        out.push_str(
            &format!(
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\nX-OIM-Message-Type: OfflineMessage\nX-OIM-Run-Id: {{{}}}",
                oim.run_id
            )
            .replace('\n', "\r\n"),
        );
    } else {
        let lines: Vec<String> = record
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        out.push_str(&lines.join("\r\n"));
    }
    out.push_str(
        &format!(
            "\nMessage-ID: <OIM-SSI02zDv60gxapz00061a8b@OIM-SSI02.phx.gbl>\n\
             X-OriginalArrivalTime: {} FILETIME=[{}]\n\
             Date: {}\n\
             Return-Path: ndr@oim.messenger.msn.com",
            arrival_utc(oim.stored_ms),
            filetime(oim.stored_ms),
            pacific(oim.stored_ms, false)
        )
        .replace('\n', "\r\n"),
    );
    out.push_str("\r\n\r\n");
    out.push_str(&STANDARD.encode(oim.text.as_bytes()));
    out
}

fn utc(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `RT`: ISO 8601 UTC to the second (`2026-11-26T09:14:03Z`).
pub(crate) fn iso_utc(ms: i64) -> String {
    let t = utc(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn short<T: std::fmt::Display>(value: T) -> String {
    value.to_string().chars().take(3).collect()
}

/// `X-OriginalArrivalTime`'s date: `%d %b %Y %H:%M:%S.%f` cut to 25 characters, and
/// ` (UTC)`.
fn arrival_utc(ms: i64) -> String {
    let t = utc(ms);
    let full = format!(
        "{:02} {} {:04} {:02}:{:02}:{:02}.{:06}",
        t.day(),
        short(t.month()),
        t.year(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
    format!("{} (UTC)", full.chars().take(25).collect::<String>())
}

/// Escargot's `_datetime_to_filetime`, quirks included: computed in floating point,
/// the microseconds counted twice, the low double word first and zero padding by
/// `8 % len`.
fn filetime(ms: i64) -> String {
    let micro = ms.rem_euclid(1000) * 1000;
    let seconds = (ms as f64 * 1000.0) / 1_000_000.0;
    let value = ((seconds * 10_000_000.0) + 116_444_736_000_000_000.0) + (micro * 10) as f64;
    let value = value.round() as i64;
    let hex = |n: i64| {
        let digits = format!("{n:x}");
        let pad = 8 % digits.len().max(1);
        format!("{}{digits}", "0".repeat(pad)).to_uppercase()
    };
    format!("{}:{}", hex(value & 0xFFFF_FFFF), hex(value >> 32))
}

/// The time in US Pacific (daylight saving as the tz database has it), written with
/// `-0800` whatever the offset: `Thu, 26 Nov 2026 01:14:03 -0800` (`with_weekday`) or
/// `26 Nov 2026 01:14:03 -0800`.
fn pacific(ms: i64, with_weekday: bool) -> String {
    let at = utc(ms);
    let hours = if daylight_saving(at) { 7 } else { 8 };
    let t = at - time::Duration::hours(hours);
    let weekday = if with_weekday {
        format!("{}, ", short(t.weekday()))
    } else {
        String::new()
    };
    format!(
        "{weekday}{:02} {} {:04} {:02}:{:02}:{:02} -0800",
        t.day(),
        short(t.month()),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether US Pacific time observes daylight saving at `at`: from the second Sunday of
/// March, 2:00 PST, to the first Sunday of November, 2:00 PDT (before 2007: first
/// Sunday of April to last Sunday of October).
fn daylight_saving(at: OffsetDateTime) -> bool {
    let year = at.year();
    let sunday = |month: Month, nth: u8| -> Option<Date> {
        let first = Date::from_calendar_date(year, month, 1).ok()?;
        let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
        first.checked_add(time::Duration::days(
            i64::from(to_sunday) + 7 * (i64::from(nth) - 1),
        ))
    };
    let last_sunday_of_october = || -> Option<Date> {
        let last = Date::from_calendar_date(year, Month::October, 31).ok()?;
        last.checked_sub(time::Duration::days(i64::from(
            last.weekday().number_days_from_sunday(),
        )))
    };
    let (start, end) = if year >= 2007 {
        (sunday(Month::March, 2), sunday(Month::November, 1))
    } else {
        (sunday(Month::April, 1), last_sunday_of_october())
    };
    let (Some(start), Some(end)) = (start, end) else {
        return false;
    };
    let start = start.midnight().assume_utc() + time::Duration::hours(10);
    let end = end.midnight().assume_utc() + time::Duration::hours(9);
    at >= start && at < end
}

#[cfg(test)]
mod tests {
    use super::super::super::state::StoredOim;
    use super::*;

    /// 2026-11-26T09:14:03Z.
    const STORED: i64 = 1_795_684_443_000;

    fn record() -> OimRecord {
        OimRecord {
            oim: StoredOim {
                id: "6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F".to_owned(),
                sender: "alice@example.com".to_owned(),
                friendly_name: "Alice".to_owned(),
                stored_ms: STORED,
                run_id: "3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B".to_owned(),
                sequence: 1,
                text: "Hello Bridge, are you there?".to_owned(),
            },
            to: "bridge@example.com".to_owned(),
            name_charset: Some("utf-8".to_owned()),
            origin: "192.0.2.7".to_owned(),
            proxy: Some("MSNMSGR".to_owned()),
            headers: vec![
                ("MIME-Version".to_owned(), "1.0".to_owned()),
                (
                    "Content-Type".to_owned(),
                    "text/plain; charset=UTF-8".to_owned(),
                ),
                ("Content-Transfer-Encoding".to_owned(), "base64".to_owned()),
                ("X-OIM-Message-Type".to_owned(), "OfflineMessage".to_owned()),
                (
                    "X-OIM-Run-Id".to_owned(),
                    "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}".to_owned(),
                ),
                ("X-OIM-Sequence-Num".to_owned(), "1".to_owned()),
            ],
        }
    }

    #[test]
    fn the_ns_bodies_have_the_sizes_of_section_15_1_1() {
        let login = "<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q><M><T>11</T><S>6</S><RT>2026-11-26T09:14:03Z</RT><RS>0</RS><SZ>987</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>00000000-0000-0000-0000-000000000009</F><N>=?utf-8?B?QWxpY2U=?=</N></M></MD>";
        assert_eq!(
            ns_body("text/x-msmsgsinitialmdatanotification", login).len(),
            407
        );
        let live = "<MD><M><T>11</T><S>6</S><RS>0</RS><SZ>987</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>.!!OIM</F><N>=?utf-8?B?QWxpY2U= ?=</N></M><SU> </SU></MD>";
        assert_eq!(ns_body("text/x-msmsgsoimnotification", live).len(), 266);
        assert_eq!(deletion_body(1).len(), 148);
    }

    #[test]
    fn mail_data_forms() {
        let r = record();
        let size = message(&r).len();
        let login = mail_data(&[&r], Listing::Login);
        assert_eq!(
            login,
            format!(
                "<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q><M><T>11</T><S>6</S><RT>2026-11-26T09:14:03Z</RT><RS>0</RS><SZ>{size}</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>00000000-0000-0000-0000-000000000009</F><N>=?utf-8?B?QWxpY2U=?=</N></M></MD>"
            )
        );
        let live = mail_data(&[&r], Listing::Live);
        assert_eq!(
            live,
            format!(
                "<MD><M><T>11</T><S>6</S><RS>0</RS><SZ>{size}</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>.!!OIM</F><N>=?utf-8?B?QWxpY2U= ?=</N></M><SU> </SU></MD>"
            )
        );
        let meta = mail_data(&[&r], Listing::Metadata);
        assert!(meta.starts_with("<MD><Q><QTM>409600</QTM><QNM>204800</QNM></Q><M>"));
        let many: Vec<&OimRecord> = std::iter::repeat_n(&r, 26).collect();
        assert_eq!(mail_data(&many, Listing::Login), "too-large");
        assert_ne!(mail_data(&many, Listing::Metadata), "too-large");
        let mut nameless = record();
        nameless.name_charset = None;
        assert!(mail_data(&[&nameless], Listing::Login).contains("<N></N>"));
        assert!(message(&nameless).contains("\r\nFrom: <alice@example.com>\r\n"));
    }

    #[test]
    fn the_message_is_escargots_format_oim() {
        let text = message(&record());
        let expected = "X-Message-Info: cwRBnLifKNE8dVZlNj6AiX8142B67OTjG9BFMLMyzuui1H4Xx7m3NQ==\r\n\
            Received: from OIM-SSI02.phx.gbl ([65.54.237.206]) by oim1-f1.hotmail.com with Microsoft SMTPSVC(6.0.3790.211);\r\n\
            \t Thu, 26 Nov 2026 01:14:03 -0800\r\n\
            Received: from mail pickup service by OIM-SSI02.phx.gbl with Microsoft SMTPSVC;\r\n\
            \t Thu, 26 Nov 2026 01:14:03 -0800\r\n\
            From: =?utf-8?B?QWxpY2U=?= <alice@example.com>\r\n\
            To: bridge@example.com\r\n\
            Subject: \r\n\
            X-OIM-originatingSource: 192.0.2.7\r\n\
            X-OIMProxy: MSNMSGR\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=UTF-8\r\n\
            Content-Transfer-Encoding: base64\r\n\
            X-OIM-Message-Type: OfflineMessage\r\n\
            X-OIM-Run-Id: {3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}\r\n\
            X-OIM-Sequence-Num: 1\r\n\
            Message-ID: <OIM-SSI02zDv60gxapz00061a8b@OIM-SSI02.phx.gbl>\r\n\
            X-OriginalArrivalTime: 26 Nov 2026 09:14:03.0000 (UTC) FILETIME=[";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.ends_with(
            "]\r\nDate: 26 Nov 2026 01:14:03 -0800\r\nReturn-Path: ndr@oim.messenger.msn.com\r\n\r\nSGVsbG8gQnJpZGdlLCBhcmUgeW91IHRoZXJlPw=="
        ));
    }

    #[test]
    fn dates_and_filetime() {
        assert_eq!(iso_utc(STORED + 999), "2026-11-26T09:14:03Z");
        assert_eq!(arrival_utc(STORED + 250), "26 Nov 2026 09:14:03.2500 (UTC)");
        // Summer: Pacific daylight time, still written -0800 (§15.1.2 step 4).
        let july = 1_783_069_200_000; // 2026-07-03T09:00:00Z
        assert_eq!(pacific(july, false), "03 Jul 2026 02:00:00 -0800");
        // Values from running Escargot's `_datetime_to_filetime` in Python.
        assert_eq!(filetime(STORED), "7AC7FF80:01DD7D86");
        assert_eq!(filetime(STORED + 250), "7B144AC0:01DD7D86");
    }
}
