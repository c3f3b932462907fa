//! Reading each provider's notification into one shape, [`Notice`]: which payment, what
//! happened to it, who bought what. Pure: bytes and headers in, a notice (or why it cannot
//! be read) out. What the notice then does is `domain::payment::decide`.

use domain::payment::{PaymentKind, Provider, parse_amount};
use serde_json::Value;

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
    /// The total paid, in hundredths, and its currency.
    pub total: Option<(i64, String)>,
    /// PayPal: the account the money went to.
    pub receiver: Option<String>,
    /// The buyer's language when the provider says it.
    pub language: Option<String>,
    /// Stripe: the checkout session whose line items must be read from the API.
    pub stripe_session: Option<String>,
}

/// One line of a purchase: the provider's ids that may be mapped to a product (price,
/// product, variant — the first mapped one wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub ids: Vec<String>,
}

/// Headers an adapter reads besides the body.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Shopify: `X-Shopify-Topic`; Lemon Squeezy: `X-Event-Name`.
    pub topic: Option<String>,
    /// Shopify: `X-Shopify-Webhook-Id`; the generic hook: `webhook-id`.
    pub delivery_id: Option<String>,
    /// Stripe: whether a partial refund revokes access (the store's setting).
    pub partial_refund_revokes: bool,
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
        Provider::Stripe => stripe(&json(body)?, context),
        Provider::Paypal => paypal(body),
        Provider::Lemonsqueezy => lemonsqueezy(&json(body)?, context),
        Provider::Paddle => paddle(&json(body)?),
        Provider::Shopify => shopify(&json(body)?, context),
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

/// An amount in minor units (Stripe, Paddle, Lemon Squeezy send integers).
fn minor_units(value: &Value, path: &[&str]) -> Option<i64> {
    text(value, path)?.parse().ok()
}

fn product_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn stripe(event: &Value, context: &Context) -> Result<Notice, NoticeError> {
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
            notice.total = minor_units(object, &["amount_total"])
                .zip(text(object, &["currency"]).map(|c| c.to_ascii_uppercase()));
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
            let full = object.get("refunded").and_then(Value::as_bool) == Some(true);
            notice.kind = (full || context.partial_refund_revokes).then_some(PaymentKind::Refunded);
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
        .map(|line| Item {
            ids: [
                text(line, &["price", "id"]),
                text(line, &["price", "product"]),
            ]
            .into_iter()
            .flatten()
            .collect(),
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
    let mut items = Vec::new();
    if let Some(single) = get("item_number") {
        items.push(Item { ids: vec![single] });
    }
    for n in 1..=100 {
        match get(&format!("item_number{n}")) {
            Some(id) => items.push(Item { ids: vec![id] }),
            None if n > 1 => break,
            None => {}
        }
    }
    let total = match (get("mc_gross"), get("mc_currency")) {
        (Some(gross), Some(currency)) => Some((
            parse_amount(gross.trim_start_matches('-'))
                .map_err(|e| err(format!("mc_gross: {e}")))?,
            currency.to_ascii_uppercase(),
        )),
        _ => None,
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
        receiver: get("receiver_email").or_else(|| get("business")),
        language: None,
        stripe_session: None,
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
        ("order_refunded", "refunded") => Some(PaymentKind::Refunded),
        ("order_refunded", "partial_refund") if context.partial_refund_revokes => {
            Some(PaymentKind::Refunded)
        }
        _ => None,
    };
    let item = attributes.get("first_order_item").map(|i| Item {
        ids: [text(i, &["variant_id"]), text(i, &["product_id"])]
            .into_iter()
            .flatten()
            .collect(),
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
        products: Vec::new(),
        total: minor_units(attributes, &["total"])
            .zip(text(attributes, &["currency"]).map(|c| c.to_ascii_uppercase())),
        receiver: None,
        // Lemon Squeezy does not send the buyer's language; a storefront that knows it
        // passes it as checkout custom data (`checkout[custom][language]`).
        language: text(body, &["meta", "custom_data", "language"]),
        stripe_session: None,
    })
}

fn paddle(body: &Value) -> Result<Notice, NoticeError> {
    let event_id = required(body, &["event_id"])?;
    let event_type = required(body, &["event_type"])?;
    let data = body
        .get("data")
        .ok_or_else(|| err("the field data is missing"))?;
    let mut notice = Notice {
        event_id,
        event_type: event_type.clone(),
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
            notice.items = data
                .get("items")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| Item {
                            ids: [text(i, &["price", "id"]), text(i, &["price", "product_id"])]
                                .into_iter()
                                .flatten()
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            notice.total = minor_units(data, &["details", "totals", "grand_total"]).zip(
                text(data, &["details", "totals", "currency_code"])
                    .or_else(|| text(data, &["currency_code"])),
            );
        }
        "adjustment.created" | "adjustment.updated" => {
            let approved = text(data, &["status"]).as_deref() == Some("approved");
            notice.payment_id = required(data, &["transaction_id"])?;
            notice.kind = match text(data, &["action"]).as_deref() {
                Some("refund")
                    if approved && text(data, &["type"]).as_deref() != Some("partial") =>
                {
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

fn shopify(body: &Value, context: &Context) -> Result<Notice, NoticeError> {
    let topic = context
        .topic
        .clone()
        .ok_or_else(|| err("the X-Shopify-Topic header is missing"))?;
    let event_id = context
        .delivery_id
        .clone()
        .ok_or_else(|| err("the X-Shopify-Webhook-Id header is missing"))?;
    let mut notice = Notice {
        event_id,
        event_type: topic.clone(),
        ..Notice::default()
    };
    match topic.as_str() {
        "orders/paid" => {
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
                        .map(|l| Item {
                            ids: [text(l, &["variant_id"]), text(l, &["product_id"])]
                                .into_iter()
                                .flatten()
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            notice.total = text(body, &["total_price"])
                .and_then(|t| parse_amount(&t).ok())
                .zip(text(body, &["currency"]));
        }
        "refunds/create" => {
            notice.kind = Some(PaymentKind::Refunded);
            notice.payment_id = required(body, &["order_id"])?;
        }
        "orders/cancelled" => {
            notice.kind = Some(PaymentKind::Refunded);
            notice.payment_id = required(body, &["id"])?;
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
        items: Vec::new(),
        products,
        total: None,
        receiver: None,
        language: text(body, &["language"]),
        stripe_session: None,
    })
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
        assert_eq!(n.total, Some((1999, "EUR".into())));
        assert_eq!(n.stripe_session, None);
    }

    #[test]
    fn stripe_partial_refunds_follow_the_setting() {
        let body = br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"payment_intent":"pi_1","refunded":false}}}"#;
        assert_eq!(
            read(Provider::Stripe, body, &Context::default())
                .unwrap()
                .kind,
            None
        );
        let revoke = Context {
            partial_refund_revokes: true,
            ..Context::default()
        };
        assert_eq!(
            read(Provider::Stripe, body, &revoke).unwrap().kind,
            Some(PaymentKind::Refunded)
        );
    }

    #[test]
    fn a_paypal_cart_and_its_refund() {
        let cart = b"txn_id=TX1&payment_status=Completed&receiver_email=shop%40example.com&payer_email=bo%40example.com&first_name=Bo&last_name=Lee&item_number1=ebook&item_number2=course&mc_gross=30.00&mc_currency=USD";
        let n = read(Provider::Paypal, cart, &Context::default()).unwrap();
        assert_eq!(n.event_id, "TX1:Completed");
        assert_eq!(n.items.len(), 2);
        assert_eq!(n.total, Some((3000, "USD".into())));
        assert_eq!(n.receiver.as_deref(), Some("shop@example.com"));
        assert_eq!(n.name, "Bo Lee");
        let refund =
            b"txn_id=TX2&parent_txn_id=TX1&payment_status=Refunded&mc_gross=-30.00&mc_currency=USD";
        let r = read(Provider::Paypal, refund, &Context::default()).unwrap();
        assert_eq!(
            (r.kind, r.payment_id.as_str()),
            (Some(PaymentKind::Refunded), "TX1")
        );
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
