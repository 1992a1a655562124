-- What a session keeps of the upstream sign-in it came from, for the provider's back-channel
-- logout (the ID token's `sub` and `sid`) and for revalidation with its refresh token (when it
-- was last checked, and since when the provider has been failing to answer).
ALTER TABLE sessions ADD COLUMN upstream_subject TEXT;
ALTER TABLE sessions ADD COLUMN upstream_sid TEXT;
ALTER TABLE sessions ADD COLUMN upstream_checked_at BIGINT;
ALTER TABLE sessions ADD COLUMN upstream_failing_since BIGINT;
CREATE INDEX sessions_upstream_sid ON sessions (upstream_provider, upstream_sid);
CREATE INDEX sessions_upstream_subject ON sessions (upstream_provider, upstream_subject);

-- Logout tokens already acted on (their `jti`), kept until they could no longer be accepted.
CREATE TABLE logout_tokens (
    provider   TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (provider, jti)
);

-- Deprovisioning done by administrators from the command line (another process than any
-- server), counted here so that every instance's /metrics can show it.
CREATE TABLE deprovisioning_counts (
    source TEXT NOT NULL,
    step   TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (source, step)
);
