-- The bridge's endpoint id on MSN (MSNP16+: the machine GUID in USR SSO S), chosen
-- once per bridge user so that a restart signs in as the same endpoint and never boots
-- the user's own Messenger (MSNP.md §2.5.1, §15.3).
ALTER TABLE bridge_user ADD COLUMN machine_guid TEXT;
