//! The REST API of records in and out: imports of sale records (with a dry run), CSV
//! exports streamed row by row, and the online backup. The admin uses the same routes with
//! its session, so these sit beside the upload route (bodies larger than the JSON limit,
//! answers streamed). Same conventions as `api.rs`.

use super::HttpState;
use super::api::{ApiError, ApiPath, ApiQuery};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use backend::ServiceError;
use backend::sales_file::Field;
use backend::services::{Actor, ExportFilter, ExportKind, ImportRequest};
use domain::records::{CustomerData, ErasureReport, ImportFormat, ImportReport, WindowStart};
use domain::{ProductId, Timestamp};
use http::{StatusCode, header};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type ApiResult<T> = Result<T, ApiError>;

/// Largest sale-record file an import reads (a million legacy rows is about 90 MB).
pub const IMPORT_LIMIT: usize = 256 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::new()
        .routes(routes!(import_sales))
        .routes(routes!(export))
        .routes(routes!(backup))
        .routes(routes!(customer))
        .routes(routes!(erase_customer))
}

/// How to read the file and what to do with it. `map` and `column` may repeat.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query that `import_request` reads pair by pair
struct ImportQuery {
    /// `legacy` or `csv`; detected from the file when absent.
    format: Option<String>,
    /// `true`: report what would be created and every rejected row, change nothing.
    dry_run: Option<bool>,
    /// Where grants' download windows start: `import` (default) or `sale`.
    window: Option<String>,
    /// `true`: mail the imported buyers their links (they already hold them: off by default).
    notify: Option<bool>,
    /// `true`: import the good rows and leave the rejected ones out.
    skip_rejected: Option<bool>,
    /// `FILE_ID=PRODUCT_ID`: a product ID of the file that differs from the shop's.
    map: Option<String>,
    /// `FIELD=HEADER`: the CSV column of a field (email, name, product, transaction_id,
    /// date, status) where the header is not the usual name.
    column: Option<String>,
}

fn flag(name: &str, value: &str) -> ApiResult<bool> {
    match value {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiError::from(ServiceError::invalid(
            "query",
            format!("{name} is true or false, not {value:?}"),
        ))),
    }
}

fn import_request(pairs: Vec<(String, String)>) -> ApiResult<ImportRequest> {
    let invalid = |m: String| ApiError::from(ServiceError::invalid("query", m));
    let mut request = ImportRequest::default();
    for (key, value) in pairs {
        match key.as_str() {
            "format" => {
                request.format = Some(match value.as_str() {
                    "legacy" => ImportFormat::Legacy,
                    "csv" => ImportFormat::Csv,
                    other => {
                        return Err(invalid(format!("format is legacy or csv, not {other:?}")));
                    }
                });
            }
            "window" => {
                request.window = match value.as_str() {
                    "import" => WindowStart::Import,
                    "sale" => WindowStart::Sale,
                    other => {
                        return Err(invalid(format!("window is import or sale, not {other:?}")));
                    }
                };
            }
            "dry_run" => request.dry_run = flag(&key, &value)?,
            "notify" => request.notify = flag(&key, &value)?,
            "skip_rejected" => request.skip_rejected = flag(&key, &value)?,
            "map" => {
                let (from, to) = value
                    .split_once('=')
                    .filter(|(f, t)| !f.trim().is_empty() && !t.trim().is_empty())
                    .ok_or_else(|| invalid(format!("map is FILE_ID=PRODUCT_ID, not {value:?}")))?;
                request
                    .product_map
                    .insert(from.trim().to_owned(), to.trim().to_owned());
            }
            "column" => {
                let (field, header) = value
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("column is FIELD=HEADER, not {value:?}")))?;
                let field = Field::parse(field).ok_or_else(|| {
                    invalid(format!(
                        "{field:?} is not a field; the fields are email, name, product, transaction_id, date and status"
                    ))
                })?;
                request.columns.insert(field, header.trim().to_owned());
            }
            other => return Err(invalid(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(request)
}

#[utoipa::path(post, path = "/api/v1/imports", tag = "records",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "The sale-record file as it is: the legacy script's .php or .txt file, or CSV/TSV (UTF-8 or Latin-1)"),
    responses(
        (status = 200, description = "What was imported, or in a dry run what would be", body = ImportReport),
        (status = 413, description = "The file is larger than 256 MiB", body = super::api::ErrorBody),
        (status = 422, description = "The file cannot be read, or rows were rejected (nothing was imported)", body = super::api::ErrorBody)))]
async fn import_sales(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Body,
) -> ApiResult<Response> {
    let request = import_request(pairs)?;
    let file = axum::body::to_bytes(body, IMPORT_LIMIT)
        .await
        .map_err(|_| {
            ApiError::from(ServiceError::TooLarge(
                "the file is larger than 256 MiB; split it and import the parts".into(),
            ))
        })?;
    let report = s
        .records
        .imports
        .import(file.to_vec(), request, actor, backend::clock::now())
        .await?;
    Ok(Json(report).into_response())
}

/// Which rows to export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// From this date (`2026-01-01` or RFC 3339), inclusive.
    from: Option<String>,
    /// Up to this date, exclusive (`to=2026-02-01` is all of January).
    to: Option<String>,
    /// Only this product's orders, grants or events.
    product: Option<String>,
}

fn date(name: &'static str, text: Option<&str>) -> ApiResult<Option<Timestamp>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            Timestamp::parse_date_time(t).ok_or_else(|| {
                ApiError::from(ServiceError::invalid(
                    name,
                    format!("{t:?} is not a date such as 2026-11-22 or 2026-11-22T14:30:00Z"),
                ))
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/exports/{name}", tag = "records",
    params(("name" = String, Path, description = "orders.csv, grants.csv or events.csv"), ExportQuery),
    responses(
        (status = 200, description = "CSV with a header row, streamed", content_type = "text/csv", body = String),
        (status = 404, description = "No such export", body = super::api::ErrorBody),
        (status = 422, description = "A date or the product is invalid", body = super::api::ErrorBody)))]
async fn export(
    State(s): State<HttpState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let kind = ExportKind::parse(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "there is no export {name:?}; the exports are orders.csv, grants.csv and events.csv"
        ))
    })?;
    let filter = ExportFilter {
        from: date("from", query.from.as_deref())?,
        to: date("to", query.to.as_deref())?,
        product: query
            .product
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| {
                ProductId::parse(p).map_err(|m| ApiError::from(ServiceError::invalid("product", m)))
            })
            .transpose()?,
    };
    let now = backend::clock::now();
    let rows = s.records.exports.export(kind, filter, now).await?;
    let body = Body::from_stream(receiver_stream(rows));
    let file = format!("dropgate-{}-{}.csv", kind.name(), stamp(now));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// A receiver as a stream of body chunks.
fn receiver_stream<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `20261202-193012` for file names.
fn stamp(now: Timestamp) -> String {
    let c = now.civil();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[utoipa::path(get, path = "/api/v1/backup", tag = "records",
    responses(
        (status = 200, description = "A consistent copy of the whole store as one redb file (open it with `dropgate restore`); downloads and orders go on while it is made",
            content_type = "application/octet-stream", body = Vec<u8>)))]
async fn backup(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Response> {
    let now = backend::clock::now();
    let (file, summary) = s.records.backups.make(actor, now).await?;
    let length = file.metadata().await.map_or(0, |m| m.len());
    let body = Body::from_stream(file_stream(file));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"dropgate-{}.redb\"", stamp(now)),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::HeaderName::from_static("x-dropgate-backup-orders"),
                summary.orders.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

/// A file read in 256 KiB chunks as a body stream.
fn file_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 256 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[utoipa::path(get, path = "/api/v1/customers/{email}", tag = "records",
    params(("email" = String, Path, description = "The buyer's email address")),
    responses(
        (status = 200, description = "Everything held about the address: orders, links with every use, mails, payment notifications (empty lists when nothing)", body = CustomerData),
        (status = 422, description = "Not an email address", body = super::api::ErrorBody)))]
async fn customer(
    State(s): State<HttpState>,
    ApiPath(email): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(
        s.records
            .customers
            .data(&email, backend::clock::now())
            .await?,
    )
    .into_response())
}

#[utoipa::path(post, path = "/api/v1/customers/{email}/erase", tag = "records",
    params(("email" = String, Path, description = "The buyer's email address")),
    responses(
        (status = 200, description = "Erased: the person is gone from orders, mails, notifications, deliveries, the download log and the audit snapshots, their links no longer work, and the sales stay without them", body = ErasureReport),
        (status = 422, description = "Not an email address", body = super::api::ErrorBody)))]
async fn erase_customer(
    State(s): State<HttpState>,
    Extension(actor): Extension<Actor>,
    ApiPath(email): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(
        s.records
            .customers
            .erase(&email, actor, backend::clock::now())
            .await?,
    )
    .into_response())
}
