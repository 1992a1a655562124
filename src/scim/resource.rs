//! A SCIM User (RFC 7643 §4.1) onto an account and back. The account keeps what Gatehouse
//! acts on — its address, display name and status — and the provider's record keeps its
//! `userName`, `externalId` and the resource as sent (other attributes come back as sent).
//!
//! The account's address is the `userName` when that is an address (Google, Okta), else the
//! primary (or first) of `emails` (Entra ID's `userName` is a UPN, which may differ from the
//! mail address; the conformance checker's is a random string). A password is never kept:
//! provisioned people sign in through their provider.

use super::discovery::USER_SCHEMA;
use super::error::{ScimError, ScimResult};
use crate::directory::{normalize_email, valid_email};
use crate::store::ScimUserRow;
use serde_json::{Map, Value, json};

/// A User as the provider described it, checked.
pub struct UserInput {
    pub user_name: String,
    pub external_id: Option<String>,
    pub email: String,
    pub email_normalized: String,
    pub name: String,
    pub active: bool,
    /// What is stored of the resource: as sent, without `id`, `meta` and `password`, with
    /// `active` a boolean.
    pub resource: Map<String, Value>,
}

/// Reads a boolean as SCIM clients send it: `true`, or Entra ID's `"True"`/`"False"`.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The value of `key`, matched case-insensitively (RFC 7643 §2.1: attribute names are).
pub fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn string(m: &Map<String, Value>, key: &str) -> ScimResult<Option<String>> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{key} must be a string"))),
    }
}

/// Checks a User body (POST, PUT, or the result of a PATCH).
pub fn read_user(mut body: Map<String, Value>) -> ScimResult<UserInput> {
    match get(&body, "schemas") {
        Some(Value::Array(s))
            if s.iter().any(|v| {
                v.as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(USER_SCHEMA))
            }) => {}
        _ => {
            return Err(ScimError::invalid_value(format!(
                "schemas must list {USER_SCHEMA}"
            )));
        }
    }
    let user_name = string(&body, "userName")?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    if user_name.len() > 254 || user_name.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(
            "userName must be at most 254 characters, without control characters",
        ));
    }
    let external_id = string(&body, "externalId")?;
    let active = match get(&body, "active") {
        None | Some(Value::Null) => true,
        Some(v) => {
            boolean(v).ok_or_else(|| ScimError::invalid_value("active must be true or false"))?
        }
    };
    let emails = match get(&body, "emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, e) in items.iter().enumerate() {
                let value = e.get("value").and_then(Value::as_str).ok_or_else(|| {
                    ScimError::invalid_value(format!("emails[{i}].value must be a string"))
                })?;
                let primary = e.get("primary").and_then(boolean).unwrap_or(false);
                out.push((value.trim().to_string(), primary));
            }
            out
        }
        Some(_) => return Err(ScimError::invalid_value("emails must be an array")),
    };
    let email = if valid_email(&user_name) {
        user_name.clone()
    } else {
        let chosen = emails
            .iter()
            .find(|(_, primary)| *primary)
            .or(emails.first())
            .map(|(v, _)| v.clone());
        match chosen {
            Some(e) if valid_email(&e) => e,
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "emails: the primary email is not an email address",
                ));
            }
            None => {
                return Err(ScimError::invalid_value(
                    "userName is not an email address and no emails[].value is given: \
                     Gatehouse knows people by their address",
                ));
            }
        }
    };
    let display = string(&body, "displayName")?;
    let name_obj = get(&body, "name").and_then(Value::as_object);
    let part = |k: &str| {
        name_obj
            .and_then(|n| get(n, k))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = display
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .or_else(|| part("formatted").map(str::to_string))
        .or_else(|| {
            let joined = [part("givenName"), part("familyName")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        })
        .unwrap_or_default();
    body.retain(|k, _| {
        !["id", "meta", "password"]
            .iter()
            .any(|x| k.eq_ignore_ascii_case(x))
    });
    // One spelling of the attributes Gatehouse reads, as a boolean for `active`.
    for k in ["userName", "externalId", "active"] {
        let found: Vec<String> = body
            .keys()
            .filter(|x| x.eq_ignore_ascii_case(k) && x.as_str() != k)
            .cloned()
            .collect();
        for f in found {
            if let Some(v) = body.remove(&f) {
                body.insert(k.to_string(), v);
            }
        }
    }
    body.insert("active".into(), active.into());
    body.insert("userName".into(), user_name.clone().into());
    Ok(UserInput {
        email_normalized: normalize_email(&email),
        email,
        user_name,
        external_id,
        name,
        active,
        resource: body,
    })
}

/// The User as the provider is shown it: the stored resource, with what Gatehouse decides
/// (`id`, `userName`, `externalId`, `active`, `meta`) from the account.
pub fn user_json(row: &ScimUserRow, location: &str) -> Value {
    let mut doc = match serde_json::from_str::<Value>(&row.resource) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // RFC 7643 §3: `schemas` lists the core schema and every extension the resource holds.
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    for k in doc.keys() {
        if k.starts_with("urn:") && doc[k].is_object() && !k.eq_ignore_ascii_case(USER_SCHEMA) {
            schemas.push(k.clone().into());
        }
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.insert("id".into(), row.id.clone().into());
    doc.insert("userName".into(), row.user_name.clone().into());
    match &row.external_id {
        Some(x) => doc.insert("externalId".into(), x.clone().into()),
        None => doc.remove("externalId"),
    };
    doc.insert("active".into(), is_active(&row.status).into());
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": crate::audit::format_time(row.created_at),
            "lastModified": crate::audit::format_time(row.updated_at),
            "location": location,
            "version": format!("W/\"{}\"", row.version),
        }),
    );
    Value::Object(doc)
}

/// RFC 7644 §3.9 `attributes` / `excludedAttributes`: top-level names or `name.sub` paths
/// (case-insensitive); `id` and `schemas` are always returned.
pub fn project(mut v: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let split = |s: &str| -> Vec<(String, Option<String>)> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                let a = a
                    .strip_prefix(USER_SCHEMA)
                    .map(|r| r.trim_start_matches(':'))
                    .unwrap_or(a)
                    .to_ascii_lowercase();
                match a.split_once('.') {
                    Some((n, s)) => (n.to_string(), Some(s.to_string())),
                    None => (a, None),
                }
            })
            .collect()
    };
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    let always = |k: &str| k == "id" || k == "schemas";
    if let Some(list) = attributes.map(split).filter(|l| !l.is_empty()) {
        obj.retain(|k, val| {
            let lk = k.to_ascii_lowercase();
            if always(&lk) {
                return true;
            }
            let wanted: Vec<&Option<String>> = list
                .iter()
                .filter(|(n, _)| *n == lk)
                .map(|(_, s)| s)
                .collect();
            if wanted.is_empty() {
                return false;
            }
            if wanted.iter().any(|s| s.is_none()) {
                return true;
            }
            let subs: Vec<&String> = wanted.iter().filter_map(|s| s.as_ref()).collect();
            let keep = |m: &mut Map<String, Value>| {
                m.retain(|sk, _| subs.iter().any(|s| s.eq_ignore_ascii_case(sk)))
            };
            match val {
                Value::Object(m) => keep(m),
                Value::Array(items) => items.iter_mut().for_each(|i| {
                    if let Some(m) = i.as_object_mut() {
                        keep(m)
                    }
                }),
                _ => {}
            }
            true
        });
    } else if let Some(list) = excluded.map(split) {
        obj.retain(|k, val| {
            let lk = k.to_ascii_lowercase();
            if always(&lk) {
                return true;
            }
            if list.iter().any(|(n, s)| *n == lk && s.is_none()) {
                return false;
            }
            for (_, sub) in list.iter().filter(|(n, _)| *n == lk) {
                if let (Some(sub), Value::Object(m)) = (sub, &mut *val) {
                    m.retain(|sk, _| !sk.eq_ignore_ascii_case(sub));
                }
            }
            true
        });
    }
    v
}

/// SCIM `active`: the account is neither deprovisioned nor blocked (an administrator's block
/// is not the provider's to lift, and a provider's deactivation of a blocked person leaves
/// the block in place).
pub fn is_active(status: &str) -> bool {
    status != "deprovisioned" && status != "blocked"
}
