//! `/scim/v2/Groups` (RFC 7643 §4.2): a provider's groups and their members, who must be
//! users that provider provisioned. `[[identity_provider.group_role]]` maps a group's
//! `displayName` (case-insensitively) to roles; a member holds them while a member (read
//! beside their own grants, never copied), so a PATCH that removes them, a rename or a
//! DELETE takes them away — and every change reaches the proxy at once (the members' cached
//! access is invalidated on every instance).

use super::discovery::{GROUP_SCHEMA, MAX_RESULTS, list};
use super::error::{ScimError, ScimResult};
use super::resource::{get, project};
use super::users::{int_param, param, params, search_params};
use super::{Answer, Provisioner, ScimJson, respond};
use crate::audit::{self, Actor};
use crate::core::AppState;
use crate::revocation::Invalidate;
use crate::store::{self, ScimCond, ScimGroupRow, StoreError};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

struct GroupInput {
    display_name: String,
    external_id: Option<String>,
    members: Vec<String>,
}

fn location(core: &AppState, kind: &str, id: &str) -> String {
    core.public_url(&format!("{}/{kind}/{id}", super::BASE))
}

/// Checks a Group body; members must be live users of `provider`.
async fn read_group(
    core: &AppState,
    provider: &str,
    body: &Map<String, Value>,
) -> ScimResult<GroupInput> {
    let listed = get(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|v| {
                v.as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(GROUP_SCHEMA))
            })
        });
    if !listed {
        return Err(ScimError::invalid_value(format!(
            "schemas must list {GROUP_SCHEMA}"
        )));
    }
    let display_name = match get(body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 => s.trim().to_string(),
        _ => {
            return Err(ScimError::invalid_value(
                "displayName is required: a string of 1-256 characters",
            ));
        }
    };
    let external_id = match get(body, "externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ScimError::invalid_value("externalId must be a string")),
    };
    let mut members: Vec<String> = Vec::new();
    match get(body, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, m) in items.iter().enumerate() {
                let Some(id) = m.get("value").and_then(Value::as_str) else {
                    return Err(ScimError::invalid_value(format!(
                        "members[{i}].value must be a user's id"
                    )));
                };
                if core.store.scim_user(provider, id).await?.is_none() {
                    return Err(ScimError::invalid_value(format!(
                        "members[{i}].value: no user {id:?} provisioned by this provider"
                    )));
                }
                if !members.iter().any(|x| x == id) {
                    members.push(id.to_string());
                }
            }
        }
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    }
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

async fn group_json(core: &AppState, g: &ScimGroupRow) -> ScimResult<Value> {
    let members: Vec<Value> = core
        .store
        .scim_group_members(&g.id)
        .await?
        .into_iter()
        // No `display` (optional, RFC 7643 §4.2): a member is named by its id.
        .map(|(id, _)| json!({ "value": id, "type": "User", "$ref": location(core, "Users", &id) }))
        .collect();
    let mut v = json!({
        "schemas": [GROUP_SCHEMA],
        "id": g.id,
        "displayName": g.display_name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": audit::format_time(g.created_at),
            "lastModified": audit::format_time(g.updated_at),
            "location": location(core, "Groups", &g.id),
            "version": format!("W/\"{}\"", g.version),
        }
    });
    if let Some(x) = &g.external_id {
        v["externalId"] = x.clone().into();
    }
    Ok(v)
}

async fn live(core: &AppState, p: &Provisioner, id: &str) -> ScimResult<ScimGroupRow> {
    core.store
        .scim_group(&p.provider, id)
        .await?
        .ok_or_else(|| ScimError::not_found("Group"))
}

/// The roles a group of this name gives its members, as `role@app`.
fn roles_of(core: &AppState, provider: &str, name: &str) -> Vec<String> {
    core.config
        .identity_provider(provider)
        .map(|p| {
            p.group_roles
                .iter()
                .filter(|g| g.group.to_lowercase() == name.to_lowercase())
                .map(|g| format!("{}@{}", g.role, g.app))
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses a change that takes a group mapped to `admin` on every app away from `losing` when
/// one of them is the last full access administrator (conservative: a second way they hold
/// it is not looked for).
async fn keep_last_admin(
    core: &AppState,
    p: &Provisioner,
    group: &str,
    losing: &[String],
) -> ScimResult<()> {
    let gives_admin = core.config.identity_provider(&p.provider).is_some_and(|c| {
        c.group_roles.iter().any(|g| {
            g.group.to_lowercase() == group.to_lowercase() && g.role == "admin" && g.app == "*"
        })
    });
    if !gives_admin {
        return Ok(());
    }
    let ops = crate::admin::ops::Ops {
        base: &core.base,
        actor: Actor::scim(&p.provider),
    };
    for id in losing {
        if let Some(u) = core.store.user_by_id(id).await? {
            ops.may_lose_full_access(
                &u,
                &format!("removed from the group {group:?}, which makes them one"),
            )
            .await?;
        }
    }
    Ok(())
}

/// The members' cached access is cleared on every instance (their roles changed).
async fn invalidate(core: &AppState, users: impl IntoIterator<Item = String>) -> ScimResult<()> {
    let mut last = None;
    for u in users {
        last = Some(core.invalidate(Invalidate::User(u)).await?);
    }
    if let Some(id) = last {
        crate::revocation::await_instances(&core.store, id, std::time::Duration::from_secs(3))
            .await?;
    }
    Ok(())
}

async fn record(core: &AppState, p: &Provisioner, action: &str, g: &str, details: Value) {
    audit::record(
        &core.store,
        audit::Event {
            action,
            outcome: "success",
            actor: &Actor::scim(&p.provider),
            target: g,
            target_user_id: None,
            ip: "",
            details,
        },
    )
    .await;
}

fn taken(e: StoreError) -> ScimError {
    match e {
        StoreError::Conflict => ScimError::uniqueness(
            "another group of this provider has this displayName or externalId",
        ),
        other => other.into(),
    }
}

pub async fn get_groups(
    p: Provisioner,
    State(core): State<AppState>,
    RawQuery(q): RawQuery,
) -> Answer {
    search(&core, &p, params(q)).await
}

pub async fn post_search(
    p: Provisioner,
    State(core): State<AppState>,
    ScimJson(body): ScimJson,
) -> Answer {
    search(&core, &p, search_params(&body)?).await
}

async fn search(core: &AppState, p: &Provisioner, ps: Vec<(String, String)>) -> Answer {
    let cond = match param(&ps, "filter") {
        Some(f) if !f.trim().is_empty() => super::filter::parse_group_filter(f)?,
        _ => ScimCond::All,
    };
    let start = int_param(&ps, "startIndex", 1)?.max(1);
    let count = int_param(&ps, "count", MAX_RESULTS)?.clamp(0, MAX_RESULTS);
    let (total, rows) = core
        .store
        .search_scim_groups(&p.provider, &cond, start, count)
        .await?;
    let mut items = Vec::new();
    for g in &rows {
        let v = group_json(core, g).await?;
        items.push(project(
            v,
            param(&ps, "attributes"),
            param(&ps, "excludedAttributes"),
        ));
    }
    Ok(respond(StatusCode::OK, list(items, total, start)))
}

pub async fn get_group(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let g = live(&core, &p, &id).await?;
    let ps = params(q);
    Ok(respond(
        StatusCode::OK,
        project(
            group_json(&core, &g).await?,
            param(&ps, "attributes"),
            param(&ps, "excludedAttributes"),
        ),
    ))
}

pub async fn post_group(
    p: Provisioner,
    State(core): State<AppState>,
    ScimJson(body): ScimJson,
) -> Answer {
    let input = read_group(&core, &p.provider, &body).await?;
    let now = store::now();
    let g = ScimGroupRow {
        id: uuid::Uuid::now_v7().to_string(),
        provider: p.provider.clone(),
        display_name: input.display_name.clone(),
        external_id: input.external_id.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    core.store
        .insert_scim_group(&g, &input.members)
        .await
        .map_err(taken)?;
    invalidate(&core, input.members.clone()).await?;
    record(
        &core,
        &p,
        "scim.group.create",
        &g.display_name,
        json!({ "provider": p.provider, "id": g.id, "members": input.members, "roles": roles_of(&core, &p.provider, &g.display_name) }),
    )
    .await;
    let g = live(&core, &p, &g.id).await?;
    Ok(respond(StatusCode::CREATED, group_json(&core, &g).await?))
}

pub async fn put_group(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Answer {
    let g = live(&core, &p, &id).await?;
    let input = read_group(&core, &p.provider, &body).await?;
    replace(&core, &p, &g, input).await
}

pub async fn patch_group(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Answer {
    let g = live(&core, &p, &id).await?;
    let mut doc = match group_json(&core, &g).await? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    doc.remove("meta");
    super::patch::apply(&mut doc, &body)?;
    let input = read_group(&core, &p.provider, &doc).await?;
    replace(&core, &p, &g, input).await
}

async fn replace(core: &AppState, p: &Provisioner, g: &ScimGroupRow, input: GroupInput) -> Answer {
    let before: Vec<String> = core
        .store
        .scim_group_members(&g.id)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let renamed = input.display_name.to_lowercase() != g.display_name.to_lowercase();
    let losing: Vec<String> = if renamed {
        before.clone()
    } else {
        before
            .iter()
            .filter(|m| !input.members.contains(m))
            .cloned()
            .collect()
    };
    keep_last_admin(core, p, &g.display_name, &losing).await?;
    core.store
        .replace_scim_group(
            &g.id,
            &input.display_name,
            input.external_id.as_deref(),
            &input.members,
            store::now(),
        )
        .await
        .map_err(taken)?;
    let added: Vec<&String> = input
        .members
        .iter()
        .filter(|m| !before.contains(m))
        .collect();
    let removed: Vec<&String> = before
        .iter()
        .filter(|m| !input.members.contains(m))
        .collect();
    // A rename can change every member's roles; else only the added and removed change.
    let affected: Vec<String> = if renamed {
        before.iter().chain(input.members.iter()).cloned().collect()
    } else {
        added
            .iter()
            .chain(removed.iter())
            .map(|s| s.to_string())
            .collect()
    };
    invalidate(core, affected).await?;
    record(
        core,
        p,
        "scim.group.update",
        &input.display_name,
        json!({ "provider": p.provider, "id": g.id, "before": { "displayName": g.display_name }, "after": { "displayName": input.display_name }, "added": added, "removed": removed, "roles": roles_of(core, &p.provider, &input.display_name) }),
    )
    .await;
    let g = live(core, p, &g.id).await?;
    Ok(respond(StatusCode::OK, group_json(core, &g).await?))
}

pub async fn delete_group(
    p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    let g = live(&core, &p, &id).await?;
    let members: Vec<String> = core
        .store
        .scim_group_members(&g.id)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    keep_last_admin(&core, &p, &g.display_name, &members).await?;
    core.store.delete_scim_group(&g.id).await?;
    invalidate(&core, members.clone()).await?;
    record(
        &core,
        &p,
        "scim.group.delete",
        &g.display_name,
        json!({ "provider": p.provider, "id": g.id, "members": members }),
    )
    .await;
    Ok(super::no_content())
}
