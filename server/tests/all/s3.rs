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
    let child = spawn_s3s(root.path(), port).await;
    S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        root,
    }
}

/// Starts s3s-fs on `port` over `root` and waits until it listens.
async fn spawn_s3s(root: &Path, port: u16) -> Child {
    let mut child = Command::new(s3s_fs())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("s3s-fs did not start");
}

impl S3Server {
    /// Kills the server (its connections break off mid-transfer).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and files.
    async fn restart(&mut self) {
        let port = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        self.child = spawn_s3s(self.root.path(), port).await;
    }
}

async fn shop_on(s3: &S3Server, secret: &str) -> Result<TestApp, String> {
    shop_in_mode(s3, secret, false).await
}

/// A shop on the S3 server; `proxy` streams downloads through Dropgate.
async fn shop_in_mode(s3: &S3Server, secret: &str, proxy: bool) -> Result<TestApp, String> {
    let settings = backend::blobs::S3Settings {
        bucket: BUCKET.into(),
        prefix: "store/v1".into(),
        endpoint: Some(s3.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(secret.into()),
        proxy,
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

/// Writes an object into the bucket the way another tool would (s3s-fs keeps each object
/// as a file under the bucket's folder), below the prefix the shops of these tests use.
fn put_object(s3: &S3Server, key: &str, content: &[u8]) {
    put_object_at(s3, &format!("store/v1/{key}"), content);
}

/// [`put_object`] at a key of the bucket's.
fn put_object_at(s3: &S3Server, key: &str, content: &[u8]) {
    let path = s3.root.path().join(BUCKET).join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

async fn listing(shop: &Shop, query: &[(&str, &str)]) -> Value {
    let r = shop
        .api(reqwest::Method::GET, "/api/v1/storage/objects")
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn keys(page: &Value) -> Vec<String> {
    page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: list, search, page, attach, version, delete
async fn an_object_already_in_the_bucket_is_listed_attached_and_downloaded_without_an_upload() {
    use sha2::{Digest, Sha256};
    let s3 = start_s3().await;
    let shop = Shop::with(shop_on(&s3, SECRET_KEY).await.unwrap()).await;
    shop.call(
        reqwest::Method::POST,
        "/api/v1/products",
        Some(json!({"product_id": "app", "name": "App", "max_downloads": 3, "download_days": 0})),
    )
    .await;
    // One upload of Dropgate's own: its random key must never be listed.
    let own = shop
        .api(
            reqwest::Method::PUT,
            "/api/v1/products/app/files/manual.pdf",
        )
        .body(b"manual".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::CREATED);
    let v1: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let v2: Vec<u8> = (0..400_000u32).map(|i| (i % 241) as u8).collect();
    put_object(&s3, "releases/app-1.0.zip", &v1);
    put_object(&s3, "releases/app-2.0.zip", &v2);
    put_object(&s3, "readme.txt", b"read me");
    for i in 0..105 {
        put_object(&s3, &format!("bulk/part-{i:03}.bin"), &[1u8; 10]);
    }

    // The whole listing, in key order, without Dropgate's own object.
    let first = listing(&shop, &[]).await;
    let first_keys = keys(&first);
    assert_eq!(first_keys.len(), 100);
    assert_eq!(first_keys[0], "bulk/part-000.bin");
    assert!(first_keys.windows(2).all(|w| w[0] < w[1]), "key order");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = listing(&shop, &[("cursor", &cursor)]).await;
    let second_keys = keys(&second);
    assert_eq!(
        second_keys,
        vec![
            "bulk/part-100.bin",
            "bulk/part-101.bin",
            "bulk/part-102.bin",
            "bulk/part-103.bin",
            "bulk/part-104.bin",
            "readme.txt",
            "releases/app-1.0.zip",
            "releases/app-2.0.zip"
        ]
    );
    assert!(second["next_cursor"].is_null());
    // Searched by a prefix that is not a whole folder name.
    let found = listing(&shop, &[("prefix", "releases/app-2")]).await;
    assert_eq!(keys(&found), vec!["releases/app-2.0.zip"]);
    assert_eq!(found["objects"][0]["size"], 400_000);
    assert!(found["objects"][0]["last_modified"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(keys(&listing(&shop, &[("prefix", "rel")]).await).len(), 2);

    // Attached: measured once (size, SHA-256), no copy made.
    let (status, file) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/products/app/files/attach",
            Some(json!({"key": "releases/app-1.0.zip"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(
        (file["name"].as_str(), file["size"].as_u64()),
        (Some("app-1.0.zip"), Some(300_000))
    );
    assert_eq!(file["sha256"], hex::encode(Sha256::digest(&v1)));
    let stored = files_in(&s3.root.path().join(BUCKET).join("store/v1"));
    assert_eq!(
        stored.len(),
        1 + 2 + 1 + 105,
        "nothing copied: {}",
        stored.len()
    );

    // The buyer downloads it from the bucket.
    let (_, order) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "ann@example.com", "product_ids": ["app"]})),
        )
        .await;
    let link = format!(
        "{}/{}",
        order["issued"][0]["url"].as_str().unwrap(),
        file["file_id"]
    );
    let got = reqwest::get(&link).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), v1.as_slice());

    // Attached under the same name: the new version of that file.
    let (status, newer) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/products/app/files/attach",
            Some(json!({"key": "releases/app-2.0.zip", "name": "app-1.0.zip", "changelog": "2.0"})),
        )
        .await;
    assert_eq!(
        (status, newer["version"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{newer}"
    );
    assert_eq!(newer["file_id"], file["file_id"]);
    let got = reqwest::get(&link).await.unwrap();
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        v2.as_slice(),
        "the old link serves the new version"
    );

    // Bad requests change nothing.
    let own_key = stored_own_key(&s3);
    for (body, status) in [
        (
            json!({"key": "../outside"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"key": "a//b"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"key": own_key}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"key": "releases/missing.zip"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"key": "readme.txt", "name": "a/b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"path": "readme.txt"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = shop
            .call(
                reqwest::Method::POST,
                "/api/v1/products/app/files/attach",
                Some(body.clone()),
            )
            .await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (got, _) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/products/nope/files/attach",
            Some(json!({"key": "readme.txt"})),
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    let (_, product) = shop
        .call(reqwest::Method::GET, "/api/v1/products/app", None)
        .await;
    assert_eq!(product["files"].as_array().unwrap().len(), 2, "{product}");

    // Deleting the file leaves the seller's objects in the bucket.
    let deleted = shop
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/products/app/files/{}?force=true", file["file_id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        files_in(&s3.root.path().join(BUCKET).join("store/v1")).len(),
        109
    );
    shop.app.stop().await;
}

/// The key of Dropgate's one upload in the bucket (a 32-digit hex name at the prefix's root).
fn stored_own_key(s3: &S3Server) -> String {
    std::fs::read_dir(s3.root.path().join(BUCKET).join("store/v1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
}

/// Reads a download's body until `at_least` bytes have arrived; returns them and the
/// response to go on reading.
async fn read_some(
    mut response: reqwest::Response,
    at_least: usize,
) -> (Vec<u8>, reqwest::Response) {
    let mut got = Vec::new();
    while got.len() < at_least {
        let chunk = response.chunk().await.unwrap().expect("more bytes");
        got.extend_from_slice(&chunk);
    }
    (got, response)
}

/// Reads the rest of a body; an error (a connection cut off) is returned as such.
async fn read_rest(mut response: reqwest::Response, mut got: Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => return Ok(got),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: exact bytes, ranges, S3 down and back, S3 changed
async fn proxy_mode_streams_exact_bytes_and_survives_s3_going_away_mid_file() {
    let mut s3 = start_s3().await;
    let shop = Shop::with(shop_in_mode(&s3, SECRET_KEY, true).await.unwrap()).await;
    shop.call(
        reqwest::Method::POST,
        "/api/v1/products",
        Some(json!({"product_id": "film", "name": "Film", "max_downloads": 5, "download_days": 0})),
    )
    .await;
    let content: Vec<u8> = (0..48 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    put_object(&s3, "masters/film.mkv", &content);
    let (status, file) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/products/film/files/attach",
            Some(json!({"key": "masters/film.mkv"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let (_, order) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "ann@example.com", "product_ids": ["film"]})),
        )
        .await;
    let grant = order["issued"][0]["grant_id"].as_u64().unwrap();
    let link = format!(
        "{}/{}",
        order["issued"][0]["url"].as_str().unwrap(),
        file["file_id"]
    );

    // No redirect: the bytes come from Dropgate, exactly, whole and in ranges.
    let ranged = no_redirects()
        .get(&link)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &content[1000..2000]);
    let tail = no_redirects()
        .get(&link)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &content[content.len() - 10..]
    );

    // S3 goes away mid-file and comes back: the download carries on from where it was.
    let whole = no_redirects().get(&link).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK, "proxy mode never redirects");
    let (first, whole) = read_some(whole, 1024 * 1024).await;
    s3.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s3.restart().await;
    let body = read_rest(whole, first)
        .await
        .expect("the download resumes after S3 is back");
    assert_eq!(body.len(), content.len());
    assert!(body == content, "byte for byte the same file");

    // Counted like a local file: the bytes sent, to the byte.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, found) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"order_id": order["order_id"]})),
        )
        .await;
    let counted: u64 = found[0]["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted,
        1000 + 10 + content.len() as u64,
        "{}",
        found[0]["uses"]
    );
    assert_eq!(found[0]["grant_id"].as_u64(), Some(grant));

    // S3 goes away and comes back with other bytes under the same key: never a mixed file,
    // the download fails instead.
    let whole = no_redirects().get(&link).send().await.unwrap();
    let (first, whole) = read_some(whole, 1024 * 1024).await;
    s3.kill();
    let mut changed = content.clone();
    changed.reverse();
    put_object(&s3, "masters/film.mkv", &changed);
    s3.restart().await;
    match read_rest(whole, first).await {
        Err(_) => {}
        Ok(body) => panic!(
            "a changed object must not be served as one file ({} bytes came)",
            body.len()
        ),
    }
    shop.app.stop().await;
}

/// Runs the real binary (off the test's runtime) with the S3 server's credentials.
async fn dropgate_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args(&args)
            .env_remove("DROPGATE_DATA_DIR")
            .env_remove("DROPGATE_CONFIG")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .expect("run dropgate")
    })
    .await
    .unwrap()
}

fn s3_settings(s3: &S3Server) -> backend::blobs::S3Settings {
    backend::blobs::S3Settings {
        bucket: BUCKET.into(),
        prefix: "big".into(),
        endpoint: Some(s3.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        proxy: false,
    }
}

/// Each link (a path) downloads exactly its bytes.
async fn serves(shop: &Shop, links: &[(String, Vec<u8>)], said: &str) {
    for (link, body) in links {
        let got = reqwest::get(shop.app.url(link))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(got == *body, "{said}: {link}");
    }
}

/// The files of the local store and of the bucket's `big/` prefix.
fn stored(data_dir: &Path, s3: &S3Server) -> (usize, usize) {
    let local = data_dir.join("files");
    let bucket = s3.root.path().join(BUCKET).join("big");
    let count = |dir: &Path| if dir.exists() { files_in(dir).len() } else { 0 };
    (count(&local), count(&bucket))
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: two stores, then disk → S3 → disk
async fn files_live_in_the_store_chosen_and_migrate_between_disk_and_s3_with_an_interruption() {
    let s3 = start_s3().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_owned();
    let settings = s3_settings(&s3);
    let open = |dir: PathBuf, settings: backend::blobs::S3Settings| async move {
        Shop::with(
            spawn_app_with(move |c| {
                *c = server::Config::for_data_dir(&dir);
                c.stores = vec![("big".into(), server::config::StorageLocation::S3(settings))];
            })
            .await,
        )
        .await
    };
    let shop = open(data_dir.clone(), settings.clone()).await;
    shop.call(reqwest::Method::POST, "/api/v1/products", Some(json!({"product_id": "course", "name": "Course", "max_downloads": 0, "download_days": 0}))).await;
    let put = |name: &'static str, store: Option<&'static str>, body: Vec<u8>| {
        let mut request = shop.api(
            reqwest::Method::PUT,
            &format!("/api/v1/products/course/files/{name}"),
        );
        if let Some(store) = store {
            request = request.query(&[("store", store)]);
        }
        async move {
            let r = request.body(body).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let small_v1 = vec![1u8; 200_000];
    let small_v2 = vec![2u8; 300_000];
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| i.to_le_bytes()[1] ^ 0x5a)
        .collect();
    let (status, small) = put("notes.pdf", None, small_v1.clone()).await;
    assert_eq!(
        (status, small["store"].as_str()),
        (StatusCode::CREATED, Some("default"))
    );
    let (status, _) = put("notes.pdf", None, small_v2.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, large) = put("videos.zip", Some("big"), big.clone()).await;
    assert_eq!(
        (status, large["store"].as_str()),
        (StatusCode::CREATED, Some("big")),
        "{large}"
    );
    let (status, refused) = put("other.zip", Some("nope"), vec![1]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("default, big"),
        "{refused}"
    );
    assert_eq!(
        stored(&data_dir, &s3),
        (2, 1),
        "two versions on disk, the large file in the bucket"
    );
    // An attached file on disk whose key the bucket also has, for another object of the
    // seller's: a migration must neither overwrite nor delete either.
    std::fs::create_dir_all(data_dir.join("files/releases")).unwrap();
    std::fs::write(
        data_dir.join("files/releases/extra.bin"),
        b"the attached extra",
    )
    .unwrap();
    put_object_at(&s3, "big/releases/extra.bin", b"the seller's own S3 object");
    let (status, extra) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/products/course/files/attach",
            Some(json!({"key": "releases/extra.bin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{extra}");
    let (_, order) = shop
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "ann@example.com", "product_ids": ["course"]})),
        )
        .await;
    let page = format!("/d/{}", order["issued"][0]["password"].as_str().unwrap());
    // Paths: each server of this story listens on a port of its own.
    let links = [
        (format!("{page}/{}", small["file_id"]), small_v2.clone()),
        (format!("{page}/{}", large["file_id"]), big.clone()),
        (
            format!("{page}/{}", extra["file_id"]),
            b"the attached extra".to_vec(),
        ),
    ];
    serves(&shop, &links, "served from disk").await;
    drop(shop.app.stop().await);

    let cli = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "storage",
            "migrate",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend([
            "--store".into(),
            "big=s3://shop-files/big".into(),
            "--s3-endpoint".into(),
            s3.endpoint.clone(),
            "--s3-region".into(),
            "us-east-1".into(),
        ]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        dropgate_cli(args)
    };
    // Disk → S3, interrupted after one object: nothing switched, the disk copies still serve.
    let out = cli(&["--to", "big", "--stop-after", "1"]).await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("Stopped before the switch: 1 copied"),
        "{said}"
    );
    assert_eq!(stored(&data_dir, &s3), (3, 3));
    // Run again: the copy made is checked, the rest copied, then the switch and the clean-up.
    let out = cli(&["--to", "big"]).await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("checked  notes.pdf v2"), "{said}");
    assert!(said.contains("copied   notes.pdf v1"), "{said}");
    assert!(said.contains("switched 2 files"), "{said}");
    assert!(said.contains("removed  2 objects"), "{said}");
    assert_eq!(
        stored(&data_dir, &s3),
        (1, 5),
        "all in the bucket, Dropgate's disk copies gone after the switch, the seller's file kept"
    );
    let seller_s3 = s3.root.path().join(BUCKET).join("big/releases/extra.bin");
    assert_eq!(
        std::fs::read(&seller_s3).unwrap(),
        b"the seller's own S3 object"
    );
    let again = cli(&["--to", "big"]).await;
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already"),
        "a third run has nothing to do"
    );
    // Refused: an unknown store, or a running server.
    let out = cli(&["--to", "elsewhere"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shop = open(data_dir.clone(), settings.clone()).await;
    serves(&shop, &links, "served from S3 now").await;
    let (_, product) = shop
        .call(reqwest::Method::GET, "/api/v1/products/course", None)
        .await;
    assert!(
        product["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["store"] == "big"),
        "{product}"
    );
    let out = cli(&["--to", "default"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    drop(shop.app.stop().await);

    // And back: S3 → disk, checksums checked again.
    let out = cli(&["--to", "default"]).await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored(&data_dir, &s3), (5, 1));
    assert_eq!(
        std::fs::read(&seller_s3).unwrap(),
        b"the seller's own S3 object"
    );
    let shop = open(data_dir.clone(), settings).await;
    serves(&shop, &links, "served from disk again").await;
    drop(shop.app.stop().await);
}
