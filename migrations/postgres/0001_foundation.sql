-- Foundation: users, roles, grants, MFA, sessions, audit, tokens, cross-instance invalidation.
-- Times are Unix seconds (BIGINT) so that one query text serves SQLite and PostgreSQL.

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    email                TEXT NOT NULL,
    email_normalized     TEXT NOT NULL UNIQUE,  -- trimmed + lowercased: emails are unique case-insensitively
    name                 TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL CHECK (status IN ('invited', 'active', 'blocked', 'locked', 'deprovisioned')),
    password_hash        TEXT,
    password_must_change BIGINT NOT NULL DEFAULT 0,
    totp_secret          TEXT,                  -- sealed with the master key
    totp_pending_secret  TEXT,                  -- sealed; during enrolment, until confirmed
    totp_last_step       BIGINT,                -- RFC 6238 §5.2: a step is accepted once
    failed_count         BIGINT NOT NULL DEFAULT 0,
    first_failure_at     BIGINT,
    locked_until         BIGINT,                -- 9223372036854775807 = until an admin unlocks
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    seat        TEXT NOT NULL CHECK (seat IN ('limited', 'modify')),
    description TEXT NOT NULL DEFAULT '',
    builtin     BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
INSERT INTO roles (name, seat, description, builtin, created_at) VALUES
    ('admin', 'modify', 'Full access administrator', 1, 0),
    ('modify', 'modify', 'May change data', 1, 0),
    ('limited', 'limited', 'Front-office screens only', 1, 0);

CREATE TABLE user_grants (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
    app        TEXT NOT NULL DEFAULT '*',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, role, app)
);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,          -- public id shown to administrators
    token_hash     TEXT NOT NULL UNIQUE,      -- SHA-256 of the cookie value; the value itself is never stored
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage          TEXT NOT NULL,             -- password_change | mfa | mfa_enroll | active
    amr            TEXT NOT NULL,
    ip             TEXT NOT NULL DEFAULT '',
    user_agent     TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_events (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,             -- 'user:<email>', 'cli', 'system', 'anonymous'
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL DEFAULT '',
    target_user_id TEXT,
    outcome        TEXT NOT NULL,
    ip             TEXT NOT NULL DEFAULT '',
    details        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_target_user ON audit_events (target_user_id);
CREATE INDEX audit_actor_user ON audit_events (actor_user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Cache invalidations for every running instance (and confirmation that each one applied them).
CREATE TABLE invalidations (
    id   BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL
);
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    cursor       BIGINT NOT NULL
);
