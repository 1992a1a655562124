//! Which app a request belongs to: by host, then the longest matching path prefix.

use crate::config::app::{AppConfig, prefix_matches};

pub struct Routes {
    /// (host, its routes as (prefix, app index), longest prefix first), one entry per host.
    /// Searched in order: a handful of hosts is quicker to scan than to hash, and the hot path
    /// asks once per request.
    by_host: Vec<(String, Vec<(String, usize)>)>,
}

impl Routes {
    pub fn new(apps: &[AppConfig]) -> Routes {
        let mut by_host: Vec<(String, Vec<(String, usize)>)> = Vec::new();
        for (i, a) in apps.iter().enumerate() {
            let route = (a.path_prefix.clone(), i);
            match by_host.iter_mut().find(|(h, _)| *h == a.host) {
                Some((_, routes)) => routes.push(route),
                None => by_host.push((a.host.clone(), vec![route])),
            }
        }
        for (_, v) in &mut by_host {
            v.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        }
        Routes { by_host }
    }

    /// The routes of `host` (as sent, any case; configured hosts are lowercase).
    fn of(&self, host: &str) -> Option<&[(String, usize)]> {
        self.by_host
            .iter()
            .find(|(h, _)| h == host || h.eq_ignore_ascii_case(host))
            .map(|(_, routes)| routes.as_slice())
    }

    /// The app for `host` and `path`. `/.gatehouse/` is never an app's.
    pub fn lookup(&self, host: &str, path: &str) -> Option<usize> {
        if path.starts_with("/.gatehouse/") || path == "/.gatehouse" {
            return None;
        }
        self.of(host)?
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .map(|(_, i)| *i)
    }

    pub fn is_app_host(&self, host: &str) -> bool {
        self.of(host).is_some()
    }
}
