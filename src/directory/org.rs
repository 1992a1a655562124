//! Organizations (SPEC: Concepts → Organization; Organization rules): what one is, what a
//! user holds through theirs, the apps' organization checks, and the shape an organization
//! must have (`domain` organizations by domain, `email` organizations by listed address).

use super::{DenyReason, Grants};
use crate::config::app::AppConfig;
use crate::store::{GrantRow, HeldRows, OrgRow};

/// How an organization's people are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessBy {
    /// Any verified address of the organization's domain(s), through Google or Microsoft.
    Domain,
    /// Only the listed addresses.
    Email,
}

impl AccessBy {
    pub fn parse(s: &str) -> Option<AccessBy> {
        match s {
            "domain" => Some(AccessBy::Domain),
            "email" => Some(AccessBy::Email),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessBy::Domain => "domain",
            AccessBy::Email => "email",
        }
    }
}

/// An organization, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// Its own address, which never signs in.
    pub email: String,
    pub access_by: AccessBy,
    pub enforce_mfa: bool,
}

impl Organization {
    /// From the stored row. A stored `access_by` this version does not know reads `email`,
    /// the narrower of the two (only listed addresses).
    pub fn from_row(row: &OrgRow) -> Organization {
        Organization {
            id: row.id.clone(),
            slug: row.slug.clone(),
            name: row.name.clone(),
            email: row.email.clone(),
            access_by: AccessBy::parse(&row.access_by).unwrap_or(AccessBy::Email),
            enforce_mfa: row.enforce_mfa != 0,
        }
    }
}

/// What a user holds: their own grants and, as a member, their organization and its grants.
/// [`Holdings::grants`] is what every rule reads.
#[derive(Debug, Clone)]
pub struct Holdings {
    pub own: Vec<GrantRow>,
    pub org: Option<(Organization, Vec<GrantRow>)>,
}

impl Holdings {
    pub fn from_rows(rows: HeldRows) -> Holdings {
        Holdings {
            own: rows.own,
            org: rows
                .org
                .map(|(row, grants)| (Organization::from_row(&row), grants)),
        }
    }

    /// Own grants and the organization's, together.
    pub fn grants(&self) -> Grants<'_> {
        Grants {
            own: &self.own,
            org: self.org.as_ref().map_or(&[], |(_, g)| g.as_slice()),
        }
    }

    pub fn org(&self) -> Option<&Organization> {
        self.org.as_ref().map(|(o, _)| o)
    }
}

/// The app's organization checks for a user of organization `org` (its slug; `None`: no
/// organization). `organization_members = false` refuses every member; a non-empty
/// `allow_organizations` admits only the members of the organizations it lists. People
/// without an organization (staff) are not an organization and meet neither check: SPEC's
/// "admit only some organizations" chooses among organizations, it does not shut staff out
/// (their roles still decide).
pub fn org_refusal(app: &AppConfig, org: Option<&str>) -> Option<DenyReason> {
    let slug = org?;
    if !app.organization_members {
        return Some(DenyReason::OrganizationMember);
    }
    if !app.allow_organizations.is_empty() && !app.allow_organizations.iter().any(|s| s == slug) {
        return Some(DenyReason::OrganizationNotAllowed);
    }
    None
}

/// A domain as organizations list it: lower-case DNS labels (letters, digits, `-`, not at
/// either end of a label), at least two labels, at most 253 characters.
pub fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// What is wrong with an organization's shape, if anything: a `domain` organization needs at
/// least one domain and lists no members; an `email` organization has no domains.
pub fn shape_problem(
    access_by: AccessBy,
    domains: &[String],
    members: &[String],
) -> Option<String> {
    match access_by {
        AccessBy::Domain if domains.is_empty() => {
            Some("an organization with --access-by domain needs at least one --domain".into())
        }
        AccessBy::Domain if !members.is_empty() => Some(format!(
            "an organization with --access-by domain lists no --member (its people are \
             recognised by their domain); it would list {}",
            members.join(", ")
        )),
        AccessBy::Email if !domains.is_empty() => Some(format!(
            "an organization with --access-by email takes no --domain (only its listed \
             addresses get in); it would have {}",
            domains.join(", ")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(members: bool, allow: &[&str]) -> AppConfig {
        let mut a = crate::config::test_apps(
            "[[app]]\nid = \"crm\"\nhost = \"h\"\nupstream = \"none\"\nallow_roles = [\"*\"]\n",
        )
        .remove(0);
        a.organization_members = members;
        a.allow_organizations = allow.iter().map(|s| s.to_string()).collect();
        a
    }

    #[test]
    fn organization_checks_per_app() {
        use DenyReason::*;
        // (organization_members, allow_organizations, the user's organization, refusal)
        type Case<'a> = (bool, &'a [&'a str], Option<&'a str>, Option<DenyReason>);
        let cases: [Case; 9] = [
            // Default: everyone, members or not.
            (true, &[], None, None),
            (true, &[], Some("acme"), None),
            // organization_members = false: staff only.
            (false, &[], None, None),
            (false, &[], Some("acme"), Some(OrganizationMember)),
            // allow_organizations: only the listed organizations' members; staff stay.
            (true, &["acme"], Some("acme"), None),
            (true, &["acme", "globex"], Some("globex"), None),
            (
                true,
                &["acme"],
                Some("initech"),
                Some(OrganizationNotAllowed),
            ),
            (true, &["acme"], None, None),
            // Slugs compare exactly.
            (true, &["acme"], Some("acme2"), Some(OrganizationNotAllowed)),
        ];
        for (i, (members, allow, org, want)) in cases.into_iter().enumerate() {
            assert_eq!(org_refusal(&app(members, allow), org), want, "case {i}");
        }
    }

    #[test]
    fn domains() {
        for ok in [
            "acme.example",
            "a-b.c.example",
            "x1.io",
            "xn--bcher-kva.example",
        ] {
            assert!(valid_domain(ok), "{ok}");
        }
        for bad in [
            "",
            "acme",
            "Acme.example",
            ".acme.example",
            "acme.example.",
            "a..b",
            "-a.example",
            "a-.example",
            "a_b.example",
            "a b.example",
            "acme.example/x",
            "@acme.example",
            "*.acme.example",
        ] {
            assert!(!valid_domain(bad), "{bad}");
        }
        assert!(!valid_domain(&format!("{}.example", "a".repeat(64))));
    }

    #[test]
    fn shapes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        use AccessBy::*;
        assert_eq!(shape_problem(Domain, &s(&["acme.example"]), &[]), None);
        assert_eq!(shape_problem(Email, &[], &s(&["a@acme.example"])), None);
        assert_eq!(shape_problem(Email, &[], &[]), None);
        assert!(
            shape_problem(Domain, &[], &[])
                .unwrap()
                .contains("at least one --domain")
        );
        let listed = shape_problem(Domain, &s(&["acme.example"]), &s(&["a@acme.example"]));
        assert!(listed.unwrap().contains("a@acme.example"));
        let domained = shape_problem(Email, &s(&["acme.example"]), &[]);
        assert!(domained.unwrap().contains("takes no --domain"));
    }

    #[test]
    fn access_by_spellings() {
        for a in [AccessBy::Domain, AccessBy::Email] {
            assert_eq!(AccessBy::parse(a.as_str()), Some(a));
        }
        assert_eq!(AccessBy::parse("Domain"), None);
    }
}
