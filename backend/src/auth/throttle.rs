//! Sign-in throttling: a sliding window of recent failures per key (an account's email or a
//! client IP). Kept in memory on purpose: it only has to slow down guessing, and a restart
//! that forgets it costs an attacker a restart they cannot trigger.

use domain::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How many failures a key may have inside `window` before it must wait.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: usize,
    pub window: Duration,
}

/// Failure windows per key.
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

/// Keys tracked before old entries are swept, to bound memory under a spray of addresses.
const SWEEP_ABOVE: usize = 10_000;

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when the key has used up its failures and must wait `wait`.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), Duration> {
        let mut map = self.failures.lock().expect("throttle lock");
        let Some(window) = map.get_mut(key) else {
            return Ok(());
        };
        let cutoff = now.minus(self.policy.window);
        while window.front().is_some_and(|t| *t <= cutoff) {
            window.pop_front();
        }
        if window.len() < self.policy.max_failures {
            return Ok(());
        }
        let oldest = *window.front().expect("non-empty: len >= max_failures >= 1");
        Err(oldest
            .plus(self.policy.window)
            .since(now)
            .max(Duration::from_secs(1)))
    }

    /// Records one failed attempt.
    pub fn record_failure(&self, key: &str, now: Timestamp) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > SWEEP_ABOVE {
            let cutoff = now.minus(self.policy.window);
            map.retain(|_, w| w.back().is_some_and(|t| *t > cutoff));
        }
        let window = map.entry(key.to_owned()).or_default();
        window.push_back(now);
        while window.len() > self.policy.max_failures {
            window.pop_front();
        }
    }

    /// Forgets a key's failures (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn blocks_after_max_failures_and_releases_after_the_window() {
        let t = Throttle::new(ThrottlePolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        for s in 0..3 {
            assert!(t.check("k", at(s)).is_ok());
            t.record_failure("k", at(s));
        }
        assert_eq!(t.check("k", at(10)), Err(Duration::from_secs(50)));
        assert!(t.check("other", at(10)).is_ok());
        // The first failure (t=0) leaves the window at t=60.
        assert!(t.check("k", at(60)).is_ok());
        t.clear("k");
        assert!(t.check("k", at(11)).is_ok());
    }
}
