//! Configuration: defaults, then an optional TOML file, then `DROPGATE_*` environment
//! variables, then flags (clap merges the last two). Everything is validated here, at the
//! edge, into typed values; a problem is one line that names the setting.

use crate::cli::{ServeArgs, StoreArgs};
use domain::net::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem; the message names the setting and what would be valid.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or journald.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl From<SmtpSecurity> for backend::mail::worker::SmtpSecurity {
    fn from(security: SmtpSecurity) -> Self {
        match security {
            SmtpSecurity::Starttls => Self::StartTls,
            SmtpSecurity::Tls => Self::Tls,
            SmtpSecurity::None => Self::None,
        }
    }
}

/// How the SMTP connection is secured, as flags and the config file name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only for a relay on the same host.
    None,
}

/// Outgoing mail settings: the backend's, which parsing here produces.
pub use backend::mail::worker::SmtpSettings as SmtpConfig;

/// Where product files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A directory on local disk.
    Local(PathBuf),
    /// An S3 (or S3-compatible) bucket and key prefix.
    S3(backend::blobs::S3Settings),
}

/// Requests a minute to `/d/` (the buyer page and its files) one link and one client may
/// make; `None` is no limit. A burst of as many requests is allowed at once, so a download
/// manager that opens a dozen connections per file is not held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadRates {
    pub per_link: Option<u32>,
    pub per_client: Option<u32>,
}

impl Default for DownloadRates {
    fn default() -> Self {
        Self {
            per_link: Some(240),
            per_client: Some(600),
        }
    }
}

/// The validated configuration of `dropgate serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// Base URL for links in pages and mails, without a trailing slash. `None`: derived from
    /// the bound address at start.
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub storage: StorageLocation,
    /// More file stores by name (`--store NAME=URL`): a file can live in any of them.
    pub stores: Vec<(String, StorageLocation)>,
    pub smtp: Option<SmtpConfig>,
    pub geoip_db: Option<PathBuf>,
    /// How often a `geoip_db` file is checked for a newer version.
    pub geoip_reload_interval: Duration,
    pub log_format: LogFormat,
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body (product uploads excepted).
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Time a response may wait for a client that takes no bytes.
    pub send_timeout: Duration,
    /// Requests a minute to /d/ per link and per client (`None`: no limit).
    pub download_rates: DownloadRates,
    /// Opens `/metrics` to clients outside this host's network that send it as a Bearer
    /// token (clients on the host or its private network need none).
    pub metrics_token: Option<String>,
    /// Largest accepted request body outside file uploads.
    pub max_body_bytes: usize,
    /// Largest product file upload.
    pub upload_limit_bytes: u64,
    /// Days of the fresh window a desk "reset" gives until the seller saves Settings.
    pub reset_days: u32,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Lifetime of a presigned S3 download URL (the budget is spent when it is issued, so
    /// keep it short).
    pub presign_ttl: Duration,
    /// Send timeout and retry schedule of the outbox worker.
    pub mail_policy: backend::mail::worker::WorkerPolicy,
    /// Rate limits and bot checks of the buyer's self-service form.
    pub self_service: backend::services::SelfServicePolicy,
    /// Timeout and retry schedule of outgoing webhook deliveries.
    pub webhook_policy: backend::services::WebhookPolicy,
    /// Where daily backups go and how many are kept (`None`: no daily backups).
    pub daily_backups: Option<backend::services::DailyBackups>,
    /// The providers' addresses, moved only here (for tests against fakes).
    pub provider_endpoints: backend::services::ProviderEndpoints,
}

impl Config {
    /// A configuration for tests and embedding: a data dir, everything else default.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            trusted_proxies: Vec::new(),
            storage: StorageLocation::Local(data_dir.join("files")),
            stores: Vec::new(),
            smtp: None,
            geoip_db: None,
            geoip_reload_interval: Duration::from_secs(10),
            log_format: LogFormat::Human,
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            send_timeout: Duration::from_secs(60),
            download_rates: DownloadRates::default(),
            metrics_token: None,
            max_body_bytes: 1024 * 1024,
            upload_limit_bytes: 10 * 1024 * 1024 * 1024,
            reset_days: 31,
            shutdown_grace: Duration::from_secs(30),
            presign_ttl: Duration::from_secs(60),
            mail_policy: backend::mail::worker::WorkerPolicy::default(),
            self_service: backend::services::SelfServicePolicy::default(),
            webhook_policy: backend::services::WebhookPolicy::default(),
            provider_endpoints: backend::services::ProviderEndpoints::default(),
            daily_backups: None,
        }
    }

    /// The redb file inside the data dir.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("dropgate.redb")
    }

    /// Whether links are https (cookies then get `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// Builds the configuration from parsed flags/env and the optional TOML file.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.store.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .store
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./dropgate-data"));
        let mut config = Self::for_data_dir(&data_dir);
        config.apply_connection_limits(args, &file)?;
        config.provider_endpoints = provider_endpoints(args, &file)?;

        if let Some(bind) = args.bind.clone().or(file.bind) {
            config.bind = bind.parse().map_err(|_| {
                ConfigError(format!(
                    "bind: '{bind}' is not an address such as 127.0.0.1:8080 or [::]:8080"
                ))
            })?;
        } else {
            config.bind = SocketAddr::from(([127, 0, 0, 1], 8080));
        }
        if let Some(url) = args.public_url.clone().or(file.public_url) {
            config.public_url = Some(parse_public_url(&url)?);
        }
        let proxies = if args.trusted_proxy.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            args.trusted_proxy.clone()
        };
        config.trusted_proxies = proxies
            .iter()
            .flat_map(|p| p.split(','))
            .filter(|p| !p.trim().is_empty())
            .map(|p| IpNet::parse(p).map_err(|e| ConfigError(format!("trusted proxy: {e}"))))
            .collect::<Result<_, _>>()?;
        if let Some(url) = args.storage_url.clone().or(file.storage_url) {
            config.storage = parse_storage_url(&url)?;
        }
        config.stores = named_stores(&args.file_stores)?;
        let from_file = (file.s3_endpoint, file.s3_region, file.s3_proxy);
        apply_s3_settings(&mut config, args, from_file)?;
        config.smtp = smtp_config(args, file.smtp.unwrap_or_default())?;
        if let Some(path) = args.geoip_db.clone().or(file.geoip_db) {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "geoip db: {} is not a readable file",
                    path.display()
                )));
            }
            config.geoip_db = Some(path);
        }
        if let Some(limit) = args.upload_limit.or(file.upload_limit) {
            if limit == 0 {
                return Err(ConfigError(
                    "upload limit: give a size in bytes greater than 0".into(),
                ));
            }
            config.upload_limit_bytes = limit;
        }
        if let Some(days) = args.mail_retry_days.or(file.mail_retry_days) {
            if !(1..=30).contains(&days) {
                return Err(ConfigError(
                    "mail retry days: give between 1 and 30 days".into(),
                ));
            }
            config.mail_policy.retry.give_up_after = Duration::from_secs(u64::from(days) * 86_400);
        }
        config.log_format = args
            .log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Human);
        config.daily_backups = daily_backups(args, file.backup_dir.clone(), file.backup_keep)?;
        if let Some(token) = args.metrics_token.clone().or(file.metrics_token) {
            if token.trim().len() < 16 {
                return Err(ConfigError(
                    "metrics token: use at least 16 characters".into(),
                ));
            }
            config.metrics_token = Some(token.trim().to_owned());
        }
        Ok(config)
    }
}

/// The providers' addresses from the flags or the file (tests against fakes only).
fn provider_endpoints(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<backend::services::ProviderEndpoints, ConfigError> {
    let endpoint = |flag: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
        value
            .map(|url| {
                let url = url.trim().trim_end_matches('/').to_owned();
                reqwest::Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .map(|_| url.clone())
                    .ok_or_else(|| ConfigError(format!("{flag}: {url:?} is not an http(s) URL")))
            })
            .transpose()
    };
    Ok(backend::services::ProviderEndpoints {
        stripe_api: endpoint(
            "--stripe-api-base",
            args.stripe_api_base
                .clone()
                .or_else(|| file.stripe_api_base.clone()),
        )?,
        paddle_api: endpoint(
            "--paddle-api-base",
            args.paddle_api_base
                .clone()
                .or_else(|| file.paddle_api_base.clone()),
        )?,
        paypal_verify: endpoint(
            "--paypal-verify-url",
            args.paypal_verify_url
                .clone()
                .or_else(|| file.paypal_verify_url.clone()),
        )?,
    })
}

impl Config {
    /// The header, body and send deadlines, the connection cap and the `/d/` request rates
    /// from flags or the file.
    fn apply_connection_limits(
        &mut self,
        args: &ServeArgs,
        file: &FileConfig,
    ) -> Result<(), ConfigError> {
        let seconds = |given: Option<u64>, what: &str| -> Result<Option<Duration>, ConfigError> {
            given
                .map(|secs| {
                    if (1..=3600).contains(&secs) {
                        Ok(Duration::from_secs(secs))
                    } else {
                        Err(ConfigError(format!(
                            "{what}: give a number of seconds from 1 to 3600"
                        )))
                    }
                })
                .transpose()
        };
        let header = args.header_read_timeout.or(file.header_read_timeout);
        if let Some(timeout) = seconds(header, "header read timeout")? {
            self.header_read_timeout = timeout;
        }
        let body = args.body_read_timeout.or(file.body_read_timeout);
        if let Some(timeout) = seconds(body, "body read timeout")? {
            self.body_read_timeout = timeout;
        }
        let send = args.send_timeout.or(file.send_timeout);
        if let Some(timeout) = seconds(send, "send timeout")? {
            self.send_timeout = timeout;
        }
        let rate = |given: Option<u32>, default: Option<u32>| match given {
            Some(0) => None,
            Some(n) => Some(n),
            None => default,
        };
        self.download_rates = DownloadRates {
            per_link: rate(
                args.download_rate_per_link.or(file.download_rate_per_link),
                self.download_rates.per_link,
            ),
            per_client: rate(
                args.download_rate_per_client
                    .or(file.download_rate_per_client),
                self.download_rates.per_client,
            ),
        };
        if let Some(max) = args.max_connections.or(file.max_connections) {
            if !(16..=1_000_000).contains(&max) {
                return Err(ConfigError(
                    "max connections: give a number from 16 to 1000000".into(),
                ));
            }
            self.max_connections = max;
        }
        Ok(())
    }
}

/// `--backup-dir` and `--backup-keep`.
fn daily_backups(
    args: &ServeArgs,
    file_dir: Option<PathBuf>,
    file_keep: Option<u32>,
) -> Result<Option<backend::services::DailyBackups>, ConfigError> {
    let keep = args.backup_keep.or(file_keep);
    let Some(dir) = args.backup_dir.clone().or(file_dir) else {
        if keep.is_some() {
            return Err(ConfigError(
                "backup keep: set a backup directory (--backup-dir) as well".into(),
            ));
        }
        return Ok(None);
    };
    let keep = keep.unwrap_or(7);
    if !(1..=3650).contains(&keep) {
        return Err(ConfigError(
            "backup keep: keep between 1 and 3650 daily backups".into(),
        ));
    }
    Ok(Some(backend::services::DailyBackups {
        dir,
        keep: keep as usize,
    }))
}

/// The data directory from `--data-dir`, the environment, or the config file.
pub fn resolve_data_dir(store: &StoreArgs) -> Result<PathBuf, ConfigError> {
    let file = match &store.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    Ok(store
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./dropgate-data")))
}

/// The address of the running server for the commands that talk to it: `--server`, else
/// `http://` and the `bind` of the configuration (`DROPGATE_BIND`, then the file; an
/// unspecified address such as 0.0.0.0 means this host), else http://127.0.0.1:8080.
pub fn resolve_server_url(
    server: Option<&str>,
    config: Option<&Path>,
) -> Result<String, ConfigError> {
    if let Some(url) = server {
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "server: '{url}' is not an address such as http://127.0.0.1:8080"
            )));
        }
        return Ok(url.to_owned());
    }
    let file = match config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let bind = std::env::var("DROPGATE_BIND").ok().or(file.bind);
    let Some(bind) = bind else {
        return Ok("http://127.0.0.1:8080".to_owned());
    };
    let mut address: SocketAddr = bind.parse().map_err(|_| {
        ConfigError(format!(
            "bind: '{bind}' is not an address such as 127.0.0.1:8080 or [::]:8080"
        ))
    })?;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(format!("http://{address}"))
}

/// The `[smtp]` table and top level of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    bind: Option<String>,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    storage_url: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_proxy: Option<bool>,
    geoip_db: Option<PathBuf>,
    log_format: Option<LogFormat>,
    header_read_timeout: Option<u64>,
    body_read_timeout: Option<u64>,
    max_connections: Option<usize>,
    send_timeout: Option<u64>,
    download_rate_per_link: Option<u32>,
    download_rate_per_client: Option<u32>,
    metrics_token: Option<String>,
    upload_limit: Option<u64>,
    mail_retry_days: Option<u32>,
    backup_dir: Option<PathBuf>,
    backup_keep: Option<u32>,
    stripe_api_base: Option<String>,
    paddle_api_base: Option<String>,
    paypal_verify_url: Option<String>,
    smtp: Option<FileSmtp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    host: Option<String>,
    port: Option<u16>,
    security: Option<SmtpSecurity>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
}

impl FileConfig {
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The file's settings from its text; `name` names the file in errors, with the line.
    fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let detail = e.message().to_owned();
            let line = e
                .span()
                .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
            match line {
                Some(line) => ConfigError(format!("config file {name} line {line}: {detail}")),
                None => ConfigError(format!("config file {name}: {detail}")),
            }
        })
    }
}

fn smtp_config(args: &ServeArgs, file: FileSmtp) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = args.smtp_host.clone().or(file.host) else {
        return Ok(None);
    };
    if host.trim().is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError(format!(
            "smtp host: '{host}' is not a host name"
        )));
    }
    let security = args
        .smtp_security
        .or(file.security)
        .unwrap_or(SmtpSecurity::Starttls);
    let port = args.smtp_port.or(file.port).unwrap_or(match security {
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    });
    let from = args.smtp_from.clone().or(file.from).ok_or_else(|| {
        ConfigError(
            "smtp from: set the sender address (--smtp-from) when an SMTP host is configured"
                .into(),
        )
    })?;
    let address = from
        .rsplit_once('<')
        .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'));
    domain::Email::parse(address).map_err(|e| ConfigError(format!("smtp from: {e}")))?;
    let username = args.smtp_username.clone().or(file.username);
    let password = args.smtp_password.clone().or(file.password);
    if username.is_some() != password.is_some() {
        return Err(ConfigError(
            "smtp: set both a username and a password, or neither".into(),
        ));
    }
    Ok(Some(SmtpConfig {
        host,
        port,
        security: security.into(),
        username,
        password,
        from,
    }))
}

/// Accepts `http(s)://host[:port][/path]`, drops a trailing slash.
fn parse_public_url(url: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "public url: '{url}' must look like https://downloads.example.com"
        ))
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) || host.contains('@') {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn parse_storage_url(url: &str) -> Result<StorageLocation, ConfigError> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(ConfigError(format!(
                "storage url: '{url}' needs an absolute path, e.g. file:///var/lib/dropgate/files"
            )));
        }
        return Ok(StorageLocation::Local(PathBuf::from(path)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        // `?proxy=true` puts this one store in proxy mode (`--s3-proxy`: every S3 store).
        let (rest, proxy) = match rest.split_once('?') {
            None => (rest, false),
            Some((rest, "proxy=true" | "proxy=1")) => (rest, true),
            Some((_, query)) => {
                return Err(ConfigError(format!(
                    "storage url: '?{query}' is not understood; the one option is ?proxy=true"
                )));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(ConfigError(format!(
                "storage url: '{bucket}' is not a valid S3 bucket name"
            )));
        }
        return Ok(StorageLocation::S3(backend::blobs::S3Settings {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            proxy,
            ..Default::default()
        }));
    }
    Err(ConfigError(format!(
        "storage url: '{url}' must start with file:/// or s3://"
    )))
}

/// The `--s3-*` settings, applied to every S3 store: the default one and named ones.
fn apply_s3_settings(
    config: &mut Config,
    args: &ServeArgs,
    (file_endpoint, file_region, file_proxy): (Option<String>, Option<String>, Option<bool>),
) -> Result<(), ConfigError> {
    let endpoint = args
        .s3_endpoint
        .clone()
        .or(file_endpoint)
        .map(|e| parse_s3_endpoint(&e))
        .transpose()?;
    let region = args.s3_region.clone().or(file_region);
    let proxy = args.s3_proxy || file_proxy.unwrap_or(false);
    let mut any_s3 = false;
    for location in
        std::iter::once(&mut config.storage).chain(config.stores.iter_mut().map(|(_, l)| l))
    {
        if let StorageLocation::S3(s3) = location {
            any_s3 = true;
            s3.endpoint.clone_from(&endpoint);
            s3.region.clone_from(&region);
            s3.proxy |= proxy;
        }
    }
    if !any_s3 && (endpoint.is_some() || region.is_some() || proxy) {
        return Err(ConfigError(
            "s3 endpoint/region/proxy: only used with an s3:// storage url".into(),
        ));
    }
    Ok(())
}

/// `--store NAME=URL` values: each a named store (an S3 one takes the `--s3-*` settings).
fn named_stores(given: &[String]) -> Result<Vec<(String, StorageLocation)>, ConfigError> {
    let mut stores: Vec<(String, StorageLocation)> = Vec::new();
    for value in given {
        let (name, url) = value.split_once('=').ok_or_else(|| {
            ConfigError(format!(
                "store: {value:?} must be NAME=URL, e.g. big=s3://bucket/files"
            ))
        })?;
        let name = backend::blobs::parse_store_name(name.trim()).map_err(ConfigError)?;
        if stores.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError(format!("store: {name} is given twice")));
        }
        stores.push((name, parse_storage_url(url.trim())?));
    }
    Ok(stores)
}

fn parse_s3_endpoint(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains([' ', '?', '#', '@']) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError(format!(
            "s3 endpoint: '{url}' must look like https://s3.example.com or http://127.0.0.1:9000"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_public_url("https://dl.example.com/").unwrap(),
            "https://dl.example.com"
        );
        assert!(parse_public_url("dl.example.com").is_err());
        assert!(parse_public_url("https://").is_err());
        assert_eq!(
            parse_storage_url("file:///srv/files").unwrap(),
            StorageLocation::Local("/srv/files".into())
        );
        assert_eq!(
            parse_storage_url("s3://my-bucket/shop/").unwrap(),
            StorageLocation::S3(backend::blobs::S3Settings {
                bucket: "my-bucket".into(),
                prefix: "shop".into(),
                ..Default::default()
            })
        );
        assert!(parse_storage_url("s3://B").is_err());
        assert_eq!(
            parse_storage_url("s3://my-bucket/big?proxy=true").unwrap(),
            StorageLocation::S3(backend::blobs::S3Settings {
                bucket: "my-bucket".into(),
                prefix: "big".into(),
                proxy: true,
                ..Default::default()
            })
        );
        assert!(parse_storage_url("s3://my-bucket/big?cache=1").is_err());
        assert!(parse_storage_url("ftp://x").is_err());
        assert!(parse_storage_url("file://relative").is_err());
    }

    /// The configuration as `dropgate serve --config FILE` reads it.
    fn serve_with_file(text: &str) -> Result<Config, ConfigError> {
        use clap::Parser as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dropgate.toml");
        std::fs::write(&file, text).unwrap();
        let cli = crate::cli::Cli::try_parse_from([
            "dropgate".as_ref(),
            "serve".as_ref(),
            "--config".as_ref(),
            file.as_os_str(),
        ])
        .unwrap();
        let crate::cli::Command::Serve(args) = cli.command else {
            unreachable!("parsed as serve")
        };
        Config::from_args(&args)
    }

    #[test]
    fn a_bad_file_value_is_named_with_its_line() {
        let error = serve_with_file("bind = \"127.0.0.1:9000\"\nsend_timeout = 0\n").unwrap_err();
        assert!(error.0.contains("send timeout"), "{error}");
        let error = serve_with_file("bind = \"127.0.0.1:9000\"\nno_such_key = 1\n").unwrap_err();
        assert!(error.0.contains("line 2"), "{error}");
        let config =
            serve_with_file("download_rate_per_link = 0\ndownload_rate_per_client = 30\n").unwrap();
        assert_eq!(
            config.download_rates,
            DownloadRates {
                per_link: None,
                per_client: Some(30)
            }
        );
    }

    /// The keys of the file, with the kinds of value a person might write for them.
    fn file_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "bind",
            "public_url",
            "trusted_proxies",
            "storage_url",
            "s3_endpoint",
            "s3_region",
            "s3_proxy",
            "log_format",
            "header_read_timeout",
            "body_read_timeout",
            "send_timeout",
            "max_connections",
            "download_rate_per_link",
            "download_rate_per_client",
            "metrics_token",
            "upload_limit",
            "mail_retry_days",
            "backup_dir",
            "backup_keep",
            "data_dir",
            "unknown",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u64..5000).prop_map(|n| n.to_string()),
            "[ -~]{0,40}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(vec![
                "\"127.0.0.1:0\"",
                "\"[::1]:8080\"",
                "\"https://dl.example.com\"",
                "\"s3://bucket/prefix\"",
                "\"file:///srv\"",
                "\"json\"",
                "true",
                "[\"10.0.0.0/8\"]",
                "[1, 2]",
                "1.5",
                "\"\"",
            ])
            .prop_map(str::to_owned),
        ];
        (key, value).prop_map(|(k, v)| format!("{k} = {v}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text as the config file: a configuration or an error that names the file,
        /// never a panic (the error's line number slices the text).
        #[test]
        fn any_file_text_parses_or_is_refused(text in "\\PC{0,200}") {
            if let Err(e) = FileConfig::parse(&text, "f.toml") {
                proptest::prop_assert!(e.0.starts_with("config file f.toml"));
            }
        }

        /// Files made of real keys with odd values: `serve` starts or says what is wrong.
        #[test]
        fn odd_values_for_real_keys_are_refused_in_words(
            lines in proptest::collection::vec(file_line(), 0..6)
        ) {
            if let Err(e) = serve_with_file(&lines.join("\n")) {
                proptest::prop_assert!(!e.0.is_empty());
            }
        }
    }
}
