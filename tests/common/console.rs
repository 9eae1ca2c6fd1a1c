//! A console user over plain HTTP: logs in through the login form, keeps the session cookie, and
//! posts forms with the page's CSRF token, the way a browser without JavaScript does. Redirects
//! are not followed, so tests see the 303 and its Location.

use std::time::Duration;

use reqwest::StatusCode;

pub struct Console {
    pub http: reqwest::Client,
    pub base: String,
    /// The session's CSRF token, read from the last page that carried one.
    pub csrf: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    /// Asserts the page contains `needle`, showing the page when it does not.
    pub fn has(&self, needle: &str) -> &Self {
        assert!(self.html.contains(needle), "expected {needle:?} in the page ({}):\n{}", self.status, self.html);
        self
    }

    pub fn lacks(&self, needle: &str) -> &Self {
        assert!(!self.html.contains(needle), "did not expect {needle:?} in the page ({}):\n{}", self.status, self.html);
        self
    }
}

/// The value of the first hidden `_csrf` input in `html`.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

/// The value of the input named `name` (`name="…" value="…"` in that order).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key)? + key.len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

impl Console {
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    /// Logs in with the form (no MFA); panics unless it lands on the dashboard.
    pub async fn login(base: &str, username: &str, password: &str) -> Console {
        let mut c = Console { http: Self::client(), base: base.to_string(), csrf: String::new() };
        let p = c.login_form(username, password).await;
        assert_eq!(p.status, 303, "console login of {username}: {}", p.html);
        assert_eq!(p.location.as_deref(), Some("/"));
        let home = c.get("/").await;
        assert_eq!(home.status, 200, "dashboard after login: {}", home.html);
        c
    }

    /// A console with no session yet.
    pub fn anonymous(base: &str) -> Console {
        Console { http: Self::client(), base: base.to_string(), csrf: String::new() }
    }

    /// Fills and submits the login form; returns the answer (303 on success).
    pub async fn login_form(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = csrf_of(&form.html).expect("login form token");
        self.post_fields("/login", &[("_csrf", &token), ("username", username), ("password", password)]).await
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{}", self.base, path)).send().await.expect("GET");
        let page = Self::page(r).await;
        if let Some(t) = csrf_of(&page.html)
            && !page.html.contains("action=\"/login")
        {
            self.csrf = t;
        }
        page
    }

    /// Posts a form with this session's CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_fields(path, &all).await
    }

    /// Posts exactly `fields` (no token added): for forged requests.
    pub async fn post_fields(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form encoding");
        let r = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        Self::page(r).await
    }

    /// Follows a 303 from a form to the page it leads to.
    pub async fn follow(&mut self, p: &Page) -> Page {
        let to = p.location.clone().unwrap_or_else(|| panic!("expected a redirect, got {}: {}", p.status, p.html));
        self.get(&to).await
    }

    async fn page(r: reqwest::Response) -> Page {
        let status = r.status();
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let html = r.text().await.unwrap_or_default();
        Page { status, location, html }
    }
}
