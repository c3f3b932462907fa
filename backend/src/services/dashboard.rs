//! The dashboard: the figures a seller sees first, gathered from the other parts (staff
//! access, the outbox, the database file, the GeoIP database in use).

use super::{OutboxService, ServiceError};
use crate::store::{Store, StoreError, access as rows};
use domain::Timestamp;
use domain::wire::{Credit, DashboardFigures};

/// What the dashboard is made from.
#[derive(Clone, Debug)]
pub struct DashboardService {
    store: Store,
    outbox: OutboxService,
    started_at: Timestamp,
    /// The GeoIP database in use, in words, and the credit its licence asks for.
    geoip_database: String,
    geoip_credit: Option<Credit>,
}

impl DashboardService {
    pub fn new(
        store: Store,
        outbox: OutboxService,
        started_at: Timestamp,
        geoip_database: String,
        geoip_credit: Option<Credit>,
    ) -> Self {
        Self {
            store,
            outbox,
            started_at,
            geoip_database,
            geoip_credit,
        }
    }

    /// The credit the GeoIP database's licence asks for, shown wherever countries are.
    pub fn geoip_credit(&self) -> Option<&Credit> {
        self.geoip_credit.as_ref()
    }

    /// The figures at `now`.
    pub async fn figures(&self, now: Timestamp) -> Result<DashboardFigures, ServiceError> {
        let (admins, active_sessions, api_tokens_active, database_bytes) = self
            .store
            .run(move |s| {
                let counts = s.read(|tx| {
                    let tokens = rows::api_tokens(tx)?;
                    Ok::<_, StoreError>((
                        rows::admin_count(tx)?,
                        rows::active_session_count(tx, now)?,
                        tokens
                            .iter()
                            .filter(|(_, t)| t.revoked_at.is_none())
                            .count() as u64,
                    ))
                })?;
                Ok::<_, StoreError>((counts.0, counts.1, counts.2, s.file_size()))
            })
            .await?;
        let mail = self.outbox.page(None, None, 1).await?;
        let count = |name: &str| {
            mail.counts
                .iter()
                .find(|(state, _)| state == name)
                .map_or(0, |(_, n)| *n)
        };
        Ok(DashboardFigures {
            admins,
            active_sessions,
            api_tokens_active,
            database_bytes,
            server_started_at: self.started_at,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            geoip_database: self.geoip_database.clone(),
            geoip_credit: self.geoip_credit.clone(),
            mails_failed: count("failed"),
            mails_waiting: count("queued") + count("retrying") + count("sending"),
            smtp_configured: mail.smtp.is_some(),
        })
    }
}
