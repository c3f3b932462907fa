//! The command line: `dropgate serve | admin … | token … | import … | export … | backup |
//! restore …`, each with `--help`.

use crate::config::{LogFormat, SmtpSecurity};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Dropgate: self-hosted digital-download delivery in one binary.
#[derive(Debug, Parser)]
#[command(name = "dropgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (buyer pages, admin, REST API).
    Serve(Box<ServeArgs>),
    /// Manage staff accounts of the admin.
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Manage REST API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Import sale records into a running server (through its API).
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Export orders, grants or download events of a running server as CSV.
    Export(ExportArgs),
    /// Save a consistent copy of a running server's data (downloads go on meanwhile).
    Backup(BackupArgs),
    /// Manage where product files are kept.
    Storage {
        #[command(subcommand)]
        action: StorageCommand,
    },
    /// Install a backup into the data directory of a stopped server.
    Restore {
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file (from `dropgate backup` or the admin).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Move every product file to another file store (a stopped server's data dir, with the
    /// same store flags the server runs with): copy, check each SHA-256, switch, then remove
    /// the old objects. Run it again after an interruption: it goes on where it stopped.
    Migrate(Box<MigrateArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The store to move every file to: `default` (the --storage-url) or a --store name.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// Stop after copying this many objects, before the switch (to rehearse an
    /// interruption).
    #[arg(long, hide = true, value_name = "N")]
    pub stop_after: Option<usize>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// How a command reaches the running server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's address [default: http:// and the --bind of its configuration, else
    /// http://127.0.0.1:8080].
    #[arg(long, env = "DROPGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// An API token (`dropgate token create`); prefer the environment variable.
    #[arg(
        long,
        env = "DROPGATE_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// The configuration file the server uses, to find its address.
    #[arg(long, env = "DROPGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Sale records: the legacy download script's file (.php or .txt, any separator) or a
    /// CSV with a header row. Old download IDs stay the buyers' links.
    Sales(ImportSalesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImportSalesArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The file to import.
    pub file: PathBuf,
    /// Show what would be created and every rejected row; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// legacy or csv [default: detected from the file].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// A product ID of the file that differs from the shop's: FILE_ID=PRODUCT_ID (repeat).
    #[arg(long = "map", value_name = "FILE_ID=PRODUCT_ID")]
    pub map: Vec<String>,
    /// The CSV column of a field (email, name, product, transaction_id, date, status):
    /// FIELD=HEADER (repeat).
    #[arg(long = "column", value_name = "FIELD=HEADER")]
    pub column: Vec<String>,
    /// Where download windows start: import (past buyers keep the full window) or sale.
    #[arg(long, value_name = "FROM", default_value = "import")]
    pub window: String,
    /// Mail the imported buyers their links.
    #[arg(long)]
    pub notify: bool,
    /// Import the good rows and leave the rejected ones out.
    #[arg(long)]
    pub skip_rejected: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// orders, grants or events.
    pub what: String,
    /// From this date (2026-01-01), inclusive.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Up to this date, exclusive.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only this product.
    #[arg(long, value_name = "PRODUCT_ID")]
    pub product: Option<String>,
    /// Where to write the CSV [default: standard output].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where to write the copy [default: dropgate-backup-DATE.redb here].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Where the data lives; shared by every command.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory holding the database and local files.
    #[arg(long, env = "DROPGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Optional TOML configuration file (flags and environment variables override it).
    #[arg(long, env = "DROPGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "DROPGATE_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Public base URL used in download links and mails, e.g. https://downloads.example.com.
    #[arg(long, env = "DROPGATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Reverse proxy allowed to set X-Forwarded-For (IP or CIDR; repeat or comma-separate).
    #[arg(
        long,
        env = "DROPGATE_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,
    /// Where product files live: file:///path or s3://bucket/prefix [default: DATA_DIR/files].
    #[arg(long, env = "DROPGATE_STORAGE_URL", value_name = "URL")]
    pub storage_url: Option<String>,
    /// Another file store, by name: NAME=URL (file:///path or s3://bucket/prefix; S3 ones
    /// share --s3-endpoint, --s3-region and --s3-proxy). Uploads and attaches can pick it,
    /// and `dropgate storage migrate` moves files to it. Repeat for more.
    #[arg(
        long = "store",
        env = "DROPGATE_STORES",
        value_name = "NAME=URL",
        value_delimiter = ','
    )]
    pub file_stores: Vec<String>,
    /// S3-compatible endpoint (MinIO, Garage, ...); credentials come from AWS_ACCESS_KEY_ID
    /// and AWS_SECRET_ACCESS_KEY [default: AWS].
    #[arg(long, env = "DROPGATE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region [default: AWS_REGION, else us-east-1].
    #[arg(long, env = "DROPGATE_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Proxy mode: S3 downloads stream through Dropgate (every byte counted, no redirect to
    /// the bucket) instead of going to short-lived presigned URLs.
    #[arg(long, env = "DROPGATE_S3_PROXY")]
    pub s3_proxy: bool,
    /// SMTP server for outgoing mail; without it mail waits in the outbox.
    #[arg(long, env = "DROPGATE_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 587 for starttls, 465 for tls, 25 for none].
    #[arg(long, env = "DROPGATE_SMTP_PORT", value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// How the SMTP connection is secured [default: starttls].
    #[arg(long, env = "DROPGATE_SMTP_SECURITY", value_enum)]
    pub smtp_security: Option<SmtpSecurity>,
    /// SMTP user name.
    #[arg(long, env = "DROPGATE_SMTP_USERNAME", value_name = "USER")]
    pub smtp_username: Option<String>,
    /// SMTP password (prefer the environment variable to keep it out of `ps`).
    #[arg(
        long,
        env = "DROPGATE_SMTP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,
    /// Sender of outgoing mail, e.g. "Shop <shop@example.com>".
    #[arg(long, env = "DROPGATE_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// GeoIP country database (MaxMind GeoIP2/GeoLite2 or ip-location-db .mmdb).
    #[arg(long, env = "DROPGATE_GEOIP_DB", value_name = "PATH")]
    pub geoip_db: Option<PathBuf>,
    /// Days a mail that cannot be delivered is retried (with growing waits) before it is
    /// marked failed [default: 4].
    #[arg(long, env = "DROPGATE_MAIL_RETRY_DAYS", value_name = "DAYS")]
    pub mail_retry_days: Option<u32>,
    /// Log format [default: human].
    #[arg(long, env = "DROPGATE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Largest product file upload in bytes [default: 10 GiB].
    #[arg(long, env = "DROPGATE_UPLOAD_LIMIT", value_name = "BYTES")]
    pub upload_limit: Option<u64>,
    /// Seconds a client has to send its request headers [default: 20].
    #[arg(long, env = "DROPGATE_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,
    /// Seconds a client has to send a whole request body, uploads excepted [default: 30].
    #[arg(long, env = "DROPGATE_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    pub body_read_timeout: Option<u64>,
    /// Seconds a response may wait for a client that takes no bytes (a stalled download)
    /// before its connection is closed [default: 60].
    #[arg(long, env = "DROPGATE_SEND_TIMEOUT", value_name = "SECONDS")]
    pub send_timeout: Option<u64>,
    /// Requests a minute one download link may make to /d/ (pages and files; a burst of as
    /// many is allowed), 0 = no limit [default: 240].
    #[arg(
        long,
        env = "DROPGATE_DOWNLOAD_RATE_PER_LINK",
        value_name = "PER_MINUTE"
    )]
    pub download_rate_per_link: Option<u32>,
    /// Requests a minute one client (IPv4 address or IPv6 /64) may make to /d/, 0 = no
    /// limit [default: 600].
    #[arg(
        long,
        env = "DROPGATE_DOWNLOAD_RATE_PER_CLIENT",
        value_name = "PER_MINUTE"
    )]
    pub download_rate_per_client: Option<u32>,
    /// Connections served at once; at the cap new ones wait to be accepted [default: 4096].
    #[arg(long, env = "DROPGATE_MAX_CONNECTIONS", value_name = "COUNT")]
    pub max_connections: Option<usize>,
    /// Bearer token that opens /metrics to clients outside this host's network (clients on
    /// the host or its private network need none) [default: none].
    #[arg(long, env = "DROPGATE_METRICS_TOKEN", value_name = "TOKEN")]
    pub metrics_token: Option<String>,
    /// Make a backup of the data every day into this directory (dropgate-YYYYMMDD.redb)
    /// [default: none].
    #[arg(long, env = "DROPGATE_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How many daily backups to keep in --backup-dir [default: 7].
    #[arg(long, env = "DROPGATE_BACKUP_KEEP", value_name = "COUNT")]
    pub backup_keep: Option<u32>,
    /// Calls this address instead of Stripe's API (a test server; the Stripe key is sent
    /// to it) [default: https://api.stripe.com].
    #[arg(long, env = "DROPGATE_STRIPE_API_BASE", value_name = "URL")]
    pub stripe_api_base: Option<String>,
    /// Calls this address instead of Paddle's live and sandbox APIs (a test server; the
    /// Paddle API key is sent to it) [default: Paddle's, by the integration's environment].
    #[arg(long, env = "DROPGATE_PADDLE_API_BASE", value_name = "URL")]
    pub paddle_api_base: Option<String>,
    /// Verifies PayPal IPNs at this address instead of PayPal's (a test server: whatever
    /// answers VERIFIED there is believed) [default: PayPal's live or sandbox verifier].
    #[arg(long, env = "DROPGATE_PAYPAL_VERIFY_URL", value_name = "URL")]
    pub paypal_verify_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a staff account (password from a prompt, or from stdin when piped).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Email address used to sign in.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Set a new password for a staff account and sign it out everywhere.
    ResetPassword {
        #[command(flatten)]
        store: StoreArgs,
        /// Email address of the account.
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once (only its hash is stored).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// What the token is for, e.g. the shop that uses it.
        #[arg(long)]
        name: String,
    },
    /// List API tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an API token at once.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// The token's id, as `token list` shows it.
        id: u64,
    },
}
