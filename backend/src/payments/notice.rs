//! Reading each provider's notification into one shape, [`Notice`]: which payment, what
//! happened to it, who bought what. Pure: bytes and headers in, a notice (or why it cannot
//! be read) out. What the notice then does is `domain::payment::decide`.

use domain::payment::{PaymentKind, Provider};
use domain::{Currency, Money};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The event type of the admin's "Test" notification: read, stored, and left alone.
pub const TEST_EVENT: &str = "dropgate.test";

/// One notification, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notice {
    /// The provider's id of this notification, for deduplication (redeliveries repeat it).
    pub event_id: String,
    /// The provider's name for the event (`checkout.session.completed`), shown to the seller.
    pub event_type: String,
    /// What it says, or `None` for an event Dropgate has nothing to do with.
    pub kind: Option<PaymentKind>,
    /// The payment it is about; becomes the order's transaction ID.
    pub payment_id: String,
    pub email: Option<String>,
    pub name: String,
    /// What was bought, by the provider's ids.
    pub items: Vec<Item>,
    /// Dropgate product ids named directly (Stripe `metadata.dropgate_products`, the generic
    /// webhook): no mapping needed.
    pub products: Vec<String>,
    /// What the buyer paid for the whole purchase.
    pub total: Option<Money>,
    /// A refund: how much, and whether the provider says it is the whole payment.
    pub refund: Option<Refund>,
    /// A provider's test notification (Shopify's "Send test notification", Paddle's
    /// simulator): stored and shown, never an order.
    pub test: bool,
    /// Paddle: the customer, whose email is read from Paddle's API when the notification
    /// does not carry it.
    pub customer_id: Option<String>,
    /// PayPal: the account the money went to.
    pub receiver: Option<String>,
    /// The buyer's language when the provider says it.
    pub language: Option<String>,
    /// Stripe: the checkout session whose line items must be read from the API.
    pub stripe_session: Option<String>,
}

/// One line of a purchase: the provider's ids that may be mapped to a product (price,
/// product, variant — the first mapped one wins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    pub ids: Vec<String>,
    /// What this line cost, when the provider says (PayPal's `mc_gross_N`).
    pub paid: Option<Money>,
}

impl Item {
    fn of(ids: Vec<String>) -> Self {
        Self { ids, paid: None }
    }
}

/// What a refund notification says of the money.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Refund {
    /// The provider's id of this one refund, for providers that announce each refund on
    /// its own (PayPal, Paddle, Shopify): counted once however often it arrives.
    pub id: Option<String>,
    /// This refund's amount, or (`cumulative`) the sum refunded so far.
    pub amount: Option<Money>,
    /// Whether `amount` is the payment's running total of refunds (Stripe, Lemon Squeezy).
    pub cumulative: bool,
    /// The provider says the whole payment is refunded.
    pub full: bool,
}

/// Headers an adapter reads besides the body.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Shopify: `X-Shopify-Topic`; Lemon Squeezy: `X-Event-Name`.
    pub topic: Option<String>,
    /// The generic hook: `webhook-id` (Shopify's webhook id is unsigned, so it is not
    /// read: a captured body could be replayed under a fresh one).
    pub delivery_id: Option<String>,
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoticeError(pub String);

fn err(message: impl Into<String>) -> NoticeError {
    NoticeError(message.into())
}

/// Reads a notification of `provider`.
pub fn read(provider: Provider, body: &[u8], context: &Context) -> Result<Notice, NoticeError> {
    match provider {
        Provider::Stripe => stripe(&json(body)?),
        Provider::Paypal => paypal(body),
        Provider::Lemonsqueezy => lemonsqueezy(&json(body)?, context),
        Provider::Paddle => paddle(&json(body)?),
        Provider::Shopify => shopify(&json(body)?, body, context),
        Provider::Generic => generic(&json(body)?, context),
    }
}

fn json(body: &[u8]) -> Result<Value, NoticeError> {
    serde_json::from_slice(body).map_err(|e| err(format!("the body is not JSON: {e}")))
}

/// A string (or number, as text) at a path of keys.
fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required(value: &Value, path: &[&str]) -> Result<String, NoticeError> {
    text(value, path).ok_or_else(|| err(format!("the field {} is missing", path.join("."))))
}

/// An amount in the currency's ISO minor units (Paddle and Lemon Squeezy send integers,
/// Paddle as strings) with its currency code at `currency`.
fn minor_money(value: &Value, amount: &[&str], currency: &[&str]) -> Option<Money> {
    let currency = Currency::parse(&text(value, currency)?).ok()?;
    Money::from_minor(text(value, amount)?.parse().ok()?, currency)
}

/// A decimal amount (`"19.99"`: PayPal, Shopify) in a currency.
fn decimal_money(amount: &str, currency: &str) -> Result<Money, NoticeError> {
    Money::parse(amount.trim().trim_start_matches('-'), currency)
        .map_err(|e| err(format!("the amount: {e}")))
}

/// Stripe's amounts are in Stripe's minor units, which follow ISO 4217 except for a few
/// currencies (Stripe's "zero-decimal" list and the special cases ISK, HUF, TWD, UGX in its
/// currency docs): converted here to ISO minor units.
fn stripe_money(minor: i64, code: &str) -> Option<Money> {
    let currency = Currency::parse(code).ok()?;
    let stripe_decimals: u32 = match currency.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    let iso = u32::from(currency.exponent());
    let minor = if stripe_decimals >= iso {
        let scale = 10i64.pow(stripe_decimals - iso);
        (minor % scale == 0).then_some(minor / scale)?
    } else {
        minor.checked_mul(10i64.pow(iso - stripe_decimals))?
    };
    Money::from_minor(minor, currency)
}

fn product_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn stripe(event: &Value) -> Result<Notice, NoticeError> {
    let event_id = required(event, &["id"])?;
    let event_type = required(event, &["type"])?;
    let object = event
        .pointer("/data/object")
        .ok_or_else(|| err("the field data.object is missing"))?;
    let mut notice = Notice {
        event_id,
        event_type: event_type.clone(),
        ..Notice::default()
    };
    match event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let session = required(object, &["id"])?;
            notice.kind = Some(match text(object, &["payment_status"]).as_deref() {
                Some("paid" | "no_payment_required") => PaymentKind::Paid,
                _ => PaymentKind::Pending,
            });
            notice.payment_id =
                text(object, &["payment_intent"]).unwrap_or_else(|| session.clone());
            notice.email = text(object, &["customer_details", "email"])
                .or_else(|| text(object, &["customer_email"]));
            notice.name = text(object, &["customer_details", "name"]).unwrap_or_default();
            notice.language = text(object, &["locale"]);
            notice.total = stripe_amount(object, "amount_total");
            match text(object, &["metadata", "dropgate_products"]) {
                Some(list) => notice.products = product_list(&list),
                None => notice.stripe_session = Some(session),
            }
        }
        "checkout.session.async_payment_failed" => {
            notice.kind = Some(PaymentKind::Failed);
            notice.payment_id =
                text(object, &["payment_intent"]).map_or_else(|| required(object, &["id"]), Ok)?;
        }
        "charge.refunded" => {
            // `amount_refunded` is the charge's running total of refunds.
            notice.kind = Some(PaymentKind::Refunded);
            notice.refund = Some(Refund {
                id: None,
                amount: stripe_amount(object, "amount_refunded"),
                cumulative: true,
                full: object.get("refunded").and_then(Value::as_bool) == Some(true),
            });
            notice.total = stripe_amount(object, "amount");
            notice.payment_id = stripe_payment(object)?;
        }
        "charge.dispute.created" => {
            notice.kind = Some(PaymentKind::Disputed);
            notice.payment_id = stripe_payment(object)?;
        }
        "charge.dispute.closed" => {
            notice.kind = match text(object, &["status"]).as_deref() {
                Some("won" | "warning_closed") => Some(PaymentKind::DisputeWon),
                Some("lost") => Some(PaymentKind::DisputeLost),
                _ => None,
            };
            notice.payment_id = stripe_payment(object)?;
        }
        _ => {}
    }
    Ok(notice)
}

/// An amount field of a Stripe object, in the object's currency.
fn stripe_amount(object: &Value, field: &str) -> Option<Money> {
    stripe_money(
        text(object, &[field])?.parse().ok()?,
        &text(object, &["currency"])?,
    )
}

/// The payment intent a charge or dispute belongs to (the transaction id of its order).
fn stripe_payment(object: &Value) -> Result<String, NoticeError> {
    text(object, &["payment_intent"])
        .or_else(|| text(object, &["charge"]))
        .ok_or_else(|| err("the field data.object.payment_intent is missing"))
}

/// The line items of a Stripe checkout session, from the API's answer
/// (`GET /v1/checkout/sessions/{id}/line_items`).
pub fn stripe_line_items(answer: &[u8]) -> Result<Vec<Item>, NoticeError> {
    let list = json(answer)?;
    let data = list
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| err("Stripe's line items answer has no data list"))?;
    Ok(data
        .iter()
        .map(|line| {
            Item::of(
                [
                    text(line, &["price", "id"]),
                    text(line, &["price", "product"]),
                ]
                .into_iter()
                .flatten()
                .collect(),
            )
        })
        .collect())
}

/// The fields of a form body, decoded as UTF-8 (PayPal sends `charset` with the form; the
/// fields Dropgate reads are ASCII or UTF-8 in practice, and the raw bytes go back
/// unchanged for verification).
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn paypal(body: &[u8]) -> Result<Notice, NoticeError> {
    let fields = form_fields(body);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let txn = get("txn_id").ok_or_else(|| err("the field txn_id is missing"))?;
    let status = get("payment_status").ok_or_else(|| err("the field payment_status is missing"))?;
    let kind = match status.as_str() {
        "Completed" => Some(PaymentKind::Paid),
        "Pending" => Some(PaymentKind::Pending),
        "Refunded" => Some(PaymentKind::Refunded),
        "Reversed" => Some(PaymentKind::Disputed),
        "Canceled_Reversal" => Some(PaymentKind::DisputeWon),
        "Denied" | "Failed" | "Expired" | "Voided" => Some(PaymentKind::Failed),
        _ => None,
    };
    // A refund or reversal has its own txn_id and names the payment in parent_txn_id.
    let payment_id = match kind {
        Some(PaymentKind::Refunded | PaymentKind::Disputed | PaymentKind::DisputeWon) => {
            get("parent_txn_id").unwrap_or_else(|| txn.clone())
        }
        _ => txn.clone(),
    };
    let currency = get("mc_currency");
    let paid = |field: &str| -> Result<Option<Money>, NoticeError> {
        match (get(field), currency.as_deref()) {
            (Some(amount), Some(currency)) => decimal_money(&amount, currency)
                .map(Some)
                .map_err(|e| err(format!("{field}: {e}"))),
            _ => Ok(None),
        }
    };
    let mut items = Vec::new();
    if let Some(single) = get("item_number") {
        items.push(Item {
            ids: vec![single],
            paid: paid("mc_gross")?,
        });
    }
    // Cart lines are numbered from 1; a line may have no item_number (a shipping line, an
    // item the seller typed in): it is still a line, so its price is not lost.
    let lines = (1..=100)
        .take_while(|n| {
            get(&format!("item_name{n}")).is_some() || get(&format!("item_number{n}")).is_some()
        })
        .count();
    for n in 1..=lines {
        items.push(Item {
            ids: get(&format!("item_number{n}")).into_iter().collect(),
            paid: paid(&format!("mc_gross_{n}"))?,
        });
    }
    let total = paid("mc_gross")?;
    // A refund's mc_gross is the refund (negative), not the payment.
    let (total, refund) = if kind == Some(PaymentKind::Refunded) {
        let refund = Refund {
            id: Some(txn.clone()),
            amount: total,
            cumulative: false,
            full: false,
        };
        (None, Some(refund))
    } else {
        (total, None)
    };
    let name = [get("first_name"), get("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Notice {
        event_id: format!("{txn}:{status}"),
        event_type: status,
        kind,
        payment_id,
        email: get("payer_email"),
        name,
        items,
        products: Vec::new(),
        total,
        refund,
        receiver: get("receiver_email").or_else(|| get("business")),
        ..Notice::default()
    })
}

fn lemonsqueezy(body: &Value, context: &Context) -> Result<Notice, NoticeError> {
    let event_type = text(body, &["meta", "event_name"])
        .or_else(|| context.topic.clone())
        .ok_or_else(|| err("the field meta.event_name is missing"))?;
    let data = body
        .get("data")
        .ok_or_else(|| err("the field data is missing"))?;
    let attributes = data
        .get("attributes")
        .ok_or_else(|| err("the field data.attributes is missing"))?;
    let order = required(data, &["id"])?;
    let status = text(attributes, &["status"]).unwrap_or_default();
    let kind = match (event_type.as_str(), status.as_str()) {
        ("order_created", "paid") => Some(PaymentKind::Paid),
        ("order_created", "pending") => Some(PaymentKind::Pending),
        ("order_created", "failed") => Some(PaymentKind::Failed),
        ("order_refunded", "refunded" | "partial_refund") => Some(PaymentKind::Refunded),
        _ => None,
    };
    // `refunded_amount` is the order's running total of refunds, in cents.
    let refund = (kind == Some(PaymentKind::Refunded)).then(|| Refund {
        id: None,
        amount: minor_money(attributes, &["refunded_amount"], &["currency"]),
        cumulative: true,
        full: status == "refunded",
    });
    let item = attributes.get("first_order_item").map(|i| {
        Item::of(
            [text(i, &["variant_id"]), text(i, &["product_id"])]
                .into_iter()
                .flatten()
                .collect(),
        )
    });
    Ok(Notice {
        // Lemon Squeezy has no event id; an order has one notification per event and status.
        event_id: format!("{order}:{event_type}:{status}"),
        event_type,
        kind,
        payment_id: order,
        email: text(attributes, &["user_email"]),
        name: text(attributes, &["user_name"]).unwrap_or_default(),
        items: item.into_iter().collect(),
        total: minor_money(attributes, &["total"], &["currency"]),
        refund,
        // Lemon Squeezy does not send the buyer's language; a storefront that knows it
        // passes it as checkout custom data (`checkout[custom][language]`).
        language: text(body, &["meta", "custom_data", "language"]),
        ..Notice::default()
    })
}

fn paddle(body: &Value) -> Result<Notice, NoticeError> {
    let event_id = required(body, &["event_id"])?;
    let event_type = required(body, &["event_type"])?;
    let data = body
        .get("data")
        .ok_or_else(|| err("the field data is missing"))?;
    // The webhook simulator's events (and only they) have ids of their own prefix.
    let simulated = event_id.starts_with("ntfsimevt_")
        || text(body, &["notification_id"]).is_some_and(|n| n.starts_with("ntfsimntf_"));
    let mut notice = Notice {
        event_id,
        event_type: event_type.clone(),
        test: simulated,
        ..Notice::default()
    };
    match event_type.as_str() {
        "transaction.completed" | "transaction.paid" => {
            notice.kind = Some(PaymentKind::Paid);
            notice.payment_id = required(data, &["id"])?;
            notice.email = text(data, &["customer", "email"])
                .or_else(|| text(data, &["custom_data", "email"]));
            notice.name = text(data, &["customer", "name"])
                .or_else(|| text(data, &["custom_data", "name"]))
                .unwrap_or_default();
            // The storefront's choice (custom data) before the customer record's locale.
            notice.language = text(data, &["custom_data", "language"])
                .or_else(|| text(data, &["customer", "locale"]));
            // Real checkouts name the buyer only by customer id.
            notice.customer_id = text(data, &["customer_id"]);
            notice.items = data
                .get("items")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| {
                            Item::of(
                                [text(i, &["price", "id"]), text(i, &["price", "product_id"])]
                                    .into_iter()
                                    .flatten()
                                    .collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            notice.total = minor_money(
                data,
                &["details", "totals", "grand_total"],
                &["details", "totals", "currency_code"],
            )
            .or_else(|| {
                minor_money(
                    data,
                    &["details", "totals", "grand_total"],
                    &["currency_code"],
                )
            });
        }
        "adjustment.created" | "adjustment.updated" => {
            // A refund counts once approved (adjustment.updated after a review, or at once).
            let approved = text(data, &["status"]).as_deref() == Some("approved");
            notice.payment_id = required(data, &["transaction_id"])?;
            notice.kind = match text(data, &["action"]).as_deref() {
                Some("refund") if approved => {
                    notice.refund = Some(Refund {
                        id: text(data, &["id"]),
                        amount: minor_money(
                            data,
                            &["totals", "total"],
                            &["totals", "currency_code"],
                        )
                        .or_else(|| minor_money(data, &["totals", "total"], &["currency_code"])),
                        cumulative: false,
                        full: text(data, &["type"]).as_deref() == Some("full"),
                    });
                    Some(PaymentKind::Refunded)
                }
                Some("chargeback") => Some(PaymentKind::Disputed),
                Some("chargeback_reverse") => Some(PaymentKind::DisputeWon),
                _ => None,
            };
        }
        _ => {}
    }
    Ok(notice)
}

/// Shopify signs only the body: the topic header and the webhook id are not signed. So the
/// event id is the body's SHA-256 (a captured body replayed under a fresh webhook id is
/// the same event), and the body must have the shape of its topic (a captured
/// `orders/paid` body replayed as `orders/cancelled` is refused).
#[allow(clippy::too_many_lines)] // one match over the three topics, each with its shape check
fn shopify(body: &Value, raw: &[u8], context: &Context) -> Result<Notice, NoticeError> {
    let topic = context
        .topic
        .clone()
        .ok_or_else(|| err("the X-Shopify-Topic header is missing"))?;
    let mut notice = Notice {
        event_id: format!("sha256:{}", hex::encode(Sha256::digest(raw))),
        event_type: topic.clone(),
        test: body.get("test").and_then(Value::as_bool) == Some(true),
        ..Notice::default()
    };
    let shape = |fits: bool| {
        if fits {
            Ok(())
        } else {
            Err(err(format!(
                "the body does not have the shape of a {topic} notification; it was not applied"
            )))
        }
    };
    let is_order = body.get("line_items").is_some_and(Value::is_array)
        && body.get("financial_status").is_some();
    match topic.as_str() {
        "orders/paid" => {
            shape(is_order && body.get("cancelled_at").is_none_or(Value::is_null))?;
            notice.kind = Some(PaymentKind::Paid);
            notice.payment_id = required(body, &["id"])?;
            notice.email = text(body, &["email"]).or_else(|| text(body, &["customer", "email"]));
            notice.name = [
                text(body, &["customer", "first_name"]),
                text(body, &["customer", "last_name"]),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            notice.language = text(body, &["customer_locale"]);
            notice.items = body
                .get("line_items")
                .and_then(Value::as_array)
                .map(|lines| {
                    lines
                        .iter()
                        .map(|l| {
                            Item::of(
                                [text(l, &["variant_id"]), text(l, &["product_id"])]
                                    .into_iter()
                                    .flatten()
                                    .collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            notice.total = match (text(body, &["total_price"]), text(body, &["currency"])) {
                (Some(total), Some(currency)) => Some(decimal_money(&total, &currency)?),
                _ => None,
            };
        }
        "refunds/create" => {
            shape(
                !is_order
                    && body.get("order_id").is_some()
                    && body.get("refund_line_items").is_some(),
            )?;
            notice.kind = Some(PaymentKind::Refunded);
            notice.payment_id = required(body, &["order_id"])?;
            // The money of a refund is in its successful refund transactions.
            let mut amount: Option<Money> = None;
            for t in body
                .get("transactions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if text(t, &["kind"]).as_deref() != Some("refund")
                    || text(t, &["status"]).as_deref() != Some("success")
                {
                    continue;
                }
                let (Some(value), Some(currency)) = (text(t, &["amount"]), text(t, &["currency"]))
                else {
                    continue;
                };
                let one = decimal_money(&value, &currency)?;
                amount = Some(match amount {
                    None => one,
                    Some(sum) => sum.plus(one).ok_or_else(|| {
                        err("the refund's transactions are in several currencies")
                    })?,
                });
            }
            notice.refund = Some(Refund {
                id: text(body, &["id"]),
                amount,
                cumulative: false,
                full: false,
            });
        }
        "orders/cancelled" => {
            shape(is_order && body.get("cancelled_at").is_some_and(|c| !c.is_null()))?;
            notice.kind = Some(PaymentKind::Refunded);
            notice.payment_id = required(body, &["id"])?;
            notice.refund = Some(Refund {
                full: true,
                ..Refund::default()
            });
        }
        _ => {}
    }
    Ok(notice)
}

fn generic(body: &Value, context: &Context) -> Result<Notice, NoticeError> {
    let event_id = text(body, &["event_id"])
        .or_else(|| context.delivery_id.clone())
        .ok_or_else(|| err("the field event_id is missing"))?;
    let event_type = required(body, &["type"])?;
    if event_type == TEST_EVENT {
        return Ok(Notice {
            event_id,
            event_type,
            ..Notice::default()
        });
    }
    let kind = match event_type.as_str() {
        "order.paid" => PaymentKind::Paid,
        "order.pending" => PaymentKind::Pending,
        "order.refunded" => PaymentKind::Refunded,
        "order.disputed" => PaymentKind::Disputed,
        "order.dispute_won" => PaymentKind::DisputeWon,
        other => {
            return Err(err(format!(
                "the type {other:?} is not one of order.paid, order.pending, order.refunded, order.disputed, order.dispute_won"
            )));
        }
    };
    let products = match body.get("product_ids") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(list)) => product_list(list),
        _ => Vec::new(),
    };
    if kind == PaymentKind::Paid && products.is_empty() {
        return Err(err("an order.paid event needs product_ids"));
    }
    Ok(Notice {
        event_id,
        event_type,
        kind: Some(kind),
        payment_id: required(body, &["transaction_id"])?,
        email: text(body, &["email"]),
        name: text(body, &["name"]).unwrap_or_default(),
        products,
        total: generic_amount(body)?,
        refund: (kind == PaymentKind::Refunded).then(|| Refund {
            full: true,
            ..Refund::default()
        }),
        language: text(body, &["language"]),
        ..Notice::default()
    })
}

/// The generic hook's `amount`: `{"value": "19.99", "currency": "EUR"}`, like the API's.
fn generic_amount(body: &Value) -> Result<Option<Money>, NoticeError> {
    match body.get("amount") {
        None | Some(Value::Null) => Ok(None),
        Some(amount) => {
            let amount: domain::Amount = serde_json::from_value(amount.clone()).map_err(|_| {
                err(r#"amount is an object like {"value": "19.99", "currency": "EUR"}"#)
            })?;
            amount
                .parse()
                .map(Some)
                .map_err(|e| err(format!("amount: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripe_session_with_metadata_names_its_products() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{
            "id":"cs_1","payment_status":"paid","payment_intent":"pi_1",
            "customer_details":{"email":"ann@example.com","name":"Ann"},
            "amount_total":1999,"currency":"eur","metadata":{"dropgate_products":"ebook, course"}}}}"#;
        let n = read(Provider::Stripe, body, &Context::default()).unwrap();
        assert_eq!(n.kind, Some(PaymentKind::Paid));
        assert_eq!(n.payment_id, "pi_1");
        assert_eq!(n.products, ["ebook", "course"]);
        assert_eq!(n.total, Some(Money::parse("19.99", "EUR").unwrap()));
        assert_eq!(n.stripe_session, None);
    }

    #[test]
    fn stripe_amounts_become_iso_minor_units() {
        let m = |minor, code: &str| stripe_money(minor, code).map(|m| m.to_string());
        assert_eq!(m(1999, "eur").as_deref(), Some("19.99 EUR"));
        assert_eq!(m(1000, "jpy").as_deref(), Some("1000 JPY"));
        // ISK is zero-decimal in ISO 4217, but Stripe takes it with two decimals.
        assert_eq!(m(50_000, "isk").as_deref(), Some("500 ISK"));
        assert_eq!(m(50_050, "isk"), None, "not a whole krona");
        assert_eq!(m(1_500, "kwd").as_deref(), Some("1.500 KWD"));
        // MGA has two decimals in ISO 4217; Stripe takes it as zero-decimal.
        assert_eq!(m(5_000, "mga").as_deref(), Some("5000.00 MGA"));
    }

    #[test]
    fn a_stripe_refund_says_how_much_so_far() {
        let body = br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"payment_intent":"pi_1","refunded":false,"amount":1999,"amount_refunded":500,"currency":"eur"}}}"#;
        let n = read(Provider::Stripe, body, &Context::default()).unwrap();
        assert_eq!(n.kind, Some(PaymentKind::Refunded));
        let refund = n.refund.unwrap();
        assert_eq!(refund.amount, Some(Money::parse("5", "EUR").unwrap()));
        assert!(refund.cumulative && !refund.full);
        assert_eq!(n.total, Some(Money::parse("19.99", "EUR").unwrap()));
    }

    #[test]
    fn a_paypal_cart_and_its_refund() {
        let cart = b"txn_id=TX1&payment_status=Completed&receiver_email=shop%40example.com&payer_email=bo%40example.com&first_name=Bo&last_name=Lee&item_number1=ebook&item_number2=course&item_name3=Shipping&mc_gross_1=20.00&mc_gross_2=5.00&mc_gross_3=5.00&mc_gross=30.00&mc_currency=USD";
        let n = read(Provider::Paypal, cart, &Context::default()).unwrap();
        assert_eq!(n.event_id, "TX1:Completed");
        assert_eq!(
            n.items.len(),
            3,
            "the shipping line is a line with no item number"
        );
        assert!(n.items[2].ids.is_empty());
        assert_eq!(n.items[0].paid, Some(Money::parse("20", "USD").unwrap()));
        assert_eq!(n.total, Some(Money::parse("30", "USD").unwrap()));
        assert_eq!(n.receiver.as_deref(), Some("shop@example.com"));
        assert_eq!(n.name, "Bo Lee");
        let refund =
            b"txn_id=TX2&parent_txn_id=TX1&payment_status=Refunded&mc_gross=-30.00&mc_currency=USD";
        let r = read(Provider::Paypal, refund, &Context::default()).unwrap();
        assert_eq!(
            (r.kind, r.payment_id.as_str()),
            (Some(PaymentKind::Refunded), "TX1")
        );
        assert_eq!(r.total, None, "a refund's mc_gross is not the payment");
        let refund = r.refund.unwrap();
        assert_eq!(refund.id.as_deref(), Some("TX2"));
        assert_eq!(refund.amount, Some(Money::parse("30", "USD").unwrap()));
        assert!(!refund.cumulative);
    }

    #[test]
    fn lemon_squeezy_and_paddle_carry_the_checkouts_language() {
        let lemon = br#"{"meta":{"event_name":"order_created","custom_data":{"language":"fr"}},
            "data":{"id":"7","attributes":{"status":"paid","user_email":"a@b.co"}}}"#;
        let n = read(Provider::Lemonsqueezy, lemon, &Context::default()).unwrap();
        assert_eq!(n.language.as_deref(), Some("fr"));
        let paddle = |data: &str| {
            let body = format!(
                r#"{{"event_id":"evt_1","event_type":"transaction.completed","data":{{"id":"txn_1",{data}}}}}"#
            );
            read(Provider::Paddle, body.as_bytes(), &Context::default())
                .unwrap()
                .language
        };
        assert_eq!(
            paddle(r#""customer":{"email":"a@b.co","locale":"es"}"#).as_deref(),
            Some("es")
        );
        assert_eq!(
            paddle(r#""customer":{"locale":"es"},"custom_data":{"language":"de"}"#).as_deref(),
            Some("de"),
            "the storefront's choice wins"
        );
        assert_eq!(paddle(r#""customer":{"email":"a@b.co"}"#), None);
    }

    #[test]
    fn the_generic_hook_needs_a_known_type_and_products() {
        let bad = br#"{"event_id":"e1","type":"order.shipped","transaction_id":"t"}"#;
        assert!(read(Provider::Generic, bad, &Context::default()).is_err());
        let none =
            br#"{"event_id":"e1","type":"order.paid","transaction_id":"t","email":"a@b.co"}"#;
        assert!(read(Provider::Generic, none, &Context::default()).is_err());
        let ok = br#"{"event_id":"e1","type":"order.paid","transaction_id":"t","email":"a@b.co","product_ids":["ebook"]}"#;
        assert_eq!(
            read(Provider::Generic, ok, &Context::default())
                .unwrap()
                .products,
            ["ebook"]
        );
    }
}
