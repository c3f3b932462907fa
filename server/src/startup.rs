//! Start-up: open the store, build the services and the router, bind, and run until told
//! to stop. `Application` is a value so tests can start the real server on port 0.

use crate::config::{Config, StorageLocation};
use crate::http::{self, HttpServices, HttpState, metrics::Metrics};
use app::server::UiState;
use backend::auth::form_stamp::FormStamps;
use backend::blobs::{Blobs, FileStores};
use backend::mail::Mailer;
use backend::mail::worker::{OutboxWorker, SmtpSender};
use backend::services::{
    AccessConfig, AnnouncementService, CatalogService, DeskService, DownloadService, OrderService,
    OutboxService, SettingsService,
};
use backend::{AccessService, Store, StoreError};
use leptos::config::{Env, LeptosOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Threads that render Leptos pages (see `http::render`): one per core of the 2-core
/// machines Dropgate is sized for; a page renders in about a millisecond.
const RENDER_THREADS: usize = 2;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Service(#[from] backend::ServiceError),
    #[error("{0}")]
    Storage(String),
    #[error("GeoIP database: {0}")]
    Geo(String),
    #[error("mail: {0}")]
    Mail(#[from] backend::mail::worker::SmtpSetupError),
    #[error("cannot start the page render threads: {0}")]
    RenderThreads(std::io::Error),
    #[error("{0}")]
    Http(String),
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    public_url: String,
    router: axum::Router,
    render_threads: Arc<http::render::RenderThreads>,
    config: Config,
    setup_link: Option<String>,
    access: AccessService,
    settings: SettingsService,
    /// The outbox worker, when SMTP is configured.
    mail_worker: Option<OutboxWorker>,
    /// Posts outgoing webhook deliveries.
    webhook_worker: backend::services::WebhookWorker,
    /// The `/d/` request rates, swept of idle keys while the server runs.
    download_limits: Arc<http::download_limits::DownloadLimits>,
    /// Daily backups, when `--backup-dir` is set.
    daily_backups: Option<(
        backend::services::BackupService,
        backend::services::DailyBackups,
    )>,
    /// Sends product-update mails to past buyers at each announcement's rate.
    announcements: AnnouncementService,
}

/// How often buyers' IPs past the retention period are shortened.
const IP_RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The data dir, and the file dir when files are on local disk, readable by this user
/// only: they hold the password-hashing key, buyers' data and mails with working links.
///
/// The process's umask becomes 077, so everything it creates from here on (the database,
/// the journal, product files, directories) is 0600/0700 whatever the service manager set;
/// what an earlier version left readable to others is tightened, with a log line.
pub(crate) fn create_dirs(config: &Config) -> Result<(), StartupError> {
    // First thing of a start: every TLS client built later takes ring from here.
    backend::tls::install_crypto_provider();
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    let mut dirs = vec![&config.data_dir];
    if let StorageLocation::Local(dir) = &config.storage {
        dirs.push(dir);
    }
    for dir in dirs {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        tighten(dir, 0o700);
    }
    let database = config.database_path();
    for file in [database.clone(), backend::store::journal_path(&database)] {
        tighten(&file, 0o600);
    }
    Ok(())
}

/// Takes the group's and others' access away from `path` (if it exists).
fn tighten(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let current = meta.permissions().mode() & 0o777;
    // No permission bit for the group or others (the low six bits).
    if current.trailing_zeros() >= 6 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "made readable by this user only (it was open to others)"
        ),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not tighten permissions");
        }
    }
}

impl Application {
    /// Opens the store in the data dir, binds the listener and builds the router.
    #[allow(clippy::too_many_lines)] // one list of the services, in the order each needs the last
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        create_dirs(&config)?;
        // Opening a `--geoip-db` file takes a moment: it runs while the store opens (the
        // embedded database unpacks on a thread of its own, see `geoip::Unpacking`).
        let geo = open_geo(&config);
        let store = open_store(&config).await?;
        let (listener, local_addr) = bind(config.bind).await?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));

        let (access, setup_link) = staff_access(&store, &public_url).await?;

        let blobs = open_file_stores(&config).await?;
        let geo = geo.await.map_err(|e| StartupError::Geo(e.to_string()));
        let geo = geo?.map_err(StartupError::Geo)?;
        let key = store.download_key()?;
        let catalog = CatalogService::new(store.clone(), blobs.clone(), config.upload_limit_bytes);
        let downloads = DownloadService::new(
            store.clone(),
            key.clone(),
            blobs.clone(),
            config.presign_ttl,
        );
        let settings = SettingsService::load(
            store.clone(),
            domain::settings::StoreSettings::initial(config.reset_days),
        )
        .await?;
        let (mailer, outbox, mail_worker) =
            build_mail(&config, &store, &key, &settings, &public_url)?;
        let orders = OrderService::new(store.clone(), key.clone(), mailer);
        let self_service = backend::services::SelfService::new(
            orders.clone(),
            FormStamps::new(key.derive("self-service form")),
            config.self_service,
        );
        let desk = DeskService::new(store.clone(), key.clone(), orders.clone(), settings.clone());
        let announcements =
            AnnouncementService::new(store.clone(), key.clone(), orders.mailer().clone());
        let records = record_services(&store, &key, &orders, &desk, &config);
        let (payments, webhooks, webhook_worker) =
            build_payments(&config, &store, key, &orders, &public_url).await?;
        let downloads = downloads.announcing(webhooks.completions());

        let download_limits = download_limits(&config);
        let state = HttpState::new(HttpServices {
            download_limits: Arc::clone(&download_limits),
            store: store.clone(),
            access: access.clone(),
            settings: settings.clone(),
            catalog: catalog.clone(),
            orders: orders.clone(),
            downloads: downloads.clone(),
            desk: desk.clone(),
            announcements: announcements.clone(),
            self_service: self_service.clone(),
            payments: payments.clone(),
            webhooks: webhooks.clone(),
            records,
            blobs,
            geo: Arc::clone(&geo.lookup),
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: config.trusted_proxies.clone().into(),
            untrusted_proxy_warning: Arc::new(std::sync::Once::new()),
            metrics_token: config.metrics_token.as_deref().map(Arc::from),
            https: public_url.starts_with("https://"),
        });
        let ui = UiState {
            access: access.clone(),
            downloads: downloads.clone(),
            catalog,
            orders,
            desk,
            announcements: announcements.clone(),
            activity: backend::services::ActivityService::new(store.clone()),
            settings: settings.clone(),
            dashboard: dashboard(&store, &outbox, &geo),
            outbox,
            self_service,
            payments,
            webhooks,
            customers: state.records.customers.clone(),
            store,
            secure_cookies: public_url.starts_with("https://"),
        };
        let daily_backups =
            (config.daily_backups.clone()).map(|d| (state.records.backups.clone(), d));
        let (router, render_threads) = build_router(state, ui, local_addr, config.max_body_bytes)?;
        Ok(Self {
            listener,
            local_addr,
            public_url,
            router,
            render_threads,
            config,
            setup_link,
            access,
            settings,
            mail_worker,
            webhook_worker,
            download_limits,
            daily_backups,
            announcements,
        })
    }

    /// The address actually bound (the port is chosen by the OS when configured as 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL used for links.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The staff-access service (tests and commands create tokens with it).
    pub fn access(&self) -> AccessService {
        self.access.clone()
    }

    /// The store settings (tests change them as the Settings screen would).
    pub fn settings(&self) -> SettingsService {
        self.settings.clone()
    }

    /// The runtimes of the page render threads as they are now, for the watchdog; empty
    /// once the server has stopped.
    pub fn render_runtimes(&self) -> impl Fn() -> Vec<tokio::runtime::Handle> + Send + 'static {
        let threads = Arc::downgrade(&self.render_threads);
        move || {
            threads
                .upgrade()
                .map(|threads| threads.runtimes())
                .unwrap_or_default()
        }
    }

    /// The one-time link to create the first admin, while no admin exists.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let retention = self
            .settings
            .spawn_retention_job(IP_RETENTION_INTERVAL, jobs_stopped.clone());
        let sweeps = spawn_sweeps(Arc::clone(&self.download_limits), jobs_stopped.clone());
        let mail = self.mail_worker.map(OutboxWorker::spawn);
        let webhooks = self.webhook_worker.spawn();
        let announcements = self.announcements.spawn(jobs_stopped.clone());
        let daily_backups = self
            .daily_backups
            .map(|(service, daily)| service.spawn_daily(daily, jobs_stopped.clone()));
        http::serve::serve(
            self.listener,
            self.router,
            http::serve::Limits {
                header_read: self.config.header_read_timeout,
                body_read: self.config.body_read_timeout,
                max_connections: self.config.max_connections,
                send: self.config.send_timeout,
            },
            self.config.shutdown_grace,
            shutdown,
        )
        .await;
        // Every background task is finished (not just told to finish) before this returns,
        // so nothing holds the store and the same data dir can be opened again at once.
        let _ = stop_jobs.send(true);
        let _ = retention.await;
        let _ = sweeps.await;
        let _ = announcements.await;
        if let Some(backups) = daily_backups {
            let _ = backups.await;
        }
        // A delivery cut off mid-post is posted again after its lease, with the same id.
        webhooks.abort();
        let _ = webhooks.await;
        if let Some(mail) = mail {
            // Cut off mid-send as a crash would: the mail stays "sending" and goes out again,
            // with the same Message-ID, at the next start.
            mail.abort();
            let _ = mail.await;
        }
    }
}

/// Opens the GeoIP database on a blocking thread.
fn open_geo(config: &Config) -> tokio::task::JoinHandle<Result<crate::geoip::Geo, String>> {
    let (file, reload_every) = (config.geoip_db.clone(), config.geoip_reload_interval);
    tokio::task::spawn_blocking(move || crate::geoip::open(file.as_deref(), reload_every))
}

/// The listening socket and the address it got (the port is the OS's pick for port 0).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let bound = |source| StartupError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bound)?;
    let local_addr = listener.local_addr().map_err(bound)?;
    Ok((listener, local_addr))
}

/// Forgets idle `/d/` rate keys every [`http::download_limits::SWEEP_EVERY`] until `stop`.
fn spawn_sweeps(
    limits: Arc<http::download_limits::DownloadLimits>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(http::download_limits::SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => limits.sweep(),
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    })
}

/// The router, with the embedded site's Leptos options set in code (not from `LEPTOS_*`).
fn build_router(
    state: HttpState,
    ui: UiState,
    local_addr: SocketAddr,
    max_body_bytes: usize,
) -> Result<(axum::Router, Arc<http::render::RenderThreads>), StartupError> {
    let leptos_options = LeptosOptions::builder()
        .output_name(app::BUNDLE_NAME)
        .site_pkg_dir("pkg")
        .env(Env::PROD)
        .site_addr(local_addr)
        .build();
    let render_threads =
        http::render::RenderThreads::start(RENDER_THREADS, http::render::RENDER_DEADLINE)
            .map_err(StartupError::RenderThreads)?;
    let router = http::router(
        state,
        ui,
        leptos_options,
        Arc::clone(&render_threads),
        max_body_bytes,
    );
    Ok((router, render_threads))
}

/// Staff access, and the one-time link to create the first admin while there is none.
async fn staff_access(
    store: &Store,
    public_url: &str,
) -> Result<(AccessService, Option<String>), StartupError> {
    let access = AccessService::new(store.clone(), AccessConfig::default());
    let setup_link = access
        .issue_setup_token(backend::clock::now())
        .await?
        .map(|token| format!("{public_url}/admin/setup?token={token}"));
    Ok((access, setup_link))
}

/// Opens the data dir's store off the async runtime.
async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let path = config.database_path();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| StoreError::Join(e.to_string()))??;
    Ok(store)
}

/// The `/d/` request rates of the configuration.
fn download_limits(config: &Config) -> Arc<http::download_limits::DownloadLimits> {
    Arc::new(http::download_limits::DownloadLimits::new(
        config.download_rates,
    ))
}

/// The dashboard's figures, with what the GeoIP database is and its credit line.
fn dashboard(
    store: &Store,
    outbox: &backend::services::OutboxService,
    geo: &crate::geoip::Geo,
) -> backend::services::DashboardService {
    backend::services::DashboardService::new(
        store.clone(),
        outbox.clone(),
        backend::clock::now(),
        geo.description.clone(),
        geo.credit(),
    )
}

/// The services of records in and out: imports, exports, backups (made in the data dir).
fn record_services(
    store: &Store,
    key: &backend::auth::download_key::DownloadKey,
    orders: &OrderService,
    desk: &DeskService,
    config: &Config,
) -> http::RecordServices {
    http::RecordServices {
        imports: backend::services::ImportService::new(
            store.clone(),
            key.clone(),
            orders.mailer().clone(),
        ),
        exports: backend::services::ExportService::new(store.clone()),
        backups: backend::services::BackupService::new(store.clone(), config.data_dir.clone()),
        customers: backend::services::CustomerService::new(
            store.clone(),
            desk.clone(),
            orders.clone(),
        ),
    }
}

/// Payments in (the hooks' service), events out (endpoints and deliveries) and the worker
/// that posts the deliveries, sharing one HTTP client.
async fn build_payments(
    config: &Config,
    store: &Store,
    key: backend::auth::download_key::DownloadKey,
    orders: &OrderService,
    public_url: &str,
) -> Result<
    (
        backend::services::PaymentService,
        backend::services::WebhookService,
        backend::services::WebhookWorker,
    ),
    StartupError,
> {
    let client = backend::payments::client::HttpClient::new().map_err(StartupError::Http)?;
    let payments = backend::services::PaymentService::new(
        store.clone(),
        key,
        orders.mailer().clone(),
        client.clone(),
        public_url,
        config.provider_endpoints.clone(),
    );
    let webhooks = backend::services::WebhookService::load(store.clone()).await?;
    let worker =
        backend::services::WebhookWorker::new(store.clone(), client, config.webhook_policy);
    Ok((payments, webhooks, worker))
}

/// The mailer the services queue mail with, the outbox screen's service, and the worker
/// that sends (only when SMTP is configured: otherwise mail waits in the outbox).
fn build_mail(
    config: &Config,
    store: &Store,
    key: &backend::auth::download_key::DownloadKey,
    settings: &SettingsService,
    public_url: &str,
) -> Result<(Mailer, OutboxService, Option<OutboxWorker>), StartupError> {
    let mailer = Mailer::new(
        settings.clone(),
        public_url,
        config.smtp.as_ref().map(|s| s.from_address().to_owned()),
    );
    let sender = config.smtp.as_ref().map(SmtpSender::new).transpose()?;
    let outbox = OutboxService::new(
        store.clone(),
        mailer.clone(),
        key.clone(),
        sender.as_ref().map(|s| format!("{s:?}")),
    );
    let worker = sender.map(|s| OutboxWorker::new(store.clone(), s, config.mail_policy, &mailer));
    Ok((mailer, outbox, worker))
}

/// The file stores: the default one and the named ones; a remote one is checked before the
/// server starts.
pub async fn open_file_stores(config: &Config) -> Result<FileStores, StartupError> {
    let default = open_blobs(&config.storage, "default").await?;
    let mut named = std::collections::BTreeMap::new();
    for (name, location) in &config.stores {
        named.insert(name.clone(), open_blobs(location, name).await?);
    }
    Ok(FileStores::with_named(default, named))
}

async fn open_blobs(location: &StorageLocation, name: &str) -> Result<Blobs, StartupError> {
    let blobs = open_blob_store(location)?;
    if let StorageLocation::S3(s3) = location {
        // Find a wrong bucket, endpoint or key now rather than at the first upload.
        blobs.check().await.map_err(|e| {
            StartupError::Storage(format!("S3 bucket {} is not reachable: {e}", s3.bucket))
        })?;
        let delivery = if s3.proxy {
            "downloads stream through Dropgate (proxy mode)"
        } else {
            "downloads redirect to presigned URLs"
        };
        tracing::info!(store = name, bucket = %s3.bucket, prefix = %s3.prefix, endpoint = ?s3.endpoint, "product files on S3; {delivery}");
    }
    Ok(blobs)
}

fn open_blob_store(location: &StorageLocation) -> Result<Blobs, StartupError> {
    match location {
        StorageLocation::Local(dir) => {
            Blobs::local(dir).map_err(|e| StartupError::Storage(e.to_string()))
        }
        StorageLocation::S3(settings) => Blobs::s3(settings)
            .map_err(|e| StartupError::Storage(format!("S3 bucket {}: {e}", settings.bucket))),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
