//! Throttling of guesses (sign-in, the setup link, "change my password", the self-service
//! form): a sliding window of recent failures per key (an account's address, a client's
//! network, an admin). Kept in memory on purpose: it only has to slow down guessing, and a
//! restart that forgets it costs an attacker a restart they cannot trigger.
//!
//! An attempt is counted as a failure *before* it is judged ([`Throttle::acquire`]) and
//! forgiven if it succeeds, so that any number of concurrent guesses sees the count of the
//! others: 30 parallel wrong passwords get 5 verdicts, not 30. Only failures count in the
//! end, so a shop's admins signing in from one office are never locked out by success.
//! (This give-back is why no general rate-limit crate is used here: `governor` and its
//! kin count every request and cannot return one.)
//!
//! Memory is bounded: keys are capped in length, and past [`MAX_KEYS`] keys the expired
//! ones are swept and then the least recently failed are dropped.

use domain::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
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

/// Keys tracked at most; beyond, the least recently failed are forgotten first.
pub const MAX_KEYS: usize = 50_000;
/// Longest key kept; a longer one is cut (an email address has at most 254 characters).
pub const MAX_KEY_LEN: usize = 254;

/// The key of a client: its IPv4 address, or the /64 network of an IPv6 one (a single
/// IPv6 client commonly has a whole /64 to pick addresses from).
pub fn client_key(ip: IpAddr) -> String {
    match domain::net::client_net(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(net) => format!("{net}/64"),
    }
}

/// The key of an account as typed: trimmed, lower case, cut to [`MAX_KEY_LEN`].
pub fn account_key(typed: &str) -> String {
    typed
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_KEY_LEN)
        .collect()
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Timestamp>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an attempt for `key` as a failure at `now`, or `Err(wait)` when the key has
    /// used up its failures and must wait `wait` (nothing is counted then). Call
    /// [`Self::forgive`] if the attempt turns out to succeed.
    pub fn acquire(&self, key: &str, now: Timestamp) -> Result<(), Duration> {
        let key = cut(key);
        let mut map = self.lock();
        let cutoff = now.minus(self.policy.window);
        if let Some(window) = map.get_mut(key) {
            while window.front().is_some_and(|t| *t <= cutoff) {
                window.pop_front();
            }
            if window.len() >= self.policy.max_failures {
                let oldest = *window.front().expect("non-empty: len >= max_failures >= 1");
                return Err(oldest
                    .plus(self.policy.window)
                    .since(now)
                    .max(Duration::from_secs(1)));
            }
            window.push_back(now);
            return Ok(());
        }
        if map.len() >= MAX_KEYS {
            make_room(&mut map, cutoff);
        }
        map.insert(key.to_owned(), VecDeque::from([now]));
        Ok(())
    }

    /// Gives back the attempt [`Self::acquire`] counted at `at` (it succeeded).
    pub fn forgive(&self, key: &str, at: Timestamp) {
        let key = cut(key);
        let mut map = self.lock();
        if let Some(window) = map.get_mut(key) {
            if let Some(i) = window.iter().rposition(|t| *t == at) {
                window.remove(i);
            }
            if window.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Forgets a key's failures (an account after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.lock().remove(cut(key));
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Acquires `key` in each throttle in turn; if one refuses, the ones before are given
/// back, so a refused attempt counts nowhere.
pub fn acquire_all(throttles: &[(&Throttle, &str)], now: Timestamp) -> Result<(), Duration> {
    for (done, (throttle, key)) in throttles.iter().enumerate() {
        if let Err(wait) = throttle.acquire(key, now) {
            for (earlier, key) in &throttles[..done] {
                earlier.forgive(key, now);
            }
            return Err(wait);
        }
    }
    Ok(())
}

fn cut(key: &str) -> &str {
    match key.char_indices().nth(MAX_KEY_LEN) {
        Some((end, _)) => &key[..end],
        None => key,
    }
}

/// Sweeps expired keys; if that frees too little, forgets the quarter of keys whose last
/// failure is oldest (a spray of new keys then costs the sprayer's own oldest entries first).
fn make_room(map: &mut HashMap<String, VecDeque<Timestamp>>, cutoff: Timestamp) {
    map.retain(|_, w| w.back().is_some_and(|t| *t > cutoff));
    if map.len() < MAX_KEYS * 3 / 4 {
        return;
    }
    let mut by_age: Vec<(Timestamp, String)> = map
        .iter()
        .map(|(key, w)| (w.back().copied().unwrap_or(cutoff), key.clone()))
        .collect();
    let drop = map.len() / 4;
    by_age.select_nth_unstable(drop);
    for (_, key) in &by_age[..drop] {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn throttle(max_failures: usize) -> Throttle {
        Throttle::new(ThrottlePolicy {
            max_failures,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn blocks_after_max_failures_and_releases_after_the_window() {
        let t = throttle(3);
        for s in 0..3 {
            assert!(t.acquire("k", at(s)).is_ok());
        }
        assert_eq!(t.acquire("k", at(10)), Err(Duration::from_secs(50)));
        assert!(t.acquire("other", at(10)).is_ok());
        // The first failure (t=0) leaves the window at t=60.
        assert!(t.acquire("k", at(60)).is_ok());
        t.clear("k");
        assert!(t.acquire("k", at(61)).is_ok());
    }

    #[test]
    fn concurrent_attempts_cannot_pass_together_and_success_is_forgiven() {
        let t = std::sync::Arc::new(throttle(5));
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..30)
                .map(|_| {
                    let t = &t;
                    s.spawn(move || usize::from(t.acquire("ann", at(1)).is_ok()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 5);
        let t = throttle(2);
        for s in 0..10 {
            t.acquire("office", at(s)).unwrap();
            t.forgive("office", at(s));
        }
        assert_eq!(t.tracked(), 0, "successes leave nothing behind");
    }

    #[test]
    fn a_refusal_by_a_later_throttle_counts_in_none() {
        let (account, client) = (throttle(5), throttle(1));
        client.acquire("net", at(0)).unwrap();
        let refused = acquire_all(&[(&account, "ann"), (&client, "net")], at(1));
        assert!(refused.is_err());
        assert_eq!(account.tracked(), 0);
    }

    #[test]
    fn keys_are_capped_in_length_and_number() {
        let t = throttle(1);
        let long = "a".repeat(10_000);
        t.acquire(&long, at(0)).unwrap();
        assert!(
            t.acquire(&"a".repeat(MAX_KEY_LEN), at(1)).is_err(),
            "same key once cut"
        );
        for i in 0..(MAX_KEYS + 1000) {
            t.acquire(&format!("spray{i}"), at(2)).unwrap();
        }
        assert!(t.tracked() <= MAX_KEYS, "{}", t.tracked());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(account_key("  Ann@Example.COM "), "ann@example.com");
    }
}
