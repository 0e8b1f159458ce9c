//! A minimal browser for the hosted pages: keeps cookies, follows redirects by hand (so tests see
//! every hop and stop at the client's redirect URI), and submits forms the way a person would,
//! hidden fields (CSRF token, interaction) included.

use reqwest::{Client, StatusCode, header};
use scraper::{Html, Selector};

pub struct Browser {
    pub http: Client,
    base: String,
}

/// A page the browser stopped on: a final HTML answer, or a redirect leaving the server.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub url: String,
    pub body: String,
    /// Where a redirect pointed, when it left the server (the client's redirect URI).
    pub left_to: Option<String>,
}

impl Page {
    /// Whether the page has a form posting to `action`.
    pub fn has_form(&self, action: &str) -> bool {
        forms(&self.body).iter().any(|f| f.0 == action)
    }
}

/// The forms of a page: (action, fields of hidden inputs, submit buttons (name, value)).
pub fn forms(html: &str) -> Vec<(String, Vec<(String, String)>, Vec<(String, String)>)> {
    let doc = Html::parse_document(html);
    let form_sel = Selector::parse("form").unwrap();
    let hidden = Selector::parse("input[type=hidden]").unwrap();
    let buttons = Selector::parse("button[name]").unwrap();
    doc.select(&form_sel)
        .map(|f| {
            let action = f.value().attr("action").unwrap_or_default().to_string();
            let fields = f
                .select(&hidden)
                .filter_map(|i| Some((i.value().attr("name")?.to_string(), i.value().attr("value").unwrap_or_default().to_string())))
                .collect();
            let buttons = f
                .select(&buttons)
                .map(|b| (b.value().attr("name").unwrap_or_default().to_string(), b.value().attr("value").unwrap_or_default().to_string()))
                .collect();
            (action, fields, buttons)
        })
        .collect()
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let http = Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_string() }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') { format!("{}{url}", self.base) } else { url.to_string() }
    }

    /// Follows redirects within the server; stops at a page, or at a redirect leaving it.
    async fn follow(&self, mut resp: reqwest::Response) -> Page {
        loop {
            let url = resp.url().to_string();
            if resp.status().is_redirection() {
                let location = resp.headers()[header::LOCATION].to_str().unwrap().to_string();
                let next = self.absolute(&location);
                if !next.starts_with(&self.base) {
                    return Page { status: resp.status(), url, body: String::new(), left_to: Some(next) };
                }
                resp = self.http.get(&next).send().await.unwrap();
                continue;
            }
            let status = resp.status();
            let body = resp.text().await.unwrap();
            return Page { status, url, body, left_to: None };
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let resp = self.http.get(self.absolute(url)).send().await.unwrap();
        self.follow(resp).await
    }

    /// Submits the page's form that posts to `action`, with its hidden fields, `fields`, and the
    /// button `button` (name, value) when given.
    pub async fn submit(&self, page: &Page, action: &str, fields: &[(&str, &str)], button: Option<(&str, &str)>) -> Page {
        let (_, hidden, _) = forms(&page.body)
            .into_iter()
            .find(|f| f.0 == action)
            .unwrap_or_else(|| panic!("no form posting to {action} on {}:\n{}", page.url, page.body));
        let mut form: Vec<(String, String)> = hidden;
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some((k, v)) = button {
            form.push((k.to_string(), v.to_string()));
        }
        let resp = self.http.post(self.absolute(action)).form(&form).send().await.unwrap();
        self.follow(resp).await
    }

    /// Drives an authorization request to its end: signs in when asked, allows consent when
    /// asked, and returns the page it stopped on (`left_to` holds the client's redirect URI with
    /// `code` or `error`).
    pub async fn authorize(&self, authorize_url: &str, identifier: &str, password: &str) -> Page {
        let mut page = self.get(authorize_url).await;
        for _ in 0..5 {
            if page.left_to.is_some() {
                return page;
            }
            if page.has_form("/oauth2/signin") {
                page = self.submit(&page, "/oauth2/signin", &[("identifier", identifier), ("password", password)], None).await;
            } else if page.has_form("/oauth2/consent") {
                page = self.submit(&page, "/oauth2/consent", &[], Some(("decision", "allow"))).await;
            } else {
                return page;
            }
        }
        page
    }
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}
