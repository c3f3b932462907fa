//! The buyer's pages over HTTP: plain HTML with no WASM or script file, in the order's
//! language, else the browser's, else the store's; dates in the store's time zone, named,
//! with "in N days"; the library's sign-in rules (single use, expiry, session, another
//! buyer's purchase refused).

use crate::common::{Shop, TestApp};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

/// Sets the store's default language and time zone through the admin's server function.
async fn store_settings(app: &TestApp, language: &str, zone: &str) -> (StatusCode, String) {
    let admin = app.create_first_admin("owner@example.com").await;
    let r = admin
        .post(app.url("/rpc/settings-save"))
        .json(&json!({"input": {
            "store_name": "Pixel Press", "sender_name": "", "sender_email": "",
            "reset_days": 31, "ip_retention_days": 90, "event_retention_days": 365,
            "default_language": language, "time_zone": zone,
        }}))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn page(
    app: &TestApp,
    path: &str,
    accept_language: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(l) = accept_language {
        request = request.header(header::ACCEPT_LANGUAGE, l);
    }
    let r = request.send().await.unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

async fn order(shop: &Shop, email: &str, language: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({"email": email, "product_ids": ["ebook"]});
    if let Some(l) = language {
        body["language"] = json!(l);
    }
    shop.call(Method::POST, "/api/v1/orders", Some(body)).await
}

fn path_of(url: &str) -> String {
    url[url.find("/d/").unwrap()..].to_owned()
}

#[tokio::test]
async fn buyer_pages_speak_the_buyers_language_and_load_no_wasm() {
    let shop = Shop::open().await;
    let (status, body) = store_settings(&shop.app, "fr", "Europe/Berlin").await;
    assert_eq!(status, 200, "{body}");
    shop.product_with_file(
        json!({"product_id": "ebook", "name": "Das Buch", "max_downloads": 3, "download_days": 12}),
        "buch.pdf",
        b"pages",
    )
    .await;

    let (status, german) = order(&shop, "dora@example.com", Some("de-AT")).await;
    assert_eq!(status, StatusCode::CREATED, "{german}");
    assert_eq!(german["language"], "de");
    let link = path_of(german["issued"][0]["url"].as_str().unwrap());
    // The order's language wins over the browser's.
    let (status, headers, html) = page(&shop.app, &link, Some("es, en;q=0.5")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.starts_with("<!DOCTYPE html><html lang=\"de\">"),
        "{html}"
    );
    assert!(html.contains("buch.pdf herunterladen"), "{html}");
    assert!(html.contains("noch 3 von 3 Downloads"), "{html}");
    // Twelve days from now, in Berlin time ("Uhr"), with the distance beside it.
    assert!(
        html.contains("Uhr</time> (in 11 Tagen)") || html.contains("Uhr</time> (in 12 Tagen)"),
        "{html}"
    );
    assert!(
        html.contains("<span data-zone>Europe/Berlin</span>"),
        "{html}"
    );
    // No admin bundle and no script file: one inline script, allowed by its hash only.
    assert!(
        !html.contains(".wasm")
            && !html.contains("/pkg/dropgate.js")
            && !html.contains("script src"),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1);
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(html.len() < 8 * 1024, "{} bytes", html.len());

    // No order language: the browser's; none the store ships: the store's default.
    let (_, plain) = order(&shop, "sam@example.com", None).await;
    assert!(plain["language"].is_null());
    let link = path_of(plain["issued"][0]["url"].as_str().unwrap());
    let (_, _, spanish) = page(&shop.app, &link, Some("pt-BR, es;q=0.8")).await;
    assert!(
        spanish.contains("lang=\"es\"") && spanish.contains("Descargar buch.pdf"),
        "{spanish}"
    );
    let (_, _, french) = page(&shop.app, &link, Some("ja")).await;
    assert!(
        french.contains("lang=\"fr\"") && french.contains("Télécharger buch.pdf"),
        "{french}"
    );
    let (_, _, english) = page(&shop.app, &link, Some("en-GB")).await;
    assert!(
        english.contains("Download buch.pdf") && english.contains("(in 1"),
        "{english}"
    );

    // An unknown link, in the browser's language, with the right status.
    let (status, _, unknown) = page(&shop.app, "/d/AAAA-BBBB-CCCC-DDDD-EEEE", Some("de")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        unknown.contains("Dieser Download-Link ist nicht gültig"),
        "{unknown}"
    );

    // The self-service page: both forms, in the browser's language.
    let (status, _, resend) = page(&shop.app, "/resend", Some("es")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        resend.contains("Recibir enlaces de descarga nuevos")
            && resend.contains("value=\"library\""),
        "{resend}"
    );

    // A language the API does not know is refused and creates nothing.
    let (status, refused) = order(&shop, "kim@example.com", Some("klingon")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused.to_string().contains("en, de, fr or es"),
        "{refused}"
    );
    let (_, found) = shop
        .call(Method::GET, "/api/v1/orders?email=kim@example.com", None)
        .await;
    assert_eq!(found.as_array().map(Vec::len), Some(0), "{found}");
}

#[tokio::test]
async fn an_unknown_time_zone_is_refused_and_changes_nothing() {
    let app = crate::common::spawn_app().await;
    let (status, body) = store_settings(&app, "de", "Mars/Olympus_Mons").await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("not a time zone"), "{body}");
    let (_, _, resend) = page(&app, "/resend", None).await;
    assert!(
        resend.contains("lang=\"en\""),
        "the default language did not change: {resend}"
    );
}

#[tokio::test]
async fn the_library_refuses_without_a_session_and_a_bad_sign_in_link() {
    let app = crate::common::spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(app.url("/library")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/resend?library=ended");
    let r = client
        .get(app.url("/library"))
        .header(header::COOKIE, "dropgate_library=00ff")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/resend?library=ended");
    let r = client
        .get(app.url("/library/sign-in?token=made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/resend?library=invalid");
    let r = client
        .post(app.url("/library/sign-in"))
        .form(&[("token", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/resend?library=invalid");
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    let r = client
        .post(app.url("/library/open"))
        .form(&[("grant", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/resend?library=ended");
    let (_, _, html) = page(&app, "/resend?library=invalid", Some("fr")).await;
    assert!(html.contains("Ce lien de connexion a déjà servi"), "{html}");
}
