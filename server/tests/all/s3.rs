//! Product files on a real S3-compatible server (s3s-fs, which verifies SigV4 signatures,
//! started here on 127.0.0.1 and stopped after): streamed multipart upload, downloads as
//! 302 redirects to presigned URLs that carry the real name, expire, cannot be altered, and
//! spend the download budget when issued; deleting a file removes the object.

use crate::common;

use common::{Shop, TestApp, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ACCESS_KEY: &str = "dropgate-test-key";
const SECRET_KEY: &str = "dropgate-test-secret-0123456789";
const BUCKET: &str = "shop-files";

/// A running s3s-fs; killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map_or_else(
            || PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"),
            PathBuf::from,
        )
        .join("bin/s3s-fs");
    assert!(
        cargo_bin.is_file(),
        "s3s-fs is not installed: `cargo xtask test` installs it (cargo install s3s-fs@0.14.1 --features binary --locked)"
    );
    cargo_bin
}

async fn start_s3() -> S3Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(BUCKET)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(s3s_fs())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return S3Server {
                child,
                endpoint,
                root,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("s3s-fs did not start");
}

async fn shop_on(s3: &S3Server, secret: &str) -> Result<TestApp, String> {
    let settings = backend::blobs::S3Settings {
        bucket: BUCKET.into(),
        prefix: "store/v1".into(),
        endpoint: Some(s3.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(secret.into()),
    };
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = server::Config::for_data_dir(data_dir.path());
    config.storage = server::config::StorageLocation::S3(settings.clone());
    if let Err(e) = server::Application::build(config).await {
        return Err(e.to_string());
    }
    Ok(spawn_app_with(|c| {
        c.storage = server::config::StorageLocation::S3(settings);
        c.presign_ttl = Duration::from_secs(2);
    })
    .await)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { files_in(&p) } else { vec![p] }
        })
        .collect()
}

#[tokio::test]
async fn a_wrong_secret_is_found_at_start() {
    let s3 = start_s3().await;
    let error = shop_on(&s3, "not-the-secret").await.err().unwrap();
    assert!(
        error.contains("S3 bucket shop-files is not reachable"),
        "{error}"
    );
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: upload, redirect, tamper, expire, budget, delete
async fn files_live_in_s3_and_downloads_redirect_to_short_lived_signed_urls() {
    let s3 = start_s3().await;
    let shop = Shop::with(shop_on(&s3, SECRET_KEY).await.unwrap()).await;
    let created = shop.api(reqwest::Method::POST, "/api/v1/products")
        .json(&json!({"product_id": "album", "name": "Album", "max_downloads": 1, "download_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // 7 MiB: more than one multipart part, streamed through to the bucket.
    let content: Vec<u8> = (0..7 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let upload = shop
        .api(
            reqwest::Method::PUT,
            "/api/v1/products/album/files/Album%20(24-bit).zip",
        )
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let file: Value = upload.json().await.unwrap();
    let file_id = file["file_id"].as_u64().unwrap();
    let objects = files_in(&s3.root.path().join(BUCKET));
    let stored: Vec<_> = objects
        .iter()
        .filter(|p| p.starts_with(s3.root.path().join(BUCKET).join("store/v1")))
        .collect();
    assert_eq!(stored.len(), 1, "{objects:?}");
    assert_eq!(std::fs::read(stored[0]).unwrap(), content);
    assert!(
        !stored[0].to_string_lossy().contains("Album"),
        "the real name must not be the key"
    );

    let order: Value = shop
        .api(reqwest::Method::POST, "/api/v1/orders")
        .json(&json!({"email": "ann@example.com", "product_ids": ["album"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = format!("{}/{file_id}", order["issued"][0]["url"].as_str().unwrap());

    // The file endpoint redirects to the bucket with a signed URL.
    let redirect = no_redirects().get(&link).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(redirect.headers()["cache-control"], "private, no-store");
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=2"), "{location}");
    assert!(
        location.contains("response-content-disposition=attachment"),
        "{location}"
    );
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        fetched.headers()["content-disposition"],
        "attachment; filename=\"Album (24-bit).zip\"; filename*=UTF-8''Album%20%2824-bit%29.zip"
    );
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), content.as_slice());

    // Anything changed in the URL breaks the signature.
    let other_name = location.replace("attachment", "inline");
    assert_eq!(
        reqwest::get(&other_name).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let sig_at = location.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut forged = location.clone();
    let flipped = if &forged[sig_at..=sig_at] == "0" {
        "1"
    } else {
        "0"
    };
    forged.replace_range(sig_at..=sig_at, flipped);
    assert_eq!(
        reqwest::get(&forged).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // And it stops working after its short life.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        reqwest::get(&location).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Issuing the URL spent the one download: the next request is refused, with a reason.
    let refused = no_redirects().get(&link).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("download"));

    // Deleting the file (forced: the buyer's grant still exists) removes the object.
    let deleted = shop
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/products/album/files/{file_id}?force=true"),
        )
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert!(
        files_in(&s3.root.path().join(BUCKET))
            .iter()
            .all(|p| !p.starts_with(s3.root.path().join(BUCKET).join("store/v1"))),
        "object left behind"
    );
    shop.app.stop().await;
}

/// A ranged request is never answered with a presigned URL: such a URL fetches any range
/// (the whole object too) as often as it likes while it lives, so a 1-byte charge would buy
/// the whole file. Ranges stream through Dropgate, counted by the bytes sent; only a
/// request for the whole file, charged in full, gets a redirect. A HEAD costs nothing.
#[tokio::test]
async fn ranges_on_s3_stream_through_and_cost_what_they_send() {
    let s3 = start_s3().await;
    let shop = Shop::with(shop_on(&s3, SECRET_KEY).await.unwrap()).await;
    let created = shop
        .api(reqwest::Method::POST, "/api/v1/products")
        .json(&json!({"product_id": "raw", "name": "Raw", "max_downloads": 1, "download_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // Above the 64 KiB memory cache of local stores, so nothing but the store answers.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let upload = shop
        .api(reqwest::Method::PUT, "/api/v1/products/raw/files/raw.bin")
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let file_id = upload.json::<Value>().await.unwrap()["file_id"]
        .as_u64()
        .unwrap();
    let order: Value = shop
        .api(reqwest::Method::POST, "/api/v1/orders")
        .json(&json!({"email": "ann@example.com", "product_ids": ["raw"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = format!("{}/{file_id}", order["issued"][0]["url"].as_str().unwrap());
    let grant_id = order["grants"][0]["grant_id"].as_u64().unwrap();
    let usage = || async {
        let grant: Value = shop
            .api(reqwest::Method::GET, &format!("/api/v1/grants/{grant_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            grant["files"][0]["downloads_used"].as_f64().unwrap(),
            grant["uses"].as_array().unwrap().len(),
        )
    };

    // The bypass as it was: `Range: bytes=0-0`, then the redirect's URL for everything.
    let one = no_redirects()
        .get(&link)
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        one.status(),
        StatusCode::PARTIAL_CONTENT,
        "no redirect for a range"
    );
    assert!(one.headers().get("location").is_none());
    assert_eq!(one.headers()["content-range"], "bytes 0-0/300000");
    assert_eq!(one.bytes().await.unwrap().as_ref(), &content[..1]);

    // A HEAD says what the same GET would get and costs nothing, logs nothing: the whole
    // file no longer fits the budget, the rest of it does.
    let head = no_redirects().head(&link).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::FORBIDDEN);
    let head = no_redirects()
        .head(&link)
        .header("range", "bytes=1-")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(head.headers()["content-length"], "299999");
    assert_eq!(usage().await, (1.0 / 300_000.0, 1));

    // A resume streams the rest through Dropgate; together they make one download.
    let rest = no_redirects()
        .get(&link)
        .header("range", "bytes=1-")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.bytes().await.unwrap().as_ref(), &content[1..]);
    let (downloads_used, log_entries) = usage().await;
    assert!((downloads_used - 1.0).abs() < 1e-9, "{downloads_used}");
    assert_eq!(log_entries, 2);

    // The one download is spent: neither a range nor the whole file is sent again.
    for range in [Some("bytes=0-0"), None] {
        let mut again = no_redirects().get(&link);
        if let Some(range) = range {
            again = again.header("range", range);
        }
        let again = again.send().await.unwrap();
        assert_eq!(again.status(), StatusCode::FORBIDDEN, "{range:?}");
    }
    shop.app.stop().await;
}
