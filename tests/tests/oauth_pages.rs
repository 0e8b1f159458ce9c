//! The hosted pages end to end, driven like a browser: a client that keeps cookies and follows
//! redirects within the server by itself, reading forms out of the HTML it gets. Sign-in,
//! sign-up, verification codes, password reset, magic links, second factors, CSRF refusal,
//! security headers and branding; then the authorization code flow through the pages (consent,
//! `prompt=none`, `max_age`), device code approval and RP-initiated logout.

use crate::verification_support;

use std::{collections::BTreeMap, process::Command, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mgpass_e2e::{TestServer, smtp::SmtpServer};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use crate::verification_support::{code_in, create_user, link_in, nth_email, post, start};

const PW: &str = "a long passphrase 3";
const REDIRECT: &str = "https://app.example.com/callback";

// ---- a small browser -----------------------------------------------------------------------

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
    url: String,
}

impl Page {
    fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The hidden and prefilled fields of the form posting to `action`.
    fn form(&self, action: &str) -> Vec<(String, String)> {
        let start = self
            .body
            .find(&format!("action=\"{action}\""))
            .unwrap_or_else(|| {
                panic!(
                    "no form posting to {action} on {}:\n{}",
                    self.url, self.body
                )
            });
        let end = self.body[start..]
            .find("</form>")
            .map(|e| start + e)
            .unwrap_or(self.body.len());
        inputs(&self.body[start..end])
            .into_iter()
            .filter(|a| a.get("type").map(String::as_str) == Some("hidden"))
            .filter_map(|a| {
                Some((
                    a.get("name")?.clone(),
                    a.get("value").cloned().unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The body with character references decoded.
    fn html(&self) -> String {
        unescape(&self.body)
    }

    /// The text of the page: tags dropped, character references decoded.
    fn text(&self) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in self.body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        unescape(&out)
    }
}

/// The attributes of every `<input>` of `html`.
fn inputs(html: &str) -> Vec<BTreeMap<String, String>> {
    html.match_indices("<input")
        .map(|(i, _)| {
            let tag = &html[i + 6..i + html[i..].find('>').unwrap()];
            let mut attrs = BTreeMap::new();
            let mut rest = tag.trim();
            while !rest.is_empty() {
                let name_end = rest
                    .find(|c: char| c == '=' || c.is_whitespace())
                    .unwrap_or(rest.len());
                let name = rest[..name_end].to_string();
                rest = rest[name_end..].trim_start();
                if let Some(r) = rest.strip_prefix("=\"") {
                    let close = r.find('"').unwrap();
                    attrs.insert(name, unescape(&r[..close]));
                    rest = r[close + 1..].trim_start();
                } else {
                    attrs.insert(name, String::new());
                }
            }
            attrs
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

struct Browser {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: server.base_url.clone(),
            jar: BTreeMap::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: String) -> Page {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies.join("; "))
        };
        let resp = req.send().await.unwrap();
        let page = Page {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: String::new(),
            url,
        };
        for cookie in page.set_cookies() {
            let (pair, attrs) = cookie.split_once(';').unwrap_or((&cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            body: resp.text().await.unwrap(),
            ..page
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let url = self.url(path);
        let req = self.http.get(&url);
        self.send(req, url).await
    }

    async fn post(&mut self, path: &str, form: &[(String, String)]) -> Page {
        let url = self.url(path);
        let req = self.http.post(&url).form(form);
        self.send(req, url).await
    }

    /// Follows redirects while they stay on the server.
    async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..10 {
            match page.location() {
                Some(loc)
                    if (300..400).contains(&page.status)
                        && (loc.starts_with('/') || loc.starts_with(&self.base)) =>
                {
                    page = self.get(&loc).await;
                }
                _ => return page,
            }
        }
        panic!("redirect loop at {}", page.url)
    }

    async fn open(&mut self, path: &str) -> Page {
        let page = self.get(path).await;
        self.follow(page).await
    }

    /// Submits the form of `page` posting to `action` with its hidden fields and `fields`.
    async fn submit(&mut self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = page.form(action);
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.post(action, &form).await
    }

    async fn submit_follow(&mut self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.submit(page, action, fields).await;
        self.follow(page).await
    }

    fn session_cookie(&self) -> Option<&String> {
        self.jar.get("mgpass_session")
    }

    /// Signs in on the sign-in page `page` shows.
    async fn sign_in(&mut self, page: &Page, identifier: &str, password: &str) -> Page {
        assert!(
            page.body.contains("action=\"/oauth2/signin\""),
            "not the sign-in page ({}):\n{}",
            page.url,
            page.body
        );
        self.submit_follow(
            page,
            "/oauth2/signin",
            &[("identifier", identifier), ("password", password)],
        )
        .await
    }
}

// ---- helpers -------------------------------------------------------------------------------

fn psql(server: &TestServer, sql: &str) -> String {
    let out = Command::new("psql")
        .args([server.database_url.as_str(), "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every visible input has a label, and the page has what every page must have.
fn assert_accessible(page: &Page) {
    let body = &page.body;
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(body.contains("<html lang=\"en\">"));
    assert!(
        body.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
    assert!(body.contains(":focus-visible"), "a visible focus style");
    assert!(!body.contains("<script"), "no script");
    assert!(
        !body.contains("src=\"http:") && !body.contains("<link"),
        "no external assets"
    );
    for input in inputs(body) {
        if input.get("type").map(String::as_str) == Some("hidden") {
            continue;
        }
        let id = input
            .get("id")
            .unwrap_or_else(|| panic!("an input without id: {input:?}"));
        assert!(
            body.contains(&format!("<label for=\"{id}\"")),
            "no label for #{id} on {}",
            page.url
        );
        assert!(
            input.contains_key("autocomplete"),
            "#{id} has no autocomplete"
        );
    }
}

fn assert_locked_down(page: &Page) {
    let csp = page.header("content-security-policy");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(csp.contains("img-src https: data:"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a style nonce");
    assert!(
        page.body.contains(&format!("<style nonce=\"{nonce}\">")),
        "the page's style carries the nonce"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(page.header("content-type").starts_with("text/html"));
}

async fn user(server: &TestServer, email: &str) -> String {
    create_user(
        server,
        json!({"email": email, "givenName": "Ama", "familyName": "Mensah"}),
        PW,
    )
    .await
}

fn sessions_of(server: &TestServer, user_id: &str) -> i64 {
    psql(
        server,
        &format!("SELECT count(*) FROM sessions WHERE user_id = '{user_id}'"),
    )
    .parse()
    .unwrap()
}

/// Creates an application through the admin API; returns its client_id.
async fn application(server: &TestServer, app: Value) -> String {
    let admin = server.admin_token().await;
    let (status, body) = post(server, "/v1/applications", Some(&admin), app).await;
    assert_eq!(status, 200, "{body}");
    body["application"]["clientId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn spa(server: &TestServer, name: &str, first_party: bool, extra: Value) -> String {
    let mut app = json!({
        "name": name,
        "applicationType": "APPLICATION_TYPE_SPA",
        "redirectUris": [REDIRECT],
        "postLogoutRedirectUris": ["https://app.example.com/bye"],
        "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
        "allowedScopes": ["openid", "profile", "email"],
        "firstParty": first_party,
    });
    for (k, v) in extra.as_object().unwrap() {
        app[k] = v.clone();
    }
    application(server, app).await
}

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92ZqoRZsZ0Wq2aBGx0EvSxcSgbBw9dE1nEMJm3i";

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(mgpass_server::crypto::secret::digest(VERIFIER))
}

fn authorize_url(client_id: &str, extra: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile%20email&state=xyz%3D1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}",
        url_encode(REDIRECT),
        challenge()
    )
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The query parameters of a redirect to the client.
fn callback_params(page: &Page) -> BTreeMap<String, String> {
    let loc = page
        .location()
        .unwrap_or_else(|| panic!("no redirect ({}): {}", page.status, page.body));
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let url = reqwest::Url::parse(&loc).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn exchange(server: &TestServer, client_id: &str, code: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

// ---- pages, forms, cookies -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_page_is_accessible_and_locked_down() {
    let server = TestServer::start().await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_locked_down(&page);
    assert_accessible(&page);
    let identifier = inputs(&page.body)
        .into_iter()
        .find(|i| i.get("name").map(String::as_str) == Some("identifier"))
        .unwrap();
    assert_eq!(identifier["autocomplete"], "username");
    assert_eq!(identifier["type"], "email");
    assert!(page.body.contains("autocomplete=\"current-password\""));
    assert!(page.text().contains("Email address"));
    assert!(
        page.body.contains("href=\"/oauth2/signup\""),
        "public registration is on by default"
    );
    // The CSRF cookie: HttpOnly, SameSite=Lax, whole site, not Secure over http.
    let csrf = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("mgpass_csrf="))
        .expect("a CSRF cookie");
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax") && csrf.contains("Path=/"),
        "{csrf}"
    );
    assert!(!csrf.contains("Secure"), "{csrf}");
    // A browser that has the cookie keeps it.
    let again = b.get("/oauth2/signin").await;
    assert!(again.set_cookies().is_empty(), "{:?}", again.set_cookies());

    for path in ["/oauth2/signup", "/oauth2/signed-out"] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_locked_down(&page);
        assert_accessible(&page);
    }
    let signed_out = b.get("/oauth2/signed-out").await;
    assert!(signed_out.text().contains("You are signed out"));
    let signup = b.get("/oauth2/signup").await;
    for (name, autocomplete) in [
        ("given_name", "given-name"),
        ("family_name", "family-name"),
        ("email", "email"),
        ("mobile", "tel"),
        ("password", "new-password"),
    ] {
        let input = inputs(&signup.body)
            .into_iter()
            .find(|i| i.get("name").map(String::as_str) == Some(name));
        assert_eq!(
            input.unwrap_or_else(|| panic!("no {name} field"))["autocomplete"],
            autocomplete
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let user_id = user(&server, "kofi@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    let creds = [
        ("identifier".to_string(), "kofi@example.com".to_string()),
        ("password".to_string(), PW.to_string()),
    ];

    let no_token = b.post("/oauth2/signin", &creds).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.text().contains("nothing was changed"));
    assert_locked_down(&no_token);

    let mut forged = creds.to_vec();
    forged.push(("csrf".into(), "x".repeat(43)));
    assert_eq!(b.post("/oauth2/signin", &forged).await.status, 403);

    // A token valid for another browser does not work in this one.
    let mut other = Browser::new(&server);
    let other_page = other.get("/oauth2/signin").await;
    let mut stolen = creds.to_vec();
    stolen.extend(other_page.form("/oauth2/signin"));
    assert_eq!(b.post("/oauth2/signin", &stolen).await.status, 403);

    // Without the cookie at all, even with a token.
    let mut fresh = Browser::new(&server);
    let mut with_token = creds.to_vec();
    with_token.extend(page.form("/oauth2/signin"));
    assert_eq!(fresh.post("/oauth2/signin", &with_token).await.status, 403);

    assert!(b.session_cookie().is_none() && fresh.session_cookie().is_none());
    assert_eq!(sessions_of(&server, &user_id), 0, "no sign-in happened");
    assert_eq!(psql(&server, "SELECT count(*) FROM browser_sessions"), "0");

    // Other forms too.
    for action in [
        "/oauth2/signup",
        "/oauth2/consent",
        "/oauth2/device",
        "/oauth2/password-reset",
        "/oauth2/second-factor",
    ] {
        let page = b
            .post(
                action,
                &[
                    ("email".into(), "new@example.com".into()),
                    ("password".into(), PW.into()),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{action}");
    }
    assert_eq!(
        psql(
            &server,
            "SELECT count(*) FROM users WHERE email = 'new@example.com'"
        ),
        "0"
    );

    // With the token, the same sign-in works.
    let ok = b
        .submit(
            &page,
            "/oauth2/signin",
            &[("identifier", "kofi@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(sessions_of(&server, &user_id), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_sets_the_browser_session_cookie_and_revocation_ends_it() {
    let server = TestServer::start().await;
    let user_id = user(&server, "esi@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    let signed_in = b
        .submit(
            &page,
            "/oauth2/signin",
            &[("identifier", "ESI@example.com "), ("password", PW)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("mgpass_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("; Path=/")
            && cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let value = b.session_cookie().unwrap().clone();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&value).unwrap().len(),
        32,
        "256 random bits"
    );
    // Stored only as its SHA-256, linked to the user's session.
    assert_eq!(
        psql(
            &server,
            &format!(
                "SELECT s.user_id FROM browser_sessions b JOIN sessions s ON s.id = b.session_id WHERE b.token_hash = sha256('{value}'::bytea)"
            )
        ),
        user_id
    );
    assert!(!verification_support::dump_contains(
        &verification_support::dump(&server),
        &value
    ));

    let home = b.follow(signed_in).await;
    assert!(
        home.text().contains("Signed in as esi@example.com"),
        "{}",
        home.body
    );

    // Revoking the session (here straight in the database, as an administrator or a password
    // change would) ends the browser session.
    psql(
        &server,
        &format!("UPDATE sessions SET revoked_at = now() WHERE user_id = '{user_id}'"),
    );
    let page = b.get("/oauth2/signin").await;
    assert!(
        page.body.contains("action=\"/oauth2/signin\""),
        "signed out: {}",
        page.body
    );

    // Sign in again, then sign out with the page's button: the session is revoked, the cookie gone.
    let home = b.sign_in(&page, "esi@example.com", PW).await;
    assert!(home.text().contains("Signed in as"));
    let out = b.submit_follow(&home, "/oauth2/end_session", &[]).await;
    assert!(out.text().contains("You are signed out"), "{}", out.body);
    assert!(b.session_cookie().is_none());
    assert_eq!(
        psql(
            &server,
            &format!(
                "SELECT count(*) FROM sessions WHERE user_id = '{user_id}' AND revoked_at IS NULL"
            )
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_unknown_account_lockout_and_suspension_read_as_sentences() {
    let server = TestServer::start_with(&[("MGPASS_SESSIONS__LOCKOUT_THRESHOLD", "3")]).await;
    let user_id = user(&server, "yaw@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;

    let wrong = b
        .sign_in(&page, "yaw@example.com", "not the password")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .text()
            .contains("The email address or the password is incorrect."),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains("INVALID_CREDENTIALS"), "no raw reason");
    assert!(
        wrong.body.contains("value=\"yaw@example.com\""),
        "the identifier is kept"
    );
    assert!(wrong.body.contains("aria-invalid=\"true\""));
    assert_accessible(&wrong);

    let unknown = b
        .sign_in(&wrong, "nobody@example.com", "not the password")
        .await;
    assert_eq!(unknown.status, 401, "an unknown account reads the same");
    assert!(
        unknown
            .text()
            .contains("The email address or the password is incorrect.")
    );

    let _ = b
        .sign_in(&unknown, "yaw@example.com", "not the password")
        .await;
    let third = b
        .sign_in(&unknown, "yaw@example.com", "not the password")
        .await;
    let locked = b.sign_in(&third, "yaw@example.com", PW).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked
            .text()
            .contains("Sign-in is locked for now; try again in"),
        "{}",
        locked.body
    );
    assert!(b.session_cookie().is_none());

    psql(&server, "DELETE FROM login_throttle");
    psql(
        &server,
        &format!("UPDATE users SET status = 'suspended' WHERE id = '{user_id}'"),
    );
    let suspended = b.sign_in(&locked, "yaw@example.com", PW).await;
    assert_eq!(suspended.status, 403);
    assert!(
        suspended.text().contains("This account is suspended"),
        "{}",
        suspended.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_follows_the_policy_and_signs_in() {
    let server = TestServer::start().await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signup").await;
    assert!(
        page.body.contains("id=\"given_name\"") && !page.body.contains("id=\"full_name\""),
        "a name pair"
    );
    let short = b
        .submit(
            &page,
            "/oauth2/signup",
            &[
                ("given_name", "Abena"),
                ("family_name", "Owusu"),
                ("email", "abena@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 400);
    assert!(
        short
            .text()
            .contains("Choose another password: it must have at least 8 characters."),
        "{}",
        short.body
    );
    assert!(short.body.contains("value=\"Abena\""), "entries are kept");

    let done = b
        .submit_follow(
            &short,
            "/oauth2/signup",
            &[
                ("given_name", "Abena"),
                ("family_name", "Owusu"),
                ("email", "abena@example.com"),
                ("mobile", ""),
                ("password", PW),
            ],
        )
        .await;
    assert!(
        done.text().contains("Signed in as abena@example.com"),
        "{}",
        done.body
    );
    assert!(b.session_cookie().is_some());
    assert_eq!(
        psql(
            &server,
            "SELECT given_name || ' ' || family_name FROM users WHERE email = 'abena@example.com'"
        ),
        "Abena Owusu"
    );

    // Registering the same address again says nothing about the existing account.
    let mut other = Browser::new(&server);
    let page = other.get("/oauth2/signup").await;
    let again = other
        .submit(
            &page,
            "/oauth2/signup",
            &[("email", "Abena@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(again.status, 409);
    let text = again.text();
    assert!(
        text.contains("We could not create an account with these details."),
        "{text}"
    );
    assert!(
        !text.contains("EMAIL_TAKEN") && !text.contains("exists"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_form_follows_a_mobile_and_full_name_policy_and_closed_registration() {
    let server = TestServer::start_with(&[
        ("MGPASS_IDENTITY__PRIMARY_IDENTIFIER", "mobile"),
        ("MGPASS_IDENTITY__SECONDARY_IDENTIFIER", "none"),
        ("MGPASS_IDENTITY__USER_NAME_TYPE", "asFullname"),
    ])
    .await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signup").await;
    assert_accessible(&page);
    assert!(page.body.contains("id=\"full_name\"") && !page.body.contains("id=\"given_name\""));
    assert!(page.body.contains("id=\"mobile\"") && !page.body.contains("id=\"email\""));
    let done = b
        .submit_follow(
            &page,
            "/oauth2/signup",
            &[
                ("full_name", "Kwame Nkrumah"),
                ("mobile", "+233201234567"),
                ("password", PW),
            ],
        )
        .await;
    assert!(
        done.text().contains("Signed in as +233201234567"),
        "{}",
        done.body
    );
    let signin = Browser::new(&server).get("/oauth2/signin").await;
    assert!(signin.text().contains("Mobile number") && signin.body.contains("type=\"tel\""));

    let closed = TestServer::start_with(&[("MGPASS_IDENTITY__REGISTRATION_PUBLIC", "false")]).await;
    let mut b = Browser::new(&closed);
    let page = b.get("/oauth2/signup").await;
    assert_eq!(page.status, 404);
    assert!(page.text().contains("Sign-up is closed"));
    assert!(
        !b.get("/oauth2/signin")
            .await
            .body
            .contains("/oauth2/signup"),
        "no sign-up link"
    );
}

/// The deployment's custom user properties are fields of the sign-up form, typed as declared;
/// a required one left out is a sentence on the page and no account.
#[tokio::test(flavor = "multi_thread")]
async fn sign_up_form_asks_for_the_custom_properties() {
    let config = mgpass_e2e::ConfigFile::new(
        r#"
[[identity.properties]]
name = "favouriteTeam"
type = "enum"
values = ["Hearts", "Kotoko"]
required = true

[[identity.properties]]
name = "birthYear"
type = "integer"

[[identity.properties]]
name = "newsletter"
type = "boolean"
default = false
"#,
    );
    let server = TestServer::start_with(&[("MGPASS_CONFIG", config.path())]).await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signup").await;
    assert_accessible(&page);
    assert!(page.body.contains("<select id=\"property_favouriteTeam\" name=\"property.favouriteTeam\" required>"), "{}", page.body);
    assert!(page.text().contains("Favourite team") && page.text().contains("Birth year"));
    assert!(page.body.contains("name=\"property.newsletter\" type=\"checkbox\""));

    // The required property missing: refused with a sentence, nothing created.
    let refused = b
        .submit_follow(
            &page,
            "/oauth2/signup",
            &[("given_name", "Ama"), ("family_name", "Owusu"), ("email", "ama@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.text().contains("favouriteTeam"), "{}", refused.text());
    let page = b.get("/oauth2/signup").await;
    let done = b
        .submit_follow(
            &page,
            "/oauth2/signup",
            &[
                ("given_name", "Ama"),
                ("family_name", "Owusu"),
                ("email", "ama@example.com"),
                ("password", PW),
                ("property.favouriteTeam", "Kotoko"),
                ("property.birthYear", "1990"),
                ("property.newsletter", "on"),
            ],
        )
        .await;
    assert!(done.text().contains("Signed in as ama@example.com"), "{}", done.body);
    let props: Value = serde_json::from_str(&mgpass_e2e::psql(
        &server.database_url,
        "SELECT properties FROM users WHERE email = 'ama@example.com'",
    ))
    .unwrap();
    assert_eq!(props, json!({"favouriteTeam": "Kotoko", "birthYear": 1990, "newsletter": true}));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_then_verify_the_emailed_code_then_sign_in() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[
            ("MGPASS_VERIFICATION__EMAIL_VERIFICATION__IS_ACTIVE", "true"),
            (
                "MGPASS_IDENTITY__EMAIL_VERIFICATION_REQUIRED_FOR_LOGIN",
                "true",
            ),
        ],
    )
    .await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signup").await;
    let verify = b
        .submit_follow(
            &page,
            "/oauth2/signup",
            &[("email", "efua@example.com"), ("password", PW)],
        )
        .await;
    assert!(
        verify.url.contains("/oauth2/verify?kind=email"),
        "{}",
        verify.url
    );
    assert!(
        verify.text().contains("We sent a code to efua@example.com"),
        "{}",
        verify.body
    );
    assert_accessible(&verify);
    assert!(
        b.session_cookie().is_none(),
        "not signed in before verifying"
    );

    // The page shows only an address or number, never free text from its link.
    let spoof = b
        .get("/oauth2/verify?kind=email&to=our%20support%20line%20at%20%2B1%20555")
        .await;
    assert_eq!(spoof.status, 404);

    let code = code_in(&nth_email(&smtp, 1, "efua@example.com").await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = b
        .submit(
            &verify,
            "/oauth2/verify",
            &[("code", wrong), ("action", "confirm")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains("That code or link is not valid."),
        "{}",
        bad.body
    );
    let signin = b
        .submit_follow(
            &bad,
            "/oauth2/verify",
            &[("code", &code), ("action", "confirm")],
        )
        .await;
    assert!(
        signin.text().contains("your address is verified"),
        "{}",
        signin.body
    );
    assert!(
        signin.body.contains("value=\"efua@example.com\""),
        "prefilled"
    );
    let home = b.sign_in(&signin, "efua@example.com", PW).await;
    assert!(
        home.text().contains("Signed in as efua@example.com"),
        "{}",
        home.body
    );

    // An unverified account is told to verify (its password was right), with a way to.
    let mut other = Browser::new(&server);
    let page = other.get("/oauth2/signup").await;
    other
        .submit(
            &page,
            "/oauth2/signup",
            &[("email", "kojo@example.com"), ("password", PW)],
        )
        .await;
    let page = other.get("/oauth2/signin").await;
    let refused = other.sign_in(&page, "kojo@example.com", PW).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .text()
            .contains("Your email address is not verified yet."),
        "{}",
        refused.body
    );
    assert!(
        refused
            .html()
            .contains("href=\"/oauth2/verify?kind=email&to=kojo%40example.com\""),
        "{}",
        refused.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_with_the_emailed_code() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[(
            "MGPASS_VERIFICATION__PASSWORD_RESET_BY_EMAIL__IS_ACTIVE",
            "true",
        )],
    )
    .await;
    let user_id = user(&server, "adjoa@example.com").await;
    let mut b = Browser::new(&server);
    let signin = b.get("/oauth2/signin").await;
    assert!(signin.body.contains("href=\"/oauth2/password-reset\""));
    let page = b.get("/oauth2/password-reset").await;
    assert_accessible(&page);

    // An unknown address gets the same answer as a known one.
    let unknown = b
        .submit(
            &page,
            "/oauth2/password-reset",
            &[("identifier", "nobody@example.com")],
        )
        .await;
    let known = b
        .submit(
            &page,
            "/oauth2/password-reset",
            &[("identifier", "adjoa@example.com")],
        )
        .await;
    assert_eq!((unknown.status, known.status), (200, 200));
    assert_eq!(
        unknown
            .text()
            .replace("nobody@example.com", "X")
            .split("<form")
            .nth(1)
            .map(|f| f.split("value=").count()),
        known
            .text()
            .replace("adjoa@example.com", "X")
            .split("<form")
            .nth(1)
            .map(|f| f.split("value=").count())
    );
    assert!(
        known
            .text()
            .contains("If adjoa@example.com belongs to an account, we sent it a code."),
        "{}",
        known.body
    );
    assert_accessible(&known);

    let code = code_in(&nth_email(&smtp, 1, "adjoa@example.com").await);
    let weak = b
        .submit(
            &known,
            "/oauth2/password-reset/confirm",
            &[("code", &code), ("password", "password")],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(
        weak.text().contains("Choose another password"),
        "{}",
        weak.body
    );
    let signin = b
        .submit_follow(
            &weak,
            "/oauth2/password-reset/confirm",
            &[("code", &code), ("password", "a brand new passphrase")],
        )
        .await;
    assert!(
        signin.text().contains("Your password has been changed."),
        "{}",
        signin.body
    );
    let old = b.sign_in(&signin, "adjoa@example.com", PW).await;
    assert_eq!(old.status, 401);
    let home = b
        .sign_in(&old, "adjoa@example.com", "a brand new passphrase")
        .await;
    assert!(
        home.text().contains("Signed in as adjoa@example.com"),
        "{}",
        home.body
    );
    assert_eq!(sessions_of(&server, &user_id), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_by_link_lands_on_a_form() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[
            (
                "MGPASS_VERIFICATION__PASSWORD_RESET_BY_EMAIL__IS_ACTIVE",
                "true",
            ),
            (
                "MGPASS_VERIFICATION__PASSWORD_RESET_BY_EMAIL__VERIFICATION_TYPE",
                "byLink",
            ),
        ],
    )
    .await;
    user(&server, "akua@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/password-reset").await;
    let sent = b
        .submit(
            &page,
            "/oauth2/password-reset",
            &[("identifier", "akua@example.com")],
        )
        .await;
    assert!(sent.text().contains("we sent it a link"), "{}", sent.body);
    let link = link_in(&nth_email(&smtp, 1, "akua@example.com").await);
    assert!(
        link.starts_with(&format!("{}/passwordResetByEmail/", server.base_url)),
        "{link}"
    );
    let form = b.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_accessible(&form);
    let signin = b
        .submit_follow(
            &form,
            "/oauth2/password-reset/confirm",
            &[("password", "another new passphrase")],
        )
        .await;
    assert!(
        signin.text().contains("Your password has been changed."),
        "{}",
        signin.body
    );
    let home = b
        .sign_in(&signin, "akua@example.com", "another new passphrase")
        .await;
    assert!(home.text().contains("Signed in as akua@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn magic_link_lands_on_a_button_that_signs_in() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[("MGPASS_VERIFICATION__MAGIC_LINK__IS_ACTIVE", "true")],
    )
    .await;
    user(&server, "ekow@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/magic-link").await;
    assert_accessible(&page);
    let sent = b
        .submit(
            &page,
            "/oauth2/magic-link",
            &[("email", "ekow@example.com")],
        )
        .await;
    assert!(
        sent.text().contains("we sent it a sign-in link"),
        "{}",
        sent.body
    );
    let link = link_in(&nth_email(&smtp, 1, "ekow@example.com").await);
    let landing = b.get(&link).await;
    assert_eq!(landing.status, 200, "{}", landing.body);
    assert!(
        b.session_cookie().is_none(),
        "opening the link alone signs nobody in"
    );
    let home = b
        .submit_follow(&landing, "/oauth2/magic-link/confirm", &[])
        .await;
    assert!(
        home.text().contains("Signed in as ekow@example.com"),
        "{}",
        home.body
    );
    // Single use.
    let mut other = Browser::new(&server);
    let landing = other.get(&link).await;
    let again = other
        .submit(&landing, "/oauth2/magic-link/confirm", &[])
        .await;
    assert_eq!(again.status, 400);
    assert!(
        again.text().contains("That code or link is not valid."),
        "{}",
        again.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn email_second_factor_page_completes_the_sign_in() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[
            ("MGPASS_VERIFICATION__EMAIL_2FA__IS_ACTIVE", "true"),
            ("MGPASS_VERIFICATION__EMAIL_2FA_REQUIRED_FOR_LOGIN", "true"),
        ],
    )
    .await;
    verification_support::register_user(&server, json!({"email": "nana@example.com"}), PW).await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    let factor = b.sign_in(&page, "nana@example.com", PW).await;
    assert!(
        factor.url.ends_with("/oauth2/second-factor"),
        "{}",
        factor.url
    );
    assert!(
        factor
            .text()
            .contains("We sent a code to your email address n***@example.com"),
        "{}",
        factor.body
    );
    assert_accessible(&factor);
    assert!(factor.body.contains("autocomplete=\"one-time-code\""));
    // Owing the factor is not being signed in.
    assert!(
        b.get("/oauth2/signin")
            .await
            .location()
            .is_some_and(|l| l == "/oauth2/second-factor")
    );

    let code = code_in(&nth_email(&smtp, 1, "nana@example.com").await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = b
        .submit(&factor, "/oauth2/second-factor", &[("code", wrong)])
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("That code or link is not valid."));
    let home = b
        .submit_follow(&bad, "/oauth2/second-factor", &[("code", &code)])
        .await;
    assert!(
        home.text().contains("Signed in as nana@example.com"),
        "{}",
        home.body
    );
    assert_eq!(
        psql(
            &server,
            "SELECT array_to_string(amr, ',') FROM sessions s JOIN browser_sessions b ON b.session_id = s.id"
        ),
        "pwd,email,mfa"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn branding_comes_from_the_config_and_is_escaped() {
    let server = TestServer::start_with(&[
        ("MGPASS_BRANDING__PRODUCT_NAME", "Acme <ID> & Co"),
        ("MGPASS_BRANDING__PRIMARY_COLOR", "#aa0000"),
        ("MGPASS_BRANDING__BACKGROUND_COLOR", "#fafafa"),
        (
            "MGPASS_BRANDING__LOGO_URI",
            "https://cdn.example.com/logo.png?a=1&b=2",
        ),
    ])
    .await;
    let page = Browser::new(&server).get("/oauth2/signin").await;
    assert!(
        page.body
            .contains("<title>Sign in · Acme &lt;ID&gt; &amp; Co</title>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("--primary: #aa0000;") && page.body.contains("--bg: #fafafa;"));
    assert!(
        page.body.contains("<img src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.png?a=1&amp;b=2\" alt=\"Acme &lt;ID&gt; &amp; Co\">"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<ID>"));
}

// ---- the authorization code flow through the pages -----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_signs_in_asks_consent_once_and_redirects_with_code_and_state() {
    let server = TestServer::start().await;
    user(&server, "kwesi@example.com").await;
    let client_id = spa(&server, "Photo <Shop>", false, json!({"branding": {"primaryColor": "#008800", "logoUri": "https://shop.example/logo.png"}})).await;
    let mut b = Browser::new(&server);

    let signin = b.open(&authorize_url(&client_id, "")).await;
    assert_eq!(signin.status, 200, "{}", signin.body);
    assert!(
        signin.url.contains("/oauth2/signin?interaction="),
        "{}",
        signin.url
    );
    assert!(
        signin.text().contains("to continue to Photo <Shop>"),
        "{}",
        signin.body
    );
    assert!(
        signin.body.contains("--primary: #008800;")
            && signin
                .body
                .contains("src=\"https:&#x2f;&#x2f;shop.example&#x2f;logo.png\""),
        "the application's branding: {}",
        signin.body
    );
    assert!(
        signin
            .header("content-security-policy")
            .contains("form-action 'self' https://app.example.com"),
        "{}",
        signin.header("content-security-policy")
    );
    assert_accessible(&signin);

    // The interaction is stored under its SHA-256 only, and belongs to this browser only.
    let ix = signin.url.split("interaction=").nth(1).unwrap().to_string();
    assert_eq!(
        psql(
            &server,
            &format!(
                "SELECT count(*) FROM oauth_interactions WHERE id_hash = sha256('{ix}'::bytea)"
            )
        ),
        "1"
    );
    assert!(!verification_support::dump_contains(
        &verification_support::dump(&server),
        &ix
    ));
    let stolen = Browser::new(&server).get(&signin.url).await;
    assert_eq!(stolen.status, 400);
    assert!(stolen.text().contains("This sign-in request has expired"));

    let consent = b.sign_in(&signin, "kwesi@example.com", PW).await;
    assert!(
        consent.url.contains("/oauth2/consent?interaction="),
        "{} {}",
        consent.url,
        consent.body
    );
    let text = consent.text();
    assert!(
        text.contains("Photo <Shop> wants access to your account"),
        "{text}"
    );
    assert!(text.contains("Signed in as kwesi@example.com"));
    assert!(
        text.contains("Your email address") && text.contains("Your name and picture"),
        "{text}"
    );
    assert_accessible(&consent);
    assert_locked_down(&consent);

    let back = b
        .submit(&consent, "/oauth2/consent", &[("decision", "allow")])
        .await;
    assert_eq!(back.status, 303);
    let params = callback_params(&back);
    assert_eq!(params["state"], "xyz=1");
    assert_eq!(params["iss"], server.base_url);
    let (status, tokens) = exchange(&server, &client_id, &params["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens["id_token"].is_string() && tokens["access_token"].is_string(),
        "{tokens}"
    );

    // The same form again does not answer twice.
    let replay = b
        .submit(&consent, "/oauth2/consent", &[("decision", "allow")])
        .await;
    assert_eq!(replay.status, 400);

    // Next time: signed in, consented: straight back with a code.
    let again = b.get(&authorize_url(&client_id, "")).await;
    assert_eq!(again.status, 303);
    assert!(callback_params(&again).contains_key("code"));

    // prompt=consent asks again; denying answers access_denied.
    let consent = b.open(&authorize_url(&client_id, "&prompt=consent")).await;
    assert!(consent.url.contains("/oauth2/consent"), "{}", consent.url);
    let denied = b
        .submit(&consent, "/oauth2/consent", &[("decision", "deny")])
        .await;
    let params = callback_params(&denied);
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        ("access_denied", "xyz=1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn first_party_apps_skip_consent_and_bad_requests_get_a_page() {
    let server = TestServer::start().await;
    user(&server, "afia@example.com").await;
    let client_id = spa(&server, "Our own app", true, json!({})).await;
    let mut b = Browser::new(&server);
    let signin = b.open(&authorize_url(&client_id, "")).await;
    let back = b
        .submit(
            &signin,
            "/oauth2/signin",
            &[("identifier", "afia@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let params = callback_params(&back);
    assert!(
        params.contains_key("code") && params["state"] == "xyz=1",
        "{params:?}"
    );
    assert!(
        back.set_cookies()
            .iter()
            .any(|c| c.starts_with("mgpass_session="))
    );

    // An unknown client or redirect URI: a page, never a redirect.
    let unknown = b.get("/oauth2/authorize?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.location().is_none());
    assert!(
        unknown.text().contains("This sign-in request is not valid"),
        "{}",
        unknown.body
    );
    assert_locked_down(&unknown);
    let evil = b.get(&format!("/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fevil.example%2F")).await;
    assert_eq!(evil.status, 400);
    assert!(evil.location().is_none());
    // A bad parameter with a good redirect URI goes back to the client.
    let bad = b.get(&authorize_url(&client_id, "&prompt=bogus")).await;
    assert_eq!(callback_params(&bad)["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_none_answers_login_required_and_consent_required() {
    let server = TestServer::start().await;
    user(&server, "abla@example.com").await;
    let client_id = spa(&server, "Third party", false, json!({})).await;
    let mut b = Browser::new(&server);
    let none = b.get(&authorize_url(&client_id, "&prompt=none")).await;
    assert_eq!(none.status, 303);
    let params = callback_params(&none);
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        ("login_required", "xyz=1")
    );

    let page = b.get("/oauth2/signin").await;
    b.sign_in(&page, "abla@example.com", PW).await;
    let none = b.get(&authorize_url(&client_id, "&prompt=none")).await;
    assert_eq!(callback_params(&none)["error"], "consent_required");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_age_exceeded_shows_sign_in_again_without_looping() {
    let server = TestServer::start().await;
    user(&server, "fiifi@example.com").await;
    let client_id = spa(&server, "Bank", true, json!({})).await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    b.sign_in(&page, "fiifi@example.com", PW).await;
    let fresh = b.get(&authorize_url(&client_id, "&max_age=60")).await;
    assert!(
        callback_params(&fresh).contains_key("code"),
        "recent enough"
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let signin = b.open(&authorize_url(&client_id, "&max_age=1")).await;
    assert!(
        signin.url.contains("/oauth2/signin?interaction="),
        "{}",
        signin.url
    );
    assert!(signin.body.contains("action=\"/oauth2/signin\""));
    // The new sign-in satisfies the request even though `max_age` is short: no loop.
    let back = b
        .submit(
            &signin,
            "/oauth2/signin",
            &[("identifier", "fiifi@example.com"), ("password", PW)],
        )
        .await;
    assert!(callback_params(&back).contains_key("code"));

    // prompt=login too.
    let signin = b.open(&authorize_url(&client_id, "&prompt=login")).await;
    assert!(
        signin.url.contains("/oauth2/signin?interaction="),
        "{}",
        signin.url
    );
    let back = b
        .submit(
            &signin,
            "/oauth2/signin",
            &[("identifier", "fiifi@example.com"), ("password", PW)],
        )
        .await;
    assert!(callback_params(&back).contains_key("code"));
    // prompt=none with max_age exceeded: login_required.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let none = b
        .get(&authorize_url(&client_id, "&prompt=none&max_age=1"))
        .await;
    assert_eq!(callback_params(&none)["error"], "login_required");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_is_approved_on_the_device_page() {
    let server = TestServer::start().await;
    user(&server, "kobby@example.com").await;
    let client_id = application(
        &server,
        json!({
            "name": "Living-room TV",
            "applicationType": "APPLICATION_TYPE_NATIVE",
            "redirectUris": ["com.example.tv:/cb"],
            "grantTypes": ["GRANT_TYPE_DEVICE_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
            "allowedScopes": ["openid", "profile"],
        }),
    )
    .await;
    let http = reqwest::Client::new();
    let start: Value = http
        .post(server.url("/oauth2/device_authorization"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("scope", "openid profile"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = start["user_code"]
        .as_str()
        .unwrap_or_else(|| panic!("{start}"))
        .to_string();
    let complete = start["verification_uri_complete"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        complete.starts_with(&format!("{}/oauth2/device", server.base_url)),
        "{complete}"
    );

    let mut b = Browser::new(&server);
    let signin = b.open(&complete).await;
    assert!(
        signin.url.contains("/oauth2/signin?interaction="),
        "sign in first: {}",
        signin.url
    );
    let confirm = b.sign_in(&signin, "kobby@example.com", PW).await;
    assert!(
        confirm.text().contains("Connect Living-room TV?"),
        "{}",
        confirm.body
    );
    assert!(
        confirm.text().contains(&user_code.to_uppercase()),
        "the code is shown to compare"
    );
    assert_accessible(&confirm);

    let done = b
        .submit(&confirm, "/oauth2/device", &[("action", "approve")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.text().contains("Living-room TV is now connected."),
        "{}",
        done.body
    );
    let tokens: Value = http
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", start["device_code"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");

    // Used codes and made-up codes read the same on the entry page.
    let entry = b.get("/oauth2/device").await;
    assert_accessible(&entry);
    let bad = b
        .submit(
            &entry,
            "/oauth2/device",
            &[("user_code", &user_code), ("action", "lookup")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text()
            .contains("That code is not valid, has expired or was already used."),
        "{}",
        bad.body
    );
    // Typed codes are guessable: a user trying many gets slowed down.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let page = b
            .submit(
                &entry,
                "/oauth2/device",
                &[("user_code", "BCDF-GHJK"), ("action", "lookup")],
            )
            .await;
        statuses.push(page.status);
        if page.status == 429 {
            assert!(
                page.text().contains("Too many codes tried."),
                "{}",
                page.body
            );
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn end_session_signs_out_and_redirects_with_state_or_asks_first() {
    let server = TestServer::start().await;
    let user_id = user(&server, "ama.k@example.com").await;
    let client_id = spa(&server, "Notes", true, json!({})).await;
    let mut b = Browser::new(&server);
    let signin = b.open(&authorize_url(&client_id, "")).await;
    let back = b
        .submit(
            &signin,
            "/oauth2/signin",
            &[("identifier", "ama.k@example.com"), ("password", PW)],
        )
        .await;
    let (status, tokens) = exchange(&server, &client_id, &callback_params(&back)["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();

    // Without a hint the user is asked first; the link alone signs nobody out.
    let ask = b
        .get(&format!(
            "/oauth2/end_session?client_id={client_id}&post_logout_redirect_uri={}",
            url_encode("https://app.example.com/bye")
        ))
        .await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.text().contains("Sign out?"));
    assert!(
        ask.header("content-security-policy")
            .contains("form-action 'self' https://app.example.com")
    );
    assert!(b.session_cookie().is_some());
    let stay = b
        .submit(&ask, "/oauth2/end_session", &[("confirm", "no")])
        .await;
    assert!(stay.text().contains("You are still signed in"));
    assert!(b.session_cookie().is_some());

    // With the ID token as hint: signed out at once, back to the client with its state.
    let out = b
        .get(&format!(
            "/oauth2/end_session?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s-9",
            url_encode("https://app.example.com/bye")
        ))
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        out.location().unwrap(),
        "https://app.example.com/bye?state=s-9"
    );
    assert!(b.session_cookie().is_none(), "cookie deleted");
    assert_eq!(
        psql(
            &server,
            &format!(
                "SELECT count(*) FROM browser_sessions b JOIN sessions s ON s.id = b.session_id WHERE s.user_id = '{user_id}'"
            )
        ),
        "0"
    );

    // An unregistered redirect is refused with a page.
    let evil = b
        .get(&format!(
            "/oauth2/end_session?client_id={client_id}&post_logout_redirect_uri={}",
            url_encode("https://evil.example/")
        ))
        .await;
    assert_eq!(evil.status, 400);
    assert!(evil.location().is_none());

    // No redirect asked: the signed-out page.
    let page = b.open("/oauth2/end_session").await;
    assert!(page.text().contains("You are signed out"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_are_secure_and_host_prefixed_behind_https() {
    let server =
        TestServer::start_with(&[("MGPASS_SERVER__PUBLIC_URL", "https://id.example.com")]).await;
    user(&server, "mansa@example.com").await;
    let mut b = Browser::new(&server);
    let page = b.get("/oauth2/signin").await;
    let csrf = page
        .set_cookies()
        .into_iter()
        .next()
        .expect("a CSRF cookie");
    assert!(
        csrf.starts_with("__Host-mgpass_csrf=")
            && csrf.contains("; Secure")
            && csrf.contains("; Path=/"),
        "{csrf}"
    );
    let done = b
        .submit(
            &page,
            "/oauth2/signin",
            &[("identifier", "mansa@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-mgpass_session="))
        .expect("a session cookie");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    let home = b.follow(done).await;
    assert!(
        home.text().contains("Signed in as mansa@example.com"),
        "{}",
        home.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticator_code_completes_an_authorization_request() {
    use totp_rs::{Builder, Secret};
    let server = TestServer::start().await;
    user(&server, "kofi.t@example.com").await;
    let token = server.login("kofi.t@example.com", PW).await;
    let (_, body) = post(
        &server,
        "/v1/me/secondFactors/totp:enroll",
        Some(&token),
        json!({"password": PW}),
    )
    .await;
    let secret =
        Secret::try_from_base32(body["secret"].as_str().unwrap_or_else(|| panic!("{body}")))
            .unwrap();
    let totp = Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let (status, body) = post(
        &server,
        "/v1/me/secondFactors/totp:confirm",
        Some(&token),
        json!({"code": totp.generate(now()).to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client_id = spa(&server, "Ledger", true, json!({})).await;

    let mut b = Browser::new(&server);
    let signin = b
        .open(&authorize_url(
            &client_id,
            "&login_hint=kofi.t%40example.com",
        ))
        .await;
    assert!(
        signin.body.contains("value=\"kofi.t@example.com\""),
        "login_hint prefills: {}",
        signin.body
    );
    let factor = b.sign_in(&signin, "kofi.t@example.com", PW).await;
    assert!(
        factor.url.contains("/oauth2/second-factor?interaction="),
        "{}",
        factor.url
    );
    assert!(
        factor.text().contains("authenticator app"),
        "{}",
        factor.body
    );
    assert!(
        factor
            .header("content-security-policy")
            .contains("form-action 'self' https://app.example.com")
    );
    // prompt=none meanwhile: the session owes its factor, so nobody is signed in.
    let none = Browser::new(&server)
        .get(&authorize_url(&client_id, "&prompt=none"))
        .await;
    assert_eq!(callback_params(&none)["error"], "login_required");

    let back = b
        .submit(
            &factor,
            "/oauth2/second-factor",
            &[("code", &totp.generate(now() + 30).to_string())],
        )
        .await;
    let params = callback_params(&back);
    assert!(params.contains_key("code"), "{params:?}");
    let (status, tokens) = exchange(&server, &client_id, &params["code"]).await;
    assert_eq!(status, 200, "{tokens}");
}
