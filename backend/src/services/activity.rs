//! The download manager's view: recent attempts (allowed and refused) with filters, the
//! grants blocked by a second country that wait for the seller, and downloads per day.
//! Read-only; every walk over the event log is bounded so a busy store stays responsive.

use super::ServiceError;
use super::desk::sighting;
use crate::store;
use crate::store::Store;
use crate::store::events::EventRecord;
use crate::store::events::Outcome;
use domain::wire::{ActivityFilter, ActivityPage, ActivityRow, BlockedGrant, DailyDownloads};
use domain::{AttemptOutcome, CountryCode, GrantId, OrderId, ProductId, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Rows on one page of the activity list.
const PAGE: usize = 100;
/// Most events read for one page: a filter that matches rarely stops here and offers "older".
const SCAN: usize = 20_000;
/// Recent refusals searched for grants still blocked.
const BLOCKED_SCAN: usize = 5_000;
/// Most events read for the chart.
const CHART_SCAN: usize = 2_000_000;

/// Activity and the downloads chart.
#[derive(Clone, Debug)]
pub struct ActivityService {
    store: Store,
}

impl ActivityService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A page of recent attempts matching `filter`, and the grants needing attention.
    pub async fn recent(&self, filter: ActivityFilter) -> Result<ActivityPage, ServiceError> {
        let product = blank_to_none(filter.product_id.as_deref())
            .map(ProductId::parse)
            .transpose()
            .map_err(|m| ServiceError::invalid("product_id", m))?;
        let country = blank_to_none(filter.country.as_deref())
            .map(|c| {
                CountryCode::parse(c).ok_or_else(|| {
                    ServiceError::invalid("country", "a country is a two-letter code, like DE")
                })
            })
            .transpose()?;
        let outcome = blank_to_none(filter.outcome.as_deref()).map(str::to_owned);
        let before = filter.before;
        self.store
            .run(move |s| {
                s.read(|tx| {
                    // Product of each grant, looked up once per grant seen.
                    let mut grants: HashMap<GrantId, Option<(OrderId, ProductId)>> = HashMap::new();
                    let mut grant_of = |g: GrantId| -> Option<(OrderId, ProductId)> {
                        grants
                            .entry(g)
                            .or_insert_with(|| {
                                store::grants::grant(tx, g)
                                    .ok()
                                    .flatten()
                                    .map(|r| (r.order_id, r.product_id))
                            })
                            .clone()
                    };
                    let (events, resume) = store::events::walk_events(
                        tx,
                        before,
                        SCAN,
                        |e| {
                            outcome_matches(e, outcome.as_deref())
                                && country.is_none_or(|c| e.country == Some(c))
                                && product.as_ref().is_none_or(|p| {
                                    grant_of(e.grant).is_some_and(|(_, gp)| &gp == p)
                                })
                        },
                        |_, kept| kept >= PAGE,
                    )?;
                    let mut files: HashMap<domain::FileId, Option<String>> = HashMap::new();
                    let rows_out = events
                        .into_iter()
                        .map(|(seq, e)| {
                            let file = e.file.and_then(|f| {
                                files
                                    .entry(f)
                                    .or_insert_with(|| {
                                        store::catalog::file(tx, f).ok().flatten().map(|r| r.name)
                                    })
                                    .clone()
                            });
                            let owner = grant_of(e.grant);
                            row(seq, e, owner, file)
                        })
                        .collect();
                    let blocked = blocked_grants(tx)?;
                    Ok(ActivityPage {
                        rows: rows_out,
                        next_before: resume,
                        blocked,
                    })
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// Allowed and refused attempts per UTC day for the `days` days up to `now`, oldest
    /// first, every day present (zero when quiet).
    pub async fn daily(
        &self,
        now: Timestamp,
        days: u32,
    ) -> Result<Vec<DailyDownloads>, ServiceError> {
        let first_day = day_start(now).minus(Duration::from_secs(
            u64::from(days.saturating_sub(1)) * 86_400,
        ));
        let events = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    Ok(store::events::walk_events(
                        tx,
                        None,
                        CHART_SCAN,
                        |_| true,
                        |e, _| e.at < first_day,
                    )?
                    .0)
                })
            })
            .await?;
        let mut per_day: BTreeMap<String, (u64, u64)> = (0..days)
            .map(|d| {
                (
                    day_label(first_day.plus(Duration::from_secs(u64::from(d) * 86_400))),
                    (0, 0),
                )
            })
            .collect();
        for (_, e) in events {
            if let Some(counts) = per_day.get_mut(&day_label(e.at)) {
                match e.outcome {
                    Outcome::Allowed => counts.0 += 1,
                    Outcome::Refused(_) => counts.1 += u64::from(e.count),
                }
            }
        }
        Ok(per_day
            .into_iter()
            .map(|(day, (allowed, refused))| DailyDownloads {
                day,
                allowed,
                refused,
            })
            .collect())
    }
}

fn blank_to_none(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

fn outcome_matches(e: &EventRecord, wanted: Option<&str>) -> bool {
    match (wanted, &e.outcome) {
        (None, _)
        | (Some("allowed"), Outcome::Allowed)
        | (Some("refused"), Outcome::Refused(_)) => true,
        (Some(code), Outcome::Refused(reason)) => code == reason,
        (Some(_), Outcome::Allowed) => false,
    }
}

fn row(
    seq: u64,
    e: EventRecord,
    owner: Option<(OrderId, ProductId)>,
    file: Option<String>,
) -> ActivityRow {
    let (order_id, product_id) = owner.map_or((None, None), |(o, p)| (Some(o), Some(p)));
    ActivityRow {
        event: seq,
        at: e.at,
        grant_id: e.grant,
        order_id,
        product_id,
        file,
        ip: e.ip.to_string(),
        country: e.country.map(|c| c.to_string()),
        bytes: e.bytes,
        outcome: e.outcome.attempt(),
        count: e.count,
        last_at: e.last_at,
    }
}

/// Grants refused recently for a second country that are still blocked, newest first.
fn blocked_grants(tx: &redb::ReadTransaction) -> Result<Vec<BlockedGrant>, crate::StoreError> {
    let (refusals, _) = store::events::walk_events(
        tx,
        None,
        BLOCKED_SCAN,
        |e| e.outcome.attempt() == AttemptOutcome::SecondCountry,
        |_, _| false,
    )?;
    let mut seen = HashSet::new();
    let candidates: Vec<GrantId> = refusals
        .into_iter()
        .map(|(_, e)| e.grant)
        .filter(|g| seen.insert(*g))
        .collect();
    let mut out = Vec::new();
    for (id, g) in store::grants::still_blocked(tx, candidates)? {
        let Some(blocked_by) = g.blocked_by.as_ref().map(sighting) else {
            continue;
        };
        let email = store::orders::order(tx, g.order_id)?.map(|o| o.email);
        if let Some(email) = email {
            out.push(BlockedGrant {
                grant_id: id,
                order_id: g.order_id,
                product_id: g.product_id.clone(),
                email,
                first: g.locked.as_ref().map(sighting),
                blocked_by,
            });
        }
    }
    Ok(out)
}

fn day_start(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(t.unix_millis().div_euclid(86_400_000) * 86_400_000)
}

fn day_label(t: Timestamp) -> String {
    let c = t.civil();
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::downloads::tests::{SIZE, client, fixture, now};
    use crate::services::{RangeRequest, Refusal};

    #[tokio::test]
    async fn attempts_filter_blocked_links_wait_and_days_count() {
        let f = fixture(3, true).await;
        let activity = ActivityService::new(f.store.clone());
        let try_from = |country: &'static str, ip: &'static str| {
            f.downloads.begin(
                &f.password,
                f.file,
                RangeRequest::default(),
                client(Some(country), ip),
                now(),
            )
        };
        let ticket = try_from("US", "8.8.8.8").await.unwrap();
        f.downloads.finish(&ticket, SIZE).await.unwrap();
        assert!(matches!(
            try_from("GB", "81.2.69.142").await,
            Err(Refusal::Denied(_))
        ));
        assert!(matches!(
            try_from("US", "8.8.4.4").await,
            Err(Refusal::Denied(_))
        ));

        let all = activity.recent(ActivityFilter::default()).await.unwrap();
        let outcomes: Vec<_> = all.rows.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            ["blocked", "second_country", "allowed"],
            "newest first"
        );
        assert_eq!(all.rows[2].file.as_deref(), Some("book.pdf"));
        assert_eq!(all.rows[2].order_id, Some(f.order));
        assert_eq!(all.next_before, None);
        assert_eq!(all.blocked.len(), 1);
        assert_eq!(
            all.blocked[0].first.as_ref().unwrap().country.as_deref(),
            Some("US")
        );
        assert_eq!(all.blocked[0].blocked_by.ip, "81.2.69.142");

        let filter = |outcome: &str, country: &str, product: &str| ActivityFilter {
            outcome: Some(outcome.into()),
            country: Some(country.into()),
            product_id: Some(product.into()),
            before: None,
        };
        let refused = activity.recent(filter("refused", "", "")).await.unwrap();
        assert_eq!(refused.rows.len(), 2);
        let gb = activity.recent(filter("", "gb", "")).await.unwrap();
        assert_eq!(gb.rows.len(), 1);
        assert_eq!(gb.rows[0].country.as_deref(), Some("GB"));
        let other = activity.recent(filter("", "", "course")).await.unwrap();
        assert!(other.rows.is_empty());
        let ebook = activity
            .recent(filter("allowed", "", "ebook"))
            .await
            .unwrap();
        assert_eq!(ebook.rows.len(), 1);
        assert!(matches!(
            activity.recent(filter("", "Germany", "")).await,
            Err(ServiceError::Invalid {
                field: "country",
                ..
            })
        ));

        // Older pages continue below the last row shown.
        let older = activity
            .recent(ActivityFilter {
                before: Some(all.rows[1].event),
                ..ActivityFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(older.rows.len(), 1);
        assert_eq!(older.rows[0].outcome, AttemptOutcome::Allowed);

        let days = activity.daily(now(), 30).await.unwrap();
        assert_eq!(days.len(), 30);
        let today = days.last().unwrap();
        assert_eq!((today.allowed, today.refused), (1, 2));
        assert_eq!(today.day, day_label(now()));
        assert!(days[..29].iter().all(|d| d.allowed == 0 && d.refused == 0));
        let later = activity
            .daily(now().plus(Duration::from_secs(40 * 86_400)), 30)
            .await
            .unwrap();
        assert!(
            later.iter().all(|d| d.allowed == 0 && d.refused == 0),
            "old days drop out"
        );
    }
}
