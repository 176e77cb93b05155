//! Parsing the body of `PUT /_matrix/app/v1/transactions/{txnId}` into the core's events.
//!
//! Owns: the wire shapes of timeline events and EDUs, reading ephemeral events from both the
//! stable `ephemeral` key and the legacy `de.sorunome.msc2409.ephemeral` key (deduplicated
//! when a homeserver sends both), and dropping echoes of the bridge's own bot and puppets.
//! Each event is parsed on its own: a malformed one is logged and skipped, never failing
//! the batch.

use std::collections::HashSet;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::bridge::{MatrixEvent, Media, Membership, MessageKind, Unbridgeable};

/// Why a whole transaction body was refused (its events are never looked at).
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body is not a transaction: {0}")]
    BadShape(#[source] serde_json::Error),
}

/// Who counts as "us": the bot and every user in the puppet namespace.
#[derive(Clone, Debug)]
pub struct EchoFilter {
    bot: String,
    puppets: Regex,
}

impl EchoFilter {
    /// `puppet_namespace` is the registration's regex for puppets (anchored here).
    pub fn new(bot: &str, puppet_namespace: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            bot: bot.to_owned(),
            puppets: Regex::new(&format!("^(?:{puppet_namespace})$"))?,
        })
    }

    /// Whether `user_id` is the bridge's own bot or one of its puppets.
    pub fn is_ours(&self, user_id: &str) -> bool {
        user_id == self.bot || self.puppets.is_match(user_id)
    }
}

/// The body of a transaction, its events still raw.
#[derive(Deserialize)]
pub struct Body {
    #[serde(default)]
    events: Vec<Value>,
    #[serde(default)]
    ephemeral: Option<Vec<Value>>,
    #[serde(default, rename = "de.sorunome.msc2409.ephemeral")]
    legacy_ephemeral: Option<Vec<Value>>,
}

/// What came out of one transaction: the events to queue and how many were skipped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// With the transaction ID, what identifies this transaction (see [`content_key`]).
    pub content_key: String,
    pub events: Vec<MatrixEvent>,
    pub malformed: usize,
    pub echoes: usize,
    pub ignored: usize,
}

/// Parses a transaction body.
pub fn parse_transaction(body: &[u8], filter: &EchoFilter) -> Result<Parsed, TransactionError> {
    let value: Value = serde_json::from_slice(body).map_err(TransactionError::NotJson)?;
    let body: Body = serde_json::from_value(value).map_err(TransactionError::BadShape)?;
    let mut parsed = Parsed {
        content_key: content_key(&body),
        ..Parsed::default()
    };
    for raw in &body.events {
        classify(&mut parsed, parse_timeline(raw), filter);
    }
    let mut seen = HashSet::new();
    let ephemeral = body
        .ephemeral
        .iter()
        .flatten()
        .chain(body.legacy_ephemeral.iter().flatten());
    for raw in ephemeral {
        // Synapse puts the same EDU under both keys when both are registered.
        if !seen.insert(raw.to_string()) {
            continue;
        }
        classify(&mut parsed, parse_ephemeral(raw), filter);
    }
    Ok(parsed)
}

/// A digest naming what a transaction carries. Transaction IDs alone do not identify a
/// transaction: Synapse numbers them from the highest one it still stores, and deletes
/// acknowledged ones, so after it restarts the numbers begin again at 1. A genuine retry
/// carries the same timeline events (after a Synapse restart without the ephemeral ones,
/// which it does not store), so the key is the digest of the timeline event IDs; for a
/// transaction with only ephemeral events, of those events.
pub fn content_key(body: &Body) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    if body.events.is_empty() {
        for raw in body
            .ephemeral
            .iter()
            .flatten()
            .chain(body.legacy_ephemeral.iter().flatten())
        {
            hash.update(raw.to_string().as_bytes());
            hash.update(b"\n");
        }
    } else {
        for raw in &body.events {
            match raw.get("event_id").and_then(Value::as_str) {
                Some(id) => hash.update(id.as_bytes()),
                None => hash.update(raw.to_string().as_bytes()),
            }
            hash.update(b"\n");
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

enum Outcome {
    Event(MatrixEvent),
    /// A well-formed event the core has no use for (yet).
    Ignored(&'static str),
    Malformed(String),
}

fn classify(parsed: &mut Parsed, outcome: Outcome, filter: &EchoFilter) {
    match outcome {
        Outcome::Event(event) => match strip_echo(event, filter) {
            Some(event) => parsed.events.push(event),
            None => parsed.echoes += 1,
        },
        Outcome::Ignored(kind) => {
            tracing::trace!(kind, "event type not bridged");
            parsed.ignored += 1;
        }
        Outcome::Malformed(why) => {
            tracing::warn!(reason = %why, "skipping a malformed event");
            parsed.malformed += 1;
        }
    }
}

/// Drops what the bridge itself caused; keeps invites *to* the bot from real users.
fn strip_echo(event: MatrixEvent, filter: &EchoFilter) -> Option<MatrixEvent> {
    match event {
        MatrixEvent::Message { ref sender, .. }
        | MatrixEvent::Membership { ref sender, .. }
        | MatrixEvent::RoomNamed { ref sender, .. }
            if filter.is_ours(sender.as_str()) =>
        {
            None
        }
        MatrixEvent::Typing { room_id, user_ids } => {
            let user_ids = user_ids
                .into_iter()
                .filter(|u| !filter.is_ours(u.as_str()))
                .collect();
            Some(MatrixEvent::Typing { room_id, user_ids })
        }
        MatrixEvent::Receipt { ref user_id, .. } | MatrixEvent::Presence { ref user_id, .. }
            if filter.is_ours(user_id.as_str()) =>
        {
            None
        }
        other => Some(other),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key:?}"))
}

/// A Matrix ID (room, event or user) in `v[key]`, checked once here.
fn id_field<T>(v: &Value, key: &str) -> Result<T, String>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    parse_id(str_field(v, key)?, key)
}

fn parse_id<T>(text: &str, what: &str) -> Result<T, String>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    T::try_from(text.to_owned()).map_err(|e| format!("{what} {text:?} is not a valid ID: {e}"))
}

fn parse_timeline(raw: &Value) -> Outcome {
    let result = (|| -> Result<Outcome, String> {
        let kind = str_field(raw, "type")?;
        let content = raw
            .get("content")
            .filter(|c| c.is_object())
            .ok_or("missing content")?;
        let room_id = id_field(raw, "room_id")?;
        let event_id = id_field(raw, "event_id")?;
        let sender = id_field(raw, "sender")?;
        match kind {
            "m.room.redaction" | "m.reaction" => Ok(Outcome::Event(MatrixEvent::Unbridgeable {
                room_id,
                event_id,
                sender,
                what: if kind == "m.reaction" {
                    Unbridgeable::Reaction
                } else {
                    Unbridgeable::Redaction
                },
            })),
            "m.room.message" => {
                // An edit: MSN has none, so the corrected text goes as a new line marked
                // with `* `, the fallback Matrix itself uses.
                let edited = content
                    .get("m.relates_to")
                    .and_then(|r| r.get("rel_type"))
                    .and_then(Value::as_str)
                    == Some("m.replace");
                let content = match content.get("m.new_content").filter(|c| c.is_object()) {
                    Some(new) if edited => new,
                    _ => content,
                };
                let Some(body) = content.get("body").and_then(Value::as_str) else {
                    // A redacted message has empty content: nothing to bridge.
                    return Ok(Outcome::Ignored("m.room.message without body"));
                };
                if content.get(super::DOUBLE_PUPPET_KEY).is_some() {
                    // Sent by a bridge as the user (from MSN): not written in Matrix.
                    return Ok(Outcome::Ignored("a double-puppeted echo"));
                }
                let kind = match content.get("msgtype").and_then(Value::as_str) {
                    Some(msgtype) => MessageKind::from_msgtype(msgtype),
                    None => return Err("m.room.message without msgtype".into()),
                };
                let html = (content.get("format").and_then(Value::as_str)
                    == Some("org.matrix.custom.html"))
                .then(|| content.get("formatted_body").and_then(Value::as_str))
                .flatten()
                .map(str::to_owned);
                let media = content.get("url").and_then(Value::as_str).map(|url| Media {
                    url: url.to_owned(),
                    filename: content
                        .get("filename")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    size: content
                        .get("info")
                        .and_then(|info| info.get("size"))
                        .and_then(Value::as_u64),
                });
                let (body, html) = if edited {
                    (format!("* {body}"), html.map(|h| format!("* {h}")))
                } else {
                    (body.to_owned(), html)
                };
                Ok(Outcome::Event(MatrixEvent::Message {
                    room_id,
                    event_id,
                    sender,
                    kind,
                    body,
                    html,
                    media,
                }))
            }
            "m.room.name" => Ok(Outcome::Event(MatrixEvent::RoomNamed {
                room_id,
                event_id,
                sender,
                name: content
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            })),
            "m.room.member" => {
                let target = id_field(raw, "state_key")?;
                let membership = match str_field(content, "membership")? {
                    "invite" => Membership::Invite,
                    "join" => Membership::Join,
                    "leave" => Membership::Leave,
                    "ban" => Membership::Ban,
                    "knock" => Membership::Knock,
                    other => Membership::Other(other.to_owned()),
                };
                let is_direct = content
                    .get("is_direct")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let text = |key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
                let displayname = text("displayname");
                let avatar_url = text("avatar_url").filter(|u| u.starts_with("mxc://"));
                Ok(Outcome::Event(MatrixEvent::Membership {
                    room_id,
                    event_id,
                    sender,
                    target,
                    membership,
                    is_direct,
                    displayname,
                    avatar_url,
                }))
            }
            _ => Ok(Outcome::Ignored("timeline event")),
        }
    })();
    result.unwrap_or_else(Outcome::Malformed)
}

fn parse_ephemeral(raw: &Value) -> Outcome {
    let result = (|| -> Result<Outcome, String> {
        let kind = str_field(raw, "type")?;
        let content = raw
            .get("content")
            .filter(|c| c.is_object())
            .ok_or("missing content")?;
        match kind {
            "m.typing" => {
                let room_id = id_field(raw, "room_id")?;
                let user_ids = content
                    .get("user_ids")
                    .and_then(Value::as_array)
                    .ok_or("m.typing without user_ids")?
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|user| parse_id(user, "typing user").ok())
                    .collect();
                Ok(Outcome::Event(MatrixEvent::Typing { room_id, user_ids }))
            }
            "m.receipt" => {
                let room_id: ruma::OwnedRoomId = id_field(raw, "room_id")?;
                // {"$event": {"m.read": {"@user": {...}}}}: the core wants one receipt; take
                // the first read receipt (Synapse sends one per EDU).
                let map = content
                    .as_object()
                    .ok_or("m.receipt content is not an object")?;
                for (event_id, by_type) in map {
                    if let Some(users) = by_type.get("m.read").and_then(Value::as_object)
                        && let Some(user_id) = users.keys().next()
                    {
                        return Ok(Outcome::Event(MatrixEvent::Receipt {
                            room_id,
                            event_id: parse_id(event_id, "receipt event")?,
                            user_id: parse_id(user_id, "receipt user")?,
                        }));
                    }
                }
                Ok(Outcome::Ignored("m.receipt without m.read"))
            }
            "m.presence" => Ok(Outcome::Event(MatrixEvent::Presence {
                user_id: id_field(raw, "sender")?,
                presence: str_field(content, "presence")?.to_owned(),
                status_msg: content
                    .get("status_msg")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })),
            _ => Ok(Outcome::Ignored("ephemeral event")),
        }
    })();
    result.unwrap_or_else(Outcome::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> EchoFilter {
        EchoFilter::new("@msnbot:localhost", "@msn_.+:localhost").expect("regex")
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/transactions/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    #[test]
    fn malformed_event_is_skipped_not_fatal() {
        let parsed = parse_transaction(&fixture("malformed.json"), &filter()).expect("parses");
        assert_eq!(parsed.malformed, 3, "{parsed:?}");
        assert_eq!(parsed.events.len(), 1);
        assert!(
            matches!(&parsed.events[0], MatrixEvent::Message { body, .. } if body == "still here")
        );
    }

    #[test]
    fn both_ephemeral_keys_are_read_and_deduplicated() {
        let parsed = parse_transaction(&fixture("ephemeral_both.json"), &filter()).expect("parses");
        let typing: Vec<_> = parsed
            .events
            .iter()
            .filter(|e| matches!(e, MatrixEvent::Typing { .. }))
            .collect();
        assert_eq!(typing.len(), 1, "{parsed:?}");
        // The presence EDU only under the legacy key is still read.
        assert!(parsed.events.iter().any(
            |e| matches!(e, MatrixEvent::Presence { user_id, .. } if user_id == "@bob:localhost")
        ));
        assert!(
            parsed
                .events
                .iter()
                .any(|e| matches!(e, MatrixEvent::Receipt { event_id, .. } if event_id == "$ev1"))
        );
    }

    #[test]
    fn legacy_only_ephemeral_is_read() {
        let body = br#"{"events":[],"de.sorunome.msc2409.ephemeral":[{"type":"m.typing","room_id":"!r","content":{"user_ids":["@bob:localhost"]}}]}"#;
        let parsed = parse_transaction(body, &filter()).expect("parses");
        assert_eq!(
            parsed.events,
            vec![MatrixEvent::Typing {
                room_id: ruma::room_id!("!r").to_owned(),
                user_ids: vec![ruma::user_id!("@bob:localhost").to_owned()]
            }]
        );
    }

    #[test]
    fn echoes_are_dropped_but_invites_to_the_bot_kept() {
        let parsed = parse_transaction(&fixture("echoes.json"), &filter()).expect("parses");
        assert_eq!(parsed.echoes, 4, "{parsed:?}");
        assert_eq!(parsed.events.len(), 2, "{parsed:?}");
        assert!(
            matches!(&parsed.events[0], MatrixEvent::Membership { target, membership: Membership::Invite, is_direct: true, .. } if target == "@msnbot:localhost")
        );
        assert!(
            matches!(&parsed.events[1], MatrixEvent::Typing { user_ids, .. } if user_ids == &[ruma::user_id!("@bob:localhost")])
        );
    }

    /// IDs are checked once, here: an event whose room, event or user ID is not one is
    /// malformed (skipped), and a typing user that is not a user ID is left out.
    #[test]
    fn invalid_ids_make_an_event_malformed() {
        let body = br#"{"events":[
            {"type":"m.room.message","room_id":"not-a-room","event_id":"$e","sender":"@bob:localhost","content":{"msgtype":"m.text","body":"a"}},
            {"type":"m.room.message","room_id":"!r","event_id":"e","sender":"@bob:localhost","content":{"msgtype":"m.text","body":"b"}},
            {"type":"m.room.message","room_id":"!r","event_id":"$e","sender":"bob","content":{"msgtype":"m.text","body":"c"}},
            {"type":"m.room.message","room_id":"!r","event_id":"$f","sender":"@bob:localhost","content":{"msgtype":"m.text","body":"d"}}
        ],"ephemeral":[{"type":"m.typing","room_id":"!r","content":{"user_ids":["@bob:localhost","nobody"]}}]}"#;
        let parsed = parse_transaction(body, &filter()).expect("parses");
        assert_eq!(parsed.malformed, 3, "{parsed:?}");
        assert!(
            matches!(&parsed.events[0], MatrixEvent::Message { body, .. } if body == "d"),
            "{parsed:?}"
        );
        assert!(
            matches!(&parsed.events[1], MatrixEvent::Typing { user_ids, .. } if user_ids == &[ruma::user_id!("@bob:localhost")])
        );
    }

    #[test]
    fn not_json_and_wrong_shape_are_errors() {
        assert!(matches!(
            parse_transaction(b"{", &filter()),
            Err(TransactionError::NotJson(_))
        ));
        assert!(matches!(
            parse_transaction(br#"{"events": 5}"#, &filter()),
            Err(TransactionError::BadShape(_))
        ));
        let empty = parse_transaction(b"{}", &filter()).expect("empty is fine");
        assert!(empty.events.is_empty() && empty.malformed == 0);
    }

    #[test]
    fn content_key_follows_timeline_event_ids() {
        let key = |body: &[u8]| {
            parse_transaction(body, &filter())
                .expect("parses")
                .content_key
        };
        let a = key(br#"{"events":[{"event_id":"$a"}],"ephemeral":[{"type":"m.typing"}]}"#);
        // A retry after a Synapse restart: same events, ephemeral ones lost.
        assert_eq!(a, key(br#"{"events":[{"event_id":"$a"}]}"#));
        assert_ne!(a, key(br#"{"events":[{"event_id":"$b"}]}"#));
        let e1 =
            key(br#"{"events":[],"ephemeral":[{"type":"m.typing","content":{"user_ids":[]}}]}"#);
        let e2 = key(
            br#"{"events":[],"ephemeral":[{"type":"m.typing","content":{"user_ids":["@b:x"]}}]}"#,
        );
        assert_ne!(e1, e2);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn message_fields_are_read() {
        let body = br#"{"events":[{"type":"m.room.message","room_id":"!abc","event_id":"$e","sender":"@bob:localhost","content":{"msgtype":"m.emote","body":"waves","format":"org.matrix.custom.html","formatted_body":"<b>waves</b>"}}]}"#;
        let parsed = parse_transaction(body, &filter()).expect("parses");
        assert_eq!(
            parsed.events,
            vec![MatrixEvent::Message {
                room_id: ruma::room_id!("!abc").to_owned(),
                event_id: ruma::event_id!("$e").to_owned(),
                sender: ruma::user_id!("@bob:localhost").to_owned(),
                kind: MessageKind::Emote,
                body: "waves".into(),
                html: Some("<b>waves</b>".into()),
                media: None,
            }]
        );
    }

    #[test]
    fn a_double_puppeted_echo_is_not_taken_for_the_user_writing() {
        let body = serde_json::json!({"events": [{
            "type": "m.room.message", "room_id": "!r:localhost", "event_id": "$e",
            "sender": "@user:localhost",
            "content": {"msgtype": "m.text", "body": "from Messenger",
                        "fi.mau.double_puppet_source": "matrix-msn"}
        }]});
        let parsed = parse_transaction(&serde_json::to_vec(&body).expect("json"), &filter())
            .expect("parses");
        assert!(parsed.events.is_empty(), "{parsed:?}");
        assert_eq!(parsed.malformed, 0);
    }

    #[test]
    fn edits_go_as_marked_corrections_and_redactions_and_reactions_are_named() {
        let body = serde_json::json!({"events": [
            {"type": "m.room.message", "room_id": "!r", "event_id": "$edit",
             "sender": "@user:localhost",
             "content": {"msgtype": "m.text", "body": " * teh typo fixed",
                         "m.new_content": {"msgtype": "m.text", "body": "the typo fixed",
                                           "format": "org.matrix.custom.html",
                                           "formatted_body": "the <b>typo</b> fixed"},
                         "m.relates_to": {"rel_type": "m.replace", "event_id": "$first"}}},
            {"type": "m.room.redaction", "room_id": "!r", "event_id": "$red",
             "sender": "@user:localhost", "redacts": "$first", "content": {}},
            {"type": "m.reaction", "room_id": "!r", "event_id": "$re",
             "sender": "@user:localhost",
             "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$first", "key": "👍"}}}
        ]});
        let parsed = parse_transaction(&serde_json::to_vec(&body).expect("json"), &filter())
            .expect("parses");
        let room = ruma::room_id!("!r").to_owned();
        let user = ruma::user_id!("@user:localhost").to_owned();
        assert_eq!(
            parsed.events,
            vec![
                MatrixEvent::Message {
                    room_id: room.clone(),
                    event_id: ruma::event_id!("$edit").to_owned(),
                    sender: user.clone(),
                    kind: MessageKind::Text,
                    body: "* the typo fixed".into(),
                    html: Some("* the <b>typo</b> fixed".into()),
                    media: None,
                },
                MatrixEvent::Unbridgeable {
                    room_id: room.clone(),
                    event_id: ruma::event_id!("$red").to_owned(),
                    sender: user.clone(),
                    what: Unbridgeable::Redaction,
                },
                MatrixEvent::Unbridgeable {
                    room_id: room,
                    event_id: ruma::event_id!("$re").to_owned(),
                    sender: user,
                    what: Unbridgeable::Reaction,
                },
            ]
        );
    }

    #[test]
    fn room_names_and_media_are_read_and_the_bridges_own_names_dropped() {
        let body = serde_json::json!({"events": [
            {"type": "m.room.name", "room_id": "!r", "event_id": "$n1", "state_key": "",
             "sender": "@user:localhost", "content": {"name": "Plans"}},
            {"type": "m.room.name", "room_id": "!r", "event_id": "$n2", "state_key": "",
             "sender": "@msnbot:localhost", "content": {"name": "Alice (MSN group)"}},
            {"type": "m.room.message", "room_id": "!r", "event_id": "$img",
             "sender": "@user:localhost",
             "content": {"msgtype": "m.image", "body": "a caption", "filename": "cat.png",
                         "url": "mxc://localhost/abc", "info": {"size": 1234}}}
        ]});
        let parsed = parse_transaction(&serde_json::to_vec(&body).expect("json"), &filter())
            .expect("parses");
        let room = ruma::room_id!("!r").to_owned();
        let user = ruma::user_id!("@user:localhost").to_owned();
        assert_eq!(
            parsed.events,
            vec![
                MatrixEvent::RoomNamed {
                    room_id: room.clone(),
                    event_id: ruma::event_id!("$n1").to_owned(),
                    sender: user.clone(),
                    name: "Plans".into(),
                },
                MatrixEvent::Message {
                    room_id: room,
                    event_id: ruma::event_id!("$img").to_owned(),
                    sender: user,
                    kind: MessageKind::Other("m.image".into()),
                    body: "a caption".into(),
                    html: None,
                    media: Some(Media {
                        url: "mxc://localhost/abc".into(),
                        filename: Some("cat.png".into()),
                        size: Some(1234),
                    }),
                },
            ]
        );
    }
}
