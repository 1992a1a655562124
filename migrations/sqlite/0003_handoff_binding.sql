-- Cross-host sign-in bound to the browser and the host.

-- A session made on an app host by a handoff is valid on that host only (NULL: the gateway's).
ALTER TABLE sessions ADD COLUMN host TEXT;

-- A handoff code is spent only by the browser holding the state cookie it was issued for
-- (SHA-256 of the cookie value); codes issued before this column existed match no browser.
ALTER TABLE handoffs ADD COLUMN state_hash TEXT NOT NULL DEFAULT '';
