//! Payments as Dropgate sees them, whatever the provider: the providers, the normalised
//! kinds of notification, prices, and the one pure rule that turns the next notification
//! about a payment into what happens to its order.
//!
//! Providers redeliver and reorder their notifications (a refund can arrive before the
//! payment it refunds), so the rule works from what is remembered about the *payment*
//! ([`PaymentStatus`]), not from the order alone: a refund remembered before its payment
//! stops that payment from ever creating an order with access.

use crate::OrderStatus;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A payment provider Dropgate takes notifications from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Stripe,
    Paypal,
    Lemonsqueezy,
    Paddle,
    Shopify,
    Generic,
}

impl Provider {
    pub const ALL: [Self; 6] = [
        Self::Stripe,
        Self::Paypal,
        Self::Lemonsqueezy,
        Self::Paddle,
        Self::Shopify,
        Self::Generic,
    ];

    /// The path segment and API name (`lemonsqueezy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Paypal => "paypal",
            Self::Lemonsqueezy => "lemonsqueezy",
            Self::Paddle => "paddle",
            Self::Shopify => "shopify",
            Self::Generic => "generic",
        }
    }

    /// The name a seller knows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Stripe => "Stripe",
            Self::Paypal => "PayPal",
            Self::Lemonsqueezy => "Lemon Squeezy",
            Self::Paddle => "Paddle",
            Self::Shopify => "Shopify",
            Self::Generic => "Generic webhook",
        }
    }

    /// The URL path a provider posts to (`/hooks/paypal-ipn`).
    pub fn hook_path(self) -> &'static str {
        match self {
            Self::Stripe => "/hooks/stripe",
            Self::Paypal => "/hooks/paypal-ipn",
            Self::Lemonsqueezy => "/hooks/lemonsqueezy",
            Self::Paddle => "/hooks/paddle",
            Self::Shopify => "/hooks/shopify",
            Self::Generic => "/hooks/generic",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a notification says about a payment, once the provider's words are translated.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// Money arrived: the order exists and downloads.
    Paid,
    /// Started but not settled (a bank transfer, an e-check): an order on hold.
    Pending,
    /// A pending payment that will never settle.
    Failed,
    /// Fully refunded (or a partial refund the store treats as full).
    Refunded,
    /// The buyer disputed the charge: access is held.
    Disputed,
    /// The seller won the dispute: access comes back.
    DisputeWon,
    /// The seller lost the dispute: the money is gone, as after a refund.
    DisputeLost,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::DisputeWon => "dispute_won",
            Self::DisputeLost => "dispute_lost",
        }
    }
}

/// What Dropgate remembers about one payment of one provider.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Paid,
    Disputed,
    /// Final: refunded, dispute lost, or failed.
    Closed,
}

/// What to do with the order of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentDecision {
    /// Create the payment's order in this status (its first notification with products).
    Create(OrderStatus),
    /// Move the existing order to this status.
    Move(OrderStatus),
    /// Remember the payment's new status; there is no order to change (a refund or a
    /// dispute that arrived before its payment).
    Remember,
    /// Nothing changes; the reason is shown beside the notification.
    Nothing(&'static str),
}

/// The rule: given what is remembered about a payment (`None`: never heard of) and whether
/// it has an order, what a notification of `kind` does, and the payment's status after it.
pub fn decide(
    current: Option<PaymentStatus>,
    has_order: bool,
    kind: PaymentKind,
) -> (PaymentDecision, Option<PaymentStatus>) {
    use PaymentDecision::{Create, Move, Nothing, Remember};
    use PaymentKind as K;
    use PaymentStatus as S;
    let create_or_move = |status| {
        if has_order {
            Move(status)
        } else {
            Create(status)
        }
    };
    let move_if_order = |status| if has_order { Move(status) } else { Remember };
    match (current, kind) {
        (Some(S::Closed), _) => (
            Nothing("the payment was already refunded, failed or lost in a dispute"),
            current,
        ),
        // An order can exist before its payment is heard of (made through the API or by
        // hand with the provider's transaction ID): the notification confirms it.
        (None | Some(S::Pending), K::Paid) => {
            (create_or_move(OrderStatus::Confirmed), Some(S::Paid))
        }
        (None, K::Pending) if has_order => (
            Nothing("an order with this transaction ID exists already"),
            Some(S::Pending),
        ),
        (None, K::Pending) => (Create(OrderStatus::OnHold), Some(S::Pending)),
        // A payment remembered as disputed before it was heard of as paid: its order is
        // created held, and the dispute's end decides.
        (Some(S::Disputed), K::Paid | K::Pending) if !has_order => {
            (Create(OrderStatus::OnHold), current)
        }
        (Some(S::Paid | S::Disputed), K::Paid | K::Pending) | (Some(S::Pending), K::Pending) => {
            (Nothing("already known"), current)
        }
        (None | Some(S::Pending | S::Paid | S::Disputed), K::Refunded | K::DisputeLost) => {
            (move_if_order(OrderStatus::Refunded), Some(S::Closed))
        }
        (None | Some(S::Pending), K::Failed) => {
            (move_if_order(OrderStatus::Cancelled), Some(S::Closed))
        }
        (Some(S::Paid | S::Disputed), K::Failed) => {
            (Nothing("a paid payment cannot fail afterwards"), current)
        }
        (None | Some(S::Paid), K::Disputed) => {
            (move_if_order(OrderStatus::OnHold), Some(S::Disputed))
        }
        (Some(S::Pending), K::Disputed) => {
            (Nothing("a pending payment cannot be disputed"), current)
        }
        (Some(S::Disputed), K::Disputed) => (Nothing("already disputed"), current),
        (Some(S::Disputed), K::DisputeWon) => {
            (move_if_order(OrderStatus::Confirmed), Some(S::Paid))
        }
        (None | Some(S::Pending | S::Paid), K::DisputeWon) => {
            (Nothing("there is no open dispute on this payment"), current)
        }
    }
}

/// An amount of money in minor units (cents) of a currency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// A decimal amount with at most two decimals, e.g. `"19.99"`.
    pub amount: String,
    /// ISO 4217, e.g. `"EUR"`.
    pub currency: String,
}

impl Price {
    /// The amount in hundredths and the currency in capitals, or why it is not a price.
    pub fn parse(&self) -> Result<(i64, String), String> {
        let cents = parse_amount(&self.amount)?;
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "the currency {:?} is not a three-letter ISO code such as EUR",
                self.currency
            ));
        }
        Ok((cents, currency))
    }
}

/// `"19.99"` → 1999; at most two decimals, no sign, no exponent.
pub fn parse_amount(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let bad = || format!("the amount {text:?} is not a number like 19.99");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 12
        || fraction.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| bad())? * 10,
        _ => fraction.parse().map_err(|_| bad())?,
    };
    Ok(whole * 100 + fraction)
}

/// Formats hundredths as `"19.99"`.
pub fn format_amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

/// A provider's settings as the admin and the API show them: secrets only by their last
/// four characters.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationView {
    pub provider: Provider,
    pub label: String,
    pub enabled: bool,
    /// The URL to paste into the provider's settings.
    pub hook_url: String,
    /// `…abcd` per secret; send one back unchanged to keep that secret.
    pub secrets: Vec<String>,
    /// `…abcd`, if set.
    pub api_key: Option<String>,
    pub options: std::collections::BTreeMap<String, String>,
    /// The options this provider takes, with what each does.
    pub option_help: Vec<(String, String)>,
}

/// A change of a provider's settings (`PUT /api/v1/integrations/{provider}`); a field left
/// out keeps its value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationUpdate {
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Every secret to accept (several during a rotation); `…abcd` keeps an existing one.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Stripe: a restricted key that can read checkout sessions; `""` removes it.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub options: Option<std::collections::BTreeMap<String, String>>,
}

/// Which provider ids sell a product (`GET/PUT /api/v1/products/{id}/mappings`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductMappings {
    /// Stripe price or product ids.
    #[serde(default)]
    pub stripe: Vec<String>,
    /// PayPal `item_number`s.
    #[serde(default)]
    pub paypal: Vec<String>,
    /// Lemon Squeezy variant or product ids.
    #[serde(default)]
    pub lemonsqueezy: Vec<String>,
    /// Paddle price or product ids.
    #[serde(default)]
    pub paddle: Vec<String>,
    /// Shopify variant or product ids.
    #[serde(default)]
    pub shopify: Vec<String>,
    /// The price a PayPal payment must match, when set.
    #[serde(default)]
    pub price: Option<Price>,
}

impl ProductMappings {
    /// The ids of one provider.
    pub fn ids(&self, provider: Provider) -> &[String] {
        match provider {
            Provider::Stripe => &self.stripe,
            Provider::Paypal => &self.paypal,
            Provider::Lemonsqueezy => &self.lemonsqueezy,
            Provider::Paddle => &self.paddle,
            Provider::Shopify => &self.shopify,
            Provider::Generic => &[],
        }
    }

    pub fn ids_mut(&mut self, provider: Provider) -> Option<&mut Vec<String>> {
        Some(match provider {
            Provider::Stripe => &mut self.stripe,
            Provider::Paypal => &mut self.paypal,
            Provider::Lemonsqueezy => &mut self.lemonsqueezy,
            Provider::Paddle => &mut self.paddle,
            Provider::Shopify => &mut self.shopify,
            Provider::Generic => return None,
        })
    }
}

/// A received notification as the admin and the API show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    pub id: u64,
    pub provider: Provider,
    pub received_at: crate::Timestamp,
    pub processed_at: crate::Timestamp,
    pub verified: bool,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub kind: Option<PaymentKind>,
    pub payment_id: Option<String>,
    /// `order_created`, `order_changed`, `recorded`, `duplicate`, `needs_mapping`,
    /// `ignored`, `rejected`, `unverified` or `failed`.
    pub outcome: String,
    pub detail: String,
    pub order_id: Option<crate::OrderId>,
    /// Whether Reprocess can change something.
    pub can_reprocess: bool,
    pub runs: u32,
    /// The raw body as received (as text).
    pub payload: String,
}

/// One page of notifications, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationView>,
    /// Pass as `before` for the next page.
    pub next_before: Option<u64>,
}

/// What `POST /hooks/…` answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReceipt {
    pub notification_id: Option<u64>,
    pub outcome: String,
    pub detail: String,
    pub order_id: Option<crate::OrderId>,
}

/// A new outgoing webhook endpoint (`POST /api/v1/webhooks`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// `https://…` (or `http://…`) that receives a POST per event.
    pub url: String,
    /// Any of `order.confirmed`, `order.refunded`, `order.on_hold`, `grant.blocked`,
    /// `download.completed`, `mail.failed`.
    pub events: Vec<String>,
    /// A Standard Webhooks secret (`whsec_` + base64); one is made when left out.
    #[serde(default)]
    pub secret: Option<String>,
}

/// An outgoing webhook endpoint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointView {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    /// The whole secret in the answer that created the endpoint; `…abcd` afterwards.
    pub secret: String,
    pub created_at: crate::Timestamp,
}

/// One attempt at delivering an event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttemptView {
    pub at: crate::Timestamp,
    pub status: Option<u16>,
    pub answer: String,
    pub error: Option<String>,
}

/// One event for one endpoint, with its attempts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: u64,
    /// The `webhook-id` header every attempt carries.
    pub message_id: String,
    pub endpoint_id: u64,
    pub url: Option<String>,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub created_at: crate::Timestamp,
    pub next_attempt_at: Option<crate::Timestamp>,
    pub attempts: Vec<DeliveryAttemptView>,
    pub payload: String,
}

/// One page of deliveries, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    pub next_before: Option<u64>,
}

/// The last four characters of a secret, for showing.
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_ordinary_life_of_a_payment() {
        let (d, s) = decide(None, false, PaymentKind::Paid);
        assert_eq!(d, PaymentDecision::Create(OrderStatus::Confirmed));
        let (d, s) = decide(s, true, PaymentKind::Disputed);
        assert_eq!(d, PaymentDecision::Move(OrderStatus::OnHold));
        let (d, s) = decide(s, true, PaymentKind::DisputeWon);
        assert_eq!(d, PaymentDecision::Move(OrderStatus::Confirmed));
        let (d, s) = decide(s, true, PaymentKind::Refunded);
        assert_eq!(d, PaymentDecision::Move(OrderStatus::Refunded));
        assert_eq!(s, Some(PaymentStatus::Closed));
        assert!(matches!(
            decide(s, true, PaymentKind::Paid).0,
            PaymentDecision::Nothing(_)
        ));
    }

    #[test]
    fn pending_then_paid_confirms_the_held_order() {
        let (d, s) = decide(None, false, PaymentKind::Pending);
        assert_eq!(d, PaymentDecision::Create(OrderStatus::OnHold));
        assert_eq!(
            decide(s, true, PaymentKind::Paid).0,
            PaymentDecision::Move(OrderStatus::Confirmed)
        );
        assert_eq!(
            decide(s, true, PaymentKind::Failed).0,
            PaymentDecision::Move(OrderStatus::Cancelled)
        );
    }

    #[test]
    fn an_order_made_before_its_payment_notice_is_confirmed_not_made_twice() {
        assert_eq!(
            decide(None, true, PaymentKind::Paid).0,
            PaymentDecision::Move(OrderStatus::Confirmed)
        );
        assert!(matches!(
            decide(None, true, PaymentKind::Pending).0,
            PaymentDecision::Nothing(_)
        ));
    }

    #[test]
    fn a_refund_before_its_payment_is_remembered_and_wins() {
        let (d, s) = decide(None, false, PaymentKind::Refunded);
        assert_eq!(d, PaymentDecision::Remember);
        assert!(matches!(
            decide(s, false, PaymentKind::Paid).0,
            PaymentDecision::Nothing(_)
        ));
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("19.99"), Ok(1999));
        assert_eq!(parse_amount("19.9"), Ok(1990));
        assert_eq!(parse_amount("19"), Ok(1900));
        assert_eq!(parse_amount(" 0.05 "), Ok(5));
        for bad in ["", "-1", "1.999", "1e3", "abc", ".5", "1.2.3"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(format_amount(1999), "19.99");
        assert_eq!(format_amount(5), "0.05");
        let price = Price {
            amount: "9.5".into(),
            currency: "eur".into(),
        };
        assert_eq!(price.parse(), Ok((950, "EUR".into())));
        assert!(
            Price {
                amount: "9".into(),
                currency: "euro".into()
            }
            .parse()
            .is_err()
        );
    }

    fn kind() -> impl Strategy<Value = PaymentKind> {
        prop_oneof![
            Just(PaymentKind::Paid),
            Just(PaymentKind::Pending),
            Just(PaymentKind::Failed),
            Just(PaymentKind::Refunded),
            Just(PaymentKind::Disputed),
            Just(PaymentKind::DisputeWon),
            Just(PaymentKind::DisputeLost),
        ]
    }

    proptest! {
        /// Whatever order and however often a payment's notifications arrive: at most one
        /// order is created, and once a refund (or a lost dispute) has arrived the order
        /// never downloads again.
        #[test]
        fn no_sequence_makes_two_orders_or_gives_access_after_a_refund(
            kinds in proptest::collection::vec(kind(), 0..24),
        ) {
            let mut status = None;
            let mut order: Option<OrderStatus> = None;
            let mut created = 0;
            let mut refunded = false;
            for kind in kinds {
                let (decision, next) = decide(status, order.is_some(), kind);
                match decision {
                    PaymentDecision::Create(s) => {
                        prop_assert!(order.is_none());
                        created += 1;
                        order = Some(s);
                    }
                    PaymentDecision::Move(to) => {
                        let from = order.expect("a move needs an order");
                        // Every move the rule makes is one the order state machine allows.
                        prop_assert_eq!(from.transition(to), Ok(to));
                        order = Some(to);
                    }
                    PaymentDecision::Remember | PaymentDecision::Nothing(_) => {}
                }
                status = next;
                if matches!(kind, PaymentKind::Refunded | PaymentKind::DisputeLost) {
                    refunded = true;
                }
                if refunded {
                    prop_assert!(order.is_none_or(|o| !o.allows_downloads()));
                }
            }
            prop_assert!(created <= 1);
        }
    }
}
