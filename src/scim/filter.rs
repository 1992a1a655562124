//! `?filter=` (RFC 7644 §3.4.2.2) for Users. The grammar is parsed by the `scim_v2` crate
//! (an LALRPOP parser with depth and term limits, so a hostile filter cannot exhaust the
//! stack); here its tree is mapped onto the attributes Gatehouse indexes — `userName`,
//! `externalId`, `emails.value` (also `emails[value eq "…"]`), `displayName`, `active`, `id`
//! — as a `store::ScimCond` that the store turns into one parameterised WHERE. Anything else
//! is a 400 `invalidFilter` naming what is not supported.

use super::error::{ScimError, ScimResult};
use crate::store::{ScimColumn, ScimCond, ScimOp};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};

/// The longest filter read (a hundred-term batch lookup fits easily).
const MAX_LEN: usize = 8 * 1024;

const SUPPORTED: &str = "userName, externalId, emails.value, displayName, active, id";
const GROUP_SUPPORTED: &str = "displayName, externalId, id";

/// Which resource a filter is over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

pub fn parse_user_filter(text: &str) -> ScimResult<ScimCond> {
    parse(text, Kind::User)
}

/// `GET /Groups?filter=`: `displayName` (case-insensitive), `externalId`, `id`.
pub fn parse_group_filter(text: &str) -> ScimResult<ScimCond> {
    parse(text, Kind::Group)
}

fn parse(text: &str, kind: Kind) -> ScimResult<ScimCond> {
    if text.len() > MAX_LEN {
        return Err(ScimError::invalid_filter(format!(
            "the filter is longer than {MAX_LEN} bytes"
        )));
    }
    let parsed: Filter = text.parse().map_err(|_| {
        ScimError::invalid_filter(
            "the filter does not parse (RFC 7644 §3.4.2.2: attribute operator value, e.g. userName eq \"ann@example.com\")",
        )
    })?;
    map(&parsed, kind)
}

fn map(f: &Filter, kind: Kind) -> ScimResult<ScimCond> {
    let all = |items: &[Filter]| {
        items
            .iter()
            .map(|i| map(i, kind))
            .collect::<ScimResult<Vec<_>>>()
    };
    Ok(match f {
        Filter::Attr(e) => attr_exp(e, None, kind)?,
        Filter::ValuePath(vp) => {
            let col = column(&vp.attr, kind)?;
            if kind != Kind::User || col != Some(ScimColumn::Email) || vp.attr.sub_attr.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "a value filter ([…]) is supported on emails only, not on {}",
                    vp.attr
                )));
            }
            val_filter(&vp.filter)?
        }
        Filter::Not(inner) => ScimCond::Not(Box::new(map(inner, kind)?)),
        Filter::And(items) => ScimCond::And(all(items)?),
        Filter::Or(items) => ScimCond::Or(all(items)?),
    })
}

/// Inside `emails[…]`: only `value` may be compared.
fn val_filter(f: &ValFilter) -> ScimResult<ScimCond> {
    Ok(match f {
        ValFilter::Attr(e) => attr_exp(e, Some(ScimColumn::Email), Kind::User)?,
        ValFilter::Not(inner) => ScimCond::Not(Box::new(val_filter(inner)?)),
        ValFilter::And(items) => {
            ScimCond::And(items.iter().map(val_filter).collect::<ScimResult<_>>()?)
        }
        ValFilter::Or(items) => {
            ScimCond::Or(items.iter().map(val_filter).collect::<ScimResult<_>>()?)
        }
    })
}

/// The column an attribute path names; `None` for `active`.
fn column(p: &AttrPath, kind: Kind) -> ScimResult<Option<ScimColumn>> {
    let schema = match kind {
        Kind::User => super::discovery::USER_SCHEMA,
        Kind::Group => super::discovery::GROUP_SCHEMA,
    };
    if let Some(uri) = &p.uri
        && !uri.eq_ignore_ascii_case(schema)
    {
        return Err(unsupported(p, kind));
    }
    let name = p.name.to_ascii_lowercase();
    let sub = p.sub_attr.as_deref().map(str::to_ascii_lowercase);
    if kind == Kind::Group {
        return Ok(Some(match (name.as_str(), sub) {
            ("displayname", None) => ScimColumn::GroupName,
            ("externalid", None) => ScimColumn::GroupExternalId,
            ("id", None) => ScimColumn::GroupId,
            _ => return Err(unsupported(p, kind)),
        }));
    }
    Ok(Some(match (name.as_str(), sub.as_deref()) {
        ("username", None) => ScimColumn::UserName,
        ("externalid", None) => ScimColumn::ExternalId,
        ("emails", None | Some("value")) => ScimColumn::Email,
        ("displayname", None) => ScimColumn::DisplayName,
        ("id", None) => ScimColumn::Id,
        ("active", None) => return Ok(None),
        _ => return Err(unsupported(p, kind)),
    }))
}

fn unsupported(p: &AttrPath, kind: Kind) -> ScimError {
    let supported = match kind {
        Kind::User => SUPPORTED,
        Kind::Group => GROUP_SUPPORTED,
    };
    ScimError::invalid_filter(format!(
        "filtering on {p} is not supported (supported: {supported})"
    ))
}

/// One comparison; `inside` is the column of the enclosing `emails[…]`.
fn attr_exp(e: &AttrExp, inside: Option<ScimColumn>, kind: Kind) -> ScimResult<ScimCond> {
    let path = match e {
        AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
    };
    let col = match inside {
        Some(c) => {
            if path.uri.is_some()
                || path.sub_attr.is_some()
                || !path.name.eq_ignore_ascii_case("value")
            {
                return Err(ScimError::invalid_filter(format!(
                    "inside emails[…] only value may be compared, not {path}"
                )));
            }
            Some(c)
        }
        None => column(path, kind)?,
    };
    match (e, col) {
        (AttrExp::Present(_), Some(c)) => Ok(ScimCond::Present(c)),
        (AttrExp::Present(_), None) => Ok(ScimCond::All),
        (AttrExp::Comparison(_, op, v), None) => {
            let b = match v {
                CompValue::True => true,
                CompValue::False => false,
                // Entra ID and others write booleans as strings.
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                _ => {
                    return Err(ScimError::invalid_filter(
                        "active is compared with true or false",
                    ));
                }
            };
            match op {
                CompareOp::Eq => Ok(ScimCond::Active(b)),
                CompareOp::Ne => Ok(ScimCond::Active(!b)),
                _ => Err(ScimError::invalid_filter(
                    "active supports only eq, ne and pr",
                )),
            }
        }
        (AttrExp::Comparison(p, op, v), Some(c)) => {
            let CompValue::Str(s) = v else {
                return Err(ScimError::invalid_filter(format!(
                    "{p} is a string: compare it with a quoted value"
                )));
            };
            // caseExact false (RFC 7643 §4.1): both sides lowercased; externalId and id exact.
            let value = match c {
                ScimColumn::ExternalId
                | ScimColumn::Id
                | ScimColumn::GroupExternalId
                | ScimColumn::GroupId => s.clone(),
                _ => s.to_lowercase(),
            };
            let op = match op {
                CompareOp::Eq => ScimOp::Eq,
                CompareOp::Ne => ScimOp::Ne,
                CompareOp::Co => ScimOp::Co,
                CompareOp::Sw => ScimOp::Sw,
                CompareOp::Ew => ScimOp::Ew,
                CompareOp::Gt => ScimOp::Gt,
                CompareOp::Ge => ScimOp::Ge,
                CompareOp::Lt => ScimOp::Lt,
                CompareOp::Le => ScimOp::Le,
            };
            Ok(ScimCond::Text(c, op, value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(c: ScimColumn, op: ScimOp, v: &str) -> ScimCond {
        ScimCond::Text(c, op, v.into())
    }

    #[test]
    fn accepted_filters_map_onto_indexed_columns() {
        use ScimColumn::*;
        let cases: Vec<(&str, ScimCond)> = vec![
            (
                r#"userName eq "Ann@Example.com""#,
                text(UserName, ScimOp::Eq, "ann@example.com"),
            ),
            (r#"USERNAME EQ "a""#, text(UserName, ScimOp::Eq, "a")),
            (
                r#"externalId eq "AbC""#,
                text(ExternalId, ScimOp::Eq, "AbC"),
            ),
            (r#"emails.value co "@ex""#, text(Email, ScimOp::Co, "@ex")),
            (r#"emails[value sw "ann"]"#, text(Email, ScimOp::Sw, "ann")),
            (r#"emails ew ".com""#, text(Email, ScimOp::Ew, ".com")),
            (
                r#"displayName ne "Bob""#,
                text(DisplayName, ScimOp::Ne, "bob"),
            ),
            ("active eq true", ScimCond::Active(true)),
            (r#"active eq "False""#, ScimCond::Active(false)),
            ("active ne false", ScimCond::Active(true)),
            ("externalId pr", ScimCond::Present(ExternalId)),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                text(UserName, ScimOp::Eq, "x"),
            ),
            (
                r#"userName eq "a" and (active eq true or not (displayName co "x"))"#,
                ScimCond::And(vec![
                    text(UserName, ScimOp::Eq, "a"),
                    ScimCond::Or(vec![
                        ScimCond::Active(true),
                        ScimCond::Not(Box::new(text(DisplayName, ScimOp::Co, "x"))),
                    ]),
                ]),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(
                parse_user_filter(f).unwrap_or_else(|e| panic!("{f}: {e:?}")),
                want,
                "{f}"
            );
        }
    }

    #[test]
    fn refused_filters_are_invalid_filter_errors() {
        for f in [
            "",
            "userName",
            "userName eq",
            r#"userName eq "unterminated"#,
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"userName eq "a")"#,
            r#"userName eq "a" and"#,
            "userName eq 42",
            "active eq 1",
            "active gt true",
            r#"title eq "x""#,
            r#"name.givenName eq "x""#,
            r#"emails[type eq "work"]"#,
            r#"meta.created gt "2020""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
            "not userName eq \"a\"",
            &"(".repeat(200),
            &format!("userName eq \"{}\"", "x".repeat(MAX_LEN)),
        ] {
            match parse_user_filter(f) {
                Err(e) => {
                    assert_eq!(e.scim_type, Some("invalidFilter"), "{f}");
                    assert_eq!(e.status, 400, "{f}");
                    assert!(!e.detail.is_empty());
                }
                Ok(c) => panic!("{f:?} was accepted as {c:?}"),
            }
        }
    }

    #[test]
    fn group_filters() {
        assert_eq!(
            parse_group_filter(r#"displayName eq "Sales""#).unwrap(),
            text(ScimColumn::GroupName, ScimOp::Eq, "sales")
        );
        assert_eq!(
            parse_group_filter(r#"externalId eq "G-1""#).unwrap(),
            text(ScimColumn::GroupExternalId, ScimOp::Eq, "G-1")
        );
        for f in [
            r#"userName eq "a""#,
            "active eq true",
            r#"emails[value eq "a"]"#,
            r#"members.value eq "x""#,
        ] {
            let e = parse_group_filter(f).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{f}");
        }
    }

    /// Fuzz-style: random byte strings (and random mixes of the grammar's own tokens) never
    /// panic; each is refused with `invalidFilter` or maps to a condition.
    #[test]
    fn random_input_never_panics() {
        let tokens = [
            "userName", " eq ", " ne ", " co ", " sw ", " pr", " and ", " or ", "not ", "(", ")",
            "[", "]", "\"x\"", "true", "emails", ".value", "active", " ", "\\", "\"", "é",
            "urn:a:b:", "42", "null",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..4000 {
            let s = if round % 2 == 0 {
                let len = (next() % 40) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                let n = (next() % 12) as usize;
                (0..n)
                    .map(|_| tokens[(next() as usize) % tokens.len()])
                    .collect()
            };
            if let Err(e) = parse_user_filter(&s) {
                assert_eq!(e.scim_type, Some("invalidFilter"), "{s:?}");
            }
        }
    }
}
