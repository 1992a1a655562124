//! Home-realm discovery: which way an address signs in, from the organization that concerns
//! it. The rule reads no account, so the answer for an unknown address and for a known address
//! outside every organization is the same.

use crate::config::{IdentityProviderConfig, ProviderKind};

/// The organization an address belongs to, as far as the sign-in page needs to know.
pub enum Concern<'a> {
    /// No organization lists the address or owns its domain.
    None,
    /// An email organization lists it; `providers` are the ones it allows (empty: all).
    Listed { providers: &'a [String] },
    /// A domain organization owns its domain; `providers` as above.
    Domain { providers: &'a [String] },
}

/// Where the sign-in goes after the email step.
#[derive(Debug, PartialEq, Eq)]
pub enum Realm {
    /// A domain organization's address: only these providers (Google or Microsoft, in config
    /// order), never a password. With one, the person is sent straight there.
    Upstream(Vec<String>),
    /// The password step, with the buttons of these providers.
    Password(Vec<String>),
}

/// The realm of an address concerned by `concern`, among the configured providers.
pub fn realm(configured: &[IdentityProviderConfig], concern: Concern<'_>) -> Realm {
    let allowed = |allowed: &[String], p: &IdentityProviderConfig| {
        allowed.is_empty() || allowed.contains(&p.id)
    };
    match concern {
        Concern::None => Realm::Password(configured.iter().map(|p| p.id.clone()).collect()),
        Concern::Listed { providers } => Realm::Password(
            (configured.iter())
                .filter(|p| allowed(providers, p))
                .map(|p| p.id.clone())
                .collect(),
        ),
        Concern::Domain { providers } => Realm::Upstream(
            (configured.iter())
                .filter(|p| matches!(p.kind, ProviderKind::Google | ProviderKind::Microsoft))
                .filter(|p| allowed(providers, p))
                .map(|p| p.id.clone())
                .collect(),
        ),
    }
}

/// The providers a person holding an invitation may continue with instead of a password:
/// the one the invitation names; else, for a member of an email organization, the providers
/// it allows (`org_allows`; every configured one when it names none); else none.
pub fn invitation_providers(
    configured: &[IdentityProviderConfig],
    named: Option<&str>,
    org_allows: Option<Vec<String>>,
) -> Vec<String> {
    match (named, org_allows) {
        (Some(p), _) => vec![p.to_string()],
        (None, Some(allowed)) if allowed.is_empty() => {
            configured.iter().map(|p| p.id.clone()).collect()
        }
        (None, Some(allowed)) => allowed,
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn provider(id: &str, kind: ProviderKind) -> IdentityProviderConfig {
        IdentityProviderConfig {
            id: id.into(),
            kind,
            name: id.into(),
            client_id: "c".into(),
            client_secret: Secret::new("s".to_string()),
            issuer: "https://idp.example.test".parse().unwrap(),
            scopes: vec![],
            microsoft: None,
            scim_token: None,
            revalidate_every: std::time::Duration::from_secs(300),
            revalidate_grace: std::time::Duration::from_secs(3600),
            group_roles: Vec::new(),
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_concern_gets_its_way_in() {
        let all = [
            provider("google", ProviderKind::Google),
            provider("generic", ProviderKind::Oidc),
            provider("entra", ProviderKind::Microsoft),
        ];
        assert_eq!(
            realm(&all, Concern::None),
            Realm::Password(ids(&["google", "generic", "entra"]))
        );
        assert_eq!(
            realm(&all, Concern::Listed { providers: &[] }),
            Realm::Password(ids(&["google", "generic", "entra"]))
        );
        assert_eq!(
            realm(
                &all,
                Concern::Listed {
                    providers: &ids(&["generic"])
                }
            ),
            Realm::Password(ids(&["generic"]))
        );
        // A domain organization never takes a password nor a generic provider.
        assert_eq!(
            realm(&all, Concern::Domain { providers: &[] }),
            Realm::Upstream(ids(&["google", "entra"]))
        );
        assert_eq!(
            realm(
                &all,
                Concern::Domain {
                    providers: &ids(&["entra", "generic"])
                }
            ),
            Realm::Upstream(ids(&["entra"]))
        );
        assert_eq!(
            realm(&all[1..2], Concern::Domain { providers: &[] }),
            Realm::Upstream(vec![])
        );
    }
}
