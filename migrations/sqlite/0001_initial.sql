-- The first schema: appservice transactions and their queued events, bridge users,
-- puppets, portals and the Matrix event <-> MSN message map.
-- Keep in step with migrations/postgres/0001_initial.sql (same version, same tables).

-- Synapse numbers transactions from max(stored id) + 1 and deletes finished ones, so after
-- its restart the numbers start over: a transaction is identified by its ID together with
-- a digest of its content (see src/matrix/transaction.rs).
CREATE TABLE appservice_txn (
    txn_id      TEXT NOT NULL,
    content_key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (txn_id, content_key)
);

CREATE TABLE event_queue (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE bridge_user (
    mxid            TEXT PRIMARY KEY,
    management_room TEXT,
    msn_login       TEXT,
    login_state     TEXT NOT NULL DEFAULT 'logged_out',
    credentials     BLOB,
    created_at      BIGINT NOT NULL
);

CREATE TABLE puppet (
    msn_address  TEXT PRIMARY KEY,
    mxid         TEXT NOT NULL UNIQUE,
    display_name TEXT,
    avatar_mxc   TEXT,
    avatar_sha1d TEXT,
    registered   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE portal (
    msn_chat_id TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    room_id     TEXT UNIQUE,
    kind        TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (msn_chat_id, receiver)
);

CREATE TABLE message_map (
    matrix_event_id TEXT NOT NULL,
    part            BIGINT NOT NULL,
    room_id         TEXT NOT NULL,
    receiver        TEXT NOT NULL,
    msn_message_id  TEXT NOT NULL,
    direction       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (matrix_event_id, part)
);
CREATE INDEX message_map_msn ON message_map (receiver, msn_message_id);
