//! The order state machine: `pending`/`on_hold` → `confirmed` → `refunded`, or `cancelled`.
//! Only confirmed orders download; refunded and cancelled are final.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an order stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    OnHold,
    Confirmed,
    Refunded,
    Cancelled,
}

/// A change of status that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from} cannot become {to}")]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    /// The status after a requested change, if the change is allowed.
    pub fn transition(self, to: Self) -> Result<Self, TransitionError> {
        use OrderStatus::{Cancelled, Confirmed, OnHold, Pending, Refunded};
        let allowed = matches!(
            (self, to),
            (Pending, OnHold | Confirmed | Cancelled)
                | (OnHold, Pending | Confirmed | Cancelled | Refunded)
                | (Confirmed, OnHold | Refunded)
        );
        if allowed {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// Whether grants of an order in this status may download.
    pub fn allows_downloads(self) -> bool {
        self == Self::Confirmed
    }

    /// Parses the API form (`on_hold`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "on_hold" => Self::OnHold,
            "confirmed" => Self::Confirmed,
            "refunded" => Self::Refunded,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// The API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::OnHold => "on_hold",
            Self::Confirmed => "confirmed",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::OnHold => "on hold",
            Self::Confirmed => "confirmed",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    const ALL: [OrderStatus; 5] = [Pending, OnHold, Confirmed, Refunded, Cancelled];

    #[test]
    fn the_machine() {
        assert_eq!(Pending.transition(Confirmed), Ok(Confirmed));
        assert_eq!(OnHold.transition(Confirmed), Ok(Confirmed));
        assert_eq!(Confirmed.transition(OnHold), Ok(OnHold));
        assert_eq!(Confirmed.transition(Refunded), Ok(Refunded));
        assert!(Pending.transition(Refunded).is_err(), "nothing was paid");
        for to in ALL {
            assert!(Refunded.transition(to).is_err(), "refunded is final");
            assert!(Cancelled.transition(to).is_err(), "cancelled is final");
            assert!(to.transition(to).is_err(), "no change is not a transition");
        }
        assert_eq!(
            Confirmed.transition(Pending).unwrap_err().to_string(),
            "an order that is confirmed cannot become pending"
        );
        for s in ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.allows_downloads(), s == Confirmed);
        }
    }
}
