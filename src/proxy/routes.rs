//! Which app a request belongs to: by host, then the longest matching path prefix.

use crate::config::app::{AppConfig, prefix_matches};
use std::collections::HashMap;

pub struct Routes {
    /// host → (prefix, app index), longest prefix first.
    by_host: HashMap<String, Vec<(String, usize)>>,
}

impl Routes {
    pub fn new(apps: &[AppConfig]) -> Routes {
        let mut by_host: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (i, a) in apps.iter().enumerate() {
            by_host
                .entry(a.host.clone())
                .or_default()
                .push((a.path_prefix.clone(), i));
        }
        for v in by_host.values_mut() {
            v.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        }
        Routes { by_host }
    }

    /// The app for `host` (as sent, any case) and `path`. `/.gatehouse/` is never an app's.
    pub fn lookup(&self, host: &str, path: &str) -> Option<usize> {
        if path.starts_with("/.gatehouse/") || path == "/.gatehouse" {
            return None;
        }
        let routes = match self.by_host.get(host) {
            Some(r) => r,
            None => self.by_host.get(&host.to_ascii_lowercase())?,
        };
        routes
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .map(|(_, i)| *i)
    }

    pub fn is_app_host(&self, host: &str) -> bool {
        self.by_host.contains_key(&host.to_ascii_lowercase())
    }
}
