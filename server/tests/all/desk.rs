//! The seed story over HTTP, with a real GeoIP database and a trusted proxy: a password used
//! from one country and tried from a second is blocked; the vendor sees both IPs and
//! countries in the desk, unblocks, resets, expires, resends, and sends a new password.

use crate::common;

use common::Shop;
use domain::net::IpNet;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const US: &str = "8.8.8.8";
const GB: &str = "81.2.69.142";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn shop(trusted_proxy: bool) -> Shop {
    Shop::open_with(|c| {
        c.geoip_db = Some(fixture("countries-iplocation.mmdb"));
        if trusted_proxy {
            c.trusted_proxies = vec![IpNet::parse("127.0.0.1").unwrap()];
        }
    })
    .await
}

/// Creates a product (3 downloads, 31 days, country lock) with one file and an order.
async fn order(shop: &Shop) -> (String, u64, Value) {
    let file = shop
        .product_with_file(
            json!({"product_id": "ebook", "name": "The Book", "max_downloads": 3, "download_days": 31}),
            "book.pdf",
            &[1u8; 1000],
        )
        .await;
    let (status, created) = shop.call(Method::POST, "/api/v1/orders", Some(json!({"email": "bea@example.com", "name": "Bea", "product_ids": ["ebook"], "transaction_id": "PAY-1"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    (
        created["issued"][0]["url"].as_str().unwrap().to_owned(),
        file["file_id"].as_u64().unwrap(),
        created,
    )
}

/// The audit log's actions on a grant, newest first.
async fn audited(shop: &Shop, grant: u64) -> Vec<String> {
    let (_, audit) = shop
        .call(
            Method::GET,
            &format!("/api/v1/audit?target=grant:{grant}"),
            None,
        )
        .await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn download_from(url: &str, file: u64, ip: &str) -> (StatusCode, String) {
    let r = reqwest::Client::new()
        .get(format!("{url}/{file}"))
        .header("x-forwarded-for", ip)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.bytes().await.unwrap();
    // Let the server settle the body's bytes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in the order a vendor lives it
async fn second_country_blocks_and_the_desk_shows_both_then_unblocks_resets_and_expires() {
    let shop = shop(true).await;
    let (url, file, created) = order(&shop).await;
    let password = created["issued"][0]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = created["issued"][0]["grant_id"].as_u64().unwrap();

    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    let (status, text) = download_from(&url, file, GB).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("second country"), "{text}");
    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::FORBIDDEN,
        "blocked for everyone now"
    );

    // The desk finds it by password, order ID and order number, and shows both countries.
    let order_id = created["order_id"].as_u64().unwrap().to_string();
    let order_number = created["order_number"].as_str().unwrap().to_owned();
    for query in [
        json!({"password": password.to_lowercase()}),
        json!({"order_id": order_id}),
        // The order ID as orders return it, a number.
        json!({"order_id": created["order_id"]}),
        json!({"order_number": order_number}),
        json!({"transaction_id": "PAY-1"}),
        json!({"email": "BEA@example.com"}),
    ] {
        let (status, found) = shop
            .call(Method::POST, "/api/v1/grants/lookup", Some(query.clone()))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let g = &found[0];
        assert_eq!(g["status"], "blocked", "{query}");
        assert_eq!(
            (g["locked"]["country"].as_str(), g["locked"]["ip"].as_str()),
            (Some("US"), Some(US))
        );
        assert_eq!(
            (
                g["blocked_by"]["country"].as_str(),
                g["blocked_by"]["ip"].as_str()
            ),
            (Some("GB"), Some(GB))
        );
        let outcomes: Vec<&str> = g["uses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, vec!["allowed", "second_country", "blocked"]);
        assert_eq!(g["uses"][0]["bytes"], 100);
        assert_eq!(g["uses"][0]["file"], "book.pdf");
    }
    let (status, _) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"order_id": "123", "email": "x@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Unblock: the lock is cleared, so the next country becomes the lock.
    let (status, g) = shop
        .call(
            Method::POST,
            &format!("/api/v1/grants/{grant}/unblock"),
            None,
        )
        .await;
    assert_eq!(
        (status, g["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    assert_eq!(
        download_from(&url, file, GB).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    assert_eq!(download_from(&url, file, US).await.0, StatusCode::FORBIDDEN);

    // Reset: a new 31-day window, counts, lock and block cleared.
    let (_, g) = shop
        .call(Method::POST, &format!("/api/v1/grants/{grant}/reset"), None)
        .await;
    assert_eq!(g["status"], "active");
    assert!(g["locked"].is_null() && g["blocked_by"].is_null());
    let until = g["valid_until"].as_i64().unwrap();
    let now = backend::clock::now().unix_millis();
    assert!(
        (until - now - 31 * 86_400_000).abs() < 60_000,
        "{until} vs {now}"
    );
    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );

    // Expire: ends now.
    let (_, g) = shop
        .call(
            Method::POST,
            &format!("/api/v1/grants/{grant}/expire"),
            None,
        )
        .await;
    assert_eq!(g["status"], "expired");
    let (status, text) = download_from(&url, file, US).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("ended"), "{text}");

    // The audit log has every action.
    assert_eq!(
        audited(&shop, grant).await,
        vec!["grant.expire", "grant.reset", "grant.unblock"]
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn resend_rotates_the_password_and_send_password_reaches_any_address() {
    let shop = shop(true).await;
    let (old_url, file, created) = order(&shop).await;
    let old_password = created["issued"][0]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = created["issued"][0]["grant_id"].as_u64().unwrap();
    assert_eq!(
        download_from(&old_url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );

    let (status, issued) = shop
        .call(
            Method::POST,
            &format!("/api/v1/grants/{grant}/resend"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_url = issued["url"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert_eq!(
        download_from(&old_url, file, US).await.0,
        StatusCode::NOT_FOUND,
        "the old link stops working"
    );
    assert_eq!(
        download_from(new_url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT,
        "the lock and counts carry over"
    );
    let (_, found) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"password": old_password})),
        )
        .await;
    assert_eq!(found[0]["replaced"], true);
    assert_eq!(found[0]["uses"].as_array().unwrap().len(), 2);

    let (status, gift) = shop
        .call(
            Method::POST,
            "/api/v1/products/ebook/send-password",
            Some(json!({"email": "friend@example.com", "name": "Fred"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(gift["source"], "complimentary");
    assert_eq!(gift["status"], "confirmed");
    assert_eq!(
        download_from(gift["issued"][0]["url"].as_str().unwrap(), file, GB)
            .await
            .0,
        StatusCode::PARTIAL_CONTENT
    );
    let (status, _) = shop
        .call(
            Method::POST,
            "/api/v1/products/nope/send-password",
            Some(json!({"email": "friend@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = shop
        .call(
            Method::POST,
            "/api/v1/products/ebook/send-password",
            Some(json!({"email": "not-an-address"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    shop.app.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_cannot_fake_a_country() {
    let shop = shop(false).await;
    let (url, file, _) = order(&shop).await;
    // Without a trusted proxy the header is ignored: the peer (loopback) has no country,
    // so no country is locked and nothing can be blocked.
    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    assert_eq!(
        download_from(&url, file, GB).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    let (_, found) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"email": "bea@example.com"})),
        )
        .await;
    assert!(found[0]["locked"].is_null());
    assert!(
        found[0]["uses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["ip"] == "127.0.0.1")
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn the_embedded_database_locks_countries_with_no_setup() {
    assert!(
        server::geoip::has_embedded_database(),
        "this build has no embedded DB-IP database: run the tests with `cargo xtask test`, which fetches it"
    );
    let shop = Shop::open_with(|c| {
        c.trusted_proxies = vec![IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    let (url, file, _) = order(&shop).await;
    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    let (status, body) = download_from(&url, file, GB).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, found) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"email": "bea@example.com"})),
        )
        .await;
    assert_eq!(found[0]["locked"]["country"], "US", "{found}");
    assert_eq!(found[0]["status"], "blocked", "{found}");
    shop.app.stop().await;
}

#[tokio::test]
async fn a_replaced_geoip_file_is_used_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("countries.mmdb");
    std::fs::copy(fixture("countries-iplocation.mmdb"), &db).unwrap();
    let shop = Shop::open_with(|c| {
        c.geoip_db = Some(db.clone());
        c.geoip_reload_interval = std::time::Duration::from_millis(100);
        c.trusted_proxies = vec![IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    let (url, file, _) = order(&shop).await;
    // 8.8.8.8 is in the US: the grant locks to the US.
    assert_eq!(
        download_from(&url, file, US).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    // The seller drops in a newer database where 8.8.8.8 is in Canada (copy, then rename).
    let staged = dir.path().join("countries.mmdb.new");
    std::fs::copy(fixture("countries-updated.mmdb"), &staged).unwrap();
    std::fs::rename(&staged, &db).unwrap();
    // Within a few checks the same address counts as Canada, a second country: blocked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = download_from(&url, file, US).await;
        if status == StatusCode::FORBIDDEN {
            break;
        }
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert!(
            std::time::Instant::now() < deadline,
            "the new database was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, found) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"email": "bea@example.com"})),
        )
        .await;
    assert_eq!(found[0]["locked"]["country"], "US", "{found}");
    assert_eq!(found[0]["blocked_by"]["country"], "CA", "{found}");
    shop.app.stop().await;
}

/// Downloads a whole file from `ip`, letting the server settle the bytes.
async fn download_whole(url: &str, file: u64) -> StatusCode {
    let r = reqwest::Client::new()
        .get(format!("{url}/{file}"))
        .header("x-forwarded-for", US)
        .send()
        .await
        .unwrap();
    let status = r.status();
    r.bytes().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    status
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: a link used up, given more, reset, edited
async fn finer_resets_bring_a_used_up_link_back_and_unlimited_stays_unlimited() {
    let shop = shop(true).await;
    // A product without a time limit, two downloads per file.
    let file = shop
        .product_with_file(
            json!({"product_id": "course", "name": "Course", "max_downloads": 2, "download_days": 0}),
            "course.zip",
            &[7u8; 500],
        )
        .await["file_id"]
        .as_u64()
        .unwrap();
    let (_, created) = shop.call(Method::POST, "/api/v1/orders", Some(json!({"email": "cy@example.com", "name": "Cy", "product_ids": ["course"], "transaction_id": "PAY-7"}))).await;
    let url = created["issued"][0]["url"].as_str().unwrap().to_owned();
    let grant = created["issued"][0]["grant_id"].as_u64().unwrap();
    let order_id = created["order_id"].as_u64().unwrap();
    let path = |action: &str| format!("/api/v1/grants/{grant}/{action}");

    // Used up: two whole downloads, the third refused.
    assert_eq!(download_whole(&url, file).await, StatusCode::OK);
    assert_eq!(download_whole(&url, file).await, StatusCode::OK);
    assert_eq!(download_whole(&url, file).await, StatusCode::FORBIDDEN);
    let (_, g) = shop
        .call(Method::GET, &format!("/api/v1/grants/{grant}"), None)
        .await;
    assert_eq!(
        (g["status"].as_str(), g["valid_until"].as_i64()),
        (Some("exhausted"), None)
    );

    // +1 download: one more, then used up again; the window (none) stays.
    for bad in [
        json!({"downloads": 0}),
        json!({"downloads": 1001}),
        json!({}),
        json!({"downloads": "two"}),
    ] {
        let (status, body) = shop
            .call(Method::POST, &path("add-downloads"), Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, g) = shop
        .call(
            Method::POST,
            &path("add-downloads"),
            Some(json!({"downloads": 1})),
        )
        .await;
    assert_eq!(
        (status, g["status"].as_str(), g["max_downloads"].as_u64()),
        (StatusCode::OK, Some("active"), Some(3))
    );
    assert!(g["valid_until"].is_null());
    assert_eq!(download_whole(&url, file).await, StatusCode::OK);
    assert_eq!(download_whole(&url, file).await, StatusCode::FORBIDDEN);

    // A count-only reset: counts from zero, still no end, the country lock kept.
    let (_, g) = shop.call(Method::POST, &path("reset-counts"), None).await;
    assert_eq!(g["status"], "active");
    assert!(g["valid_until"].is_null(), "{g}");
    assert_eq!(g["locked"]["country"], "US", "a count reset keeps the lock");
    assert_eq!(download_whole(&url, file).await, StatusCode::OK);

    // Expired, then a full reset: a product without a time limit gives no end date.
    shop.call(Method::POST, &path("expire"), None).await;
    assert_eq!(download_whole(&url, file).await, StatusCode::FORBIDDEN);
    let (_, g) = shop.call(Method::POST, &path("reset"), None).await;
    assert_eq!(g["status"], "active");
    assert!(g["valid_until"].is_null(), "unlimited stays unlimited: {g}");
    assert_eq!(download_whole(&url, file).await, StatusCode::OK);

    // On a limited product a count reset keeps the end date to the millisecond.
    let limited = order(&shop).await.2;
    let limited_grant = limited["issued"][0]["grant_id"].as_u64().unwrap();
    let (_, before) = shop
        .call(
            Method::GET,
            &format!("/api/v1/grants/{limited_grant}"),
            None,
        )
        .await;
    let (_, after) = shop
        .call(
            Method::POST,
            &format!("/api/v1/grants/{limited_grant}/reset-counts"),
            None,
        )
        .await;
    assert!(before["valid_until"].as_i64().is_some());
    assert_eq!(before["valid_until"], after["valid_until"]);

    // +N on a link with unlimited downloads is refused and changes nothing.
    shop.call(
        Method::POST,
        "/api/v1/products",
        Some(json!({"product_id": "free", "name": "Free", "max_downloads": 0, "download_days": 0})),
    )
    .await;
    let (_, free) = shop
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "cy@example.com", "name": "Cy", "product_ids": ["free"]})),
        )
        .await;
    let free_grant = free["issued"][0]["grant_id"].as_u64().unwrap();
    let (status, body) = shop
        .call(
            Method::POST,
            &format!("/api/v1/grants/{free_grant}/add-downloads"),
            Some(json!({"downloads": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unlimited"),
        "{body}"
    );

    // The transaction ID is editable: the desk finds the order by the new one only.
    let order_path = format!("/api/v1/orders/{order_id}");
    let (status, o) = shop
        .call(
            Method::PATCH,
            &order_path,
            Some(json!({"transaction_id": " PAY-8 "})),
        )
        .await;
    assert_eq!(
        (status, o["transaction_id"].as_str()),
        (StatusCode::OK, Some("PAY-8"))
    );
    let found = |t: &'static str| {
        let shop = &shop;
        async move {
            let (_, found) = shop
                .call(
                    Method::POST,
                    "/api/v1/grants/lookup",
                    Some(json!({"transaction_id": t})),
                )
                .await;
            found.as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!((found("PAY-8").await, found("PAY-7").await), (1, 0));
    // Taken by another order (PAY-1, the ebook's), too long, or a control character: refused, nothing changes.
    for (bad, status) in [
        (json!("PAY-1"), StatusCode::CONFLICT),
        (json!("x".repeat(129)), StatusCode::UNPROCESSABLE_ENTITY),
        (json!("PAY\n9"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (got, body) = shop
            .call(
                Method::PATCH,
                &order_path,
                Some(json!({"transaction_id": bad, "name": "Changed"})),
            )
            .await;
        assert_eq!(got, status, "{bad}: {body}");
    }
    let (_, o) = shop.call(Method::GET, &order_path, None).await;
    assert_eq!(
        (o["transaction_id"].as_str(), o["name"].as_str()),
        (Some("PAY-8"), Some("Cy"))
    );
    assert_eq!(found("PAY-1").await, 1, "the other order keeps its ID");
    // Empty removes it.
    let (_, o) = shop
        .call(
            Method::PATCH,
            &order_path,
            Some(json!({"transaction_id": ""})),
        )
        .await;
    assert!(o["transaction_id"].is_null(), "{o}");
    assert_eq!(found("PAY-8").await, 0);

    assert_eq!(
        audited(&shop, grant).await,
        vec![
            "grant.reset",
            "grant.expire",
            "grant.reset_counts",
            "grant.add_downloads"
        ]
    );
    shop.app.stop().await;
}
