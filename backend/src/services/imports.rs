//! Imports of sale records: the legacy download script's records (links buyers hold keep
//! working) and CSV exports of other stores. A dry run reports what would be created and
//! every rejected row; the real run is all-or-nothing (one transaction) and idempotent (a
//! row imported before is recognised and left alone).

use super::ServiceError;
use super::audit::{Actor, record_audit};
use super::orders::{ImportedSale, NumberCursor, import_in};
use crate::auth::download_key::DownloadKey;
use crate::mail::Mailer;
use crate::sales_file::{self, ColumnMap, FileError, SaleRow};
use crate::store::{self, Reader, Store};
use domain::records::{ImportFormat, ImportReport, ImportedOrderView, RejectedRow, WindowStart};
use domain::{OrderStatus, ProductId, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Orders shown in a report's preview.
const PREVIEW: usize = 200;

/// What the seller asked of an import.
#[derive(Clone, Debug, Default)]
pub struct ImportRequest {
    /// None: detected from the file.
    pub format: Option<ImportFormat>,
    /// CSV only: the header of each field's column, where the usual names do not match.
    pub columns: ColumnMap,
    /// Product IDs of the file that differ from the shop's: file ID → product ID.
    pub product_map: BTreeMap<String, String>,
    pub window: WindowStart,
    /// Mail the imported buyers their links (off: they already hold them).
    pub notify: bool,
    /// Import the good rows and leave the rejected ones out (off: any rejected row stops
    /// the real run, which then changes nothing).
    pub skip_rejected: bool,
    pub dry_run: bool,
}

/// Imports of sale records.
#[derive(Clone, Debug)]
pub struct ImportService {
    store: Store,
    key: DownloadKey,
    mailer: Mailer,
}

/// The rows that become one order: one transaction ID (or one row without any).
struct Group {
    rows: Vec<(SaleRow, ProductId, [u8; 32])>,
}

impl ImportService {
    pub fn new(store: Store, key: DownloadKey, mailer: Mailer) -> Self {
        Self { store, key, mailer }
    }

    /// Reads the file, checks every row against the shop and, unless it is a dry run,
    /// creates the orders in one transaction.
    pub async fn import(
        &self,
        file: Vec<u8>,
        request: ImportRequest,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ImportReport, ServiceError> {
        let (format, read) = {
            let (format, columns) = (request.format, request.columns.clone());
            tokio::task::spawn_blocking(move || sales_file::read(&file, format, &columns))
                .await
                .map_err(|e| ServiceError::Internal(format!("reading the file failed: {e}")))?
                .map_err(file_error)?
        };
        let key = self.key.clone();
        let mailer = self.mailer.clone();
        let report = self
            .store
            .run(move |s| {
                if request.dry_run {
                    let plan = s.read(|tx| Ok(plan(tx, &key, format, read, &request)))??;
                    return Ok(plan.report(&request, now, None));
                }
                s.write(|tx| {
                    let plan = plan(tx, &key, format, read, &request)?;
                    if !plan.rejected.is_empty() && !request.skip_rejected {
                        return Err(ServiceError::invalid("file", refusal(&plan.rejected)));
                    }
                    let mut order_ids = Vec::with_capacity(plan.groups.len());
                    let mut numbers = NumberCursor::default();
                    for group in &plan.groups {
                        let sale = sale_of(group, &request, now);
                        let notify = request.notify;
                        let order_id =
                            import_in(tx, &mailer, &key, sale, notify, &mut numbers, now)?;
                        for (_, _, fingerprint) in &group.rows {
                            store::imports::remember_row(tx, fingerprint, order_id)?;
                        }
                        order_ids.push(order_id.get());
                    }
                    let report = plan.report(&request, now, Some(&order_ids));
                    record_audit(
                        tx,
                        &actor,
                        "import.sales",
                        &format!("{:?}", report.format).to_lowercase(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "rows": report.rows,
                            "orders": report.orders,
                            "grants": report.grants,
                            "already_imported": report.already_imported,
                            "rejected": report.rejected.len(),
                            "window": report.window,
                            "notify": report.notify,
                        })),
                        now,
                    )?;
                    Ok::<_, ServiceError>(report)
                })
            })
            .await?;
        if report.notify && report.orders > 0 && !report.dry_run {
            self.mailer.wake();
        }
        Ok(report)
    }
}

/// The import worked out against the shop, before anything is written.
struct Plan {
    format: ImportFormat,
    separator: char,
    rows: u64,
    groups: Vec<Group>,
    already_imported: u64,
    rejected: Vec<RejectedRow>,
    unknown_products: BTreeSet<String>,
    /// Product rules, for the preview's window ends.
    days: HashMap<ProductId, u32>,
}

fn plan(
    tx: &impl Reader,
    key: &DownloadKey,
    format: ImportFormat,
    read: sales_file::ReadFile,
    request: &ImportRequest,
) -> Result<Plan, ServiceError> {
    let mut plan = Plan {
        format,
        separator: read.separator,
        rows: read.data_rows,
        groups: Vec::new(),
        already_imported: 0,
        rejected: read.rejected,
        unknown_products: BTreeSet::new(),
        days: HashMap::new(),
    };
    let mut seen: HashMap<[u8; 32], u64> = HashMap::new();
    let mut by_transaction: HashMap<String, usize> = HashMap::new();
    for row in read.rows {
        let reject = |plan: &mut Plan, reason: String| {
            plan.rejected.push(RejectedRow {
                line: row.line,
                reason,
            });
        };
        let fingerprint = fingerprint(&row);
        if let Some(first) = seen.get(&fingerprint) {
            reject(&mut plan, format!("the same sale as line {first}"));
            continue;
        }
        seen.insert(fingerprint, row.line);
        if store::imports::imported_row(tx, &fingerprint)?.is_some() {
            plan.already_imported += 1;
            continue;
        }
        let wanted = request
            .product_map
            .get(&row.product)
            .unwrap_or(&row.product);
        let product = match ProductId::parse(wanted) {
            Ok(id) => match store::catalog::product(tx, &id)? {
                Some(p) => {
                    plan.days.insert(id.clone(), p.rules().download_days);
                    Some(id)
                }
                None => None,
            },
            Err(_) => None,
        };
        let Some(product) = product else {
            plan.unknown_products.insert(row.product.clone());
            reject(
                &mut plan,
                format!(
                    "there is no product with the ID \"{wanted}\" (map it to one of your products)"
                ),
            );
            continue;
        };
        if let Some(password) = &row.download_id
            && let Some(grant) = store::grants::grant_by_digest(tx, &key.digest(password))?
        {
            reject(
                &mut plan,
                format!(
                    "the download ID {} is already the link of grant {grant}",
                    password.canonical()
                ),
            );
            continue;
        }
        let Some(transaction) = row.transaction_id.clone() else {
            plan.groups.push(Group {
                rows: vec![(row, product, fingerprint)],
            });
            continue;
        };
        if let Some(order) = store::orders::order_by_transaction(tx, &transaction)? {
            reject(
                &mut plan,
                format!("the transaction ID {transaction} already belongs to order {order}"),
            );
            continue;
        }
        if let Some(&at) = by_transaction.get(&transaction) {
            let first = &plan.groups[at].rows[0].0;
            if first.email != row.email {
                let line = first.line;
                reject(
                    &mut plan,
                    format!(
                        "the transaction ID {transaction} is on line {line} with another email address"
                    ),
                );
                continue;
            }
            plan.groups[at].rows.push((row, product, fingerprint));
        } else {
            by_transaction.insert(transaction, plan.groups.len());
            plan.groups.push(Group {
                rows: vec![(row, product, fingerprint)],
            });
        }
    }
    plan.rejected.sort_by_key(|r| r.line);
    Ok(plan)
}

/// The order a group becomes: the first row's buyer and sale date, one grant per row.
fn sale_of(group: &Group, request: &ImportRequest, now: Timestamp) -> ImportedSale {
    let first = &group.rows[0].0;
    let sold_at = first.sold_at.unwrap_or(now);
    ImportedSale {
        email: first.email.clone(),
        name: first.name.clone(),
        transaction_id: first.transaction_id.clone(),
        status: first.status,
        sold_at,
        window_from: match request.window {
            WindowStart::Import => now,
            WindowStart::Sale => sold_at,
        },
        lines: group
            .rows
            .iter()
            .map(|(row, product, _)| (product.clone(), row.download_id.clone()))
            .collect(),
        amount: group_amount(group),
        // A refunded sale in the records was refunded in full.
        refunded: group_amount(group).filter(|_| first.status == OrderStatus::Refunded),
    }
}

/// A group's amount: the sum of its rows', when every row says one in one currency (a
/// file with one row per line item); unknown otherwise, never a guess.
fn group_amount(group: &Group) -> Option<domain::Money> {
    let mut rows = group.rows.iter().map(|(row, _, _)| row.amount);
    let first = rows.next()??;
    rows.try_fold(first, |sum, amount| sum.plus(amount?))
}

impl Plan {
    fn report(
        &self,
        request: &ImportRequest,
        now: Timestamp,
        order_ids: Option<&[u32]>,
    ) -> ImportReport {
        let preview = self
            .groups
            .iter()
            .take(PREVIEW)
            .enumerate()
            .map(|(i, group)| {
                let sale = sale_of(group, request, now);
                let days = self.days.get(&sale.lines[0].0).copied().unwrap_or(0);
                ImportedOrderView {
                    lines: group.rows.iter().map(|(r, _, _)| r.line).collect(),
                    email: sale.email.as_str().to_owned(),
                    name: sale.name,
                    transaction_id: sale.transaction_id,
                    product_ids: sale.lines.iter().map(|(p, _)| p.to_string()).collect(),
                    status: sale.status,
                    sold_at: sale.sold_at,
                    valid_until: domain::grant::window_end(days, sale.window_from),
                    order_id: order_ids.and_then(|ids| ids.get(i).copied()),
                }
            })
            .collect();
        ImportReport {
            dry_run: order_ids.is_none(),
            format: self.format,
            separator: match self.separator {
                '\t' => "tab".to_owned(),
                other => other.to_string(),
            },
            rows: self.rows,
            orders: self.groups.len() as u64,
            grants: self.groups.iter().map(|g| g.rows.len() as u64).sum(),
            already_imported: self.already_imported,
            rejected: self.rejected.clone(),
            unknown_products: self.unknown_products.iter().cloned().collect(),
            preview,
            notify: request.notify,
            window: request.window,
        }
    }
}

/// A row's identity across imports: the download ID of a legacy record (the buyer's link),
/// else everything a CSV row says. The same file imported again matches row for row.
fn fingerprint(row: &SaleRow) -> [u8; 32] {
    let mut hash = Sha256::new();
    if let Some(id) = &row.download_id {
        hash.update(b"legacy\0");
        hash.update(id.canonical().as_bytes());
    } else {
        hash.update(b"csv\0");
        for part in [
            row.email.as_str(),
            &row.name,
            &row.product,
            row.transaction_id.as_deref().unwrap_or(""),
            &row.sold_at.map(|t| t.to_string()).unwrap_or_default(),
            row.status.as_str(),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
    }
    hash.finalize().into()
}

/// Why a real run with rejected rows changes nothing, naming the first few.
fn refusal(rejected: &[RejectedRow]) -> String {
    let first: Vec<String> = rejected
        .iter()
        .take(5)
        .map(|r| format!("line {}: {}", r.line, r.reason))
        .collect();
    let more = rejected.len().saturating_sub(first.len());
    format!(
        "{} row(s) were rejected, so nothing was imported: {}{}. Fix or map them (a dry run lists every one), or import with skip_rejected to leave them out",
        rejected.len(),
        first.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

fn file_error(error: FileError) -> ServiceError {
    ServiceError::invalid("file", error.to_string())
}
