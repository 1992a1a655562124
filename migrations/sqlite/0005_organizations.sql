-- Organizations: partner or customer groups whose members all receive the organization's
-- grants. Addresses are stored normalized (trimmed, lower-cased). Deleting an organization
-- removes its domains, listed members, providers and grants, and leaves its former members
-- without an organization.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,          -- UUID
    slug        TEXT NOT NULL UNIQUE,      -- X-Gatehouse-Org, the assertion's `org`, allow_organizations
    name        TEXT NOT NULL,             -- display name (audit views)
    email       TEXT NOT NULL UNIQUE,      -- the organization's own address: never signs in
    access_by   TEXT NOT NULL CHECK (access_by IN ('domain', 'email')),
    enforce_mfa BIGINT NOT NULL DEFAULT 0 CHECK (enforce_mfa IN (0, 1)),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One domain belongs to one organization.
CREATE TABLE org_domains (
    domain TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE
);
CREATE INDEX org_domains_org ON org_domains (org_id);

-- The listed addresses of an `email` organization; one address is listed by one organization.
CREATE TABLE org_members (
    email      TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX org_members_org ON org_members (org_id);

-- The identity providers (`[[identity_provider]] id`) the organization's members may use.
CREATE TABLE org_providers (
    org_id   TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    PRIMARY KEY (org_id, provider)
);

-- Like user_grants: every member holds these.
CREATE TABLE org_grants (
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role       TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
    app        TEXT NOT NULL DEFAULT '*',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, role, app)
);

-- Membership.
ALTER TABLE users ADD COLUMN org_id TEXT REFERENCES organizations(id) ON DELETE SET NULL;
CREATE INDEX users_org ON users (org_id);

-- One row, updated first by every transaction that claims an address (an organization saved,
-- a user created): the row lock serialises them on every backend, so the checks across
-- tables (an organization's address is no user's, a listed address no other organization's)
-- cannot be raced past.
CREATE TABLE address_lock (
    id         BIGINT PRIMARY KEY,
    touched_at BIGINT NOT NULL
);
INSERT INTO address_lock (id, touched_at) VALUES (1, 0);
