//! Server-rendered pages (minijinja, autoescaped). They work without JavaScript.

use minijinja::Environment;

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
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        for (name, source) in PAGES {
            env.add_template(name, source)
                .expect("shipped templates are valid");
        }
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
        let t = Templates::new();
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
