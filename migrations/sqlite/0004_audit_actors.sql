-- Audit events record who acted as structured fields; labels are rendered when read, for the
-- viewer (an anonymized user's events then show the pseudonym without being rewritten).
-- `actor` keeps the label of events written before this migration ('' afterwards).
ALTER TABLE audit_events ADD COLUMN actor_kind TEXT NOT NULL DEFAULT '';  -- user | cli | system | anonymous | token
ALTER TABLE audit_events ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';  -- the OS user of a cli actor, a token's name
ALTER TABLE audit_events ADD COLUMN actor_org_id TEXT;                    -- the actor's organization, when there is one
