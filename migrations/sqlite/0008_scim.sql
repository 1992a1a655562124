-- SCIM 2.0 provisioning (RFC 7643/7644). A provisioned user is a row of `users` (its id is the
-- SCIM id, its status says `active`) plus what the provider that provisioned it wrote: its
-- `userName` and `externalId` (each unique per provider) and the resource as last sent (JSON).
-- A DELETE keeps both rows for the audit trail: the user is deprovisioned, the SCIM row marked
-- deleted (its `externalId` freed).
CREATE TABLE scim_users (
    user_id             TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    user_name           TEXT NOT NULL,
    user_name_lower     TEXT NOT NULL,         -- RFC 7643 §4.1.1: userName is caseExact false
    external_id         TEXT,                  -- caseExact true
    resource            TEXT NOT NULL DEFAULT '{}',
    deleted_at          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (provider, user_name_lower);
CREATE UNIQUE INDEX scim_users_external_id ON scim_users (provider, external_id);
CREATE INDEX scim_users_listed ON scim_users (provider, created_at);  -- pages of GET /Users

-- Groups a provider pushes, and their members; `[[identity_provider.group_role]]` maps a
-- group's displayName to grants, recorded in `scim_group_grants` so that leaving the group
-- removes exactly what it gave.
CREATE TABLE scim_groups (
    id                  TEXT PRIMARY KEY,
    provider            TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    display_name_lower  TEXT NOT NULL,
    external_id         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX scim_groups_name ON scim_groups (provider, display_name_lower);
CREATE UNIQUE INDEX scim_groups_external_id ON scim_groups (provider, external_id);

CREATE TABLE scim_group_members (
    group_id            TEXT NOT NULL REFERENCES scim_groups(id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- `[[identity_provider.group_role]]` as the config says it, rewritten at every start: a
-- member of the provider's group (by displayName, lowercased) holds `role` on `app`. Read
-- beside `user_grants` (never copied into it), so leaving the group removes exactly this.
CREATE TABLE scim_group_roles (
    provider            TEXT NOT NULL,
    group_lower         TEXT NOT NULL,
    role                TEXT NOT NULL,
    app                 TEXT NOT NULL,
    PRIMARY KEY (provider, group_lower, role, app)
);
