-- Upstream sign-in (Google, Microsoft, any OpenID provider): flows under way, linked upstream
-- identities, invitations, and what a session keeps of the provider it came through.

-- An authorization request under way (RFC 6749 §10.12, OpenID Connect Core §3.1.2.1): found by
-- the SHA-256 of its `state`, spent once, bound to the browser that started it (SHA-256 of a
-- host-only cookie's value) and to one provider (a code delivered to another provider's
-- callback finds a row for the wrong provider: mix-up).
CREATE TABLE sso_states (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,               -- sealed with the master key
    rd            TEXT NOT NULL DEFAULT '',
    expires_at    BIGINT NOT NULL
);
CREATE INDEX sso_states_expiry ON sso_states (expires_at);

-- (provider, the provider's stable subject) → one user; a user may have several.
CREATE TABLE upstream_identities (
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email        TEXT NOT NULL DEFAULT '',      -- the verified address it was linked by
    linked_at    BIGINT NOT NULL,
    last_used_at BIGINT,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX upstream_identities_user ON upstream_identities (user_id);

-- Invitations: only the SHA-256 of the link's token is kept; single use, expiring. `provider`
-- names the identity provider whose verified address may link to the user (NULL: none).
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider   TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invitations_user ON invitations (user_id);

-- A session signed in through a provider: which one, and its refresh token when it granted
-- one (sealed with the master key), for revalidation.
ALTER TABLE sessions ADD COLUMN upstream_provider TEXT;
ALTER TABLE sessions ADD COLUMN upstream_refresh_token TEXT;
