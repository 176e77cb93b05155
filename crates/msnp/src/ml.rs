//! The `<ml>` membership documents of `ADL`, `RML` and `FQY` (MSNP13+, MSNP.md §4.5):
//! building the client's (split so that no payload passes [`ML_SPLIT`] bytes, one `<d>`
//! per domain, never an empty one) and reading the server's (someone added or removed
//! the user: `ADL 0 len` / `RML 0 len`).
//!
//! Owns only the document format; which contacts go in it is the caller's. No I/O.

use std::collections::BTreeMap;

use crate::xml::{self, Element};

/// Where the client splits its `ADL`/`RML` payloads (MSP31 splits at 7300 bytes; the
/// servers refuse much larger ones).
pub const ML_SPLIT: usize = 7300;

/// The list bits an `ADL`/`RML` from a client may carry: forward, allow, block (§4.1).
/// Reverse and pending are the server's; Escargot answers them with `241` and a
/// disconnect.
pub const CLIENT_LIST_BITS: u8 = 1 | 2 | 4;

/// The network id of Windows Live (Passport) accounts.
pub const NETWORK_PASSPORT: u32 = 1;

/// One address in an `<ml>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlEntry {
    /// `local@domain`, as given (the server's case is kept).
    pub address: String,
    /// List bits (§4.1).
    pub lists: u8,
    /// Network id (`t=`; 1 when absent).
    pub network: u32,
    /// Friendly name (`f=`, only in the server's documents, percent-encoded there).
    pub friendly: Option<String>,
}

/// Why an `<ml>` document cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MlError {
    /// An address without exactly one `@` between a non-empty local part and domain.
    #[error("{0:?} is not an address an ml document can carry")]
    BadAddress(String),
    /// One address is larger than a payload may be.
    #[error("an address does not fit in one ml payload")]
    TooLong,
    /// The server's document is not XML or not an `<ml>`.
    #[error("not an ml document: {0}")]
    NotMl(String),
}

fn split_address(address: &str) -> Result<(&str, &str), MlError> {
    match address.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok((local, domain))
        }
        _ => Err(MlError::BadAddress(address.to_owned())),
    }
}

fn escaped(text: &str) -> Result<String, MlError> {
    xml::escape(text).map_err(|_| MlError::BadAddress(text.to_owned()))
}

/// Builds `ADL`/`RML` payloads for `entries` (list bits other than
/// [`CLIENT_LIST_BITS`] are dropped; an entry left with none is left out). `initial`
/// marks the first `ADL` after login (`<ml l="1">`). Each payload is at most
/// [`ML_SPLIT`] bytes; no entries give no payload.
pub fn build(entries: &[MlEntry], initial: bool) -> Result<Vec<String>, MlError> {
    let mut by_domain: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for entry in entries {
        let lists = entry.lists & CLIENT_LIST_BITS;
        if lists == 0 {
            continue;
        }
        let (local, domain) = split_address(&entry.address)?;
        by_domain.entry(domain).or_default().push(format!(
            "<c n=\"{}\" l=\"{lists}\" t=\"{}\"/>",
            escaped(local)?,
            entry.network
        ));
    }
    let open = if initial { "<ml l=\"1\">" } else { "<ml>" };
    let (close, d_close) = ("</ml>", "</d>");
    let mut payloads = Vec::new();
    // The current payload's domains and contacts, and whether its last <d> is open.
    let mut body = String::new();
    let mut open_domain: Option<&str> = None;
    for (domain, contacts) in by_domain {
        let d_open = format!("<d n=\"{}\">", escaped(domain)?);
        for contact in contacts {
            if open.len() + d_open.len() + contact.len() + d_close.len() + close.len() > ML_SPLIT {
                return Err(MlError::TooLong);
            }
            let grows_by = match open_domain {
                Some(d) if d == domain => contact.len(),
                Some(_) => d_close.len() + d_open.len() + contact.len(),
                None => d_open.len() + contact.len(),
            };
            if open.len() + body.len() + grows_by + d_close.len() + close.len() > ML_SPLIT {
                body.push_str(d_close);
                payloads.push(format!("{open}{body}{close}"));
                body.clear();
                open_domain = None;
            }
            if open_domain != Some(domain) {
                if open_domain.is_some() {
                    body.push_str(d_close);
                }
                body.push_str(&d_open);
                open_domain = Some(domain);
            }
            body.push_str(&contact);
        }
    }
    if open_domain.is_some() {
        body.push_str(d_close);
        payloads.push(format!("{open}{body}{close}"));
    }
    Ok(payloads)
}

/// Reads a server's `ADL`/`RML` document. Phone entries (`<t>`) and contacts without
/// a name or domain are skipped.
pub fn parse(payload: &str) -> Result<Vec<MlEntry>, MlError> {
    let root = Element::parse(payload).map_err(|e| MlError::NotMl(e.to_string()))?;
    if root.name != "ml" {
        return Err(MlError::NotMl(format!("the root is <{}>", root.name)));
    }
    let mut entries = Vec::new();
    for domain in root.children_named("d") {
        let Some(d) = domain.attr("n").filter(|d| !d.is_empty()) else {
            continue;
        };
        for contact in domain.children_named("c") {
            let Some(local) = contact.attr("n").filter(|n| !n.is_empty()) else {
                continue;
            };
            entries.push(MlEntry {
                address: format!("{local}@{d}"),
                lists: contact
                    .attr("l")
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0),
                network: contact
                    .attr("t")
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(NETWORK_PASSPORT),
                friendly: contact.attr("f").map(str::to_owned),
            });
        }
    }
    Ok(entries)
}

/// The `FQY` payload asking for the network of `address` (§4.5).
pub fn fqy(address: &str) -> Result<String, MlError> {
    let (local, domain) = split_address(address)?;
    Ok(format!(
        "<ml><d n=\"{}\"><c n=\"{}\"/></d></ml>",
        escaped(domain)?,
        escaped(local)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, lists: u8) -> MlEntry {
        MlEntry {
            address: address.into(),
            lists,
            network: NETWORK_PASSPORT,
            friendly: None,
        }
    }

    #[test]
    fn the_initial_adl_matches_section_4_5() {
        let payloads = build(
            &[entry("bob@example.com", 3), entry("carol@example.com", 1)],
            true,
        );
        assert_eq!(
            payloads,
            Ok(vec![
                r#"<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/><c n="carol" l="1" t="1"/></d></ml>"#
                    .to_owned()
            ])
        );
        // §4.5: adding one contact later, 57 bytes.
        let add = build(&[entry("dave@example.com", 1)], false).expect("built");
        assert_eq!(
            add,
            [r#"<ml><d n="example.com"><c n="dave" l="1" t="1"/></d></ml>"#]
        );
        assert_eq!(add[0].len(), 57);
        assert_eq!(
            fqy("dave@example.com").as_deref(),
            Ok(r#"<ml><d n="example.com"><c n="dave"/></d></ml>"#)
        );
    }

    #[test]
    fn server_lists_and_empty_entries_are_left_out() {
        // Reverse and pending bits are the server's; an entry with nothing left goes.
        let payloads = build(&[entry("rl@example.com", 8), entry("x@y.z", 8 | 2)], false);
        assert_eq!(
            payloads,
            Ok(vec![
                r#"<ml><d n="y.z"><c n="x" l="2" t="1"/></d></ml>"#.to_owned()
            ])
        );
        assert_eq!(build(&[], true), Ok(vec![]));
        assert_eq!(
            build(&[entry("no-domain", 1)], false),
            Err(MlError::BadAddress("no-domain".into()))
        );
        assert_eq!(
            build(&[entry(&format!("{}@x.y", "a".repeat(ML_SPLIT)), 1)], false),
            Err(MlError::TooLong)
        );
    }

    #[test]
    fn a_long_list_is_split_and_every_contact_kept_once() {
        let entries: Vec<MlEntry> = (0..1500)
            .map(|i| entry(&format!("contact{i:04}@domain{}.example", i % 7), 3))
            .collect();
        let payloads = build(&entries, true).expect("built");
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= ML_SPLIT, "{}", payload.len());
            assert!(payload.starts_with("<ml l=\"1\"><d n="));
            assert!(!payload.contains("<d n=\"\">") && !payload.contains("\"></d>"));
            seen.extend(parse(payload).expect("reads back"));
        }
        seen.sort_by(|a, b| a.address.cmp(&b.address));
        let mut expected = entries.clone();
        expected.sort_by(|a, b| a.address.cmp(&b.address));
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_servers_documents_are_read() {
        let added =
            parse(r#"<ml><d n="example.com"><c n="dave" l="8" t="1" f="Dave%20D"/></d></ml>"#);
        assert_eq!(
            added,
            Ok(vec![MlEntry {
                address: "dave@example.com".into(),
                lists: 8,
                network: 1,
                friendly: Some("Dave%20D".into()),
            }])
        );
        // Escargot's older form without f=, a phone entry, a nameless contact.
        let mixed = parse(
            r#"<ml><d n="x.org"><c n="a" l="16"/><c l="1"/></d><t><c n="tel:123"/></t><d><c n="b"/></d></ml>"#,
        )
        .expect("read");
        assert_eq!(mixed, [entry("a@x.org", 16)]);
        assert!(matches!(parse("<html/>"), Err(MlError::NotMl(_))));
        assert!(matches!(parse("<ml><d>"), Err(MlError::NotMl(_))));
    }
}
