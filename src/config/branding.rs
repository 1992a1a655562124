//! `[branding]`: the organization's name and logo on the gateway's own pages (the sign-in page
//! among them). The product's name stays on every page, so that a person always knows which
//! software asks for their password.

use super::reader::Section;

/// Longest organization name shown (it sits on one line above the sign-in form).
const NAME_MAX: usize = 80;
/// Longest logo URL accepted.
const LOGO_URL_MAX: usize = 2048;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrandingConfig {
    /// `name`: shown instead of the product's name at the top of each page.
    pub name: Option<String>,
    /// `logo_url`: an `https://` URL or a path on the gateway's public host (`/…`).
    pub logo: Option<Logo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logo {
    /// An `https://` URL; the pages' content security policy allows images from its origin.
    Https(url::Url),
    /// A path on the gateway's own host; the policy allows images from `'self'`.
    Path(String),
}

impl Logo {
    /// The URL as the page's `<img src>` takes it.
    pub fn src(&self) -> &str {
        match self {
            Logo::Https(u) => u.as_str(),
            Logo::Path(p) => p,
        }
    }

    /// The CSP `img-src` source that allows this logo and no more.
    pub fn csp_source(&self) -> String {
        match self {
            Logo::Https(u) => u.origin().ascii_serialization(),
            Logo::Path(_) => "'self'".to_string(),
        }
    }
}

/// `https://host/…` (no credentials, no fragment) or `/path` (not `//`, which is another host),
/// without spaces or control characters.
pub fn parse_logo(value: &str) -> Result<Logo, &'static str> {
    const WANT: &str = "must be an https:// URL or a path on the gateway's host starting with \
                        `/` (no spaces, no `\\`, at most 2048 characters)";
    if value.is_empty()
        || value.len() > LOGO_URL_MAX
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
        || value.contains('\\')
    {
        return Err(WANT);
    }
    if value.starts_with('/') {
        if value.starts_with("//") {
            return Err(WANT);
        }
        return Ok(Logo::Path(value.to_string()));
    }
    let url = url::Url::parse(value).map_err(|_| WANT)?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(WANT);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment");
    }
    Ok(Logo::Https(url))
}

pub(super) fn read_branding(s: &Section) -> BrandingConfig {
    let name = s.opt_string("name").and_then(|name| {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control)
        {
            s.problem(
                "name",
                format!("must be 1 to {NAME_MAX} characters, without control characters"),
            );
            return None;
        }
        Some(name)
    });
    let logo = s.opt_string("logo_url").and_then(|v| match parse_logo(&v) {
        Ok(logo) => Some(logo),
        Err(why) => {
            s.problem("logo_url", why);
            None
        }
    });
    s.finish();
    BrandingConfig { name, logo }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logo_is_an_https_url_or_a_path_on_this_host() {
        let logo = parse_logo("https://cdn.example.com/acme/logo.svg?v=2").unwrap();
        assert_eq!(logo.src(), "https://cdn.example.com/acme/logo.svg?v=2");
        assert_eq!(logo.csp_source(), "https://cdn.example.com");
        let logo = parse_logo("https://cdn.example.com:8443/l.png").unwrap();
        assert_eq!(logo.csp_source(), "https://cdn.example.com:8443");
        let logo = parse_logo("/branding/logo.png").unwrap();
        assert_eq!(logo.src(), "/branding/logo.png");
        assert_eq!(logo.csp_source(), "'self'");
        for bad in [
            "",
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "//evil.example/logo.png",
            "logo.png",
            "/a b.png",
            "/a\\b.png",
            "https://user:pw@cdn.example.com/l.png",
            "https://cdn.example.com/l.png#x",
            "https://",
        ] {
            assert!(parse_logo(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_logo(&format!("/{}", "a".repeat(2048))).is_err());
    }
}
