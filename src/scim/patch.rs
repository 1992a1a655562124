//! PATCH (RFC 7644 §3.5.2) applied to a resource document, in the shapes clients really send:
//!
//! - `op` in any case (Entra ID writes `Replace`, `Add`, `Remove`);
//! - booleans as strings (`"False"`), read where a boolean is meant (`active`);
//! - no `path`, the value an object of attributes — Okta's `{"op": "replace", "value":
//!   {"active": false}}`, and Entra ID's keys that are paths themselves (`"name.givenName"`);
//! - value paths with a filter and a sub-attribute, `emails[type eq "work"].value`: the
//!   matching elements are changed, and an `add`/`replace` that matches none adds one built
//!   from the filter's `eq` terms (Entra ID sets a work email that way).
//!
//! Paths are parsed by the `scim_v2` crate. The result is checked again as a whole resource
//! (`resource::read_user`) before anything is stored.

use super::error::{ScimError, ScimResult};
use super::resource::boolean;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies every operation of a PatchOp body to `doc`, in order (all or nothing: the caller
/// stores `doc` only when this succeeds).
pub fn apply(doc: &mut Map<String, Value>, body: &Map<String, Value>) -> ScimResult<()> {
    let schemas_ok = super::resource::get(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|v| {
                v.as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(PATCH_SCHEMA))
            })
        });
    if !schemas_ok {
        return Err(ScimError::invalid_value(format!(
            "schemas must list {PATCH_SCHEMA}"
        )));
    }
    let Some(Value::Array(ops)) = super::resource::get(body, "Operations") else {
        return Err(ScimError::invalid_value(
            "Operations must be an array of operations",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_value("Operations is empty"));
    }
    for (i, o) in ops.iter().enumerate() {
        let Some(o) = o.as_object() else {
            return Err(ScimError::invalid_value(format!(
                "Operations[{i}] must be an object"
            )));
        };
        let op = match super::resource::get(o, "op").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("add") => Op::Add,
            Some(s) if s.eq_ignore_ascii_case("replace") => Op::Replace,
            Some(s) if s.eq_ignore_ascii_case("remove") => Op::Remove,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}].op must be add, replace or remove"
                )));
            }
        };
        let value = super::resource::get(o, "value").cloned();
        let path = match super::resource::get(o, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            Some(Value::String(p)) => Some(p.trim().to_string()),
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "Operations[{i}].path must be a string"
                )));
            }
        };
        match (path, op) {
            (None, Op::Remove) => {
                return Err(ScimError::bad(
                    "noTarget",
                    format!("Operations[{i}]: remove needs a path"),
                ));
            }
            (None, _) => {
                let Some(Value::Object(attrs)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "Operations[{i}]: without a path, value must be an object of attributes"
                    )));
                };
                for (k, v) in attrs {
                    let path = parse_path(&k, i)?;
                    one(doc, op, &path, Some(v), i)?;
                }
            }
            (Some(p), _) => {
                let path = parse_path(&p, i)?;
                if op != Op::Remove && value.is_none() {
                    return Err(ScimError::invalid_value(format!(
                        "Operations[{i}]: {p}: a value is required"
                    )));
                }
                one(doc, op, &path, value, i)?;
            }
        }
    }
    Ok(())
}

fn parse_path(p: &str, i: usize) -> ScimResult<PatchPath> {
    p.parse::<PatchPath>().map_err(|_| {
        ScimError::invalid_path(format!(
            "Operations[{i}].path {p:?} is not an attribute path (RFC 7644 §3.5.2)"
        ))
    })
}

/// The key of `m` spelled like `name` in any case, if there is one.
fn key_of(m: &Map<String, Value>, name: &str) -> Option<String> {
    m.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The object attributes live in: the document itself for the core schema, or the object of
/// an extension (`urn:…:enterprise:2.0:User:department` → `doc["urn:…:User"]["department"]`).
fn container<'a>(doc: &'a mut Map<String, Value>, a: &AttrPath) -> &'a mut Map<String, Value> {
    match &a.uri {
        Some(uri) if !uri.eq_ignore_ascii_case(super::discovery::USER_SCHEMA) => {
            let k = key_of(doc, uri).unwrap_or_else(|| uri.clone());
            let slot = doc.entry(k).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut().expect("an object")
        }
        _ => doc,
    }
}

/// Entra ID sends `"False"`; where Gatehouse reads a boolean, it is stored as one.
fn normalize(name: &str, v: Value) -> Value {
    if name.eq_ignore_ascii_case("active") || name.eq_ignore_ascii_case("primary") {
        boolean(&v).map(Value::Bool).unwrap_or(v)
    } else {
        v
    }
}

fn set(m: &mut Map<String, Value>, name: &str, op: Op, v: Value) {
    let k = key_of(m, name).unwrap_or_else(|| name.to_string());
    let v = normalize(name, v);
    match (op, m.get_mut(&k), v) {
        // RFC 7644 §3.5.2.1: add to a multi-valued attribute appends the new values.
        (Op::Add, Some(Value::Array(have)), Value::Array(new)) => {
            for n in new {
                if !have.contains(&n) {
                    have.push(n);
                }
            }
        }
        (Op::Add, Some(Value::Array(have)), single) => {
            if !have.contains(&single) {
                have.push(single);
            }
        }
        // Add merges into a complex attribute.
        (Op::Add, Some(Value::Object(have)), Value::Object(new)) => {
            for (nk, nv) in new {
                set(have, &nk, Op::Replace, nv);
            }
        }
        (_, _, v) => {
            m.insert(k, v);
        }
    }
}

fn one(
    doc: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<Value>,
    i: usize,
) -> ScimResult<()> {
    match path {
        PatchPath::Attr(a) => {
            let m = container(doc, a);
            match (&a.sub_attr, op) {
                (None, Op::Remove) => {
                    if let Some(k) = key_of(m, &a.name) {
                        match (m.get_mut(&k), value) {
                            // Remove with a value: those elements of a multi-valued attribute.
                            (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                                items.retain(|x| !gone.iter().any(|g| same_element(x, g)));
                            }
                            _ => {
                                m.remove(&k);
                            }
                        }
                    }
                }
                (None, _) => set(m, &a.name, op, value.unwrap_or(Value::Null)),
                (Some(sub), _) => {
                    let k = key_of(m, &a.name).unwrap_or_else(|| a.name.clone());
                    let slot = m.entry(k).or_insert_with(|| Value::Object(Map::new()));
                    match slot {
                        Value::Object(inner) => {
                            if op == Op::Remove {
                                if let Some(sk) = key_of(inner, sub) {
                                    inner.remove(&sk);
                                }
                            } else {
                                set(inner, sub, op, value.unwrap_or(Value::Null));
                            }
                        }
                        // `emails.value` on a multi-valued attribute: every element.
                        Value::Array(items) => {
                            for it in items.iter_mut().filter_map(Value::as_object_mut) {
                                if op == Op::Remove {
                                    if let Some(sk) = key_of(it, sub) {
                                        it.remove(&sk);
                                    }
                                } else {
                                    set(it, sub, Op::Replace, value.clone().unwrap_or(Value::Null));
                                }
                            }
                        }
                        _ if op == Op::Remove => {}
                        other => {
                            let mut inner = Map::new();
                            set(&mut inner, sub, op, value.unwrap_or(Value::Null));
                            *other = Value::Object(inner);
                        }
                    }
                }
            }
            Ok(())
        }
        PatchPath::Value(vp) => {
            let m = container(doc, &vp.attr);
            let k = key_of(m, &vp.attr.name).unwrap_or_else(|| vp.attr.name.clone());
            if vp.attr.sub_attr.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "Operations[{i}]: a value filter applies to a multi-valued attribute, not to {}",
                    vp.attr
                )));
            }
            let items = m
                .entry(k.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !items.is_array() {
                return Err(ScimError::invalid_path(format!(
                    "Operations[{i}]: {k} is not multi-valued"
                )));
            }
            let items = items.as_array_mut().expect("an array");
            let mut matched = 0;
            let mut keep = Vec::with_capacity(items.len());
            for mut it in std::mem::take(items) {
                if !matches(&it, &vp.filter) {
                    keep.push(it);
                    continue;
                }
                matched += 1;
                match (&vp.sub_attr, op) {
                    (None, Op::Remove) => continue,
                    (None, _) => {
                        if let (Some(obj), Some(Value::Object(new))) =
                            (it.as_object_mut(), value.clone())
                        {
                            for (nk, nv) in new {
                                set(obj, &nk, Op::Replace, nv);
                            }
                        }
                    }
                    (Some(sub), Op::Remove) => {
                        if let Some(obj) = it.as_object_mut()
                            && let Some(sk) = key_of(obj, sub)
                        {
                            obj.remove(&sk);
                        }
                    }
                    (Some(sub), _) => {
                        if let Some(obj) = it.as_object_mut() {
                            set(obj, sub, Op::Replace, value.clone().unwrap_or(Value::Null));
                        }
                    }
                }
                keep.push(it);
            }
            *items = keep;
            if matched == 0 && op != Op::Remove {
                // Nothing matched: a new element, made of the filter's `eq` terms and the value.
                let mut obj = Map::new();
                seed(&vp.filter, &mut obj);
                match (&vp.sub_attr, value) {
                    (Some(sub), Some(v)) => set(&mut obj, sub, Op::Replace, v),
                    (None, Some(Value::Object(new))) => {
                        for (nk, nv) in new {
                            set(&mut obj, &nk, Op::Replace, nv);
                        }
                    }
                    _ => {}
                }
                items.push(Value::Object(obj));
            }
            Ok(())
        }
    }
}

/// Two elements of a multi-valued attribute are the same when their `value`s are (members
/// are removed by `{"value": id}`), else when equal.
fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The `eq` terms of a filter's conjunction, as attributes of a new element.
fn seed(f: &ValFilter, obj: &mut Map<String, Value>) {
    match f {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) if p.sub_attr.is_none() => {
            let v = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return,
            };
            obj.insert(p.name.clone(), v);
        }
        ValFilter::And(items) => items.iter().for_each(|i| seed(i, obj)),
        _ => {}
    }
}

/// Whether an element of a multi-valued attribute matches a value filter (strings compared
/// case-insensitively: `type eq "Work"` finds `"work"`).
fn matches(item: &Value, f: &ValFilter) -> bool {
    match f {
        ValFilter::Not(inner) => !matches(item, inner),
        ValFilter::And(items) => items.iter().all(|i| matches(item, i)),
        ValFilter::Or(items) => items.iter().any(|i| matches(item, i)),
        ValFilter::Attr(AttrExp::Present(p)) => field(item, p).is_some_and(|v| !v.is_null()),
        ValFilter::Attr(AttrExp::Comparison(p, op, want)) => {
            let Some(have) = field(item, p) else {
                return *op == CompareOp::Ne;
            };
            let text = |v: &Value| match v {
                Value::String(s) => Some(s.to_lowercase()),
                _ => None,
            };
            match want {
                CompValue::Str(w) => {
                    let w = w.to_lowercase();
                    let Some(h) = text(have) else {
                        return *op == CompareOp::Ne;
                    };
                    match op {
                        CompareOp::Eq => h == w,
                        CompareOp::Ne => h != w,
                        CompareOp::Co => h.contains(&w),
                        CompareOp::Sw => h.starts_with(&w),
                        CompareOp::Ew => h.ends_with(&w),
                        CompareOp::Gt => h > w,
                        CompareOp::Ge => h >= w,
                        CompareOp::Lt => h < w,
                        CompareOp::Le => h <= w,
                    }
                }
                CompValue::True | CompValue::False => {
                    let w = matches!(want, CompValue::True);
                    let h = boolean(have);
                    match op {
                        CompareOp::Eq => h == Some(w),
                        CompareOp::Ne => h != Some(w),
                        _ => false,
                    }
                }
                CompValue::Null => match op {
                    CompareOp::Eq => have.is_null(),
                    CompareOp::Ne => !have.is_null(),
                    _ => false,
                },
                CompValue::Number(n) => match op {
                    CompareOp::Eq => have.as_f64() == n.as_f64(),
                    CompareOp::Ne => have.as_f64() != n.as_f64(),
                    _ => false,
                },
            }
        }
    }
}

fn field<'a>(item: &'a Value, p: &AttrPath) -> Option<&'a Value> {
    let obj = item.as_object()?;
    let v = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&p.name))
        .map(|(_, v)| v)?;
    match &p.sub_attr {
        Some(s) => v
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(s))
            .map(|(_, v)| v),
        None => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(doc: Value, ops: Value) -> ScimResult<Value> {
        let mut d = doc.as_object().unwrap().clone();
        let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
        apply(&mut d, body.as_object().unwrap())?;
        Ok(Value::Object(d))
    }

    fn user() -> Value {
        json!({ "userName": "ann@example.com", "active": true, "name": { "givenName": "Ann" },
                "emails": [{ "type": "work", "value": "ann@example.com", "primary": true }] })
    }

    #[test]
    fn entra_and_okta_shapes() {
        // Entra ID: capitalised op, a string boolean.
        let d = patched(
            user(),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        )
        .unwrap();
        assert_eq!(d["active"], false);
        // Okta: no path, an object of attributes.
        let d = patched(
            user(),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .unwrap();
        assert_eq!(d["active"], false);
        // Entra ID: path-less with dotted keys.
        let d = patched(user(), json!([{ "op": "Add", "value": { "name.familyName": "Lee", "displayName": "Ann Lee" } }])).unwrap();
        assert_eq!(
            d["name"],
            json!({ "givenName": "Ann", "familyName": "Lee" })
        );
        assert_eq!(d["displayName"], "Ann Lee");
        // Entra ID: a value path with a sub-attribute.
        let d = patched(user(), json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ann.lee@example.com" }])).unwrap();
        assert_eq!(
            d["emails"],
            json!([{ "type": "work", "value": "ann.lee@example.com", "primary": true }])
        );
        // ... which adds the element when none matches.
        let d = patched(user(), json!([{ "op": "Add", "path": "emails[type eq \"home\"].value", "value": "ann@home.example" }])).unwrap();
        assert_eq!(
            d["emails"][1],
            json!({ "type": "home", "value": "ann@home.example" })
        );
        // Remove by a value filter, and an extension attribute.
        let d = patched(user(), json!([
            { "op": "remove", "path": "emails[type eq \"work\"]" },
            { "op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales" }
        ])).unwrap();
        assert_eq!(d["emails"], json!([]));
        assert_eq!(
            d["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Sales"
        );
    }

    #[test]
    fn malformed_operations_are_named() {
        let cases = [
            (
                json!([{ "op": "frobnicate", "path": "active", "value": true }]),
                "invalidValue",
                "op",
            ),
            (json!([{ "op": "remove" }]), "noTarget", "path"),
            (
                json!([{ "op": "replace", "path": "emails[type eq", "value": "x" }]),
                "invalidPath",
                "path",
            ),
            (
                json!([{ "op": "replace", "value": "x" }]),
                "invalidValue",
                "object",
            ),
            (
                json!([{ "op": "replace", "path": "displayName" }]),
                "invalidValue",
                "value",
            ),
            (json!([]), "invalidValue", "empty"),
            (json!(["x"]), "invalidValue", "object"),
        ];
        for (ops, kind, word) in cases {
            let e = patched(user(), ops.clone()).unwrap_err();
            assert_eq!(e.scim_type, Some(kind), "{ops}");
            assert!(e.detail.contains(word), "{ops}: {}", e.detail);
        }
        let mut d = user().as_object().unwrap().clone();
        let e = apply(&mut d, json!({ "Operations": [] }).as_object().unwrap()).unwrap_err();
        assert!(e.detail.contains(PATCH_SCHEMA));
    }
}
