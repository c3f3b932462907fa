//! The seller's store settings (name, mail sender, reset window, IP and log retention) and
//! the job that shortens buyers' IP addresses, and removes download log entries, once their
//! retention period has passed.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::store;
use crate::store::{Store, meta};
use domain::Timestamp;
use domain::settings::StoreSettings;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Events rewritten per write transaction by the retention job, so downloads never wait
/// long behind it.
const RETENTION_BATCH: usize = 2_000;

/// Store settings with a copy in memory (read on every desk reset and page render; written
/// only from the Settings screen).
#[derive(Clone, Debug)]
pub struct SettingsService {
    store: Store,
    current: Arc<RwLock<StoreSettings>>,
}

/// What one run of the IP retention job shortened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortenedIps {
    pub events: u64,
    pub grants: u64,
}

impl SettingsService {
    /// Loads the saved settings, or starts from `initial` when the seller never saved any.
    pub async fn load(store: Store, initial: StoreSettings) -> Result<Self, ServiceError> {
        let saved = store.run(|s| s.read(meta::store_settings)).await?;
        Ok(Self {
            store,
            current: Arc::new(RwLock::new(saved.unwrap_or(initial))),
        })
    }

    /// The settings in force.
    pub fn current(&self) -> StoreSettings {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The store's time zone (UTC when this host's tz database lacks it).
    pub fn zone(&self) -> crate::i18n::StoreZone {
        crate::i18n::StoreZone::named_or_utc(&self.current().time_zone)
    }

    /// Checks and saves new settings (audited); nothing changes when a field is refused.
    pub async fn update(
        &self,
        input: StoreSettings,
        actor: Actor,
        now: Timestamp,
    ) -> Result<StoreSettings, ServiceError> {
        let checked = input
            .checked()
            .map_err(|e| ServiceError::invalid(e.field, e.message))?;
        crate::i18n::StoreZone::named(&checked.time_zone)
            .map_err(|e| ServiceError::invalid("time_zone", e.to_string()))?;
        let before = self.current();
        let saved = checked.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    meta::put_store_settings(tx, &saved)?;
                    record_audit(
                        tx,
                        &actor,
                        "settings.update",
                        "settings",
                        Some(&before),
                        Some(&saved),
                        now,
                    )?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = checked.clone();
        Ok(checked)
    }

    /// Shortens buyers' IPs older than the retention period to their network, in the event
    /// log and in the grants' country sightings. Countries and times stay. Does nothing when
    /// retention is 0.
    pub async fn shorten_expired_ips(&self, now: Timestamp) -> Result<ShortenedIps, ServiceError> {
        let days = self.current().ip_retention_days;
        if days == 0 {
            return Ok(ShortenedIps::default());
        }
        let cutoff = now.minus(Duration::from_secs(u64::from(days) * 86_400));
        let mut shortened = ShortenedIps::default();
        loop {
            let (_, events, done) = self
                .store
                .run(move |s| {
                    s.write(|tx| {
                        store::events::shorten_event_ips_before(tx, cutoff, RETENTION_BATCH)
                    })
                })
                .await?;
            shortened.events += events;
            if done {
                break;
            }
        }
        shortened.grants = self
            .store
            .run(move |s| s.write(|tx| store::grants::shorten_sighting_ips_before(tx, cutoff)))
            .await?;
        Ok(shortened)
    }

    /// Removes download log entries whose last attempt is older than the log retention
    /// period, a batch per write transaction; returns how many. Does nothing when it is 0.
    pub async fn remove_expired_events(&self, now: Timestamp) -> Result<u64, ServiceError> {
        let days = self.current().event_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now.minus(Duration::from_secs(u64::from(days) * 86_400));
        let mut removed = 0;
        loop {
            let (batch, done) = self
                .store
                .run(move |s| {
                    s.write(|tx| store::events::remove_events_before(tx, cutoff, RETENTION_BATCH))
                })
                .await?;
            removed += batch;
            if done {
                return Ok(removed);
            }
        }
    }

    /// Runs the retention job now and then every `every`, until `stop` turns true or its
    /// sender is dropped. A run in progress finishes first, so when the task has ended no
    /// store work of it is left running (the store file can be reopened at once).
    pub fn spawn_retention_job(
        &self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                match service.shorten_expired_ips(crate::clock::now()).await {
                    Ok(r) if r.events + r.grants > 0 => tracing::info!(
                        events = r.events,
                        grants = r.grants,
                        "shortened buyers' IP addresses past the retention period"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "IP retention job failed; will retry"),
                }
                match service.remove_expired_events(crate::clock::now()).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(
                        removed,
                        "removed download log entries past the log retention period"
                    ),
                    Err(e) => tracing::warn!(error = %e, "log retention job failed; will retry"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::EventRecord;
    use crate::store::events::Outcome;
    use crate::store::grants::Grant;
    use crate::store::grants::Sighting;
    use domain::{CountryCode, GrantId, OrderId, ProductId};
    use std::net::IpAddr;

    const DAY: i64 = 86_400_000;

    fn day(n: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + n * DAY)
    }

    fn sighting(at: Timestamp, ip: &str, country: &str) -> Sighting {
        Sighting {
            at,
            ip: ip.parse().unwrap(),
            country: CountryCode::parse(country),
        }
    }

    fn event(at: Timestamp, ip: &str) -> EventRecord {
        EventRecord {
            at,
            grant: GrantId::new(1),
            file: None,
            ip: ip.parse().unwrap(),
            country: CountryCode::parse("US"),
            user_agent: "curl".into(),
            bytes: 0,
            outcome: Outcome::Allowed,
            count: 1,
            last_at: at,
        }
    }

    async fn service(store: &Store, retention_days: u32) -> SettingsService {
        let settings = SettingsService::load(store.clone(), StoreSettings::initial(31))
            .await
            .unwrap();
        let input = StoreSettings {
            ip_retention_days: retention_days,
            ..settings.current()
        };
        settings.update(input, Actor::System, day(0)).await.unwrap();
        settings
    }

    #[tokio::test]
    async fn saved_settings_survive_a_reload_and_bad_ones_change_nothing() {
        let store = Store::in_memory().unwrap();
        let settings = service(&store, 7).await;
        let bad = StoreSettings {
            store_name: String::new(),
            ..settings.current()
        };
        assert!(matches!(
            settings.update(bad, Actor::System, day(1)).await,
            Err(ServiceError::Invalid {
                field: "store_name",
                ..
            })
        ));
        let reloaded = SettingsService::load(store, StoreSettings::initial(99))
            .await
            .unwrap();
        assert_eq!(reloaded.current().ip_retention_days, 7);
        assert_eq!(
            reloaded.current().reset_days,
            31,
            "saved values beat the start-up default"
        );
    }

    #[tokio::test]
    async fn old_ips_are_shortened_and_countries_kept() {
        let store = Store::in_memory().unwrap();
        let grant = store
            .write(|tx| {
                store::grants::insert_grant(
                    tx,
                    &Grant {
                        order_id: OrderId::new(1_234_567).unwrap(),
                        product_id: ProductId::parse("ebook").unwrap(),
                        password_digest: [0; 32],
                        replaced_digests: vec![],
                        issued_at: day(0),
                        valid_until: None,
                        max_downloads: 0,
                        country_lock: true,
                        locked: Some(sighting(day(1), "8.8.8.8", "US")),
                        blocked_by: Some(sighting(day(50), "81.2.69.142", "GB")),
                        revoked_at: None,
                        ledger: vec![],
                    },
                )
            })
            .unwrap();
        // 5 000 old events (more than one batch) and 3 recent ones.
        store
            .write(|tx| {
                for i in 0..5_000 {
                    store::events::insert_event(
                        tx,
                        &event(day(1).plus(Duration::from_millis(i)), "8.8.8.8"),
                    )?;
                }
                for n in [40, 50, 55] {
                    store::events::insert_event(tx, &event(day(n), "81.2.69.142"))?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();

        let settings = service(&store, 30).await;
        let removed = settings.shorten_expired_ips(day(60)).await.unwrap();
        assert_eq!(
            removed,
            ShortenedIps {
                events: 5_000,
                grants: 1
            }
        );
        let (events, g) = store
            .read(|tx| {
                Ok((
                    store::events::grant_events(tx, GrantId::new(1))?,
                    store::grants::grant(tx, grant)?,
                ))
            })
            .unwrap();
        let ips: Vec<IpAddr> = events.iter().map(|e| e.ip).collect();
        assert!(ips[..5_000].iter().all(|ip| ip.to_string() == "8.8.8.0"));
        assert!(
            ips[5_000..]
                .iter()
                .all(|ip| ip.to_string() == "81.2.69.142"),
            "recent IPs stay"
        );
        assert!(events.iter().all(|e| e.country == CountryCode::parse("US")));
        let g = g.unwrap();
        assert_eq!(g.locked.as_ref().unwrap().ip.to_string(), "8.8.8.0");
        assert_eq!(
            g.locked.unwrap().country,
            CountryCode::parse("US"),
            "the lock keeps its country"
        );
        assert_eq!(
            g.blocked_by.unwrap().ip.to_string(),
            "81.2.69.142",
            "a 10-day-old block keeps its IP in full"
        );

        // A second run starts where the first stopped and finds nothing new.
        assert_eq!(
            settings.shorten_expired_ips(day(60)).await.unwrap(),
            ShortenedIps::default()
        );
        // Retention 0 keeps everything.
        let keep = service(&store, 0).await;
        assert_eq!(
            keep.shorten_expired_ips(day(400)).await.unwrap(),
            ShortenedIps::default()
        );
    }

    #[tokio::test]
    async fn log_entries_past_the_retention_are_removed_but_never_the_newest() {
        let store = Store::in_memory().unwrap();
        // 4 500 old entries (more than one batch) of two grants, then 2 recent ones.
        store
            .write(|tx| {
                for i in 0..4_500u64 {
                    let mut e = event(day(1).plus(Duration::from_millis(i)), "8.8.8.8");
                    e.grant = GrantId::new(1 + i % 2);
                    store::events::insert_event(tx, &e)?;
                }
                for n in [50, 55] {
                    store::events::insert_event(tx, &event(day(n), "81.2.69.142"))?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        let settings = SettingsService::load(store.clone(), StoreSettings::initial(31))
            .await
            .unwrap();
        let keep_30_days = StoreSettings {
            event_retention_days: 30,
            ..settings.current()
        };
        settings
            .update(keep_30_days, Actor::System, day(0))
            .await
            .unwrap();
        assert_eq!(
            settings.remove_expired_events(day(60)).await.unwrap(),
            4_500
        );
        let (one, two) = store
            .read(|tx| {
                Ok((
                    store::events::grant_events(tx, GrantId::new(1))?,
                    store::events::grant_events(tx, GrantId::new(2))?,
                ))
            })
            .unwrap();
        assert_eq!(one.len(), 2, "the recent entries stay");
        assert!(two.is_empty(), "the index goes with the entries");

        // Years later everything is old: the newest entry stays, so numbering goes on.
        assert_eq!(settings.remove_expired_events(day(900)).await.unwrap(), 1);
        let next = store
            .write(|tx| store::events::insert_event(tx, &event(day(901), "8.8.8.8")))
            .unwrap();
        assert_eq!(next, 4_503, "sequence numbers are never reused");

        // 0 keeps the log.
        let keep_all = StoreSettings {
            event_retention_days: 0,
            ..settings.current()
        };
        settings
            .update(keep_all, Actor::System, day(0))
            .await
            .unwrap();
        assert_eq!(settings.remove_expired_events(day(5_000)).await.unwrap(), 0);
    }
}
