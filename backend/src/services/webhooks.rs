//! Events out: the seller's endpoints, the deliveries queued for them (by the transaction
//! that made the change, see `store::webhooks::emit`), Resend, and the worker that posts
//! them signed the Standard Webhooks way and retries with back-off for days.
//!
//! Each attempt first moves the delivery's next attempt past a lease in its own commit,
//! then posts, then commits the outcome; a crash in between sends the same message again
//! (same `webhook-id`, same bytes) after the lease, which receivers deduplicate.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::payments::client::HttpClient;
use crate::payments::signature::WebhookSecret;
use crate::store::webhooks::{
    DeliveryAttempt, DeliveryRecord, DeliveryState, EVENT_TYPES, EndpointRecord,
};
use crate::store::{self, Store, StoreError};
use domain::Timestamp;
use domain::mail::RetryPolicy;
use domain::payment::{
    DeliveryAttemptView, DeliveryPage, DeliveryView, NewWebhookEndpoint, WebhookEndpointView, hint,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The latest attempts kept per delivery.
const ATTEMPTS_KEPT: usize = 20;

/// Whether some endpoint listens for an event: a flag the hot download path reads for
/// free, kept in step by [`WebhookService`] when endpoints come and go.
#[derive(Clone, Debug, Default)]
pub struct Subscription(Arc<AtomicBool>);

impl Subscription {
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Endpoints and deliveries.
#[derive(Clone, Debug)]
pub struct WebhookService {
    store: Store,
    completions: Subscription,
}

impl WebhookService {
    /// The service, with the `download.completed` flag loaded from the endpoints.
    pub async fn load(store: Store) -> Result<Self, ServiceError> {
        let service = Self {
            store,
            completions: Subscription::default(),
        };
        service.refresh().await?;
        Ok(service)
    }

    /// The flag the download service reads (see [`DownloadService::announcing`]).
    ///
    /// [`DownloadService::announcing`]: super::DownloadService::announcing
    pub fn completions(&self) -> Subscription {
        self.completions.clone()
    }

    async fn refresh(&self) -> Result<(), ServiceError> {
        let on = self
            .store
            .run(|s| s.read(|tx| store::webhooks::subscribed(tx, "download.completed")))
            .await?;
        self.completions.0.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub async fn endpoints(&self) -> Result<Vec<WebhookEndpointView>, ServiceError> {
        let rows = self
            .store
            .run(|s| s.read(store::webhooks::endpoints))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, e)| endpoint_view(id, e, false))
            .collect())
    }

    /// Registers an endpoint; the answer is the only one that shows the whole secret.
    pub async fn add_endpoint(
        &self,
        input: NewWebhookEndpoint,
        actor: Actor,
        now: Timestamp,
    ) -> Result<WebhookEndpointView, ServiceError> {
        let url = input.url.trim().to_owned();
        if url.len() > 2000 || !super::payments::is_http_url(&url) {
            return Err(ServiceError::invalid(
                "url",
                "the endpoint is an http:// or https:// address",
            ));
        }
        let mut events = Vec::new();
        for event in input.events {
            let event = event.trim().to_owned();
            if !EVENT_TYPES.contains(&event.as_str()) {
                return Err(ServiceError::invalid(
                    "events",
                    format!("{event:?} is not one of {}", EVENT_TYPES.join(", ")),
                ));
            }
            if !events.contains(&event) {
                events.push(event);
            }
        }
        if events.is_empty() {
            return Err(ServiceError::invalid(
                "events",
                format!("pick at least one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        let secret = match input
            .secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => WebhookSecret::parse(s).map_err(|e| ServiceError::invalid("secret", e))?,
            None => WebhookSecret::generate(),
        };
        let record = EndpointRecord {
            url,
            events,
            secret: secret.expose(),
            created_at: now,
        };
        let (id, record) = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    // Blocks are announced from the download log onwards from here: an
                    // endpoint does not receive the shop's history of blocks.
                    if record.events.iter().any(|e| e == "grant.blocked")
                        && !store::webhooks::subscribed(tx, "grant.blocked")?
                    {
                        store::webhooks::set_blocked_cursor(tx, store::events::last_seq(tx)?)?;
                    }
                    let id = store::webhooks::insert_endpoint(tx, &record)?;
                    record_audit(
                        tx,
                        &actor,
                        "webhook.add",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({"url": record.url, "events": record.events})),
                        now,
                    )?;
                    Ok::<_, StoreError>((id, record))
                })
            })
            .await?;
        self.refresh().await?;
        Ok(endpoint_view(id, record, true))
    }

    pub async fn remove_endpoint(
        &self,
        id: u64,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let removed = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let Some(before) = store::webhooks::endpoint(tx, id)? else {
                        return Err(ServiceError::NotFound(format!(
                            "there is no webhook endpoint {id}"
                        )));
                    };
                    store::webhooks::remove_endpoint(tx, id, now)?;
                    record_audit(
                        tx,
                        &actor,
                        "webhook.remove",
                        &id.to_string(),
                        Some(&serde_json::json!({"url": before.url, "events": before.events})),
                        None::<&()>,
                        now,
                    )?;
                    Ok(())
                })
            })
            .await;
        self.refresh().await?;
        removed
    }

    /// Deliveries newest first.
    pub async fn deliveries(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DeliveryPage, ServiceError> {
        let limit = limit.clamp(1, 200);
        let page = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    let (rows, next_before) = store::webhooks::deliveries(tx, before, limit)?;
                    let urls: Vec<(u64, String)> = store::webhooks::endpoints(tx)?
                        .into_iter()
                        .map(|(id, e)| (id, e.url))
                        .collect();
                    Ok::<_, StoreError>(DeliveryPage {
                        deliveries: rows
                            .into_iter()
                            .map(|(id, d)| {
                                let url = urls
                                    .iter()
                                    .find(|(e, _)| *e == d.endpoint)
                                    .map(|(_, u)| u.clone());
                                delivery_view(id, d, url)
                            })
                            .collect(),
                        next_before,
                    })
                })
            })
            .await?;
        Ok(page)
    }

    /// Sends a delivery again now (a failed one gets a new retry period).
    pub async fn resend(&self, id: u64, actor: Actor, now: Timestamp) -> Result<(), ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let Some(before) = store::webhooks::delivery(tx, id)? else {
                        return Err(ServiceError::NotFound(format!("there is no delivery {id}")));
                    };
                    if store::webhooks::endpoint(tx, before.endpoint)?.is_none() {
                        return Err(ServiceError::Conflict(format!(
                            "the endpoint of delivery {id} was removed"
                        )));
                    }
                    let mut after = before.clone();
                    after.state = DeliveryState::Pending;
                    after.retry_from = now;
                    after.next_attempt_at = Some(now);
                    store::webhooks::put_delivery(tx, id, &after, Some(&before))?;
                    record_audit(
                        tx,
                        &actor,
                        "webhook.resend",
                        &id.to_string(),
                        None::<&()>,
                        None::<&()>,
                        now,
                    )?;
                    Ok(())
                })
            })
            .await
    }
}

fn endpoint_view(id: u64, e: EndpointRecord, whole_secret: bool) -> WebhookEndpointView {
    WebhookEndpointView {
        id,
        url: e.url,
        events: e.events,
        secret: if whole_secret {
            e.secret
        } else {
            hint(&e.secret)
        },
        created_at: e.created_at,
    }
}

fn delivery_view(id: u64, d: DeliveryRecord, url: Option<String>) -> DeliveryView {
    DeliveryView {
        id,
        message_id: DeliveryRecord::message_id(id),
        endpoint_id: d.endpoint,
        url,
        event_type: d.event_type,
        state: match d.state {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
        .to_owned(),
        created_at: d.created_at,
        next_attempt_at: d
            .next_attempt_at
            .filter(|_| d.state == DeliveryState::Pending),
        attempts: d
            .attempts
            .into_iter()
            .map(|a| DeliveryAttemptView {
                at: a.at,
                status: a.status,
                answer: a.answer,
                error: a.error,
            })
            .collect(),
        payload: String::from_utf8_lossy(&d.payload).into_owned(),
    }
}

/// Tuning of the delivery worker.
#[derive(Debug, Clone, Copy)]
pub struct WebhookPolicy {
    /// Back-off: 30 s doubling to 3 h, given up after 5 days by default.
    pub retry: RetryPolicy,
    /// One delivery's whole exchange.
    pub timeout: Duration,
    /// How long an attempt holds a delivery before it is due again (after a crash).
    pub lease: Duration,
    /// How often the worker looks at the due index.
    pub poll: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            retry: RetryPolicy {
                first_delay: Duration::from_secs(30),
                max_delay: Duration::from_secs(3 * 3600),
                give_up_after: Duration::from_secs(5 * 24 * 3600),
            },
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(500),
        }
    }
}

/// Posts due deliveries until the process ends.
#[derive(Debug)]
pub struct WebhookWorker {
    store: Store,
    client: HttpClient,
    policy: WebhookPolicy,
}

impl WebhookWorker {
    pub fn new(store: Store, client: HttpClient, policy: WebhookPolicy) -> Self {
        Self {
            store,
            client,
            policy,
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = announce_blocks(&self.store, crate::clock::now()).await {
                    tracing::error!(error = %e, "webhook worker: could not read the download log");
                }
                match self.deliver_due().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "webhook worker: store error; retrying"),
                }
                tokio::time::sleep(self.policy.poll).await;
            }
        })
    }

    /// Attempts every delivery due now (up to 32 at a time, concurrently); returns how
    /// many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = crate::clock::now();
        let due = self
            .store
            .run(move |s| s.read(|tx| store::webhooks::due(tx, now, 32)))
            .await?;
        let attempts = due.into_iter().map(|id| self.attempt(id));
        let done = futures::future::join_all(attempts).await;
        let mut count = 0;
        for outcome in done {
            count += usize::from(outcome?);
        }
        Ok(count)
    }

    async fn attempt(&self, id: u64) -> Result<bool, StoreError> {
        let lease = self.policy.lease;
        let claimed = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let now = crate::clock::now();
                    let Some(before) = store::webhooks::delivery(tx, id)? else {
                        return Ok(None);
                    };
                    if before.state != DeliveryState::Pending
                        || before.next_attempt_at.is_none_or(|t| t > now)
                    {
                        return Ok(None);
                    }
                    let Some(endpoint) = store::webhooks::endpoint(tx, before.endpoint)? else {
                        return Ok(None);
                    };
                    let mut after = before.clone();
                    after.next_attempt_at = Some(now.plus(lease));
                    store::webhooks::put_delivery(tx, id, &after, Some(&before))?;
                    Ok::<_, StoreError>(Some((after, endpoint)))
                })
            })
            .await?;
        let Some((delivery, endpoint)) = claimed else {
            return Ok(false);
        };
        let now = crate::clock::now();
        let attempt = self.post(id, &delivery, &endpoint, now).await;
        let retry = self.policy.retry;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let Some(before) = store::webhooks::delivery(tx, id)? else {
                        return Ok(());
                    };
                    let after = settled(&before, attempt, &retry, crate::clock::now());
                    match after.state {
                        DeliveryState::Delivered => tracing::info!(delivery = id, event = %after.event_type, "webhook delivered"),
                        DeliveryState::Failed => tracing::warn!(delivery = id, event = %after.event_type, "webhook given up"),
                        DeliveryState::Pending => tracing::info!(delivery = id, next = ?after.next_attempt_at, "webhook not delivered; will retry"),
                    }
                    store::webhooks::put_delivery(tx, id, &after, Some(&before))
                })
            })
            .await?;
        Ok(true)
    }

    async fn post(
        &self,
        id: u64,
        delivery: &DeliveryRecord,
        endpoint: &EndpointRecord,
        now: Timestamp,
    ) -> DeliveryAttempt {
        let secret = match WebhookSecret::parse(&endpoint.secret) {
            Ok(s) => s,
            Err(e) => {
                return DeliveryAttempt {
                    at: now,
                    status: None,
                    answer: String::new(),
                    error: Some(format!("the endpoint's secret is unusable: {e}")),
                };
            }
        };
        let message_id = DeliveryRecord::message_id(id);
        let timestamp = now.unix_millis() / 1000;
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", message_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                secret.sign(&message_id, timestamp, &delivery.payload),
            ),
        ];
        match self
            .client
            .post(
                &endpoint.url,
                &headers,
                delivery.payload.clone(),
                self.policy.timeout,
            )
            .await
        {
            Ok(answer) => DeliveryAttempt {
                at: now,
                status: Some(answer.status),
                answer: answer.excerpt(500),
                error: (!answer.is_success())
                    .then(|| format!("the endpoint answered HTTP {}", answer.status)),
            },
            Err(e) => DeliveryAttempt {
                at: now,
                status: None,
                answer: String::new(),
                error: Some(e),
            },
        }
    }
}

/// Turns the blocks in the download log since the last look into `grant.blocked` events.
///
/// A block is written by a download batch, which is made durable by the download journal
/// and has no business with webhooks; the log is the record of it. Reading the log from a
/// cursor kept in the same transaction as the deliveries it queues announces every block
/// exactly once, whatever crashes in between.
pub async fn announce_blocks(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    store
        .run(move |s| {
            let pending = s.read(|tx| {
                if !store::webhooks::subscribed(tx, "grant.blocked")? {
                    return Ok(false);
                }
                let cursor = store::webhooks::blocked_cursor(tx)?;
                Ok(store::events::last_seq(tx)? > cursor)
            })?;
            if !pending {
                return Ok(0);
            }
            s.write(|tx| {
                let cursor = store::webhooks::blocked_cursor(tx)?;
                let events = store::events::events_after(tx, cursor, 1000)?;
                let mut announced = 0;
                for (seq, event) in &events {
                    if event.outcome.attempt() != domain::AttemptOutcome::SecondCountry {
                        continue;
                    }
                    let Some(grant) = store::grants::grant(tx, event.grant)? else {
                        continue;
                    };
                    let order = store::orders::order(tx, grant.order_id)?;
                    let data = serde_json::json!({
                        "grant_id": event.grant,
                        "order_id": grant.order_id,
                        "product_id": grant.product_id,
                        "email": order.map(|o| o.email),
                        "first": grant.locked,
                        "blocked_by": {"at": event.at, "ip": event.ip, "country": event.country},
                        "event": seq,
                    });
                    announced += store::webhooks::emit(tx, "grant.blocked", &data, now)?;
                }
                if let Some((last, _)) = events.last() {
                    store::webhooks::set_blocked_cursor(tx, *last)?;
                }
                Ok(announced)
            })
        })
        .await
}

/// The delivery after an attempt: a pure decision.
fn settled(
    before: &DeliveryRecord,
    attempt: DeliveryAttempt,
    retry: &RetryPolicy,
    now: Timestamp,
) -> DeliveryRecord {
    let mut after = before.clone();
    let failed = attempt.error.is_some();
    after.attempts.push(attempt);
    if after.attempts.len() > ATTEMPTS_KEPT {
        after.attempts.remove(0);
    }
    if !failed {
        after.state = DeliveryState::Delivered;
        after.next_attempt_at = None;
        return after;
    }
    let tries = u32::try_from(
        after
            .attempts
            .iter()
            .filter(|a| a.at >= before.retry_from)
            .count(),
    )
    .unwrap_or(u32::MAX);
    if let Some(at) = retry.next_attempt(before.retry_from, tries, now) {
        after.next_attempt_at = Some(at);
    } else {
        after.state = DeliveryState::Failed;
        after.next_attempt_at = None;
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(at: Timestamp) -> DeliveryRecord {
        DeliveryRecord {
            endpoint: 1,
            event_type: "order.confirmed".into(),
            payload: b"{}".to_vec(),
            created_at: at,
            retry_from: at,
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(at),
        }
    }

    fn failure(at: Timestamp) -> DeliveryAttempt {
        DeliveryAttempt {
            at,
            status: Some(503),
            answer: "down".into(),
            error: Some("the endpoint answered HTTP 503".into()),
        }
    }

    #[test]
    fn failures_back_off_then_give_up_and_success_ends_it() {
        let policy = WebhookPolicy::default().retry;
        let t0 = Timestamp::from_unix_millis(1_800_000_000_000);
        let one = settled(&delivery(t0), failure(t0), &policy, t0);
        assert_eq!(one.state, DeliveryState::Pending);
        assert_eq!(one.next_attempt_at, Some(t0.plus(Duration::from_secs(30))));
        let t1 = t0.plus(Duration::from_secs(30));
        let two = settled(&one, failure(t1), &policy, t1);
        assert_eq!(two.next_attempt_at, Some(t1.plus(Duration::from_secs(60))));
        let late = t0.plus(Duration::from_secs(6 * 24 * 3600));
        let given_up = settled(&two, failure(late), &policy, late);
        assert_eq!(
            (given_up.state, given_up.next_attempt_at),
            (DeliveryState::Failed, None)
        );
        let ok = DeliveryAttempt {
            error: None,
            status: Some(204),
            ..failure(t1)
        };
        let delivered = settled(&two, ok, &policy, t1);
        assert_eq!(delivered.state, DeliveryState::Delivered);
        assert_eq!(delivered.attempts.len(), 3);
    }
}
