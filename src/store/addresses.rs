//! Every address with one owner: an organization's own address, its listed members and its
//! domains against everyone else's, and a new user's address against the organizations'.
//! Saving an organization and creating a user both first take `address_lock`, so these checks
//! across tables are serialised on every backend; the unique constraints
//! (`organizations.slug`, `.email`, `org_domains.domain`, `org_members.email`,
//! `users.email_normalized`) are the last line.

use super::{OrgData, Result, StoreError};
use sqlx::{Any, Transaction};

/// Why an address, a domain or a slug cannot be had: it already belongs to someone else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Clash {
    #[error("the slug {slug:?} is taken by another organization")]
    Slug { slug: String },
    #[error("{email} is the address of organization {slug}")]
    OrgEmail { email: String, slug: String },
    #[error("{email} is listed as a member of organization {slug}")]
    Listed { email: String, slug: String },
    #[error("{email} is a user who is a member of organization {slug}")]
    MemberOfOther { email: String, slug: String },
    #[error(
        "{email} is the address of an existing user (an organization's address never signs in)"
    )]
    UserAddress { email: String },
    #[error("{email} is in the domain {domain} of organization {slug}")]
    InDomain {
        email: String,
        domain: String,
        slug: String,
    },
    #[error("the domain {domain} belongs to organization {slug}")]
    Domain { domain: String, slug: String },
    #[error("organization {slug} lists {email}, an address in the domain {domain}")]
    DomainListed {
        domain: String,
        email: String,
        slug: String,
    },
}

/// The domain part of a normalized address.
fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Takes the address lock: the first write of every transaction that claims an address.
pub(super) async fn lock_addresses(tx: &mut Transaction<'static, Any>, now: i64) -> Result<()> {
    sqlx::query("UPDATE address_lock SET touched_at = $1 WHERE id = 1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The organization whose address `email` is, if any.
pub(super) async fn org_of_address(
    tx: &mut Transaction<'static, Any>,
    email: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM organizations WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Every address and domain of `data` is free for organization `own` ('' = a new one).
pub(super) async fn check_org(
    tx: &mut Transaction<'static, Any>,
    own: &str,
    data: &OrgData,
) -> Result<()> {
    let clash = |c: Clash| Err(StoreError::Clash(c));
    let other: Option<String> =
        sqlx::query_scalar("SELECT slug FROM organizations WHERE slug = $1 AND id <> $2")
            .bind(&data.slug)
            .bind(own)
            .fetch_optional(&mut **tx)
            .await?;
    if other.is_some() {
        return clash(Clash::Slug {
            slug: data.slug.clone(),
        });
    }
    // The organization's own address: no other organization's, no user's, listed nowhere.
    let email = &data.email;
    if let Some(slug) = org_email_elsewhere(tx, email, own).await? {
        return clash(Clash::OrgEmail {
            email: email.clone(),
            slug,
        });
    }
    // Listed first: a listed person has an account (`invited` until they activate), and the
    // listing is what the administrator needs to hear of.
    if let Some(slug) = listed_by(tx, email, "").await? {
        return clash(Clash::Listed {
            email: email.clone(),
            slug,
        });
    }
    let user: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
            .bind(email)
            .fetch_optional(&mut **tx)
            .await?;
    if user.is_some() {
        return clash(Clash::UserAddress {
            email: email.clone(),
        });
    }
    if data.members.contains(email) {
        return clash(Clash::Listed {
            email: email.clone(),
            slug: data.slug.clone(),
        });
    }
    // Each listed address: no organization's address, listed by no other organization, no
    // member of another, in no other organization's domain.
    for m in &data.members {
        if let Some(slug) = org_email_elsewhere(tx, m, "").await? {
            return clash(Clash::OrgEmail {
                email: m.clone(),
                slug,
            });
        }
        if let Some(slug) = listed_by(tx, m, own).await? {
            return clash(Clash::Listed {
                email: m.clone(),
                slug,
            });
        }
        let member_of: Option<String> = sqlx::query_scalar(
            "SELECT o.slug FROM users u JOIN organizations o ON o.id = u.org_id \
             WHERE u.email_normalized = $1 AND u.org_id <> $2",
        )
        .bind(m)
        .bind(own)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(slug) = member_of {
            return clash(Clash::MemberOfOther {
                email: m.clone(),
                slug,
            });
        }
        let domain = domain_of(m);
        if let Some(slug) = domain_owner(tx, domain, own).await? {
            return clash(Clash::InDomain {
                email: m.clone(),
                domain: domain.to_string(),
                slug,
            });
        }
    }
    // Each domain: no other organization's, and no other organization lists an address in it.
    for d in &data.domains {
        if let Some(slug) = domain_owner(tx, d, own).await? {
            return clash(Clash::Domain {
                domain: d.clone(),
                slug,
            });
        }
        let listed: Option<(String, String)> = sqlx::query_as(
            "SELECT m.email, o.slug FROM org_members m JOIN organizations o ON o.id = m.org_id \
             WHERE m.org_id <> $2 AND m.email LIKE $1 ORDER BY m.email LIMIT 1",
        )
        .bind(format!("%@{d}"))
        .bind(own)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((email, slug)) = listed {
            return clash(Clash::DomainListed {
                domain: d.clone(),
                email,
                slug,
            });
        }
    }
    Ok(())
}

async fn org_email_elsewhere(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM organizations WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(own)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// The organization (other than `own`) listing `email`.
async fn listed_by(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT o.slug FROM org_members m JOIN organizations o ON o.id = m.org_id \
         WHERE m.email = $1 AND m.org_id <> $2",
    )
    .bind(email)
    .bind(own)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn domain_owner(
    tx: &mut Transaction<'static, Any>,
    domain: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT o.slug FROM org_domains d JOIN organizations o ON o.id = d.org_id \
         WHERE d.domain = $1 AND d.org_id <> $2",
    )
    .bind(domain)
    .bind(own)
    .fetch_optional(&mut **tx)
    .await?)
}
