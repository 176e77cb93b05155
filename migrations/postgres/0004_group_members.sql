-- The MSN contacts of each group portal (a multi-party switchboard), kept so that the
-- group can be called together again after a bridge restart or a new session.
CREATE TABLE group_member (
    chat_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    address  TEXT NOT NULL,
    name     TEXT NOT NULL,
    PRIMARY KEY (chat_key, receiver, address)
);
