//! The admin SPA's server side over real HTTP: every server function needs a session, the
//! browser upload needs a same-origin session, and the screens' calls reach the same
//! services as the REST API (products, orders, the desk, activity, audit).

mod common;

use common::spawn_app;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_calls_need_a_session_and_change_nothing_without_one() {
    let app = spawn_app().await;
    let anonymous = app.client();
    let listed = anonymous
        .post(app.url("/rpc/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 401);
    let created = anonymous
        .post(app.url("/rpc/product-create"))
        .json(&json!({"input": {"product_id": "ebook", "name": "Ebook"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 401);
    let upload = anonymous
        .put(app.url("/api/v1/products/ebook/files/a.bin"))
        .header("origin", &app.base)
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 401);

    let admin = app.create_first_admin("owner@example.com").await;
    let list: Value = admin
        .post(app.url("/rpc/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "the refused create left nothing behind");
    app.stop().await;
}

#[tokio::test]
async fn the_screens_sell_upload_and_find_a_link() {
    let app = spawn_app().await;
    let admin = app.create_first_admin("owner@example.com").await;
    let rpc_json = |endpoint: &str, body: Value| {
        admin
            .post(app.url(&format!("/rpc/{endpoint}")))
            .header("origin", &app.base)
            .json(&body)
            .send()
    };
    let created = rpc_json(
        "product-create",
        json!({"input": {"product_id": "ebook", "name": "The Ebook", "max_downloads": 2}}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 200);
    let bad = rpc_json(
        "product-create",
        json!({"input": {"product_id": "Not A Slug", "name": "x"}}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["Invalid"]["field"], "product_id", "{error}");

    // Upload from the admin's browser: the session counts only with this site's Origin.
    let put = |origin: Option<&str>| {
        let mut request = admin
            .put(app.url("/api/v1/products/ebook/files/book%20one.pdf"))
            .header("content-type", "application/pdf")
            .body(vec![9u8; 4096]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 401);
    assert_eq!(
        put(Some("https://evil.example")).await.unwrap().status(),
        401
    );
    let uploaded = put(Some(&app.base)).await.unwrap();
    assert_eq!(uploaded.status(), 201);
    let file: Value = uploaded.json().await.unwrap();
    assert_eq!(file["name"], "book one.pdf");

    let order: Value = rpc_json(
        "order-create",
        json!({"input": {"email": "bea@example.com", "name": "Bea", "product_ids": ["ebook"]}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let order_id = order["order_id"].as_u64().unwrap().to_string();
    let password = order["issued"][0]["password"].as_str().unwrap().to_owned();

    // The order list finds it by the shape of what was typed.
    for search in [order_id.as_str(), "bea@example.com", ""] {
        let page: Value = admin
            .post(app.url("/rpc/orders"))
            .form(&[("search", search)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["orders"][0]["order_id"].to_string(),
            order_id,
            "{search}"
        );
    }

    // The desk finds the link by password and acts on it; the audit log has the action.
    let found: Value = admin
        .post(app.url("/rpc/desk-lookup"))
        .form(&[
            ("by", "password"),
            ("value", password.as_str()),
            ("product", ""),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_id = found[0]["grant_id"].as_u64().unwrap();
    let unblock = admin
        .post(app.url("/rpc/desk-action"))
        .form(&[
            ("grant_id", grant_id.to_string().as_str()),
            ("action", "unblock"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        unblock.status(),
        409,
        "an unblocked link cannot be unblocked"
    );
    let reset: Value = admin
        .post(app.url("/rpc/desk-action"))
        .form(&[
            ("grant_id", grant_id.to_string().as_str()),
            ("action", "resend"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(reset["issued"]["url"].as_str().unwrap().contains("/d/"));
    let audit: Value = admin
        .post(app.url("/rpc/audit"))
        .form(&[("target", format!("grant:{grant_id}").as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "grant.resend");
    assert!(
        audit[0]["actor"]
            .as_str()
            .unwrap()
            .contains("owner@example.com")
    );

    // Another site cannot call the server functions with the admin's cookie.
    let cross = admin
        .post(app.url("/rpc/desk-action"))
        .header("origin", "https://evil.example")
        .form(&[
            ("grant_id", grant_id.to_string().as_str()),
            ("action", "expire"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    app.stop().await;
}
