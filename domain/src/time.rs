//! Points in time as UTC milliseconds, with calendar conversion done here (pure and
//! wasm-friendly) so that the server and the admin UI print dates identically.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// A UTC calendar date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millisecond: u32,
}

impl Timestamp {
    /// Wraps milliseconds since the epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// This time moved forward by `duration`, saturating at the far future.
    #[must_use]
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// This time moved back by `duration`, saturating at the far past.
    #[must_use]
    pub fn minus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// The UTC calendar date and time (proleptic Gregorian; Hinnant's `civil_from_days`).
    pub fn civil(self) -> Civil {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // Every value below is bounded by the arithmetic above (day < 32, ms < 86.4M).
        let small = |v: i64| u32::try_from(v).unwrap_or(0);
        Civil {
            year,
            month: small(month),
            day: small(day),
            hour: small(ms_of_day / 3_600_000),
            minute: small(ms_of_day / 60_000 % 60),
            second: small(ms_of_day / 1000 % 60),
            millisecond: small(ms_of_day % 1000),
        }
    }

    /// `2026-11-22 14:30 UTC`: the form people read in the admin and in mails.
    pub fn human(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            c.year, c.month, c.day, c.hour, c.minute
        )
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 with milliseconds, for logs and APIs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millisecond
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2026-11-22T14:30:12.417Z
        let t = Timestamp::from_unix_millis(1_795_357_812_417);
        assert_eq!(t.to_string(), "2026-11-22T14:30:12.417Z");
        assert_eq!(t.human(), "2026-11-22 14:30 UTC");
        assert_eq!(
            Timestamp::from_unix_millis(951_782_400_000).human(),
            "2000-02-29 00:00 UTC"
        );
        assert_eq!(
            Timestamp::from_unix_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    proptest! {
        #[test]
        fn consecutive_days_are_consecutive(days in -100_000i64..200_000) {
            let a = Timestamp::from_unix_millis(days * 86_400_000).civil();
            let b = Timestamp::from_unix_millis((days + 1) * 86_400_000).civil();
            let next_day = b.day == a.day + 1 && b.month == a.month && b.year == a.year;
            let next_month = b.day == 1 && (b.month == a.month + 1 || (a.month == 12 && b.month == 1 && b.year == a.year + 1));
            prop_assert!(next_day || next_month);
            prop_assert!((1..=12).contains(&a.month) && (1..=31).contains(&a.day));
        }
    }
}
