-- Events from MSN on their way to the homeserver (messages, nudges, notices), written
-- before anything else is done with them, so that neither the homeserver being away nor
-- a bridge restart loses one. A row leaves once the homeserver accepted its event.
-- `payload` is sealed JSON (it holds what contacts wrote).
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_by_receiver ON outbox (receiver, seq);
