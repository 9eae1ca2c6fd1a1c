//! Request rate limits (GCRA token buckets, governor): one bucket per API key or session for the
//! API, one per source address for logins. Every response carries the bucket's state in
//! `X-RateLimit-Limit/Remaining/Reset`; an empty bucket answers 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::RateLimitConfig;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// What the headers say about one request's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again (allowed) or until the next request may pass (denied).
    pub reset_secs: u64,
    pub allowed: bool,
}

pub struct Bucket {
    limiter: Keyed,
    burst: u32,
    per_token: Duration,
}

impl Bucket {
    fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst_nz = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst_nz);
        Bucket {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            burst: burst_nz.get(),
            per_token: Duration::from_secs(60) / per_minute.get(),
        }
    }

    pub fn check(&self, key: &str) -> Verdict {
        match self.limiter.check_key(&key.to_string()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.per_token * (self.burst - remaining);
                Verdict { limit: self.burst, remaining, reset_secs: ceil_secs(refill), allowed: true }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Verdict { limit: self.burst, remaining: 0, reset_secs: ceil_secs(wait).max(1), allowed: false }
            }
        }
    }

    /// Forgets buckets that are full again, so memory stays bounded by recent clients.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub struct RateLimits {
    pub api: Bucket,
    pub login: Bucket,
    /// Device enrollment and renewal, per source address (they carry no API credentials).
    pub enroll: Bucket,
}

impl RateLimits {
    pub fn new(c: &RateLimitConfig) -> Self {
        RateLimits {
            api: Bucket::new(c.api_per_minute, c.api_burst),
            login: Bucket::new(c.login_per_minute, c.login_burst),
            enroll: Bucket::new(c.enroll_per_minute, c.enroll_burst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_then_refuses_with_a_wait() {
        let b = Bucket::new(60, 3);
        let v: Vec<Verdict> = (0..4).map(|_| b.check("k")).collect();
        assert_eq!(v[0].remaining, 2);
        assert_eq!(v[2].remaining, 0);
        assert!(v[2].allowed);
        assert!(!v[3].allowed && v[3].reset_secs >= 1);
        // Other keys have their own bucket.
        assert!(b.check("other").allowed);
    }
}
