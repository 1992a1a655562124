-- Outgoing mail (invitations, activation and reset links): queued first, so that a mail
-- server outage loses no message; delivered and retried by every running instance, each
-- message claimed by one of them at a time.
CREATE TABLE mail_queue (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_sealed     TEXT NOT NULL,   -- the text, sealed with the master key; emptied once sent
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (sent_at, next_attempt_at);
