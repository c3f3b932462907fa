//! Use cases. Each service loads what it needs from the store, decides with `domain` rules,
//! and persists the outcome in one write transaction. Handlers and server functions only
//! parse input, call a service and map [`ServiceError`] to their protocol.

mod access;
mod activity;
mod announcements;
pub mod audit;
mod backups;
mod catalog;
mod customers;
mod dashboard;
mod desk;
mod downloads;
mod error;
mod exports;
mod imports;
mod library;
mod migration;
mod orders;
mod outbox;
mod payments;
mod self_service;
mod settings;
mod webhooks;

pub use access::{AccessConfig, AccessService, NewSession};
pub use activity::ActivityService;
pub use announcements::AnnouncementService;
pub use audit::Actor;
pub use backups::{BackupService, DailyBackups};
pub use catalog::{CatalogService, FileUpload, Uploaded};
pub use customers::CustomerService;
pub use dashboard::DashboardService;
pub use desk::{DeskService, GrantAction};
pub use downloads::{
    BodySource, BuyerPage, Client, Delivery, Download, DownloadService, FileOffer, FileRequest,
    GrantPage, RangeRequest, Refusal, Ticket, content_disposition,
};
pub use error::ServiceError;
pub use exports::{ExportFilter, ExportKind, ExportService, ExportStream};
pub use imports::{ImportRequest, ImportService};
pub use library::{
    LibraryFile, LibraryPurchase, LibraryService, SESSION_LIFETIME, SIGN_IN_LIFETIME,
};
pub use migration::{MigrationReport, MigrationStep, StoreMigration};
pub use orders::{OrderQuery, OrderService};
pub use outbox::OutboxService;
pub use payments::{Incoming, PaymentService, ProviderEndpoints, Receipt};
pub use self_service::{LinkRefusal, LinkRequest, SelfService, SelfServicePolicy};
pub use settings::{SettingsService, ShortenedIps};
pub use webhooks::{Subscription, WebhookPolicy, WebhookService, WebhookWorker, announce_blocks};
