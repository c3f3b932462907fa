//! Signed "this form was shown at" stamps: the buyer's self-service form carries one, so the
//! server can tell a person (who takes a few seconds to type an address) from a script that
//! posts straight away or without ever loading the page. It costs a person nothing.
//!
//! Each stamp is good for one post: it carries a random nonce, and [`SpentStamps`] remembers
//! the nonces used until the stamps would be stale anyway. A script must then load the page
//! for every post, as a person does, instead of replaying one stamp all day.

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use domain::Timestamp;

/// How many bytes of the MAC the stamp carries: 128 bits cannot be guessed.
const MAC_BYTES: usize = 16;
/// Random bytes that make each stamp its own.
const NONCE_BYTES: usize = 16;
/// Spent stamps remembered at most; beyond, the earliest spent are forgotten first. That
/// only lets an old stamp be used once more, which gains nothing over loading the page.
pub const MAX_SPENT: usize = 100_000;

/// Issues and checks stamps under a key derived from the server secret.
#[derive(Clone)]
pub struct FormStamps {
    key: [u8; 32],
}

impl std::fmt::Debug for FormStamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormStamps(<redacted>)")
    }
}

/// Why a stamp was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    /// Missing, malformed or not signed by this server: the form was not loaded from here.
    Forged,
    /// Sent sooner after the page was shown than a person can fill it in.
    TooQuick,
    /// The page was shown too long ago; a fresh one carries a fresh stamp.
    Stale,
}

impl FormStamps {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A stamp saying "shown at `now`":
    /// `<unix millis in hex>.<random nonce in hex>.<MAC in hex>`.
    pub fn issue(&self, now: Timestamp) -> String {
        let issued = now.unix_millis();
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .expect("the operating system's random source works");
        format!(
            "{issued:x}.{}.{}",
            hex(&nonce),
            hex(&self.mac(issued, &nonce))
        )
    }

    /// Accepts a stamp issued by this server between `max_age` and `min_age` before `now`;
    /// returns what identifies it for [`SpentStamps`].
    pub fn check(
        &self,
        stamp: &str,
        now: Timestamp,
        min_age: Duration,
        max_age: Duration,
    ) -> Result<StampId, StampError> {
        let mut parts = stamp.trim().split('.');
        let (Some(issued), Some(nonce), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StampError::Forged);
        };
        let issued = i64::from_str_radix(issued, 16).map_err(|_| StampError::Forged)?;
        let nonce = unhex::<NONCE_BYTES>(nonce).ok_or(StampError::Forged)?;
        let expected = hex(&self.mac(issued, &nonce));
        // Constant time: the comparison must not tell a forger how many characters matched.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        )) {
            return Err(StampError::Forged);
        }
        let shown = Timestamp::from_unix_millis(issued);
        if shown > now {
            return Err(StampError::Forged);
        }
        let age = now.since(shown);
        if age < min_age {
            Err(StampError::TooQuick)
        } else if age > max_age {
            Err(StampError::Stale)
        } else {
            Ok(StampId { shown, nonce })
        }
    }

    fn mac(&self, issued: i64, nonce: &[u8; NONCE_BYTES]) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"dropgate form stamp v2\0");
        mac.update(&issued.to_be_bytes());
        mac.update(nonce);
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

/// A valid stamp: when its form was shown and its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampId {
    pub shown: Timestamp,
    nonce: [u8; NONCE_BYTES],
}

/// The stamps already used, each remembered until it would be stale anyway (in memory: a
/// restart forgets them, which lets a stamp from before it be used once more).
#[derive(Debug, Default)]
pub struct SpentStamps {
    inner: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    nonces: HashSet<[u8; NONCE_BYTES]>,
    /// In the order spent, to forget the old ones.
    order: VecDeque<(Timestamp, [u8; NONCE_BYTES])>,
}

impl SpentStamps {
    /// Records a stamp's use: `true` the first time, `false` for a stamp already used.
    /// Stamps shown before `stale_before` are forgotten (they are refused as stale), and
    /// beyond [`MAX_SPENT`] the earliest spent.
    pub fn spend(&self, id: StampId, stale_before: Timestamp) -> bool {
        let mut spent = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(shown, nonce)) = spent.order.front() {
            if shown >= stale_before && spent.order.len() < MAX_SPENT {
                break;
            }
            spent.order.pop_front();
            spent.nonces.remove(&nonce);
        }
        if !spent.nonces.insert(id.nonce) {
            return false;
        }
        spent.order.push_back((id.shown, id.nonce));
        true
    }

    /// How many spent stamps are remembered.
    pub fn remembered(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .nonces
            .len()
    }
}

/// `N` bytes from exactly `2 * N` hex digits.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(86_400);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000)
    }

    #[test]
    fn a_stamp_is_accepted_between_the_minimum_and_the_maximum_age() {
        let stamps = FormStamps::new([7; 32]);
        let stamp = stamps.issue(at(0));
        assert_eq!(
            stamps.check(&stamp, at(1), MIN, MAX),
            Err(StampError::TooQuick)
        );
        assert!(stamps.check(&stamp, at(2), MIN, MAX).is_ok());
        assert!(stamps.check(&stamp, at(86_400), MIN, MAX).is_ok());
        assert_eq!(
            stamps.check(&stamp, at(86_401), MIN, MAX),
            Err(StampError::Stale)
        );
    }

    #[test]
    fn forged_altered_foreign_and_future_stamps_are_refused() {
        let stamps = FormStamps::new([7; 32]);
        let stamp = stamps.issue(at(0));
        let (issued, rest) = stamp.split_once('.').unwrap();
        // An earlier time under the same MAC, to get past the minimum age.
        let earlier = format!(
            "{:x}.{rest}",
            i64::from_str_radix(issued, 16).unwrap() - 5000
        );
        // Another nonce under the same MAC, to get a second use out of one stamp.
        let (nonce, mac) = rest.split_once('.').unwrap();
        let renonced = format!("{issued}.{}.{mac}", nonce.replace(&nonce[..2], "ff"));
        // The version 1 form (no nonce).
        let v1 = format!("{issued}.{mac}");
        let foreign = FormStamps::new([8; 32]).issue(at(0));
        let future = stamps.issue(at(60));
        for bad in [
            "",
            "abc",
            "1.2",
            &earlier,
            &foreign,
            &future,
            &renonced,
            &v1,
            &format!("{stamp}.extra"),
            &stamp[..stamp.len() - 1],
        ] {
            assert_eq!(
                stamps.check(bad, at(10), MIN, MAX),
                Err(StampError::Forged),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn each_stamp_is_good_for_one_post() {
        let stamps = FormStamps::new([7; 32]);
        let spent = SpentStamps::default();
        let (a, b) = (stamps.issue(at(0)), stamps.issue(at(0)));
        assert_ne!(a, b, "stamps shown at the same moment still differ");
        let id_a = stamps.check(&a, at(5), MIN, MAX).unwrap();
        let id_b = stamps.check(&b, at(5), MIN, MAX).unwrap();
        assert!(spent.spend(id_a, at(5 - 86_400)));
        assert!(!spent.spend(id_a, at(6 - 86_400)), "a replay");
        assert!(spent.spend(id_b, at(6 - 86_400)));
        // Once stale, a stamp is forgotten (the age check refuses it from then on).
        let later = stamps.issue(at(90_000));
        let id_later = stamps.check(&later, at(90_010), MIN, MAX).unwrap();
        assert!(spent.spend(id_later, at(90_010 - 86_400)));
        assert_eq!(spent.remembered(), 1);
    }

    #[test]
    fn the_memory_of_spent_stamps_is_bounded() {
        let stamps = FormStamps::new([7; 32]);
        let spent = SpentStamps::default();
        let first = stamps.check(&stamps.issue(at(0)), at(3), MIN, MAX).unwrap();
        assert!(spent.spend(first, at(0)));
        for _ in 0..MAX_SPENT + 10 {
            let id = stamps.check(&stamps.issue(at(0)), at(3), MIN, MAX).unwrap();
            assert!(spent.spend(id, at(0)));
        }
        assert!(spent.remembered() <= MAX_SPENT);
        assert!(
            spent.spend(first, at(0)),
            "the earliest spent were forgotten first"
        );
    }

    proptest::proptest! {
        /// Whatever a client posts as a stamp, checking it answers and never panics; only
        /// a stamp this server issued is accepted.
        #[test]
        fn any_text_is_checked_without_panic(text in "\\PC{0,120}") {
            let stamps = FormStamps::new([7; 32]);
            proptest::prop_assert!(stamps.check(&text, at(10), MIN, MAX).is_err());
        }

        #[test]
        fn stamp_like_text_is_refused_unless_issued(
            issued in 0i64..i64::MAX, nonce in "[0-9a-f]{32}", mac in "[0-9a-f]{32}"
        ) {
            let stamps = FormStamps::new([7; 32]);
            let text = format!("{issued:x}.{nonce}.{mac}");
            proptest::prop_assert_eq!(
                stamps.check(&text, at(10), Duration::ZERO, Duration::MAX),
                Err(StampError::Forged)
            );
        }
    }
}
