//! Server functions of the activity screen, the dashboard chart and the audit log.

use crate::error::AppError;
use domain::wire::{ActivityFilter, ActivityPage, AuditView, DailyDownloads};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Days in the dashboard's downloads chart.
pub const CHART_DAYS: u32 = 30;

/// Recent download attempts matching `filter`, and the blocked grants.
#[server(prefix = "/rpc", endpoint = "activity", input = Json)]
pub async fn load_activity(filter: ActivityFilter) -> Result<ActivityPage, AppError> {
    crate::server::as_user(|state| async move { Ok(state.activity.recent(filter).await?) }).await
}

/// Downloads per day for the dashboard chart.
#[server(prefix = "/rpc", endpoint = "downloads-per-day")]
pub async fn load_downloads_per_day() -> Result<Vec<DailyDownloads>, AppError> {
    crate::server::as_user(|state| async move {
        Ok(state
            .activity
            .daily(backend::clock::now(), CHART_DAYS)
            .await?)
    })
    .await
}

/// The newest audit entries, only those about `target` (e.g. `grant:12`, `1234567`) unless
/// it is empty.
#[server(prefix = "/rpc", endpoint = "audit")]
pub async fn load_audit(target: String) -> Result<Vec<AuditView>, AppError> {
    crate::server::as_user(|state| async move {
        let target = target.trim();
        let entries = backend::services::audit::read_audit(
            &state.store,
            200,
            (!target.is_empty()).then(|| target.to_owned()),
        )
        .await?;
        let pretty = |v: &serde_json::Value| {
            if v.is_null() {
                String::new()
            } else {
                serde_json::to_string_pretty(v).unwrap_or_default()
            }
        };
        Ok(entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                before: pretty(&e.before),
                after: pretty(&e.after),
                actor: e.actor,
                action: e.action,
                target: e.target,
            })
            .collect())
    })
    .await
}

/// The credit the IP → country database's licence asks for, shown wherever countries are.
#[server(prefix = "/rpc", endpoint = "geo-credit")]
pub async fn load_geo_credit() -> Result<Option<domain::wire::Credit>, AppError> {
    crate::server::as_user(|state| async move { Ok(state.dashboard.geoip_credit().cloned()) }).await
}
