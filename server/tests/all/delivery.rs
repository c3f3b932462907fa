//! Black-box tests of the delivery core over HTTP: the REST API with a Bearer token, a
//! streamed upload, orders with passwords, and downloads under the rules.

use crate::common;

use common::{Shop, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

const FILE: &[u8] = &[42u8; 10_000];

fn no_rate_limits() -> server::config::DownloadRates {
    server::config::DownloadRates {
        per_link: None,
        per_client: None,
    }
}

/// A product with one 10 000-byte file; returns its file id.
async fn product(shop: &Shop, id: &str, max_downloads: u32) -> u64 {
    product_with(shop, id, max_downloads, FILE).await
}

/// A product (31 days) with one file of `content` under a non-ASCII name; returns its id.
async fn product_with(shop: &Shop, id: &str, max_downloads: u32, content: &[u8]) -> u64 {
    let file = shop
        .product_with_file(
            json!({"product_id": id, "name": "The Book", "max_downloads": max_downloads, "download_days": 31}),
            "Das%20Buch%20%C3%BC.pdf",
            content,
        )
        .await;
    assert_eq!(file["size"], content.len());
    assert_eq!(file["name"], "Das Buch ü.pdf");
    file["file_id"].as_u64().unwrap()
}

/// An order by Bea with a fresh transaction ID.
async fn order_of(shop: &Shop, products: &[&str]) -> Value {
    let (status, created) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "buyer@example.com", "name": "Bea", "product_ids": products, "transaction_id": format!("tx-{}", rand_suffix())})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// A grant as the password desk shows it (files with their counts, every use).
async fn grant_detail(shop: &Shop, grant: u64) -> (StatusCode, Value) {
    shop.call(
        reqwest::Method::GET,
        &format!("/api/v1/grants/{grant}"),
        None,
    )
    .await
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn the_api_needs_a_valid_token_and_answers_errors_in_json() {
    let shop = Shop::open().await;
    let anonymous = reqwest::Client::new()
        .get(shop.app.url("/api/v1/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let forged = reqwest::Client::new()
        .get(shop.app.url("/api/v1/products"))
        .bearer_auth("dg_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let cases: Vec<(&str, StatusCode)> = vec![
        ("{not json", StatusCode::BAD_REQUEST),
        (
            r#"{"product_id":"x1","name":"X","surprise":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"product_id":"x1","name":"X","max_downloads":"three"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"product_id":"Not A Slug","name":"X"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"product_id":"x1","name":""}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let r = shop
            .api(reqwest::Method::POST, "/api/v1/products")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    // Nothing was created by the bad requests.
    let list: Value = shop
        .api(reqwest::Method::GET, "/api/v1/products")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let missing = shop
        .api(reqwest::Method::GET, "/api/v1/orders/1234567")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let nowhere = shop
        .api(reqwest::Method::GET, "/api/v1/nowhere")
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        nowhere.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn order_then_download_with_ranges_and_the_limit() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 1).await;
    let order = order_of(&shop, &["ebook"]).await;
    let url = order["issued"][0]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&shop.app.base), "{url}");
    assert_eq!(order["order_number"].as_str().unwrap().len(), 17);
    let file_url = format!("{url}/{file}");
    let client = reqwest::Client::new();

    // HEAD costs nothing and shows the headers.
    let head = client.head(&file_url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    assert_eq!(head.headers()["cache-control"], "private, no-store");
    assert_eq!(
        head.headers()["content-disposition"],
        "attachment; filename=\"Das Buch _.pdf\"; filename*=UTF-8''Das%20Buch%20%C3%BC.pdf"
    );
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();

    // 40 % then the rest: one download in all.
    let first = client
        .get(&file_url)
        .header("range", "bytes=0-3999")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(first.headers()["content-range"], "bytes 0-3999/10000");
    assert_eq!(first.bytes().await.unwrap().len(), 4000);
    let rest = client
        .get(&file_url)
        .header("range", "bytes=4000-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.bytes().await.unwrap().len(), 6000);
    // Settling happens as the body ends; give the server a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let refused = client.get(&file_url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("all of its 1 download")
    );

    // Unsatisfiable ranges say the length.
    let shop2 = order_of(&shop, &["ebook"]).await;
    let url2 = format!("{}/{file}", shop2["issued"][0]["url"].as_str().unwrap());
    let r = client
        .get(&url2)
        .header("range", "bytes=20000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */10000");
    // A mismatched If-Range means the whole file.
    let r = client
        .get(&url2)
        .header("range", "bytes=0-9")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), FILE);
    shop.app.stop().await;
}

/// Files above the 64 KiB memory cache go out from disk by `sendfile`: whole, in ranges,
/// from the end, and resumed, every byte where it belongs.
#[tokio::test]
async fn a_large_file_goes_out_by_sendfile_whole_and_in_ranges() {
    let shop = Shop::open().await;
    // 1 MiB and a bit, each byte telling where it is, so a misplaced range shows.
    let content: Vec<u8> = (0..1_048_593u32)
        .map(|i| u8::try_from((i * 7 + i / 251) % 256).unwrap())
        .collect();
    let len = content.len();
    let file = product_with(&shop, "big", 3, &content).await;
    let url = |order: &Value| format!("{}/{file}", order["issued"][0]["url"].as_str().unwrap());
    let client = reqwest::Client::new();
    let file_url = url(&order_of(&shop, &["big"]).await);

    let head = client.head(&file_url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();

    let ranged = |range: String| {
        let request = client.get(&file_url).header("range", range);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
            let content_range = r.headers()["content-range"].to_str().unwrap().to_owned();
            (content_range, r.bytes().await.unwrap())
        }
    };
    // A range in the middle, crossing page and chunk boundaries.
    let (content_range, body) = ranged("bytes=100000-299999".into()).await;
    assert_eq!(content_range, format!("bytes 100000-299999/{len}"));
    assert!(body.as_ref() == &content[100_000..300_000], "middle range");
    // The last 1000 bytes.
    let (content_range, body) = ranged("bytes=-1000".into()).await;
    assert_eq!(
        content_range,
        format!("bytes {}-{}/{len}", len - 1000, len - 1)
    );
    assert!(body.as_ref() == &content[len - 1000..], "suffix range");
    // A resume from the middle, if the file is still the same.
    let resumed = client
        .get(&file_url)
        .header("range", "bytes=524288-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::PARTIAL_CONTENT);
    assert!(
        resumed.bytes().await.unwrap().as_ref() == &content[524_288..],
        "resume"
    );
    // The whole file.
    let whole = client.get(&file_url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert!(
        whole.bytes().await.unwrap().as_ref() == content.as_slice(),
        "whole file"
    );
    // A client that stops reading after the first part: the server goes on serving.
    let mut cut = client.get(&file_url).send().await.unwrap();
    assert!(cut.chunk().await.unwrap().is_some());
    drop(cut);
    let again = client
        .get(url(&order_of(&shop, &["big"]).await))
        .send()
        .await
        .unwrap();
    assert!(
        again.bytes().await.unwrap().as_ref() == content.as_slice(),
        "after a cut-off"
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn sixty_four_parallel_downloads_never_exceed_one_file() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 1).await;
    let order = order_of(&shop, &["ebook"]).await;
    let file_url = format!("{}/{file}", order["issued"][0]["url"].as_str().unwrap());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let url = file_url.clone();
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new().get(&url).send().await.unwrap();
            let status = r.status();
            let body = r.bytes().await.unwrap();
            (status, body)
        }));
    }
    let mut delivered = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            delivered += body.len();
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(
                String::from_utf8_lossy(&body).contains("download"),
                "refusals say why"
            );
        }
    }
    assert_eq!(
        delivered,
        FILE.len(),
        "exactly one file's worth of bytes left the server"
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn refunds_revoke_and_tricks_in_paths_find_nothing() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 3).await;
    let order = order_of(&shop, &["ebook"]).await;
    let url = order["issued"][0]["url"].as_str().unwrap().to_owned();
    let password = order["issued"][0]["password"].as_str().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        format!("/d/{password}/{}", file + 1),
        format!("/d/{password}/..%2F..%2Fdropgate.redb"),
        format!("/d/{password}/%2e%2e"),
        format!("/d/..%2F{password}/{file}"),
        format!("/d/{}/{file}", password.replace('-', "%2F")),
        "/d/AAAA-AAAA-AAAA-AAAA-AAAA/1".to_owned(),
        format!("/d/{password}/-1"),
    ] {
        let r = client.get(shop.app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The stored file is only reachable through a valid link, and its key never shows.
    let ok = client.get(format!("{url}/{file}")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let headers = format!("{:?}", ok.headers());
    let order_id = order["order_id"].as_u64().unwrap();
    let refund = shop
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{order_id}/refund"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), StatusCode::OK);
    let refused = client.get(format!("{url}/{file}")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("refunded"));
    let files_dir = shop.app.data_dir.path().join("files");
    for entry in std::fs::read_dir(files_dir).unwrap() {
        let key = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!headers.contains(&key), "storage key leaked in headers");
        assert_eq!(key.len(), 32);
    }
    // The audit log shows who did it.
    let audit: Value = shop
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/audit?target={order_id}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["order.update", "order.create"]);
    assert!(
        audit[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api-token:")
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_leave_nothing() {
    let shop = Shop::with(spawn_app_with(|c| c.upload_limit_bytes = 1000).await).await;
    shop.api(reqwest::Method::POST, "/api/v1/products")
        .json(&json!({"product_id": "big", "name": "Big"}))
        .send()
        .await
        .unwrap();
    let r = shop
        .api(reqwest::Method::PUT, "/api/v1/products/big/files/big.bin")
        .body(vec![0u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bad_name = shop
        .api(reqwest::Method::PUT, "/api/v1/products/big/files/..")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert!(bad_name.status().is_client_error());
    let product: Value = shop
        .api(reqwest::Method::GET, "/api/v1/products/big")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(product["files"], json!([]));
    let leftovers = std::fs::read_dir(shop.app.data_dir.path().join("files"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
    shop.app.stop().await;
}

#[tokio::test]
async fn the_buyer_page_shows_the_files_or_says_why_not_without_javascript() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 3).await;
    let order = order_of(&shop, &["ebook"]).await;
    let url = order["issued"][0]["url"].as_str().unwrap().to_owned();
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    for expected in [
        "The Book",
        "Download Das Buch ü.pdf",
        "3 of 3 downloads left",
        "You can download until",
        "9.8 KiB",
    ] {
        assert!(html.contains(expected), "missing {expected:?} in {html}");
    }
    assert!(
        html.contains(&format!(
            "href=\"{}/{file}\"",
            url.trim_start_matches(&shop.app.base)
        )),
        "{html}"
    );
    // The file's SHA-256 is shown in full (beside Leptos' empty `<!>` view markers).
    let digest = html
        .split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap()
        .replace("<!>", "");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{digest}");
    assert_eq!(digest.len(), 64);

    let order_id = order["order_id"].as_u64().unwrap();
    shop.api(
        reqwest::Method::PATCH,
        &format!("/api/v1/orders/{order_id}"),
    )
    .json(&json!({"status": "on_hold"}))
    .send()
    .await
    .unwrap();
    let held = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(held.contains("This order is on hold"), "{held}");
    shop.api(
        reqwest::Method::POST,
        &format!("/api/v1/orders/{order_id}/refund"),
    )
    .send()
    .await
    .unwrap();
    let refunded = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(refunded.contains("This order was refunded"), "{refunded}");

    let unknown = reqwest::get(shop.app.url("/d/AAAA-BBBB-CCCC-DDDD-EEEE"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("This download link is not valid")
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn deleting_what_buyers_still_need_asks_for_force_and_leaves_no_orphans() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 3).await;
    order_of(&shop, &["ebook"]).await;
    let refused = shop
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/products/ebook/files/{file}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(
        refused.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 buyer can still download")
    );
    let refused = shop
        .api(reqwest::Method::DELETE, "/api/v1/products/ebook")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let files_dir = shop.app.data_dir.path().join("files");
    assert_eq!(
        std::fs::read_dir(&files_dir).unwrap().count(),
        1,
        "nothing deleted"
    );
    let forced = shop
        .api(reqwest::Method::DELETE, "/api/v1/products/ebook?force=true")
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        std::fs::read_dir(&files_dir).unwrap().count(),
        0,
        "the object went with the product"
    );
    assert_eq!(
        shop.api(reqwest::Method::GET, "/api/v1/products/ebook")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    shop.app.stop().await;
}

/// A HEAD is answered by the same rules as a GET but writes nothing: 300 of them, allowed
/// or refused, leave the use log and the count as they were (each used to be a log entry
/// and a durable write).
#[tokio::test]
async fn head_requests_cost_nothing_and_log_nothing() {
    // More requests than a link may make a minute: the rates are not what this is about.
    let shop = Shop::open_with(|c| c.download_rates = no_rate_limits()).await;
    let file = product(&shop, "ebook", 1).await;
    let order = order_of(&shop, &["ebook"]).await;
    let file_url = format!("{}/{file}", order["issued"][0]["url"].as_str().unwrap());
    let grant = order["grants"][0]["grant_id"].as_u64().unwrap();
    let usage = || async {
        let (_, g) = grant_detail(&shop, grant).await;
        (
            g["files"][0]["downloads_used"].as_f64().unwrap(),
            g["uses"].as_array().unwrap().len(),
        )
    };
    for _ in 0..150 {
        let head = shop.http.head(&file_url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()["content-length"], "10000");
    }
    assert_eq!(usage().await, (0.0, 0));

    // The one download, then HEADs that a GET would be refused for.
    let got = shop.http.get(&file_url).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), FILE.len());
    for _ in 0..150 {
        let head = shop.http.head(&file_url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(usage().await, (1.0, 1));
    shop.app.stop().await;
}

/// A link past its rate gets 429 with `Retry-After`, before the store is asked (no log
/// entry, no charge); other links still work until the client's own rate is spent.
#[tokio::test]
async fn a_link_or_a_client_past_its_rate_waits() {
    let shop = Shop::open_with(|c| {
        c.download_rates = server::config::DownloadRates {
            per_link: Some(20),
            per_client: Some(50),
        };
    })
    .await;
    let file = product(&shop, "ebook", 1).await;
    let order = order_of(&shop, &["ebook"]).await;
    let link = order["issued"][0]["url"].as_str().unwrap().to_owned();
    let file_url = format!("{link}/{file}");
    let grant = order["grants"][0]["grant_id"].as_u64().unwrap();

    let mut statuses = Vec::new();
    for n in 0..30 {
        // The page and the file count against the same link.
        let url = if n % 2 == 0 { &link } else { &file_url };
        let r = shop.http.head(url).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3).contains(&wait), "Retry-After {wait}");
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        10,
        "{statuses:?}"
    );
    let limited = shop.http.get(&file_url).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.text().await.unwrap().contains("try again"));
    let (_, g) = grant_detail(&shop, grant).await;
    assert_eq!(g["files"][0]["downloads_used"].as_f64(), Some(0.0));
    assert_eq!(
        g["uses"].as_array().unwrap().len(),
        0,
        "refused before the store"
    );

    // Made-up links from the same client: 404 until the client's rate (50) is spent.
    let mut made_up = Vec::new();
    for n in 0..25 {
        let r = shop
            .http
            .get(shop.app.url(&format!("/d/MADE-UP-{n}")))
            .send()
            .await
            .unwrap();
        made_up.push(r.status().as_u16());
    }
    assert!(made_up[..19].iter().all(|&s| s == 404), "{made_up:?}");
    assert!(made_up[20..].iter().all(|&s| s == 429), "{made_up:?}");
    // The rest of the shop is not rate limited.
    assert_eq!(
        shop.http
            .get(shop.app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    shop.app.stop().await;
}

/// A script retrying a link that is used up leaves one log entry with a count, not one
/// entry (and one durable write of a new row) per attempt.
#[tokio::test]
async fn repeated_refusals_fold_into_one_log_entry() {
    let shop = Shop::open().await;
    let file = product(&shop, "ebook", 1).await;
    let order = order_of(&shop, &["ebook"]).await;
    let file_url = format!("{}/{file}", order["issued"][0]["url"].as_str().unwrap());
    let grant = order["grants"][0]["grant_id"].as_u64().unwrap();
    let got = shop.http.get(&file_url).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), FILE.len());
    for _ in 0..100 {
        let r = shop.http.get(&file_url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let (_, g) = grant_detail(&shop, grant).await;
    let uses = g["uses"].as_array().unwrap();
    let entries: Vec<(&str, u64)> = uses
        .iter()
        .map(|u| (u["outcome"].as_str().unwrap(), u["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(entries, vec![("allowed", 1), ("limit_reached", 100)]);
    assert!(uses[1]["last_at"].as_i64() >= uses[1]["at"].as_i64());
    shop.app.stop().await;
}

/// A client that asks for a file and then takes no bytes (a reader stalled at zero window)
/// is cut off after the send timeout, and the download is charged only what the socket
/// took. Before, such a connection stayed open as long as the client liked.
#[tokio::test]
async fn a_download_that_stalls_is_cut_off_and_charged_what_was_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shop = Shop::open_with(|c| c.send_timeout = std::time::Duration::from_secs(1)).await;
    let content = vec![9u8; 24 << 20];
    let file = product_with(&shop, "big", 1, &content).await;
    let order = order_of(&shop, &["big"]).await;
    let grant = order["grants"][0]["grant_id"].as_u64().unwrap();
    let url = reqwest::Url::parse(&format!(
        "{}/{file}",
        order["issued"][0]["url"].as_str().unwrap()
    ))
    .unwrap();

    // A small receive window, a request, then nothing read for three times the timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n", url.path());
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut received),
    )
    .await
    .expect("the server closed the connection");
    // Closed by the server: an orderly end or a reset, before the whole file came.
    assert!(
        read.is_err() || received.len() < content.len(),
        "{}",
        received.len()
    );

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, g) = grant_detail(&shop, grant).await;
    let used = g["files"][0]["downloads_used"].as_f64().unwrap();
    assert!(
        used < 0.5,
        "charged what the socket took, not the file: {used}"
    );
    assert_eq!(g["status"], "active", "the download can be made again");
    shop.app.stop().await;
}
