//! The download rules (DESIGN.md §2), decided by one pure function: [`authorize`].
//!
//! The caller loads the grant's facts and the bytes already counted for the file inside the
//! write transaction that will record the outcome, so the check and the reservation are one
//! atomic step: no race between requests can beat the budget.

use crate::{OrderStatus, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses two ASCII letters, any case.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        (bytes.len() == 2 && bytes.iter().all(u8::is_ascii_alphabetic))
            .then(|| Self([bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("'{value}' is not a two-letter country code"))
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.as_str().to_owned()
    }
}

/// What the rules need to know about a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantFacts {
    pub order_status: OrderStatus,
    /// Revoked by a refund or an exchange away from this product.
    pub revoked: bool,
    /// Blocked by the country lock (until a vendor resets or unblocks it).
    pub blocked: bool,
    /// End of the download window; `None` for unlimited.
    pub valid_until: Option<Timestamp>,
    /// Downloads allowed per file; 0 for unlimited.
    pub max_downloads: u32,
    /// The first country that downloaded, if the product locks countries.
    pub locked_country: Option<CountryCode>,
    pub country_lock: bool,
}

/// One download request, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The client's country; `None` when unknown (private range, no database, no data).
    pub country: Option<CountryCode>,
    pub file_size: u64,
    /// Bytes of this file already counted against the grant (delivered or reserved).
    pub counted_bytes: u64,
    /// Bytes this request would send.
    pub requested_bytes: u64,
}

/// Permission to send: reserve `reserve` bytes, and lock the country if it is the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    pub reserve: u64,
    pub lock_country: Option<CountryCode>,
}

/// Why a download is refused; the buyer sees [`Denied::explain`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denied {
    #[error("order is {status}")]
    OrderNotConfirmed { status: OrderStatus },
    #[error("order refunded")]
    Refunded,
    #[error("grant revoked")]
    Revoked,
    #[error("blocked after a download from a second country")]
    Blocked,
    #[error("download window ended")]
    Expired { at: Timestamp },
    #[error("download limit reached")]
    LimitReached { max_downloads: u32 },
    /// The attempt that causes the block: the caller records it and blocks the grant.
    #[error("second country {attempted} (locked to {locked})")]
    CountryChanged {
        locked: CountryCode,
        attempted: CountryCode,
    },
}

impl Denied {
    /// A plain-language explanation for the buyer.
    pub fn explain(&self) -> String {
        match self {
            Self::OrderNotConfirmed { status: OrderStatus::OnHold } => {
                "This order is on hold. The seller will release it; you do not need to do anything.".into()
            }
            Self::OrderNotConfirmed { status: OrderStatus::Cancelled } => {
                "This order was cancelled, so it has no downloads.".into()
            }
            Self::OrderNotConfirmed { .. } => {
                "The payment for this order is not confirmed yet. Try again once you have the confirmation.".into()
            }
            Self::Refunded => "This order was refunded, so its downloads have ended.".into(),
            Self::Revoked => "This download link is no longer valid. Ask the seller for a new one.".into(),
            Self::Blocked | Self::CountryChanged { .. } => {
                "This link was used from a second country and has been blocked to protect your purchase. Contact the seller to unblock it.".into()
            }
            Self::Expired { at } => format!("The download period for this link ended on {}.", at.human()),
            Self::LimitReached { max_downloads } => format!(
                "This link has been used for all of its {max_downloads} download{}.",
                if *max_downloads == 1 { "" } else { "s" }
            ),
        }
    }
}

impl Denied {
    /// What the use log records for this refusal.
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::OrderNotConfirmed { .. } => AttemptOutcome::OrderNotConfirmed,
            Self::Refunded => AttemptOutcome::Refunded,
            Self::Revoked => AttemptOutcome::Revoked,
            Self::Blocked => AttemptOutcome::Blocked,
            Self::Expired { .. } => AttemptOutcome::Expired,
            Self::LimitReached { .. } => AttemptOutcome::LimitReached,
            Self::CountryChanged { .. } => AttemptOutcome::SecondCountry,
        }
    }
}

/// What became of one download attempt, as the use log and the API name it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Allowed,
    OrderNotConfirmed,
    Refunded,
    Revoked,
    Blocked,
    Expired,
    LimitReached,
    /// The attempt from a second country, which blocked the grant.
    SecondCountry,
    /// A refusal recorded under a code this build does not know.
    Refused,
}

impl AttemptOutcome {
    const ALL: [Self; 9] = [
        Self::Allowed,
        Self::OrderNotConfirmed,
        Self::Refunded,
        Self::Revoked,
        Self::Blocked,
        Self::Expired,
        Self::LimitReached,
        Self::SecondCountry,
        Self::Refused,
    ];

    /// The stored and API code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::OrderNotConfirmed => "order_not_confirmed",
            Self::Refunded => "refunded",
            Self::Revoked => "revoked",
            Self::Blocked => "blocked",
            Self::Expired => "expired",
            Self::LimitReached => "limit_reached",
            Self::SecondCountry => "second_country",
            Self::Refused => "refused",
        }
    }

    /// The outcome of a stored code; an unknown refusal code is [`Self::Refused`].
    pub fn from_code(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == code)
            .unwrap_or(Self::Refused)
    }

    pub fn is_allowed(self) -> bool {
        self == Self::Allowed
    }
}

/// Decides one download attempt at `now`.
pub fn authorize(grant: &GrantFacts, attempt: &Attempt, now: Timestamp) -> Result<Permit, Denied> {
    match grant.order_status {
        OrderStatus::Confirmed => {}
        OrderStatus::Refunded => return Err(Denied::Refunded),
        status => return Err(Denied::OrderNotConfirmed { status }),
    }
    if grant.revoked {
        return Err(Denied::Revoked);
    }
    if grant.blocked {
        return Err(Denied::Blocked);
    }
    if let Some(until) = grant.valid_until.filter(|until| now > *until) {
        return Err(Denied::Expired { at: until });
    }
    let mut lock_country = None;
    if grant.country_lock {
        match (grant.locked_country, attempt.country) {
            (Some(locked), Some(attempted)) if locked != attempted => {
                return Err(Denied::CountryChanged { locked, attempted });
            }
            (None, Some(first)) => lock_country = Some(first),
            // Unknown countries never lock and never block.
            _ => {}
        }
    }
    if let Some(budget) = byte_budget(grant.max_downloads, attempt.file_size)
        && attempt
            .counted_bytes
            .saturating_add(attempt.requested_bytes)
            > budget
    {
        return Err(Denied::LimitReached {
            max_downloads: grant.max_downloads,
        });
    }
    Ok(Permit {
        reserve: attempt.requested_bytes,
        lock_country,
    })
}

/// Bytes of one file a grant may receive: `max_downloads × size`, `None` if unlimited.
pub fn byte_budget(max_downloads: u32, file_size: u64) -> Option<u64> {
    (max_downloads > 0).then(|| u64::from(max_downloads).saturating_mul(file_size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::parse(s).unwrap()
    }
    fn t(day: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + day * 86_400_000)
    }
    fn grant() -> GrantFacts {
        GrantFacts {
            order_status: OrderStatus::Confirmed,
            revoked: false,
            blocked: false,
            valid_until: Some(t(31)),
            max_downloads: 3,
            locked_country: None,
            country_lock: true,
        }
    }
    fn attempt(country: Option<&str>, counted: u64, requested: u64) -> Attempt {
        Attempt {
            country: country.map(cc),
            file_size: 1000,
            counted_bytes: counted,
            requested_bytes: requested,
        }
    }

    #[test]
    fn a_fresh_grant_downloads_and_locks_the_first_country() {
        let permit = authorize(&grant(), &attempt(Some("US"), 0, 1000), t(0)).unwrap();
        assert_eq!(
            permit,
            Permit {
                reserve: 1000,
                lock_country: Some(cc("US"))
            }
        );
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let a = attempt(Some("US"), 0, 1000);
        let with = |f: fn(&mut GrantFacts)| {
            let mut g = grant();
            f(&mut g);
            authorize(&g, &a, t(1)).unwrap_err()
        };
        assert_eq!(
            with(|g| g.order_status = OrderStatus::OnHold),
            Denied::OrderNotConfirmed {
                status: OrderStatus::OnHold
            }
        );
        assert_eq!(
            with(|g| g.order_status = OrderStatus::Pending),
            Denied::OrderNotConfirmed {
                status: OrderStatus::Pending
            }
        );
        assert_eq!(
            with(|g| g.order_status = OrderStatus::Refunded),
            Denied::Refunded
        );
        assert_eq!(with(|g| g.revoked = true), Denied::Revoked);
        assert_eq!(with(|g| g.blocked = true), Denied::Blocked);
        assert_eq!(
            with(|g| g.valid_until = Some(t(0))),
            Denied::Expired { at: t(0) }
        );
        assert_eq!(
            with(|g| g.locked_country = Some(cc("GB"))),
            Denied::CountryChanged {
                locked: cc("GB"),
                attempted: cc("US")
            }
        );
        assert_eq!(
            authorize(&grant(), &attempt(None, 2500, 1000), t(1)).unwrap_err(),
            Denied::LimitReached { max_downloads: 3 }
        );
        for d in [
            Denied::Refunded,
            Denied::Blocked,
            Denied::Expired { at: t(0) },
            Denied::LimitReached { max_downloads: 1 },
        ] {
            assert!(d.explain().ends_with('.'), "{d:?}");
            assert_eq!(AttemptOutcome::from_code(d.outcome().as_str()), d.outcome());
        }
        assert_eq!(
            AttemptOutcome::from_code("made_up"),
            AttemptOutcome::Refused
        );
    }

    #[test]
    fn unknown_countries_never_lock_or_block() {
        let mut g = grant();
        assert_eq!(
            authorize(&g, &attempt(None, 0, 10), t(0))
                .unwrap()
                .lock_country,
            None
        );
        g.locked_country = Some(cc("NL"));
        assert!(authorize(&g, &attempt(None, 0, 10), t(0)).is_ok());
        assert!(authorize(&g, &attempt(Some("nl"), 0, 10), t(0)).is_ok());
        g.country_lock = false;
        assert!(
            authorize(&g, &attempt(Some("US"), 0, 10), t(0)).is_ok(),
            "lock off for this product"
        );
    }

    #[test]
    fn unlimited_window_and_count() {
        let mut g = grant();
        g.valid_until = None;
        g.max_downloads = 0;
        assert!(authorize(&g, &attempt(None, u64::MAX / 2, 1000), t(10_000)).is_ok());
    }

    #[test]
    fn resumes_cost_only_what_was_sent() {
        let mut g = grant();
        g.max_downloads = 1;
        // 40 % delivered, then the connection dropped; the rest is resumed with Range.
        assert!(authorize(&g, &attempt(None, 400, 600), t(0)).is_ok());
        // But a second full download is refused.
        assert!(authorize(&g, &attempt(None, 400, 1000), t(0)).is_err());
    }

    proptest! {
        #[test]
        fn the_budget_is_never_exceeded(max in 0u32..5, size in 1u64..10_000, counted in 0u64..50_000, requested in 0u64..50_000) {
            let mut g = grant();
            g.max_downloads = max;
            let a = Attempt { country: None, file_size: size, counted_bytes: counted, requested_bytes: requested };
            if let (Ok(permit), true) = (authorize(&g, &a, t(0)), max > 0) {
                prop_assert!(counted + permit.reserve <= u64::from(max) * size);
            }
        }
    }
}
