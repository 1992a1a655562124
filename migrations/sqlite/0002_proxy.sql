-- The proxy: assertion signing keys, cross-host sign-in handoffs, modify seats.

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_sealed TEXT NOT NULL,     -- PKCS#8, sealed with the master key
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT
);

-- A session created on an app host by a handoff belongs to the session that signed in.
ALTER TABLE sessions ADD COLUMN parent_id TEXT;
CREATE INDEX sessions_parent ON sessions (parent_id);

CREATE TABLE handoffs (
    code_hash  TEXT PRIMARY KEY,      -- single-use, 60 s, bound to one app host
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    host       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row per metered app: taking its lock serialises seat admissions across instances.
CREATE TABLE seat_locks (
    app        TEXT PRIMARY KEY,
    touched_at BIGINT NOT NULL
);
CREATE TABLE seats (
    app            TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    acquired_at    BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,
    PRIMARY KEY (app, user_id)
);
-- Concurrent modify users per app and minute (the peak seen in that minute), for the licence report.
CREATE TABLE seat_usage (
    app      TEXT NOT NULL,
    minute   BIGINT NOT NULL,
    users    BIGINT NOT NULL,
    licensed BIGINT NOT NULL,
    PRIMARY KEY (app, minute)
);
