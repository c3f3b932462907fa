//! The admin SPA's server side over real HTTP: every server function needs a session, the
//! browser upload needs a same-origin session, and the screens' calls reach the same
//! services as the REST API (products, orders, the desk, activity, audit).

// Each test is one seller's story, read top to bottom; splitting it would hide the order
// of events that matters.
#![allow(clippy::too_many_lines)]

use crate::common;

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
async fn products_are_created_and_uploaded_from_the_screens() {
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

    app.stop().await;
}

#[tokio::test]
async fn the_screens_sell_find_a_link_and_act_on_it() {
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

#[tokio::test]
async fn settings_accounts_and_tokens_are_managed_from_the_screens() {
    let app = spawn_app().await;
    let owner = app.create_first_admin("owner@example.com").await;
    let rpc = |client: &reqwest::Client, endpoint: &str, form: &[(&str, &str)]| {
        client
            .post(app.url(&format!("/rpc/{endpoint}")))
            .form(form)
            .send()
    };
    let save = |body: Value| {
        owner
            .post(app.url("/rpc/settings-save"))
            .json(&json!({ "input": body }))
            .send()
    };
    let store = |name: &str, reset_days: u32| {
        json!({"store_name": name, "sender_name": "", "sender_email": "",
               "reset_days": reset_days, "ip_retention_days": 30})
    };

    // A refused field is named and nothing is saved; a good save shows on buyer pages.
    let refused = save(store("Pixel Fonts", 0)).await.unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["Invalid"]["field"], "reset_days", "{error}");
    let loaded: Value = rpc(&owner, "settings", &[])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(loaded["reset_days"], 31);
    assert_eq!(save(store("Pixel Fonts", 14)).await.unwrap().status(), 200);
    let anonymous = app.client();
    let page = anonymous
        .get(app.url("/d/AAAA-BBBB-CCCC"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Pixel Fonts"),
        "the buyer page names the store"
    );
    let unsigned = anonymous
        .post(app.url("/rpc/settings-save"))
        .json(&json!({ "input": store("Hijacked", 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // A second admin: added, signs in, cannot remove the owner's… own account, is removed.
    let added = rpc(
        &owner,
        "admin-create",
        &[
            ("email", "helper@example.com"),
            ("name", "Helper"),
            ("password", "helper passphrase 1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 200);
    let helper_id: u64 = added.json().await.unwrap();
    let helper = app.client();
    let signed_in = app
        .login(&helper, "helper@example.com", "helper passphrase 1")
        .await;
    assert_eq!(signed_in.status(), 200);
    let own = rpc(
        &helper,
        "admin-remove",
        &[("admin_id", helper_id.to_string().as_str())],
    )
    .await
    .unwrap();
    assert_eq!(own.status(), 409);
    let removed = rpc(
        &owner,
        "admin-remove",
        &[("admin_id", helper_id.to_string().as_str())],
    )
    .await
    .unwrap();
    assert_eq!(removed.status(), 200);
    assert_eq!(rpc(&helper, "settings", &[]).await.unwrap().status(), 401);

    // A token works on the REST API until it is revoked; its secret is in the answer once.
    let token: Value = rpc(&owner, "token-create", &[("name", "Shop")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = token["secret"].as_str().unwrap().to_owned();
    let with_token = || {
        anonymous
            .get(app.url("/api/v1/products"))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(with_token().await.unwrap().status(), 200);
    let token_id = token["id"].as_u64().unwrap().to_string();
    assert_eq!(
        rpc(&owner, "token-revoke", &[("token_id", token_id.as_str())])
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(with_token().await.unwrap().status(), 401);
    let listed: Value = rpc(&owner, "access", &[])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed"
    );

    // The own password: the current one is checked; the change keeps this session only.
    let other_session = app.client();
    app.login(&other_session, "owner@example.com", common::PASSWORD)
        .await;
    let wrong = rpc(
        &owner,
        "password-change",
        &[
            ("current", "not my password"),
            ("password", "a fresh passphrase"),
            ("confirm", "a fresh passphrase"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    let changed = rpc(
        &owner,
        "password-change",
        &[
            ("current", common::PASSWORD),
            ("password", "a fresh passphrase"),
            ("confirm", "a fresh passphrase"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(rpc(&owner, "settings", &[]).await.unwrap().status(), 200);
    assert_eq!(
        rpc(&other_session, "settings", &[]).await.unwrap().status(),
        401
    );

    let audit: Value = rpc(&owner, "audit", &[("target", "")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "settings.update",
        "admin.create",
        "admin.remove",
        "api_token.create",
        "api_token.revoke",
        "admin.password",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    app.stop().await;
}
