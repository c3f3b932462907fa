//! The buyer library's secrets: one-time sign-in links mailed from the self-service page,
//! and the sessions they open. Only SHA-256 digests of the tokens are kept, so the file
//! (or a backup of it) never holds a working link or cookie.

use super::codec::{self, Record};
use super::{Reader, StoreError};
use domain::{Email, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// key: SHA-256 of the token; value: [`LibraryTokenRecord`].
pub(super) const LIBRARY_TOKENS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("library_tokens-1");

/// Creates this part's table (schema step 8).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(LIBRARY_TOKENS)?;
    Ok(())
}

/// What a token opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenPurpose {
    /// The mailed link: exchanged once for a session.
    SignIn,
    /// The browser's cookie: shows the library until it ends or the buyer signs out.
    Session,
}

/// A sign-in link or a session of one buyer address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryTokenRecord {
    pub email: Email,
    pub purpose: TokenPurpose,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
impl Record for LibraryTokenRecord {
    const KIND: &'static str = "library token";
    const VERSION: u8 = 1;
}

pub fn put_token(
    tx: &WriteTransaction,
    digest: &[u8; 32],
    record: &LibraryTokenRecord,
) -> Result<(), StoreError> {
    tx.open_table(LIBRARY_TOKENS)?
        .insert(digest.as_slice(), codec::encode(record).as_slice())?;
    Ok(())
}

/// The token with this digest, if it exists (expired or not).
pub fn token(
    tx: &impl Reader,
    digest: &[u8; 32],
) -> Result<Option<LibraryTokenRecord>, StoreError> {
    tx.table(LIBRARY_TOKENS)?
        .get(digest.as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

/// Removes a token; whether it was there.
pub fn remove_token(tx: &WriteTransaction, digest: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(tx
        .open_table(LIBRARY_TOKENS)?
        .remove(digest.as_slice())?
        .is_some())
}

/// Removes every token that ended before `now`; how many.
pub fn remove_expired(tx: &WriteTransaction, now: Timestamp) -> Result<usize, StoreError> {
    let mut table = tx.open_table(LIBRARY_TOKENS)?;
    let mut expired = Vec::new();
    for row in table.iter()? {
        let (key, value) = row?;
        let record: LibraryTokenRecord = codec::decode(value.value())?;
        if record.expires_at <= now {
            expired.push(key.value().to_vec());
        }
    }
    for key in &expired {
        table.remove(key.as_slice())?;
    }
    Ok(expired.len())
}
