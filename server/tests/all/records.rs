//! Records in and out over HTTP and the command line: imports of the legacy script's sale
//! records and of CSV (dry run, all-or-nothing, idempotent, old links working), streamed
//! CSV exports, an online backup under load that opens in a fresh server, and restore.

// Each test is one story, told in the order a seller lives it.
#![allow(clippy::too_many_lines)]

use crate::common::{Shop, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const BOOK: &[u8] = b"%PDF-1.7 the book, as the old script delivered it\n";

/// The legacy script's records file: the guard line, good rows (two of them one PayPal
/// transaction for two products, one with a mistyped product ID), and bad rows.
const LEGACY_PHP: &str = "<?php exit; ?>\n\
20240105ABCDEFGHJKMNPQRS|ebook|ann@example.com|9XK12345AB678901C|Ann Smith\n\
20240105ABCDEFGHJKMNPQRT|course|ann@example.com|9XK12345AB678901C|Ann Smith\n\
\n\
20241301ABCDEFGHJKMNPQRU|ebook|bob@example.com|8XK12345AB678901C|Bob\n\
20240106ABCDEFGHJKMNPQRV|ebook|not-an-address|7XK12345AB678901C|Cy\n\
20240107ABCDEFGHJKMNPQRW|ebook|dee@example.com\n\
20240108ABCDEFGHJKMNPQRX|corse|eve@example.com||Eve, Jr.\n";

async fn shop_with_products() -> (Shop, u64) {
    let shop = Shop::open().await;
    let file = shop
        .product_with_file(
            json!({"product_id": "ebook", "name": "The Book", "max_downloads": 3, "download_days": 30}),
            "book.pdf",
            BOOK,
        )
        .await;
    shop.product_with_file(
        json!({"product_id": "course", "name": "The Course", "max_downloads": 0, "download_days": 0}),
        "course.zip",
        b"PK course",
    )
    .await;
    (shop, file["file_id"].as_u64().unwrap())
}

async fn import(shop: &Shop, query: &str, file: &str) -> (StatusCode, Value) {
    let response = shop
        .api(Method::POST, &format!("/api/v1/imports?{query}"))
        .header("content-type", "text/csv")
        .body(file.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn order_count(shop: &Shop) -> usize {
    let (status, orders) = shop.call(Method::GET, "/api/v1/orders", None).await;
    assert_eq!(status, StatusCode::OK);
    orders.as_array().unwrap().len()
}

fn lines_of(report: &Value) -> Vec<u64> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn legacy_sale_records_import_with_a_dry_run_and_old_links_keep_working() {
    let (shop, book) = shop_with_products().await;

    // The dry run names every rejected row by line and the product ID to map, and changes nothing.
    let (status, dry) = import(&shop, "dry_run=true", LEGACY_PHP).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["format"], "legacy");
    assert_eq!(dry["separator"], "|");
    assert_eq!(dry["rows"], 6);
    assert_eq!(
        (dry["orders"].as_u64(), dry["grants"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(lines_of(&dry), [5, 6, 7, 8]);
    assert!(
        dry["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a date")
    );
    assert_eq!(dry["unknown_products"], json!(["corse"]));
    assert_eq!(dry["preview"][0]["lines"], json!([2, 3]));
    assert_eq!(
        dry["preview"][0]["sold_at"], 1_704_412_800_000_i64,
        "2024-01-05"
    );
    assert_eq!(order_count(&shop).await, 0);

    // The real run is all-or-nothing: rejected rows stop it.
    let (status, refused) = import(&shop, "", LEGACY_PHP).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 5"),
        "{refused}"
    );
    assert_eq!(order_count(&shop).await, 0);

    // Mapped and with the bad rows left out, it imports.
    let (status, done) = import(&shop, "map=corse%3Dcourse&skip_rejected=true", LEGACY_PHP).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        (done["orders"].as_u64(), done["grants"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(lines_of(&done), [5, 6, 7]);
    let ann = &done["preview"][0];
    assert!(ann["order_id"].as_u64().is_some());
    assert_eq!(order_count(&shop).await, 2);
    let (_, found) = shop
        .call(
            Method::GET,
            "/api/v1/orders?transaction_id=9XK12345AB678901C",
            None,
        )
        .await;
    let order = &found[0];
    assert_eq!(order["source"], "import");
    assert_eq!(order["email"], "ann@example.com");
    assert_eq!(
        order["created_at"], 1_704_412_800_000_i64,
        "2024-01-05: the sale date"
    );
    assert_eq!(order["grants"].as_array().unwrap().len(), 2);
    // The window starts at the import (the default): 30 days from now, not from 2024.
    let until = order["grants"][0]["valid_until"].as_i64().unwrap();
    assert!(until > 1_767_225_600_000, "after 2026-01-01: {until}");

    // The link the buyer has held since 2024 works as before.
    let page = shop
        .http
        .get(shop.app.url("/d/20240105ABCDEFGHJKMNPQRS"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("The Book"));
    let bytes = shop
        .http
        .get(shop.app.url(&format!("/d/20240105ABCDEFGHJKMNPQRS/{book}")))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), StatusCode::OK);
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), BOOK);
    // Eve's mistyped product was mapped: her old link opens the course.
    let eve = shop
        .http
        .get(shop.app.url("/d/20240108ABCDEFGHJKMNPQRX"))
        .send()
        .await
        .unwrap();
    assert!(eve.text().await.unwrap().contains("The Course"));

    // The same file again, and its CSV and TSV copies, create nothing.
    let body: Vec<&str> = LEGACY_PHP.lines().skip(1).collect();
    let tsv = body.join("\n").replace('|', "\t");
    let csv = body
        .join("\r\n")
        .replace("Eve, Jr.", "\"Eve, Jr.\"")
        .replace('|', ",");
    for file in [LEGACY_PHP.to_owned(), tsv, csv] {
        let (status, again) = import(&shop, "map=corse%3Dcourse&skip_rejected=true", &file).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(
            (again["orders"].as_u64(), again["already_imported"].as_u64()),
            (Some(0), Some(3))
        );
    }
    assert_eq!(order_count(&shop).await, 2);

    // One audit entry for the import, none per order; no mail to the imported buyers.
    let (_, audit) = shop.call(Method::GET, "/api/v1/audit", None).await;
    let imports = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "import.sales")
        .count();
    assert_eq!(imports, 4);
    assert!(
        !audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "order.create")
    );
}

#[tokio::test]
async fn csv_orders_import_with_mapped_columns_and_idempotent_reruns() {
    let (shop, _) = shop_with_products().await;
    let file = "Buyer,Mail,Item,Ref,When,State\n\
        Ann,ann@example.com,ebook,R-1,2026-03-01,Completed\n\
        Bob,bob@example.com,ebook,R-2,2026-03-02T10:00:00Z,Refunded\n\
        Cy,cy@example.com,ebook,,2026-03-03,paid\n\
        Dee,dee@example.com,ebook,R-4,03/04/2026,paid\n";
    // The usual header names are not there: the email column must be named.
    let (status, refused) = import(&shop, "dry_run=true", file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email column"),
        "{refused}"
    );

    let columns = "column=email%3DMail&column=name%3DBuyer&column=product%3DItem\
        &column=transaction_id%3DRef&column=date%3DWhen&column=status%3DState&skip_rejected=true";
    let (status, done) = import(&shop, columns, file).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["format"], "csv");
    assert_eq!(done["orders"], 3);
    assert_eq!(lines_of(&done), [5]);
    let (_, bob) = shop
        .call(Method::GET, "/api/v1/orders?transaction_id=R-2", None)
        .await;
    assert_eq!(bob[0]["status"], "refunded");
    assert_eq!(bob[0]["grants"][0]["revoked"], true);
    assert_eq!(
        bob[0]["created_at"], 1_772_445_600_000_i64,
        "2026-03-02T10:00Z"
    );

    let (_, again) = import(&shop, columns, file).await;
    assert_eq!(
        (again["orders"].as_u64(), again["already_imported"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(order_count(&shop).await, 3);

    // Bad parameters are refused with a message and change nothing.
    for query in [
        "format=xml",
        "window=later",
        "column=phone%3DX",
        "map=nothing",
        "dry_run=maybe",
        "colour=red",
    ] {
        let (status, answer) = import(&shop, query, file).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {answer}"
        );
    }
    assert_eq!(order_count(&shop).await, 3);
}

async fn order(shop: &Shop, email: &str, product: &str) -> Value {
    let (status, created) = shop
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"email": email, "name": "Buyer", "product_ids": [product]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn csv_of(shop: &Shop, path: &str) -> (StatusCode, String) {
    let response = shop.api(Method::GET, path).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn exports_stream_orders_grants_and_events_as_csv() {
    let (shop, book) = shop_with_products().await;
    let first = order(&shop, "ann@example.com", "ebook").await;
    order(&shop, "bob@example.com", "course").await;
    let password = first["issued"][0]["password"].as_str().unwrap();
    let download = shop
        .http
        .get(shop.app.url(&format!("/d/{password}/{book}")))
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), BOOK);

    let (status, orders) = csv_of(&shop, "/api/v1/exports/orders.csv").await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = orders.lines().collect();
    assert_eq!(rows.len(), 3, "{orders}");
    assert!(rows[0].starts_with("order_id,order_number,created_at,status"));
    assert!(orders.contains("ann@example.com") && orders.contains("bob@example.com"));

    let (_, grants) = csv_of(&shop, "/api/v1/exports/grants.csv?product=ebook").await;
    let rows: Vec<&str> = grants.lines().collect();
    assert_eq!(rows.len(), 2, "{grants}");
    assert!(
        rows[1].contains(",ebook,ann@example.com,active,"),
        "{grants}"
    );
    assert!(
        rows[1].contains(",1.00,3,"),
        "one of three downloads used: {grants}"
    );

    let (_, events) = csv_of(&shop, "/api/v1/exports/events.csv").await;
    let rows: Vec<&str> = events.lines().collect();
    assert_eq!(rows.len(), 2, "{events}");
    assert!(rows[1].contains(",ebook,book.pdf,127.0.0.1,"), "{events}");
    assert!(
        rows[1].ends_with(&format!(",{},allowed", BOOK.len())),
        "{events}"
    );

    // Dates filter; `to` is exclusive.
    let (_, none) = csv_of(&shop, "/api/v1/exports/orders.csv?from=2100-01-01").await;
    assert_eq!(none.lines().count(), 1, "{none}");
    let (_, before) = csv_of(&shop, "/api/v1/exports/events.csv?to=2000-01-01").await;
    assert_eq!(before.lines().count(), 1);

    let (status, _) = csv_of(&shop, "/api/v1/exports/secrets.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = csv_of(&shop, "/api/v1/exports/orders.csv?from=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = csv_of(&shop, "/api/v1/exports/orders.csv?product=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = shop
        .http
        .get(shop.app.url("/api/v1/exports/orders.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Runs the real binary; waits off the test's runtime, which also serves the app it calls.
async fn dropgate(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args(&args)
            .env_remove("DROPGATE_DATA_DIR")
            .env_remove("DROPGATE_CONFIG")
            .env_remove("DROPGATE_API_TOKEN")
            .output()
            .expect("run dropgate")
    })
    .await
    .expect("the command ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_backup_under_load_holds_every_acknowledged_order_and_restores_into_a_stopped_server() {
    let (shop, _) = shop_with_products().await;
    let shop = Arc::new(shop);
    let buyer = order(&shop, "load@example.com", "course").await;
    let password = buyer["issued"][0]["password"].as_str().unwrap().to_owned();
    let course = {
        let (_, product) = shop
            .call(Method::GET, "/api/v1/products/course", None)
            .await;
        product["files"][0]["file_id"].as_u64().unwrap()
    };

    // Downloads and orders keep coming while the backup is taken.
    let finished = Arc::new(AtomicBool::new(false));
    let downloads = Arc::new(AtomicU64::new(0));
    let loader = {
        let (shop, finished, downloads, password) = (
            Arc::clone(&shop),
            Arc::clone(&finished),
            Arc::clone(&downloads),
            password.clone(),
        );
        tokio::spawn(async move {
            while !finished.load(Ordering::Relaxed) {
                let r = shop
                    .http
                    .get(shop.app.url(&format!("/d/{password}/{course}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(r.bytes().await.unwrap().as_ref(), b"PK course");
                downloads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let created = order(&shop, &format!("before{i}@example.com"), "ebook").await;
        acknowledged.push(created["order_id"].as_u64().unwrap());
    }
    let during = {
        let shop = Arc::clone(&shop);
        tokio::spawn(async move {
            for i in 0..20 {
                order(&shop, &format!("during{i}@example.com"), "ebook").await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.redb");
    let before = downloads.load(Ordering::Relaxed);
    let response = shop
        .api(Method::GET, "/api/v1/backup")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".redb")
    );
    std::fs::write(&copy, response.bytes().await.unwrap()).unwrap();
    during.await.unwrap();
    finished.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    assert!(
        downloads.load(Ordering::Relaxed) > before,
        "downloads went on during the backup"
    );
    let summary = backend::store::backup::verify_backup(&copy).unwrap();
    assert!(summary.orders >= 21, "{summary:?}");

    // The command line takes a backup the same way (and checks it).
    let cli_copy = dir.path().join("cli.redb");
    let out = dropgate(&[
        "backup",
        "--server",
        &shop.app.base,
        "--token",
        &shop.token,
        "--output",
        cli_copy.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("orders"),
        "{}",
        text(&out.stdout)
    );
    assert!(backend::store::backup::verify_backup(&cli_copy).is_ok());

    // Restore is refused while a server has the directory open, and changes nothing.
    let live_dir = shop.app.data_dir.path().to_str().unwrap().to_owned();
    let out = dropgate(&["restore", "--data-dir", &live_dir, copy.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("running"),
        "{}",
        text(&out.stderr)
    );

    // Into a stopped server's directory it installs, keeping the file it replaces.
    let target = tempfile::tempdir().unwrap();
    let fresh = spawn_app_with(|c| *c = server::Config::for_data_dir(target.path())).await;
    fresh.stop().await;
    let target_dir = target.path().to_str().unwrap();
    let out = dropgate(&["restore", "--data-dir", target_dir, copy.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kept as"),
        "{}",
        text(&out.stdout)
    );
    let kept = std::fs::read_dir(target.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("before-restore")
        })
        .count();
    assert!(kept >= 1);

    // The restored server has every order acknowledged before the backup began, the same
    // API token, and the buyers' links work.
    let restored = spawn_app_with(|c| *c = server::Config::for_data_dir(target.path())).await;
    let restored = Shop {
        app: restored,
        token: shop.token.clone(),
        http: reqwest::Client::new(),
    };
    for id in &acknowledged {
        let (status, found) = restored
            .call(Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "order {id}: {found}");
    }
    let page = restored
        .http
        .get(restored.app.url(&format!("/d/{password}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // A file that is not a backup is refused before anything moves.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"junk").unwrap();
    let other = tempfile::tempdir().unwrap();
    let out = dropgate(&[
        "restore",
        "--data-dir",
        other.path().to_str().unwrap(),
        junk.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn the_command_line_imports_and_exports_through_the_running_server() {
    let (shop, _) = shop_with_products().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.php");
    std::fs::write(&file, LEGACY_PHP).unwrap();
    let base = [
        "--server",
        shop.app.base.as_str(),
        "--token",
        shop.token.as_str(),
    ];
    let run = async |extra: &[&str]| {
        let mut args = vec!["import", "sales"];
        args.extend_from_slice(&base);
        args.push(file.to_str().unwrap());
        args.extend_from_slice(extra);
        dropgate(&args).await
    };
    let out = run(&["--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("would create 1 orders with 2 links"),
        "{said}"
    );
    assert!(said.contains("line 5:") && said.contains("--map"), "{said}");
    assert!(said.contains("Dry run"), "{said}");

    let out = run(&[]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejected rows are the seller's to fix"
    );
    assert!(
        text(&out.stderr).contains("line 5"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["--map", "corse=course", "--skip-rejected"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("created 2 orders with 3 links"),
        "{}",
        text(&out.stdout)
    );

    let csv = dir.path().join("orders.csv");
    let mut args = vec!["export", "orders"];
    args.extend_from_slice(&base);
    args.extend_from_slice(&["--output", csv.to_str().unwrap()]);
    let out = dropgate(&args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);

    let out = dropgate(&[
        "export",
        "orders",
        "--server",
        &shop.app.base,
        "--token",
        "wrong",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown or revoked"),
        "{}",
        text(&out.stderr)
    );
    let out = dropgate(&["backup", "--server", "http://127.0.0.1:9", "--token", "x"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out.stderr)
    );
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_buyers_data_is_one_document_and_erasure_leaves_no_trace_in_the_file() {
    let (shop, book) = shop_with_products().await;
    let (status, ann) = shop
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "annabel.erasmus@example.com", "name": "Annabel Erasmus", "product_ids": ["ebook"], "transaction_id": "TX-ANNABEL"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    let bob = order(&shop, "bob.keeps@example.com", "ebook").await;
    // Many other buyers around Ann, so her records share pages with theirs, and the pages
    // an erasure frees are not all reused by the writes that follow it.
    let many: String = std::iter::once("email,name,product\n".to_owned())
        .chain((0..3000).map(|i| format!("buyer{i}@example.com,Buyer {i},ebook\n")))
        .collect();
    let (status, imported) = import(&shop, "", &many).await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    let password = ann["issued"][0]["password"].as_str().unwrap().to_owned();
    let download = shop
        .http
        .get(shop.app.url(&format!("/d/{password}/{book}")))
        .header("user-agent", "AnnabelsBrowser/7.1")
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    download.bytes().await.unwrap();

    // Everything held about the address, as one document.
    let (status, data) = shop
        .call(
            Method::GET,
            "/api/v1/customers/annabel.erasmus@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["orders"].as_array().unwrap().len(), 1);
    assert_eq!(data["orders"][0]["name"], "Annabel Erasmus");
    assert_eq!(data["grants"][0]["uses"][0]["ip"], "127.0.0.1");
    assert!(!data["mails"].as_array().unwrap().is_empty(), "{data}");
    let (status, _) = shop
        .call(Method::GET, "/api/v1/customers/not-an-address", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, report) = shop
        .call(
            Method::POST,
            "/api/v1/customers/annabel.erasmus@example.com/erase",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["orders"].as_u64(), report["grants"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(report["events"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["mails"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["audit_entries"].as_u64().unwrap() >= 1, "{report}");

    // The link stops working; the sale stays, without the person; the audit says who erased.
    let refused = shop
        .http
        .get(shop.app.url(&format!("/d/{password}/{book}")))
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status(), StatusCode::OK);
    let order_id = ann["order_id"].as_u64().unwrap();
    let (_, kept) = shop
        .call(Method::GET, &format!("/api/v1/orders/{order_id:07}"), None)
        .await;
    assert_eq!(kept["transaction_id"], "TX-ANNABEL");
    assert_eq!(kept["name"], "");
    assert!(
        kept["email"].as_str().unwrap().ends_with("@erased.invalid"),
        "{kept}"
    );
    let (_, after) = shop
        .call(
            Method::GET,
            "/api/v1/customers/annabel.erasmus@example.com",
            None,
        )
        .await;
    assert_eq!(after["orders"].as_array().unwrap().len(), 0, "{after}");
    let (_, audit) = shop.call(Method::GET, "/api/v1/audit", None).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "customer.erase")
    );
    // Another buyer is untouched.
    let (_, other) = shop
        .call(Method::GET, "/api/v1/customers/bob.keeps@example.com", None)
        .await;
    assert_eq!(other["orders"][0]["order_id"], bob["order_id"]);

    // Not in the data file either, not even in pages redb has freed (Bob, who was not
    // erased, is: the scan finds what is there).
    let Shop { app, .. } = shop;
    let dir = app.stop().await;
    let file = std::fs::read(dir.path().join("dropgate.redb")).unwrap();
    assert!(holds(&file, "bob.keeps@example.com"));
    for trace in [
        "annabel.erasmus@example.com",
        "annabel.erasmus%40example.com",
        "Annabel Erasmus",
        "AnnabelsBrowser",
    ] {
        assert!(!holds(&file, trace), "the data file still holds {trace:?}");
    }
}

#[tokio::test]
async fn a_server_with_a_backup_directory_makes_todays_backup_at_start() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("daily");
    let daily = dir.clone();
    let shop = Shop::with(
        spawn_app_with(move |c| {
            c.daily_backups = Some(backend::services::DailyBackups {
                dir: daily,
                keep: 2,
            });
        })
        .await,
    )
    .await;
    let c = backend::clock::now().civil();
    let today = dir.join(format!(
        "dropgate-{:04}{:02}{:02}.redb",
        c.year, c.month, c.day
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !today.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no daily backup appeared in {}",
            dir.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let summary = backend::store::backup::verify_backup(&today).unwrap();
    assert!(summary.tables > 0);
    shop.app.stop().await;
}
