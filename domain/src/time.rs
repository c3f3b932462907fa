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

    /// Midnight UTC of a calendar date, or `None` if there is no such date (month 13,
    /// 30 February, year beyond ±100 000). Hinnant's `days_from_civil`.
    pub fn from_date(year: i64, month: u32, day: u32) -> Option<Self> {
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            _ => return None,
        };
        if !(1..=days_in_month).contains(&day) || !(-100_000..=100_000).contains(&year) {
            return None;
        }
        let (month, day) = (i64::from(month), i64::from(day));
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Self((era * 146_097 + doe - 719_468) * 86_400_000))
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` (optionally ending in `Z`; read as
    /// UTC) and `YYYYMMDD`: the dates sale records from other systems carry.
    pub fn parse_date_time(text: &str) -> Option<Self> {
        let text = text.trim();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let number = |s: &str| digits(s).then(|| s.parse::<u32>().ok()).flatten();
        if text.len() == 8 && digits(text) {
            return Self::from_date(
                i64::from(number(&text[..4])?),
                number(&text[4..6])?,
                number(&text[6..])?,
            );
        }
        let (date, time) = match text.split_once(['T', ' ']) {
            Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
            None => (text, None),
        };
        let mut parts = date.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let midnight = Self::from_date(i64::from(number(y)?), number(m)?, number(d)?)?;
        let Some(time) = time else {
            return Some(midnight);
        };
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut fields = hms.split(':');
        let hour = number(fields.next()?)?;
        let minute = number(fields.next()?)?;
        let second = fields.next().map_or(Some(0), number)?;
        let millis = match fraction {
            "" => 0,
            f if f.len() <= 9 && digits(f) => number(&format!("{f:0<3}")[..3])?,
            _ => return None,
        };
        if fields.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let offset = ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1000
            + i64::from(millis);
        Some(Self(midnight.0 + offset))
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

    #[test]
    fn dates_parse_in_the_forms_sale_records_use() {
        let t = |s: &str| Timestamp::parse_date_time(s).map(|t| t.to_string());
        assert_eq!(t("2026-11-22").as_deref(), Some("2026-11-22T00:00:00.000Z"));
        assert_eq!(t("20261122").as_deref(), Some("2026-11-22T00:00:00.000Z"));
        assert_eq!(
            t("2026-11-22T14:30:12.417Z").as_deref(),
            Some("2026-11-22T14:30:12.417Z")
        );
        assert_eq!(
            t("2026-11-22 14:30").as_deref(),
            Some("2026-11-22T14:30:00.000Z")
        );
        assert_eq!(t("2000-02-29").as_deref(), Some("2000-02-29T00:00:00.000Z"));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "20261301",
            "2026-1-2",
            "22/11/2026",
            "",
            "2026-11-22T25:00",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn dates_round_trip_through_the_calendar(days in -100_000i64..200_000) {
            let t = Timestamp::from_unix_millis(days * 86_400_000);
            let c = t.civil();
            prop_assert_eq!(Timestamp::from_date(c.year, c.month, c.day), Some(t));
        }

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
