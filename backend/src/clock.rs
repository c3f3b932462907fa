//! The one place that reads the wall clock; everything below takes `now` as an argument.

use domain::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current UTC time.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_millis(millis)
}
