//! Which app a request belongs to: by host, then the longest matching path prefix of the
//! request's canonical path (`proxy::target`).

use super::target;
use crate::config::app::{AppConfig, prefix_matches};

/// One app's place on its host.
struct Route {
    prefix: String,
    /// The prefix as the loose reading of a path would spell it.
    prefix_lower: String,
    app: usize,
}

pub struct Routes {
    /// (host, its routes, longest prefix first), one entry per host.
    /// Searched in order: a handful of hosts is quicker to scan than to hash, and the hot path
    /// asks once per request.
    by_host: Vec<(String, Vec<Route>)>,
}

/// The canonical path chooses one app and its loose reading another: an upstream that folds
/// case or drops `;parameters` could serve the other app's path, so the request is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Ambiguous;

impl Routes {
    pub fn new(apps: &[AppConfig]) -> Routes {
        let mut by_host: Vec<(String, Vec<Route>)> = Vec::new();
        for (i, a) in apps.iter().enumerate() {
            let route = Route {
                prefix: a.path_prefix.clone(),
                prefix_lower: target::loose(&a.path_prefix).into_owned(),
                app: i,
            };
            match by_host.iter_mut().find(|(h, _)| *h == a.host) {
                Some((_, routes)) => routes.push(route),
                None => by_host.push((a.host.clone(), vec![route])),
            }
        }
        for (_, v) in &mut by_host {
            v.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        }
        Routes { by_host }
    }

    /// The routes of `host` (as sent, any case; configured hosts are lowercase).
    fn of(&self, host: &str) -> Option<&[Route]> {
        self.by_host
            .iter()
            .find(|(h, _)| h == host || h.eq_ignore_ascii_case(host))
            .map(|(_, routes)| routes.as_slice())
    }

    /// The app for `host` and a canonical `path` (see `proxy::target::canonical`), refusing a
    /// path whose loose reading would choose another app. `/.gatehouse/` is never an app's.
    pub fn route(&self, host: &str, path: &str) -> Result<Option<usize>, Ambiguous> {
        if path.starts_with("/.gatehouse/") || path == "/.gatehouse" {
            return Ok(None);
        }
        let Some(routes) = self.of(host) else {
            return Ok(None);
        };
        let Some(chosen) = routes.iter().find(|r| prefix_matches(&r.prefix, path)) else {
            return Ok(None);
        };
        // One app on the host at `/`: nothing to confuse it with.
        if routes.len() > 1 {
            let loose = target::loose(path);
            if let Some(other) = routes
                .iter()
                .find(|r| prefix_matches(&r.prefix_lower, &loose))
                && other.app != chosen.app
            {
                return Err(Ambiguous);
            }
        }
        Ok(Some(chosen.app))
    }

    pub fn is_app_host(&self, host: &str) -> bool {
        self.of(host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let app = |id: &str, prefix: &str| {
            let toml = format!(
                "[[app]]\nid = \"{id}\"\nhost = \"h\"\npath_prefix = \"{prefix}\"\nupstream = \"none\"\nallow_roles = [\"*\"]\n"
            );
            crate::config::test_apps(&toml).remove(0)
        };
        Routes::new(&[app("open", "/"), app("staff", "/staff/")])
    }

    #[test]
    fn the_canonical_path_chooses_and_a_loose_reading_may_not_disagree() {
        let r = routes();
        assert_eq!(r.route("h", "/staff/x"), Ok(Some(1)));
        assert_eq!(r.route("H", "/staff"), Ok(Some(1)));
        assert_eq!(r.route("h", "/staffing"), Ok(Some(0)));
        assert_eq!(r.route("h", "/x"), Ok(Some(0)));
        assert_eq!(r.route("h", "/.gatehouse/verify"), Ok(None));
        assert_eq!(r.route("other", "/staff/x"), Ok(None));
        for ambiguous in [
            "/STAFF/x",
            "/staff;x=1/y",
            "/staff./x",
            "/st%41ff/x",
            "/Staff",
        ] {
            assert_eq!(r.route("h", ambiguous), Err(Ambiguous), "{ambiguous}");
        }
    }
}
