//! The audit log: who did what to which record, with JSON snapshots before and after,
//! written in the same transaction as the change itself.

use super::ServiceError;
use crate::store;
use crate::store::audit::AuditRecord;
use crate::store::{Store, StoreError};
use domain::{AdminId, ApiTokenId, Timestamp};
use serde::Serialize;

/// Who performed a vendor action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Admin {
        id: AdminId,
        email: String,
    },
    ApiToken(ApiTokenId),
    /// A verified payment notification of this provider.
    Payment(domain::payment::Provider),
    System,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admin { email, .. } => write!(f, "admin:{email}"),
            Self::ApiToken(id) => write!(f, "api-token:{id}"),
            Self::Payment(provider) => write!(f, "payment:{}", provider.as_str()),
            Self::System => f.write_str("system"),
        }
    }
}

/// Appends an audit entry inside the caller's write transaction.
pub fn record_audit<B: Serialize, A: Serialize>(
    tx: &redb::WriteTransaction,
    actor: &Actor,
    action: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let json = |v: Option<String>| v.unwrap_or_else(|| "null".to_owned());
    store::audit::insert_audit(
        tx,
        &AuditRecord {
            at: now,
            actor: actor.to_string(),
            action: action.to_owned(),
            target: target.to_owned(),
            before: json(before.and_then(|b| serde_json::to_string(b).ok())),
            after: json(after.and_then(|a| serde_json::to_string(a).ok())),
        },
    )?;
    Ok(())
}

/// One audit entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: u64,
    pub at: Timestamp,
    /// `admin:<email>`, `api-token:<id>` or `system`.
    pub actor: String,
    pub action: String,
    /// What was changed, e.g. `grant:42`.
    pub target: String,
    /// The record before the change (null when created).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub before: serde_json::Value,
    /// The record after the change (null when deleted).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub after: serde_json::Value,
}

/// The newest `limit` entries, optionally only those about `target`.
pub async fn read_audit(
    store: &Store,
    limit: usize,
    target: Option<String>,
) -> Result<Vec<AuditEntry>, ServiceError> {
    let rows = store
        .run(move |s| s.read(|tx| store::audit::audit(tx, usize::MAX)))
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, r)| target.as_deref().is_none_or(|t| r.target == t))
        .take(limit)
        .map(|(id, r)| AuditEntry {
            id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            before: serde_json::from_str(&r.before).unwrap_or(serde_json::Value::Null),
            after: serde_json::from_str(&r.after).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}
