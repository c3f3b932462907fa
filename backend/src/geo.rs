//! IP → country. A [`GeoLookup`] answers `None` for "unknown", which never locks or blocks a
//! grant; private, loopback and other non-public addresses are always unknown.
//!
//! [`MaxMindGeo`] reads both layouts in use: MaxMind GeoIP2/GeoLite2 (`country.iso_code`)
//! and the ip-location-db files such as DB-IP Lite (`country_code`). The whole file is read
//! into memory (never mmapped: a file replaced in place must not change under a reader).

use domain::CountryCode;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

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
    reader: maxminddb::Reader<Vec<u8>>,
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
        Self::from_bytes(bytes)
            .map_err(|e| format!("{} is not a MaxMind database: {e}", path.display()))
    }

    /// Wraps database bytes (e.g. embedded in the binary).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
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
        assert!(MaxMindGeo::from_bytes(b"not a database".to_vec()).is_err());
    }
}
