//! Versioned record encoding: `[version byte][postcard payload]`.
//!
//! redb's own tuple encodings changed between majors, so long-lived values are our bytes.
//! The leading version lets a later release read every older row (`Record::upgrade`) and
//! makes a row from a newer release an explicit error rather than garbage.

use super::StoreError;
use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value stored in a table.
pub trait Record: Serialize + DeserializeOwned {
    /// Human name used in error messages ("admin", "session").
    const KIND: &'static str;
    /// The version written by this build.
    const VERSION: u8;

    /// Reads a row written by an older version. The default knows no older versions.
    fn upgrade(version: u8, _payload: &[u8]) -> Result<Self, StoreError> {
        Err(StoreError::Corrupt {
            kind: Self::KIND,
            detail: format!(
                "unknown record version {version} (this build writes {})",
                Self::VERSION
            ),
        })
    }
}

/// The usual upgrade of a record that gained fields at its end: a row of version `from`
/// becomes the current version by appending `tail` (the new fields' postcard bytes).
pub fn upgrade_by_appending<R: Record>(
    version: u8,
    from: u8,
    payload: &[u8],
    tail: &[u8],
) -> Result<R, StoreError> {
    if version != from {
        return Err(StoreError::Corrupt {
            kind: R::KIND,
            detail: format!("unknown record version {version}"),
        });
    }
    let mut current = payload.to_vec();
    current.extend_from_slice(tail);
    postcard::from_bytes(&current).map_err(|e| StoreError::Corrupt {
        kind: R::KIND,
        detail: e.to_string(),
    })
}

/// Encodes a record with its version byte.
pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    let mut out = vec![R::VERSION];
    // Serialising plain structs into a Vec cannot fail.
    out.extend(postcard::to_stdvec(record).expect("postcard serialisation of a record"));
    out
}

/// Decodes a record, upgrading older versions; a malformed row is an error, never a panic.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, StoreError> {
    let (&version, payload) = bytes.split_first().ok_or_else(|| StoreError::Corrupt {
        kind: R::KIND,
        detail: "empty row".into(),
    })?;
    if version != R::VERSION {
        return R::upgrade(version, payload);
    }
    let (record, rest) =
        postcard::take_from_bytes::<R>(payload).map_err(|e| StoreError::Corrupt {
            kind: R::KIND,
            detail: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt {
            kind: R::KIND,
            detail: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(record)
}

/// Every record of a table keyed by `u64` that `pick` chooses, in key order (a full scan:
/// for rare questions such as a buyer's data request).
pub(super) fn matching<R: Record>(
    tx: &impl super::Reader,
    definition: redb::TableDefinition<u64, &[u8]>,
    mut pick: impl FnMut(&R) -> bool,
) -> Result<Vec<(u64, R)>, StoreError> {
    use redb::ReadableTable;
    let mut out = Vec::new();
    for row in tx.table(definition)?.iter()? {
        let (key, value) = row?;
        let record: R = decode(value.value())?;
        if pick(&record) {
            out.push((key.value(), record));
        }
    }
    Ok(out)
}

/// Rewrites, in place, every record of a table keyed by `u64` that `edit` changes (it
/// returns whether it did); returns how many. For edits that leave the record's indexed
/// fields alone (an erasure replaces text, never a state or a time).
pub(super) fn rewrite<R: Record>(
    tx: &redb::WriteTransaction,
    definition: redb::TableDefinition<u64, &[u8]>,
    mut edit: impl FnMut(u64, &mut R) -> bool,
) -> Result<u64, StoreError> {
    use redb::ReadableTable;
    let mut table = tx.open_table(definition)?;
    let mut changed = Vec::new();
    for row in table.iter()? {
        let (key, value) = row?;
        let mut record: R = decode(value.value())?;
        if edit(key.value(), &mut record) {
            changed.push((key.value(), record));
        }
    }
    for (key, record) in &changed {
        table.insert(*key, encode(record).as_slice())?;
    }
    Ok(changed.len() as u64)
}

/// A record by key from a table of encoded records.
pub(super) fn get<K: redb::Key + 'static, R: Record>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'static>>,
) -> Result<Option<R>, StoreError> {
    table.get(key)?.map(|row| decode(row.value())).transpose()
}

/// Rows with their ids, newest first, and where the next page starts.
pub type Page<R> = (Vec<(u64, R)>, Option<u64>);

/// The rows of a table keyed by increasing ids, newest first below `before` (from the
/// newest when `None`), at most `limit`, and the `before` of the next page.
pub(super) fn newest_first<R: Record>(
    table: &impl ReadableTable<u64, &'static [u8]>,
    before: Option<u64>,
    limit: usize,
) -> Result<Page<R>, StoreError> {
    let rows = match before {
        Some(b) => table.range(..b)?,
        None => table.iter()?,
    };
    let mut out = Vec::new();
    for row in rows.rev() {
        let (k, v) = row?;
        if out.len() == limit {
            return Ok((out, Some(k.value() + 1)));
        }
        out.push((k.value(), decode(v.value())?));
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<String>,
        when: Option<i64>,
        flag: bool,
    }

    impl Record for Sample {
        const KIND: &'static str = "sample";
        const VERSION: u8 = 2;

        fn upgrade(version: u8, payload: &[u8]) -> Result<Self, StoreError> {
            #[derive(Deserialize)]
            struct SampleV1 {
                id: u64,
                name: String,
            }
            match version {
                1 => {
                    let old: SampleV1 =
                        postcard::from_bytes(payload).map_err(|e| StoreError::Corrupt {
                            kind: Self::KIND,
                            detail: e.to_string(),
                        })?;
                    Ok(Sample {
                        id: old.id,
                        name: old.name,
                        tags: vec![],
                        when: None,
                        flag: false,
                    })
                }
                _ => Err(StoreError::Corrupt {
                    kind: Self::KIND,
                    detail: format!("version {version}"),
                }),
            }
        }
    }

    proptest! {
        #[test]
        fn round_trips(id: u64, name in ".{0,40}", tags in proptest::collection::vec(".{0,10}", 0..5), when: Option<i64>, flag: bool) {
            let s = Sample { id, name, tags, when, flag };
            prop_assert_eq!(decode::<Sample>(&encode(&s)).unwrap(), s);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<Sample>(&bytes);
        }
    }

    #[test]
    fn older_versions_are_upgraded() {
        let mut row = vec![1u8];
        row.extend(postcard::to_stdvec(&(7u64, "old".to_string())).unwrap());
        let s: Sample = decode(&row).unwrap();
        assert_eq!((s.id, s.name.as_str(), s.tags.len()), (7, "old", 0));
    }

    #[test]
    fn newer_versions_and_trailing_bytes_are_refused() {
        let s = Sample {
            id: 1,
            name: "x".into(),
            tags: vec![],
            when: None,
            flag: true,
        };
        let mut row = encode(&s);
        row[0] = 9;
        assert!(matches!(
            decode::<Sample>(&row),
            Err(StoreError::Corrupt { .. })
        ));
        let mut row = encode(&s);
        row.push(0);
        assert!(matches!(
            decode::<Sample>(&row),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
