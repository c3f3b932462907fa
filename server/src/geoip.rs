//! Which GeoIP database the server uses: the `--geoip-db` file (watched and reloaded when it
//! changes), else the DB-IP Lite database embedded at build time (see `build.rs` and
//! `geoip.pin`), else none (every country unknown, so the country lock never triggers).

use backend::geo::{GeoLookup, MaxMindGeo, NoGeo, Reload, ReloadingGeo};
use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The database compiled into the binary, xz-compressed: 2.1 MB of binary instead of 8.2 MB
/// (4.1 MB gzipped), for about 160 ms of unpacking on a thread of its own after start (see
/// [`Unpacking`]) and the 8 MiB it takes in memory.
#[derive(Debug)]
pub struct EmbeddedGeoip {
    pub package: &'static str,
    pub version: &'static str,
    pub xz: &'static [u8],
}

impl EmbeddedGeoip {
    /// The database's bytes.
    fn unpacked(&self) -> Result<Vec<u8>, String> {
        use std::io::Read as _;
        let mut bytes = Vec::with_capacity(self.xz.len() * 4);
        liblzma::read::XzDecoder::new(self.xz)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("the embedded database does not unpack: {e}"))?;
        Ok(bytes)
    }
}

include!(concat!(env!("OUT_DIR"), "/geoip.rs"));

/// The credit a database's licence asks for, shown wherever countries are displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub text: &'static str,
    pub url: &'static str,
}

const DB_IP: Attribution = Attribution {
    text: "IP geolocation by DB-IP",
    url: "https://db-ip.com",
};
const MAXMIND: Attribution = Attribution {
    text: "This product includes GeoLite2 data created by MaxMind",
    url: "https://www.maxmind.com",
};

/// The database in use and what to say about it.
pub struct Geo {
    pub lookup: Arc<dyn GeoLookup>,
    /// In words, for the dashboard.
    pub description: String,
    pub attribution: Option<Attribution>,
}

impl Geo {
    /// The licence's credit as the UI shows it.
    pub fn credit(&self) -> Option<domain::wire::Credit> {
        self.attribution.as_ref().map(|a| domain::wire::Credit {
            text: a.text.to_owned(),
            url: a.url.to_owned(),
        })
    }
}

/// Opens the configured database, logging which one and its build date. A `--geoip-db` file
/// is checked for changes every `reload_every` while the returned lookup is alive.
pub fn open(path: Option<&Path>, reload_every: Duration) -> Result<Geo, String> {
    if let Some(path) = path {
        let db = Arc::new(ReloadingGeo::open(path)?);
        let about = db.current().describe();
        tracing::info!(database = %path.display(), %about, reload_every = ?reload_every, "GeoIP database loaded; a changed file is reloaded");
        let attribution = attribution_for(&about);
        watch(Arc::downgrade(&db), reload_every);
        return Ok(Geo {
            lookup: db,
            description: format!("{} ({about})", path.display()),
            attribution,
        });
    }
    let Some(embedded) = &EMBEDDED_GEOIP else {
        tracing::warn!(
            "no GeoIP database: every country is unknown and the country lock never triggers (set --geoip-db, or build with `cargo xtask build` to embed DB-IP Lite)"
        );
        return Ok(Geo {
            lookup: Arc::new(NoGeo),
            description: "none: countries are unknown, the country lock is off".to_owned(),
            attribution: None,
        });
    };
    Ok(Geo {
        description: format!(
            "DB-IP Lite country, embedded ({} {})",
            embedded.package, embedded.version
        ),
        lookup: Arc::new(Unpacking::start(embedded)),
        attribution: Some(DB_IP),
    })
}

/// The embedded database while it is unpacked on a thread of its own, so the server
/// listens at once. A lookup made before the unpacking ends waits for it (a fraction of a
/// second, once per process) rather than answer "unknown": no download skips the country
/// rule because it came early.
#[derive(Debug)]
struct Unpacking {
    db: Arc<std::sync::OnceLock<Option<MaxMindGeo>>>,
}

impl Unpacking {
    fn start(embedded: &'static EmbeddedGeoip) -> Self {
        let db = Arc::new(std::sync::OnceLock::new());
        let filled = Arc::clone(&db);
        let unpack = move || {
            // A panic must still fill the cell: lookups wait on it.
            let opened = std::panic::catch_unwind(|| {
                embedded.unpacked().and_then(|bytes| {
                    MaxMindGeo::from_bytes(Cow::Owned(bytes))
                        .map_err(|e| format!("the embedded database is unreadable: {e}"))
                })
            })
            .unwrap_or_else(|_| Err("unpacking it panicked".to_owned()));
            let db = match opened {
                Ok(db) => {
                    tracing::info!(
                        database = %format!("{} {} (embedded)", embedded.package, embedded.version),
                        about = %db.describe(),
                        "GeoIP database loaded"
                    );
                    Some(db)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the embedded GeoIP database cannot be used: every country is unknown");
                    None
                }
            };
            let _ = filled.set(db);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("dropgate-geoip".into())
            .spawn(unpack)
        {
            tracing::error!(error = %e, "could not start unpacking the GeoIP database");
            let _ = db.set(None);
        }
        Self { db }
    }
}

impl GeoLookup for Unpacking {
    fn country(&self, ip: std::net::IpAddr) -> Option<domain::CountryCode> {
        self.db.wait().as_ref().and_then(|db| db.country(ip))
    }
}

/// Whether this build carries the DB-IP Lite database.
pub fn has_embedded_database() -> bool {
    EMBEDDED_GEOIP.is_some()
}

fn attribution_for(database_type: &str) -> Option<Attribution> {
    let lower = database_type.to_ascii_lowercase();
    if lower.contains("dbip") || lower.contains("db-ip") {
        Some(DB_IP)
    } else if lower.contains("geolite") {
        Some(MAXMIND)
    } else {
        None
    }
}

/// Polls the file until the database is dropped with the application.
fn watch(db: Weak<ReloadingGeo>, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(db) = db.upgrade() else { return };
            let outcome = tokio::task::spawn_blocking(move || db.reload_if_changed()).await;
            match outcome {
                Ok(Reload::Unchanged) => {}
                Ok(Reload::Swapped(about)) => {
                    tracing::info!(%about, "GeoIP database file changed: now using the new one");
                }
                Ok(Reload::Kept(why)) => {
                    tracing::warn!(%why, "GeoIP database file changed but cannot be used yet: keeping the previous one");
                }
                Err(e) => tracing::error!(error = %e, "GeoIP reload task failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_are_credited() {
        assert_eq!(attribution_for("dbip-country"), Some(DB_IP));
        assert_eq!(
            attribution_for("GeoLite2-Country built 2026-06-01"),
            Some(MAXMIND)
        );
        assert_eq!(attribution_for("GeoIP2-Country"), None);
    }
}
