//! The password desk: find grants by password, order ID, order number, transaction ID or
//! email; see every use; reset, unblock, expire, resend (rotate); send a product to any
//! address. Every action is audited.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use super::orders::OrderService;
use super::settings::SettingsService;
use crate::auth::download_key::DownloadKey;
use crate::mail::{About, Mailer};
use crate::store;
use crate::store::grants::Grant;
use crate::store::grants::Sighting;
use crate::store::orders::OrderSource;
use crate::store::{Store, StoreError};
use domain::mail::MailKind;
use domain::wire::{
    CreatedOrder, FileUsage, GrantDetail, GrantLookup, IssuedGrant, NewOrder, SendPassword,
    SightingView, UseView,
};
use domain::{DownloadPassword, Email, GrantId, OrderId, ProductId, Timestamp};
use redb::{ReadTransaction, WriteTransaction};
use std::time::Duration;

/// A desk action on one grant that changes only the grant (resend also mails, and
/// [`DeskService::resend`] answers with the new password instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantAction {
    /// A fresh window and budget: [`domain::Grant::reset`].
    Reset,
    /// [`domain::Grant::unblock`].
    Unblock,
    /// [`domain::Grant::expire`].
    Expire,
    /// Downloads start again from zero; the window stays: [`domain::Grant::reset_counts`].
    ResetCounts,
    /// This many more downloads of each file: [`domain::Grant::add_downloads`].
    AddDownloads(u32),
}

/// The most downloads one desk action adds.
pub const MAX_ADDED_DOWNLOADS: u32 = 1000;

impl GrantAction {
    /// The action's name in URLs and forms (`add-downloads` with its amount).
    pub fn parse(name: &str, downloads: Option<u32>) -> Result<Self, ServiceError> {
        match name {
            "reset" => Ok(Self::Reset),
            "unblock" => Ok(Self::Unblock),
            "expire" => Ok(Self::Expire),
            "reset-counts" => Ok(Self::ResetCounts),
            "add-downloads" => Self::add_downloads(downloads),
            _ => Err(ServiceError::invalid(
                "action",
                format!("there is no desk action {name}"),
            )),
        }
    }

    /// `+N downloads`, with N checked.
    pub fn add_downloads(downloads: Option<u32>) -> Result<Self, ServiceError> {
        match downloads {
            Some(n @ 1..=MAX_ADDED_DOWNLOADS) => Ok(Self::AddDownloads(n)),
            _ => Err(ServiceError::invalid(
                "downloads",
                format!("add between 1 and {MAX_ADDED_DOWNLOADS} downloads"),
            )),
        }
    }
}

/// The vendor's support desk.
#[derive(Clone, Debug)]
pub struct DeskService {
    store: Store,
    key: DownloadKey,
    orders: OrderService,
    settings: SettingsService,
}

impl DeskService {
    pub fn new(
        store: Store,
        key: DownloadKey,
        orders: OrderService,
        settings: SettingsService,
    ) -> Self {
        Self {
            store,
            key,
            orders,
            settings,
        }
    }

    /// Grants matching exactly one criterion, newest first.
    pub async fn lookup(
        &self,
        query: GrantLookup,
        now: Timestamp,
    ) -> Result<Vec<GrantDetail>, ServiceError> {
        let given = [
            &query.password,
            &query.order_id,
            &query.order_number,
            &query.transaction_id,
            &query.email,
        ]
        .iter()
        .filter(|v| v.as_deref().is_some_and(|t| !t.trim().is_empty()))
        .count();
        if given != 1 {
            return Err(ServiceError::invalid(
                "query",
                "search by exactly one of password, order_id, order_number, transaction_id or email",
            ));
        }
        let digest = match &query.password {
            Some(p) => Some(self.key.digest(
                &DownloadPassword::parse(p).map_err(|e| ServiceError::invalid("password", e))?,
            )),
            None => None,
        };
        let order_id = query
            .order_id
            .as_deref()
            .map(|t| {
                OrderId::parse(t).ok_or_else(|| {
                    ServiceError::invalid("order_id", "an order ID has exactly 7 digits")
                })
            })
            .transpose()?;
        let email = query
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| ServiceError::invalid("email", e))?;
        self.store
            .run(move |s| {
                s.read(|tx| {
                    let mut found: Vec<(GrantId, bool)> = Vec::new();
                    if let Some(d) = digest
                        && let Some(g) = store::grants::grant_by_digest(tx, &d)?
                    {
                        let current =
                            store::grants::grant(tx, g)?.is_some_and(|r| r.password_digest == d);
                        found.push((g, !current));
                    }
                    // Exactly one key is given (checked above), so "every key" is that key.
                    let orders = store::orders::orders_matching(
                        tx,
                        &store::orders::OrderKeys {
                            email: email.as_ref(),
                            order_id,
                            order_number: query.order_number.as_deref(),
                            transaction_id: query.transaction_id.as_deref(),
                        },
                    )?;
                    for o in orders {
                        if let Some(order) = store::orders::order(tx, o)? {
                            found.extend(order.grants.iter().map(|g| (*g, false)));
                        }
                    }
                    let mut details = found
                        .into_iter()
                        .map(|(g, replaced)| detail(tx, g, replaced, now))
                        .collect::<Result<Vec<_>, _>>()?;
                    details.sort_by_key(|d| std::cmp::Reverse(d.issued_at));
                    Ok(details)
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// One grant.
    pub async fn grant(&self, id: GrantId, now: Timestamp) -> Result<GrantDetail, ServiceError> {
        self.store
            .run(move |s| s.read(|tx| detail(tx, id, false, now)))
            .await
            .map_err(|e| match e {
                StoreError::Corrupt { kind: "grant", .. } => not_found(id),
                other => other.into(),
            })
    }

    /// Applies `action` to a grant, audited; answers with the grant as it is after.
    pub async fn act(
        &self,
        id: GrantId,
        action: GrantAction,
        actor: Actor,
        now: Timestamp,
    ) -> Result<GrantDetail, ServiceError> {
        match action {
            GrantAction::Reset => self.reset(id, actor, now).await,
            GrantAction::Unblock => self.unblock(id, actor, now).await,
            GrantAction::Expire => self.expire(id, actor, now).await,
            GrantAction::ResetCounts => {
                self.change(id, actor, now, "grant.reset_counts", |_, g| {
                    g.reset_counts();
                    Ok(())
                })
                .await
            }
            GrantAction::AddDownloads(extra) => {
                self.change(id, actor, now, "grant.add_downloads", move |_, g| {
                    g.add_downloads(extra)
                        .map_err(|refused| ServiceError::Conflict(refused.to_string()))
                })
                .await
            }
        }
    }

    /// A fresh window from now (the settings' reset window, 31 days unless changed; no end
    /// when the product has no time limit); ledger, lock and block cleared.
    pub async fn reset(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<GrantDetail, ServiceError> {
        let window = Duration::from_secs(u64::from(self.settings.current().reset_days) * 86_400);
        self.change(id, actor, now, "grant.reset", move |tx, g| {
            let timeless = match store::catalog::product(tx, &g.product_id)? {
                Some(product) => product.download_days == 0,
                // A product deleted since: keep what the grant had.
                None => g.valid_until.is_none(),
            };
            g.reset((!timeless).then_some(window), now);
            Ok(())
        })
        .await
    }

    /// Lifts the block and clears the lock; window and counts stay.
    pub async fn unblock(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<GrantDetail, ServiceError> {
        self.change(id, actor, now, "grant.unblock", |_, g| {
            g.unblock()
                .map_err(|refused| ServiceError::Conflict(refused.to_string()))
        })
        .await
    }

    /// Ends the grant now.
    pub async fn expire(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<GrantDetail, ServiceError> {
        self.change(id, actor, now, "grant.expire", move |_, g| {
            g.expire(now);
            Ok(())
        })
        .await
    }

    /// Rotates the password: the old link stops working, counts, window and lock stay.
    /// The buyer's mail with the new link is queued in the same transaction; the new
    /// password is also returned (for the API caller).
    pub async fn resend(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<IssuedGrant, ServiceError> {
        let password = super::orders::fresh_password();
        let digest = self.key.digest(&password);
        let url = self.orders.link(&password);
        let mailer = self.orders.mailer().clone();
        let mail_url = url.clone();
        let detail = self
            .change_then(
                id,
                actor,
                now,
                "grant.resend",
                move |_, g| {
                    g.rotate(digest);
                    Ok(())
                },
                move |tx, grant| {
                    let order = store::orders::order(tx, grant.order_id)?.ok_or_else(|| {
                        ServiceError::Internal(format!("order of grant {id} missing"))
                    })?;
                    let line = Mailer::link_line(tx, id, grant, mail_url)?;
                    let about = About {
                        order_id: grant.order_id,
                        order: &order,
                    };
                    mailer.queue_to_buyer(tx, MailKind::Resend, about, vec![line], now)?;
                    Ok(())
                },
            )
            .await?;
        self.orders.mailer().wake();
        Ok(IssuedGrant {
            grant_id: id,
            product_id: detail.product_id,
            url,
            password: password.display(),
        })
    }

    /// A complimentary confirmed order for one product, to any address.
    pub async fn send_password(
        &self,
        product: &str,
        input: SendPassword,
        actor: Actor,
        now: Timestamp,
    ) -> Result<CreatedOrder, ServiceError> {
        let product = ProductId::parse(product).map_err(ServiceError::NotFound)?;
        let order = NewOrder {
            email: input.email,
            name: input.name,
            product_ids: vec![product.to_string()],
            transaction_id: None,
            status: None,
            language: None,
            amount: None,
        };
        self.orders
            .create(order, OrderSource::Complimentary, actor, now)
            .await
            .map_err(|e| match e {
                ServiceError::Invalid {
                    field: "product_ids",
                    message,
                } => ServiceError::NotFound(message),
                other => other,
            })
    }

    async fn change(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
        action: &'static str,
        apply: impl FnOnce(&WriteTransaction, &mut Grant) -> Result<(), ServiceError> + Send + 'static,
    ) -> Result<GrantDetail, ServiceError> {
        self.change_then(id, actor, now, action, apply, |_, _| Ok(()))
            .await
    }

    /// [`Self::change`], then `then` with the changed grant in the same transaction.
    async fn change_then(
        &self,
        id: GrantId,
        actor: Actor,
        now: Timestamp,
        action: &'static str,
        apply: impl FnOnce(&WriteTransaction, &mut Grant) -> Result<(), ServiceError> + Send + 'static,
        then: impl FnOnce(&WriteTransaction, &Grant) -> Result<(), ServiceError> + Send + 'static,
    ) -> Result<GrantDetail, ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let before = store::grants::grant(tx, id)?.ok_or_else(|| not_found(id))?;
                    let mut after = before.clone();
                    apply(tx, &mut after)?;
                    store::grants::put_grant(tx, id, &after)?;
                    then(tx, &after)?;
                    record_audit(
                        tx,
                        &actor,
                        action,
                        &format!("grant:{id}"),
                        Some(&audit_view(&before)),
                        Some(&audit_view(&after)),
                        now,
                    )?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await?;
        self.grant(id, now).await
    }
}

fn not_found(id: GrantId) -> ServiceError {
    ServiceError::NotFound(format!("there is no grant {id}"))
}

/// What the audit log keeps of a grant (never password digests).
fn audit_view(g: &Grant) -> serde_json::Value {
    serde_json::json!({
        "valid_until": g.valid_until,
        "max_downloads": g.max_downloads,
        "locked": g.locked.as_ref().map(sighting),
        "blocked_by": g.blocked_by.as_ref().map(sighting),
        "delivered": g.ledger.iter().map(|l| l.delivered).sum::<u64>(),
        "passwords_replaced": g.replaced_digests.len(),
        "revoked_at": g.revoked_at,
    })
}

pub(super) fn sighting(s: &Sighting) -> SightingView {
    SightingView {
        at: s.at,
        ip: s.ip.to_string(),
        country: s.country.map(|c| c.to_string()),
    }
}

fn detail(
    tx: &ReadTransaction,
    id: GrantId,
    replaced: bool,
    now: Timestamp,
) -> Result<GrantDetail, StoreError> {
    let g = store::grants::grant(tx, id)?.ok_or(StoreError::Corrupt {
        kind: "grant",
        detail: format!("{id} missing"),
    })?;
    let order = store::orders::order(tx, g.order_id)?.ok_or(StoreError::Corrupt {
        kind: "order",
        detail: format!("of grant {id}"),
    })?;
    let product = store::catalog::product(tx, &g.product_id)?;
    let records = store::catalog::files_of(tx, product.as_ref())?;
    let sizes = store::catalog::sizes(&records);
    let files: Vec<FileUsage> = records
        .into_iter()
        .map(|(fid, f)| FileUsage {
            file_id: fid,
            downloads_used: g.used(fid, f.size),
            name: f.name,
        })
        .collect();
    let names: std::collections::HashMap<_, _> =
        files.iter().map(|f| (f.file_id, f.name.clone())).collect();
    let uses = store::events::grant_events(tx, id)?
        .into_iter()
        .map(|e| UseView {
            at: e.at,
            ip: e.ip.to_string(),
            country: e.country.map(|c| c.to_string()),
            file: e.file.map(|f| {
                names
                    .get(&f)
                    .cloned()
                    .unwrap_or_else(|| format!("file {f}"))
            }),
            bytes: e.bytes,
            outcome: e.outcome.attempt(),
            count: e.count,
            last_at: e.last_at,
        })
        .collect();
    let status = g.state(order.status, &sizes, now);
    Ok(GrantDetail {
        grant_id: id,
        order_id: g.order_id,
        order_number: order.order_number,
        transaction_id: order.transaction_id,
        email: order.email,
        name: order.name,
        product_id: g.product_id.clone(),
        status,
        replaced,
        issued_at: g.issued_at,
        valid_until: g.valid_until,
        max_downloads: g.max_downloads,
        files,
        locked: g.locked.as_ref().map(sighting),
        blocked_by: g.blocked_by.as_ref().map(sighting),
        uses,
    })
}
