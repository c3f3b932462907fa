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
use crate::payments::notice::{self, Context, Notice};
use crate::payments::signature::{self, SignatureError, WebhookSecret};
use crate::store::orders::OrderSource;
use crate::store::payments::{
    IntegrationRecord, MappingRecord, NotificationOutcome as Outcome, NotificationRecord,
    PaymentRecord,
};
use crate::store::{self, Store};
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

/// The body of a notification that failed verification is kept only this long: it is a
/// stranger's post, kept as evidence, not data.
const UNVERIFIED_BODY_LIMIT: usize = 4096;

/// The options each provider takes, with what each does (shown in the admin).
fn option_help(provider: Provider) -> &'static [(&'static str, &'static str)] {
    match provider {
        Provider::Stripe => &[
            (
                "partial_refunds",
                "revoke or keep (default): what a partial refund does to access",
            ),
            (
                "api_base",
                "the Stripe API's address (default https://api.stripe.com)",
            ),
        ],
        Provider::Paypal => &[
            (
                "receiver_email",
                "your PayPal account's email(s), comma-separated: payments to anyone else are refused",
            ),
            (
                "verify_url",
                "live (default), sandbox, or the address IPNs are verified at",
            ),
            (
                "verify_timeout_secs",
                "how long one verification may take, 1 to 60 (default 10)",
            ),
        ],
        Provider::Lemonsqueezy => &[(
            "partial_refunds",
            "revoke or keep (default): what a partial refund does to access",
        )],
        Provider::Paddle | Provider::Shopify | Provider::Generic => &[],
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
    ) -> Self {
        Self {
            store,
            key,
            mailer,
            client,
            public_url: public_url.trim_end_matches('/').to_owned(),
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
                .map(str::to_owned),
            delivery_id: incoming
                .header("x-shopify-webhook-id")
                .or_else(|| incoming.header("webhook-id"))
                .map(str::to_owned),
            body: incoming.body.clone(),
            processed_at: now,
            runs: 1,
        };
        if let Err(problem) = self.verify(&integration, &incoming, now).await {
            let (outcome, status) = match &problem {
                Problem::Unreachable(_) => (Outcome::Failed, 503),
                Problem::Refused(_) => (Outcome::Unverified, 400),
            };
            if outcome == Outcome::Unverified {
                record.body.truncate(UNVERIFIED_BODY_LIMIT);
            }
            record.outcome = outcome;
            record.detail = problem.to_string();
            tracing::warn!(provider = provider.as_str(), problem = %record.detail, "payment notification not verified");
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
        let url = match integration.options.get("verify_url").map(String::as_str) {
            None | Some("" | "live") => PAYPAL_LIVE,
            Some("sandbox") => PAYPAL_SANDBOX,
            Some(url) => url,
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
            partial_refund_revokes: integration
                .options
                .get("partial_refunds")
                .is_some_and(|v| v == "revoke"),
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
                stripe_api(integration)
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
        Prepared::Ready(Box::new(notice))
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
            options: record.options.clone(),
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
        let url = format!("{}/v1/checkout/sessions?limit=1", stripe_api(integration));
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

/// Stripe's API address: the `api_base` option (a local fake in tests), else Stripe's.
fn stripe_api(integration: &IntegrationRecord) -> &str {
    integration
        .options
        .get("api_base")
        .map_or(STRIPE_API, String::as_str)
        .trim_end_matches('/')
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
    let order = match payment.and_then(|p| p.order) {
        Some(o) => Some(o),
        None => store::orders::order_by_transaction(tx, &notice.payment_id)?,
    };
    let (decision, status) = decide(payment.map(|p| p.status), order.is_some(), kind);
    let actor = Actor::Payment(provider);
    let applied = match decision {
        PaymentDecision::Create(order_status) => {
            match create_order(tx, (mailer, key), provider, notice, order_status, now)? {
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
                    ..Change::default()
                };
                update_in(tx, mailer, key, id, change, &actor, now)?;
                Applied::done(
                    Outcome::OrderChanged,
                    format!(
                        "order {id} is now {to} ({})",
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
    if let Some(status) = status {
        let record = PaymentRecord {
            status,
            order: applied.order.or(order),
        };
        store::payments::put_payment(tx, provider, &notice.payment_id, &record)?;
    }
    Ok(applied)
}

/// Creates the order of a payment's first notification, or says why it cannot be
/// created yet (`Err`: kept open for Reprocess, the payment not remembered).
fn create_order(
    tx: &WriteTransaction,
    (mailer, key): (&Mailer, &DownloadKey),
    provider: Provider,
    notice: &Notice,
    order_status: domain::OrderStatus,
    now: Timestamp,
) -> Result<Result<Applied, Applied>, ServiceError> {
    let products = match products_of(tx, provider, notice)? {
        Ok(products) => products,
        Err(unmapped) => return Ok(Err(Applied::open(Outcome::NeedsMapping, unmapped))),
    };
    if provider == Provider::Paypal
        && let Some(mismatch) = price_mismatch(tx, &products, notice.total.as_ref())?
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
        product_ids: products.iter().map(ToString::to_string).collect(),
        transaction_id: Some(notice.payment_id.clone()),
        status: Some(order_status.as_str().to_owned()),
        // A language Dropgate does not ship falls back to the store's; it never refuses a sale.
        language: notice
            .language
            .as_deref()
            .and_then(domain::Language::from_tag)
            .map(|l| l.as_str().to_owned()),
    }) {
        Ok(v) => v,
        Err(e) => return Ok(Err(Applied::open(Outcome::Rejected, e.to_string()))),
    };
    let actor = Actor::Payment(provider);
    let (view, _) = create_in(tx, mailer, key, valid, OrderSource::Webhook, &actor, now)?;
    Ok(Ok(Applied::done(
        Outcome::OrderCreated,
        format!(
            "order {} created ({}) for {}",
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

/// The Dropgate products of a notice, or which of its items are not mapped.
fn products_of(
    tx: &WriteTransaction,
    provider: Provider,
    notice: &Notice,
) -> Result<Result<Vec<ProductId>, String>, ServiceError> {
    let mut products = Vec::new();
    let mut unmapped = Vec::new();
    for id in &notice.products {
        match ProductId::parse(id) {
            Ok(p) if store::catalog::product(tx, &p)?.is_some() => products.push(p),
            _ => unmapped.push(format!("the product {id:?} does not exist")),
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
        match found {
            Some(p) => products.push(p),
            None => unmapped.push(format!(
                "the {} id {} is not mapped to a product",
                provider.label(),
                item.ids.join(" / ")
            )),
        }
    }
    if !unmapped.is_empty() {
        return Ok(Err(format!(
            "{}: map it on the product, then Reprocess",
            unmapped.join("; ")
        )));
    }
    if products.is_empty() {
        return Ok(Err("the notification names no product".into()));
    }
    Ok(Ok(products))
}

/// PayPal buttons can be edited by the buyer: when every product bought has a price set,
/// the payment must be their sum in their currency.
fn price_mismatch(
    tx: &WriteTransaction,
    products: &[ProductId],
    paid: Option<&(i64, String)>,
) -> Result<Option<String>, ServiceError> {
    let mut sum = 0i64;
    let mut currency: Option<String> = None;
    for product in products {
        let Some((amount, cur)) = store::payments::mapping(tx, product)?.and_then(|m| m.price)
        else {
            return Ok(None);
        };
        if currency.as_ref().is_some_and(|c| *c != cur) {
            return Ok(None);
        }
        sum += amount;
        currency = Some(cur);
    }
    let Some(currency) = currency else {
        return Ok(None);
    };
    let expected = format!("{} {currency}", format_amount(sum));
    Ok(match paid {
        Some((amount, cur)) if *amount == sum && *cur == currency => None,
        Some((amount, cur)) => Some(format!(
            "the payment is {} {cur} but the products cost {expected}; no order was made",
            format_amount(*amount)
        )),
        None => Some(format!(
            "the notification does not say what was paid; the products cost {expected}"
        )),
    })
}

fn check_options(
    provider: Provider,
    options: &BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    let known = option_help(provider);
    for (name, value) in options {
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
        let value = value.trim();
        let ok = match name.as_str() {
            "partial_refunds" => matches!(value, "" | "revoke" | "keep"),
            "verify_timeout_secs" => value.parse::<u64>().is_ok_and(|t| (1..=60).contains(&t)),
            "verify_url" => matches!(value, "" | "live" | "sandbox") || is_http_url(value),
            "api_base" => value.is_empty() || is_http_url(value),
            _ => true,
        };
        if !ok {
            return Err(ServiceError::invalid(
                "options",
                format!("{name}: {value:?} is not a valid value"),
            ));
        }
    }
    Ok(())
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
