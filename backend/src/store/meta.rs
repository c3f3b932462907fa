//! The `meta` table: schema version, the server secret and id counters.

use super::{Reader, StoreError};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// key: a fixed name (see the constants below); value: raw bytes whose layout the key defines.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-1");

/// The schema version this build writes; see `migrations.rs` for the history.
pub const SCHEMA_VERSION: u32 = 9;

/// Big-endian u32: the schema version of the file.
pub(super) const KEY_SCHEMA_VERSION: &str = "schema_version";
/// 32 random bytes: the key for password HMACs and other server-side secrets.
pub(super) const KEY_SERVER_SECRET: &str = "server_secret";
/// Prefix of big-endian u64 id counters, e.g. `next_id:admin`.
const NEXT_ID_PREFIX: &str = "next_id:";

/// Reads the schema version of the file (0 for a new, empty file).
pub(super) fn schema_version(tx: &WriteTransaction) -> Result<u32, StoreError> {
    let table = tx.open_table(META)?;
    let Some(raw) = table.get(KEY_SCHEMA_VERSION)? else {
        return Ok(0);
    };
    let bytes: [u8; 4] = raw.value().try_into().map_err(|_| StoreError::Corrupt {
        kind: "schema version",
        detail: "not 4 bytes".into(),
    })?;
    Ok(u32::from_be_bytes(bytes))
}

pub(super) fn set_schema_version(tx: &WriteTransaction, version: u32) -> Result<(), StoreError> {
    tx.open_table(META)?
        .insert(KEY_SCHEMA_VERSION, version.to_be_bytes().as_slice())?;
    Ok(())
}

/// The 32-byte server secret created by the first migration.
pub fn server_secret(tx: &redb::ReadTransaction) -> Result<[u8; 32], StoreError> {
    let table = tx.open_table(META)?;
    let raw = table
        .get(KEY_SERVER_SECRET)?
        .ok_or_else(|| StoreError::Corrupt {
            kind: "server secret",
            detail: "missing".into(),
        })?;
    raw.value().try_into().map_err(|_| StoreError::Corrupt {
        kind: "server secret",
        detail: "not 32 bytes".into(),
    })
}

/// Allocates the next id of a kind (1, 2, 3, …) inside the caller's transaction.
pub(super) fn next_id(tx: &WriteTransaction, kind: &str) -> Result<u64, StoreError> {
    let key = format!("{NEXT_ID_PREFIX}{kind}");
    let mut table = tx.open_table(META)?;
    let current = match table.get(key.as_str())? {
        Some(raw) => {
            u64::from_be_bytes(raw.value().try_into().map_err(|_| StoreError::Corrupt {
                kind: "id counter",
                detail: key.clone(),
            })?)
        }
        None => 0,
    };
    let next = current + 1;
    table.insert(key.as_str(), next.to_be_bytes().as_slice())?;
    Ok(next)
}

/// Versioned record: the seller's store settings (absent until first saved).
const KEY_STORE_SETTINGS: &str = "store_settings";
/// Big-endian u64: the newest event sequence whose IP the retention job has already shortened
/// or looked at, so each run starts where the last one stopped.
const KEY_IP_RETENTION_CURSOR: &str = "ip_retention_cursor";

/// The stored settings, field by field, so the domain type can change without changing
/// what is on disk.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoreSettingsRecord {
    store_name: String,
    sender_name: String,
    sender_email: String,
    reset_days: u32,
    ip_retention_days: u32,
    event_retention_days: u32,
    default_language: domain::Language,
    time_zone: String,
}

/// Postcard bytes of version 3's new fields at their defaults: English (variant 0) and "UTC".
const SETTINGS_V3_TAIL: [u8; 5] = [0, 3, b'U', b'T', b'C'];

impl super::Record for StoreSettingsRecord {
    const KIND: &'static str = "store settings";
    const VERSION: u8 = 3;

    /// Version 1 had no log retention: such a store keeps the default. Version 2 had no
    /// language and time zone: English and UTC, as before.
    fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
        #[derive(serde::Deserialize)]
        struct V1 {
            store_name: String,
            sender_name: String,
            sender_email: String,
            reset_days: u32,
            ip_retention_days: u32,
        }
        let corrupt = |detail: String| StoreError::Corrupt {
            kind: Self::KIND,
            detail,
        };
        if version == 2 {
            return super::codec::upgrade_by_appending(2, 2, payload, &SETTINGS_V3_TAIL);
        }
        if version != 1 {
            return Err(corrupt(format!("unknown record version {version}")));
        }
        let v1: V1 = postcard::from_bytes(payload).map_err(|e| corrupt(e.to_string()))?;
        Ok(Self {
            store_name: v1.store_name,
            sender_name: v1.sender_name,
            sender_email: v1.sender_email,
            reset_days: v1.reset_days,
            ip_retention_days: v1.ip_retention_days,
            event_retention_days: domain::settings::DEFAULT_EVENT_RETENTION_DAYS,
            default_language: domain::Language::En,
            time_zone: domain::settings::DEFAULT_TIME_ZONE.to_owned(),
        })
    }
}

/// The saved store settings, if the seller ever saved them.
pub fn store_settings(
    tx: &redb::ReadTransaction,
) -> Result<Option<domain::settings::StoreSettings>, StoreError> {
    let table = tx.open_table(META)?;
    let Some(raw) = table.get(KEY_STORE_SETTINGS)? else {
        return Ok(None);
    };
    let r: StoreSettingsRecord = super::codec::decode(raw.value())?;
    Ok(Some(domain::settings::StoreSettings {
        store_name: r.store_name,
        sender_name: r.sender_name,
        sender_email: r.sender_email,
        reset_days: r.reset_days,
        ip_retention_days: r.ip_retention_days,
        event_retention_days: r.event_retention_days,
        default_language: r.default_language,
        time_zone: r.time_zone,
    }))
}

/// Saves the store settings.
pub fn put_store_settings(
    tx: &WriteTransaction,
    s: &domain::settings::StoreSettings,
) -> Result<(), StoreError> {
    let record = StoreSettingsRecord {
        store_name: s.store_name.clone(),
        sender_name: s.sender_name.clone(),
        sender_email: s.sender_email.clone(),
        reset_days: s.reset_days,
        ip_retention_days: s.ip_retention_days,
        event_retention_days: s.event_retention_days,
        default_language: s.default_language,
        time_zone: s.time_zone.clone(),
    };
    tx.open_table(META)?
        .insert(KEY_STORE_SETTINGS, super::codec::encode(&record).as_slice())?;
    Ok(())
}

/// Where the IP retention job stopped last time (0 before its first run).
pub fn ip_retention_cursor(tx: &WriteTransaction) -> Result<u64, StoreError> {
    read_u64(tx, KEY_IP_RETENTION_CURSOR, "IP retention cursor")
}

pub fn set_ip_retention_cursor(tx: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    write_u64(tx, KEY_IP_RETENTION_CURSOR, seq)
}

/// A big-endian u64 stored under `key` (0 when absent); `kind` names it in errors.
fn read_u64(tx: &WriteTransaction, key: &str, kind: &'static str) -> Result<u64, StoreError> {
    let table = tx.open_table(META)?;
    let Some(raw) = table.get(key)? else {
        return Ok(0);
    };
    Ok(u64::from_be_bytes(raw.value().try_into().map_err(
        |_| StoreError::Corrupt {
            kind,
            detail: "not 8 bytes".into(),
        },
    )?))
}

fn write_u64(tx: &WriteTransaction, key: &str, value: u64) -> Result<(), StoreError> {
    tx.open_table(META)?
        .insert(key, value.to_be_bytes().as_slice())?;
    Ok(())
}

/// Big-endian u64: the sequence number of the last download batch written to the journal
/// that this state holds (see `journal.rs`); replay after a crash starts after it.
const KEY_JOURNAL_SEQ: &str = "journal_seq";

pub(super) fn journal_seq(tx: &WriteTransaction) -> Result<u64, StoreError> {
    read_u64(tx, KEY_JOURNAL_SEQ, "journal sequence")
}

pub(super) fn set_journal_seq(tx: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    write_u64(tx, KEY_JOURNAL_SEQ, seq)
}

/// Versioned record: the seller's mail templates (absent until one is saved).
const KEY_MAIL_TEMPLATES: &str = "mail_templates";

/// The stored templates: (kind name, subject, text, html). Kinds this build does not know
/// are skipped when read, so a downgrade keeps working. An English template is stored
/// under the kind's name (as before languages existed), another language's under
/// `kind@language` (`purchase@de`), which older builds skip.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct MailTemplatesRecord {
    templates: Vec<(String, String, String, String)>,
}
impl super::Record for MailTemplatesRecord {
    const KIND: &'static str = "mail templates";
    const VERSION: u8 = 1;
}

fn decode_templates(raw: Option<&[u8]>) -> Result<domain::mail::TemplateOverrides, StoreError> {
    let Some(raw) = raw else {
        return Ok(domain::mail::TemplateOverrides::new());
    };
    let record: MailTemplatesRecord = super::codec::decode(raw)?;
    Ok(record
        .templates
        .into_iter()
        .filter_map(|(kind, subject, text, html)| {
            let (kind, language) = match kind.split_once('@') {
                Some((kind, tag)) => (kind.to_owned(), domain::Language::from_tag(tag)?),
                None => (kind, domain::Language::En),
            };
            domain::mail::MailKind::parse(&kind).map(|k| {
                (
                    (k, language),
                    domain::mail::TemplateSource {
                        subject,
                        text,
                        html,
                    },
                )
            })
        })
        .collect())
}

/// The seller's mail templates.
pub fn mail_templates(tx: &impl Reader) -> Result<domain::mail::TemplateOverrides, StoreError> {
    let table = tx.table(META)?;
    let raw = table.get(KEY_MAIL_TEMPLATES)?;
    decode_templates(raw.as_ref().map(redb::AccessGuard::value))
}

/// Saves the seller's mail templates (every kind given replaces the default).
pub fn put_mail_templates(
    tx: &WriteTransaction,
    templates: &domain::mail::TemplateOverrides,
) -> Result<(), StoreError> {
    let record = MailTemplatesRecord {
        templates: templates
            .iter()
            .map(|((k, language), t)| {
                (
                    match language {
                        domain::Language::En => k.as_str().to_owned(),
                        other => format!("{}@{}", k.as_str(), other.as_str()),
                    },
                    t.subject.clone(),
                    t.text.clone(),
                    t.html.clone(),
                )
            })
            .collect(),
    };
    tx.open_table(META)?
        .insert(KEY_MAIL_TEMPLATES, super::codec::encode(&record).as_slice())?;
    Ok(())
}

const KEY_OBJECTS_TO_REMOVE: &str = "objects_to_remove";

/// Objects (store, key) left in a store a migration moved files out of, to remove once the
/// switch is committed (written in the switch's transaction, so an interrupted clean-up is
/// finished by the next run).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectsToRemove {
    pub objects: Vec<(String, String)>,
}
impl super::codec::Record for ObjectsToRemove {
    const KIND: &'static str = "objects to remove";
    const VERSION: u8 = 1;
}

pub fn objects_to_remove(tx: &impl Reader) -> Result<ObjectsToRemove, StoreError> {
    let table = tx.table(META)?;
    table
        .get(KEY_OBJECTS_TO_REMOVE)?
        .map(|row| super::codec::decode(row.value()))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub fn set_objects_to_remove(
    tx: &WriteTransaction,
    list: &ObjectsToRemove,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(META)?;
    if list.objects.is_empty() {
        table.remove(KEY_OBJECTS_TO_REMOVE)?;
    } else {
        table.insert(KEY_OBJECTS_TO_REMOVE, super::codec::encode(list).as_slice())?;
    }
    Ok(())
}
