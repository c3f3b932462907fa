//! Request rates on `/d/` (the buyer page and its files), per download link and per client,
//! so that one buyer, or a script with a leaked link, cannot flood the use log and the store
//! with requests: past the rate the answer is a 429 with `Retry-After`, decided before any
//! store access.
//!
//! The rates are GCRA limits from `governor` (a burst of a minute's worth, then the rate),
//! which counts every request, allowed or not: unlike a sign-in there is no success that
//! should not count. The client is checked first, so a client past its rate adds no keys
//! for links it makes up. Idle keys are forgotten by [`DownloadLimits::sweep`] (a key is
//! idle once a minute passed without a request), which the server runs every
//! [`SWEEP_EVERY`] and whenever the maps hold more than [`MAX_KEYS`].

use crate::config::DownloadRates;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// How often idle keys are forgotten.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Keys in one map beyond which a request sweeps idle ones at once (at most once a second).
pub const MAX_KEYS: usize = 100_000;
/// Posts a minute to `/hooks/*` one client network may make. Providers retry a 429 later,
/// and none sends more than a few a second to one shop; a stranger posting unsigned
/// notifications is held to this, and what they post lands in a capped ring.
pub const HOOK_RATE_PER_MINUTE: u32 = 600;
/// Longest link key kept: passwords are shorter; a longer path segment is cut.
const MAX_LINK_KEY: usize = 64;

/// The `/d/` limits of a server; both `None` when the shop turned them off.
#[derive(Debug)]
pub struct DownloadLimits {
    per_link: Option<DefaultKeyedRateLimiter<Box<str>>>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Payment notifications per client network (always on).
    hooks: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    last_forced_sweep: Mutex<Option<std::time::Instant>>,
}

/// A request past its rate, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFast {
    pub retry_after: Duration,
}

impl DownloadLimits {
    /// The limits of `rates` (requests a minute; `None`: no limit).
    pub fn new(rates: DownloadRates) -> Self {
        let DownloadRates {
            per_link,
            per_client,
        } = rates;
        let quota =
            |per_minute: Option<u32>| per_minute.and_then(NonZeroU32::new).map(Quota::per_minute);
        Self {
            per_link: quota(per_link).map(DefaultKeyedRateLimiter::keyed),
            per_client: quota(per_client).map(DefaultKeyedRateLimiter::keyed),
            hooks: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(HOOK_RATE_PER_MINUTE).expect("not zero"),
            )),
            clock: DefaultClock::default(),
            last_forced_sweep: Mutex::new(None),
        }
    }

    /// Counts a request to `path` from `ip`; `Err` when it is past a rate. Paths outside
    /// `/d/` and `/hooks/` pass uncounted.
    pub fn check(&self, path: &str, ip: IpAddr) -> Result<(), TooFast> {
        if path.starts_with("/hooks/") {
            self.sweep_if_full(self.hooks.len());
            return self
                .hooks
                .check_key(&domain::net::client_net(ip))
                .map_err(|n| self.too_fast(&n));
        }
        let Some(rest) = path.strip_prefix("/d/") else {
            return Ok(());
        };
        if let Some(limiter) = &self.per_client {
            self.sweep_if_full(limiter.len());
            limiter
                .check_key(&domain::net::client_net(ip))
                .map_err(|n| self.too_fast(&n))?;
        }
        if let Some(limiter) = &self.per_link {
            self.sweep_if_full(limiter.len());
            let link = rest.split('/').next().unwrap_or_default();
            let link = &link[..floor_char_boundary(link, MAX_LINK_KEY)];
            limiter
                .check_key(&Box::from(link))
                .map_err(|n| self.too_fast(&n))?;
        }
        Ok(())
    }

    /// Forgets keys that have been idle long enough to be as good as new.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.per_link {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.hooks.retain_recent();
        self.hooks.shrink_to_fit();
    }

    /// Keys tracked now, per link and per client.
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.per_link.as_ref().map_or(0, governor::RateLimiter::len),
            self.per_client
                .as_ref()
                .map_or(0, governor::RateLimiter::len),
        )
    }

    /// Sweeps at once when a map is over [`MAX_KEYS`] (a spray of made-up links from many
    /// clients), at most once a second so a full map does not make every request sweep.
    fn sweep_if_full(&self, keys: usize) {
        if keys <= MAX_KEYS {
            return;
        }
        let Ok(mut last) = self.last_forced_sweep.try_lock() else {
            return; // another request is sweeping
        };
        let now = std::time::Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        self.sweep();
    }

    fn too_fast(
        &self,
        not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> TooFast {
        TooFast {
            retry_after: not_until.wait_time_from(self.clock.now()),
        }
    }
}

/// The largest index ≤ `max` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_link: Option<u32>, per_client: Option<u32>) -> DownloadLimits {
        DownloadLimits::new(DownloadRates {
            per_link,
            per_client,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_link_gets_its_burst_then_waits() {
        let limits = limits(Some(10), None);
        for _ in 0..10 {
            limits.check("/d/LINK/1", ip("192.0.2.1")).unwrap();
        }
        let refused = limits.check("/d/LINK", ip("192.0.2.2")).unwrap_err();
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(6),
            "{refused:?}"
        );
        limits.check("/d/OTHER/1", ip("192.0.2.1")).unwrap();
        limits.check("/admin", ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn a_client_is_counted_by_its_ipv6_64() {
        let limits = limits(None, Some(3));
        for n in 1..=3 {
            limits
                .check(&format!("/d/L{n}"), ip(&format!("2001:db8:1:2::{n}")))
                .unwrap();
        }
        assert!(limits.check("/d/L9", ip("2001:db8:1:2:ffff::9")).is_err());
        limits.check("/d/L9", ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn a_client_past_its_rate_adds_no_link_keys() {
        let limits = limits(Some(100), Some(5));
        for n in 0..50 {
            let _ = limits.check(&format!("/d/made-up-{n}/1"), ip("192.0.2.9"));
        }
        assert_eq!(limits.tracked(), (5, 1));
    }

    #[test]
    fn long_and_odd_link_segments_are_cut_safely() {
        let limits = limits(Some(2), None);
        let long = "é".repeat(100);
        limits
            .check(&format!("/d/{long}"), ip("192.0.2.1"))
            .unwrap();
        limits
            .check(&format!("/d/{long}x"), ip("192.0.2.1"))
            .unwrap();
        assert!(
            limits
                .check(&format!("/d/{long}yz"), ip("192.0.2.1"))
                .is_err(),
            "the same first 64 bytes are the same link"
        );
    }

    #[test]
    fn no_limits_count_nothing() {
        let limits = limits(None, None);
        for _ in 0..1000 {
            limits.check("/d/LINK/1", ip("192.0.2.1")).unwrap();
        }
        assert_eq!(limits.tracked(), (0, 0));
    }
}
