//! Server-rendered pages (minijinja, autoescaped). They work without JavaScript; the one
//! script ([`MFA_SCRIPT`], inline, allowed by its hash in the pages' content security policy)
//! only saves a page load.

use crate::config::BrandingConfig;
use minijinja::{Environment, Value};

/// The second-factor page's switch between an authenticator code and a recovery code.
pub const MFA_SCRIPT: &str = include_str!("templates/mfa.js");

pub struct Templates {
    env: Environment<'static>,
}

const PAGES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("mfa.html", include_str!("templates/mfa.html")),
    ("enroll.html", include_str!("templates/enroll.html")),
    (
        "recovery_codes.html",
        include_str!("templates/recovery_codes.html"),
    ),
    ("password.html", include_str!("templates/password.html")),
    ("setup.html", include_str!("templates/setup.html")),
    ("invite.html", include_str!("templates/invite.html")),
    ("account.html", include_str!("templates/account.html")),
    ("message.html", include_str!("templates/message.html")),
    ("signout.html", include_str!("templates/signout.html")),
];

impl Default for Templates {
    fn default() -> Self {
        Self::new(&BrandingConfig::default())
    }
}

impl Templates {
    /// The pages, with `[branding]`'s name and logo (`brand_name`, `logo_url` in every page).
    pub fn new(branding: &BrandingConfig) -> Templates {
        let mut env = Environment::new();
        for (name, source) in PAGES {
            env.add_template(name, source)
                .expect("shipped templates are valid");
        }
        // Verbatim: the policy allows the script by the hash of exactly these bytes.
        env.add_global(
            "mfa_script",
            Value::from_safe_string(MFA_SCRIPT.to_string()),
        );
        env.add_global("brand_name", Value::from(branding.name.clone()));
        env.add_global(
            "logo_url",
            Value::from(branding.logo.as_ref().map(|l| l.src().to_string())),
        );
        Templates { env }
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template rendering failed");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_and_escapes() {
        let t = Templates::default();
        for (name, _) in PAGES {
            let html = t.render(
                name,
                minijinja::context! { error => "<script>x</script>", title => "T", csrf => "c" },
            );
            assert!(
                !html.contains("<script>x</script>"),
                "{name} does not escape"
            );
            assert!(html.contains("</html>") || *name == "base.html", "{name}");
        }
    }
}
