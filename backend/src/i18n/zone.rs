//! The store's time zone: an IANA name (`Europe/Berlin`) read from the system's tz
//! database through jiff, so daylight saving time and past rule changes are right. The
//! Docker image copies a tz database in; a host without one knows only UTC.

use domain::Timestamp;
use jiff::tz::TimeZone;

/// A time zone dates are shown in.
#[derive(Clone, Debug)]
pub struct StoreZone {
    name: String,
    zone: TimeZone,
}

/// A zone name the tz database does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "\"{name}\" is not a time zone this server knows; use an IANA name such as Europe/Berlin, America/New_York or UTC"
)]
pub struct ZoneError {
    pub name: String,
}

/// A local calendar date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub hour: i8,
    pub minute: i8,
}

impl StoreZone {
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            zone: TimeZone::UTC,
        }
    }

    /// The zone of an IANA name.
    pub fn named(name: &str) -> Result<Self, ZoneError> {
        if name == "UTC" {
            return Ok(Self::utc());
        }
        TimeZone::get(name)
            .map(|zone| Self {
                name: name.to_owned(),
                zone,
            })
            .map_err(|_| ZoneError {
                name: name.to_owned(),
            })
    }

    /// The zone of an IANA name, or UTC (said in the log) when this host does not know it:
    /// a store whose tz database went missing shows UTC times, named as such, rather than
    /// failing its pages.
    pub fn named_or_utc(name: &str) -> Self {
        Self::named(name).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "showing times in UTC");
            Self::utc()
        })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local date and time at `at`.
    pub fn local(&self, at: Timestamp) -> LocalTime {
        let zoned = jiff::Timestamp::from_millisecond(at.unix_millis())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone());
        LocalTime {
            year: zoned.year(),
            month: zoned.month(),
            day: zoned.day(),
            hour: zoned.hour(),
            minute: zoned.minute(),
        }
    }

    /// The zone as mails name it at `at`: `CET, Europe/Berlin`, or `UTC`.
    pub fn describe(&self, at: Timestamp) -> String {
        let instant = jiff::Timestamp::from_millisecond(at.unix_millis())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let info = self.zone.to_offset_info(instant);
        let abbreviation = info.abbreviation();
        if abbreviation == self.name {
            self.name.clone()
        } else {
            format!("{abbreviation}, {}", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_zones_are_refused_and_utc_always_works() {
        assert!(StoreZone::named("Mars/Olympus_Mons").is_err());
        assert!(StoreZone::named("../../etc/passwd").is_err());
        assert_eq!(
            StoreZone::named("UTC")
                .unwrap()
                .describe(Timestamp::from_unix_millis(0)),
            "UTC"
        );
        assert_eq!(StoreZone::named_or_utc("Nowhere/Else").name(), "UTC");
    }

    #[test]
    fn local_times_follow_the_zones_rules() {
        let ny = StoreZone::named("America/New_York").unwrap();
        // 2026-12-15 03:30 UTC is still the 14th in New York (EST, -05:00).
        let at = Timestamp::from_unix_millis(1_797_305_400_000);
        let local = ny.local(at);
        assert_eq!((local.day, local.hour, local.minute), (14, 22, 30));
        assert_eq!(ny.describe(at), "EST, America/New_York");
    }
}
