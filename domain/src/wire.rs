//! Data sent between the server and the admin SPA. Plain serde structs: the server fills them
//! from the store, the WASM UI renders them; neither side adds rules here.

use crate::{AdminId, ApiTokenId, Email, Timestamp};
use serde::{Deserialize, Serialize};

/// The signed-in staff member, as the admin shell shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub admin_id: AdminId,
    pub email: Email,
    pub name: String,
}

/// The figures on the dashboard, all read from the store at request time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardFigures {
    pub admins: u64,
    pub active_sessions: u64,
    pub api_tokens_active: u64,
    pub database_bytes: u64,
    pub server_started_at: Timestamp,
    pub version: String,
}

/// One staff account in the access overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSummary {
    pub id: AdminId,
    pub email: Email,
    pub name: String,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

/// One API token in the access overview; the secret is never sent after creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenSummary {
    pub id: ApiTokenId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Who can reach the store: staff accounts and API tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessOverview {
    pub admins: Vec<AdminSummary>,
    pub api_tokens: Vec<ApiTokenSummary>,
}
