//! Product updates over HTTP: a `PUT` of a name the product has is a new version that old
//! links serve from then on (with its date and changelog on the buyer page, and resumes of
//! the old bytes refused by `If-Range`), earlier versions listed with their checksums,
//! the per-product choice to give buyers their downloads again, and deletion of every
//! version's object.

use crate::common;

use common::Shop;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn put_file(
    shop: &Shop,
    name: &str,
    body: Vec<u8>,
    changelog: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = shop.api(Method::PUT, &format!("/api/v1/products/guide/files/{name}"));
    if let Some(c) = changelog {
        request = request.query(&[("changelog", c)]);
    }
    let r = request.body(body).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn fetch(url: &str, headers: &[(header::HeaderName, &str)]) -> (StatusCode, Vec<u8>, String) {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let etag = r
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.unwrap().to_vec();
    // Let the server settle the bytes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (status, body, etag)
}

fn objects(shop: &Shop) -> usize {
    std::fs::read_dir(shop.app.data_dir.path().join("files"))
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
        .count()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: versions 1 to 3 of a file, as a seller lives it
async fn a_new_version_reaches_old_links_and_the_earlier_ones_stay_listed() {
    let shop = Shop::open().await;
    let v1 = vec![1u8; 1000];
    let file = shop
        .product_with_file(
            json!({"product_id": "guide", "name": "Guide", "max_downloads": 2, "download_days": 31}),
            "guide.pdf",
            &v1,
        )
        .await;
    let file_id = file["file_id"].as_u64().unwrap();
    assert_eq!(
        (
            file["version"].as_u64(),
            file["earlier"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    let (_, created) = shop
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "di@example.com", "name": "Di", "product_ids": ["guide"]})),
        )
        .await;
    let page = created["issued"][0]["url"].as_str().unwrap().to_owned();
    let link = format!("{page}/{file_id}");
    let (status, body, old_etag) = fetch(&link, &[]).await;
    assert_eq!((status, body == v1), (StatusCode::OK, true));
    let page_before = reqwest::get(&page).await.unwrap().text().await.unwrap();
    assert!(
        !page_before.contains("Updated on"),
        "a first version is not an update"
    );

    // Version 2, with a changelog: the same file id, the old link serves the new bytes.
    let v2 = vec![2u8; 1500];
    let (status, shown) = put_file(
        &shop,
        "guide.pdf",
        v2.clone(),
        Some("Chapter 9 added\nTypos fixed"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a new version answers 200: {shown}");
    assert_eq!(shown["file_id"].as_u64(), Some(file_id));
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["size"], 1500);
    assert_eq!(shown["sha256"], hex::encode(Sha256::digest(&v2)));
    assert_eq!(shown["changelog"], "Chapter 9 added\nTypos fixed");
    let earlier = &shown["earlier"][0];
    assert_eq!(
        (earlier["version"].as_u64(), earlier["size"].as_u64()),
        (Some(1), Some(1000))
    );
    assert_eq!(earlier["sha256"], hex::encode(Sha256::digest(&v1)));
    let (_, product) = shop.call(Method::GET, "/api/v1/products/guide", None).await;
    assert_eq!(
        product["files"].as_array().unwrap().len(),
        1,
        "still one file: {product}"
    );

    // A resume of the old bytes must not be glued onto the new ones: If-Range with the
    // old ETag gets the whole new file.
    let (status, body, new_etag) = fetch(
        &link,
        &[(header::RANGE, "bytes=500-"), (header::IF_RANGE, &old_etag)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == v2, "the whole new version");
    assert_ne!(old_etag, new_etag);
    let html = reqwest::get(&page).await.unwrap().text().await.unwrap();
    assert!(html.contains("Updated on"), "{html}");
    assert!(html.contains("Chapter 9 added"), "{html}");
    assert!(html.contains(&hex::encode(Sha256::digest(&v2))));

    // Used up (2 downloads of 2, counted in bytes); a new version without the product's
    // refresh choice leaves the count alone.
    let (status, _, _) = fetch(&link, &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "2 500 of 3 000 bytes used: not enough for a whole download"
    );
    let (status, _) = put_file(&shop, "guide.pdf", vec![3u8; 1500], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetch(&link, &[]).await.0, StatusCode::FORBIDDEN);

    // With the refresh choice on, version 4 gives every buyer their downloads again.
    let (status, p) = shop
        .call(
            Method::PATCH,
            "/api/v1/products/guide",
            Some(json!({"refresh_on_update": true})),
        )
        .await;
    assert_eq!(
        (status, p["refresh_on_update"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let v4 = b"version four".to_vec();
    let (_, shown) = put_file(&shop, "guide.pdf", v4.clone(), Some("Fourth")).await;
    assert_eq!(shown["version"], 4);
    let versions: Vec<u64> = shown["earlier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first");
    let (status, body, _) = fetch(&link, &[]).await;
    assert_eq!((status, body), (StatusCode::OK, v4));

    // Bad input changes nothing: a changelog too long, a control character.
    for bad in ["x".repeat(2001), "bell\u{7}".to_owned()] {
        let (status, answer) = put_file(&shop, "guide.pdf", b"nope".to_vec(), Some(&bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    let (_, product) = shop.call(Method::GET, "/api/v1/products/guide", None).await;
    assert_eq!(product["files"][0]["version"], 4);
    assert_eq!(
        objects(&shop),
        4,
        "one object per version, nothing left by the refused uploads"
    );

    // A different name is a second file, not a version.
    let (status, other) = put_file(&shop, "extras.zip", b"extras".to_vec(), None).await;
    assert_eq!(
        (status, other["version"].as_u64()),
        (StatusCode::CREATED, Some(1))
    );

    // Deleting the file removes every version's object.
    let r = shop
        .api(
            Method::DELETE,
            &format!("/api/v1/products/guide/files/{file_id}?force=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(objects(&shop), 1, "only extras.zip is left");

    let (_, audit) = shop
        .call(Method::GET, "/api/v1/audit?target=guide", None)
        .await;
    let versions = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "file.version")
        .count();
    assert_eq!(versions, 3);
    shop.app.stop().await;
}
