//! Sale-record files from other systems, read into checked rows: the legacy download
//! script's records (a `.php` file with a guard line, or the same rows kept as `.txt`, CSV or
//! TSV after a spreadsheet edit) and CSV exports of other stores with a header row.
//!
//! Pure: bytes in, rows and per-line rejections out. Whether a product exists, a row was
//! imported before or a transaction ID is taken is the import service's question.

pub use domain::records::{ImportFormat as Format, RejectedRow as Rejected};
use domain::{DownloadPassword, Email, Money, OrderStatus, Timestamp};
use std::collections::BTreeMap;

/// The fields a CSV import reads, each found by its column's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Email,
    Name,
    Product,
    TransactionId,
    Date,
    Status,
    Amount,
    Currency,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Email,
        Field::Name,
        Field::Product,
        Field::TransactionId,
        Field::Date,
        Field::Status,
        Field::Amount,
        Field::Currency,
    ];

    /// The name used in flags and the admin (`transaction_id`).
    pub fn key(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Name => "name",
            Field::Product => "product",
            Field::TransactionId => "transaction_id",
            Field::Date => "date",
            Field::Status => "status",
            Field::Amount => "amount",
            Field::Currency => "currency",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.key() == key.trim())
    }

    /// Headers that mean this field when the seller maps nothing (compared without case,
    /// spaces, `-` or `_`).
    fn usual_headers(self) -> &'static [&'static str] {
        match self {
            Field::Email => &[
                "email",
                "emailaddress",
                "buyeremail",
                "customeremail",
                "payeremail",
            ],
            Field::Name => &["name", "buyername", "customername", "fullname", "customer"],
            Field::Product => &["product", "productid", "sku", "itemnumber", "item"],
            Field::TransactionId => &["transactionid", "transaction", "txnid", "paymentid", "txn"],
            Field::Date => &[
                "date",
                "saledate",
                "orderdate",
                "createdat",
                "created",
                "paymentdate",
            ],
            Field::Status => &["status", "orderstatus", "paymentstatus"],
            Field::Amount => &["amount", "total", "gross", "mcgross", "price", "paid"],
            Field::Currency => &["currency", "mccurrency", "currencycode"],
        }
    }
}

/// One sale read from the file, checked as far as the file alone allows.
#[derive(Clone, Debug, PartialEq)]
pub struct SaleRow {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    /// The legacy download ID, kept as the grant's password (legacy files only).
    pub download_id: Option<DownloadPassword>,
    /// The product ID as written in the file (the import maps it to a product).
    pub product: String,
    pub email: Email,
    pub name: String,
    pub transaction_id: Option<String>,
    /// When the sale happened: the date a legacy download ID starts with, or the date column.
    pub sold_at: Option<Timestamp>,
    pub status: OrderStatus,
    /// What this row's sale paid, when the file has amount and currency columns.
    pub amount: Option<Money>,
}

/// What the whole file held.
#[derive(Debug, Default)]
pub struct ReadFile {
    pub rows: Vec<SaleRow>,
    pub rejected: Vec<Rejected>,
    /// The separator found (`\t`, `|`, `;` or `,`).
    pub separator: char,
    /// Data rows read (guard, blank and header lines not counted).
    pub data_rows: u64,
}

/// Why a file cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file has no sale records")]
    Empty,
    #[error(
        "no column of the header row is the {0} column; name it with a column mapping (the header row has: {1})"
    )]
    MissingColumn(&'static str, String),
    #[error("the column mapping names \"{0}\", which is not in the header row (it has: {1})")]
    UnknownColumn(String, String),
    #[error("the file could not be read as CSV: {0}")]
    Csv(String),
}

/// How a CSV file's columns map to fields: header text per field, where the seller named one.
pub type ColumnMap = BTreeMap<Field, String>;

/// Reads a sale-record file. `format` None detects it: a legacy file's first record starts
/// with a download ID (or the file has the PHP guard line).
pub fn read(
    bytes: &[u8],
    format: Option<Format>,
    columns: &ColumnMap,
) -> Result<(Format, ReadFile), FileError> {
    let text = decode(bytes);
    let mut guarded = false;
    // Each sale is one line (the legacy script wrote one per line, and spreadsheets quote a
    // separator inside a field but put no line breaks in these fields), so every record
    // keeps the file's own line number.
    let lines: Vec<(u64, &str)> = (1u64..)
        .zip(text.lines())
        .filter(|(_, line)| {
            if is_guard(line) {
                guarded = true;
                return false;
            }
            !line.trim().is_empty()
        })
        .collect();
    let separator = detect_separator(lines.iter().map(|(_, l)| *l));
    let mut records = Vec::with_capacity(lines.len());
    for (line, text) in lines {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(separator)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut record = csv::StringRecord::new();
        reader
            .read_record(&mut record)
            .map_err(|e| FileError::Csv(format!("line {line}: {e}")))?;
        records.push((
            line,
            record.iter().map(str::to_owned).collect::<Vec<String>>(),
        ));
    }
    let Some((_, first)) = records.first() else {
        return Err(FileError::Empty);
    };
    let format = format.unwrap_or_else(|| {
        if guarded
            || DownloadPassword::parse(&first[0])
                .is_ok_and(|p| matches!(p, DownloadPassword::Legacy(_)))
        {
            Format::Legacy
        } else {
            Format::Csv
        }
    });
    let mut out = ReadFile {
        separator: char::from(separator),
        ..ReadFile::default()
    };
    match format {
        Format::Legacy => {
            let skip_header = looks_like_header(first);
            for (line, fields) in records.into_iter().skip(usize::from(skip_header)) {
                out.data_rows += 1;
                match legacy_row(line, &fields) {
                    Ok(row) => out.rows.push(row),
                    Err(reason) => out.rejected.push(Rejected { line, reason }),
                }
            }
        }
        Format::Csv => {
            let mut records = records.into_iter();
            let (_, header) = records.next().ok_or(FileError::Empty)?;
            let positions = column_positions(&header, columns)?;
            for (line, fields) in records {
                out.data_rows += 1;
                match csv_row(line, &fields, &positions) {
                    Ok(row) => out.rows.push(row),
                    Err(reason) => out.rejected.push(Rejected { line, reason }),
                }
            }
        }
    }
    if out.data_rows == 0 {
        return Err(FileError::Empty);
    }
    Ok((format, out))
}

/// UTF-8 (a byte-order mark dropped), else Latin-1: old scripts and spreadsheets wrote both,
/// and Latin-1 maps every byte, so no name is lost to replacement characters.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The PHP guard that kept the records file from being served (`<?php exit; ?>`, `<? die();`)
/// or its closing tag.
fn is_guard(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("<?") || line == "?>"
}

/// The separator that splits the most lines into the same number (two or more) of fields.
fn detect_separator<'a>(lines: impl Iterator<Item = &'a str>) -> u8 {
    let lines: Vec<&str> = lines.take(200).collect();
    let mut best = (b',', 0usize);
    for candidate in [b'\t', b'|', b';', b','] {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for line in &lines {
            let fields = line.bytes().filter(|&b| b == candidate).count() + 1;
            if fields >= 2 {
                *counts.entry(fields).or_default() += 1;
            }
        }
        let score = counts.values().copied().max().unwrap_or(0);
        if score > best.1 {
            best = (candidate, score);
        }
    }
    best.0
}

/// A first record that is column names, not a sale (no download ID and no email address).
fn looks_like_header(fields: &[String]) -> bool {
    !fields.iter().any(|f| {
        Email::parse(f).is_ok()
            || DownloadPassword::parse(f).is_ok_and(|p| matches!(p, DownloadPassword::Legacy(_)))
    })
}

fn legacy_row(line: u64, fields: &[String]) -> Result<SaleRow, String> {
    if fields.len() != 5 {
        return Err(format!(
            "expected 5 fields (download ID, product ID, email, transaction ID, name), found {}",
            fields.len()
        ));
    }
    let Ok(download_id @ DownloadPassword::Legacy(_)) = DownloadPassword::parse(&fields[0]) else {
        return Err(format!(
            "\"{}\" is not a download ID (the date as YYYYMMDD followed by 16 letters or digits)",
            clip(&fields[0])
        ));
    };
    let id = download_id.canonical();
    let sold_at = Timestamp::parse_date_time(&id[..8]).ok_or_else(|| {
        format!(
            "the download ID {id} starts with {}, which is not a date (YYYYMMDD)",
            &id[..8]
        )
    })?;
    let product = product_field(&fields[1])?;
    let email =
        Email::parse(&fields[2]).map_err(|e| format!("email \"{}\": {e}", clip(&fields[2])))?;
    Ok(SaleRow {
        line,
        download_id: Some(download_id),
        product,
        email,
        name: name_field(&fields[4])?,
        transaction_id: transaction_field(&fields[3])?,
        sold_at: Some(sold_at),
        status: OrderStatus::Confirmed,
        // The legacy script's records say nothing of money.
        amount: None,
    })
}

/// Where each field's column is, from the header row and the seller's mapping.
fn column_positions(
    header: &[String],
    columns: &ColumnMap,
) -> Result<BTreeMap<Field, usize>, FileError> {
    let normalise = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let names = || header.join(", ");
    let mut positions = BTreeMap::new();
    for field in Field::ALL {
        let found = if let Some(named) = columns.get(&field) {
            let at = header
                .iter()
                .position(|h| h == named.trim())
                .or_else(|| header.iter().position(|h| normalise(h) == normalise(named)));
            Some(at.ok_or_else(|| FileError::UnknownColumn(named.clone(), names()))?)
        } else {
            header
                .iter()
                .position(|h| field.usual_headers().contains(&normalise(h).as_str()))
        };
        match (found, field) {
            (Some(at), _) => {
                positions.insert(field, at);
            }
            (None, Field::Email | Field::Product) => {
                return Err(FileError::MissingColumn(field.key(), names()));
            }
            (None, _) => {}
        }
    }
    Ok(positions)
}

fn csv_row(
    line: u64,
    fields: &[String],
    positions: &BTreeMap<Field, usize>,
) -> Result<SaleRow, String> {
    let get = |field: Field| {
        positions
            .get(&field)
            .and_then(|&at| fields.get(at))
            .map_or("", String::as_str)
    };
    let email_text = get(Field::Email);
    let email =
        Email::parse(email_text).map_err(|e| format!("email \"{}\": {e}", clip(email_text)))?;
    let sold_at = match get(Field::Date) {
        "" => None,
        text => Some(Timestamp::parse_date_time(text).ok_or_else(|| {
            format!(
                "date \"{}\" is not a date such as 2026-11-22 or 2026-11-22T14:30:00Z",
                clip(text)
            )
        })?),
    };
    let status = match get(Field::Status) {
        "" => OrderStatus::Confirmed,
        text => parse_status(text).ok_or_else(|| {
            format!(
                "status \"{}\" is none of confirmed, pending, on_hold, refunded, cancelled",
                clip(text)
            )
        })?,
    };
    let amount = match (get(Field::Amount).trim(), get(Field::Currency).trim()) {
        ("", _) => None,
        (_, "") => {
            return Err("an amount needs a currency column (such as EUR) beside it".into());
        }
        (value, currency) => Some(
            Money::parse(value, currency)
                .map_err(|e| format!("amount \"{}\": {e}", clip(value)))?,
        ),
    };
    Ok(SaleRow {
        line,
        download_id: None,
        product: product_field(get(Field::Product))?,
        email,
        name: name_field(get(Field::Name))?,
        transaction_id: transaction_field(get(Field::TransactionId))?,
        sold_at,
        status,
        amount,
    })
}

/// Statuses as stores write them (`Completed`, `paid`, `Refunded`, …).
fn parse_status(text: &str) -> Option<OrderStatus> {
    let lower = text.trim().to_lowercase().replace([' ', '-'], "_");
    OrderStatus::parse(&lower).or(match lower.as_str() {
        "completed" | "complete" | "paid" | "succeeded" | "success" | "processing" => {
            Some(OrderStatus::Confirmed)
        }
        "refund" | "reversed" | "chargeback" => Some(OrderStatus::Refunded),
        "canceled" | "void" | "failed" => Some(OrderStatus::Cancelled),
        "hold" | "on_hold" | "held" => Some(OrderStatus::OnHold),
        "unpaid" | "awaiting_payment" => Some(OrderStatus::Pending),
        _ => None,
    })
}

fn product_field(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the product ID is empty".into());
    }
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(format!("\"{}\" is not a product ID", clip(text)));
    }
    Ok(text.to_owned())
}

fn name_field(text: &str) -> Result<String, String> {
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err("the name has more than 200 characters or control characters".into());
    }
    Ok(text.to_owned())
}

fn transaction_field(text: &str) -> Result<Option<String>, String> {
    if text.len() > 128 || text.chars().any(char::is_control) {
        return Err(format!(
            "the transaction ID \"{}\" is longer than 128 characters or has control characters",
            clip(text)
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// At most 60 characters of a field, for a rejection message.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHP: &str = "<?php exit; ?>\n\
        20240105ABCDEFGHJKMNPQRS|ebook|ann@example.com|9XK12345AB678901C|Ann Smith\n\
        \n\
        20241301ABCDEFGHJKMNPQRT|ebook|bob@example.com|8XK12345AB678901C|Bob\n\
        20240106ABCDEFGHJKMNPQRU|ebook|not-an-address|7XK12345AB678901C|Cy\n\
        20240107ABCDEFGHJKMNPQRV|ebook|dee@example.com\n\
        20240108ABCDEFGHJKMNPQRW|course|eve@example.com||Eve, Jr.\n";

    #[test]
    fn a_legacy_php_file_is_read_with_its_guard_and_bad_rows_named_by_line() {
        let (format, file) = read(PHP.as_bytes(), None, &ColumnMap::new()).unwrap();
        assert_eq!(format, Format::Legacy);
        assert_eq!(file.separator, '|');
        assert_eq!(file.data_rows, 5);
        let lines: Vec<u64> = file.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 7]);
        let ann = &file.rows[0];
        assert_eq!(
            ann.download_id.as_ref().unwrap().canonical(),
            "20240105ABCDEFGHJKMNPQRS"
        );
        assert_eq!(ann.email.as_str(), "ann@example.com");
        assert_eq!(ann.transaction_id.as_deref(), Some("9XK12345AB678901C"));
        assert_eq!(ann.sold_at.unwrap().to_string(), "2024-01-05T00:00:00.000Z");
        assert_eq!(file.rows[1].transaction_id, None);
        assert_eq!(file.rows[1].name, "Eve, Jr.");
        let rejected: Vec<(u64, &str)> = file
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert_eq!(rejected[0].0, 4);
        assert!(rejected[0].1.contains("not a date"), "{}", rejected[0].1);
        assert_eq!(rejected[1].0, 5);
        assert!(rejected[1].1.starts_with("email"), "{}", rejected[1].1);
        assert_eq!(rejected[2].0, 6);
        assert!(rejected[2].1.contains("found 3"), "{}", rejected[2].1);
    }

    #[test]
    fn the_same_rows_as_csv_or_tsv_read_the_same() {
        let (_, php) = read(PHP.as_bytes(), None, &ColumnMap::new()).unwrap();
        let body: Vec<&str> = PHP.lines().skip(1).collect();
        let tsv = body.join("\n").replace('|', "\t");
        // A spreadsheet quotes the field with a comma in it.
        let csv = body
            .join("\r\n")
            .replace("Eve, Jr.", "\"Eve, Jr.\"")
            .replace('|', ",");
        for (text, separator) in [(tsv, '\t'), (csv, ',')] {
            let (format, file) = read(text.as_bytes(), None, &ColumnMap::new()).unwrap();
            assert_eq!(format, Format::Legacy);
            assert_eq!(file.separator, separator);
            assert_eq!(
                file.rows,
                php.rows
                    .iter()
                    .map(|r| SaleRow {
                        line: r.line - 1,
                        ..r.clone()
                    })
                    .collect::<Vec<_>>()
            );
            assert_eq!(file.rejected.len(), 3);
        }
    }

    #[test]
    fn a_header_row_over_legacy_records_is_skipped() {
        let text = "download_id;product;email;txn;name\n20240105ABCDEFGHJKMNPQRS;ebook;ann@example.com;T1;Ann\n";
        let (format, file) =
            read(text.as_bytes(), Some(Format::Legacy), &ColumnMap::new()).unwrap();
        assert_eq!(format, Format::Legacy);
        assert_eq!(
            (file.rows.len(), file.rejected.len(), file.data_rows),
            (1, 0, 1)
        );
        assert_eq!(file.rows[0].line, 2);
    }

    #[test]
    fn latin1_names_survive() {
        let mut bytes = b"20240105ABCDEFGHJKMNPQRS|ebook|ann@example.com|T1|Ren".to_vec();
        bytes.push(0xE9); // é in Latin-1
        let (_, file) = read(&bytes, None, &ColumnMap::new()).unwrap();
        assert_eq!(file.rows[0].name, "René");
    }

    #[test]
    fn csv_columns_are_found_by_usual_headers_or_by_mapping() {
        let text = "Order Date,Buyer Email,Full Name,SKU,Txn ID,Status\n\
            2026-11-22,ann@example.com,Ann,ebook,T1,Completed\n\
            2026-11-23T10:00:00Z,bob@example.com,Bob,course,,refunded\n\
            yesterday,cy@example.com,Cy,ebook,T3,paid\n\
            2026-11-24,dee@example.com,Dee,ebook,T4,lost\n";
        let (format, file) = read(text.as_bytes(), None, &ColumnMap::new()).unwrap();
        assert_eq!(format, Format::Csv);
        assert_eq!(file.rows.len(), 2);
        assert_eq!(file.rows[0].product, "ebook");
        assert_eq!(file.rows[0].status, OrderStatus::Confirmed);
        assert_eq!(file.rows[1].status, OrderStatus::Refunded);
        assert_eq!(file.rows[1].transaction_id, None);
        assert_eq!(
            file.rows[1].sold_at.unwrap().to_string(),
            "2026-11-23T10:00:00.000Z"
        );
        assert_eq!(
            file.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
            [4, 5]
        );

        let text = "who,what\nann@example.com,ebook\n";
        assert!(matches!(
            read(text.as_bytes(), None, &ColumnMap::new()),
            Err(FileError::MissingColumn("email", _))
        ));
        let map = ColumnMap::from([
            (Field::Email, "who".to_owned()),
            (Field::Product, "What".to_owned()),
        ]);
        let (_, file) = read(text.as_bytes(), None, &map).unwrap();
        assert_eq!(file.rows[0].email.as_str(), "ann@example.com");
        let wrong = ColumnMap::from([(Field::Email, "mail".to_owned())]);
        assert!(matches!(
            read(text.as_bytes(), None, &wrong),
            Err(FileError::UnknownColumn(..))
        ));
    }

    #[test]
    fn an_empty_or_guard_only_file_is_refused() {
        for text in ["", "\n\n", "<?php exit; ?>\n"] {
            assert_eq!(
                read(text.as_bytes(), None, &ColumnMap::new()).unwrap_err(),
                FileError::Empty
            );
        }
    }
}
