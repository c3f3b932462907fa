//! Orders and the indexes they are found by (order number, transaction ID, email).

use super::Reader;
use super::StoreError;
use super::codec::{self, Record, get};
use domain::{Currency, Email, GrantId, Money, OrderId, OrderStatus, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: 7-digit order id; value: [`OrderRecord`].
pub(super) const ORDERS: TableDefinition<u32, &[u8]> = TableDefinition::new("orders-1");
/// key: order number (17 digits); value: order id.
pub(super) const ORDER_NUMBERS: TableDefinition<&str, u32> =
    TableDefinition::new("order_numbers-1");
/// key: payment transaction id; value: order id.
pub(super) const ORDER_TRANSACTIONS: TableDefinition<&str, u32> =
    TableDefinition::new("order_transactions-1");
/// key: normalised email, 0x00, order id (u32 BE); value: empty. Prefix scans find an
/// address's orders.
pub(super) const ORDER_EMAILS: TableDefinition<&[u8], ()> = TableDefinition::new("order_emails-1");

/// Creates this part's tables (schema step 2).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ORDERS)?;
    tx.open_table(ORDER_NUMBERS)?;
    tx.open_table(ORDER_TRANSACTIONS)?;
    tx.open_table(ORDER_EMAILS)?;
    Ok(())
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    Webhook,
    Api,
    Admin,
    Import,
    Complimentary,
}

/// An amount as stored: minor units and the ISO 4217 code. The store's own shape, so a
/// change of `domain::Money` cannot change what is on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyRecord {
    pub minor: i64,
    pub currency: String,
}

impl MoneyRecord {
    pub fn of(money: Money) -> Self {
        Self {
            minor: money.minor(),
            currency: money.currency().as_str().to_owned(),
        }
    }

    /// The amount; `None` for a row that does not hold one (never written so).
    pub fn money(&self) -> Option<Money> {
        Money::from_minor(self.minor, Currency::parse(&self.currency).ok()?)
    }
}

/// A sale record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_number: String,
    pub transaction_id: Option<String>,
    pub email: Email,
    pub name: String,
    pub status: OrderStatus,
    pub source: OrderSource,
    pub grants: Vec<GrantId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The buyer's language, when the payment notification or the API named one. Version 2.
    pub language: Option<domain::Language>,
    /// What was paid; `None`: unknown (orders from before version 3, or a source that did
    /// not say). Never read as zero.
    pub amount: Option<MoneyRecord>,
    /// The sum refunded so far (`None`: nothing).
    pub refunded: Option<MoneyRecord>,
    /// When the order first became confirmed: its grants' windows start here.
    pub confirmed_at: Option<Timestamp>,
    /// The payment provider whose notification made the order (`Provider::as_str`), so a
    /// transaction ID of one provider never finds another provider's order.
    pub provider: Option<String>,
}
impl Record for OrderRecord {
    const KIND: &'static str = "order";
    const VERSION: u8 = 3;

    /// Version 1 had no language, version 2 no money, confirmation time or provider. A
    /// version 2 order that is past pending and on hold was confirmed when it was made
    /// (before version 3 every window started at creation), so it keeps its window.
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        let mut bytes = payload.to_vec();
        if version == 1 {
            bytes.push(0);
        }
        let mut record: Self =
            super::codec::upgrade_by_appending(version.max(2), 2, &bytes, &[0, 0, 0, 0])?;
        if matches!(
            record.status,
            OrderStatus::Confirmed | OrderStatus::Refunded
        ) {
            record.confirmed_at = Some(record.created_at);
        }
        Ok(record)
    }
}

impl OrderRecord {
    pub fn amount(&self) -> Option<Money> {
        self.amount.as_ref().and_then(MoneyRecord::money)
    }

    pub fn refunded(&self) -> Option<Money> {
        self.refunded.as_ref().and_then(MoneyRecord::money)
    }
}

fn email_key(email: &Email, order: OrderId) -> Vec<u8> {
    let mut key = email.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&order.get().to_be_bytes());
    key
}

pub fn order_exists(tx: &impl Reader, id: OrderId) -> Result<bool, StoreError> {
    Ok(tx.table(ORDERS)?.get(id.get())?.is_some())
}

pub fn order_number_taken(tx: &impl Reader, number: &str) -> Result<bool, StoreError> {
    Ok(tx.table(ORDER_NUMBERS)?.get(number)?.is_some())
}

/// Writes an order and keeps its indexes in step (`previous` is the record being replaced).
pub fn put_order(
    tx: &WriteTransaction,
    id: OrderId,
    record: &OrderRecord,
    previous: Option<&OrderRecord>,
) -> Result<(), StoreError> {
    let mut emails = tx.open_table(ORDER_EMAILS)?;
    if let Some(old) = previous {
        if old.email != record.email {
            emails.remove(email_key(&old.email, id).as_slice())?;
        }
        if old.transaction_id != record.transaction_id {
            let mut transactions = tx.open_table(ORDER_TRANSACTIONS)?;
            if let Some(t) = &old.transaction_id {
                // Only this order's entry: an imported duplicate may point elsewhere.
                if transactions
                    .get(t.as_str())?
                    .is_some_and(|g| g.value() == id.get())
                {
                    transactions.remove(t.as_str())?;
                }
            }
            if let Some(t) = &record.transaction_id {
                transactions.insert(t.as_str(), id.get())?;
            }
        }
    } else {
        tx.open_table(ORDER_NUMBERS)?
            .insert(record.order_number.as_str(), id.get())?;
        if let Some(t) = &record.transaction_id {
            tx.open_table(ORDER_TRANSACTIONS)?
                .insert(t.as_str(), id.get())?;
        }
    }
    emails.insert(email_key(&record.email, id).as_slice(), ())?;
    tx.open_table(ORDERS)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn order(tx: &impl Reader, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
    get(&tx.table(ORDERS)?, id.get())
}

pub fn order_by_number(tx: &impl Reader, number: &str) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .table(ORDER_NUMBERS)?
        .get(number)?
        .and_then(|g| OrderId::new(g.value())))
}

pub fn order_by_transaction(
    tx: &impl Reader,
    transaction_id: &str,
) -> Result<Option<OrderId>, StoreError> {
    Ok(tx
        .table(ORDER_TRANSACTIONS)?
        .get(transaction_id)?
        .and_then(|g| OrderId::new(g.value())))
}

pub fn orders_by_email(tx: &impl Reader, email: &Email) -> Result<Vec<OrderId>, StoreError> {
    orders_by_email_from(&tx.table(ORDER_EMAILS)?, email)
}

fn orders_by_email_from(
    table: &impl ReadableTable<&'static [u8], ()>,
    email: &Email,
) -> Result<Vec<OrderId>, StoreError> {
    let mut prefix = email.as_str().as_bytes().to_vec();
    prefix.push(0);
    let mut end = prefix.clone();
    *end.last_mut().expect("non-empty") = 1;
    let mut ids = Vec::new();
    for row in table.range(prefix.as_slice()..end.as_slice())? {
        let key = row?.0.value().to_vec();
        let raw: [u8; 4] = key[key.len() - 4..]
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                kind: "email index",
                detail: "short key".into(),
            })?;
        ids.extend(OrderId::new(u32::from_be_bytes(raw)));
    }
    Ok(ids)
}

/// The keys orders are found by; every key given must match.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderKeys<'a> {
    pub email: Option<&'a Email>,
    pub order_id: Option<OrderId>,
    pub order_number: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
}

impl OrderKeys<'_> {
    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.order_id.is_none()
            && self.order_number.is_none()
            && self.transaction_id.is_none()
    }
}

/// Orders matching every given key; none when no key is given.
pub fn orders_matching(tx: &impl Reader, keys: &OrderKeys<'_>) -> Result<Vec<OrderId>, StoreError> {
    let mut sets: Vec<Vec<OrderId>> = Vec::new();
    if let Some(email) = keys.email {
        sets.push(orders_by_email(tx, email)?);
    }
    if let Some(id) = keys.order_id {
        sets.push(order(tx, id)?.map(|_| id).into_iter().collect());
    }
    if let Some(number) = keys.order_number {
        sets.push(order_by_number(tx, number.trim())?.into_iter().collect());
    }
    if let Some(transaction) = keys.transaction_id {
        sets.push(
            order_by_transaction(tx, transaction.trim())?
                .into_iter()
                .collect(),
        );
    }
    let Some(first) = sets.pop() else {
        return Ok(Vec::new());
    };
    Ok(first
        .into_iter()
        .filter(|id| sets.iter().all(|set| set.contains(id)))
        .collect())
}

/// The most recent orders first, at most `limit`.
pub fn recent_orders(
    tx: &impl Reader,
    limit: usize,
) -> Result<Vec<(OrderId, OrderRecord)>, StoreError> {
    let table = tx.table(ORDERS)?;
    let mut all = table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((
                OrderId::new(k.value()),
                codec::decode::<OrderRecord>(v.value())?,
            ))
        })
        .filter_map(|r: Result<(Option<OrderId>, OrderRecord), StoreError>| {
            r.map(|(id, o)| id.map(|id| (id, o))).transpose()
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    all.sort_by_key(|(_, order)| std::cmp::Reverse(order.created_at));
    all.truncate(limit);
    Ok(all)
}

/// Orders newest first whose order number sorts before `before` (from the newest when
/// `None`), at most `limit`. Order numbers are timestamps, so their index is the
/// chronological index: a page costs `limit` lookups however many orders there are.
pub fn order_page(
    tx: &impl Reader,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<(OrderId, OrderRecord)>, StoreError> {
    let numbers = tx.table(ORDER_NUMBERS)?;
    let orders = tx.table(ORDERS)?;
    let rows = match before {
        Some(b) => numbers.range::<&str>(..b)?,
        None => numbers.iter()?,
    };
    let mut out = Vec::with_capacity(limit);
    for row in rows.rev() {
        if out.len() == limit {
            break;
        }
        let Some(id) = OrderId::new(row?.1.value()) else {
            continue;
        };
        if let Some(record) = get::<u32, OrderRecord>(&orders, id.get())? {
            out.push((id, record));
        }
    }
    Ok(out)
}

/// How many orders there are.
pub fn order_count(tx: &impl Reader) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    Ok(tx.table(ORDERS)?.len()?)
}

/// Calls `each` for every order, in order ID order (streaming exports: nothing is collected).
pub fn each_order<E: From<StoreError>>(
    tx: &impl Reader,
    mut each: impl FnMut(OrderId, OrderRecord) -> Result<(), E>,
) -> Result<(), E> {
    for row in tx.table(ORDERS)?.iter().map_err(StoreError::from)? {
        let (k, v) = row.map_err(StoreError::from)?;
        if let Some(id) = OrderId::new(k.value()) {
            each(id, codec::decode(v.value())?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OrderRecord {
        OrderRecord {
            order_number: "20261207120000123".into(),
            transaction_id: Some("pi_1".into()),
            email: Email::parse("ann@example.com").unwrap(),
            name: "Ann".into(),
            status: OrderStatus::Confirmed,
            source: OrderSource::Webhook,
            grants: vec![GrantId::new(5)],
            created_at: Timestamp::from_unix_millis(1_800_000_000_000),
            updated_at: Timestamp::from_unix_millis(1_800_000_000_001),
            language: Some(domain::Language::De),
            amount: Some(MoneyRecord::of(Money::parse("19.99", "EUR").unwrap())),
            refunded: None,
            confirmed_at: Some(Timestamp::from_unix_millis(1_800_000_000_002)),
            provider: Some("stripe".into()),
        }
    }

    /// The bytes of version 3 as written: a change in `domain` (a field or variant moved)
    /// that would change them fails here instead of misreading every stored order.
    #[test]
    fn version_3_bytes_are_pinned() {
        let bytes = codec::encode(&sample());
        assert_eq!(hex::encode(&bytes), GOLDEN_V3);
        assert_eq!(codec::decode::<OrderRecord>(&bytes).unwrap(), sample());
    }

    const GOLDEN_V3: &str = "03113230323631323037313230303030313233010470695f310f616e6e406578616d706c652e636f6d03416e6e0200010580c0e285e36882c0e285e3680101019e1f03455552000184c0e285e3680106737472697065";

    /// A version 2 row (no money) reads as "amount unknown", and a confirmed one keeps the
    /// window it was given at creation; a held one starts its window when confirmed.
    #[test]
    fn version_2_rows_read_with_the_amount_unknown() {
        let v3 = codec::encode(&sample());
        // Version 2 is version 3 without its last four fields.
        let mut v2 = vec![2u8];
        let tail = postcard::to_stdvec(&(
            sample().amount,
            sample().refunded,
            sample().confirmed_at,
            sample().provider,
        ))
        .unwrap();
        v2.extend_from_slice(&v3[1..v3.len() - tail.len()]);
        let old: OrderRecord = codec::decode(&v2).unwrap();
        assert_eq!(old.amount, None, "unknown, never zero");
        assert_eq!(old.refunded, None);
        assert_eq!(old.confirmed_at, Some(old.created_at));
        assert_eq!(old.provider, None);
        let mut held = Vec::new();
        let mut record = sample();
        record.status = OrderStatus::OnHold;
        let v3 = codec::encode(&record);
        held.push(2);
        held.extend_from_slice(&v3[1..v3.len() - tail.len()]);
        let old: OrderRecord = codec::decode(&held).unwrap();
        assert_eq!(old.confirmed_at, None);
        // Version 1: no language either.
        let mut record = sample();
        record.language = None;
        let v3 = codec::encode(&record);
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&v3[1..v3.len() - tail.len() - 1]);
        assert_eq!(codec::decode::<OrderRecord>(&v1).unwrap().language, None);
    }
}
