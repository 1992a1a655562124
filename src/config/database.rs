//! `[database]`.

use super::reader::Section;
use super::secret::Secret;

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret<String>,
    pub max_connections: u32,
}

pub(super) fn read_database(s: &Section) -> DatabaseConfig {
    let url = s
        .secret("url")
        .unwrap_or_else(|| Secret::new("sqlite://data/gatehouse.db".to_string()));
    let u = url.expose();
    if !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        s.problem("url", "must start with sqlite: or postgres://");
    }
    let max_connections = s.int("max_connections", 10, 1, 1000) as u32;
    s.finish();
    DatabaseConfig {
        url,
        max_connections,
    }
}
