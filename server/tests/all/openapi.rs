//! The OpenAPI document at /api/v1/openapi.json: every documented operation exists (it asks
//! for a token rather than answering 404/405), every reference resolves, and the schemas
//! name exactly the fields the API really returns.

use crate::common;

use common::{Shop, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn concrete(path: &str) -> String {
    path.replace("{product_id}", "ebook")
        .replace("{order_id}", "1234567")
        .replace("{grant_id}", "1")
        .replace("{file}", "1")
}

/// The property names of a schema, following `allOf` (serde's `flatten`) and references.
fn schema_fields(doc: &Value, name: &str) -> BTreeSet<String> {
    fields_of(doc, &doc["components"]["schemas"][name])
}

fn fields_of(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return schema_fields(doc, name);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        return parts.iter().flat_map(|p| fields_of(doc, p)).collect();
    }
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("a schema without properties: {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn document(app: &common::TestApp) -> Value {
    let response = reqwest::get(app.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    if std::env::var_os("DUMP_OPENAPI").is_some() {
        std::fs::write(
            "/tmp/openapi.json",
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
    }
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_token"]["scheme"],
        "bearer"
    );
    doc
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_reference_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    // Every operation the API contract (DESIGN.md section 3) names is documented...
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    for expected in [
        "POST /api/v1/products",
        "GET /api/v1/products",
        "GET /api/v1/products/{product_id}",
        "PATCH /api/v1/products/{product_id}",
        "DELETE /api/v1/products/{product_id}",
        "PUT /api/v1/products/{product_id}/files/{file}",
        "DELETE /api/v1/products/{product_id}/files/{file}",
        "POST /api/v1/products/{product_id}/send-password",
        "POST /api/v1/orders",
        "GET /api/v1/orders",
        "GET /api/v1/orders/{order_id}",
        "PATCH /api/v1/orders/{order_id}",
        "POST /api/v1/orders/{order_id}/refund",
        "POST /api/v1/orders/{order_id}/exchange",
        "POST /api/v1/grants/lookup",
        "GET /api/v1/grants/{grant_id}",
        "POST /api/v1/grants/{grant_id}/reset",
        "POST /api/v1/grants/{grant_id}/unblock",
        "POST /api/v1/grants/{grant_id}/expire",
        "POST /api/v1/grants/{grant_id}/resend",
        "GET /api/v1/audit",
    ] {
        assert!(
            operations.contains(expected),
            "{expected} is not documented"
        );
    }
    // ...and every documented operation is served: without a token it asks for one.
    let client = reqwest::Client::new();
    for operation in &operations {
        let (method, path) = operation.split_once(' ').unwrap();
        let r = client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete(path)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{operation}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{operation}");
    }

    // Every reference points at a schema that exists.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} is missing"
        );
    }

    app.stop().await;
}

#[tokio::test]
async fn the_schemas_name_exactly_the_fields_real_answers_carry() {
    let shop = Shop::open().await;
    let doc = document(&shop.app).await;
    let (_, product) = shop
        .call(
            Method::POST,
            "/api/v1/products",
            Some(json!({"product_id": "ebook", "name": "E-book", "max_downloads": 3, "download_days": 0})),
        )
        .await;
    assert_eq!(keys(&product), schema_fields(&doc, "ProductView"));
    let file: Value = shop
        .api(Method::PUT, "/api/v1/products/ebook/files/book.pdf")
        .body("pdf bytes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys(&file), schema_fields(&doc, "FileView"));
    let (_, order) = shop
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"email": "ann@example.com", "product_ids": ["ebook"]})),
        )
        .await;
    assert_eq!(keys(&order), schema_fields(&doc, "CreatedOrder"));
    assert_eq!(
        keys(&order["issued"][0]),
        schema_fields(&doc, "IssuedGrant")
    );
    let (_, found) = shop
        .call(
            Method::POST,
            "/api/v1/grants/lookup",
            Some(json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!(keys(&found[0]), schema_fields(&doc, "GrantDetail"));
    let (_, audit) = shop.call(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(keys(&audit[0]), schema_fields(&doc, "AuditEntry"));
    shop.app.stop().await;
}

/// The document declares the constraints the API enforces, at their very boundary: a
/// client generated from it (or a fuzzer) builds requests the API accepts, and what the
/// document allows one step past the limit the API refuses.
#[tokio::test]
async fn the_documented_limits_are_the_enforced_ones() {
    let shop = Shop::open().await;
    let doc = document(&shop.app).await;
    let schema =
        |name: &str, field: &str| doc["components"]["schemas"][name]["properties"][field].clone();
    let product_id = schema("NewProduct", "product_id");
    assert_eq!(product_id["maxLength"], 64);
    assert!(
        product_id["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^[a-z0-9]")
    );
    assert_eq!(schema("NewProduct", "name")["maxLength"], 200);
    assert_eq!(schema("NewOrder", "email")["format"], "email");
    assert_eq!(schema("NewOrder", "product_ids")["minItems"], 1);
    assert_eq!(schema("NewOrder", "transaction_id")["maxLength"], 128);
    assert!(
        schema("NewOrder", "status")["pattern"]
            .as_str()
            .unwrap()
            .contains("on_hold")
    );
    assert_eq!(
        schema("GrantLookup", "order_id")["pattern"],
        "^[1-9][0-9]{6}$"
    );
    assert_eq!(
        schema("GrantLookup", "order_number")["pattern"],
        "^[0-9]{17}$"
    );

    let create = |id: String, name: String| {
        let shop = &shop;
        async move {
            shop.call(
                Method::POST,
                "/api/v1/products",
                Some(json!({"product_id": id, "name": name})),
            )
            .await
            .0
        }
    };
    assert_eq!(
        create("a".repeat(64), "n".repeat(200)).await,
        StatusCode::CREATED
    );
    assert_eq!(
        create("b".repeat(65), "Book".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        create("c".into(), "n".repeat(201)).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        create("-d".into(), "Book".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let order = |body: Value| {
        let shop = &shop;
        async move {
            shop.call(Method::POST, "/api/v1/orders", Some(body))
                .await
                .0
        }
    };
    let product = "a".repeat(64);
    assert_eq!(
        order(json!({"email": "ann@example.com", "product_ids": [], })).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        order(json!({"email": "ann@example.com", "product_ids": [product], "transaction_id": "t".repeat(129)})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        order(json!({"email": "ann@example.com", "product_ids": [product], "transaction_id": "t".repeat(128), "status": "on_hold"})).await,
        StatusCode::CREATED
    );
    shop.app.stop().await;
}
