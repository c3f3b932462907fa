//! Benchmark: how the admin's order list and searches behave with 100 000 orders in a real
//! redb file. Run with `cargo run --release -p backend --example order_list [orders]`.
//!
//! Orders are written straight through the store (10 000 per transaction) so that filling
//! takes seconds; the timed part goes through `OrderService`, the code the admin calls.

use backend::Store;
use backend::services::{OrderQuery, OrderService};
use backend::store;
use backend::store::orders::OrderRecord;
use backend::store::orders::OrderSource;
use domain::{Email, OrderId, OrderStatus, Timestamp};
use std::time::{Duration, Instant};

const BATCH: u32 = 10_000;

fn order_id(i: u32) -> OrderId {
    // Spread over the 7-digit space like random ids would be.
    OrderId::new(1_000_000 + (i.wrapping_mul(7_919) % 9_000_000)).expect("7 digits")
}

fn order_number(i: u32) -> String {
    format!("2026{:010}", u64::from(i) * 37)
}

fn fill(store: &Store, orders: u32) -> Result<(), backend::StoreError> {
    let start = Timestamp::from_unix_millis(1_790_000_000_000);
    for first in (0..orders).step_by(BATCH as usize) {
        store.write(|tx| {
            for i in first..(first + BATCH).min(orders) {
                let at = start.plus(Duration::from_secs(u64::from(i) * 60));
                let record = OrderRecord {
                    order_number: order_number(i),
                    transaction_id: Some(format!("ch_{i:012}")),
                    email: Email::parse(&format!("buyer{}@example.com", i % 20_000))
                        .expect("email"),
                    name: format!("Buyer {i}"),
                    status: OrderStatus::Confirmed,
                    source: OrderSource::Import,
                    grants: Vec::new(),
                    created_at: at,
                    updated_at: at,
                    language: None,
                    amount: None,
                    refunded: None,
                    confirmed_at: Some(at),
                    provider: None,
                };
                store::orders::put_order(tx, order_id(i), &record, None)?;
            }
            Ok::<_, backend::StoreError>(())
        })?;
    }
    Ok(())
}

/// The `run`-th order looked up: spread over the whole store.
fn sample(run: usize) -> u32 {
    u32::try_from(run * 1_001).expect("a few hundred runs")
}

/// Median and worst of `runs` timings of `f`, in milliseconds.
async fn time<F, Fut, T>(runs: usize, mut f: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples: Vec<f64> = Vec::with_capacity(runs);
    for run in 0..runs {
        let began = Instant::now();
        std::hint::black_box(f(run).await);
        samples.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    (samples[runs / 2], samples[runs - 1])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders: u32 = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.redb"))?;
    let began = Instant::now();
    fill(&store, orders)?;
    println!(
        "filled {orders} orders in {:.1} s; file {:.1} MiB",
        began.elapsed().as_secs_f64(),
        store.file_size() as f64 / 1_048_576.0
    );
    let service = OrderService::new(
        store.clone(),
        store.download_key()?,
        backend::mail::Mailer::for_tests(store.clone(), "http://x").await,
    );

    let first = service.page(None, 50).await?;
    assert_eq!(first.total, u64::from(orders));
    // The cursor 1 000 pages deep (50 000 orders back).
    let mut cursor = first.next_before.clone();
    for _ in 0..1_000.min(orders / 50 - 1) {
        cursor = service.page(cursor, 50).await?.next_before;
    }
    let deep = cursor;

    let report = |what: &str, (median, worst): (f64, f64)| {
        println!("{what:<44} median {median:>7.2} ms   worst {worst:>7.2} ms");
    };
    report(
        "first page of 50 (newest)",
        time(50, |_| service.page(None, 50)).await,
    );
    report(
        "page of 50, 50 000 orders back",
        time(50, |_| service.page(deep.clone(), 50)).await,
    );
    let by = |query: OrderQuery| {
        let service = service.clone();
        async move { service.search(query).await.expect("search") }
    };
    report(
        "search by email (5 orders each)",
        time(50, |run| {
            by(OrderQuery {
                email: Some(format!("buyer{}@example.com", run * 97 % 20_000)),
                ..OrderQuery::default()
            })
        })
        .await,
    );
    report(
        "search by order ID",
        time(50, |run| {
            by(OrderQuery {
                order_id: Some(order_id(sample(run)).to_string()),
                ..OrderQuery::default()
            })
        })
        .await,
    );
    report(
        "search by order number",
        time(50, |run| {
            by(OrderQuery {
                order_number: Some(order_number(sample(run))),
                ..OrderQuery::default()
            })
        })
        .await,
    );
    report(
        "search by transaction ID",
        time(50, |run| {
            by(OrderQuery {
                transaction_id: Some(format!("ch_{:012}", run * 1_001)),
                ..OrderQuery::default()
            })
        })
        .await,
    );
    Ok(())
}
