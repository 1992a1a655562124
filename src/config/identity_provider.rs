//! `[[identity_provider]]`: the upstream providers people sign in with (Google, Microsoft Entra
//! ID, any OpenID Connect provider), and `[invitations]`.

use super::reader::Section;
use super::secret::Secret;
use std::time::Duration;
use url::Url;

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Google,
    Microsoft,
    Oidc,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// Which Entra ID directories a Microsoft provider serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// Work or school accounts of any directory, and personal Microsoft accounts.
    Common,
    /// Work or school accounts of any directory.
    Organizations,
    /// One directory (its id, a GUID, or a verified domain of it).
    Single(String),
}

impl Tenant {
    pub fn as_str(&self) -> &str {
        match self {
            Tenant::Common => "common",
            Tenant::Organizations => "organizations",
            Tenant::Single(t) => t,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MicrosoftConfig {
    pub tenant: Tenant,
    /// Lowercased tenant ids that may sign in; empty = any the `tenant` admits.
    pub allowed_tenants: Vec<String>,
    pub authority: Url,
    pub trust_tenant_emails: bool,
}

#[derive(Debug, Clone)]
pub struct IdentityProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    /// The sign-in button's label.
    pub name: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    /// Where discovery is read (`{issuer}/.well-known/openid-configuration`); for Microsoft
    /// `{authority}/{tenant}/v2.0`.
    pub issuer: Url,
    pub scopes: Vec<String>,
    pub microsoft: Option<MicrosoftConfig>,
    /// The bearer token of this provider's SCIM client (`/scim/v2`); none = no SCIM.
    pub scim_token: Option<Secret<String>>,
    /// Sessions signed in with a refresh token are checked with the provider this often
    /// (`revalidate_every`, default 5m) …
    pub revalidate_every: Duration,
    /// … and, while the provider cannot be asked, kept this long (`revalidate_grace`, 1h).
    pub revalidate_grace: Duration,
    /// `[[identity_provider.group_role]]`: what membership of a SCIM group grants.
    pub group_roles: Vec<GroupRole>,
}

/// A SCIM group (by its `displayName`, compared case-insensitively) grants `role` on `app`
/// (`*`: every app) to its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    pub group: String,
    pub role: String,
    pub app: String,
}

#[derive(Debug, Clone)]
pub struct InvitationsConfig {
    pub ttl: Duration,
}

pub(super) fn read_invitations(s: &Section) -> InvitationsConfig {
    let ttl = s.duration("ttl", "72h");
    if ttl < Duration::from_secs(60) {
        s.problem("ttl", "must be at least 1m");
    }
    s.finish();
    InvitationsConfig { ttl }
}

/// An `http(s)` URL without query or fragment, its trailing `/` removed (issuers are compared
/// as strings).
fn base_url(s: &Section, k: &str, value: &str) -> Option<Url> {
    match Url::parse(value.trim_end_matches('/')) {
        Ok(u)
            if (u.scheme() == "https" || u.scheme() == "http")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(u)
        }
        _ => {
            s.problem(
                k,
                "must be an https:// URL without query or fragment (http:// only for tests)",
            );
            None
        }
    }
}

/// A tenant id as Entra ID writes it: a GUID (lowercase compared).
fn is_guid(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) fn read_provider(s: &Section) -> IdentityProviderConfig {
    let id = s.string("id", "");
    if !super::valid_name(&id) {
        s.problem("id", "required: 1-64 of a-z, 0-9, '-', '_'");
    }
    let kind = match s.opt_string("kind").as_deref() {
        Some("google") => ProviderKind::Google,
        Some("microsoft") => ProviderKind::Microsoft,
        Some("oidc") => ProviderKind::Oidc,
        Some(_) => {
            s.problem("kind", "must be \"google\", \"microsoft\" or \"oidc\"");
            ProviderKind::Oidc
        }
        None => {
            s.problem("kind", "required: \"google\", \"microsoft\" or \"oidc\"");
            ProviderKind::Oidc
        }
    };
    let client_id = s.string("client_id", "");
    if client_id.trim().is_empty() {
        s.problem(
            "client_id",
            "required: the client id registered at the provider",
        );
    }
    let given = ["client_secret", "client_secret_file", "client_secret_env"]
        .iter()
        .any(|k| s.raw(k).is_some());
    let client_secret = s.secret("client_secret").unwrap_or_default();
    if !given {
        s.problem(
            "client_secret",
            "required: set client_secret_env (a variable name) or client_secret_file",
        );
    } else if client_secret.expose().is_empty() && !s.offline() && !s.reported("client_secret") {
        s.problem("client_secret", "must not be empty");
    }
    let scim_token = s.secret("scim_token");
    if scim_token
        .as_ref()
        .is_some_and(|t| t.expose().trim().len() < 16)
        && !s.reported("scim_token")
    {
        s.problem(
            "scim_token",
            "too short: use at least 16 random characters (it is the provider's password)",
        );
    }
    let mut group_roles = Vec::new();
    for g in s.array_of_tables("group_role", "group") {
        let group = g.string("group", "");
        if group.trim().is_empty() {
            g.problem("group", "required: the SCIM group's displayName");
        }
        let role = g.string("role", "");
        if !super::valid_name(&role) {
            g.problem("role", "required: a role name (1-64 of a-z, 0-9, '-', '_')");
        }
        let app = g.string("app", "*");
        g.finish();
        group_roles.push(GroupRole {
            group: group.trim().to_string(),
            role,
            app,
        });
    }
    let default_name = match kind {
        ProviderKind::Google => "Google",
        ProviderKind::Microsoft => "Microsoft",
        ProviderKind::Oidc => "single sign-on",
    };
    let name = s.string("name", default_name);
    if name.trim().is_empty() {
        s.problem("name", "must not be empty (the sign-in button's label)");
    }
    let scopes = if s.raw("scopes").is_some() {
        s.strings("scopes")
    } else {
        ["openid", "email", "profile"].map(String::from).to_vec()
    };
    if !scopes.iter().any(|sc| sc == "openid") {
        s.problem("scopes", "must include \"openid\"");
    }
    if scopes
        .iter()
        .any(|sc| sc.is_empty() || sc.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        s.problem("scopes", "a scope is one word without spaces");
    }
    let issuer_raw = s.opt_string("issuer");
    let placeholder = || Url::parse("https://invalid.invalid").expect("valid URL");
    let mut microsoft = None;
    let issuer = match kind {
        ProviderKind::Microsoft => {
            if issuer_raw.is_some() {
                s.problem(
                    "issuer",
                    "not used for kind = \"microsoft\": set tenant (and authority for tests)",
                );
            }
            let tenant = match s.string("tenant", "organizations").to_ascii_lowercase() {
                t if t == "common" => Tenant::Common,
                t if t == "organizations" => Tenant::Organizations,
                t if t == "consumers" => {
                    s.problem(
                        "tenant",
                        "\"consumers\" (personal accounts only) is not supported: use \"common\", \"organizations\" or a tenant id",
                    );
                    Tenant::Organizations
                }
                t if is_guid(&t) => Tenant::Single(t),
                _ => {
                    s.problem(
                        "tenant",
                        "must be \"common\", \"organizations\" or a tenant id (a GUID)",
                    );
                    Tenant::Organizations
                }
            };
            let mut allowed_tenants = Vec::new();
            for (i, t) in s.strings("allowed_tenants").iter().enumerate() {
                if is_guid(t) {
                    allowed_tenants.push(t.to_ascii_lowercase());
                } else {
                    s.problem(
                        &format!("allowed_tenants[{}]", i + 1),
                        "not a tenant id (a GUID)",
                    );
                }
            }
            if let Tenant::Single(t) = &tenant
                && !allowed_tenants.is_empty()
                && !allowed_tenants.contains(t)
            {
                s.problem(
                    "allowed_tenants",
                    "does not list the provider's own tenant: nobody could sign in",
                );
            }
            let authority = s
                .opt_string("authority")
                .and_then(|a| base_url(s, "authority", &a))
                .unwrap_or_else(|| Url::parse(MICROSOFT_AUTHORITY).expect("valid URL"));
            let trust_tenant_emails = s.bool("trust_tenant_emails", false);
            if trust_tenant_emails && !matches!(tenant, Tenant::Single(_)) {
                s.problem(
                    "trust_tenant_emails",
                    "only valid with a single-tenant provider (tenant = a tenant id): in a multi-tenant provider any directory could claim any address",
                );
            }
            let issuer = Url::parse(&format!(
                "{}/{}/v2.0",
                authority.as_str().trim_end_matches('/'),
                tenant.as_str()
            ))
            .unwrap_or_else(|_| placeholder());
            microsoft = Some(MicrosoftConfig {
                tenant,
                allowed_tenants,
                authority,
                trust_tenant_emails,
            });
            issuer
        }
        _ => {
            for k in [
                "tenant",
                "allowed_tenants",
                "authority",
                "trust_tenant_emails",
            ] {
                if s.raw(k).is_some() {
                    s.problem(k, "only for kind = \"microsoft\"");
                }
            }
            match (kind, issuer_raw) {
                (_, Some(i)) => base_url(s, "issuer", &i).unwrap_or_else(placeholder),
                (ProviderKind::Google, None) => Url::parse(GOOGLE_ISSUER).expect("valid URL"),
                _ => {
                    s.problem(
                        "issuer",
                        "required for kind = \"oidc\": the provider's issuer URL (discovery is read at {issuer}/.well-known/openid-configuration)",
                    );
                    placeholder()
                }
            }
        }
    };
    let revalidate_every = s.duration("revalidate_every", "5m");
    if revalidate_every < Duration::from_secs(1) {
        s.problem("revalidate_every", "must be at least 1s");
    }
    let revalidate_grace = s.duration("revalidate_grace", "1h");
    IdentityProviderConfig {
        id,
        kind,
        name,
        client_id,
        client_secret,
        issuer,
        scopes,
        microsoft,
        scim_token,
        revalidate_every,
        revalidate_grace,
        group_roles,
    }
}

/// Provider ids are unique; a `group_role` names a configured app (or `*`).
pub(super) fn validate_providers(
    providers: &[IdentityProviderConfig],
    apps: &[super::app::AppConfig],
    problem: &dyn Fn(&str, String),
) {
    for (i, p) in providers.iter().enumerate() {
        for (j, g) in p.group_roles.iter().enumerate() {
            if g.app != "*" && !apps.iter().any(|a| a.id == g.app) {
                problem(
                    &format!("identity_provider[{}].group_role[{}].app", p.id, j + 1),
                    format!("no app {:?} is configured (or \"*\" for every app)", g.app),
                );
            }
        }
        if providers[..i].iter().any(|q| q.id == p.id) && !p.id.is_empty() {
            problem(
                &format!("identity_provider[{}].id", p.id),
                format!("duplicate identity provider id {:?}", p.id),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_guid;

    #[test]
    fn tenant_ids_are_guids() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
    }
}
