-- The user's "MSN" space (a Matrix space holding their portals and management room),
-- created once, so that a restart adds to the same space instead of making another.
ALTER TABLE bridge_user ADD COLUMN space_room_id TEXT;
