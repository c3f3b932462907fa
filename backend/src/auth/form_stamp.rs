//! Signed "this form was shown at" stamps: the buyer's self-service form carries one, so the
//! server can tell a person (who takes a few seconds to type an address) from a script that
//! posts straight away or without ever loading the page. It costs a person nothing.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

use domain::Timestamp;

/// How many bytes of the MAC the stamp carries: 128 bits cannot be guessed.
const MAC_BYTES: usize = 16;

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

    /// A stamp saying "shown at `now`": `<unix millis in hex>.<MAC in hex>`.
    pub fn issue(&self, now: Timestamp) -> String {
        let issued = now.unix_millis();
        format!("{issued:x}.{}", hex(&self.mac(issued)))
    }

    /// Accepts a stamp issued by this server between `max_age` and `min_age` before `now`.
    pub fn check(
        &self,
        stamp: &str,
        now: Timestamp,
        min_age: Duration,
        max_age: Duration,
    ) -> Result<(), StampError> {
        let (issued, mac) = stamp.trim().split_once('.').ok_or(StampError::Forged)?;
        let issued = i64::from_str_radix(issued, 16).map_err(|_| StampError::Forged)?;
        let expected = hex(&self.mac(issued));
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
            Ok(())
        }
    }

    fn mac(&self, issued: i64) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"dropgate form stamp v1\0");
        mac.update(&issued.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
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
        assert_eq!(stamps.check(&stamp, at(2), MIN, MAX), Ok(()));
        assert_eq!(stamps.check(&stamp, at(86_400), MIN, MAX), Ok(()));
        assert_eq!(
            stamps.check(&stamp, at(86_401), MIN, MAX),
            Err(StampError::Stale)
        );
    }

    #[test]
    fn forged_altered_foreign_and_future_stamps_are_refused() {
        let stamps = FormStamps::new([7; 32]);
        let stamp = stamps.issue(at(0));
        let (issued, mac) = stamp.split_once('.').unwrap();
        // An earlier time under the same MAC, to get past the minimum age.
        let earlier = format!(
            "{:x}.{mac}",
            i64::from_str_radix(issued, 16).unwrap() - 5000
        );
        let foreign = FormStamps::new([8; 32]).issue(at(0));
        let future = stamps.issue(at(60));
        for bad in [
            "",
            "abc",
            "1.2",
            &earlier,
            &foreign,
            &future,
            &stamp[..stamp.len() - 1],
        ] {
            assert_eq!(
                stamps.check(bad, at(10), MIN, MAX),
                Err(StampError::Forged),
                "{bad:?}"
            );
        }
    }
}
