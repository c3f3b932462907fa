//! Staff accounts, their sessions, API tokens and the one-time setup token.
//!
//! Secrets (session cookies, API tokens, the setup token) are stored only as SHA-256 digests:
//! they are 256-bit random values, so a digest is enough to make a stolen file useless.

use super::codec::{self, Record};
use super::meta::{self, META};
use super::{Reader, StoreError};
use domain::{AdminId, ApiTokenId, Email, Timestamp};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: admin id (u64); value: [`AdminRecord`].
const ADMINS: TableDefinition<u64, &[u8]> = TableDefinition::new("admins-1");
/// key: normalised email; value: admin id. Enforces one account per address.
const ADMIN_EMAILS: TableDefinition<&str, u64> = TableDefinition::new("admin_emails-1");
/// key: SHA-256 of the session cookie (32 bytes); value: [`SessionRecord`].
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions-1");
/// key: token id (u64); value: [`ApiTokenRecord`].
const API_TOKENS: TableDefinition<u64, &[u8]> = TableDefinition::new("api_tokens-1");
/// key: SHA-256 of the token (32 bytes); value: token id.
const API_TOKEN_DIGESTS: TableDefinition<&[u8], u64> = TableDefinition::new("api_token_digests-1");
/// In `meta`: the pending first-run setup token, a [`SetupTokenRecord`].
const KEY_SETUP_TOKEN: &str = "setup_token";

/// A staff account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRecord {
    pub email: Email,
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}
impl Record for AdminRecord {
    const KIND: &'static str = "admin";
    const VERSION: u8 = 1;
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub admin_id: AdminId,
    pub created_at: Timestamp,
    /// Sliding expiry, never later than `created_at` + the absolute session lifetime.
    pub expires_at: Timestamp,
}
impl Record for SessionRecord {
    const KIND: &'static str = "session";
    const VERSION: u8 = 1;
}

/// An API token for the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub name: String,
    pub digest: [u8; 32],
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}
impl Record for ApiTokenRecord {
    const KIND: &'static str = "API token";
    const VERSION: u8 = 1;
}

/// The first-run setup link's token, valid until an admin exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupTokenRecord {
    pub digest: [u8; 32],
    pub created_at: Timestamp,
}
impl Record for SetupTokenRecord {
    const KIND: &'static str = "setup token";
    const VERSION: u8 = 1;
}

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ADMINS)?;
    tx.open_table(ADMIN_EMAILS)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(API_TOKENS)?;
    tx.open_table(API_TOKEN_DIGESTS)?;
    Ok(())
}

// ---- admins ----

/// Why an admin could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    #[error("an admin with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Inserts a new admin; refuses a duplicate email.
pub fn insert_admin(
    tx: &WriteTransaction,
    record: &AdminRecord,
) -> Result<AdminId, CreateAdminError> {
    let mut emails = tx.open_table(ADMIN_EMAILS).map_err(StoreError::from)?;
    if emails
        .get(record.email.as_str())
        .map_err(StoreError::from)?
        .is_some()
    {
        return Err(CreateAdminError::EmailTaken);
    }
    let id = meta::next_id(tx, "admin")?;
    emails
        .insert(record.email.as_str(), id)
        .map_err(StoreError::from)?;
    tx.open_table(ADMINS)
        .map_err(StoreError::from)?
        .insert(id, codec::encode(record).as_slice())
        .map_err(StoreError::from)?;
    Ok(AdminId::new(id))
}

/// Overwrites an existing admin record.
pub fn update_admin(
    tx: &WriteTransaction,
    id: AdminId,
    record: &AdminRecord,
) -> Result<(), StoreError> {
    tx.open_table(ADMINS)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

/// Finds an admin by email inside a write transaction.
pub fn admin_by_email(
    tx: &impl Reader,
    email: &Email,
) -> Result<Option<(AdminId, AdminRecord)>, StoreError> {
    let Some(id) = tx
        .table(ADMIN_EMAILS)?
        .get(email.as_str())?
        .map(|g| g.value())
    else {
        return Ok(None);
    };
    let admins = tx.table(ADMINS)?;
    let row = admins.get(id)?.ok_or_else(|| StoreError::Corrupt {
        kind: "admin",
        detail: format!("email index points at missing admin {id}"),
    })?;
    Ok(Some((AdminId::new(id), codec::decode(row.value())?)))
}

/// Deletes an admin, its email index entry and its sessions; returns the removed record.
pub fn remove_admin(
    tx: &WriteTransaction,
    id: AdminId,
    now: Timestamp,
) -> Result<Option<AdminRecord>, StoreError> {
    let Some(record) = tx
        .open_table(ADMINS)?
        .remove(id.get())?
        .map(|row| codec::decode::<AdminRecord>(row.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    tx.open_table(ADMIN_EMAILS)?.remove(record.email.as_str())?;
    prune_sessions(tx, now, Some(id))?;
    Ok(Some(record))
}

/// Reads one admin.
pub fn admin(tx: &impl Reader, id: AdminId) -> Result<Option<AdminRecord>, StoreError> {
    let admins = tx.table(ADMINS)?;
    admins
        .get(id.get())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

/// Every admin, by id.
pub fn admins(tx: &impl Reader) -> Result<Vec<(AdminId, AdminRecord)>, StoreError> {
    let table = tx.table(ADMINS)?;
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((AdminId::new(k.value()), codec::decode(v.value())?))
        })
        .collect()
}

/// How many admins exist.
pub fn admin_count(tx: &impl Reader) -> Result<u64, StoreError> {
    Ok(tx.table(ADMINS)?.len()?)
}

// ---- sessions ----

pub fn insert_session(
    tx: &WriteTransaction,
    digest: &[u8; 32],
    record: &SessionRecord,
) -> Result<(), StoreError> {
    tx.open_table(SESSIONS)?
        .insert(digest.as_slice(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn session(tx: &impl Reader, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
    let table = tx.table(SESSIONS)?;
    table
        .get(digest.as_slice())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn remove_session(tx: &WriteTransaction, digest: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(tx
        .open_table(SESSIONS)?
        .remove(digest.as_slice())?
        .is_some())
}

/// Removes every session of one admin (after a password change) and every expired one.
/// Returns how many were removed.
pub fn prune_sessions(
    tx: &WriteTransaction,
    now: Timestamp,
    also_of: Option<AdminId>,
) -> Result<u64, StoreError> {
    let mut table = tx.open_table(SESSIONS)?;
    let mut removed = 0;
    table.retain(|_, value| {
        let keep = match codec::decode::<SessionRecord>(value) {
            Ok(s) => s.expires_at > now && Some(s.admin_id) != also_of,
            Err(_) => false,
        };
        removed += u64::from(!keep);
        keep
    })?;
    Ok(removed)
}

/// Sessions that have not expired.
pub fn active_session_count(tx: &impl Reader, now: Timestamp) -> Result<u64, StoreError> {
    let table = tx.table(SESSIONS)?;
    let mut count = 0;
    for row in table.iter()? {
        let (_, v) = row?;
        if codec::decode::<SessionRecord>(v.value())?.expires_at > now {
            count += 1;
        }
    }
    Ok(count)
}

// ---- API tokens ----

pub fn insert_api_token(
    tx: &WriteTransaction,
    record: &ApiTokenRecord,
) -> Result<ApiTokenId, StoreError> {
    let id = meta::next_id(tx, "api_token")?;
    tx.open_table(API_TOKENS)?
        .insert(id, codec::encode(record).as_slice())?;
    tx.open_table(API_TOKEN_DIGESTS)?
        .insert(record.digest.as_slice(), id)?;
    Ok(ApiTokenId::new(id))
}

pub fn api_token(
    tx: &WriteTransaction,
    id: ApiTokenId,
) -> Result<Option<ApiTokenRecord>, StoreError> {
    let table = tx.open_table(API_TOKENS)?;
    table
        .get(id.get())?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn update_api_token(
    tx: &WriteTransaction,
    id: ApiTokenId,
    record: &ApiTokenRecord,
) -> Result<(), StoreError> {
    tx.open_table(API_TOKENS)?
        .insert(id.get(), codec::encode(record).as_slice())?;
    Ok(())
}

pub fn api_token_by_digest(
    tx: &impl Reader,
    digest: &[u8; 32],
) -> Result<Option<(ApiTokenId, ApiTokenRecord)>, StoreError> {
    let Some(id) = tx
        .table(API_TOKEN_DIGESTS)?
        .get(digest.as_slice())?
        .map(|g| g.value())
    else {
        return Ok(None);
    };
    let table = tx.table(API_TOKENS)?;
    let row = table.get(id)?.ok_or_else(|| StoreError::Corrupt {
        kind: "API token",
        detail: format!("digest index points at missing token {id}"),
    })?;
    Ok(Some((ApiTokenId::new(id), codec::decode(row.value())?)))
}

pub fn api_tokens(tx: &impl Reader) -> Result<Vec<(ApiTokenId, ApiTokenRecord)>, StoreError> {
    let table = tx.table(API_TOKENS)?;
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((ApiTokenId::new(k.value()), codec::decode(v.value())?))
        })
        .collect()
}

// ---- setup token ----

pub fn set_setup_token(tx: &WriteTransaction, record: &SetupTokenRecord) -> Result<(), StoreError> {
    tx.open_table(META)?
        .insert(KEY_SETUP_TOKEN, codec::encode(record).as_slice())?;
    Ok(())
}

pub fn setup_token(tx: &impl Reader) -> Result<Option<SetupTokenRecord>, StoreError> {
    let table = tx.table(META)?;
    table
        .get(KEY_SETUP_TOKEN)?
        .map(|row| codec::decode(row.value()))
        .transpose()
}

pub fn clear_setup_token(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(META)?.remove(KEY_SETUP_TOKEN)?;
    Ok(())
}
