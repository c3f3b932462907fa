//! CSV exports of orders, grants and download events for accounting, a move or a buyer's
//! question. Rows are read from one snapshot on a blocking thread and handed over in
//! chunks through a small channel, so memory stays flat however many rows there are, and
//! a client that goes away stops the reading.

use super::ServiceError;
use crate::store::events::Outcome;
use crate::store::{self, Store, StoreError};
use bytes::Bytes;
use domain::{GrantId, OrderId, OrderStatus, ProductId, Timestamp};
use std::collections::HashMap;
use std::io::Write;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader and the client.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    Orders,
    Grants,
    Events,
}

impl ExportKind {
    /// From the file name of the endpoint (`orders.csv`, `orders`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim_end_matches(".csv") {
            "orders" => Some(Self::Orders),
            "grants" => Some(Self::Grants),
            "events" => Some(Self::Events),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Grants => "grants",
            Self::Events => "events",
        }
    }
}

/// Which rows: by time (orders by sale date, grants by issue, events by attempt; `to` is
/// exclusive) and by product.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub product: Option<ProductId>,
}

impl ExportFilter {
    fn covers(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}

/// A stream of CSV chunks; an `Err` ends it early (the store failed while reading).
pub type ExportStream = mpsc::Receiver<Result<Bytes, std::io::Error>>;

/// CSV exports.
#[derive(Clone, Debug)]
pub struct ExportService {
    store: Store,
}

impl ExportService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Starts an export; the rows arrive on the returned channel as they are read.
    pub async fn export(
        &self,
        kind: ExportKind,
        filter: ExportFilter,
        now: Timestamp,
    ) -> Result<ExportStream, ServiceError> {
        if let Some(product) = &filter.product {
            let product = product.clone();
            let known = self
                .store
                .run(move |s| s.read(|tx| store::catalog::product(tx, &product)))
                .await?;
            if known.is_none() {
                return Err(ServiceError::invalid(
                    "product",
                    "there is no product with this ID",
                ));
            }
        }
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let store = self.store.clone();
        // A thread of its own, not one of the runtime's blocking threads: the export waits
        // on its client, and a few slow clients must not take the threads the store's reads
        // and writes run on.
        let spawned = std::thread::Builder::new()
            .name(format!("dropgate-export-{}", kind.name()))
            .spawn(move || {
                let mut out = csv::Writer::from_writer(ChunkSink {
                    buffer: Vec::with_capacity(CHUNK),
                    sender: sender.clone(),
                });
                let result = store
                    .read(|tx| {
                        write_rows(tx, kind, &filter, now, &mut out)
                            .map_err(ExportError::into_store)
                    })
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        out.flush().map_err(|e| e.to_string())?;
                        out.into_inner()
                            .map_err(|e| e.to_string())?
                            .send_rest()
                            .map_err(|e| e.to_string())
                    });
                if let Err(error) = result {
                    // A client that went away is not an error worth a line; a failing store is.
                    if !sender.is_closed() {
                        tracing::error!(error = %error, export = kind.name(), "export failed");
                        let _ = sender.blocking_send(Err(std::io::Error::other(error)));
                    }
                }
            });
        spawned.map_err(|e| ServiceError::Internal(format!("cannot start the export: {e}")))?;
        Ok(receiver)
    }
}

/// Where export rows go: chunks of about [`CHUNK`] bytes to the channel.
struct ChunkSink {
    buffer: Vec<u8>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })
    }

    fn send_rest(mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reading or writing failed.
enum ExportError {
    Store(StoreError),
    Write(csv::Error),
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<csv::Error> for ExportError {
    fn from(e: csv::Error) -> Self {
        Self::Write(e)
    }
}

impl ExportError {
    fn into_store(self) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Write(e) => StoreError::Join(format!("writing the export: {e}")),
        }
    }
}

type Out = csv::Writer<ChunkSink>;

fn write_rows(
    tx: &redb::ReadTransaction,
    kind: ExportKind,
    filter: &ExportFilter,
    now: Timestamp,
    out: &mut Out,
) -> Result<(), ExportError> {
    match kind {
        ExportKind::Orders => orders(tx, filter, out),
        ExportKind::Grants => grants(tx, filter, now, out),
        ExportKind::Events => events(tx, filter, out),
    }
}

fn time(at: Option<Timestamp>) -> String {
    at.map(|t| t.to_string()).unwrap_or_default()
}

fn orders(
    tx: &redb::ReadTransaction,
    filter: &ExportFilter,
    out: &mut Out,
) -> Result<(), ExportError> {
    out.write_record([
        "order_id",
        "order_number",
        "created_at",
        "status",
        "source",
        "email",
        "name",
        "transaction_id",
        "product_ids",
        "grant_ids",
        "amount",
        "currency",
        "refunded",
    ])?;
    store::orders::each_order(tx, |id, order| {
        if !filter.covers(order.created_at) {
            return Ok(());
        }
        let mut products = Vec::with_capacity(order.grants.len());
        for g in &order.grants {
            if let Some(grant) = store::grants::grant(tx, *g)? {
                products.push(grant.product_id.to_string());
            }
        }
        if filter
            .product
            .as_ref()
            .is_some_and(|p| !products.iter().any(|x| x == p.as_str()))
        {
            return Ok(());
        }
        let grants: Vec<String> = order.grants.iter().map(ToString::to_string).collect();
        out.write_record([
            id.to_string().as_str(),
            &order.order_number,
            &order.created_at.to_string(),
            order.status.as_str(),
            &format!("{:?}", order.source).to_lowercase(),
            order.email.as_str(),
            &order.name,
            order.transaction_id.as_deref().unwrap_or(""),
            &products.join(" "),
            &grants.join(" "),
            // Unknown stays empty, never 0; the refund is in the order's currency.
            &order
                .amount()
                .map(domain::Money::value_text)
                .unwrap_or_default(),
            order
                .amount()
                .map(domain::Money::currency)
                .as_ref()
                .map_or("", domain::Currency::as_str),
            &order
                .refunded()
                .map(domain::Money::value_text)
                .or_else(|| {
                    order
                        .amount()
                        .map(|a| domain::Money::zero(a.currency()).value_text())
                })
                .unwrap_or_default(),
        ])?;
        Ok::<_, ExportError>(())
    })
}

fn grants(
    tx: &redb::ReadTransaction,
    filter: &ExportFilter,
    now: Timestamp,
    out: &mut Out,
) -> Result<(), ExportError> {
    out.write_record([
        "grant_id",
        "order_id",
        "product_id",
        "email",
        "state",
        "issued_at",
        "valid_until",
        "downloads_used",
        "max_downloads",
        "bytes_delivered",
        "country",
        "blocked_country",
    ])?;
    // Products are few; their files' sizes are looked up once each.
    let mut files: HashMap<ProductId, Vec<(domain::FileId, u64)>> = HashMap::new();
    store::grants::each_grant(tx, |id, grant| {
        if !filter.covers(grant.issued_at)
            || filter
                .product
                .as_ref()
                .is_some_and(|p| *p != grant.product_id)
        {
            return Ok(());
        }
        let order = store::orders::order(tx, grant.order_id)?;
        let status = order.as_ref().map_or(OrderStatus::Cancelled, |o| o.status);
        if !files.contains_key(&grant.product_id) {
            files.insert(
                grant.product_id.clone(),
                product_files(tx, &grant.product_id)?,
            );
        }
        let product_files = &files[&grant.product_id];
        let used = product_files
            .iter()
            .map(|(f, size)| grant.used(*f, *size))
            .fold(0.0, f64::max);
        let delivered: u64 = product_files.iter().map(|(f, _)| grant.counted(*f)).sum();
        let country = |s: &Option<domain::grant::Sighting>| {
            s.as_ref()
                .and_then(|s| s.country)
                .map(|c| c.to_string())
                .unwrap_or_default()
        };
        out.write_record([
            id.to_string().as_str(),
            &grant.order_id.to_string(),
            grant.product_id.as_str(),
            order.as_ref().map_or("", |o| o.email.as_str()),
            grant.state(status, product_files, now).as_str(),
            &grant.issued_at.to_string(),
            &time(grant.valid_until),
            &format!("{used:.2}"),
            &grant.max_downloads.to_string(),
            &delivered.to_string(),
            &country(&grant.locked),
            &country(&grant.blocked_by),
        ])?;
        Ok::<_, ExportError>(())
    })
}

fn product_files(
    tx: &redb::ReadTransaction,
    product: &ProductId,
) -> Result<Vec<(domain::FileId, u64)>, StoreError> {
    let Some(record) = store::catalog::product(tx, product)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for id in record.files {
        if let Some(file) = store::catalog::file(tx, id)? {
            out.push((id, file.size));
        }
    }
    Ok(out)
}

fn events(
    tx: &redb::ReadTransaction,
    filter: &ExportFilter,
    out: &mut Out,
) -> Result<(), ExportError> {
    out.write_record([
        "event_id",
        "at",
        "last_at",
        "attempts",
        "grant_id",
        "order_id",
        "product_id",
        "file",
        "ip",
        "country",
        "user_agent",
        "bytes",
        "outcome",
    ])?;
    // The grant of each event, remembered for the run of events of one download session
    // only: constant memory, and most neighbouring events share a grant.
    let mut last: Option<(GrantId, Option<(OrderId, ProductId)>)> = None;
    let mut file_names: HashMap<domain::FileId, String> = HashMap::new();
    store::events::each_event(tx, |seq, event| {
        if !filter.covers(event.at) {
            return Ok(());
        }
        if last.as_ref().is_none_or(|(g, _)| *g != event.grant) {
            let owner = store::grants::grant(tx, event.grant)?.map(|g| (g.order_id, g.product_id));
            last = Some((event.grant, owner));
        }
        let owner = last.as_ref().and_then(|(_, o)| o.as_ref());
        if let Some(p) = &filter.product
            && owner.is_none_or(|(_, product)| product != p)
        {
            return Ok(());
        }
        let file = match event.file {
            Some(id) => {
                if !file_names.contains_key(&id) {
                    let name = store::catalog::file(tx, id)?
                        .map(|f| f.name)
                        .unwrap_or_default();
                    // File names are per product and few; bounded all the same.
                    if file_names.len() > 10_000 {
                        file_names.clear();
                    }
                    file_names.insert(id, name);
                }
                file_names[&id].clone()
            }
            None => String::new(),
        };
        let outcome = match &event.outcome {
            Outcome::Allowed => "allowed".to_owned(),
            Outcome::Refused(code) => code.clone(),
        };
        out.write_record([
            seq.to_string().as_str(),
            &event.at.to_string(),
            &event.last_at.to_string(),
            &event.count.to_string(),
            &event.grant.to_string(),
            &owner.map(|(o, _)| o.to_string()).unwrap_or_default(),
            owner.map_or("", |(_, p)| p.as_str()),
            &file,
            &event.ip.to_string(),
            &event.country.map(|c| c.to_string()).unwrap_or_default(),
            &event.user_agent,
            &event.bytes.to_string(),
            &outcome,
        ])?;
        Ok::<_, ExportError>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_parse() {
        assert_eq!(ExportKind::parse("orders.csv"), Some(ExportKind::Orders));
        assert_eq!(ExportKind::parse("events"), Some(ExportKind::Events));
        assert_eq!(ExportKind::parse("secrets.csv"), None);
    }

    #[test]
    fn the_filter_is_inclusive_at_the_start_and_exclusive_at_the_end() {
        let t = Timestamp::from_unix_millis;
        let filter = ExportFilter {
            from: Some(t(10)),
            to: Some(t(20)),
            product: None,
        };
        assert!(!filter.covers(t(9)));
        assert!(filter.covers(t(10)));
        assert!(filter.covers(t(19)));
        assert!(!filter.covers(t(20)));
    }
}
