//! Rendered list pages, reused while their resource's generation (see migration 0007) is unchanged.
//! A hit costs one primary-key read of the counter instead of an offset walk, a count and the
//! concatenation of a page of JSON. Every writer of a cached resource bumps its generation in the
//! same transaction (`Store::bump_generation`), so a page is never served after a commit that
//! changed it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A rendered page: the `data` array as JSON text and the filter's total.
#[derive(Clone)]
pub struct CachedPage {
    pub data: Arc<str>,
    pub total: i64,
}

/// Bounded: at most `MAX_ENTRIES` pages (a few MiB); when full it starts over rather than
/// tracking recency, which keeps hits lock-cheap.
const MAX_ENTRIES: usize = 256;

#[derive(Default, Clone)]
pub struct PageCache {
    pages: Arc<Mutex<HashMap<String, (i64, CachedPage)>>>,
}

impl PageCache {
    /// The page cached under `key`, if it was rendered at generation `seq`.
    pub fn get(&self, key: &str, seq: i64) -> Option<CachedPage> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.get(key).filter(|(s, _)| *s == seq).map(|(_, p)| p.clone())
    }

    pub fn put(&self, key: String, seq: i64, page: CachedPage) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.len() >= MAX_ENTRIES && !pages.contains_key(&key) {
            pages.clear();
        }
        // Never replace a newer rendering with an older one (two misses racing a write).
        if pages.get(&key).is_none_or(|(s, _)| *s <= seq) {
            pages.insert(key, (seq, page));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(s: &str) -> CachedPage {
        CachedPage { data: s.into(), total: 1 }
    }

    #[test]
    fn a_page_is_served_only_at_its_generation() {
        let c = PageCache::default();
        c.put("k".into(), 3, page("[1]"));
        assert_eq!(c.get("k", 3).map(|p| p.data.to_string()), Some("[1]".into()));
        assert!(c.get("k", 4).is_none());
        c.put("k".into(), 2, page("[old]"));
        assert_eq!(c.get("k", 3).map(|p| p.data.to_string()), Some("[1]".into()), "older rendering kept out");
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = PageCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            c.put(format!("k{i}"), 1, page("[]"));
        }
        assert!(c.pages.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
