//! IP → country. A [`GeoLookup`] answers `None` for "unknown", which never locks or blocks a
//! grant; private, loopback and other non-public addresses are always unknown.
//!
//! [`MaxMindGeo`] reads both layouts in use: MaxMind GeoIP2/GeoLite2 (`country.iso_code`)
//! and the ip-location-db files such as DB-IP Lite (`country_code`). A file is read into
//! memory (never mmapped: a file replaced in place must not change under a reader); the
//! database embedded in the binary is used where it lies, without a copy.
//!
//! [`ReloadingGeo`] watches a `--geoip-db` file and swaps in a changed one atomically:
//! lookups in flight finish on the old database, later ones see the new one, and a file
//! that does not parse (e.g. still being written) leaves the old one in place.

use domain::CountryCode;
use serde::Deserialize;
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Country of an IP address.
pub trait GeoLookup: Send + Sync + std::fmt::Debug {
    fn country(&self, ip: IpAddr) -> Option<CountryCode>;
}

/// No database: every address is unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGeo;

impl GeoLookup for NoGeo {
    fn country(&self, _ip: IpAddr) -> Option<CountryCode> {
        None
    }
}

/// A `.mmdb` country database held in memory.
pub struct MaxMindGeo {
    reader: maxminddb::Reader<Cow<'static, [u8]>>,
}

impl std::fmt::Debug for MaxMindGeo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxMindGeo")
            .field("type", &self.reader.metadata().database_type)
            .finish()
    }
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

impl MaxMindGeo {
    /// Reads a database file.
    pub fn open(path: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_bytes(Cow::Owned(bytes))
            .map_err(|e| format!("{} is not a MaxMind database: {e}", path.display()))
    }

    /// Wraps database bytes: owned, or borrowed from the binary (no copy).
    pub fn from_bytes(bytes: Cow<'static, [u8]>) -> Result<Self, String> {
        maxminddb::Reader::from_source(bytes)
            .map(|reader| Self { reader })
            .map_err(|e| e.to_string())
    }

    /// The database's type and build date, for the start-up log.
    pub fn describe(&self) -> String {
        let m = self.reader.metadata();
        let built = domain::Timestamp::from_unix_millis(
            i64::try_from(m.build_epoch)
                .unwrap_or(0)
                .saturating_mul(1000),
        );
        format!("{} built {}", m.database_type, built.human())
    }
}

impl GeoLookup for MaxMindGeo {
    fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        if !is_public(ip) {
            return None;
        }
        let result = self.reader.lookup(ip).ok()?;
        let record: CountryRecord<'_> = result.decode().ok()??;
        let code = record
            .country
            .and_then(|c| c.iso_code)
            .or(record.country_code)?;
        CountryCode::parse(code)
    }
}

/// What identifies a version of a file on disk: a replaced or rewritten file changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}

/// A database file that is reloaded when it changes on disk.
#[derive(Debug)]
pub struct ReloadingGeo {
    path: PathBuf,
    current: RwLock<Arc<MaxMindGeo>>,
    /// The stamp of the file behind `current`.
    loaded: Mutex<Option<FileStamp>>,
}

/// The outcome of one [`ReloadingGeo::reload_if_changed`] check.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    /// A new database is in use; its description.
    Swapped(String),
    /// The file changed but cannot be used; the old database stays.
    Kept(String),
}

impl ReloadingGeo {
    /// Opens the file; an unreadable or invalid file is an error here (at start-up).
    pub fn open(path: &Path) -> Result<Self, String> {
        let stamp = FileStamp::of(path).ok();
        let db = MaxMindGeo::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(db)),
            loaded: Mutex::new(stamp),
        })
    }

    /// The database in use now.
    pub fn current(&self) -> Arc<MaxMindGeo> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Blocking (reads the file): call from a blocking thread.
    pub fn reload_if_changed(&self) -> Reload {
        let stamp = match FileStamp::of(&self.path) {
            Ok(stamp) => stamp,
            Err(e) => return Reload::Kept(format!("cannot read {}: {e}", self.path.display())),
        };
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.as_ref() == Some(&stamp) {
            return Reload::Unchanged;
        }
        match MaxMindGeo::open(&self.path) {
            Ok(db) => {
                let about = db.describe();
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(db);
                *loaded = Some(stamp);
                Reload::Swapped(about)
            }
            // Not remembered as loaded, so the next check tries again (a copy in progress).
            Err(e) => Reload::Kept(e),
        }
    }
}

impl GeoLookup for ReloadingGeo {
    fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        self.current().country(ip)
    }
}

/// Whether an address can have a country at all.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && v4.octets()[1] & 0xC0 == 64)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_never_public() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "192.0.2.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "81.2.69.142", "2001:4860:4860::8888"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(NoGeo.country("8.8.8.8".parse().unwrap()), None);
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/tests/fixtures")
            .join(name)
    }

    #[test]
    fn reads_both_database_layouts() {
        for name in ["countries-maxmind.mmdb", "countries-iplocation.mmdb"] {
            let geo = MaxMindGeo::open(&fixture(name)).unwrap();
            let country = |ip: &str| geo.country(ip.parse().unwrap()).map(|c| c.to_string());
            assert_eq!(country("8.8.8.8").as_deref(), Some("US"), "{name}");
            assert_eq!(country("81.2.69.142").as_deref(), Some("GB"), "{name}");
            assert_eq!(country("193.0.6.139").as_deref(), Some("NL"), "{name}");
            assert_eq!(country("1.1.1.1"), None, "{name}: not in the database");
            assert_eq!(country("127.0.0.1"), None, "{name}: loopback");
            assert!(geo.describe().contains("built"));
        }
    }

    #[test]
    fn garbage_is_not_a_database() {
        assert!(MaxMindGeo::from_bytes(Cow::Borrowed(b"not a database")).is_err());
    }

    #[test]
    fn a_replaced_file_is_swapped_in_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("geo.mmdb");
        std::fs::copy(fixture("countries-iplocation.mmdb"), &path).unwrap();
        let geo = ReloadingGeo::open(&path).unwrap();
        let google = || {
            geo.country("8.8.8.8".parse().unwrap())
                .map(|c| c.to_string())
        };
        assert_eq!(google().as_deref(), Some("US"));
        assert_eq!(geo.reload_if_changed(), Reload::Unchanged);

        // A half-copied file: the old database stays and answers.
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"half a database").unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert!(matches!(geo.reload_if_changed(), Reload::Kept(_)));
        assert_eq!(google().as_deref(), Some("US"));

        // The finished file (moved into place, as `mv` or `cp` + `mv` does).
        std::fs::copy(fixture("countries-updated.mmdb"), &staged).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert!(
            matches!(geo.reload_if_changed(), Reload::Swapped(about) if about.contains("dbip"))
        );
        assert_eq!(google().as_deref(), Some("CA"));
        assert_eq!(geo.reload_if_changed(), Reload::Unchanged);
    }
}
