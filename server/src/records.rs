//! The record commands: `import sales`, `export` and `backup` talk to the running server
//! through its API (redb allows one process per data file, and the server keeps serving
//! meanwhile); `restore` installs a backup into a stopped server's data directory.

use crate::cli::{BackupArgs, ExportArgs, ImportSalesArgs, ServerArgs, StoreArgs};
use crate::commands::CommandError;
use crate::config::{resolve_data_dir, resolve_server_url};
use backend::services::MigrationStep;
use backend::store::backup;
use domain::records::ImportReport;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A client of the running server's API.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(args: &ServerArgs) -> Result<Self, CommandError> {
        let base = resolve_server_url(args.server.as_deref(), args.config.as_deref())?;
        if args.token.trim().is_empty() {
            return Err(CommandError::Usage(
                "an API token is needed: --token or DROPGATE_API_TOKEN (dropgate token create)"
                    .into(),
            ));
        }
        backend::tls::install_crypto_provider();
        Ok(Self {
            base,
            token: args.token.trim().to_owned(),
            http: reqwest::Client::new(),
        })
    }

    /// A request to `path` with `query` (keys may repeat).
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::RequestBuilder, CommandError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| CommandError::Usage(format!("the server address {}: {e}", self.base)))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(self.http.request(method, url).bearer_auth(&self.token))
    }

    /// Sends, and turns a refusal into the API's own message.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CommandError> {
        let response = request.send().await.map_err(|e| {
            CommandError::Failed(format!(
                "cannot reach the server at {}: {e} (is it running? --server names another address)",
                self.base
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        let message = format!("the server refused ({status}): {message}");
        Err(
            if status.is_client_error() && status != reqwest::StatusCode::UNAUTHORIZED {
                CommandError::Usage(message)
            } else {
                CommandError::Failed(message)
            },
        )
    }

    /// Writes a streamed answer to `out`, chunk by chunk; returns the bytes written.
    async fn save(
        mut response: reqwest::Response,
        out: &mut impl Write,
    ) -> Result<u64, CommandError> {
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CommandError::Failed(format!("the transfer broke off: {e}")))?
        {
            out.write_all(&chunk)
                .map_err(|e| CommandError::Failed(format!("cannot write: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }
}

/// `dropgate import sales FILE`.
pub async fn import_sales(args: ImportSalesArgs) -> Result<(), CommandError> {
    let api = Api::new(&args.server)?;
    let file = std::fs::read(&args.file)
        .map_err(|e| CommandError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let mut query: Vec<(&str, String)> = vec![
        ("dry_run", args.dry_run.to_string()),
        ("window", args.window.clone()),
        ("notify", args.notify.to_string()),
        ("skip_rejected", args.skip_rejected.to_string()),
    ];
    if let Some(format) = &args.format {
        query.push(("format", format.clone()));
    }
    query.extend(args.map.iter().map(|m| ("map", m.clone())));
    query.extend(args.column.iter().map(|c| ("column", c.clone())));
    let response = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/imports", &query)?
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(file),
        )
        .await?;
    let body = response
        .bytes()
        .await
        .map_err(|e| CommandError::Failed(format!("the transfer broke off: {e}")))?;
    let report: ImportReport = serde_json::from_slice(&body)
        .map_err(|e| CommandError::Failed(format!("the server's answer was not a report: {e}")))?;
    print!("{}", describe(&report));
    Ok(())
}

/// The report as a person reads it.
fn describe(report: &ImportReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verb = if report.dry_run {
        "would create"
    } else {
        "created"
    };
    let _ = writeln!(
        out,
        "{} rows read ({:?} format, separator {}): {verb} {} orders with {} links; {} already imported; {} rejected.",
        report.rows,
        report.format,
        report.separator,
        report.orders,
        report.grants,
        report.already_imported,
        report.rejected.len()
    );
    for r in &report.rejected {
        let _ = writeln!(out, "  line {}: {}", r.line, r.reason);
    }
    if !report.unknown_products.is_empty() {
        let _ = writeln!(
            out,
            "Products not in the shop: {} (map each with --map FILE_ID=PRODUCT_ID).",
            report.unknown_products.join(", ")
        );
    }
    if report.dry_run {
        let _ = writeln!(out, "Dry run: nothing was changed.");
    }
    out
}

/// `dropgate export orders|grants|events`.
pub async fn export(args: ExportArgs) -> Result<(), CommandError> {
    let api = Api::new(&args.server)?;
    let name = match args.what.as_str() {
        "orders" | "grants" | "events" => format!("{}.csv", args.what),
        other => {
            return Err(CommandError::Usage(format!(
                "there is no export {other:?}; the exports are orders, grants and events"
            )));
        }
    };
    let mut query = Vec::new();
    for (key, value) in [
        ("from", &args.from),
        ("to", &args.to),
        ("product", &args.product),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    let response = api
        .send(api.request(
            reqwest::Method::GET,
            &format!("/api/v1/exports/{name}"),
            &query,
        )?)
        .await?;
    if let Some(path) = &args.output {
        let (mut file, staged) = staged_file(path)?;
        Api::save(response, &mut file).await?;
        finish(file, &staged, path)?;
    } else {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        Api::save(response, &mut out).await?;
    }
    Ok(())
}

/// `dropgate backup`: the copy is written beside its final name and checked before it
/// takes it, so a file with that name is always a whole, verified backup.
pub async fn backup(args: BackupArgs) -> Result<(), CommandError> {
    let api = Api::new(&args.server)?;
    let path = args.output.clone().unwrap_or_else(|| {
        let c = backend::clock::now().civil();
        PathBuf::from(format!(
            "dropgate-backup-{:04}{:02}{:02}-{:02}{:02}{:02}.redb",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ))
    });
    let response = api
        .send(api.request(reqwest::Method::GET, "/api/v1/backup", &[])?)
        .await?;
    let (mut file, staged) = staged_file(&path)?;
    let bytes = Api::save(response, &mut file).await?;
    file.sync_all()
        .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", staged.display())))?;
    drop(file);
    let summary = backup::verify_backup(&staged).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        CommandError::Failed(format!("the copy did not verify: {e}"))
    })?;
    std::fs::rename(&staged, &path)
        .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "Saved {} ({} bytes): {} orders, {} tables, {} rows, schema {}.",
        path.display(),
        bytes,
        summary.orders,
        summary.tables,
        summary.rows,
        summary.schema_version
    );
    Ok(())
}

/// `dropgate restore FILE`.
pub fn restore(store: &StoreArgs, file: &Path) -> Result<(), CommandError> {
    if !file.is_file() {
        return Err(CommandError::Usage(format!(
            "{} is not a file",
            file.display()
        )));
    }
    let data_dir = resolve_data_dir(store)?;
    let database = data_dir.join("dropgate.redb");
    let c = backend::clock::now().civil();
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    let restored = backup::install(file, &database, &stamp).map_err(|e| match e {
        backend::StoreError::AlreadyOpen { .. } => CommandError::Failed(format!(
            "a Dropgate server is running on {}: stop it first, then restore",
            data_dir.display()
        )),
        other => CommandError::Failed(format!("nothing was changed: {other}")),
    })?;
    println!(
        "Restored {} into {}: {} orders, {} rows.",
        file.display(),
        database.display(),
        restored.summary.orders,
        restored.summary.rows
    );
    for kept in &restored.kept {
        println!("The file it replaced is kept as {}.", kept.display());
    }
    Ok(())
}

/// `dropgate storage migrate --to STORE`.
pub async fn migrate_storage(args: &crate::cli::MigrateArgs) -> Result<(), CommandError> {
    let config = crate::config::Config::from_args(&args.serve)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let stores = crate::startup::open_file_stores(&config)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    let to = stores
        .resolve(Some(&args.to))
        .map_err(CommandError::Usage)?;
    let path = config.database_path();
    let store = tokio::task::spawn_blocking(move || backend::Store::open(&path))
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?
        .map_err(|e| match e {
            backend::StoreError::AlreadyOpen { .. } => CommandError::Failed(format!(
                "a Dropgate server is running on {}: stop it first, then migrate",
                config.data_dir.display()
            )),
            other => CommandError::Failed(other.to_string()),
        })?;
    let migration = backend::services::StoreMigration::new(store, stores);
    let report = migration
        .run(
            &to,
            args.stop_after,
            backend::services::Actor::System,
            backend::clock::now,
            |step| match step {
                MigrationStep::Copied {
                    file,
                    version,
                    bytes,
                } => {
                    println!("copied   {file} v{version} ({bytes} bytes), SHA-256 checked");
                }
                MigrationStep::Verified {
                    file,
                    version,
                    bytes,
                } => {
                    println!("checked  {file} v{version} ({bytes} bytes), already there");
                }
                MigrationStep::Switched { files } => {
                    println!("switched {files} files to the store {}", args.to);
                }
                MigrationStep::Removed { key_count } => {
                    println!("removed  {key_count} objects from the old stores");
                }
            },
        )
        .await
        .map_err(|e| CommandError::Failed(format!("{e} (run the same command again to go on)")))?;
    if report.files_switched == 0 && report.copied + report.verified == 0 {
        println!("Every file is in the store {} already.", args.to);
    } else if args.stop_after.is_some() && report.files_switched == 0 {
        println!(
            "Stopped before the switch: {} copied, {} checked. Run the command again to finish.",
            report.copied, report.verified
        );
    } else {
        println!(
            "Done: {} objects copied, {} checked, {} bytes; {} files now in {}.",
            report.copied, report.verified, report.bytes, report.files_switched, args.to
        );
    }
    Ok(())
}

/// A file beside `path` to write into before it takes the name.
fn staged_file(path: &Path) -> Result<(std::fs::File, PathBuf), CommandError> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".partial");
    let staged = PathBuf::from(staged);
    let file = std::fs::File::create(&staged)
        .map_err(|e| CommandError::Usage(format!("cannot write {}: {e}", staged.display())))?;
    Ok((file, staged))
}

fn finish(file: std::fs::File, staged: &Path, path: &Path) -> Result<(), CommandError> {
    file.sync_all()
        .and_then(|()| std::fs::rename(staged, path))
        .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", path.display())))
}
