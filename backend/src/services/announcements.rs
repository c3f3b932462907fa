//! Telling past buyers about a product update: one mail per buyer with the seller's
//! message and fresh links, queued through the outbox at the rate the seller chose (a
//! launch to 10 000 buyers must not trip the mail provider's limits), visible and
//! stoppable while it runs, and carried on after a restart where it stopped.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use super::orders::renew_links;
use crate::auth::download_key::DownloadKey;
use crate::mail::Mailer;
use crate::store::announcements::{self, AnnouncementRecord, AnnouncementState};
use crate::store::{self, Store};
use domain::wire::{AnnouncementView, NewAnnouncement};
use domain::{OrderStatus, ProductId, Timestamp};
use redb::WriteTransaction;
use std::sync::Arc;
use std::time::Duration;

/// Longest message, in characters.
const MAX_MESSAGE: usize = 2000;
/// Highest rate a seller can set, mails per minute.
const MAX_PER_MINUTE: u32 = 10_000;
/// Most mails queued in one transaction (a fast rate after a pause catches up in parts).
const MAX_PER_BATCH: u32 = 200;
/// How far back unused sending time counts: after a pause (a restart, a slow disk) the
/// worker catches up at most this much at once instead of sending a burst.
const CATCH_UP: Duration = Duration::from_secs(1);
/// How long the worker sleeps when nothing is sending (a new announcement wakes it).
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// Announcements and the worker that sends them.
#[derive(Clone, Debug)]
pub struct AnnouncementService {
    store: Store,
    key: DownloadKey,
    mailer: Mailer,
    wake: Arc<tokio::sync::Notify>,
}

impl AnnouncementService {
    pub fn new(store: Store, key: DownloadKey, mailer: Mailer) -> Self {
        Self {
            store,
            key,
            mailer,
            wake: Arc::default(),
        }
    }

    /// Starts an announcement to every past buyer of `product` (confirmed orders, links
    /// not revoked): the first mail goes at once, the others at `per_minute`.
    pub async fn create(
        &self,
        product: &str,
        input: NewAnnouncement,
        actor: Actor,
        now: Timestamp,
    ) -> Result<AnnouncementView, ServiceError> {
        let product = ProductId::parse(product).map_err(ServiceError::NotFound)?;
        let message = input.message.trim().replace("\r\n", "\n");
        if message.is_empty()
            || message.chars().count() > MAX_MESSAGE
            || message
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ServiceError::invalid(
                "message",
                format!("write a message of 1 to {MAX_MESSAGE} characters for your buyers"),
            ));
        }
        if !(1..=MAX_PER_MINUTE).contains(&input.per_minute) {
            return Err(ServiceError::invalid(
                "per_minute",
                format!("send between 1 and {MAX_PER_MINUTE} mails per minute"),
            ));
        }
        let view = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    if store::catalog::product(tx, &product)?.is_none() {
                        return Err(ServiceError::NotFound(format!(
                            "there is no product with the id {product}"
                        )));
                    }
                    let buyers = announcements::past_buyers(tx, &product)?;
                    if buyers.is_empty() {
                        return Err(ServiceError::Conflict(format!(
                            "nobody has bought {product} yet, so there is no one to tell"
                        )));
                    }
                    let record = AnnouncementRecord {
                        product_id: product.clone(),
                        message,
                        per_minute: input.per_minute,
                        buyers: u32::try_from(buyers.len()).unwrap_or(u32::MAX),
                        sent: 0,
                        skipped: 0,
                        state: AnnouncementState::Sending,
                        created_at: now,
                        next_at: now,
                        finished_at: None,
                    };
                    let id = announcements::insert(tx, &record, buyers)?;
                    let shown = view(id, &record);
                    record_audit(
                        tx,
                        &actor,
                        "announcement.create",
                        product.as_str(),
                        None::<&()>,
                        Some(&shown),
                        now,
                    )?;
                    Ok(shown)
                })
            })
            .await?;
        self.wake.notify_one();
        Ok(view)
    }

    /// Every announcement of a product (or of all), newest first.
    pub async fn list(&self, product: Option<&str>) -> Result<Vec<AnnouncementView>, ServiceError> {
        let product = product
            .map(ProductId::parse)
            .transpose()
            .map_err(ServiceError::NotFound)?;
        let rows = self
            .store
            .run(move |s| s.read(|tx| announcements::list(tx, product.as_ref())))
            .await?;
        Ok(rows.iter().map(|(id, r)| view(*id, r)).collect())
    }

    /// Stops an announcement: the buyers not written to yet get nothing; mails already in
    /// the outbox still go.
    pub async fn stop(
        &self,
        id: u64,
        actor: Actor,
        now: Timestamp,
    ) -> Result<AnnouncementView, ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let before = announcements::announcement(tx, id)?.ok_or_else(|| {
                        ServiceError::NotFound(format!("there is no announcement {id}"))
                    })?;
                    if before.state != AnnouncementState::Sending {
                        return Err(ServiceError::Conflict(format!(
                            "announcement {id} is not sending any more"
                        )));
                    }
                    let mut after = before.clone();
                    after.skipped += announcements::drop_queue(tx, id)?;
                    after.state = AnnouncementState::Stopped;
                    after.finished_at = Some(now);
                    announcements::put(tx, id, &after)?;
                    let shown = view(id, &after);
                    record_audit(
                        tx,
                        &actor,
                        "announcement.stop",
                        after.product_id.as_str(),
                        Some(&view(id, &before)),
                        Some(&shown),
                        now,
                    )?;
                    Ok(shown)
                })
            })
            .await
    }

    /// Queues every mail that is due at `now`, each with its buyer's fresh links in the
    /// same transaction that takes the buyer off the queue (so a crash neither loses nor
    /// doubles one). Returns when the next mail is due, if any announcement is sending.
    pub async fn send_due(&self, now: Timestamp) -> Result<Option<Timestamp>, ServiceError> {
        let key = self.key.clone();
        let mailer = self.mailer.clone();
        let (queued, next) = self
            .store
            .run(move |s| {
                let sending = s.read(announcements::sending)?;
                let mut queued = 0;
                let mut next: Option<Timestamp> = None;
                for (id, record) in sending {
                    if record.next_at > now {
                        next = Some(next.map_or(record.next_at, |n| n.min(record.next_at)));
                        continue;
                    }
                    let (sent, after) = s.write(|tx| send_batch(tx, &key, &mailer, id, now))?;
                    queued += sent;
                    if let Some(after) = after {
                        next = Some(next.map_or(after, |n| n.min(after)));
                    }
                }
                Ok::<_, ServiceError>((queued, next))
            })
            .await?;
        if queued > 0 {
            self.mailer.wake();
        }
        Ok(next)
    }

    /// Runs [`Self::send_due`] whenever something is due, until `stopped` turns true.
    pub fn spawn(
        self,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let now = crate::clock::now();
                let wait = match self.send_due(now).await {
                    Ok(Some(next)) => next.since(now),
                    Ok(None) => IDLE_CHECK,
                    Err(e) => {
                        tracing::error!(error = %e, "announcements could not be sent; retrying");
                        Duration::from_secs(5)
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.wake.notified() => {}
                    _ = stopped.changed() => {}
                }
                if *stopped.borrow() {
                    return;
                }
            }
        })
    }
}

/// One transaction of an announcement: queues the mails due at `now` (at most
/// [`MAX_PER_BATCH`]); returns how many, and when the next is due (`None` once done).
fn send_batch(
    tx: &WriteTransaction,
    key: &DownloadKey,
    mailer: &Mailer,
    id: u64,
    now: Timestamp,
) -> Result<(u32, Option<Timestamp>), ServiceError> {
    let Some(mut record) = announcements::announcement(tx, id)? else {
        return Ok((0, None));
    };
    let interval = Duration::from_micros(60_000_000 / u64::from(record.per_minute.max(1)));
    let mut queued = 0;
    while record.state == AnnouncementState::Sending
        && record.next_at <= now
        && queued < MAX_PER_BATCH
    {
        let Some((_, recipient)) = announcements::pop_recipient(tx, id)? else {
            record.state = AnnouncementState::Done;
            record.finished_at = Some(now);
            break;
        };
        // The buyer as the order says now (an address edited since gets the mail), and
        // only links still theirs (a refund since revokes).
        let mut buyer = None;
        for grant in &recipient.grants {
            if let Some(g) = store::grants::grant(tx, *grant)?
                && let Some(order) = store::orders::order(tx, g.order_id)?
                && order.status == OrderStatus::Confirmed
                && g.revoked_at.is_none()
            {
                buyer = Some(order);
                break;
            }
        }
        let links = match &buyer {
            Some(_) => renew_links(tx, key, mailer, &recipient.grants, |g| {
                g.revoked_at.is_none()
            })?,
            None => Vec::new(),
        };
        match buyer {
            Some(order) if !links.is_empty() => {
                mailer.queue_product_update(
                    tx,
                    &order.email,
                    &order.name,
                    links,
                    &record.message,
                    order.language,
                    now,
                )?;
                record.sent += 1;
                queued += 1;
            }
            _ => record.skipped += 1,
        }
        let earliest = now.minus(CATCH_UP);
        record.next_at = record.next_at.max(earliest).plus(interval);
    }
    if record.state == AnnouncementState::Sending && announcements::queue_is_empty(tx, id)? {
        record.state = AnnouncementState::Done;
        record.finished_at = Some(now);
    }
    announcements::put(tx, id, &record)?;
    let next = (record.state == AnnouncementState::Sending).then_some(record.next_at);
    Ok((queued, next))
}

fn view(id: u64, r: &AnnouncementRecord) -> AnnouncementView {
    AnnouncementView {
        announcement_id: id,
        product_id: r.product_id.clone(),
        message: r.message.clone(),
        per_minute: r.per_minute,
        buyers: r.buyers,
        sent: r.sent,
        skipped: r.skipped,
        state: match r.state {
            AnnouncementState::Sending => "sending",
            AnnouncementState::Stopped => "stopped",
            AnnouncementState::Done => "done",
        }
        .to_owned(),
        created_at: r.created_at,
        finished_at: r.finished_at,
    }
}
