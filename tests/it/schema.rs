//! One schema on both databases: `migrations/postgres/` and `migrations/sqlite/` must define
//! the same tables, columns (in order, with the same type family and nullability), primary
//! keys, unique constraints and named indexes (by name, table, uniqueness and columns).
//!
//! What is compared where:
//! - always: both folders hold the same migration files in the same order; the SQLite
//!   database after migration (read from its catalogue) against the PostgreSQL migrations as
//!   written (parsed here: `CREATE TABLE`, `ALTER TABLE … ADD/DROP COLUMN`, `CREATE [UNIQUE]
//!   INDEX`, `DROP TABLE/INDEX`; any other schema statement fails the test until the parser
//!   learns it);
//! - with `GATEHOUSE_TEST_DATABASE_URL`: also a PostgreSQL database after migration (read
//!   from its catalogue) against the SQLite one and against the parse (which checks the
//!   parser). An unreachable server fails the test; it never skips.
//!
//! Not compared: exact types (BIGINT vs INTEGER: only the family — integer, text, real,
//! blob), defaults, CHECK constraints, foreign keys, the seed rows. A SQLite primary key
//! column counts as NOT NULL, as it is in PostgreSQL (SQLite itself would admit a NULL in a
//! non-INTEGER primary key).

use crate::harness::{TempDir, TestDb};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// (name, type family, nullable), in order.
    columns: Vec<(String, String, bool)>,
    primary_key: Vec<String>,
    /// The column lists of the UNIQUE constraints (not of unique indexes).
    uniques: BTreeSet<Vec<String>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Index {
    table: String,
    unique: bool,
    columns: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Table>,
    indexes: BTreeMap<String, Index>,
}

/// The family of a declared type, after SQLite's affinity rules (which PostgreSQL's integer
/// and text types fall into as well).
fn family(declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") || t.contains("SERIAL") {
        "integer"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "text"
    } else if t.is_empty() || t.contains("BLOB") || t == "BYTEA" {
        "blob"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "real"
    } else {
        return t;
    }
    .to_string()
}

fn migration_files(backend: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

// The parser of the migrations as written.

/// Splits at top-level `sep` (outside parentheses and quotes).
fn split_top(s: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `(a, b)` → `["a", "b"]`.
fn column_list(s: &str) -> Vec<String> {
    let inner = s.trim().trim_start_matches('(').trim_end_matches(')');
    inner
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect()
}

/// The words after `IF NOT EXISTS` / `IF EXISTS`, if present.
fn skip_if_exists(words: &[String]) -> &[String] {
    let up: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    if up.starts_with(&["IF".into(), "NOT".into(), "EXISTS".into()]) {
        &words[3..]
    } else if up.starts_with(&["IF".into(), "EXISTS".into()]) {
        &words[2..]
    } else {
        words
    }
}

/// One column definition (`email TEXT NOT NULL UNIQUE`) into the table.
fn add_column(t: &mut Table, def: &str) {
    let words: Vec<&str> = def.split_whitespace().collect();
    let name = words[0].to_ascii_lowercase();
    let up = def.to_ascii_uppercase();
    let pk = up.contains("PRIMARY KEY");
    t.columns.push((
        name.clone(),
        family(words.get(1).copied().unwrap_or("")),
        !(pk || up.contains("NOT NULL")),
    ));
    if pk {
        t.primary_key = vec![name.clone()];
    }
    if up.split_whitespace().any(|w| w == "UNIQUE") {
        t.uniques.insert(vec![name]);
    }
}

fn parse_migrations(files: &[PathBuf]) -> Schema {
    let mut s = Schema::default();
    for f in files {
        let text: String = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for stmt in split_top(&text, ';') {
            let words: Vec<String> = stmt.split_whitespace().map(str::to_string).collect();
            let up: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
            let at = |i: usize| up.get(i).map(String::as_str).unwrap_or("");
            macro_rules! unsupported {
                () => {
                    panic!("{}: a statement this test cannot read: {stmt}", f.display())
                };
            }
            match (at(0), at(1)) {
                ("INSERT", _) | ("UPDATE", _) | ("DELETE", _) => {}
                ("CREATE", "TABLE") => {
                    let rest = skip_if_exists(&words[2..]).join(" ");
                    let open = rest.find('(').unwrap_or_else(|| unsupported!());
                    let name = rest[..open].trim().to_ascii_lowercase();
                    let body = rest[open + 1..rest.rfind(')').unwrap_or_else(|| unsupported!())]
                        .to_string();
                    let mut t = Table::default();
                    for item in split_top(&body, ',') {
                        let first = item.split_whitespace().next().unwrap().to_ascii_uppercase();
                        match first.as_str() {
                            "PRIMARY" => {
                                t.primary_key = column_list(&item[item.find('(').unwrap()..])
                            }
                            "UNIQUE" => {
                                t.uniques
                                    .insert(column_list(&item[item.find('(').unwrap()..]));
                            }
                            "CHECK" | "FOREIGN" => {}
                            "CONSTRAINT" => unsupported!(),
                            _ => add_column(&mut t, &item),
                        }
                    }
                    for (c, _, nullable) in &mut t.columns {
                        if t.primary_key.contains(c) {
                            *nullable = false;
                        }
                    }
                    assert!(
                        s.tables.insert(name.clone(), t).is_none(),
                        "table {name} twice"
                    );
                }
                ("CREATE", "INDEX") | ("CREATE", "UNIQUE") => {
                    let unique = at(1) == "UNIQUE";
                    let rest = skip_if_exists(&words[if unique { 3 } else { 2 }..]);
                    let joined = rest.join(" ");
                    let on = rest
                        .iter()
                        .position(|w| w.eq_ignore_ascii_case("ON"))
                        .unwrap_or_else(|| unsupported!());
                    let open = joined.find('(').unwrap_or_else(|| unsupported!());
                    let table = rest[on + 1].split('(').next().unwrap().to_ascii_lowercase();
                    s.indexes.insert(
                        rest[0].to_ascii_lowercase(),
                        Index {
                            table,
                            unique,
                            columns: column_list(&joined[open..]),
                        },
                    );
                }
                ("DROP", "TABLE") => {
                    let name = skip_if_exists(&words[2..])[0].to_ascii_lowercase();
                    s.tables.remove(&name);
                    s.indexes.retain(|_, i| i.table != name);
                }
                ("DROP", "INDEX") => {
                    s.indexes
                        .remove(&skip_if_exists(&words[2..])[0].to_ascii_lowercase());
                }
                ("ALTER", "TABLE") => {
                    let table = words[2].to_ascii_lowercase();
                    let t = s.tables.get_mut(&table).unwrap_or_else(|| unsupported!());
                    match (at(3), at(4)) {
                        ("ADD", "COLUMN") => add_column(t, &words[5..].join(" ")),
                        ("DROP", "COLUMN") => {
                            let c = words[5].to_ascii_lowercase();
                            t.columns.retain(|(n, _, _)| *n != c);
                        }
                        _ => unsupported!(),
                    }
                }
                _ => unsupported!(),
            }
        }
    }
    s
}

// The catalogues.

async fn sqlite_schema(url: &str) -> Schema {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut s = Schema::default();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for name in tables {
        let mut t = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in
            sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
                .bind(&name)
                .fetch_all(&mut c)
                .await
                .unwrap()
        {
            let (col, ty, notnull, k): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if k > 0 {
                pk.push((k, col.clone()));
            }
            t.columns.push((col, family(&ty), notnull == 0 && k == 0));
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        for r in sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list(?)")
            .bind(&name)
            .fetch_all(&mut c)
            .await
            .unwrap()
        {
            let (index, unique, origin): (String, i64, String) = (r.get(0), r.get(1), r.get(2));
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            match origin.as_str() {
                "c" => {
                    s.indexes.insert(
                        index,
                        Index {
                            table: name.clone(),
                            unique: unique != 0,
                            columns,
                        },
                    );
                }
                "u" => {
                    t.uniques.insert(columns);
                }
                _ => {} // "pk": the primary key, read above
            }
        }
        s.tables.insert(name, t);
    }
    c.close().await.unwrap();
    s
}

async fn postgres_schema(url: &str) -> Schema {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("GATEHOUSE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
    });
    let mut s = Schema::default();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for name in tables {
        let mut t = Table::default();
        for r in sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&name)
        .fetch_all(&mut c)
        .await
        .unwrap()
        {
            let (col, ty, nullable): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            t.columns.push((col, family(&ty), nullable == "YES"));
        }
        let mut constraints: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT tc.constraint_type::text, tc.constraint_name::text, k.column_name::text \
             FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k \
             ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name \
             WHERE tc.table_schema = current_schema() AND tc.table_name = $1 \
             AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') \
             ORDER BY tc.constraint_name, k.ordinal_position",
        )
        .bind(&name)
        .fetch_all(&mut c)
        .await
        .unwrap()
        {
            let (kind, cname, col): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            constraints.entry((kind, cname)).or_default().push(col);
        }
        for ((kind, _), cols) in constraints {
            if kind == "PRIMARY KEY" {
                t.primary_key = cols;
            } else {
                t.uniques.insert(cols);
            }
        }
        s.tables.insert(name, t);
    }
    // Indexes made by CREATE INDEX, not those behind a primary key or UNIQUE constraint.
    for r in sqlx::query(
        "SELECT i.relname::text, t.relname::text, ix.indisunique, \
         (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
            FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) \
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    {
        let (index, table, unique, cols): (String, String, bool, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        s.indexes.insert(
            index,
            Index {
                table,
                unique,
                columns: cols
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            },
        );
    }
    c.close().await.unwrap();
    s
}

async fn migrate(url: &str) {
    let store = gatehouse::store::Store::connect(url, 1).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
}

/// Every difference, table by table, so a failure names what to fix.
fn assert_same(left_name: &str, left: &Schema, right_name: &str, right: &Schema) {
    let mut diffs = Vec::new();
    let tables: BTreeSet<&String> = left.tables.keys().chain(right.tables.keys()).collect();
    for t in tables {
        match (left.tables.get(t), right.tables.get(t)) {
            (Some(a), Some(b)) if a != b => diffs.push(format!(
                "table {t}:\n  {left_name}: {a:?}\n  {right_name}: {b:?}"
            )),
            (Some(_), None) => diffs.push(format!("table {t} only in {left_name}")),
            (None, Some(_)) => diffs.push(format!("table {t} only in {right_name}")),
            _ => {}
        }
    }
    let indexes: BTreeSet<&String> = left.indexes.keys().chain(right.indexes.keys()).collect();
    for i in indexes {
        let (a, b) = (left.indexes.get(i), right.indexes.get(i));
        if a != b {
            diffs.push(format!(
                "index {i}:\n  {left_name}: {a:?}\n  {right_name}: {b:?}"
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "the schemas differ:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn both_migration_folders_hold_the_same_files_in_the_same_order() {
    let (pg, lite) = (
        names(&migration_files("postgres")),
        names(&migration_files("sqlite")),
    );
    assert!(!pg.is_empty());
    assert_eq!(pg, lite);
}

#[tokio::test]
async fn postgres_and_sqlite_migrations_define_the_same_schema() {
    let written = parse_migrations(&migration_files("postgres"));
    assert!(
        written.tables.contains_key("users"),
        "the parser found no users table"
    );

    let dir = TempDir::new();
    let sqlite_url = format!("sqlite://{}", dir.path("schema.db").display());
    migrate(&sqlite_url).await;
    let sqlite = sqlite_schema(&sqlite_url).await;
    assert_same(
        "sqlite (migrated)",
        &sqlite,
        "postgres (as written)",
        &written,
    );

    let db = TestDb::new(&dir);
    if db.is_postgres() {
        migrate(&db.url).await;
        let postgres = postgres_schema(&db.url).await;
        assert_same(
            "postgres (migrated)",
            &postgres,
            "sqlite (migrated)",
            &sqlite,
        );
        assert_same(
            "postgres (migrated)",
            &postgres,
            "postgres (as written)",
            &written,
        );
    }
}

/// The parser reads what the migrations use, and a change it cannot read fails loudly.
#[test]
fn the_migration_parser_reads_columns_keys_and_indexes() {
    let dir = TempDir::new();
    let f = dir.path("0001_x.sql");
    std::fs::write(
        &f,
        "CREATE TABLE a (\n  id BIGSERIAL PRIMARY KEY, -- a comment, with a comma\n  \
         name TEXT NOT NULL UNIQUE,\n  kind TEXT CHECK (kind IN ('x', 'y')),\n  n BIGINT\n);\n\
         CREATE TABLE b (x TEXT NOT NULL, y TEXT NOT NULL, PRIMARY KEY (x, y));\n\
         CREATE UNIQUE INDEX a_kind ON a (kind, n);\n\
         ALTER TABLE a ADD COLUMN extra TEXT NOT NULL DEFAULT '';\n\
         ALTER TABLE a DROP COLUMN n;\n\
         INSERT INTO b (x, y) VALUES ('1', '2');\n",
    )
    .unwrap();
    let s = parse_migrations(std::slice::from_ref(&f));
    let a = &s.tables["a"];
    let cols: Vec<(&str, &str, bool)> = a
        .columns
        .iter()
        .map(|(n, t, null)| (n.as_str(), t.as_str(), *null))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "integer", false),
            ("name", "text", false),
            ("kind", "text", true),
            ("extra", "text", false)
        ]
    );
    assert_eq!(a.primary_key, ["id"]);
    assert_eq!(a.uniques, BTreeSet::from([vec!["name".to_string()]]));
    assert_eq!(s.tables["b"].primary_key, ["x", "y"]);
    assert_eq!(
        s.indexes["a_kind"],
        Index {
            table: "a".into(),
            unique: true,
            columns: vec!["kind".into(), "n".into()]
        }
    );
    std::fs::write(&f, "CREATE TABLE a (id TEXT);\nALTER TABLE a RENAME TO c;").unwrap();
    assert!(std::panic::catch_unwind(|| parse_migrations(std::slice::from_ref(&f))).is_err());
}
