//! The access rules, as pure functions: which roles a user holds for an app, their seat kind,
//! whether the app admits them, what a per-path rule says about a request, and whether they
//! must use a second factor. No SQL and no HTTP: the proxy (`proxy::access`), forward-auth and
//! the sign-in flow fetch the grants and ask here.

use crate::config::app::{AppConfig, RuleConfig};
use crate::store::GrantRow;

pub use crate::config::SeatKind;

/// Why a request is refused. `as_str` is what audit details (`proxy.denied`) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// None of the app's `allow_roles`.
    NoRole,
    /// A per-path rule's `roles`, none held.
    PathRule,
    /// A `back_office` path, and a `limited` seat.
    BackOffice,
    /// An organization member, on an app with `organization_members = false`.
    OrganizationMember,
    /// A member of an organization the app's `allow_organizations` does not list.
    OrganizationNotAllowed,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoRole => "no_role",
            DenyReason::PathRule => "path_rule",
            DenyReason::BackOffice => "back_office",
            DenyReason::OrganizationMember => "organization_member",
            DenyReason::OrganizationNotAllowed => "organization_not_allowed",
        }
    }
}

/// Everything a user holds: their own grants and their organization's (SPEC: Concepts →
/// Grant, "their own grants plus their organization's grants"). This is the one place the
/// sources join, so every rule below (roles per app, seat kind, admission, MFA, full access
/// administrator) sees them alike. `directory::Holdings::grants` makes one for a member.
#[derive(Debug, Clone, Copy)]
pub struct Grants<'a> {
    pub own: &'a [GrantRow],
    pub org: &'a [GrantRow],
}

impl<'a> Grants<'a> {
    /// Only the user's own grants (someone without an organization).
    pub fn of_user(own: &'a [GrantRow]) -> Grants<'a> {
        Grants { own, org: &[] }
    }

    /// Every grant, for any app: own, then the organization's.
    pub fn iter(self) -> impl Iterator<Item = &'a GrantRow> {
        self.own.iter().chain(self.org.iter())
    }

    /// The grants effective for `app`: those for that app and those for every app (`*`).
    pub fn for_app(self, app: &'a str) -> impl Iterator<Item = &'a GrantRow> {
        self.iter().filter(move |g| g.app == "*" || g.app == app)
    }
}

/// Roles effective for `app` (grants for that app or for every app), deduplicated, sorted.
pub fn roles_for_app(grants: Grants<'_>, app: &str) -> Vec<String> {
    let mut roles: Vec<String> = grants.for_app(app).map(|g| g.role.clone()).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// `modify` if any grant effective for `app` is of a role with seat `modify`.
pub fn seat_kind(grants: Grants<'_>, app: &str) -> SeatKind {
    if grants
        .for_app(app)
        .any(|g| SeatKind::parse(&g.seat) == Some(SeatKind::Modify))
    {
        SeatKind::Modify
    } else {
        SeatKind::Limited
    }
}

/// Whether `app` lets in someone holding `roles` (its effective roles there): one of the app's
/// `allow_roles`, or `*` (any signed-in user).
pub fn admits(app: &AppConfig, roles: &[String]) -> bool {
    app.allow_roles
        .iter()
        .any(|r| r == "*" || roles.contains(r))
}

/// What a user may do on one app, before any particular request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRights {
    /// Effective roles, deduplicated, sorted.
    pub roles: Vec<String>,
    pub seat: SeatKind,
    /// Why the app refuses them whatever they ask for (`None`: it admits them): the app's
    /// organization checks (`org_refusal`) first, then its roles (`admits`).
    pub refusal: Option<DenyReason>,
}

/// `roles_for_app`, `seat_kind`, the organization checks and `admits` for `app`, together,
/// for a user of organization `org` (its slug) or of none.
pub fn rights(grants: Grants<'_>, app: &AppConfig, org: Option<&str>) -> AppRights {
    let roles = roles_for_app(grants, &app.id);
    let refusal = super::org::org_refusal(app, org)
        .or_else(|| (!admits(app, &roles)).then_some(DenyReason::NoRole));
    AppRights {
        seat: seat_kind(grants, &app.id),
        refusal,
        roles,
    }
}

/// A request path as the rules read it: the canonical path (`proxy::target::canonical`) and,
/// when the app has rules, its loose reading (`proxy::target::loose`: case-folded, `;params`
/// and trailing dots dropped), matched against the rules' lower-cased paths. A rule applies
/// when either reading matches it, so `/ADMIN/` or `/admin;x=1/` cannot slip past a rule for
/// `/admin/*` on an upstream that reads them as `/admin/`.
#[derive(Debug, Clone, Copy)]
pub struct Readings<'a> {
    pub canonical: &'a str,
    pub loose: Option<&'a str>,
}

/// What the app's per-path rules say about a request: the first rule matching each reading
/// must be satisfied (one of its `roles`, if it names any; a `modify` seat, if it is
/// `back_office`). `None` lets the request on (to the seat meter, for `modify` seats).
pub fn path_refusal(
    rules: &[RuleConfig],
    path: Readings<'_>,
    has_role: impl Fn(&str) -> bool,
    seat: SeatKind,
) -> Option<DenyReason> {
    let loose = path.loose.filter(|l| *l != path.canonical);
    for (p, folded) in [(Some(path.canonical), false), (loose, true)] {
        let Some(p) = p else { continue };
        if let Some(rule) = rules
            .iter()
            .find(|r| glob_match(if folded { &r.path_lower } else { &r.path }, p))
        {
            if !rule.roles.is_empty() && !rule.roles.iter().any(|r| has_role(r)) {
                return Some(DenyReason::PathRule);
            }
            if rule.back_office && seat == SeatKind::Limited {
                return Some(DenyReason::BackOffice);
            }
        }
    }
    None
}

/// `*` matches any run of characters (slashes included); everything else literally.
/// `/admin/*` also covers `/admin` itself.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    if let Some(base) = pattern.strip_suffix("/*")
        && path == base
    {
        return true;
    }
    // Split in place (no list of parts): this runs per request and rule.
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(last) = parts.next_back() else {
        return pattern == path;
    };
    if !path.starts_with(first) || path.len() < first.len() + last.len() || !path.ends_with(last) {
        return false;
    }
    let mut rest = &path[first.len()..path.len() - last.len()];
    for mid in parts {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a user must have a second factor (SPEC: Sign-in → MFA): any grant of a role in
/// `[mfa] required_for_roles` (own or the organization's, for any app), or membership of an
/// organization with `enforce_mfa`. (Having enrolled counts too; the sign-in flow checks that.)
pub fn mfa_required(
    grants: Grants<'_>,
    required_for_roles: &[String],
    org: Option<&super::Organization>,
) -> bool {
    org.is_some_and(|o| o.enforce_mfa)
        || grants.iter().any(|g| required_for_roles.contains(&g.role))
}

/// `--role R[@APP]` → (role, app); app defaults to every app (`*`).
pub fn parse_role_spec(spec: &str) -> (String, String) {
    match spec.split_once('@') {
        Some((r, a)) if !a.is_empty() => (r.to_string(), a.to_string()),
        Some((r, _)) => (r.to_string(), "*".to_string()),
        None => (spec.to_string(), "*".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(role: &str, app: &str, seat: &str) -> GrantRow {
        GrantRow {
            role: role.into(),
            app: app.into(),
            seat: seat.into(),
        }
    }

    fn app(id: &str, allow_roles: &[&str], rules: Vec<RuleConfig>) -> AppConfig {
        let toml = format!(
            "[[app]]\nid = \"{id}\"\nhost = \"h\"\nupstream = \"none\"\nallow_roles = [\"*\"]\n"
        );
        let mut a = crate::config::test_apps(&toml).remove(0);
        a.allow_roles = allow_roles.iter().map(|r| r.to_string()).collect();
        a.rules = rules;
        a
    }

    fn rule(path: &str, roles: &[&str], back_office: bool) -> RuleConfig {
        RuleConfig {
            path: path.into(),
            path_lower: path.to_lowercase(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            back_office,
        }
    }

    #[test]
    fn roles_per_app_from_every_app_and_per_app_grants() {
        let grants = [
            g("limited", "*", "limited"),
            g("financial", "crm", "limited"),
            g("admin", "wiki", "modify"),
            g("financial", "*", "limited"),
        ];
        let grants = Grants::of_user(&grants);
        assert_eq!(roles_for_app(grants, "crm"), ["financial", "limited"]);
        assert_eq!(
            roles_for_app(grants, "wiki"),
            ["admin", "financial", "limited"]
        );
        assert_eq!(roles_for_app(grants, "other"), ["financial", "limited"]);
        assert!(roles_for_app(Grants::of_user(&[]), "crm").is_empty());
        // A grant for an app named like a pattern is for that app only.
        let odd = [g("x", "cr*", "limited")];
        assert!(roles_for_app(Grants::of_user(&odd), "crm").is_empty());
    }

    #[test]
    fn seat_kind_is_modify_when_any_effective_grant_is() {
        let grants = [g("limited", "*", "limited"), g("editor", "wiki", "modify")];
        let grants = Grants::of_user(&grants);
        assert_eq!(seat_kind(grants, "wiki"), SeatKind::Modify);
        assert_eq!(seat_kind(grants, "crm"), SeatKind::Limited);
        let everywhere = [g("modify", "*", "modify")];
        assert_eq!(
            seat_kind(Grants::of_user(&everywhere), "crm"),
            SeatKind::Modify
        );
        assert_eq!(seat_kind(Grants::of_user(&[]), "crm"), SeatKind::Limited);
        // An unknown seat spelling never gives a modify seat.
        let odd = [g("x", "*", "Modify")];
        assert_eq!(seat_kind(Grants::of_user(&odd), "crm"), SeatKind::Limited);
    }

    #[test]
    fn admission_with_star_and_with_named_roles() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let open = app("open", &["*"], vec![]);
        assert!(admits(&open, &[]));
        assert!(admits(&open, &roles(&["anything"])));
        let named = app("crm", &["modify", "limited"], vec![]);
        assert!(admits(&named, &roles(&["limited"])));
        assert!(admits(&named, &roles(&["financial", "modify"])));
        assert!(!admits(&named, &roles(&["financial"])));
        assert!(!admits(&named, &[]));

        let grants = [g("limited", "*", "limited"), g("modify", "wiki", "modify")];
        let grants = Grants::of_user(&grants);
        let narrow = app("crm", &["modify"], vec![]);
        assert_eq!(
            rights(grants, &narrow, None),
            AppRights {
                roles: roles(&["limited"]),
                seat: SeatKind::Limited,
                refusal: Some(DenyReason::NoRole)
            }
        );
        let wiki = app("wiki", &["modify"], vec![]);
        assert_eq!(
            rights(grants, &wiki, None),
            AppRights {
                roles: roles(&["limited", "modify"]),
                seat: SeatKind::Modify,
                refusal: None
            }
        );
    }

    #[test]
    fn an_organizations_grants_join_every_rule() {
        let own = [g("limited", "crm", "limited")];
        let org = [g("modify", "crm", "modify"), g("financial", "*", "limited")];
        let member = Grants {
            own: &own,
            org: &org,
        };
        let alone = Grants::of_user(&own);
        let only_org = Grants {
            own: &[],
            org: &org,
        };
        // Roles per app and seats: own and organization's together.
        assert_eq!(
            roles_for_app(member, "crm"),
            ["financial", "limited", "modify"]
        );
        assert_eq!(roles_for_app(only_org, "wiki"), ["financial"]);
        assert_eq!(seat_kind(member, "crm"), SeatKind::Modify);
        assert_eq!(seat_kind(alone, "crm"), SeatKind::Limited);
        // Admission.
        let crm = app("crm", &["modify"], vec![]);
        assert_eq!(rights(member, &crm, Some("acme")).refusal, None);
        assert_eq!(rights(alone, &crm, None).refusal, Some(DenyReason::NoRole));
        // The organization checks come before the roles.
        let mut staff_only = app("crm", &["modify"], vec![]);
        staff_only.organization_members = false;
        assert_eq!(
            rights(member, &staff_only, Some("acme")).refusal,
            Some(DenyReason::OrganizationMember)
        );
        let staff = [g("modify", "crm", "modify")];
        assert_eq!(
            rights(Grants::of_user(&staff), &staff_only, None).refusal,
            None
        );
        let mut some = app("crm", &["modify"], vec![]);
        some.allow_organizations = vec!["globex".into()];
        assert_eq!(
            rights(member, &some, Some("acme")).refusal,
            Some(DenyReason::OrganizationNotAllowed)
        );
        assert_eq!(rights(member, &some, Some("globex")).refusal, None);
        assert_eq!(rights(alone, &some, None).refusal, Some(DenyReason::NoRole));
        // Full access administrator through the organization, and MFA required by its roles.
        let admins = [g("admin", "*", "modify")];
        let via_org = Grants {
            own: &[],
            org: &admins,
        };
        assert!(crate::directory::is_full_admin(via_org));
        assert!(mfa_required(via_org, &["admin".into()], None));
    }

    #[test]
    fn path_rules_with_roles_and_back_office_under_both_readings() {
        let rules = [
            rule("/finance/*", &["financial"], false),
            rule("/Admin/*", &[], true),
            rule("/staff/*", &["staff"], true),
        ];
        let canonical = |p| Readings {
            canonical: p,
            loose: None,
        };
        let both = |p, l| Readings {
            canonical: p,
            loose: Some(l),
        };
        let none = |_: &str| false;
        let financial = |r: &str| r == "financial";
        let staff = |r: &str| r == "staff";
        use DenyReason::*;
        use SeatKind::*;
        type Case<'a> = (
            Readings<'a>,
            &'a dyn Fn(&str) -> bool,
            SeatKind,
            Option<DenyReason>,
        );
        let cases: [Case; 16] = [
            (canonical("/"), &none, Limited, None),
            (canonical("/finance/q1"), &none, Modify, Some(PathRule)),
            (canonical("/finance/q1"), &financial, Limited, None),
            (canonical("/finance"), &none, Limited, Some(PathRule)),
            (canonical("/financer"), &none, Limited, None),
            // Case-sensitive on the canonical reading, against `path`.
            (canonical("/Admin/x"), &none, Limited, Some(BackOffice)),
            (canonical("/Admin/x"), &none, Modify, None),
            (canonical("/admin/x"), &none, Limited, None),
            // The loose reading is matched against `path_lower`.
            (
                both("/ADMIN/x", "/admin/x"),
                &none,
                Limited,
                Some(BackOffice),
            ),
            (both("/admin;a=1/x", "/admin/x"), &none, Modify, None),
            (
                both("/FINANCE/x", "/finance/x"),
                &none,
                Modify,
                Some(PathRule),
            ),
            (both("/FINANCE/x", "/finance/x"), &financial, Modify, None),
            // A loose reading that reads the same adds nothing.
            (both("/public", "/public"), &none, Limited, None),
            // Roles first, then the seat.
            (canonical("/staff/x"), &none, Modify, Some(PathRule)),
            (canonical("/staff/x"), &staff, Limited, Some(BackOffice)),
            (canonical("/staff/x"), &staff, Modify, None),
        ];
        for (i, (path, has_role, seat, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                path_refusal(&rules, path, has_role, seat),
                want,
                "case {i}: {path:?} {seat:?}"
            );
        }
        // The first rule matching a reading decides for that reading.
        let first = [rule("/a/*", &[], false), rule("/a/b/*", &["x"], false)];
        assert_eq!(
            path_refusal(&first, canonical("/a/b/c"), none, Limited),
            None
        );
        assert_eq!(path_refusal(&[], canonical("/x"), none, Limited), None);
    }

    #[test]
    fn mfa_is_required_by_any_grant_of_a_listed_role() {
        let grants = [
            g("limited", "*", "limited"),
            g("financial", "crm", "limited"),
            g("admin", "wiki", "modify"),
        ];
        let grants = Grants::of_user(&grants);
        assert!(mfa_required(grants, &["admin".into()], None));
        assert!(mfa_required(
            grants,
            &["technical".into(), "financial".into()],
            None
        ));
        assert!(!mfa_required(grants, &["technical".into()], None));
        assert!(!mfa_required(grants, &[], None));
        assert!(!mfa_required(Grants::of_user(&[]), &["admin".into()], None));
    }

    #[test]
    fn mfa_is_required_by_an_organization_that_enforces_it() {
        let org = |enforce_mfa| crate::directory::Organization {
            id: "o1".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            email: "it@acme.example".into(),
            access_by: crate::directory::AccessBy::Email,
            enforce_mfa,
        };
        let none = Grants::of_user(&[]);
        let cases = [
            (Some(org(true)), &[][..], true),
            (Some(org(false)), &[][..], false),
            (None, &[][..], false),
            (Some(org(false)), &["limited".to_string()][..], false),
        ];
        for (i, (o, required, want)) in cases.into_iter().enumerate() {
            assert_eq!(mfa_required(none, required, o.as_ref()), want, "case {i}");
        }
        let limited = [g("limited", "*", "limited")];
        assert!(mfa_required(
            Grants::of_user(&limited),
            &["limited".into()],
            Some(&org(false))
        ));
    }

    #[test]
    fn spellings_are_todays() {
        for s in SeatKind::ALL {
            assert_eq!(SeatKind::parse(s.as_str()), Some(s));
        }
        assert_eq!(SeatKind::Limited.as_str(), "limited");
        assert_eq!(SeatKind::Modify.as_str(), "modify");
        assert_eq!(SeatKind::parse("MODIFY"), None);
        assert_eq!(DenyReason::NoRole.as_str(), "no_role");
        assert_eq!(DenyReason::PathRule.as_str(), "path_rule");
        assert_eq!(DenyReason::BackOffice.as_str(), "back_office");
        assert_eq!(
            DenyReason::OrganizationMember.as_str(),
            "organization_member"
        );
        assert_eq!(
            DenyReason::OrganizationNotAllowed.as_str(),
            "organization_not_allowed"
        );
    }

    #[test]
    fn role_specs() {
        assert_eq!(parse_role_spec("admin@crm"), ("admin".into(), "crm".into()));
        assert_eq!(parse_role_spec("admin"), ("admin".into(), "*".into()));
        assert_eq!(parse_role_spec("admin@"), ("admin".into(), "*".into()));
    }

    #[test]
    fn globs() {
        assert!(glob_match("/admin/*", "/admin/users/1"));
        assert!(!glob_match("/admin/*", "/administrator"));
        assert!(glob_match("/api/*/export", "/api/v1/export"));
        assert!(!glob_match("/api/*/export", "/api/v1/import"));
        assert!(glob_match("/exact", "/exact"));
        assert!(!glob_match("/exact", "/exact/more"));
        assert!(glob_match("/admin/*", "/admin"));
        // Every shape of pattern: no star, one, several, leading, trailing, doubled.
        assert!(glob_match("*", "") && glob_match("*", "/any/thing"));
        assert!(glob_match("/a*", "/a") && glob_match("/a*", "/abc") && !glob_match("/a*", "/b"));
        assert!(glob_match("*/end", "/x/end") && !glob_match("*/end", "/x/end/"));
        assert!(glob_match("/a/*/b/*/c", "/a/1/b/2/c"));
        assert!(!glob_match("/a/*/b/*/c", "/a/1/c/2/b"));
        assert!(!glob_match("/a*b*c", "/abc/x") && glob_match("/a*b*c", "/a-b-c"));
        // The start and the end may not share characters.
        assert!(!glob_match("/ab*ba", "/aba") && glob_match("/ab*ba", "/abba"));
        assert!(glob_match("/x/**", "/x/") && glob_match("/x/**", "/x/y/z"));
        assert!(!glob_match("", "/") && glob_match("", ""));
    }
}
