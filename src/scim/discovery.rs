//! RFC 7644 §4 discovery: what this service provider supports (`ServiceProviderConfig`), the
//! schemas of its resources (`Schemas`, RFC 7643 §7) and its resource types (`ResourceTypes`,
//! RFC 7643 §6). Only the attributes Gatehouse keeps are declared; a client may send others,
//! which are stored with the resource and returned as sent.

use super::error::{ScimError, ScimResult};
use super::{Answer, Provisioner, respond};
use crate::core::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The most resources one page of a list holds.
pub const MAX_RESULTS: i64 = 200;

fn location(core: &AppState, path: &str) -> String {
    core.public_url(&format!("{}{path}", super::BASE))
}

pub async fn get_service_provider_config(_p: Provisioner, State(core): State<AppState>) -> Answer {
    Ok(respond(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": core.public_url("/"),
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": MAX_RESULTS },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": false },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The identity provider's scim_token, as Authorization: Bearer <token>",
                "primary": true
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": location(&core, "/ServiceProviderConfig")
            }
        }),
    ))
}

/// One attribute definition (RFC 7643 §7).
fn attr(name: &str, ty: &str, multi: bool, required: bool, uniqueness: &str) -> Value {
    json!({
        "name": name,
        "type": ty,
        "multiValued": multi,
        "description": name,
        "required": required,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn complex(name: &str, multi: bool, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, "none");
    a["subAttributes"] = Value::Array(subs);
    a
}

fn complex_required(name: &str, multi: bool, subs: Vec<Value>) -> Value {
    let mut a = complex(name, multi, subs);
    a["required"] = true.into();
    a
}

fn user_schema(core: &AppState) -> Value {
    let mut external = attr("externalId", "string", false, false, "none");
    external["caseExact"] = true.into();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person with an account",
        "attributes": [
            attr("userName", "string", false, true, "server"),
            complex("name", false, vec![
                attr("formatted", "string", false, false, "none"),
                attr("familyName", "string", false, false, "none"),
                attr("givenName", "string", false, false, "none"),
            ]),
            attr("displayName", "string", false, false, "none"),
            // Gatehouse knows people by their address: `emails` is required unless the
            // userName is one (which Google and Okta send; Entra ID's is a UPN).
            complex_required("emails", true, vec![
                attr("value", "string", false, true, "none"),
                attr("type", "string", false, false, "none"),
                attr("primary", "boolean", false, false, "none"),
            ]),
            // Required here (RFC 7643 makes it optional): every account is active or not, so
            // it is always returned and cannot be removed; a create without it is active.
            attr("active", "boolean", false, true, "none"),
            external,
        ],
        "meta": { "resourceType": "Schema", "location": location(core, &format!("/Schemas/{USER_SCHEMA}")) }
    })
}

fn group_schema(core: &AppState) -> Value {
    let mut display = attr("displayName", "string", false, true, "server");
    display["description"] =
        "the group's name: [[identity_provider.group_role]] maps it to roles".into();
    let mut external = attr("externalId", "string", false, false, "none");
    external["caseExact"] = true.into();
    let mut value = attr("value", "string", false, false, "none");
    value["mutability"] = "immutable".into();
    let mut reference = attr("$ref", "reference", false, false, "none");
    reference["referenceTypes"] = json!(["User"]);
    reference["mutability"] = "immutable".into();
    let mut ty = attr("type", "string", false, false, "none");
    ty["canonicalValues"] = json!(["User"]);
    ty["mutability"] = "immutable".into();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of users (its members get the roles group_role maps its name to)",
        "attributes": [
            display,
            complex("members", true, vec![value, reference, ty]),
            external,
        ],
        "meta": { "resourceType": "Schema", "location": location(core, &format!("/Schemas/{GROUP_SCHEMA}")) }
    })
}

fn schemas(core: &AppState) -> Vec<Value> {
    vec![user_schema(core), group_schema(core)]
}

fn resource_types(core: &AppState) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People",
            "schema": USER_SCHEMA,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": location(core, "/ResourceTypes/User") }
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": location(core, "/ResourceTypes/Group") }
        }),
    ]
}

/// A ListResponse of every item (RFC 7644 §3.4.2).
pub fn list(items: Vec<Value>, total: i64, start_index: i64) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

pub async fn get_schemas(_p: Provisioner, State(core): State<AppState>) -> Answer {
    let all = schemas(&core);
    let n = all.len() as i64;
    Ok(respond(StatusCode::OK, list(all, n, 1)))
}

pub async fn get_schema(
    _p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    one(schemas(&core), &id, "Schema")
}

pub async fn get_resource_types(_p: Provisioner, State(core): State<AppState>) -> Answer {
    let all = resource_types(&core);
    let n = all.len() as i64;
    Ok(respond(StatusCode::OK, list(all, n, 1)))
}

pub async fn get_resource_type(
    _p: Provisioner,
    State(core): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    one(resource_types(&core), &id, "ResourceType")
}

fn one(items: Vec<Value>, id: &str, what: &str) -> ScimResult<axum::response::Response> {
    items
        .into_iter()
        .find(|v| v["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
        .map(|v| respond(StatusCode::OK, v))
        .ok_or_else(|| ScimError::not_found(what))
}
