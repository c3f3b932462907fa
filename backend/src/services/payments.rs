//! Payments in: one pipeline for every provider. A notification is received, verified,
//! read into a [`Notice`], and then — in one store transaction — stored raw, deduplicated
//! by the provider's event id and applied to its payment's order (created with links and
//! mail, confirmed, held, refunded) by `domain::payment::decide`. A notification that
//! cannot be applied (an unmapped product) is kept with its reason and can be reprocessed
//! once the seller has fixed the cause; nothing acknowledged is dropped.
//!
//! Also the seller's side of it: each provider's settings and each product's mapping.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use super::orders::{Change, create_in, update_in, validate};
use crate::auth::download_key::DownloadKey;
use crate::mail::Mailer;
use crate::payments::client::HttpClient;
use crate::payments::notice::{self, Context, Notice, Refund};
use crate::payments::signature::{self, SignatureError, WebhookSecret};
use crate::store::orders::{MoneyRecord, OrderRecord, OrderSource};
use crate::store::payments::{
    IntegrationRecord, MappingRecord, NotificationOutcome as Outcome, NotificationRecord,
    PaymentRecord,
};
use crate::store::{self, Store};
use domain::Money;
use domain::payment::{
    HookReceipt, IntegrationUpdate, IntegrationView, NotificationPage, NotificationView,
    PaymentDecision, PaymentKind, Price, ProductMappings, Provider, decide, format_amount, hint,
};
use domain::wire::NewOrder;
use domain::{OrderId, ProductId, Timestamp};
use redb::WriteTransaction;
use std::collections::BTreeMap;
use std::time::Duration;

/// PayPal's live IPN verification endpoint.
pub const PAYPAL_LIVE: &str = "https://ipnpb.paypal.com/cgi-bin/webscr";
/// PayPal's sandbox IPN verification endpoint.
pub const PAYPAL_SANDBOX: &str = "https://ipnpb.sandbox.paypal.com/cgi-bin/webscr";
/// Stripe's API.
pub const STRIPE_API: &str = "https://api.stripe.com";
/// Paddle Billing's live API.
pub const PADDLE_LIVE: &str = "https://api.paddle.com";
/// Paddle Billing's sandbox API.
pub const PADDLE_SANDBOX: &str = "https://sandbox-api.paddle.com";

/// Header values kept with a notification (Shopify's topic, a delivery id) are cut to
/// this many bytes: real ones are short, a stranger's can be 64 KiB.
const HEADER_VALUE_LIMIT: usize = 200;

/// Where Dropgate calls the providers with their secrets. Fixed per provider (live or
/// sandbox by an integration option); only the server's own configuration moves them, for
/// tests against fakes (`--stripe-api-base`, `--paddle-api-base`, `--paypal-verify-url`),
/// never the admin or the API: an address set there would receive the secret key, or
/// answer VERIFIED to forged notifications.
#[derive(Clone, Debug, Default)]
pub struct ProviderEndpoints {
    /// Replaces Stripe's API.
    pub stripe_api: Option<String>,
    /// Replaces Paddle's API, live and sandbox.
    pub paddle_api: Option<String>,
    /// Replaces PayPal's IPN verifier, live and sandbox.
    pub paypal_verify: Option<String>,
}

/// The body of a notification that failed verification is kept only this long: it is a
/// stranger's post, kept as evidence, not data.
const UNVERIFIED_BODY_LIMIT: usize = 4096;

const PARTIAL_REFUNDS: (&str, &str) = (
    "partial_refunds",
    "keep (default) or revoke: what a partial refund does to access (the amount is recorded either way; refunds adding up to the total revoke)",
);
const UNMAPPED_ITEMS: (&str, &str) = (
    "unmapped_items",
    "ignore (default) or hold: a cart with items that sell no product here delivers the mapped ones, or waits for mapping",
);

/// The options each provider takes, with what each does (shown in the admin).
fn option_help(provider: Provider) -> &'static [(&'static str, &'static str)] {
    match provider {
        Provider::Stripe | Provider::Lemonsqueezy | Provider::Shopify => {
            &[PARTIAL_REFUNDS, UNMAPPED_ITEMS]
        }
        Provider::Paypal => &[
            (
                "receiver_email",
                "your PayPal account's email(s), comma-separated: payments to anyone else are refused",
            ),
            (
                "verify_url",
                "live (default) or sandbox: which PayPal verifies the IPNs",
            ),
            (
                "verify_timeout_secs",
                "how long one verification may take, 1 to 60 (default 10)",
            ),
            PARTIAL_REFUNDS,
            UNMAPPED_ITEMS,
        ],
        Provider::Paddle => &[
            (
                "environment",
                "live (default) or sandbox: which Paddle API the buyer's email is read from (with the API key)",
            ),
            PARTIAL_REFUNDS,
            UNMAPPED_ITEMS,
        ],
        Provider::Generic => &[UNMAPPED_ITEMS],
    }
}

/// A notification as it arrived.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub provider: Provider,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the hook answers: an HTTP status and the receipt. 2xx tells the provider to stop
/// redelivering; 5xx asks it to try again later (Dropgate could not finish yet); 4xx says
/// the notification is not acceptable.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub status: u16,
    pub receipt: HookReceipt,
}

/// Payments in and their settings.
#[derive(Clone, Debug)]
pub struct PaymentService {
    store: Store,
    key: DownloadKey,
    mailer: Mailer,
    client: HttpClient,
    public_url: String,
    endpoints: ProviderEndpoints,
}

/// The result of the network steps before the transaction.
enum Prepared {
    Ready(Box<Notice>),
    Stop(Outcome, String, u16),
}

impl PaymentService {
    pub fn new(
        store: Store,
        key: DownloadKey,
        mailer: Mailer,
        client: HttpClient,
        public_url: &str,
        endpoints: ProviderEndpoints,
    ) -> Self {
        Self {
            store,
            key,
            mailer,
            client,
            public_url: public_url.trim_end_matches('/').to_owned(),
            endpoints,
        }
    }

    /// Receives one notification: verify, read, store, deduplicate, apply.
    pub async fn receive(
        &self,
        incoming: Incoming,
        now: Timestamp,
    ) -> Result<Receipt, ServiceError> {
        let provider = incoming.provider;
        let integration = Some(self.settings_of(provider).await?)
            .filter(|i| i.enabled)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "{} notifications are not enabled in this store",
                    provider.label()
                ))
            })?;
        let mut record = NotificationRecord {
            provider,
            received_at: now,
            verified: false,
            event_id: None,
            event_type: None,
            kind: None,
            payment_id: None,
            outcome: Outcome::Unverified,
            detail: String::new(),
            order: None,
            topic: incoming
                .header("x-shopify-topic")
                .or_else(|| incoming.header("x-event-name"))
                .map(cut_header),
            delivery_id: incoming
                .header("x-shopify-webhook-id")
                .or_else(|| incoming.header("webhook-id"))
                .map(cut_header),
            body: incoming.body.clone(),
            processed_at: now,
            runs: 1,
        };
        if let Err(problem) = self.verify(&integration, &incoming, now).await {
            let (outcome, status) = match &problem {
                Problem::Unreachable(_) => (Outcome::Failed, 503),
                Problem::Refused(_) => (Outcome::Unverified, 400),
            };
            record.outcome = outcome;
            record.detail = problem.to_string();
            tracing::warn!(provider = provider.as_str(), problem = %record.detail, "payment notification not verified");
            if outcome == Outcome::Unverified {
                // A stranger's post: kept short, in the capped ring, and the answer says
                // nothing of how many came before.
                record.body.truncate(UNVERIFIED_BODY_LIMIT);
                let mut receipt = self.keep_unverified(record).await?;
                receipt.receipt.notification_id = None;
                return Ok(receipt);
            }
            return self.keep(record, status).await;
        }
        record.verified = true;
        self.process(record, &integration, None, now).await
    }

    /// Processes a stored notification again (after the seller mapped a product, set an API
    /// key, or fixed a setting). The row is updated, not duplicated.
    pub async fn reprocess(&self, id: u64, now: Timestamp) -> Result<HookReceipt, ServiceError> {
        let record = self
            .store
            .run(move |s| s.read(|tx| store::payments::notification(tx, id)))
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no notification {id}")))?;
        if !record.outcome.can_reprocess() {
            return Err(ServiceError::Conflict(format!(
                "notification {id} was {}: there is nothing to reprocess",
                record.outcome.as_str().replace('_', " ")
            )));
        }
        let provider = record.provider;
        let integration = self.settings_of(provider).await?;
        let mut record = record;
        if !record.verified {
            // Only PayPal's verification can fail for a reason other than the notification
            // itself (its endpoint did not answer); it can be asked again.
            let incoming = Incoming {
                provider,
                headers: Vec::new(),
                body: record.body.clone(),
            };
            if let Err(problem) = self.verify(&integration, &incoming, now).await {
                return Err(ServiceError::Conflict(format!(
                    "notification {id} is still not verified: {problem}"
                )));
            }
            record.verified = true;
        }
        record.runs += 1;
        record.processed_at = now;
        Ok(self
            .process(record, &integration, Some(id), now)
            .await?
            .receipt)
    }

    /// A provider's stored settings (the defaults, all off, when never set).
    async fn settings_of(&self, provider: Provider) -> Result<IntegrationRecord, ServiceError> {
        Ok(self
            .store
            .run(move |s| s.read(|tx| store::payments::integration(tx, provider)))
            .await?
            .unwrap_or_default())
    }

    /// Checks that a notification comes from the provider.
    async fn verify(
        &self,
        integration: &IntegrationRecord,
        incoming: &Incoming,
        now: Timestamp,
    ) -> Result<(), Problem> {
        let secrets = &integration.secrets;
        let body = &incoming.body;
        let checked = match incoming.provider {
            Provider::Stripe => {
                signature::stripe(incoming.header("stripe-signature"), body, secrets, now)
            }
            Provider::Paddle => {
                signature::paddle(incoming.header("paddle-signature"), body, secrets, now)
            }
            Provider::Lemonsqueezy => {
                signature::lemonsqueezy(incoming.header("x-signature"), body, secrets)
            }
            Provider::Shopify => {
                signature::shopify(incoming.header("x-shopify-hmac-sha256"), body, secrets)
            }
            Provider::Generic => {
                let keys: Vec<WebhookSecret> = secrets
                    .iter()
                    .filter_map(|s| WebhookSecret::parse(s).ok())
                    .collect();
                signature::standard(
                    incoming.header("webhook-id"),
                    incoming.header("webhook-timestamp"),
                    incoming.header("webhook-signature"),
                    body,
                    &keys,
                    now,
                )
            }
            Provider::Paypal => return self.verify_paypal(integration, body).await,
        };
        checked.map_err(|e: SignatureError| Problem::Refused(e.to_string()))
    }

    /// PayPal: the exact message goes back with `cmd=_notify-validate` first; only
    /// `VERIFIED` counts. Three tries, each under the configured timeout.
    async fn verify_paypal(
        &self,
        integration: &IntegrationRecord,
        body: &[u8],
    ) -> Result<(), Problem> {
        let url = match (
            self.endpoints.paypal_verify.as_deref(),
            integration.options.get("verify_url").map(String::as_str),
        ) {
            (Some(fixed), _) => fixed,
            (None, Some("sandbox")) => PAYPAL_SANDBOX,
            // An address stored by an earlier build is not used: only live or sandbox.
            (None, _) => PAYPAL_LIVE,
        };
        let timeout = Duration::from_secs(
            integration
                .options
                .get("verify_timeout_secs")
                .and_then(|t| t.parse().ok())
                .unwrap_or(10),
        );
        let mut message = b"cmd=_notify-validate&".to_vec();
        message.extend_from_slice(body);
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            match self
                .client
                .post(url, &headers, message.clone(), timeout)
                .await
            {
                Ok(answer) if answer.is_success() => {
                    return match answer.body.trim_ascii() {
                        b"VERIFIED" => Ok(()),
                        b"INVALID" => Err(Problem::Refused(
                            "PayPal answered INVALID: the message did not come from PayPal".into(),
                        )),
                        _ => Err(Problem::Refused(format!(
                            "PayPal's verification answered {:?}, not VERIFIED",
                            answer.excerpt(80)
                        ))),
                    };
                }
                Ok(answer) => {
                    last = format!("PayPal's verification answered HTTP {}", answer.status);
                }
                Err(e) => {
                    last = format!("PayPal's verification: {e}");
                }
            }
        }
        Err(Problem::Unreachable(format!(
            "{last} (3 tries; PayPal will send it again)"
        )))
    }

    /// Reads, fetches what the notification does not carry, then stores and applies it.
    async fn process(
        &self,
        mut record: NotificationRecord,
        integration: &IntegrationRecord,
        existing: Option<u64>,
        now: Timestamp,
    ) -> Result<Receipt, ServiceError> {
        let context = Context {
            topic: record.topic.clone(),
            delivery_id: record.delivery_id.clone(),
        };
        match self
            .prepare(record.provider, &record.body, &context, integration)
            .await
        {
            Prepared::Stop(outcome, detail, status) => {
                record.outcome = outcome;
                record.detail = detail;
                match existing {
                    Some(id) => self.replace(id, record, status).await,
                    None => self.keep(record, status).await,
                }
            }
            Prepared::Ready(notice) => {
                let key = self.key.clone();
                let mailer = self.mailer.clone();
                let options = integration.options.clone();
                let provider = record.provider;
                let receipt = self
                    .store
                    .run(move |s| {
                        s.write(|tx| {
                            let applied =
                                apply(tx, (&mailer, &key), provider, &options, &notice, now)?;
                            record.event_id = Some(notice.event_id.clone());
                            record.event_type = Some(notice.event_type.clone());
                            record.kind = notice.kind;
                            record.payment_id =
                                Some(notice.payment_id.clone()).filter(|p| !p.is_empty());
                            record.outcome = applied.outcome;
                            record.detail = applied.detail;
                            record.order = applied.order;
                            let id = match existing {
                                Some(id) => {
                                    store::payments::put_notification(tx, id, &record)?;
                                    id
                                }
                                None => store::payments::insert_notification(tx, &record)?,
                            };
                            if applied.mark_seen {
                                store::payments::mark_event(
                                    tx,
                                    record.provider,
                                    &notice.event_id,
                                    id,
                                )?;
                            }
                            Ok::<_, ServiceError>(receipt(id, &record))
                        })
                    })
                    .await?;
                self.mailer.wake();
                tracing::info!(
                    provider = provider.as_str(),
                    outcome = %receipt.outcome,
                    detail = %receipt.detail,
                    "payment notification processed"
                );
                Ok(Receipt {
                    status: 200,
                    receipt,
                })
            }
        }
    }

    /// Reads the notice and, for a Stripe checkout, its line items from Stripe's API.
    async fn prepare(
        &self,
        provider: Provider,
        body: &[u8],
        context: &Context,
        integration: &IntegrationRecord,
    ) -> Prepared {
        let mut notice = match notice::read(provider, body, context) {
            Ok(n) => n,
            Err(e) => {
                return Prepared::Stop(
                    Outcome::Rejected,
                    format!("the notification cannot be read: {e}"),
                    400,
                );
            }
        };
        let needs_items = matches!(notice.kind, Some(PaymentKind::Paid | PaymentKind::Pending));
        if let Some(session) = notice.stripe_session.clone().filter(|_| needs_items) {
            let Some(api_key) = integration.api_key.as_deref().filter(|k| !k.is_empty()) else {
                return Prepared::Stop(
                    Outcome::Failed,
                    "the checkout session names no products (metadata.dropgate_products) and no Stripe API key is set to read its line items: set one, then Reprocess".into(),
                    200,
                );
            };
            let url = format!(
                "{}/v1/checkout/sessions/{session}/line_items?limit=100",
                self.stripe_api()
            );
            match self
                .client
                .get(&url, api_key, Duration::from_secs(15))
                .await
            {
                Ok(answer) if answer.is_success() => {
                    match notice::stripe_line_items(&answer.body) {
                        Ok(items) => notice.items = items,
                        Err(e) => return Prepared::Stop(Outcome::Failed, e.to_string(), 503),
                    }
                }
                Ok(answer) => {
                    return Prepared::Stop(
                        Outcome::Failed,
                        format!(
                            "Stripe's API answered HTTP {} when asked for the line items: {}",
                            answer.status,
                            answer.excerpt(200)
                        ),
                        503,
                    );
                }
                Err(e) => {
                    return Prepared::Stop(
                        Outcome::Failed,
                        format!("Stripe's API could not be asked for the line items: {e}"),
                        503,
                    );
                }
            }
        }
        if provider == Provider::Paddle
            && needs_items
            && !notice.test
            && notice.email.is_none()
            && let Some(customer) = notice.customer_id.clone()
            && let Err(stop) = self
                .paddle_customer(integration, &customer, &mut notice)
                .await
        {
            return stop;
        }
        Prepared::Ready(Box::new(notice))
    }

    /// Paddle Billing: the buyer's email and name from `GET /customers/{id}` with the
    /// integration's API key. Paddle's API not answering is a 503, so Paddle sends the
    /// notification again later.
    async fn paddle_customer(
        &self,
        integration: &IntegrationRecord,
        customer: &str,
        notice: &mut Notice,
    ) -> Result<(), Prepared> {
        let Some(api_key) = integration.api_key.as_deref().filter(|k| !k.is_empty()) else {
            return Err(Prepared::Stop(
                Outcome::Failed,
                format!(
                    "the notification names the buyer only as Paddle customer {customer}: set a Paddle API key (Customers: read) so Dropgate can read the email, then Reprocess"
                ),
                200,
            ));
        };
        let base = self.paddle_api(integration);
        if customer.is_empty()
            || !customer
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Prepared::Stop(
                Outcome::Rejected,
                format!("the customer id {customer:?} is not a Paddle id"),
                400,
            ));
        }
        let url = format!("{base}/customers/{customer}");
        let answer = match self
            .client
            .get(&url, api_key, Duration::from_secs(15))
            .await
        {
            Ok(answer) if answer.is_success() => answer,
            Ok(answer) if answer.status == 401 || answer.status == 403 || answer.status == 404 => {
                return Err(Prepared::Stop(
                    Outcome::Failed,
                    format!(
                        "Paddle's API answered HTTP {} for customer {customer} (check the API key and live/sandbox), then Reprocess: {}",
                        answer.status,
                        answer.excerpt(200)
                    ),
                    200,
                ));
            }
            Ok(answer) => {
                return Err(Prepared::Stop(
                    Outcome::Failed,
                    format!(
                        "Paddle's API answered HTTP {} when asked for customer {customer}; Paddle will send the notification again",
                        answer.status
                    ),
                    503,
                ));
            }
            Err(e) => {
                return Err(Prepared::Stop(
                    Outcome::Failed,
                    format!(
                        "Paddle's API could not be asked for customer {customer} ({e}); Paddle will send the notification again"
                    ),
                    503,
                ));
            }
        };
        let customer_record: serde_json::Value =
            serde_json::from_slice(&answer.body).unwrap_or_default();
        let field = |name: &str| {
            customer_record
                .pointer(&format!("/data/{name}"))
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        notice.email = field("email");
        if notice.name.is_empty() {
            notice.name = field("name").unwrap_or_default();
        }
        if notice.language.is_none() {
            notice.language = field("locale");
        }
        if notice.email.is_none() {
            return Err(Prepared::Stop(
                Outcome::Failed,
                format!("Paddle's API answer for customer {customer} has no email address"),
                503,
            ));
        }
        Ok(())
    }

    fn stripe_api(&self) -> &str {
        self.endpoints
            .stripe_api
            .as_deref()
            .unwrap_or(STRIPE_API)
            .trim_end_matches('/')
    }

    fn paddle_api(&self, integration: &IntegrationRecord) -> String {
        let base = match (
            self.endpoints.paddle_api.as_deref(),
            integration.options.get("environment").map(String::as_str),
        ) {
            (Some(fixed), _) => fixed,
            (None, Some("sandbox")) => PADDLE_SANDBOX,
            (None, _) => PADDLE_LIVE,
        };
        base.trim_end_matches('/').to_owned()
    }

    /// Stores a notification that failed verification, in the capped ring.
    async fn keep_unverified(&self, record: NotificationRecord) -> Result<Receipt, ServiceError> {
        let receipt = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let id = store::payments::insert_unverified(tx, &record)?;
                    Ok::<_, ServiceError>(receipt(id, &record))
                })
            })
            .await?;
        Ok(Receipt {
            status: 400,
            receipt,
        })
    }

    /// Stores a notification that stopped before the transaction that applies notices.
    async fn keep(&self, record: NotificationRecord, status: u16) -> Result<Receipt, ServiceError> {
        let receipt = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let id = store::payments::insert_notification(tx, &record)?;
                    Ok::<_, ServiceError>(receipt(id, &record))
                })
            })
            .await?;
        Ok(Receipt { status, receipt })
    }

    async fn replace(
        &self,
        id: u64,
        record: NotificationRecord,
        status: u16,
    ) -> Result<Receipt, ServiceError> {
        let receipt = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    store::payments::put_notification(tx, id, &record)?;
                    Ok::<_, ServiceError>(receipt(id, &record))
                })
            })
            .await?;
        Ok(Receipt { status, receipt })
    }

    /// Received notifications, newest first.
    pub async fn notifications(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<NotificationPage, ServiceError> {
        let limit = limit.clamp(1, 200);
        let (rows, next_before) = self
            .store
            .run(move |s| s.read(|tx| store::payments::notifications(tx, before, limit)))
            .await?;
        Ok(NotificationPage {
            notifications: rows
                .into_iter()
                .map(|(id, r)| notification_view(id, r))
                .collect(),
            next_before,
        })
    }

    /// Every provider's settings.
    pub async fn integrations(&self) -> Result<Vec<IntegrationView>, ServiceError> {
        let records = self
            .store
            .run(|s| {
                s.read(|tx| {
                    Provider::ALL
                        .into_iter()
                        .map(|p| Ok((p, store::payments::integration(tx, p)?.unwrap_or_default())))
                        .collect::<Result<Vec<_>, store::StoreError>>()
                })
            })
            .await?;
        Ok(records
            .into_iter()
            .map(|(p, r)| self.integration_view(p, &r))
            .collect())
    }

    /// One provider's settings.
    pub async fn integration(&self, provider: Provider) -> Result<IntegrationView, ServiceError> {
        let record = self.settings_of(provider).await?;
        Ok(self.integration_view(provider, &record))
    }

    fn integration_view(&self, provider: Provider, record: &IntegrationRecord) -> IntegrationView {
        IntegrationView {
            provider,
            label: provider.label().to_owned(),
            enabled: record.enabled,
            hook_url: format!("{}{}", self.public_url, provider.hook_path()),
            secrets: record.secrets.iter().map(|s| hint(s)).collect(),
            api_key: record.api_key.as_deref().map(hint),
            // Options an earlier build accepted and this one does not (api_base, an address
            // as verify_url) are not shown, so saving the form drops them.
            options: record
                .options
                .iter()
                .filter(|(k, v)| {
                    option_help(provider).iter().any(|(name, _)| name == k)
                        && check_value(k, v).is_ok()
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            option_help: option_help(provider)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Changes a provider's settings; the fields left out keep their values.
    pub async fn update_integration(
        &self,
        provider: Provider,
        update: IntegrationUpdate,
        actor: Actor,
        now: Timestamp,
    ) -> Result<IntegrationView, ServiceError> {
        if let Some(options) = &update.options {
            check_options(provider, options)?;
        }
        let record = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let before = store::payments::integration(tx, provider)?.unwrap_or_default();
                    let mut after = before.clone();
                    if let Some(enabled) = update.enabled {
                        after.enabled = enabled;
                    }
                    if let Some(secrets) = update.secrets {
                        after.secrets = merge_secrets(provider, &before.secrets, secrets)?;
                    }
                    if let Some(key) = update.api_key {
                        let key = key.trim().to_owned();
                        after.api_key = (!key.is_empty()).then_some(key);
                    }
                    if let Some(options) = update.options {
                        after.options = options
                            .into_iter()
                            .map(|(k, v)| (k, v.trim().to_owned()))
                            .filter(|(_, v)| !v.is_empty())
                            .collect();
                    }
                    if after.enabled
                        && provider == Provider::Paypal
                        && !after.options.contains_key("receiver_email")
                    {
                        return Err(ServiceError::invalid(
                            "options",
                            "set receiver_email to your PayPal account's email before enabling PayPal: payments to anyone else must be refused",
                        ));
                    }
                    if after.enabled && after.secrets.is_empty() && provider != Provider::Paypal {
                        return Err(ServiceError::invalid(
                            "secrets",
                            format!(
                                "{} notifications are signed: set the signing secret before enabling them",
                                provider.label()
                            ),
                        ));
                    }
                    after.updated_at = Some(now);
                    store::payments::put_integration(tx, provider, &after)?;
                    // The audit log shows what changed, never a secret.
                    let shown = |r: &IntegrationRecord| {
                        serde_json::json!({
                            "enabled": r.enabled,
                            "secrets": r.secrets.iter().map(|s| hint(s)).collect::<Vec<_>>(),
                            "api_key": r.api_key.as_deref().map(hint),
                            "options": r.options,
                        })
                    };
                    record_audit(
                        tx,
                        &actor,
                        "integration.update",
                        provider.as_str(),
                        Some(&shown(&before)),
                        Some(&shown(&after)),
                        now,
                    )?;
                    Ok::<_, ServiceError>(after)
                })
            })
            .await?;
        Ok(self.integration_view(provider, &record))
    }

    /// Checks a provider's set-up from end to end, for the admin's Test button.
    ///
    /// Signed providers: a notification of type `dropgate.test`, signed with the first
    /// secret the way the provider signs, is posted to the public webhook URL — so the URL
    /// (and any proxy in front) reaches this server and the secret checks out; it shows up
    /// in the list as "nothing to do". PayPal: its verification endpoint must answer an
    /// empty message with `INVALID`. Stripe also checks the API key against Stripe's API.
    pub async fn test(&self, provider: Provider, now: Timestamp) -> Result<String, ServiceError> {
        let integration = self.settings_of(provider).await?;
        if !integration.enabled {
            return Err(ServiceError::Conflict(format!(
                "{} notifications are off: turn them on and save first",
                provider.label()
            )));
        }
        if provider == Provider::Paypal {
            return match self.verify_paypal(&integration, b"").await {
                Err(Problem::Refused(e)) if e.contains("INVALID") => Ok(
                    "PayPal's verification endpoint answers (INVALID for an empty message, as it should)".into(),
                ),
                Ok(()) => Err(ServiceError::Conflict(
                    "the verification endpoint answered VERIFIED to an empty message: it is not PayPal's".into(),
                )),
                Err(problem) => Err(ServiceError::Conflict(problem.to_string())),
            };
        }
        let mut said = Vec::new();
        if provider == Provider::Stripe {
            said.push(self.check_stripe_key(&integration).await?);
        }
        let secret = integration.secrets.first().cloned().unwrap_or_default();
        let (body, headers) = test_notification(provider, &secret, now);
        let url = format!("{}{}", self.public_url, provider.hook_path());
        let answer = self
            .client
            .post(&url, &headers, body, Duration::from_secs(15))
            .await
            .map_err(|e| {
                ServiceError::Conflict(format!("the webhook URL {url} could not be reached: {e}"))
            })?;
        if !answer.is_success() {
            return Err(ServiceError::Conflict(format!(
                "the webhook URL {url} answered HTTP {}: {}",
                answer.status,
                answer.excerpt(300)
            )));
        }
        said.push(format!(
            "a test notification signed with your secret reached {url} and was accepted"
        ));
        Ok(said.join("; "))
    }

    /// Stripe: the API key can read Checkout Sessions.
    async fn check_stripe_key(
        &self,
        integration: &IntegrationRecord,
    ) -> Result<String, ServiceError> {
        let Some(key) = integration.api_key.as_deref() else {
            return Ok("no API key is set: name the products in each session's metadata as dropgate_products".into());
        };
        let url = format!("{}/v1/checkout/sessions?limit=1", self.stripe_api());
        match self.client.get(&url, key, Duration::from_secs(15)).await {
            Ok(answer) if answer.is_success() => {
                Ok("Stripe accepts the API key and it can read Checkout Sessions".into())
            }
            Ok(answer) => Err(ServiceError::Conflict(format!(
                "Stripe refused the API key (HTTP {}): {}",
                answer.status,
                answer.excerpt(300)
            ))),
            Err(e) => Err(ServiceError::Conflict(format!(
                "Stripe's API could not be reached: {e}"
            ))),
        }
    }

    /// A product's provider ids and price.
    pub async fn mappings(&self, product: &str) -> Result<ProductMappings, ServiceError> {
        let product = parse_product(product)?;
        let shown = product.clone();
        let (exists, record) = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    Ok((
                        store::catalog::product(tx, &product)?.is_some(),
                        store::payments::mapping(tx, &product)?,
                    ))
                })
            })
            .await?;
        if !exists {
            return Err(ServiceError::NotFound(format!(
                "there is no product with the id {shown}"
            )));
        }
        let record = record.unwrap_or_default();
        Ok(mappings_view(&record))
    }

    /// Replaces a product's provider ids and price. An id can sell only one product.
    pub async fn set_mappings(
        &self,
        product: &str,
        mappings: ProductMappings,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ProductMappings, ServiceError> {
        let product = parse_product(product)?;
        let price = mappings
            .price
            .as_ref()
            .map(Price::parse)
            .transpose()
            .map_err(|e| ServiceError::invalid("price", e))?;
        let mut ids = BTreeMap::new();
        for provider in Provider::ALL {
            let mut list = Vec::new();
            for id in mappings.ids(provider) {
                let id = id.trim();
                if id.is_empty() {
                    continue;
                }
                if id.len() > 128 || id.chars().any(char::is_control) {
                    return Err(ServiceError::invalid(
                        "mappings",
                        format!(
                            "a {} id has at most 128 printable characters",
                            provider.label()
                        ),
                    ));
                }
                if !list.iter().any(|l: &String| l == id) {
                    list.push(id.to_owned());
                }
            }
            if !list.is_empty() {
                ids.insert(provider, list);
            }
        }
        let record = MappingRecord { ids, price };
        let saved = record.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    if store::catalog::product(tx, &product)?.is_none() {
                        return Err(ServiceError::NotFound(format!(
                            "there is no product with the id {product}"
                        )));
                    }
                    for (provider, list) in &record.ids {
                        for id in list {
                            if let Some(other) =
                                store::payments::mapping_owner(tx, *provider, id, &product)?
                            {
                                return Err(ServiceError::Conflict(format!(
                                    "the {} id {id} already sells the product {other}",
                                    provider.label()
                                )));
                            }
                        }
                    }
                    let before = store::payments::mapping(tx, &product)?.unwrap_or_default();
                    store::payments::put_mapping(tx, &product, &record)?;
                    record_audit(
                        tx,
                        &actor,
                        "product.mappings",
                        product.as_str(),
                        Some(&mappings_view(&before)),
                        Some(&mappings_view(&record)),
                        now,
                    )?;
                    Ok(())
                })
            })
            .await?;
        Ok(mappings_view(&saved))
    }
}

/// A header value as kept: at most [`HEADER_VALUE_LIMIT`] bytes, cut at a character.
fn cut_header(value: &str) -> String {
    let mut end = value.len().min(HEADER_VALUE_LIMIT);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// A notification of the test event type, signed the way `provider` signs.
fn test_notification(
    provider: Provider,
    secret: &str,
    now: Timestamp,
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    use base64::Engine;
    use hmac::Mac;
    let secs = now.unix_millis() / 1000;
    let id = format!("dropgate-test-{}", now.unix_millis());
    let body = match provider {
        Provider::Stripe => {
            serde_json::json!({"id": id, "type": notice::TEST_EVENT, "data": {"object": {}}})
        }
        Provider::Lemonsqueezy => {
            serde_json::json!({"meta": {"event_name": notice::TEST_EVENT}, "data": {"id": id, "attributes": {}}})
        }
        Provider::Paddle => {
            serde_json::json!({"event_id": id, "event_type": notice::TEST_EVENT, "data": {}})
        }
        Provider::Shopify => serde_json::json!({"id": id}),
        Provider::Generic | Provider::Paypal => {
            serde_json::json!({"event_id": id, "type": notice::TEST_EVENT})
        }
    };
    let body = serde_json::to_vec(&body).expect("JSON values serialise");
    let mac = |parts: &[&[u8]]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes()
    };
    let mut headers = vec![("content-type", "application/json".to_owned())];
    match provider {
        Provider::Stripe => headers.push((
            "stripe-signature",
            format!(
                "t={secs},v1={}",
                hex::encode(mac(&[secs.to_string().as_bytes(), b".", &body]))
            ),
        )),
        Provider::Paddle => headers.push((
            "paddle-signature",
            format!(
                "ts={secs};h1={}",
                hex::encode(mac(&[secs.to_string().as_bytes(), b":", &body]))
            ),
        )),
        Provider::Lemonsqueezy => headers.push(("x-signature", hex::encode(mac(&[&body])))),
        Provider::Shopify => {
            headers.push((
                "x-shopify-hmac-sha256",
                base64::engine::general_purpose::STANDARD.encode(mac(&[&body])),
            ));
            headers.push(("x-shopify-topic", "dropgate/test".to_owned()));
            headers.push(("x-shopify-webhook-id", id.clone()));
        }
        Provider::Generic | Provider::Paypal => {
            if let Ok(key) = WebhookSecret::parse(secret) {
                headers.push(("webhook-id", id.clone()));
                headers.push(("webhook-timestamp", secs.to_string()));
                headers.push(("webhook-signature", key.sign(&id, secs, &body)));
            }
        }
    }
    (body, headers)
}

/// Why a notification was not verified.
#[derive(Debug, thiserror::Error)]
enum Problem {
    /// Not from the provider (bad signature, INVALID).
    #[error("{0}")]
    Refused(String),
    /// Could not be checked now (PayPal did not answer): the provider should send it again.
    #[error("{0}")]
    Unreachable(String),
}

fn receipt(id: u64, record: &NotificationRecord) -> HookReceipt {
    HookReceipt {
        notification_id: Some(id),
        outcome: record.outcome.as_str().to_owned(),
        detail: record.detail.clone(),
        order_id: record.order,
    }
}

/// What applying a notice came to.
struct Applied {
    outcome: Outcome,
    detail: String,
    order: Option<OrderId>,
    /// Whether the event id counts as done: a later copy is a duplicate. Not for outcomes
    /// that Reprocess may change (an unmapped product, a refused receiver).
    mark_seen: bool,
}

impl Applied {
    fn done(outcome: Outcome, detail: impl Into<String>, order: Option<OrderId>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
            order,
            mark_seen: true,
        }
    }

    fn open(outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
            order: None,
            mark_seen: false,
        }
    }
}

/// Deduplicates and applies a notice inside the caller's transaction.
#[allow(clippy::too_many_lines)] // the one place a notice meets its payment: read top to bottom
fn apply(
    tx: &WriteTransaction,
    (mailer, key): (&Mailer, &DownloadKey),
    provider: Provider,
    options: &BTreeMap<String, String>,
    notice: &Notice,
    now: Timestamp,
) -> Result<Applied, ServiceError> {
    if let Some(first) = store::payments::event_seen(tx, provider, &notice.event_id)? {
        let order = store::payments::notification(tx, first)?.and_then(|n| n.order);
        return Ok(Applied {
            mark_seen: false,
            ..Applied::done(
                Outcome::Duplicate,
                format!(
                    "the same event arrived before as notification {first}; nothing was done again"
                ),
                order,
            )
        });
    }
    if notice.test {
        return Ok(Applied::done(
            Outcome::Test,
            format!(
                "a test notification from {} ({}): stored, no order made and no mail sent",
                provider.label(),
                notice.event_type
            ),
            None,
        ));
    }
    let Some(kind) = notice.kind else {
        return Ok(Applied::done(
            Outcome::Ignored,
            format!("Dropgate does nothing on {}", notice.event_type),
            None,
        ));
    };
    if let Some(refusal) = receiver_refusal(options, notice) {
        return Ok(Applied::open(Outcome::Rejected, refusal));
    }
    let payment = store::payments::payment(tx, provider, &notice.payment_id)?;
    let order = match payment.as_ref().and_then(|p| p.order) {
        Some(o) => Some(o),
        None => order_of_transaction(tx, provider, &notice.payment_id)?,
    };
    let mut payment = payment.unwrap_or_default();
    let mut refunded_now = None;
    let mut kind = kind;
    if kind == PaymentKind::Refunded
        && let Some(refund) = &notice.refund
    {
        match refund_step(tx, options, notice, refund, &payment, order)? {
            RefundStep::Counted(applied) => return Ok(applied),
            RefundStep::Partial { so_far, detail } => {
                return record_partial_refund(
                    tx, provider, notice, refund, payment, order, so_far, detail, now,
                );
            }
            RefundStep::Revoke { so_far } => {
                refunded_now = so_far;
                if let Some(id) = &refund.id {
                    payment.refund_ids.push(id.clone());
                }
            }
        }
        kind = PaymentKind::Refunded;
    }
    let (decision, status) = decide(payment.status, order.is_some(), kind);
    let actor = Actor::Payment(provider);
    let applied = match decision {
        PaymentDecision::Create(order_status) => {
            let refunded = payment.refunded.as_ref().and_then(MoneyRecord::money);
            match create_order(
                tx,
                (mailer, key),
                provider,
                options,
                notice,
                order_status,
                refunded,
                now,
            )? {
                Ok(applied) => applied,
                Err(unapplied) => return Ok(unapplied),
            }
        }
        PaymentDecision::Move(to) => {
            let id = order.expect("decide moves only an existing order");
            let current = store::orders::order(tx, id)?
                .ok_or_else(|| ServiceError::Internal(format!("order {id} missing")))?;
            if current.status == to {
                Applied::done(
                    Outcome::Ignored,
                    format!("order {id} is already {to}"),
                    Some(id),
                )
            } else if let Err(e) = current.status.transition(to) {
                Applied::done(
                    Outcome::Ignored,
                    format!("order {id} was left as it is: {e}"),
                    Some(id),
                )
            } else {
                let change = Change {
                    status: Some(to),
                    refunded: refunded_now,
                    ..Change::default()
                };
                update_in(tx, mailer, key, id, change, &actor, now)?;
                let money = refunded_now
                    .map(|m| format!(", {m} refunded"))
                    .unwrap_or_default();
                Applied::done(
                    Outcome::OrderChanged,
                    format!(
                        "order {id} is now {to} ({}{money})",
                        kind.as_str().replace('_', " ")
                    ),
                    Some(id),
                )
            }
        }
        PaymentDecision::Remember => Applied::done(
            Outcome::Recorded,
            format!(
                "the payment is remembered as {}: no order exists for it yet, and a later payment notice will not give access",
                kind.as_str().replace('_', " ")
            ),
            None,
        ),
        PaymentDecision::Nothing(reason) => Applied::done(Outcome::Ignored, reason, order),
    };
    if status.is_some() || refunded_now.is_some() {
        payment.status = status.or(payment.status);
        payment.order = applied.order.or(order);
        if let Some(so_far) = refunded_now {
            payment.refunded = Some(MoneyRecord::of(so_far));
        }
        store::payments::put_payment(tx, provider, &notice.payment_id, &payment)?;
    }
    Ok(applied)
}

/// The order a provider's transaction ID names: an order made by this provider's
/// notification, or one made by hand or through the API with that ID, never an order of
/// another provider's equal ID.
fn order_of_transaction(
    tx: &WriteTransaction,
    provider: Provider,
    transaction: &str,
) -> Result<Option<OrderId>, ServiceError> {
    let Some(id) = store::orders::order_by_transaction(tx, transaction)? else {
        return Ok(None);
    };
    let of_provider = store::orders::order(tx, id)?
        .is_some_and(|o| o.provider.as_deref().is_none_or(|p| p == provider.as_str()));
    Ok(of_provider.then_some(id))
}

/// What a refund notification comes to.
enum RefundStep {
    /// Nothing to do (counted before, no money named): the notification's outcome.
    Counted(Applied),
    /// Less than the whole payment, and the store keeps access on partial refunds.
    Partial { so_far: Money, detail: String },
    /// The whole payment (or a partial one where the store revokes): refund the order.
    Revoke { so_far: Option<Money> },
}

/// Decides a refund by its money: the sum refunded so far against what was paid.
fn refund_step(
    tx: &WriteTransaction,
    options: &BTreeMap<String, String>,
    notice: &Notice,
    refund: &Refund,
    payment: &PaymentRecord,
    order: Option<OrderId>,
) -> Result<RefundStep, ServiceError> {
    if let Some(id) = &refund.id
        && payment.refund_ids.contains(id)
    {
        return Ok(RefundStep::Counted(Applied::done(
            Outcome::Duplicate,
            format!("the refund {id} was counted before; nothing was done again"),
            order,
        )));
    }
    let order_record = order
        .map(|id| store::orders::order(tx, id))
        .transpose()?
        .flatten();
    let before = payment
        .refunded
        .as_ref()
        .and_then(MoneyRecord::money)
        .or_else(|| order_record.as_ref().and_then(OrderRecord::refunded));
    let so_far = match (refund.amount, before) {
        (None, before) => before,
        (Some(amount), None) => Some(amount),
        (Some(amount), Some(before)) if refund.cumulative => amount.max(before).or(Some(amount)),
        (Some(amount), Some(before)) => Some(before.plus(amount).ok_or_else(|| {
            ServiceError::invalid(
                "refund",
                format!(
                    "a refund in {} of a payment in {}",
                    amount.currency(),
                    before.currency()
                ),
            )
        })?),
    };
    let paid = order_record
        .as_ref()
        .and_then(OrderRecord::amount)
        .or(notice.total);
    // What was paid unknown (an order from before amounts were kept): a refund is taken as
    // whole, as it always was.
    let whole = refund.full
        || match (so_far, paid) {
            (Some(so_far), Some(paid)) => {
                so_far.currency() == paid.currency() && so_far.minor() >= paid.minor()
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
    if whole
        || options
            .get("partial_refunds")
            .is_some_and(|v| v == "revoke")
    {
        return Ok(RefundStep::Revoke { so_far });
    }
    let Some(so_far) = so_far else {
        return Ok(RefundStep::Counted(Applied::done(
            Outcome::Ignored,
            "the refund names no amount of money (a restock or a note): nothing changes",
            order,
        )));
    };
    let of = paid.map(|p| format!(" of {p}")).unwrap_or_default();
    Ok(RefundStep::Partial {
        so_far,
        detail: format!("a partial refund: {so_far} refunded so far{of}; access is kept"),
    })
}

/// Records a partial refund that keeps access: on the payment, and on its order if there
/// is one yet.
#[allow(clippy::too_many_arguments)] // one step of `apply`, with its state
fn record_partial_refund(
    tx: &WriteTransaction,
    provider: Provider,
    notice: &Notice,
    refund: &Refund,
    mut payment: PaymentRecord,
    order: Option<OrderId>,
    so_far: Money,
    detail: String,
    now: Timestamp,
) -> Result<Applied, ServiceError> {
    payment.refunded = Some(MoneyRecord::of(so_far));
    payment.order = payment.order.or(order);
    if let Some(id) = &refund.id {
        payment.refund_ids.push(id.clone());
    }
    store::payments::put_payment(tx, provider, &notice.payment_id, &payment)?;
    let Some(id) = order else {
        return Ok(Applied::done(
            Outcome::Recorded,
            format!("{detail}; no order exists for the payment yet, and its order will show it"),
            None,
        ));
    };
    let before = store::orders::order(tx, id)?
        .ok_or_else(|| ServiceError::Internal(format!("order {id} missing")))?;
    let mut after = before.clone();
    after.refunded = Some(MoneyRecord::of(so_far));
    after.updated_at = now;
    store::orders::put_order(tx, id, &after, Some(&before))?;
    record_audit(
        tx,
        &Actor::Payment(provider),
        "order.partial_refund",
        &id.to_string(),
        before.refunded().map(Money::to_wire).as_ref(),
        Some(&so_far.to_wire()),
        now,
    )?;
    Ok(Applied::done(
        Outcome::OrderChanged,
        format!("order {id}: {detail}"),
        Some(id),
    ))
}

/// Creates the order of a payment's first notification, or says why it cannot be
/// created yet (`Err`: kept open for Reprocess, the payment not remembered).
#[allow(clippy::too_many_arguments)] // one step of `apply`, with its state
fn create_order(
    tx: &WriteTransaction,
    (mailer, key): (&Mailer, &DownloadKey),
    provider: Provider,
    options: &BTreeMap<String, String>,
    notice: &Notice,
    order_status: domain::OrderStatus,
    refunded: Option<Money>,
    now: Timestamp,
) -> Result<Result<Applied, Applied>, ServiceError> {
    let cart = cart_of(tx, provider, notice)?;
    if cart.lines.is_empty() {
        let why = if cart.unmapped.is_empty() {
            "the notification names no product".to_owned()
        } else {
            format!(
                "{}: map it on the product, then Reprocess",
                cart.unmapped.join("; ")
            )
        };
        return Ok(Err(Applied::open(Outcome::NeedsMapping, why)));
    }
    if !cart.unmapped.is_empty() && options.get("unmapped_items").is_some_and(|v| v == "hold") {
        return Ok(Err(Applied::open(
            Outcome::NeedsMapping,
            format!(
                "{}: this store holds a cart until every item is mapped (unmapped_items = hold); map it, then Reprocess",
                cart.unmapped.join("; ")
            ),
        )));
    }
    if provider == Provider::Paypal
        && let Some(mismatch) = price_mismatch(tx, &cart, notice.total)?
    {
        return Ok(Err(Applied::open(Outcome::Rejected, mismatch)));
    }
    let Some(email) = notice.email.clone() else {
        return Ok(Err(Applied::open(
            Outcome::Rejected,
            "the notification carries no buyer email address",
        )));
    };
    let valid = match validate(NewOrder {
        email,
        name: notice.name.chars().take(200).collect(),
        product_ids: cart.lines.iter().map(|(p, _)| p.to_string()).collect(),
        transaction_id: Some(notice.payment_id.clone()),
        status: Some(order_status.as_str().to_owned()),
        // A language Dropgate does not ship falls back to the store's; it never refuses a sale.
        language: notice
            .language
            .as_deref()
            .and_then(domain::Language::from_tag)
            .map(|l| l.as_str().to_owned()),
        amount: notice.total.map(Money::to_wire),
    }) {
        Ok(v) => v.made_by(provider).refunded(refunded),
        Err(e) => return Ok(Err(Applied::open(Outcome::Rejected, e.to_string()))),
    };
    let actor = Actor::Payment(provider);
    let (view, _) = create_in(tx, mailer, key, valid, OrderSource::Webhook, &actor, now)?;
    let ignored = if cart.unmapped.is_empty() {
        String::new()
    } else {
        format!(
            "; ignored (sell no product here): {}",
            cart.unmapped.join("; ")
        )
    };
    let paid = notice.total.map(|t| format!(", {t}")).unwrap_or_default();
    Ok(Ok(Applied::done(
        Outcome::OrderCreated,
        format!(
            "order {} created ({}{paid}) for {}{ignored}",
            view.order_id, view.status, view.email
        ),
        Some(view.order_id),
    )))
}

/// PayPal: a payment to another account is not a sale of this store.
fn receiver_refusal(options: &BTreeMap<String, String>, notice: &Notice) -> Option<String> {
    let allowed = options.get("receiver_email")?;
    let receiver = notice.receiver.as_deref().unwrap_or("");
    let ok = allowed
        .split(',')
        .map(str::trim)
        .any(|a| !a.is_empty() && a.eq_ignore_ascii_case(receiver.trim()));
    (!ok).then(|| {
        format!(
            "the payment went to {receiver:?}, not to this store's PayPal account ({allowed}); no order was made"
        )
    })
}

/// A notice's purchase as this store sees it.
struct Cart {
    /// The products it sells here, each with what its line cost when the provider says.
    lines: Vec<(ProductId, Option<Money>)>,
    /// Why each other item is not delivered (not mapped, no such product).
    unmapped: Vec<String>,
    /// How many lines are not delivered (shipping lines, other goods).
    other_lines: usize,
}

/// The Dropgate products of a notice, and the items that sell none.
fn cart_of(
    tx: &WriteTransaction,
    provider: Provider,
    notice: &Notice,
) -> Result<Cart, ServiceError> {
    let mut cart = Cart {
        lines: Vec::new(),
        unmapped: Vec::new(),
        other_lines: 0,
    };
    for id in &notice.products {
        match ProductId::parse(id) {
            Ok(p) if store::catalog::product(tx, &p)?.is_some() => cart.lines.push((p, None)),
            _ => {
                cart.unmapped
                    .push(format!("the product {id:?} does not exist"));
                cart.other_lines += 1;
            }
        }
    }
    for item in &notice.items {
        let mut found = None;
        for id in &item.ids {
            if let Some(p) = store::payments::mapped_product(tx, provider, id)? {
                found = Some(p);
                break;
            }
        }
        if let Some(p) = found {
            cart.lines.push((p, item.paid));
        } else {
            cart.other_lines += 1;
            cart.unmapped.push(if item.ids.is_empty() {
                "a line with no item number".to_owned()
            } else {
                format!(
                    "the {} id {} is not mapped to a product",
                    provider.label(),
                    item.ids.join(" / ")
                )
            });
        }
    }
    Ok(cart)
}

/// PayPal buttons and carts can be edited by the buyer. Once any product of a cart has a
/// price, every product in it must have one in the cart's currency, and what was paid for
/// them must be their sum: the lines' own amounts (`mc_gross_N`) when PayPal names them,
/// else the payment's total (at least the sum when the cart also has other lines, such as
/// shipping).
fn price_mismatch(
    tx: &WriteTransaction,
    cart: &Cart,
    total: Option<Money>,
) -> Result<Option<String>, ServiceError> {
    let mut prices = Vec::new();
    for (product, _) in &cart.lines {
        let price = store::payments::mapping(tx, product)?
            .and_then(|m| m.price)
            .and_then(|(hundredths, currency)| {
                Money::parse(&domain::payment::format_amount(hundredths), &currency).ok()
            });
        prices.push((product, price));
    }
    if prices.iter().all(|(_, p)| p.is_none()) {
        return Ok(None);
    }
    let Some(total) = total else {
        return Ok(Some(
            "the notification does not say what was paid, and the cart's products have prices; no order was made".into(),
        ));
    };
    let mut expected = Money::zero(total.currency());
    for (product, price) in &prices {
        let Some(price) = price else {
            return Ok(Some(format!(
                "the product {product} has no price, but another product in the cart has one: set a price on every product sold with PayPal; no order was made"
            )));
        };
        let Some(sum) = expected.plus(*price) else {
            return Ok(Some(format!(
                "the cart was paid in {} but the product {product} costs {price}; no order was made",
                total.currency()
            )));
        };
        expected = sum;
    }
    let lines: Option<Vec<Money>> = cart.lines.iter().map(|(_, paid)| *paid).collect();
    let (paid, fits) = match lines {
        Some(lines) => {
            let sum = lines
                .into_iter()
                .try_fold(Money::zero(total.currency()), Money::plus);
            (sum, sum == Some(expected))
        }
        None if cart.other_lines == 0 => (Some(total), total == expected),
        None => (Some(total), total.minor() >= expected.minor()),
    };
    if fits {
        return Ok(None);
    }
    let paid = paid.map_or_else(
        || "an amount in another currency".to_owned(),
        |p| p.to_string(),
    );
    Ok(Some(format!(
        "the payment for the products is {paid} but they cost {expected}; no order was made"
    )))
}

fn check_options(
    provider: Provider,
    options: &BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    let known = option_help(provider);
    for (name, value) in options {
        if name == "api_base" {
            return Err(ServiceError::invalid(
                "options",
                "api_base cannot be set here: Dropgate calls the provider's own API with your secret key. A test server is set only with the server's --stripe-api-base or --paddle-api-base flag",
            ));
        }
        if !known.iter().any(|(k, _)| k == name) {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(ServiceError::invalid(
                "options",
                if names.is_empty() {
                    format!("{} takes no options", provider.label())
                } else {
                    format!(
                        "{name} is not an option of {}; it takes {}",
                        provider.label(),
                        names.join(", ")
                    )
                },
            ));
        }
        check_value(name, value).map_err(|e| ServiceError::invalid("options", e))?;
    }
    Ok(())
}

/// Whether an option's value is one it takes.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    let value = value.trim();
    let ok = match name {
        "partial_refunds" => matches!(value, "" | "revoke" | "keep"),
        "unmapped_items" => matches!(value, "" | "ignore" | "hold"),
        "verify_timeout_secs" => value.parse::<u64>().is_ok_and(|t| (1..=60).contains(&t)),
        "verify_url" | "environment" => matches!(value, "" | "live" | "sandbox"),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match name {
        "verify_url" => format!(
            "verify_url is live or sandbox, not {value:?}: IPNs are verified only by PayPal itself (a test server is set with the server's --paypal-verify-url flag)"
        ),
        _ => format!("{name}: {value:?} is not a valid value"),
    })
}

/// An `http://` or `https://` URL with a host.
pub(crate) fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// New secrets, where `…abcd` stands for the existing secret that ends so.
fn merge_secrets(
    provider: Provider,
    existing: &[String],
    given: Vec<String>,
) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for secret in given {
        let secret = secret.trim().to_owned();
        if secret.is_empty() {
            continue;
        }
        let resolved = if secret.starts_with('…') {
            existing
                .iter()
                .find(|e| hint(e) == secret)
                .cloned()
                .ok_or_else(|| {
                    ServiceError::invalid("secrets", format!("no current secret ends as {secret}"))
                })?
        } else {
            if secret.len() > 256 || secret.chars().any(char::is_control) {
                return Err(ServiceError::invalid(
                    "secrets",
                    "a secret has at most 256 printable characters",
                ));
            }
            if provider == Provider::Generic {
                WebhookSecret::parse(&secret).map_err(|e| ServiceError::invalid("secrets", e))?;
            }
            secret
        };
        if !out.contains(&resolved) {
            out.push(resolved);
        }
    }
    if out.len() > 5 {
        return Err(ServiceError::invalid(
            "secrets",
            "at most 5 secrets at once (the new ones and those being rotated out)",
        ));
    }
    Ok(out)
}

fn parse_product(text: &str) -> Result<ProductId, ServiceError> {
    ProductId::parse(text)
        .map_err(|_| ServiceError::NotFound(format!("there is no product with the id {text}")))
}

fn mappings_view(record: &MappingRecord) -> ProductMappings {
    let mut view = ProductMappings {
        price: record.price.as_ref().map(|(amount, currency)| Price {
            amount: format_amount(*amount),
            currency: currency.clone(),
        }),
        ..ProductMappings::default()
    };
    for (provider, ids) in &record.ids {
        if let Some(list) = view.ids_mut(*provider) {
            list.clone_from(ids);
        }
    }
    view
}

fn notification_view(id: u64, r: NotificationRecord) -> NotificationView {
    NotificationView {
        id,
        provider: r.provider,
        received_at: r.received_at,
        processed_at: r.processed_at,
        verified: r.verified,
        event_id: r.event_id,
        event_type: r.event_type,
        kind: r.kind,
        payment_id: r.payment_id,
        outcome: r.outcome.as_str().to_owned(),
        detail: r.detail,
        order_id: r.order,
        can_reprocess: r.outcome.can_reprocess(),
        runs: r.runs,
        payload: String::from_utf8_lossy(&r.body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::Blobs;
    use crate::services::CatalogService;
    use domain::wire::NewProduct;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const KINDS: [&str; 4] = [
        "order.paid",
        "order.refunded",
        "order.disputed",
        "order.dispute_won",
    ];

    /// A store with one product and the generic hook on, on the in-memory store.
    async fn service(now: Timestamp) -> (PaymentService, Store) {
        let store = Store::in_memory().unwrap();
        let catalog = CatalogService::new(store.clone(), Blobs::in_memory(), 1 << 20);
        catalog
            .create(
                NewProduct {
                    product_id: "book".into(),
                    name: "Book".into(),
                    max_downloads: 3,
                    download_days: 31,
                    country_lock: false,
                },
                Actor::System,
                now,
            )
            .await
            .unwrap();
        let mailer = Mailer::for_tests(store.clone(), "https://dl.example.com").await;
        let payments = PaymentService::new(
            store.clone(),
            store.download_key().unwrap(),
            mailer,
            HttpClient::new().unwrap(),
            "https://dl.example.com",
            ProviderEndpoints::default(),
        );
        let update = IntegrationUpdate {
            enabled: Some(true),
            secrets: Some(vec![SECRET.into()]),
            ..IntegrationUpdate::default()
        };
        payments
            .update_integration(Provider::Generic, update, Actor::System, now)
            .await
            .unwrap();
        (payments, store)
    }

    /// The generic hook's notification `event` of `kind` about the one payment.
    fn incoming(event: u8, kind: &str, now: Timestamp) -> Incoming {
        let body = serde_json::to_vec(&serde_json::json!({
            "event_id": format!("ev-{event}-{kind}"),
            "type": kind,
            "email": "ann@example.com",
            "product_ids": ["book"],
            "transaction_id": "pay-1",
        }))
        .unwrap();
        let id = format!("msg-{event}");
        let secs = now.unix_millis() / 1000;
        let signature = WebhookSecret::parse(SECRET).unwrap().sign(&id, secs, &body);
        Incoming {
            provider: Provider::Generic,
            headers: vec![
                ("webhook-id".into(), id),
                ("webhook-timestamp".into(), secs.to_string()),
                ("webhook-signature".into(), signature),
            ],
            body,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Through the whole pipeline (verify, store, deduplicate, apply, on a real redb
        /// store): however the notifications of one payment are duplicated and reordered,
        /// there is at most one order, every answer is a 2xx, and once a refund has arrived
        /// the order never downloads again.
        #[test]
        fn duplicated_and_reordered_notifications_make_one_order_and_a_refund_sticks(
            sequence in proptest::collection::vec((0u8..3, 0usize..KINDS.len()), 1..10),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let now = crate::clock::now();
                let (payments, store) = service(now).await;
                let mut refunded = false;
                for (event, kind) in sequence {
                    let receipt = payments.receive(incoming(event, KINDS[kind], now), now).await.unwrap();
                    assert_eq!(receipt.status, 200, "{:?}", receipt.receipt);
                    refunded |= KINDS[kind] == "order.refunded";
                    let (count, order) = store
                        .read(|tx| {
                            let order = store::orders::order_by_transaction(tx, "pay-1")?
                                .map(|id| store::orders::order(tx, id))
                                .transpose()?
                                .flatten();
                            Ok((store::orders::order_count(tx)?, order))
                        })
                        .unwrap();
                    assert!(count <= 1, "{count} orders for one payment");
                    if refunded {
                        assert!(
                            order.is_none_or(|o| !o.status.allows_downloads()),
                            "a refunded payment still downloads"
                        );
                    }
                }
            });
        }
    }
}
