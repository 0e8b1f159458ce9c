//! The URI rules of applications: redirect and post-logout redirect URIs, and CORS origins.
//! Registration is strict so that matching at the authorization endpoint can be exact.

use std::net::IpAddr;

use url::{Host, Url};

use crate::{error::Error, oauth::model::AppType};

/// Longest URI accepted; browsers and proxies truncate beyond this.
const MAX_URI: usize = 2048;
/// Schemes that run code or embed content: never a redirect target, whatever the type.
const DANGEROUS_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "blob", "about"];

/// `http://localhost`, `http://127.0.0.1` (any 127/8) and `http://[::1]`: traffic that never
/// leaves the device, so plain http is acceptable there (RFC 8252 §7.3, RFC 9700 §2.1).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks one redirect URI (or post-logout redirect URI, named by `field`) for an application
/// type. Absolute, no fragment, no wildcard, no user info; `https`, or `http` on loopback; native
/// applications may also use a private-use scheme in reverse-domain form (RFC 8252 §7.1).
pub fn check_redirect_uri(kind: AppType, uri: &str, field: &'static str) -> Result<(), Error> {
    let bad = |why: &str| Error::invalid("INVALID_REDIRECT_URI", field, format!("`{uri}` {why}"));
    if kind == AppType::M2m {
        return Err(bad(
            "is not allowed: machine-to-machine applications have no redirect URIs",
        ));
    }
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(bad(&format!(
            "must be an absolute URI of at most {MAX_URI} characters"
        )));
    }
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(bad("contains spaces, control characters or backslashes"));
    }
    if uri.contains('*') {
        return Err(bad(
            "contains a wildcard; redirect URIs are matched exactly",
        ));
    }
    if uri.contains('#') {
        return Err(bad("has a fragment"));
    }
    let url = Url::parse(uri).map_err(|_| bad("is not an absolute URI"))?;
    let scheme = url.scheme();
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return Err(bad("uses a forbidden scheme"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("has user information"));
    }
    // The URL parser forgives `https:///host` and `https:host`; what is registered must be what
    // a browser would be sent to, so web URIs need a real authority.
    let authority = uri
        .get(scheme.len()..)
        .is_some_and(|r| r.starts_with("://") && !r[3..].starts_with('/'));
    if matches!(scheme, "http" | "https") && !authority {
        return Err(bad("has no host"));
    }
    match scheme {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(bad(
            "uses plain http outside loopback (localhost, 127.0.0.1, [::1])",
        )),
        // A private-use scheme names an app, as a reversed domain it controls (`com.example.app`),
        // so that two apps do not claim the same scheme.
        s if kind == AppType::Native && s.contains('.') => Ok(()),
        _ if kind == AppType::Native => Err(bad(
            "must be https, loopback http, or a private-use scheme like `com.example.app:/callback`",
        )),
        _ => Err(bad("must be https (or http on loopback)")),
    }
}

/// Checks a CORS origin and returns it in the form browsers send (`scheme://host[:port]`, lower
/// case, default port omitted), since origins are compared by exact string.
pub fn normalize_origin(origin: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::invalid(
            "INVALID_ORIGIN",
            "allowed_origins",
            format!("`{origin}` {why}"),
        )
    };
    let Some((_, rest)) = origin.split_once("://") else {
        return Err(bad("is not an origin `scheme://host[:port]`"));
    };
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '*', '\\'])
        || origin.chars().any(|c| c.is_whitespace())
    {
        return Err(bad(
            "is not an origin `scheme://host[:port]` (no path, query, user info or wildcard)",
        ));
    }
    let url = Url::parse(origin).map_err(|_| bad("is not an origin `scheme://host[:port]`"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(bad("must be https (or http on loopback)")),
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_by_type() {
        let ok = |k, u| check_redirect_uri(k, u, "redirect_uris").is_ok();
        for web in [AppType::Web, AppType::Spa] {
            assert!(ok(web, "https://app.example.com/callback"));
            assert!(ok(web, "https://app.example.com/cb?x=1"));
            assert!(ok(web, "http://localhost:3000/cb"));
            assert!(ok(web, "http://127.0.0.1/cb"));
            assert!(ok(web, "http://[::1]:8080/cb"));
            for bad in [
                "http://app.example.com/cb",
                "https://app.example.com/cb#frag",
                "https://*.example.com/cb",
                "https://app.example.com/*",
                "/relative/cb",
                "app.example.com/cb",
                "javascript:alert(1)",
                "data:text/html,hi",
                "com.example.app:/cb",
                "https://user:pw@app.example.com/cb",
                "http://localhost.evil.com/cb",
                "https:///cb",
                "https:app.example.com/cb",
                "https://app.example.com/c b",
                "",
            ] {
                assert!(!ok(web, bad), "{bad} accepted for {web:?}");
            }
        }
        assert!(ok(AppType::Native, "com.example.app:/callback"));
        assert!(ok(AppType::Native, "com.example.app://callback"));
        assert!(ok(AppType::Native, "http://127.0.0.1/callback"));
        assert!(ok(AppType::Native, "https://app.example.com/native"));
        for bad in [
            "myapp://callback",
            "javascript:alert(1)",
            "http://example.com/cb",
            "com.example.app:/cb#x",
        ] {
            assert!(!ok(AppType::Native, bad), "{bad} accepted for native");
        }
        assert!(!ok(AppType::M2m, "https://app.example.com/cb"));
    }

    #[test]
    fn origins() {
        assert_eq!(
            normalize_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            normalize_origin("https://app.example.com:443").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            normalize_origin("https://app.example.com:8443").unwrap(),
            "https://app.example.com:8443"
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://*.example.com",
            "http://app.example.com",
            "https://u@app.example.com",
            "null",
            "ftp://app.example.com",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad} accepted");
        }
    }
}
