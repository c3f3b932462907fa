//! Orders and their grants: creation with fresh passwords, search, edits under the status
//! state machine, refunds that revoke every grant at once.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::auth::download_key::DownloadKey;
use crate::mail::{About, Mailer};
use crate::store;
use crate::store::grants::Grant;
use crate::store::orders::{MoneyRecord, OrderRecord, OrderSource};
use crate::store::{Store, outbox};
use domain::Language;
use domain::mail::{LinkLine, MailKind};
use domain::password::RANDOM_BYTES;
use domain::payment::Provider;
use domain::wire::{
    CreatedOrder, GrantSummary, IssuedGrant, NewOrder, OrderPage, OrderPatch, OrderView,
};
use domain::{DownloadPassword, Email, GrantId, Money, OrderId, OrderStatus, ProductId, Timestamp};
use rand::{Rng, TryRngCore};
use redb::WriteTransaction;
use std::time::Duration;

/// Orders and grants.
#[derive(Clone, Debug)]
pub struct OrderService {
    store: Store,
    key: DownloadKey,
    mailer: Mailer,
}

/// How to find orders.
#[derive(Clone, Debug, Default)]
pub struct OrderQuery {
    pub email: Option<String>,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub transaction_id: Option<String>,
}

impl OrderService {
    pub fn new(store: Store, key: DownloadKey, mailer: Mailer) -> Self {
        Self { store, key, mailer }
    }

    /// The buyer's link for a password.
    pub fn link(&self, password: &DownloadPassword) -> String {
        self.mailer.link(password)
    }

    /// The mailer orders queue their mail with.
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn key(&self) -> &DownloadKey {
        &self.key
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Creates an order with one grant (and one fresh password) per product.
    pub async fn create(
        &self,
        input: NewOrder,
        source: OrderSource,
        actor: Actor,
        now: Timestamp,
    ) -> Result<CreatedOrder, ServiceError> {
        let order = validate(input)?;
        let key = self.key.clone();
        let mailer = self.mailer.clone();
        let (view, passwords) = self
            .store
            .run(move |s| s.write(|tx| create_in(tx, &mailer, &key, order, source, &actor, now)))
            .await?;
        self.mailer.wake();
        let issued = view
            .grants
            .iter()
            .zip(passwords)
            .map(|(g, p)| IssuedGrant {
                grant_id: g.grant_id,
                product_id: g.product_id.clone(),
                password: p.display(),
                url: self.link(&p),
            })
            .collect();
        Ok(CreatedOrder {
            order: view,
            issued,
        })
    }

    /// One order.
    pub async fn get(&self, id: OrderId) -> Result<OrderView, ServiceError> {
        let view = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    store::orders::order(tx, id)?
                        .map(|record| order_view_read(tx, id, &record))
                        .transpose()
                })
            })
            .await?;
        view.ok_or_else(|| order_not_found(id))
    }

    /// One page of all orders, newest first: at most `limit` (1 to 200) orders older than
    /// the order number `before`. Fast however many orders there are (see `order_page`).
    pub async fn page(
        &self,
        before: Option<String>,
        limit: usize,
    ) -> Result<OrderPage, ServiceError> {
        let limit = limit.clamp(1, 200);
        self.store
            .run(move |s| {
                s.read(|tx| {
                    let total = store::orders::order_count(tx)?;
                    let mut page = store::orders::order_page(tx, before.as_deref(), limit + 1)?;
                    let more = page.len() > limit;
                    page.truncate(limit);
                    let next_before = more
                        .then(|| page.last().map(|(_, o)| o.order_number.clone()))
                        .flatten();
                    let orders = page
                        .iter()
                        .map(|(id, o)| order_view_read(tx, *id, o))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(OrderPage {
                        orders,
                        total,
                        next_before,
                    })
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// Orders matching every given criterion (all of them when none is given, newest first).
    pub async fn search(&self, query: OrderQuery) -> Result<Vec<OrderView>, ServiceError> {
        let email = query
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| ServiceError::invalid("email", e))?;
        let order_id = query
            .order_id
            .as_deref()
            .map(|t| {
                OrderId::parse(t).ok_or_else(|| {
                    ServiceError::invalid("order_id", "an order ID has exactly 7 digits")
                })
            })
            .transpose()?;
        let ids = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    let keys = store::orders::OrderKeys {
                        email: email.as_ref(),
                        order_id,
                        order_number: query.order_number.as_deref(),
                        transaction_id: query.transaction_id.as_deref(),
                    };
                    if keys.is_empty() {
                        return Ok(store::orders::recent_orders(tx, 100)?
                            .into_iter()
                            .map(|(id, _)| id)
                            .collect());
                    }
                    store::orders::orders_matching(tx, &keys)
                })
            })
            .await?;
        let mut out = Vec::new();
        for id in ids {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }

    /// Edits email, name or status (state machine enforced; a refund revokes every grant).
    pub async fn update(
        &self,
        id: OrderId,
        patch: OrderPatch,
        actor: Actor,
        now: Timestamp,
    ) -> Result<OrderView, ServiceError> {
        let email = patch
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| ServiceError::invalid("email", e))?;
        let name = patch.name.as_deref().map(parse_person_name).transpose()?;
        let status = patch
            .status
            .as_deref()
            .map(|s| {
                OrderStatus::parse(s).ok_or_else(|| {
                    ServiceError::invalid(
                        "status",
                        "status is one of pending, on_hold, confirmed, refunded, cancelled",
                    )
                })
            })
            .transpose()?;
        let transaction_id = patch
            .transaction_id
            .as_deref()
            .map(parse_transaction_id)
            .transpose()?
            .map(Option::unwrap_or_default);
        let key = self.key.clone();
        let mailer = self.mailer.clone();
        let view = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    update_in(
                        tx,
                        &mailer,
                        &key,
                        id,
                        Change {
                            email,
                            name,
                            status,
                            transaction_id,
                            refunded: None,
                        },
                        &actor,
                        now,
                    )
                })
            })
            .await?;
        self.mailer.wake();
        Ok(view)
    }

    /// The self-service page: mails the buyer fresh links to every purchase of this
    /// address that can still download, or to the one order named (passwords rotated: old
    /// links stop working).
    /// Returns how many links were sent, for tests and logs only: the page must say the same
    /// whatever the answer, so that it never reveals whether an address is known.
    pub async fn self_service(
        &self,
        email: &Email,
        only: Option<OrderId>,
        language: Option<Language>,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let email = email.clone();
        let key = self.key.clone();
        let mailer = self.mailer.clone();
        let sent = self
            .store
            .run(move |s| {
                // Most requests name an address with nothing to renew (or one that is not
                // a buyer's): a read answers them without a durable commit.
                if s.read(|tx| live_orders(tx, &email, only, now))?.is_empty() {
                    return Ok(0);
                }
                s.write(|tx| {
                    let mut lines = Vec::new();
                    let mut name = String::new();
                    let mut order_language = None;
                    for (order, grants) in live_orders(tx, &email, only, now)? {
                        if name.is_empty() {
                            name.clone_from(&order.name);
                        }
                        order_language = order_language.or(order.language);
                        lines.extend(renew_links(tx, &key, &mailer, &grants, |_| true)?);
                    }
                    let sent = lines.len();
                    if sent > 0 {
                        let language = order_language.or(language);
                        mailer.queue_self_service(tx, &email, &name, lines, language, now)?;
                    }
                    Ok::<_, ServiceError>(sent)
                })
            })
            .await?;
        if sent > 0 {
            self.mailer.wake();
        }
        Ok(sent)
    }

    /// Refunds an order: status `refunded`, every grant revoked.
    pub async fn refund(
        &self,
        id: OrderId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<OrderView, ServiceError> {
        self.update(
            id,
            OrderPatch {
                status: Some("refunded".into()),
                ..OrderPatch::default()
            },
            actor,
            now,
        )
        .await
    }

    /// Moves the order's grant for `from` to the product `to` (same password, counts reset
    /// to the new product's files).
    pub async fn exchange(
        &self,
        id: OrderId,
        from: &str,
        to: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<OrderView, ServiceError> {
        let from =
            ProductId::parse(from).map_err(|m| ServiceError::invalid("from_product_id", m))?;
        let to = ProductId::parse(to).map_err(|m| ServiceError::invalid("to_product_id", m))?;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let order = store::orders::order(tx, id)?.ok_or_else(|| order_not_found(id))?;
                    let product = store::catalog::product(tx, &to)?.ok_or_else(|| {
                        ServiceError::invalid(
                            "to_product_id",
                            format!("there is no product with the id {to}"),
                        )
                    })?;
                    let mut found = None;
                    for g in &order.grants {
                        let grant = store::grants::grant(tx, *g)?
                            .ok_or_else(|| ServiceError::Internal(format!("grant {g} missing")))?;
                        if grant.product_id == from && grant.revoked_at.is_none() {
                            found = Some((*g, grant));
                            break;
                        }
                    }
                    let (gid, before) = found.ok_or_else(|| {
                        ServiceError::invalid(
                            "from_product_id",
                            format!("order {id} has no active grant for {from}"),
                        )
                    })?;
                    let mut after = before.clone();
                    after.exchange(to.clone(), product.rules());
                    store::grants::put_grant(tx, gid, &after)?;
                    record_audit(
                        tx,
                        &actor,
                        "order.exchange",
                        &id.to_string(),
                        Some(&from),
                        Some(&to),
                        now,
                    )?;
                    Ok(order_view(tx, id, &order)?)
                })
            })
            .await
    }
}

/// Creates an order with one grant (and one fresh password) per product inside the
/// caller's transaction: the order, its grants, its mail, its outgoing webhook and its
/// audit entry commit together. Returns the order and the clear passwords, in grant order.
pub(crate) fn create_in(
    tx: &WriteTransaction,
    mailer: &Mailer,
    key: &DownloadKey,
    order: ValidOrder,
    source: OrderSource,
    actor: &Actor,
    now: Timestamp,
) -> Result<(OrderView, Vec<DownloadPassword>), ServiceError> {
    let ValidOrder {
        email,
        name,
        products,
        transaction_id,
        status,
        language,
        amount,
        provider,
        refunded,
    } = order;
    if let Some(t) = &transaction_id
        && let Some(existing) = store::orders::order_by_transaction(tx, t)?
    {
        return Err(ServiceError::Conflict(format!(
            "order {existing} already has the transaction id {t}"
        )));
    }
    let order_id = unused_order_id(tx)?;
    let order_number = unused_order_number(tx, now)?;
    let mut grants = Vec::new();
    let mut lines = Vec::new();
    let mut passwords = Vec::new();
    for product_id in &products {
        let password = fresh_password();
        let (grant_id, line) = issue_grant(
            tx,
            mailer,
            key,
            order_id,
            product_id,
            &password,
            "product_ids",
            now,
            None,
        )?;
        lines.push(line);
        grants.push(grant_id);
        passwords.push(password);
    }
    let record = OrderRecord {
        order_number,
        transaction_id,
        email,
        name,
        status,
        source,
        grants,
        created_at: now,
        updated_at: now,
        language,
        amount: amount.map(MoneyRecord::of),
        refunded: refunded.map(MoneyRecord::of),
        confirmed_at: (status == OrderStatus::Confirmed).then_some(now),
        provider: provider.map(|p| p.as_str().to_owned()),
    };
    store::orders::put_order(tx, order_id, &record, None)?;
    if record.status == OrderStatus::Confirmed {
        queue_order_mail(mailer, tx, order_id, &record, lines, now)?;
    }
    let view = order_view(tx, order_id, &record)?;
    announce_status(tx, &view, now)?;
    record_audit(
        tx,
        actor,
        "order.create",
        &order_id.to_string(),
        None::<&()>,
        Some(&view),
        now,
    )?;
    Ok((view, passwords))
}

/// A sale brought in from another system's records.
#[derive(Debug)]
pub(crate) struct ImportedSale {
    pub email: Email,
    pub name: String,
    pub transaction_id: Option<String>,
    pub status: OrderStatus,
    /// The sale date: the order's date and number.
    pub sold_at: Timestamp,
    /// Where each grant's download window starts.
    pub window_from: Timestamp,
    /// Per grant: the product and, for the legacy script's records, the download ID the
    /// buyer already holds (else a fresh password).
    pub lines: Vec<(ProductId, Option<DownloadPassword>)>,
    /// What was paid and refunded, when the records say.
    pub amount: Option<Money>,
    pub refunded: Option<Money>,
}

/// Records an imported sale inside the caller's transaction, with the product's current
/// rules. Unlike [`create_in`] it keeps the sale's date, sends no webhook (the seller's
/// systems knew the sale) and mails the buyer only when `notify` (imported buyers already
/// hold links); the import writes one audit entry for the whole file.
pub(crate) fn import_in(
    tx: &WriteTransaction,
    mailer: &Mailer,
    key: &DownloadKey,
    sale: ImportedSale,
    notify: bool,
    numbers: &mut NumberCursor,
    now: Timestamp,
) -> Result<OrderId, ServiceError> {
    let order_id = unused_order_id(tx)?;
    let from = numbers
        .0
        .get(&sale.sold_at)
        .copied()
        .unwrap_or(sale.sold_at);
    let (order_number, taken) = unused_order_number_from(tx, from)?;
    numbers
        .0
        .insert(sale.sold_at, taken.plus(Duration::from_millis(1)));
    let mut grant_ids = Vec::new();
    let mut lines = Vec::new();
    for (product_id, password) in sale.lines {
        let password = password.unwrap_or_else(fresh_password);
        let (grant_id, line) = issue_grant(
            tx,
            mailer,
            key,
            order_id,
            &product_id,
            &password,
            "product",
            sale.window_from,
            (sale.status == OrderStatus::Refunded).then_some(now),
        )?;
        lines.push(line);
        grant_ids.push(grant_id);
    }
    let record = OrderRecord {
        order_number,
        transaction_id: sale.transaction_id,
        email: sale.email,
        name: sale.name,
        status: sale.status,
        source: OrderSource::Import,
        grants: grant_ids,
        created_at: sale.sold_at,
        updated_at: now,
        language: None,
        amount: sale.amount.map(MoneyRecord::of),
        refunded: sale.refunded.map(MoneyRecord::of),
        confirmed_at: matches!(sale.status, OrderStatus::Confirmed | OrderStatus::Refunded)
            .then_some(sale.window_from),
        provider: None,
    };
    store::orders::put_order(tx, order_id, &record, None)?;
    if notify && record.status == OrderStatus::Confirmed {
        let about = About {
            order_id,
            order: &record,
        };
        mailer.queue_to_buyer(tx, MailKind::Purchase, about, lines, now)?;
    }
    Ok(order_id)
}

/// Issues one grant of a new order with the product's current rules, its window starting
/// at `window_from` (revoked at once when `revoked_at` is given: an imported refund), and
/// returns it with its mail line. `field` names the input a missing product came from.
#[allow(clippy::too_many_arguments)] // one step of two callers that differ in these only
fn issue_grant(
    tx: &WriteTransaction,
    mailer: &Mailer,
    key: &DownloadKey,
    order_id: OrderId,
    product_id: &ProductId,
    password: &DownloadPassword,
    field: &'static str,
    window_from: Timestamp,
    revoked_at: Option<Timestamp>,
) -> Result<(GrantId, LinkLine), ServiceError> {
    let product = store::catalog::product(tx, product_id)?.ok_or_else(|| {
        ServiceError::invalid(
            field,
            format!("there is no product with the id {product_id}"),
        )
    })?;
    let mut grant = Grant::issue(
        order_id,
        product_id.clone(),
        product.rules(),
        key.digest(password),
        window_from,
    );
    if let Some(at) = revoked_at {
        grant.revoke(at);
    }
    let grant_id = store::grants::insert_grant(tx, &grant)?;
    let line = LinkLine {
        grant: Some(grant_id),
        product_name: product.name,
        url: mailer.link(password),
        max_downloads: grant.max_downloads,
        valid_until: grant.valid_until,
    };
    Ok((grant_id, line))
}

/// An edit of an order, checked.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub status: Option<OrderStatus>,
    /// A new transaction ID, checked; `Some("")` removes it.
    pub transaction_id: Option<String>,
    /// With a refund: the sum refunded (else the whole amount paid).
    pub refunded: Option<Money>,
}

/// Edits an order inside the caller's transaction, under the status state machine: a
/// refund revokes every grant, a first confirmation mails the buyer, and every change of
/// status goes out as a webhook event.
pub(crate) fn update_in(
    tx: &WriteTransaction,
    mailer: &Mailer,
    key: &DownloadKey,
    id: OrderId,
    change: Change,
    actor: &Actor,
    now: Timestamp,
) -> Result<OrderView, ServiceError> {
    let before = store::orders::order(tx, id)?.ok_or_else(|| order_not_found(id))?;
    let mut after = before.clone();
    if let Some(email) = change.email {
        after.email = email;
    }
    if let Some(name) = change.name {
        after.name = name;
    }
    if let Some(transaction_id) = change.transaction_id {
        let transaction_id = (!transaction_id.is_empty()).then_some(transaction_id);
        if let Some(t) = &transaction_id
            && store::orders::order_by_transaction(tx, t)?.is_some_and(|other| other != id)
        {
            return Err(ServiceError::Conflict(format!(
                "another order already has the transaction ID {t}"
            )));
        }
        after.transaction_id = transaction_id;
    }
    if let Some(to) = change.status.filter(|to| *to != before.status) {
        after.status = before
            .status
            .transition(to)
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        if to == OrderStatus::Refunded {
            edit_grants(tx, &after.grants, |g| g.revoke(now))?;
            // A whole refund: what the provider says was refunded, else everything paid.
            if let Some(refunded) = change.refunded.or_else(|| after.amount()) {
                after.refunded = Some(MoneyRecord::of(refunded));
            }
        }
    }
    after.updated_at = now;
    let first_confirmation = after.status == OrderStatus::Confirmed && after.confirmed_at.is_none();
    if first_confirmation {
        // Paid now, not when the order was placed: the windows start from here.
        after.confirmed_at = Some(now);
        edit_grants(tx, &after.grants, |g| g.start_window(now))?;
    }
    store::orders::put_order(tx, id, &after, Some(&before))?;
    if after.status == OrderStatus::Confirmed && before.status != OrderStatus::Confirmed {
        mail_first_confirmation(mailer, key, tx, id, &after, now)?;
    }
    let before_view = order_view(tx, id, &before)?;
    let view = order_view(tx, id, &after)?;
    if after.status != before.status {
        announce_status(tx, &view, now)?;
    }
    record_audit(
        tx,
        actor,
        "order.update",
        &id.to_string(),
        Some(&before_view),
        Some(&view),
        now,
    )?;
    Ok(view)
}

/// Queues the outgoing webhook of an order's status (`order.confirmed`, `order.on_hold`,
/// `order.refunded`; the other statuses have no event).
fn announce_status(
    tx: &WriteTransaction,
    view: &OrderView,
    now: Timestamp,
) -> Result<(), ServiceError> {
    let event = match view.status {
        OrderStatus::Confirmed => "order.confirmed",
        OrderStatus::OnHold => "order.on_hold",
        OrderStatus::Refunded => "order.refunded",
        OrderStatus::Pending | OrderStatus::Cancelled => return Ok(()),
    };
    let data = serde_json::to_value(view).expect("an order view serialises");
    store::webhooks::emit(tx, event, &data, now)?;
    Ok(())
}

/// A new order's input, checked.
pub(crate) struct ValidOrder {
    email: Email,
    name: String,
    products: Vec<ProductId>,
    transaction_id: Option<String>,
    status: OrderStatus,
    language: Option<Language>,
    amount: Option<Money>,
    /// The provider whose notification makes the order (set by the payment pipeline).
    provider: Option<Provider>,
    /// Refunded before the order existed (a partial refund that arrived first).
    refunded: Option<Money>,
}

impl ValidOrder {
    /// The order as made by a payment notification of `provider`.
    pub(crate) fn made_by(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The order with a refund already counted.
    pub(crate) fn refunded(mut self, refunded: Option<Money>) -> Self {
        self.refunded = refunded;
        self
    }
}

/// A transaction ID as given (trimmed); `None` for an empty one.
fn parse_transaction_id(raw: &str) -> Result<Option<String>, ServiceError> {
    let t = raw.trim();
    if t.len() > 128 || t.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "transaction_id",
            "a transaction id has at most 128 printable characters",
        ));
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

pub(crate) fn validate(input: NewOrder) -> Result<ValidOrder, ServiceError> {
    let email = Email::parse(&input.email).map_err(|e| ServiceError::invalid("email", e))?;
    let name = parse_person_name(&input.name)?;
    if input.product_ids.is_empty() {
        return Err(ServiceError::invalid(
            "product_ids",
            "an order needs at least one product",
        ));
    }
    let products = input
        .product_ids
        .iter()
        .map(|p| ProductId::parse(p).map_err(|m| ServiceError::invalid("product_ids", m)))
        .collect::<Result<Vec<_>, _>>()?;
    let transaction_id = input
        .transaction_id
        .as_deref()
        .map(parse_transaction_id)
        .transpose()?
        .flatten();
    let status = match input.status.as_deref() {
        None => OrderStatus::Confirmed,
        Some(s) => match OrderStatus::parse(s) {
            Some(st @ (OrderStatus::Pending | OrderStatus::OnHold | OrderStatus::Confirmed)) => st,
            _ => {
                return Err(ServiceError::invalid(
                    "status",
                    "a new order is pending, on_hold or confirmed",
                ));
            }
        },
    };
    let language = match input.language.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(tag) => Some(Language::from_tag(tag).ok_or_else(|| {
            ServiceError::invalid(
                "language",
                format!("\"{tag}\" is not a language Dropgate ships; use en, de, fr or es"),
            )
        })?),
    };
    let amount = input
        .amount
        .as_ref()
        .map(domain::Amount::parse)
        .transpose()
        .map_err(|e| ServiceError::invalid("amount", e))?;
    Ok(ValidOrder {
        email,
        name,
        products,
        transaction_id,
        status,
        language,
        amount,
        provider: None,
        refunded: None,
    })
}

/// The mails of a confirmed order: the buyer's (a complimentary grant has its own
/// wording) and the seller's notification. Imported sale records send nothing: their
/// buyers already hold links.
fn queue_order_mail(
    mailer: &Mailer,
    tx: &WriteTransaction,
    order_id: OrderId,
    order: &OrderRecord,
    lines: Vec<LinkLine>,
    now: Timestamp,
) -> Result<(), ServiceError> {
    let about = About { order_id, order };
    match order.source {
        OrderSource::Import => {}
        OrderSource::Complimentary => {
            mailer.queue_to_buyer(tx, MailKind::NewPassword, about, lines, now)?;
        }
        OrderSource::Webhook | OrderSource::Api | OrderSource::Admin => {
            mailer.queue_to_buyer(tx, MailKind::Purchase, about, lines.clone(), now)?;
            mailer.queue_vendor_notice(tx, about, lines, now)?;
        }
    }
    Ok(())
}

/// An order confirmed after it was created pending or on hold: unless its purchase mail
/// went out before (confirmed, held, confirmed again), the buyer gets it now. Only digests
/// of the passwords are stored, so the grants get fresh ones for the mail; nobody could
/// download with the old ones while the order was not confirmed.
fn mail_first_confirmation(
    mailer: &Mailer,
    key: &DownloadKey,
    tx: &WriteTransaction,
    order_id: OrderId,
    order: &OrderRecord,
    now: Timestamp,
) -> Result<(), ServiceError> {
    if order.source == OrderSource::Import
        || outbox::order_has_mail(tx, order_id, MailKind::Purchase)?
        || outbox::order_has_mail(tx, order_id, MailKind::NewPassword)?
    {
        return Ok(());
    }
    let lines = renew_links(tx, key, mailer, &order.grants, |g| g.revoked_at.is_none())?;
    queue_order_mail(mailer, tx, order_id, order, lines, now)
}

/// The confirmed orders of an address (or the one order named) with their grants that can
/// still download at `now`; orders with none are left out.
fn live_orders(
    tx: &impl store::Reader,
    email: &Email,
    only: Option<OrderId>,
    now: Timestamp,
) -> Result<Vec<(OrderRecord, Vec<GrantId>)>, crate::store::StoreError> {
    let mut found = Vec::new();
    for order_id in store::orders::orders_by_email(tx, email)? {
        if only.is_some_and(|o| o != order_id) {
            continue;
        }
        let Some(order) = store::orders::order(tx, order_id)? else {
            continue;
        };
        let mut live = Vec::new();
        for gid in &order.grants {
            if store::grants::grant(tx, *gid)?.is_some_and(|g| g.is_live(order.status, now)) {
                live.push(*gid);
            }
        }
        if !live.is_empty() {
            found.push((order, live));
        }
    }
    Ok(found)
}

/// Gives each of `grants` that `renew` accepts a fresh password (the old link stops
/// working) and returns the mail lines with the new links. Only digests of passwords are
/// stored, so mailing a link always means making a new one.
pub(crate) fn renew_links(
    tx: &WriteTransaction,
    key: &DownloadKey,
    mailer: &Mailer,
    grants: &[GrantId],
    renew: impl Fn(&Grant) -> bool,
) -> Result<Vec<LinkLine>, ServiceError> {
    let mut lines = Vec::new();
    for gid in grants {
        let Some(mut grant) = store::grants::grant(tx, *gid)? else {
            continue;
        };
        if !renew(&grant) {
            continue;
        }
        let password = fresh_password();
        grant.rotate(key.digest(&password));
        store::grants::put_grant(tx, *gid, &grant)?;
        lines.push(Mailer::link_line(tx, *gid, &grant, mailer.link(&password))?);
    }
    Ok(lines)
}

/// A new random password from the OS RNG.
pub(super) fn fresh_password() -> DownloadPassword {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    DownloadPassword::from_random(bytes)
}

/// Applies `edit` to each of an order's grants and stores them (a refund revokes them, a
/// first confirmation starts their windows).
fn edit_grants(
    tx: &WriteTransaction,
    grants: &[GrantId],
    edit: impl Fn(&mut Grant),
) -> Result<(), ServiceError> {
    for g in grants {
        if let Some(mut grant) = store::grants::grant(tx, *g)? {
            edit(&mut grant);
            store::grants::put_grant(tx, *g, &grant)?;
        }
    }
    Ok(())
}

/// A random unused 7-digit id; ids are random so order volume does not show.
fn unused_order_id(tx: &WriteTransaction) -> Result<OrderId, ServiceError> {
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let id = OrderId::new(rng.random_range(OrderId::MIN..=OrderId::MAX)).expect("in range");
        if !store::orders::order_exists(tx, id)? {
            return Ok(id);
        }
    }
    Err(ServiceError::Internal("no free order id found".into()))
}

/// `YYYYMMDDHHMMSSmmm` of `now`, moved on by a millisecond while taken.
fn unused_order_number(tx: &WriteTransaction, now: Timestamp) -> Result<String, ServiceError> {
    Ok(unused_order_number_from(tx, now)?.0)
}

/// The first free order number from `from` on, and the time it stands for.
fn unused_order_number_from(
    tx: &WriteTransaction,
    from: Timestamp,
) -> Result<(String, Timestamp), ServiceError> {
    let mut at = from;
    loop {
        let c = at.civil();
        let number = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}{:03}",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millisecond
        );
        if !store::orders::order_number_taken(tx, &number)? {
            return Ok((number, at));
        }
        at = at.plus(Duration::from_millis(1));
    }
}

/// Where one import goes on looking for free order numbers, per sale date: sales of one
/// day share a date (a legacy download ID carries only the day), and searching up from the
/// same millisecond for each of them would take time growing with the square of the file.
#[derive(Debug, Default)]
pub(crate) struct NumberCursor(std::collections::HashMap<Timestamp, Timestamp>);

fn order_not_found(id: OrderId) -> ServiceError {
    ServiceError::NotFound(format!("there is no order with the ID {id}"))
}

fn parse_person_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "a name has at most 200 printable characters",
        ));
    }
    Ok(name.to_owned())
}

fn order_view(
    tx: &WriteTransaction,
    id: OrderId,
    o: &OrderRecord,
) -> Result<OrderView, crate::store::StoreError> {
    build_view(id, o, |g| store::grants::grant(tx, g))
}

/// [`order_view`] in a read transaction.
fn order_view_read(
    tx: &redb::ReadTransaction,
    id: OrderId,
    o: &OrderRecord,
) -> Result<OrderView, crate::store::StoreError> {
    build_view(id, o, |g| store::grants::grant(tx, g))
}

fn build_view(
    id: OrderId,
    o: &OrderRecord,
    grant: impl Fn(GrantId) -> Result<Option<Grant>, crate::store::StoreError>,
) -> Result<OrderView, crate::store::StoreError> {
    let mut grants = Vec::new();
    for g in &o.grants {
        if let Some(grant) = grant(*g)? {
            grants.push(GrantSummary {
                grant_id: *g,
                product_id: grant.product_id,
                valid_until: grant.valid_until,
                revoked: grant.revoked_at.is_some(),
            });
        }
    }
    Ok(OrderView {
        order_id: id,
        order_number: o.order_number.clone(),
        transaction_id: o.transaction_id.clone(),
        email: o.email.clone(),
        name: o.name.clone(),
        status: o.status,
        source: format!("{:?}", o.source).to_lowercase(),
        grants,
        language: o.language,
        created_at: o.created_at,
        updated_at: o.updated_at,
        amount: o.amount().map(Money::to_wire),
        refunded: o.refunded().map(Money::to_wire),
        confirmed_at: o.confirmed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::Blobs;
    use crate::services::CatalogService;
    use domain::wire::NewProduct;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_357_812_417)
    }
    async fn setup() -> OrderService {
        let store = Store::in_memory().unwrap();
        let catalog = CatalogService::new(store.clone(), Blobs::in_memory(), 1 << 20);
        for id in ["ebook", "course"] {
            catalog
                .create(
                    NewProduct {
                        product_id: id.into(),
                        name: id.into(),
                        max_downloads: 3,
                        download_days: 31,
                        country_lock: true,
                    },
                    Actor::System,
                    now(),
                )
                .await
                .unwrap();
        }
        OrderService::new(
            store.clone(),
            store.download_key().unwrap(),
            Mailer::for_tests(store.clone(), "https://dl.example.com").await,
        )
    }
    fn new_order(products: &[&str]) -> NewOrder {
        NewOrder {
            email: "Buyer@Example.com".into(),
            name: "Bea Buyer".into(),
            product_ids: products.iter().map(|p| (*p).to_owned()).collect(),
            transaction_id: Some("PAYID-123".into()),
            status: None,
            language: None,
            amount: None,
        }
    }

    #[tokio::test]
    async fn creating_an_order_issues_one_password_per_product() {
        let svc = setup().await;
        let created = svc
            .create(
                new_order(&["ebook", "course"]),
                OrderSource::Api,
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(created.order.order_number, "20261122143012417");
        assert_eq!(created.order.order_id.to_string().len(), 7);
        assert_eq!(created.order.status, OrderStatus::Confirmed);
        assert_eq!(created.issued.len(), 2);
        let first = &created.issued[0];
        assert!(first.url.starts_with("https://dl.example.com/d/"));
        assert!(DownloadPassword::parse(&first.password).is_ok());
        assert_ne!(created.issued[0].password, created.issued[1].password);
        assert_eq!(
            created.order.grants[0].valid_until,
            Some(now().plus(Duration::from_secs(31 * 86_400)))
        );

        // Every search key finds it.
        let id = created.order.order_id;
        for q in [
            OrderQuery {
                email: Some("buyer@example.com".into()),
                ..OrderQuery::default()
            },
            OrderQuery {
                order_id: Some(id.to_string()),
                ..OrderQuery::default()
            },
            OrderQuery {
                order_number: Some("20261122143012417".into()),
                ..OrderQuery::default()
            },
            OrderQuery {
                transaction_id: Some("PAYID-123".into()),
                ..OrderQuery::default()
            },
        ] {
            let found = svc.search(q.clone()).await.unwrap();
            assert_eq!(found.len(), 1, "{q:?}");
            assert_eq!(found[0].order_id, id);
        }
        // The same transaction cannot be recorded twice.
        assert!(matches!(
            svc.create(
                new_order(&["ebook"]),
                OrderSource::Api,
                Actor::System,
                now()
            )
            .await,
            Err(ServiceError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn bad_orders_are_refused_and_change_nothing() {
        let svc = setup().await;
        let mut bad = new_order(&["ebook"]);
        bad.email = "nope".into();
        assert!(matches!(
            svc.create(bad, OrderSource::Api, Actor::System, now())
                .await,
            Err(ServiceError::Invalid { field: "email", .. })
        ));
        assert!(matches!(
            svc.create(new_order(&[]), OrderSource::Api, Actor::System, now())
                .await,
            Err(ServiceError::Invalid {
                field: "product_ids",
                ..
            })
        ));
        assert!(matches!(
            svc.create(
                new_order(&["ebook", "missing"]),
                OrderSource::Api,
                Actor::System,
                now()
            )
            .await,
            Err(ServiceError::Invalid {
                field: "product_ids",
                ..
            })
        ));
        let mut refunded = new_order(&["ebook"]);
        refunded.status = Some("refunded".into());
        assert!(matches!(
            svc.create(refunded, OrderSource::Api, Actor::System, now())
                .await,
            Err(ServiceError::Invalid {
                field: "status",
                ..
            })
        ));
        assert!(svc.search(OrderQuery::default()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn status_machine_and_refund() {
        let svc = setup().await;
        let created = svc
            .create(
                new_order(&["ebook"]),
                OrderSource::Api,
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        let id = created.order.order_id;
        let held = svc
            .update(
                id,
                OrderPatch {
                    status: Some("on_hold".into()),
                    ..OrderPatch::default()
                },
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(held.status, OrderStatus::OnHold);
        let refunded = svc.refund(id, Actor::System, now()).await.unwrap();
        assert_eq!(refunded.status, OrderStatus::Refunded);
        assert!(refunded.grants.iter().all(|g| g.revoked));
        let again = svc
            .update(
                id,
                OrderPatch {
                    status: Some("confirmed".into()),
                    ..OrderPatch::default()
                },
                Actor::System,
                now(),
            )
            .await;
        assert!(
            matches!(again, Err(ServiceError::Conflict(m)) if m.contains("refunded cannot become confirmed"))
        );
        let renamed = svc
            .update(
                id,
                OrderPatch {
                    email: Some("new@example.com".into()),
                    ..OrderPatch::default()
                },
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(renamed.email.as_str(), "new@example.com");
        assert!(
            svc.search(OrderQuery {
                email: Some("buyer@example.com".into()),
                ..OrderQuery::default()
            })
            .await
            .unwrap()
            .is_empty()
        );
    }

    #[tokio::test]
    async fn exchange_moves_the_grant() {
        let svc = setup().await;
        let created = svc
            .create(
                new_order(&["ebook"]),
                OrderSource::Api,
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        let view = svc
            .exchange(
                created.order.order_id,
                "ebook",
                "course",
                Actor::System,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(view.grants[0].product_id.as_str(), "course");
        assert_eq!(view.grants[0].grant_id, created.order.grants[0].grant_id);
        assert!(matches!(
            svc.exchange(
                created.order.order_id,
                "ebook",
                "course",
                Actor::System,
                now()
            )
            .await,
            Err(ServiceError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn the_order_list_pages_newest_first_and_every_order_appears_once() {
        let svc = setup().await;
        let mut created = Vec::new();
        for i in 0..120u64 {
            let mut order = new_order(&["ebook"]);
            order.transaction_id = Some(format!("T-{i}"));
            let at = now().plus(Duration::from_secs(i * 60));
            created.push(
                svc.create(order, OrderSource::Api, Actor::System, at)
                    .await
                    .unwrap()
                    .order
                    .order_id,
            );
        }
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = svc.page(before.clone(), 50).await.unwrap();
            assert_eq!(page.total, 120);
            assert!(page.orders.len() <= 50);
            seen.extend(page.orders.iter().map(|o| o.order_id));
            let Some(next) = page.next_before else { break };
            before = Some(next);
        }
        created.reverse();
        assert_eq!(seen, created, "newest first, each order exactly once");
        let last = svc.page(None, 1).await.unwrap();
        assert_eq!(last.orders[0].order_id, created[0]);
        assert!(last.next_before.is_some());
    }
}
