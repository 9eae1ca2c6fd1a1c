//! What the console's list pages share: the page number from the query string, 50 rows a page,
//! and the pager's links (keeping the page's filters).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::form::{FormData, urlencode};
use crate::app::PageRequest;

/// Rows per console list page.
pub(super) const PER_PAGE: u32 = 50;

/// The query string as form fields (a malformed one reads as empty: filters are optional).
pub(super) fn query(raw: &Option<String>) -> FormData {
    FormData::parse(raw.as_deref().unwrap_or_default().as_bytes())
}

/// `?page=N` (1 when missing or not a number), 50 per page.
pub(super) fn page_request(q: &FormData) -> PageRequest {
    page_number(q.get("page"))
}

fn page_number(v: Option<&str>) -> PageRequest {
    let page = v.and_then(|p| p.parse::<u32>().ok()).filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1);
    PageRequest { page, per_page: PER_PAGE }
}

/// A list page's query string, read leniently: a bad page number is page 1, not an error page.
#[derive(Debug, Default)]
pub(super) struct ListQuery(pub HashMap<String, String>);

impl ListQuery {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The page number in parameter `name` (pages with two tables have two).
    pub fn page(&self, name: &str) -> PageRequest {
        page_number(self.get(name))
    }
}

/// `path?k=v&` for the filters that are set, to keep them on pager links.
pub(super) fn keep_filters(path: &str, q: &ListQuery, names: &[&str]) -> String {
    let mut s = format!("{path}?");
    for n in names {
        if let Some(v) = q.get(n) {
            s.push_str(&format!("{n}={}&", urlencode(v)));
        }
    }
    s
}

/// A response with another status: a form re-rendered with its error keeps the error's status.
pub(super) fn with_status(resp: impl IntoResponse, status: StatusCode) -> Response {
    let mut resp = resp.into_response();
    *resp.status_mut() = status;
    resp
}

/// Previous/next links of a paginated table.
#[derive(Debug, Clone)]
pub(super) struct Pager {
    pub page: u32,
    pub pages: u32,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// This page's own URL: where live updates re-fetch it, also when it answered a form.
    pub current: String,
}

impl Pager {
    /// `base` is the page's URL with its other query parameters, ending in `?` or `&`; the page
    /// number goes in `param`.
    pub fn new(base: &str, param: &str, page: PageRequest, total: i64) -> Pager {
        let per = u64::from(page.per_page.max(1));
        let pages = u32::try_from((total.max(0) as u64).div_ceil(per).max(1)).unwrap_or(u32::MAX);
        let link = |n: u32| format!("{base}{param}={n}");
        Pager {
            page: page.page,
            pages,
            total,
            prev: (page.page > 1).then(|| link(page.page.min(pages + 1) - 1)),
            next: (page.page < pages).then(|| link(page.page + 1)),
            current: link(page.page),
        }
    }

    /// A pager for `path` keeping the non-empty filters of `keep`, the page number in `page`.
    pub fn filtered(page: PageRequest, total: i64, path: &str, keep: &[(&str, String)]) -> Pager {
        let mut base = format!("{path}?");
        for (k, v) in keep.iter().filter(|(_, v)| !v.is_empty()) {
            base.push_str(&format!("{k}={}&", urlencode(v)));
        }
        Pager::new(&base, "page", page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_keeps_filters_and_bounds() {
        let p = Pager::filtered(PageRequest { page: 2, per_page: 50 }, 120, "/audit", &[("action", "asset.*".into())]);
        assert_eq!(p.pages, 3);
        assert_eq!(p.prev.as_deref(), Some("/audit?action=asset%2E%2A&page=1"));
        assert_eq!(p.next.as_deref(), Some("/audit?action=asset%2E%2A&page=3"));
        let one = Pager::filtered(PageRequest { page: 1, per_page: 50 }, 0, "/x", &[]);
        assert_eq!((one.pages, one.prev, one.next), (1, None, None));
        // Past the end: "previous" leads back to the last page.
        let past = Pager::new("/vnis?", "page", PageRequest { page: 9, per_page: 50 }, 120);
        assert_eq!(past.prev.as_deref(), Some("/vnis?page=3"));
    }

    #[test]
    fn page_numbers_are_read_leniently() {
        assert_eq!(page_request(&FormData::parse(b"page=3")).page, 3);
        assert_eq!(page_request(&FormData::parse(b"page=0")).page, 1);
        assert_eq!(page_request(&FormData::parse(b"page=x")).page, 1);
        let q = ListQuery([("tokens_page".to_string(), "2".to_string())].into());
        assert_eq!(q.page("tokens_page").page, 2);
        assert_eq!(q.page("page").page, 1);
    }
}
