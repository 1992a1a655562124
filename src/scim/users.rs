//! `/scim/v2/Users` (RFC 7644 §3.3–3.6): create, read, list with a filter, replace, PATCH and
//! delete — each for the users of the calling provider only.
//!
//! Deactivation (`active = false` by PUT or PATCH) and DELETE deprovision the account: it is
//! kept for the audit trail, every session of the person ends on every instance at once (as
//! `gatehouse admin user block` does), their seats are released, and no sign-in — password,
//! SSO or just-in-time creation — brings them back. `active = true` reactivates: the grants
//! were never removed, so they return. The last full access administrator is never
//! deprovisioned (409, saying why).

use super::discovery::{MAX_RESULTS, list};
use super::error::{ScimError, ScimResult};
use super::resource::{UserInput, is_active, project, read_user, user_json};
use super::{Answer, Provisioner, ScimJson, respond};
use crate::admin::ops::Ops;
use crate::audit::{self, Actor};
use crate::core::AppState;
use crate::directory::UserStatus;
use crate::store::{self, NewUser, ScimCond, ScimUserData, ScimUserRow, StoreError};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub(super) fn location(core: &AppState, id: &str) -> String {
    core.public_url(&format!("{}/Users/{id}", super::BASE))
}

pub(super) async fn record(
    core: &AppState,
    provider: &str,
    action: &str,
    user: (&str, &str),
    details: Value,
) {
    audit::record(
        &core.store,
        audit::Event {
            action,
            outcome: "success",
            actor: &Actor::scim(provider),
            target: user.1,
            target_user_id: Some(user.0),
            ip: "",
            details,
        },
    )
    .await;
}

/// The query string's parameters (`filter`, `startIndex`, `count`, `attributes`, …).
pub(super) fn params(q: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn param<'a>(ps: &'a [(String, String)], name: &str) -> Option<&'a str> {
    ps.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(super) fn int_param(ps: &[(String, String)], name: &str, default: i64) -> ScimResult<i64> {
    match param(ps, name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {v:?}"))),
    }
}

fn shown(core: &AppState, row: &ScimUserRow, ps: &[(String, String)]) -> Value {
    project(
        user_json(row, &location(core, &row.id)),
        param(ps, "attributes"),
        param(ps, "excludedAttributes"),
    )
}

async fn live(core: &AppState, p: &Provisioner, id: &str) -> ScimResult<ScimUserRow> {
    core.store
        .scim_user(&p.provider, id)
        .await?
        .ok_or_else(|| ScimError::not_found("User"))
}

pub async fn get_user(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let row = live(&core, &p, &id).await?;
    Ok(respond(StatusCode::OK, shown(&core, &row, &params(q))))
}

/// RFC 7644 §3.4.2: a filtered, paginated list (`startIndex` from 1, `count` at most
/// [`MAX_RESULTS`]).
pub async fn get_users(
    p: Provisioner,
    State(core): State<AppState>,
    RawQuery(q): RawQuery,
) -> Answer {
    search(&core, &p, params(q)).await
}

/// RFC 7644 §3.4.3: the same query as a `SearchRequest` body (attribute lists as arrays).
pub async fn post_search(
    p: Provisioner,
    State(core): State<AppState>,
    ScimJson(body): ScimJson,
) -> Answer {
    search(&core, &p, search_params(&body)?).await
}

/// A `SearchRequest` body as query parameters.
pub(super) fn search_params(
    body: &serde_json::Map<String, Value>,
) -> ScimResult<Vec<(String, String)>> {
    let mut ps = Vec::new();
    for (k, v) in body {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ScimError::invalid_value(format!("{k} must list strings")))?
                .join(","),
            _ => continue,
        };
        ps.push((k.clone(), text));
    }
    Ok(ps)
}

pub(super) async fn search(core: &AppState, p: &Provisioner, ps: Vec<(String, String)>) -> Answer {
    let cond = match param(&ps, "filter") {
        Some(f) if !f.trim().is_empty() => super::filter::parse_user_filter(f)?,
        _ => ScimCond::All,
    };
    let start = int_param(&ps, "startIndex", 1)?.max(1);
    let count = int_param(&ps, "count", MAX_RESULTS)?.clamp(0, MAX_RESULTS);
    let (total, rows) = core
        .store
        .search_scim_users(&p.provider, &cond, start, count)
        .await?;
    let items = rows.iter().map(|r| shown(core, r, &ps)).collect();
    Ok(respond(StatusCode::OK, list(items, total, start)))
}

fn data(input: &UserInput) -> (ScimUserData<'_>, String) {
    let resource = Value::Object(input.resource.clone()).to_string();
    (
        ScimUserData {
            user_name: &input.user_name,
            external_id: input.external_id.as_deref(),
            email: &input.email,
            email_normalized: &input.email_normalized,
            name: &input.name,
            resource: "",
        },
        resource,
    )
}

/// What a refused write of an address says.
fn address_refusal(e: StoreError, email: &str) -> ScimError {
    match e {
        StoreError::Clash(c) => {
            ScimError::invalid_value(format!("{c}, which can never be used to sign in"))
        }
        StoreError::Conflict => ScimError::uniqueness(format!(
            "another account has the address {email}, or another user of this provider the same userName or externalId"
        )),
        other => other.into(),
    }
}

pub async fn post_user(
    p: Provisioner,
    State(core): State<AppState>,
    ScimJson(body): ScimJson,
) -> Answer {
    let input = read_user(body)?;
    let now = store::now();
    let (mut d, resource) = data(&input);
    d.resource = &resource;
    if let Some(existing) = core.store.user_by_email(&input.email_normalized).await? {
        // The same provider re-creating a user it deleted gets it back; any other account of
        // that address is someone else's.
        let revivable = core
            .store
            .scim_user_by_email(&input.email_normalized)
            .await?
            .filter(|s| s.provider == p.provider && s.deleted_at.is_some());
        let Some(old) = revivable else {
            return Err(ScimError::uniqueness(format!(
                "an account with the address {} exists already",
                input.email
            )));
        };
        if let Some(attr) = core
            .store
            .scim_user_taken(
                &p.provider,
                &input.user_name.to_lowercase(),
                d.external_id,
                &old.id,
            )
            .await?
        {
            return Err(ScimError::uniqueness(format!(
                "another user of this provider has this {attr}"
            )));
        }
        core.store
            .update_scim_user(&existing.id, &d, now)
            .await
            .map_err(|e| address_refusal(e, &input.email))?;
        let changed = settle_status(&core, &p, &existing.id, input.active).await?;
        record(
            &core,
            &p.provider,
            "scim.user.create",
            (&existing.id, &input.email_normalized),
            json!({ "provider": p.provider, "userName": input.user_name, "externalId": input.external_id, "recreated": true, "status": changed }),
        )
        .await;
        let row = live(&core, &p, &existing.id).await?;
        return Ok(respond(StatusCode::CREATED, shown(&core, &row, &[])));
    }
    if let Some(attr) = core
        .store
        .scim_user_taken(
            &p.provider,
            &input.user_name.to_lowercase(),
            d.external_id,
            "",
        )
        .await?
    {
        return Err(ScimError::uniqueness(format!(
            "another user of this provider has this {attr}"
        )));
    }
    // A domain organization owning the address takes the new user in; an email organization
    // listing it does so inside the insert.
    let domain = input
        .email_normalized
        .rsplit_once('@')
        .map_or("", |(_, d)| d);
    let by_domain = core
        .store
        .orgs_of_address(&input.email_normalized, domain)
        .await?
        .by_domain
        .map(|o| o.id);
    let id = uuid::Uuid::now_v7().to_string();
    let status = if input.active {
        UserStatus::Active
    } else {
        UserStatus::Deprovisioned
    };
    core.store
        .insert_scim_user(
            &NewUser {
                id: &id,
                email: &input.email,
                email_normalized: &input.email_normalized,
                name: &input.name,
                status: status.as_str(),
                password_hash: None,
                password_must_change: false,
            },
            by_domain.as_deref(),
            &p.provider,
            &d,
            now,
        )
        .await
        .map_err(|e| address_refusal(e, &input.email))?;
    let row = live(&core, &p, &id).await?;
    let org = match &row.org_id {
        Some(o) => core.store.org_by_id(o).await?.map(|o| o.slug),
        None => None,
    };
    record(
        &core,
        &p.provider,
        "scim.user.create",
        (&id, &input.email_normalized),
        json!({ "provider": p.provider, "userName": input.user_name, "externalId": input.external_id, "status": status.as_str(), "org": org }),
    )
    .await;
    Ok(respond(StatusCode::CREATED, shown(&core, &row, &[])))
}

pub async fn put_user(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Answer {
    let current = live(&core, &p, &id).await?;
    let input = read_user(body)?;
    change(&core, &p, &current, input, "put").await
}

pub async fn patch_user(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Answer {
    let current = live(&core, &p, &id).await?;
    let mut doc = match user_json(&current, "") {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    doc.remove("meta");
    super::patch::apply(&mut doc, &body)?;
    let input = read_user(doc)?;
    change(&core, &p, &current, input, "patch").await
}

/// A replacement (PUT, or the result of a PATCH): the record, then the status.
async fn change(
    core: &AppState,
    p: &Provisioner,
    current: &ScimUserRow,
    input: UserInput,
    how: &str,
) -> Answer {
    if is_active(&current.status) && !input.active {
        // Refused before anything is written.
        let user = account(core, &current.id).await?;
        ops(core, p).may_deprovision(&user).await?;
    }
    if let Some(attr) = core
        .store
        .scim_user_taken(
            &p.provider,
            &input.user_name.to_lowercase(),
            input.external_id.as_deref(),
            &current.id,
        )
        .await?
    {
        return Err(ScimError::uniqueness(format!(
            "another user of this provider has this {attr}"
        )));
    }
    let (mut d, resource) = data(&input);
    d.resource = &resource;
    core.store
        .update_scim_user(&current.id, &d, store::now())
        .await
        .map_err(|e| address_refusal(e, &input.email))?;
    record(
        core,
        &p.provider,
        "scim.user.update",
        (&current.id, &input.email_normalized),
        json!({ "provider": p.provider, "by": how, "before": { "email": current.email, "userName": current.user_name, "externalId": current.external_id }, "after": { "email": input.email, "userName": input.user_name, "externalId": input.external_id } }),
    )
    .await;
    settle_status(core, p, &current.id, input.active).await?;
    let row = live(core, p, &current.id).await?;
    Ok(respond(StatusCode::OK, shown(core, &row, &[])))
}

pub async fn delete_user(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    let current = live(&core, &p, &id).await?;
    let user = account(&core, &current.id).await?;
    let revoked = if UserStatus::parse(&user.status) == Some(UserStatus::Deprovisioned) {
        0
    } else {
        let n = ops(&core, &p)
            .deprovision(&user, "scim_delete")
            .await?
            .sessions;
        crate::metrics::deprovisioning("scim", "users_deactivated", 1);
        crate::metrics::deprovisioning("scim", "sessions_ended", n);
        n
    };
    core.store
        .mark_scim_user_deleted(&current.id, store::now())
        .await?;
    record(
        &core,
        &p.provider,
        "scim.user.delete",
        (&user.id, &user.email_normalized),
        json!({ "provider": p.provider, "userName": current.user_name, "externalId": current.external_id, "before": { "status": user.status }, "after": { "status": "deprovisioned" }, "sessions_ended": revoked }),
    )
    .await;
    Ok(super::no_content())
}

fn ops<'a>(core: &'a AppState, p: &Provisioner) -> Ops<'a> {
    Ops {
        base: &core.base,
        actor: Actor::scim(&p.provider),
    }
}

async fn account(core: &AppState, id: &str) -> ScimResult<store::UserRow> {
    core.store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ScimError::not_found("User"))
}

/// Brings the account's status to what the provider says (`active`): deprovisions (ending
/// every session) or reactivates, audited; `None` when nothing changed.
async fn settle_status(
    core: &AppState,
    p: &Provisioner,
    id: &str,
    active: bool,
) -> ScimResult<Option<&'static str>> {
    let user = account(core, id).await?;
    if !active && is_active(&user.status) {
        let revoked = ops(core, p).deprovision(&user, "scim_deactivate").await?;
        crate::metrics::deprovisioning("scim", "users_deactivated", 1);
        crate::metrics::deprovisioning("scim", "sessions_ended", revoked.sessions);
        record(
            core,
            &p.provider,
            "scim.user.deactivate",
            (&user.id, &user.email_normalized),
            json!({ "provider": p.provider, "before": { "status": user.status }, "after": { "status": "deprovisioned" }, "sessions_ended": revoked.sessions, "instances_pending": revoked.instances_pending }),
        )
        .await;
        return Ok(Some("deprovisioned"));
    }
    if active && core.store.reactivate_user(&user.id, store::now()).await? {
        crate::metrics::deprovisioning("scim", "users_reactivated", 1);
        record(
            core,
            &p.provider,
            "scim.user.reactivate",
            (&user.id, &user.email_normalized),
            json!({ "provider": p.provider, "before": { "status": user.status }, "after": { "status": "active" } }),
        )
        .await;
        return Ok(Some("active"));
    }
    Ok(None)
}
