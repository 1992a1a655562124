//! A walker over a parsed TOML table that collects *every* problem instead of stopping at the
//! first one, and rejects unknown keys (the `deny_unknown_fields` of serde, but reporting all of
//! them at once). Messages name the key, never the value: a mistyped secret must not be echoed.

use super::secret::Secret;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use toml::{Table, Value};

/// Collected problems, shared by every section of one file; also what the reading needs to
/// know about the whole file: which keys environment variables set (a problem with one names
/// the variable, and a list may be given there comma-separated), and whether secrets' values
/// are to be left unread (`check-config --no-secrets`).
#[derive(Default)]
pub struct Problems {
    list: RefCell<Vec<String>>,
    /// The keys a problem was reported for.
    keys: RefCell<BTreeSet<String>>,
    /// `section.key` → the `GATEHOUSE_…` variable that set it.
    overrides: BTreeMap<String, String>,
    offline: bool,
}

impl Problems {
    pub fn new(overrides: BTreeMap<String, String>, offline: bool) -> Problems {
        Problems {
            overrides,
            offline,
            ..Default::default()
        }
    }

    pub fn push(&self, key: &str, message: impl AsRef<str>) {
        self.keys.borrow_mut().insert(key.to_string());
        // The key itself, or an entry or member of it (`server.trusted_proxies[1]`).
        let origin = self
            .overrides
            .iter()
            .find(|(k, _)| {
                key.strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
            })
            .map(|(_, var)| format!(" (set by the environment variable {var})"))
            .unwrap_or_default();
        self.list
            .borrow_mut()
            .push(format!("{key}{origin}: {}", message.as_ref()));
    }
    /// Whether a problem was already reported for `key`.
    pub fn reported(&self, key: &str) -> bool {
        self.keys.borrow().contains(key)
    }
    pub fn into_vec(self) -> Vec<String> {
        self.list.into_inner()
    }
    pub fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub struct Section<'a> {
    path: String,
    table: Option<&'a Table>,
    used: RefCell<BTreeSet<String>>,
    problems: &'a Problems,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'a> Section<'a> {
    pub fn new(path: impl Into<String>, table: Option<&'a Table>, problems: &'a Problems) -> Self {
        Section {
            path: path.into(),
            table,
            used: RefCell::new(BTreeSet::new()),
            problems,
        }
    }

    pub fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    pub fn problem(&self, k: &str, message: impl AsRef<str>) {
        self.problems.push(&self.key(k), message);
    }

    /// Whether a problem was already reported for `k` or for how it is given (`k_file`,
    /// `k_env`): one problem, one line.
    pub fn reported(&self, k: &str) -> bool {
        [k.to_string(), format!("{k}_file"), format!("{k}_env")]
            .iter()
            .any(|k| self.problems.reported(&self.key(k)))
    }

    /// `check-config --no-secrets`: secrets' values (files, variables) are not read.
    pub fn offline(&self) -> bool {
        self.problems.offline
    }

    pub fn raw(&self, k: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(k.to_string());
        self.table.and_then(|t| t.get(k))
    }

    fn wrong(&self, k: &str, expected: &str, found: &Value) {
        self.problem(
            k,
            format!("expected {expected}, found {}", type_name(found)),
        );
    }

    pub fn opt_string(&self, k: &str) -> Option<String> {
        match self.raw(k)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong(k, "a string", other);
                None
            }
        }
    }

    pub fn string(&self, k: &str, default: &str) -> String {
        self.opt_string(k).unwrap_or_else(|| default.to_string())
    }

    pub fn bool(&self, k: &str, default: bool) -> bool {
        match self.raw(k) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.wrong(k, "true or false", other);
                default
            }
        }
    }

    pub fn int(&self, k: &str, default: u64, min: u64, max: u64) -> u64 {
        match self.raw(k) {
            None => default,
            Some(Value::Integer(i))
                if (*i as i128) >= min as i128 && (*i as i128) <= max as i128 =>
            {
                *i as u64
            }
            Some(Value::Integer(_)) => {
                self.problem(k, format!("must be between {min} and {max}"));
                default
            }
            Some(other) => {
                self.wrong(k, "an integer", other);
                default
            }
        }
    }

    pub fn strings(&self, k: &str) -> Vec<String> {
        match self.raw(k) {
            None => Vec::new(),
            // From an environment variable, a list may be written comma-separated.
            Some(Value::String(text)) if self.problems.overrides.contains_key(&self.key(k)) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.wrong(&format!("{k}[{i}]"), "a string", other),
                    }
                }
                out
            }
            Some(other) => {
                self.wrong(k, "an array of strings", other);
                Vec::new()
            }
        }
    }

    pub fn duration(&self, k: &str, default: &str) -> Duration {
        let fallback = parse_duration(default).expect("default durations are valid");
        match self.opt_string(k) {
            None => fallback,
            Some(s) => parse_duration(&s).unwrap_or_else(|| {
                self.problem(
                    k,
                    "not a duration (write a number and a unit: \"500ms\", \"30s\", \"15m\", \"8h\", \"7d\")",
                );
                fallback
            }),
        }
    }

    pub fn sub(&self, k: &str) -> Section<'a> {
        let table = match self.raw(k) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(other) => {
                self.wrong(k, "a table", other);
                None
            }
        };
        Section::new(self.key(k), table, self.problems)
    }

    /// Arrays of tables, like `[[role]]`. Each is named in messages by its `label` key when
    /// it has one (`app[crm].upstream`), else by its place (`app[2]`, from 1).
    pub fn array_of_tables(&self, k: &str, label: &str) -> Vec<Section<'a>> {
        match self.raw(k) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::Table(t) => Some(Section::new(
                        match t.get(label) {
                            Some(Value::String(l))
                                if !l.is_empty()
                                    && l.chars().all(|c| {
                                        c.is_ascii_alphanumeric() || "-_.:/*".contains(c)
                                    }) =>
                            {
                                format!("{}[{l}]", self.key(k))
                            }
                            _ => format!("{}[{}]", self.key(k), i + 1),
                        },
                        Some(t),
                        self.problems,
                    )),
                    other => {
                        self.wrong(&format!("{k}[{i}]"), "a table", other);
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.wrong(k, &format!("an array of tables ([[{k}]])"), other);
                Vec::new()
            }
        }
    }

    /// A secret given as `k`, `k_file` (a path) or `k_env` (a variable name): exactly one of them.
    pub fn secret(&self, k: &str) -> Option<Secret<String>> {
        let inline = self.opt_string(k);
        let file = self.opt_string(&format!("{k}_file"));
        let env = self.opt_string(&format!("{k}_env"));
        let given = [inline.is_some(), file.is_some(), env.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            self.problem(
                k,
                format!("give only one of `{k}`, `{k}_file` and `{k}_env`"),
            );
            return None;
        }
        if let Some(v) = inline {
            return Some(Secret::new(v));
        }
        if self.offline() {
            // The value is not read: the key only says where it would come from.
            return None;
        }
        if let Some(path) = file {
            return match std::fs::read_to_string(&path) {
                Ok(s) => Some(Secret::new(s.trim_end_matches(['\r', '\n']).to_string())),
                Err(e) => {
                    self.problem(
                        &format!("{k}_file"),
                        format!("cannot read the file {path:?}: {}", e.kind()),
                    );
                    None
                }
            };
        }
        if let Some(var) = env {
            return match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    self.problem(
                        &format!("{k}_env"),
                        format!("environment variable {var} is not set"),
                    );
                    None
                }
            };
        }
        None
    }

    /// Reports every key of this table that no accessor asked for, with the known key it
    /// most resembles.
    pub fn finish(&self) {
        if let Some(t) = self.table {
            let used = self.used.borrow();
            for k in t.keys() {
                if !used.contains(k) {
                    let near = used
                        .iter()
                        .map(|u| (distance(k, u), u))
                        .filter(|(d, u)| *d <= 2.max(u.len() / 4) && *d < u.len())
                        .min();
                    let message = match near {
                        Some((_, u)) => format!("unknown key (did you mean `{u}`?)"),
                        None => "unknown key".to_string(),
                    };
                    self.problems.push(&self.key(k), message);
                }
            }
        }
    }
}

/// "500ms", "30s", "15m", "8h", "7d" (a bare number is refused: the unit is not guessable).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let t: Table = toml::from_str("a = 1\nb = \"x\"\nextra = true\n").unwrap();
        let p = Problems::default();
        let s = Section::new("sec", Some(&t), &p);
        let _ = s.string("a", "");
        let _ = s.int("b", 0, 0, 10);
        s.finish();
        let v = p.into_vec();
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v.iter().any(|m| m.starts_with("sec.a: expected a string")));
        assert!(
            v.iter()
                .any(|m| m.starts_with("sec.b: expected an integer"))
        );
        assert!(v.iter().any(|m| m == "sec.extra: unknown key"));
    }
}
