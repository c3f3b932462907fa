//! Mail against a real SMTP server (aiosmtpd, started here on 127.0.0.1 and stopped after):
//! the purchase mail and the seller's notification with working links, retries after a
//! temporary refusal with the same Message-ID, permanent failures and "retry now", mail
//! that waits without SMTP and goes out after a restart with SMTP, an interrupted send
//! repeated once after a restart, the desk's resend and send-new-password mails, header
//! safety, an SMTP server that is down or hangs, and the self-service page (bot checks,
//! limits, one order, and timing that does not reveal known addresses).

#![allow(clippy::too_many_lines)]

use crate::common;

use backend::mail::worker::SmtpSecurity;
use common::{TestApp, api_token, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::{SmtpConfig, StorageLocation};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running aiosmtpd; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received message, decoded by Python's email package in the sink.
#[derive(Debug)]
struct Received {
    /// The bytes as received.
    raw: String,
    envelope_to: Vec<String>,
    headers: Vec<(String, String)>,
    text: String,
    html: String,
}

impl Received {
    /// A header's decoded value (first occurrence).
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// The plain-text part, with the line ends the template had.
    fn text(&self) -> String {
        self.text.replace("\r\n", "\n")
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How Dropgate reaches a plain SMTP server on 127.0.0.1:`port`.
fn smtp_on(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Tiny Shop <shop@example.com>".into(),
    }
}

impl SmtpSink {
    async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (cargo xtask test installs aiosmtpd)");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port, dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start: pip install aiosmtpd");
    }

    fn config(&self) -> SmtpConfig {
        smtp_on(self.port)
    }

    fn control(&self, name: &str, content: Option<&str>) {
        let path = self.dir.path().join(name);
        match content {
            Some(c) => std::fs::write(path, c).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let envelope: Value = serde_json::from_str(
                    &std::fs::read_to_string(p.with_extension("json")).unwrap(),
                )
                .unwrap();
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect()
                };
                Received {
                    raw: std::fs::read_to_string(&p).unwrap(),
                    envelope_to: strings(&envelope["to"]),
                    headers: envelope["headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| {
                            let pair = strings(h);
                            (pair[0].clone(), pair[1].clone())
                        })
                        .collect(),
                    text: envelope["text"].as_str().unwrap().to_owned(),
                    html: envelope["html"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mails, got {}", self.received().len());
    }
}

/// An app that sends its mail to `sink`, retrying soon.
async fn app_mailing_to(sink: &SmtpSink) -> TestApp {
    spawn_app_with(|c| {
        c.smtp = Some(sink.config());
        fast_retries(c);
    })
    .await
}

fn fast_retries(config: &mut server::Config) {
    config.mail_policy.retry.first_delay = Duration::from_millis(300);
    config.mail_policy.poll = Duration::from_millis(100);
    config.mail_policy.send_timeout = Duration::from_secs(5);
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    common::call_api(app, token, method, path, Some(body)).await
}

/// A product with one small file.
async fn product(app: &TestApp, token: &str) {
    common::product_with_file(
        app,
        token,
        json!({"product_id": "ebook", "name": "The Rust Book", "max_downloads": 3, "download_days": 31}),
        "book.pdf",
        &[7u8; 500],
    )
    .await;
}

async fn order(app: &TestApp, token: &str, email: &str, extra: Value) -> Value {
    let mut body = json!({"email": email, "name": "Bea Buyer", "product_ids": ["ebook"], "transaction_id": format!("PAY-{email}")});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = call(app, token, Method::POST, "/api/v1/orders", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn page_status(url: &str) -> StatusCode {
    reqwest::get(url).await.unwrap().status()
}

async fn rpc(
    client: &reqwest::Client,
    app: &TestApp,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Value {
    let r = client
        .post(app.url(&format!("/rpc/{endpoint}")))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{endpoint}");
    r.json().await.unwrap()
}

/// The outbox as the admin sees it.
async fn outbox(client: &reqwest::Client, app: &TestApp) -> Vec<Value> {
    rpc(client, app, "outbox", &[("state", "")]).await["mails"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls the outbox until the newest mail to `to` is in `state`.
async fn wait_state(client: &reqwest::Client, app: &TestApp, to: &str, state: &str) -> Value {
    for _ in 0..150 {
        if let Some(m) = outbox(client, app)
            .await
            .into_iter()
            .find(|m| m["to"].as_str().unwrap().contains(to))
            && m["state"] == state
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no mail to {to} reached {state}: {:?}",
        outbox(client, app).await
    );
}

#[tokio::test]
async fn purchase_mail_reaches_buyer_and_seller_with_working_links() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let created = order(&app, &token, "bea@example.com", json!({})).await;
    let url = created["issued"][0]["url"].as_str().unwrap().to_owned();
    let order_id = created["order_id"].as_u64().unwrap().to_string();

    let mails = sink.wait_for(2).await;
    let buyer = mails
        .iter()
        .find(|m| m.envelope_to == ["bea@example.com"])
        .expect("buyer mail");
    let seller = mails
        .iter()
        .find(|m| m.envelope_to == ["shop@example.com"])
        .expect("seller mail");
    assert_eq!(
        buyer.header("Subject").unwrap(),
        "Your download from My download store"
    );
    assert!(
        buyer
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(buyer.header("Message-ID").unwrap().ends_with("@127.0.0.1>"));
    assert!(buyer.header("From").unwrap().contains("shop@example.com"));
    let text = buyer.text();
    assert!(
        text.contains(&url),
        "the buyer's mail holds the link: {text}"
    );
    assert!(text.contains("3 downloads, until"));
    assert!(text.contains(&app.url("/resend")));
    assert_eq!(page_status(&url).await, StatusCode::OK);
    let notice = seller.text();
    assert!(seller.header("Subject").unwrap().contains(&order_id));
    assert!(notice.contains(&url) && notice.contains("PAY-bea@example.com"));

    // The outbox shows both as sent with the server's answer.
    let admin = app.create_first_admin("owner@example.com").await;
    let sent = wait_state(&admin, &app, "bea@example.com", "sent").await;
    let detail = rpc(&admin, &app, "mail", &[("id", &sent["id"].to_string())]).await;
    assert!(detail["server_reply"].as_str().unwrap().starts_with("250"));
    assert_eq!(
        detail["message_id"].as_str().unwrap(),
        buyer.header("Message-ID").unwrap()
    );
    // Sent, the stored copy shows which link went out but no longer holds a working one.
    let stored = detail["text"].as_str().unwrap();
    assert!(
        !stored.contains(&url),
        "a sent mail keeps a live link: {stored}"
    );
    let cut = format!("{}…", &url[..url.find("/d/").unwrap() + 7]);
    assert!(stored.contains(&cut), "{stored}");
    assert!(!detail["html"].as_str().unwrap().contains(&url));

    // The desk's resend mails the new link; the old one stops working.
    let grant = created["issued"][0]["grant_id"].as_u64().unwrap();
    let (status, issued) = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/grants/{grant}/resend"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let new_url = issued["url"].as_str().unwrap();
    let mails = sink.wait_for(3).await;
    assert!(mails[2].text().contains(new_url));
    assert_eq!(
        mails[2].header("Subject").unwrap(),
        "Your new download link from My download store"
    );
    assert_eq!(page_status(&url).await, StatusCode::NOT_FOUND);
    assert_eq!(page_status(new_url).await, StatusCode::OK);

    // Send new password reaches any address, without a seller notification.
    let (status, comp) = call(
        &app,
        &token,
        Method::POST,
        "/api/v1/products/ebook/send-password",
        json!({"email": "friend@example.org", "name": "Fred"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{comp}");
    let mails = sink.wait_for(4).await;
    assert_eq!(mails[3].envelope_to, ["friend@example.org"]);
    assert!(
        mails[3]
            .text()
            .contains(comp["issued"][0]["url"].as_str().unwrap())
    );
    assert!(mails[3].text().contains("Hello Fred,"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        4,
        "no seller notice for a complimentary grant"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_with_the_same_message_id() {
    let sink = SmtpSink::start().await;
    sink.control("fail-next", Some("2"));
    let app = app_mailing_to(&sink).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    order(&app, &token, "bea@example.com", json!({})).await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "each mail delivered once");
    let m = wait_state(&admin, &app, "bea@example.com", "sent").await;
    let detail = rpc(&admin, &app, "mail", &[("id", &m["id"].to_string())]).await;
    let received = mails
        .iter()
        .find(|r| r.envelope_to == ["bea@example.com"])
        .unwrap();
    assert_eq!(
        detail["message_id"].as_str().unwrap(),
        received.header("Message-ID").unwrap()
    );
    // The buyer's mail and the seller's notice were each refused once (451), then accepted.
    wait_state(&admin, &app, "shop@example.com", "sent").await;
    for m in outbox(&admin, &app).await {
        assert_eq!(m["attempts"], 2, "{m}");
        assert!(m["last_error"].as_str().unwrap().contains("451"), "{m}");
    }
    assert!(received.html.contains("<a href="));
    app.stop().await;
}

#[tokio::test]
async fn a_permanent_refusal_fails_shows_on_the_dashboard_and_retry_now_sends_it() {
    let sink = SmtpSink::start().await;
    sink.control("reject", Some(""));
    let app = app_mailing_to(&sink).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let created = order(&app, &token, "bea@example.com", json!({})).await;
    let old_url = created["issued"][0]["url"].as_str().unwrap().to_owned();
    let failed = wait_state(&admin, &app, "bea@example.com", "failed").await;
    // Settled: the stored copy no longer holds a working link.
    let detail = rpc(&admin, &app, "mail", &[("id", &failed["id"].to_string())]).await;
    let stored = detail["text"].as_str().unwrap();
    assert!(!stored.contains(&old_url), "{stored}");
    assert!(stored.contains(&format!(
        "{}…",
        &old_url[..old_url.find("/d/").unwrap() + 7]
    )));
    assert!(
        failed["last_error"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    assert_eq!(failed["attempts"], 1, "a permanent refusal is not retried");
    wait_state(&admin, &app, "shop@example.com", "failed").await;
    let dashboard = rpc(&admin, &app, "dashboard", &[]).await;
    assert_eq!(dashboard["mails_failed"], 2);
    let only_failed = rpc(&admin, &app, "outbox", &[("state", "failed")]).await;
    assert_eq!(only_failed["mails"].as_array().unwrap().len(), 2);
    assert!(sink.received().is_empty());

    sink.control("reject", None);
    let retried = rpc(
        &admin,
        &app,
        "mail-retry",
        &[("id", &failed["id"].to_string())],
    )
    .await;
    assert_eq!(retried["state"], "retrying");
    wait_state(&admin, &app, "bea@example.com", "sent").await;
    let sent = &sink.wait_for(1).await[0];
    assert_eq!(sent.envelope_to, ["bea@example.com"]);
    // Sent again with a fresh link, which works; the one that never arrived does not.
    let new_url = links_in(sent).pop().expect("the mail carries a link");
    assert_ne!(new_url, old_url);
    assert_eq!(page_status(&new_url).await, StatusCode::OK);
    assert_eq!(page_status(&old_url).await, StatusCode::NOT_FOUND);
    // A sent mail is not sent twice.
    let again = admin
        .post(app.url("/rpc/mail-retry"))
        .form(&[("id", failed["id"].to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn without_smtp_mail_waits_readable_and_goes_out_after_a_restart_with_smtp() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let same_dir = move |c: &mut server::Config| {
        c.data_dir.clone_from(&dir);
        c.storage = StorageLocation::Local(dir.join("files"));
    };
    let app = spawn_app_with(same_dir.clone()).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let created = order(&app, &token, "bea@example.com", json!({})).await;
    let url = created["issued"][0]["url"].as_str().unwrap().to_owned();
    let waiting = wait_state(&admin, &app, "bea@example.com", "not_configured").await;
    let detail = rpc(&admin, &app, "mail", &[("id", &waiting["id"].to_string())]).await;
    assert!(detail["text"].as_str().unwrap().contains(&url));
    assert!(
        detail["html"]
            .as_str()
            .unwrap()
            .contains(&format!("<a href=\"{url}\">"))
    );
    let dashboard = rpc(&admin, &app, "dashboard", &[]).await;
    assert_eq!(dashboard["smtp_configured"], false);
    assert_eq!(
        dashboard["mails_waiting"], 1,
        "no seller address: only the buyer's mail"
    );
    // A test mail waits too.
    let test = rpc(&admin, &app, "mail-test", &[("email", "me@example.com")]).await;
    assert_eq!(test["state"], "not_configured");
    app.stop().await;

    let sink = SmtpSink::start().await;
    let config = sink.config();
    let app = spawn_app_with(move |c| {
        same_dir(c);
        c.smtp = Some(config);
        fast_retries(c);
    })
    .await;
    let mails = sink.wait_for(2).await;
    let to: Vec<_> = mails.iter().map(|m| m.envelope_to[0].clone()).collect();
    assert!(
        to.contains(&"bea@example.com".to_owned()) && to.contains(&"me@example.com".to_owned()),
        "{to:?}"
    );
    assert!(mails.iter().any(|m| m.text().contains(&url)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.received().len(),
        2,
        "each mail once (plus the seller notice was never queued)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_send_cut_off_by_a_stop_is_sent_again_once_with_the_same_message_id() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let sink = SmtpSink::start().await;
    sink.control("hang", Some(""));
    let same = {
        let dir = dir.clone();
        let config = sink.config();
        move |c: &mut server::Config| {
            c.data_dir.clone_from(&dir);
            c.storage = StorageLocation::Local(dir.join("files"));
            c.smtp = Some(config.clone());
            fast_retries(c);
            c.mail_policy.send_timeout = Duration::from_secs(30);
        }
    };
    let app = spawn_app_with(same.clone()).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    // A pending order sends nothing; confirming it sends the buyer's mail.
    let created = order(
        &app,
        &token,
        "bea@example.com",
        json!({"status": "pending"}),
    )
    .await;
    let order_id = created["order_id"].as_u64().unwrap();
    let old_url = created["issued"][0]["url"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(outbox(&admin, &app).await.is_empty());
    let (status, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/orders/{order_id}"),
        json!({"status": "confirmed"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sending = wait_state(&admin, &app, "bea@example.com", "sending").await;
    // The process stops in the middle of the SMTP conversation (as a crash would).
    app.stop().await;
    sink.control("hang", None);

    let app = spawn_app_with(same).await;
    sink.wait_for(2).await; // the buyer's mail and the seller's notice
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_buyer: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| m.envelope_to == ["bea@example.com"])
        .collect();
    assert_eq!(to_buyer.len(), 1, "delivered once after the restart");
    let admin = app.client();
    let r = app
        .login(&admin, "owner@example.com", common::PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
    let detail = rpc(&admin, &app, "mail", &[("id", &sending["id"].to_string())]).await;
    assert_eq!(detail["summary"]["state"], "sent");
    assert_eq!(detail["summary"]["attempts"], 2);
    assert_eq!(
        detail["message_id"].as_str().unwrap(),
        to_buyer[0].header("Message-ID").unwrap()
    );
    // Confirming gave fresh links: the one from the pending order's answer is replaced.
    let text = to_buyer[0].text();
    let path = |url: &str| url[url.find("/d/").unwrap()..].to_owned();
    let new_path = path(text.lines().find(|l| l.contains("/d/")).unwrap().trim());
    assert_ne!(new_path, path(&old_url));
    // The links name the first run's port; this run listens on another.
    assert_eq!(page_status(&app.url(&new_path)).await, StatusCode::OK);
    assert_eq!(
        page_status(&app.url(&path(&old_url))).await,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn names_cannot_add_headers_and_every_mail_has_one_recipient() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    // Line breaks in a name or an address are refused before anything is written.
    for (field, value) in [
        ("name", "Eve\r\nBcc: victim@example.net"),
        ("email", "eve@example.com\r\nBcc: victim@example.net"),
    ] {
        let mut body = json!({"email": "eve@example.com", "name": "Eve", "product_ids": ["ebook"]});
        body[field] = json!(value);
        let (status, error) = call(&app, &token, Method::POST, "/api/v1/orders", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {error}");
    }
    // Header-like text that is allowed stays inside its own, encoded header.
    let (status, _) = call(&app, &token, Method::POST, "/api/v1/orders", json!({"email": "eve@example.com", "name": "Eve \"Bcc: victim@example.net\" <x@y>", "product_ids": ["ebook"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let mails = sink.wait_for(2).await; // the buyer's mail and the seller's notice
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 2);
    for m in &mails {
        assert_eq!(m.envelope_to.len(), 1);
        let head = m.raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        assert!(m.header("Bcc").is_none());
    }
    let buyer = mails
        .iter()
        .find(|m| m.envelope_to == ["eve@example.com"])
        .unwrap();
    let to = buyer.header("To").unwrap();
    assert!(
        to.ends_with("<eve@example.com>") && to.contains("Bcc: victim@example.net"),
        "{to}"
    );
    app.stop().await;
}

/// The SMTP server is down while orders arrive: the mails wait in the outbox with the
/// connection error, and once it is back every one arrives, exactly once.
#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_once_when_it_is_back() {
    const ORDERS: usize = 5;
    let port = free_port();
    let app = spawn_app_with(|c| {
        c.smtp = Some(smtp_on(port));
        fast_retries(c);
    })
    .await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    for n in 0..ORDERS {
        order(&app, &token, &format!("buyer{n}@example.com"), json!({})).await;
    }
    for n in 0..ORDERS {
        let waiting = wait_state(&admin, &app, &format!("buyer{n}@example.com"), "retrying").await;
        assert!(
            waiting["last_error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{waiting}"
        );
    }

    let sink = SmtpSink::start_on(port).await;
    let expected = ORDERS * 2; // each buyer's mail and the seller's notice
    sink.wait_for(expected).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = sink.received();
    assert_eq!(received.len(), expected, "nothing arrives twice");
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), expected, "every mail is its own message");
    for n in 0..ORDERS {
        let to = format!("buyer{n}@example.com");
        assert_eq!(
            received
                .iter()
                .filter(|m| m.envelope_to == [to.as_str()])
                .count(),
            1,
            "{to}"
        );
    }
    assert!(
        outbox(&admin, &app)
            .await
            .iter()
            .all(|m| m["state"] == "sent" && m["attempts"].as_u64() > Some(1))
    );
    app.stop().await;
}

/// A server that accepts the connection and then never answers is timed out; the mail is
/// retried and sent once the server behaves.
#[tokio::test]
async fn a_server_that_hangs_is_timed_out_and_the_mail_retried() {
    let sink = SmtpSink::start().await;
    sink.control("hang", Some(""));
    let app = spawn_app_with(|c| {
        c.smtp = Some(sink.config());
        fast_retries(c);
        c.mail_policy.send_timeout = Duration::from_secs(1);
    })
    .await;
    let admin = app.create_first_admin("owner@example.com").await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    order(&app, &token, "bea@example.com", json!({})).await;
    let retrying = wait_state(&admin, &app, "bea@example.com", "retrying").await;
    let error = retrying["last_error"].as_str().unwrap();
    assert!(error.contains("no answer from SMTP 127.0.0.1"), "{error}");

    sink.control("hang", None);
    let sent = wait_state(&admin, &app, "bea@example.com", "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() >= 2, "{sent}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_buyer = sink
        .received()
        .into_iter()
        .filter(|m| m.envelope_to == ["bea@example.com"])
        .count();
    assert_eq!(to_buyer, 1, "the timed-out attempt delivered nothing");
    app.stop().await;
}

/// TLS settings against a server that speaks plain SMTP: the mail waits with an error that
/// names the problem (the sessions are opened on a socket of our own, so these paths are
/// ours to get right), and nothing is sent in the clear.
#[tokio::test]
async fn tls_settings_against_a_plain_server_say_why_and_send_nothing() {
    let sink = SmtpSink::start().await;
    for (security, expected) in [
        (SmtpSecurity::Tls, "TLS with SMTP localhost"),
        (SmtpSecurity::StartTls, "STARTTLS"),
    ] {
        let mut smtp = sink.config();
        smtp.host = "localhost".into();
        smtp.security = security;
        let app = spawn_app_with(|c| {
            c.smtp = Some(smtp);
            fast_retries(c);
        })
        .await;
        let admin = app.create_first_admin("owner@example.com").await;
        let token = api_token(&app).await;
        product(&app, &token).await;
        order(&app, &token, "bea@example.com", json!({})).await;
        let waiting = wait_state(&admin, &app, "bea@example.com", "retrying").await;
        let error = waiting["last_error"].as_str().unwrap();
        assert!(error.contains(expected), "{security:?}: {error}");
        app.stop().await;
    }
    assert!(sink.received().is_empty(), "nothing went out unencrypted");
}

/// The self-service page's signed "shown at" stamp, as a browser gets it with the form.
async fn form_stamp(app: &TestApp) -> String {
    let html = reqwest::get(app.url("/resend"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let from = html
        .find("name=\"shown\" value=\"")
        .expect("the form carries a stamp")
        + 20;
    html[from..from + html[from..].find('"').unwrap()].to_owned()
}

/// `n` stamps, one per page load, as a person gets one with each form they open.
async fn form_stamps(app: &TestApp, n: usize) -> Vec<String> {
    let mut stamps = Vec::with_capacity(n);
    for _ in 0..n {
        stamps.push(form_stamp(app).await);
    }
    stamps
}

/// Self-service limits for tests: the shop's defaults with a short minimum fill time.
fn quick_form(config: &mut server::Config) {
    config.self_service.min_fill = Duration::from_millis(1500);
}

/// An app mailing to `sink` with the self-service form's test limits.
async fn self_service_app(sink: &SmtpSink) -> TestApp {
    spawn_app_with(|c| {
        c.smtp = Some(sink.config());
        fast_retries(c);
        quick_form(c);
    })
    .await
}

/// Posts the self-service form; returns where it redirects and how long the answer took.
async fn ask_for_links(app: &TestApp, fields: &[(&str, &str)]) -> (String, Duration) {
    let started = Instant::now();
    let r = app
        .client()
        .post(app.url("/resend"))
        .form(fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    (
        r.headers()["location"].to_str().unwrap().to_owned(),
        started.elapsed(),
    )
}

/// The download links in a mail's plain text.
fn links_in(mail: &Received) -> Vec<String> {
    mail.text()
        .lines()
        .filter(|l| l.contains("/d/"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn self_service_mails_fresh_links_and_answers_the_same_for_unknown_addresses() {
    let sink = SmtpSink::start().await;
    let app = self_service_app(&sink).await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let first = order(&app, &token, "bea@example.com", json!({})).await;
    let second = order(
        &app,
        &token,
        "bea@example.com",
        json!({"transaction_id": "PAY-2"}),
    )
    .await;
    sink.wait_for(4).await; // two purchase mails, two seller notices
    let old = [
        first["issued"][0]["url"].as_str().unwrap().to_owned(),
        second["issued"][0]["url"].as_str().unwrap().to_owned(),
    ];

    let page = reqwest::get(app.url("/resend")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Get new download links") && html.contains("name=\"website\""));
    assert!(html.contains("name=\"order_id\""));

    // Sent straight after the page was shown: quicker than a person; nothing happens.
    let stamp = form_stamp(&app).await;
    let (quick, _) = ask_for_links(&app, &[("email", "bea@example.com"), ("shown", &stamp)]).await;
    assert_eq!(quick, "/resend?error=quick");
    let page = reqwest::get(app.url(&quick))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("wait a moment"), "the page explains it");
    // Each stamp is good for one post: a person opens the form again for another.
    let mut fresh = form_stamps(&app, 12).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let (known, known_took) =
        ask_for_links(&app, &[("email", "Bea@Example.com"), ("shown", &stamp)]).await;
    // The same stamp again (a script replaying one page): answered as usual, not acted on.
    let (replayed, _) =
        ask_for_links(&app, &[("email", "bea@example.com"), ("shown", &stamp)]).await;
    assert_eq!(replayed, "/resend?sent=1");
    let (unknown, unknown_took) = ask_for_links(
        &app,
        &[
            ("email", "nobody@example.com"),
            ("shown", &fresh.pop().unwrap()),
        ],
    )
    .await;
    assert_eq!(known, "/resend?sent=1");
    assert_eq!(
        unknown, known,
        "the answer does not tell known from unknown"
    );
    for took in [known_took, unknown_took] {
        assert!(took >= Duration::from_millis(400), "{took:?}");
    }
    let mails = sink.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        5,
        "nothing is mailed to an unknown address, nor for a replayed stamp"
    );
    let links = &mails[4];
    assert_eq!(links.envelope_to, ["bea@example.com"]);
    assert_eq!(
        links.header("Subject").unwrap(),
        "Your download links from My download store"
    );
    let new = links_in(links);
    assert_eq!(new.len(), 2, "both purchases: {}", links.text());
    for url in &new {
        assert_eq!(page_status(url).await, StatusCode::OK);
    }
    for url in &old {
        assert_eq!(
            page_status(url).await,
            StatusCode::NOT_FOUND,
            "old links stop working"
        );
    }

    // With an order ID, only that purchase gets a new link; the other link keeps working.
    let second_id = second["order_id"].as_u64().unwrap().to_string();
    let (one, _) = ask_for_links(
        &app,
        &[
            ("email", "bea@example.com"),
            ("order_id", &second_id),
            ("shown", &fresh.pop().unwrap()),
        ],
    )
    .await;
    assert_eq!(one, "/resend?sent=1");
    let mails = sink.wait_for(6).await;
    let renewed = links_in(&mails[5]);
    assert_eq!(renewed.len(), 1, "{}", mails[5].text());
    assert_eq!(page_status(&renewed[0]).await, StatusCode::OK);
    let mut working = 0;
    for url in &new {
        if page_status(url).await == StatusCode::OK {
            working += 1;
        }
    }
    assert_eq!(working, 1, "the other purchase's link was left alone");

    // A bot filling the hidden field, and a post without the page's stamp, get the same
    // answer and nothing is sent.
    let (bot, _) = ask_for_links(
        &app,
        &[
            ("email", "bea@example.com"),
            ("website", "http://spam.example"),
            ("shown", &fresh.pop().unwrap()),
        ],
    )
    .await;
    assert_eq!(bot, "/resend?sent=1");
    let (script, _) = ask_for_links(&app, &[("email", "bea@example.com")]).await;
    assert_eq!(script, "/resend?sent=1");
    let last = if stamp.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &stamp[..stamp.len() - 1]);
    let (script, _) =
        ask_for_links(&app, &[("email", "bea@example.com"), ("shown", &forged)]).await;
    assert_eq!(script, "/resend?sent=1");
    // A malformed address or order ID is said to be one.
    for (fields, expected) in [
        (
            [
                ("email", "not an address"),
                ("order_id", ""),
                ("shown", &fresh.pop().unwrap()),
            ],
            "/resend?error=email",
        ),
        (
            [
                ("email", "bea@example.com"),
                ("order_id", "12345"),
                ("shown", &fresh.pop().unwrap()),
            ],
            "/resend?error=order",
        ),
    ] {
        assert_eq!(ask_for_links(&app, &fields).await.0, expected);
    }
    // Three requests for one address in an hour (known, one order, the bot's); the fourth
    // is refused, with words that say so.
    let (busy, _) = ask_for_links(
        &app,
        &[
            ("email", "bea@example.com"),
            ("shown", &fresh.pop().unwrap()),
        ],
    )
    .await;
    assert_eq!(busy, "/resend?error=busy");
    let page = reqwest::get(app.url(&busy))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Too many requests"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        6,
        "one mail for each request acted on"
    );
    // Another site cannot post the form.
    let r = app
        .client()
        .post(app.url("/resend"))
        .header("origin", "https://evil.example")
        .form(&[
            ("email", "bea@example.com"),
            ("shown", &fresh.pop().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // What Chromium sends for the page's own form under `Referrer-Policy: no-referrer`
    // (`Origin: null`) is accepted; a sibling site is not.
    for (site, expected) in [
        ("same-origin", StatusCode::SEE_OTHER),
        ("same-site", StatusCode::FORBIDDEN),
    ] {
        let r = app
            .client()
            .post(app.url("/resend"))
            .header("origin", "null")
            .header("sec-fetch-site", site)
            .form(&[
                ("email", "someone@example.com"),
                ("shown", &fresh.pop().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{site}");
    }
    app.stop().await;
}

/// Many interleaved samples of known and unknown addresses: the answers cannot be told
/// apart by their time. (Limits are raised here so that every sample does the full work.)
#[tokio::test]
async fn self_service_timing_does_not_reveal_known_addresses() {
    const SAMPLES: usize = 24;
    let app = spawn_app_with(|c| {
        c.self_service.min_fill = Duration::ZERO;
        c.self_service.per_email.max_failures = 1000;
        c.self_service.per_client.max_failures = 1000;
    })
    .await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let mut first_links = Vec::new();
    for n in 0..3 {
        let created = order(
            &app,
            &token,
            "known@example.com",
            json!({"transaction_id": format!("T-{n}")}),
        )
        .await;
        first_links.push(created["issued"][0]["url"].as_str().unwrap().to_owned());
    }
    let mut stamps = form_stamps(&app, 2 * SAMPLES).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..SAMPLES {
        let (to, took) = ask_for_links(
            &app,
            &[
                ("email", "known@example.com"),
                ("shown", &stamps.pop().unwrap()),
            ],
        )
        .await;
        assert_eq!(to, "/resend?sent=1");
        known.push(took);
        let stranger = format!("stranger{n}@example.com");
        let (to, took) = ask_for_links(
            &app,
            &[("email", &stranger), ("shown", &stamps.pop().unwrap())],
        )
        .await;
        assert_eq!(to, "/resend?sent=1");
        unknown.push(took);
    }
    for url in &first_links {
        assert_eq!(
            page_status(url).await,
            StatusCode::NOT_FOUND,
            "the known address was re-linked"
        );
    }
    known.sort();
    unknown.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    let (k, u) = (median(&known), median(&unknown));
    eprintln!(
        "median known {k:?}, unknown {u:?}; fastest {:?} / {:?}",
        known[0], unknown[0]
    );
    assert!(known[0] >= Duration::from_millis(400) && unknown[0] >= Duration::from_millis(400));
    // Each known request re-linked three purchases and queued a mail: a write transaction
    // and an fsync, hidden below the 400 ms floor.
    let gap = k.abs_diff(u);
    assert!(gap < Duration::from_millis(30), "medians differ by {gap:?}");
    app.stop().await;
}

#[tokio::test]
async fn templates_are_checked_with_their_line_previewed_and_used_for_new_mail() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let post_json = |endpoint: &str, body: Value| {
        admin
            .post(app.url(&format!("/rpc/{endpoint}")))
            .json(&body)
            .send()
    };
    let broken = json!({"subject": "Thanks, {{buyer_name}}", "text": "Hello\n\nyour {{linkz}}\n", "html": "<p>{{links}}</p>"});
    let r = post_json("mail-template-preview", json!({"source": broken}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["Invalid"]["field"], "text");
    let message = error["Invalid"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("line 3: unknown placeholder {{linkz}}"),
        "{message}"
    );
    let r = post_json(
        "mail-template-save",
        json!({"kind": "purchase", "source": broken}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let templates: Value = rpc(&admin, &app, "mail-templates", &[]).await;
    let purchase = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "purchase")
        .unwrap()
        .clone();
    assert_eq!(
        purchase["customised"], false,
        "a broken template saves nothing"
    );

    let good = json!({"subject": "Thanks, {{buyer_name}}!", "text": "Hi {{buyer_name}},\n{{links}}\n-- {{store_name}}", "html": "<p>{{links}}</p>"});
    let r = post_json("mail-template-preview", json!({"source": good}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let preview: Value = r.json().await.unwrap();
    assert_eq!(preview["subject"], "Thanks, Ada Lovelace!");
    assert!(
        preview["text"]
            .as_str()
            .unwrap()
            .contains("/d/7K3Q-M9XD-4TZP-W2HB-R5NC")
    );
    let r = post_json(
        "mail-template-save",
        json!({"kind": "purchase", "source": good}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let token = api_token(&app).await;
    product(&app, &token).await;
    let created = order(&app, &token, "bea@example.com", json!({})).await;
    let mails = sink.wait_for(2).await;
    let buyer = mails
        .iter()
        .find(|m| m.envelope_to == ["bea@example.com"])
        .unwrap();
    assert_eq!(buyer.header("Subject").unwrap(), "Thanks, Bea Buyer!");
    assert!(buyer.text().starts_with("Hi Bea Buyer,\nThe Rust Book\n"));
    assert!(
        buyer
            .text()
            .contains(created["issued"][0]["url"].as_str().unwrap())
    );
    app.stop().await;
}

/// The update mails the sink received, by recipient.
fn update_mails(sink: &SmtpSink) -> Vec<Received> {
    sink.received()
        .into_iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("New version of"))
        })
        .collect()
}

async fn wait_for_updates(sink: &SmtpSink, n: usize) -> Vec<Received> {
    for _ in 0..400 {
        let got = update_mails(sink);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} update mails, got {}",
        update_mails(sink).len()
    );
}

#[tokio::test]
async fn past_buyers_hear_of_an_update_once_each_at_the_rate_set_and_it_stops_when_asked() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let token = api_token(&app).await;
    let admin = app.create_first_admin("admin@example.com").await;
    product(&app, &token).await;
    // Ann bought twice, Bo and Cy once; Dee was refunded.
    let ann = order(&app, &token, "ann@example.com", json!({})).await;
    order(
        &app,
        &token,
        "ann@example.com",
        json!({"transaction_id": "PAY-ann-2"}),
    )
    .await;
    let bo = order(&app, &token, "bo@example.com", json!({})).await;
    order(&app, &token, "cy@example.com", json!({})).await;
    let dee = order(&app, &token, "dee@example.com", json!({})).await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/orders/{}/refund", dee["order_id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Bad requests start nothing.
    let path = "/api/v1/products/ebook/announcements";
    for (body, status) in [
        (json!({"message": "   "}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"message": "x".repeat(2001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"message": "Hi", "per_minute": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"message": "Hi", "per_minute": 10_001}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"message": "Hi", "rate": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = call(&app, &token, Method::POST, path, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (got, _) = call(
        &app,
        &token,
        Method::POST,
        "/api/v1/products/nope/announcements",
        json!({"message": "Hi"}),
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    call(
        &app,
        &token,
        Method::POST,
        "/api/v1/products",
        json!({"product_id": "unsold", "name": "Unsold"}),
    )
    .await;
    let (got, answer) = call(
        &app,
        &token,
        Method::POST,
        "/api/v1/products/unsold/announcements",
        json!({"message": "Hi"}),
    )
    .await;
    assert_eq!(got, StatusCode::CONFLICT, "{answer}");
    let (_, none) = common::call_api(&app, &token, Method::GET, path, None).await;
    assert_eq!(none, json!([]), "nothing was started");

    // 60 a minute: three buyers, one mail each, a second apart.
    let (got, started) = call(
        &app,
        &token,
        Method::POST,
        path,
        json!({"message": "Chapter 9 is out.\nEnjoy!", "per_minute": 60}),
    )
    .await;
    assert_eq!(
        (got, started["buyers"].as_u64(), started["state"].as_str()),
        (StatusCode::CREATED, Some(3), Some("sending"))
    );
    let mails = wait_for_updates(&sink, 3).await;
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m.envelope_to == [who])
            .unwrap_or_else(|| panic!("no mail to {who}"))
    };
    assert!(
        mails.iter().all(|m| m.envelope_to != ["dee@example.com"]),
        "a refunded buyer is not written to"
    );
    let ann_mail = to("ann@example.com").text();
    assert!(ann_mail.contains("Chapter 9 is out.\nEnjoy!"), "{ann_mail}");
    assert_eq!(
        ann_mail.matches("/d/").count(),
        2,
        "one mail with both of Ann's links: {ann_mail}"
    );
    let bo_mail = to("bo@example.com").text();
    let fresh = bo_mail
        .lines()
        .find(|l| l.contains("/d/"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        page_status(&fresh).await,
        StatusCode::OK,
        "the fresh link opens"
    );
    let old = bo["issued"][0]["url"].as_str().unwrap();
    assert_eq!(
        page_status(old).await,
        StatusCode::NOT_FOUND,
        "the old link was replaced"
    );
    assert!(ann["issued"][0]["url"].as_str().is_some());

    let mut queued: Vec<i64> = outbox(&admin, &app)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "product_update")
        .map(|m| m["queued_at"].as_i64().unwrap())
        .collect();
    queued.sort_unstable();
    assert_eq!(queued.len(), 3);
    for pair in queued.windows(2) {
        assert!(pair[1] - pair[0] >= 990, "the rate is kept: {queued:?}");
    }
    let (_, list) = common::call_api(&app, &token, Method::GET, path, None).await;
    assert_eq!(
        (
            list[0]["state"].as_str(),
            list[0]["sent"].as_u64(),
            list[0]["skipped"].as_u64()
        ),
        (Some("done"), Some(3), Some(0))
    );

    // One a minute, stopped: the buyers not written to get nothing.
    let (_, slow) = call(
        &app,
        &token,
        Method::POST,
        path,
        json!({"message": "Another fix", "per_minute": 1}),
    )
    .await;
    let id = slow["announcement_id"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (got, stopped) = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/announcements/{id}/stop"),
        json!({}),
    )
    .await;
    assert_eq!(
        (got, stopped["state"].as_str()),
        (StatusCode::OK, Some("stopped"))
    );
    let sent = stopped["sent"].as_u64().unwrap();
    assert_eq!(sent + stopped["skipped"].as_u64().unwrap(), 3);
    assert!(sent <= 1, "one a minute: {stopped}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        update_mails(&sink).len() as u64,
        3 + sent,
        "nothing more after the stop"
    );
    let (got, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/announcements/{id}/stop"),
        json!({}),
    )
    .await;
    assert_eq!(got, StatusCode::CONFLICT, "stopping twice");
    let (got, _) = call(
        &app,
        &token,
        Method::POST,
        "/api/v1/announcements/999/stop",
        json!({}),
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The mails to one address whose subject contains `subject`.
fn mails_to(sink: &SmtpSink, to: &str, subject: &str) -> Vec<Received> {
    sink.received()
        .into_iter()
        .filter(|m| m.envelope_to.iter().any(|t| t == to))
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains(subject)))
        .collect()
}

#[tokio::test]
async fn purchase_mails_speak_the_buyers_language_and_name_the_time_zone() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let cases = [
        ("de", "Ihr Download von", "Hallo Bea Buyer,"),
        ("fr", "Votre téléchargement chez", "Bonjour Bea Buyer,"),
        ("es", "Su descarga de", "Hola, Bea Buyer:"),
        ("en", "Your download from", "Hello Bea Buyer,"),
    ];
    for (language, _, _) in &cases {
        order(
            &app,
            &token,
            &format!("{language}@example.com"),
            json!({"language": language}),
        )
        .await;
    }
    sink.wait_for(8).await; // four purchase mails, four seller notices
    for (language, subject, greeting) in cases {
        let to = format!("{language}@example.com");
        let mails = mails_to(&sink, &to, subject);
        assert_eq!(
            mails.len(),
            1,
            "{language}: {:?}",
            sink.received()
                .iter()
                .map(|m| m.header("Subject"))
                .collect::<Vec<_>>()
        );
        let text = mails[0].text();
        assert!(text.starts_with(greeting), "{language}: {text}");
        // The window's end names the store's zone (UTC by default).
        assert!(text.contains("(UTC)"), "{language}: {text}");
        assert!(text.contains("/d/"), "{language}: {text}");
    }
    let german = mails_to(&sink, "de@example.com", "Ihr Download")[0].text();
    assert!(
        german.contains("3 Downloads, bis ") && german.contains(" Uhr (UTC)"),
        "{german}"
    );
    // The seller's notice is in the store's language whatever the buyer's.
    let notices: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("New order"))
        })
        .collect();
    assert_eq!(notices.len(), 4);
}

#[tokio::test]
async fn the_library_opens_once_from_a_mailed_link_and_renews_only_the_buyers_own_links() {
    let sink = SmtpSink::start().await;
    let app = self_service_app(&sink).await;
    let token = api_token(&app).await;
    product(&app, &token).await;
    let mine = order(&app, &token, "ana@example.com", json!({"language": "de"})).await;
    let theirs = order(&app, &token, "bo@example.com", json!({})).await;
    sink.wait_for(4).await;
    let old_link = mine["issued"][0]["url"].as_str().unwrap().to_owned();

    let stamps = form_stamps(&app, 2).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (known, _) = ask_for_links(
        &app,
        &[
            ("email", "ana@example.com"),
            ("shown", &stamps[0]),
            ("want", "library"),
        ],
    )
    .await;
    let (unknown, _) = ask_for_links(
        &app,
        &[
            ("email", "nobody@example.com"),
            ("shown", &stamps[1]),
            ("want", "library"),
        ],
    )
    .await;
    assert_eq!(known, "/resend?library=sent");
    assert_eq!(
        unknown, known,
        "the answer does not tell known from unknown"
    );
    sink.wait_for(5).await;
    let sign_in_mails = mails_to(&sink, "ana@example.com", "Anmeldung zu Ihren Käufen");
    assert_eq!(sign_in_mails.len(), 1, "one mail, in the order's language");
    assert!(mails_to(&sink, "nobody@example.com", "").is_empty());
    let text = sign_in_mails[0].text();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/library/sign-in?token="))
        .unwrap_or_else(|| panic!("{text}"));
    let path = &url[url.find("/library").unwrap()..];

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Opening the link (as a mail scanner might) spends nothing: twice, the same button.
    for _ in 0..2 {
        let page = browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("action=\"/library/sign-in\"")
        );
    }
    let token_value = &path[path.find("token=").unwrap() + 6..];
    let signed_in = browser
        .post(app.url("/library/sign-in"))
        .form(&[("token", token_value)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/library");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Max-Age"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    // Single use: the same link again opens nothing.
    let again = browser
        .post(app.url("/library/sign-in"))
        .form(&[("token", token_value)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["location"], "/resend?library=invalid");
    assert!(again.headers().get("set-cookie").is_none());

    let library = browser
        .get(app.url("/library"))
        .header("cookie", &session)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(library.status(), StatusCode::OK);
    let html = library.text().await.unwrap();
    assert!(
        html.contains("ana@example.com") && html.contains("The Rust Book"),
        "{html}"
    );
    assert!(
        html.contains("book.pdf") && html.contains("3 of 3 downloads left"),
        "{html}"
    );
    assert!(!html.contains("bo@example.com"));
    let mine_grant = mine["grants"][0]["grant_id"].to_string();
    assert!(
        html.contains(&format!("name=\"grant\" value=\"{mine_grant}\"")),
        "{html}"
    );

    // Someone else's purchase is not opened from this session.
    let theirs_grant = theirs["grants"][0]["grant_id"].to_string();
    let refused = browser
        .post(app.url("/library/open"))
        .header("cookie", &session)
        .form(&[("grant", theirs_grant.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["location"], "/library");
    assert_eq!(
        page_status(theirs["issued"][0]["url"].as_str().unwrap()).await,
        StatusCode::OK
    );

    // Opening one's own makes a fresh link, and the mailed one stops working.
    let opened = browser
        .post(app.url("/library/open"))
        .header("cookie", &session)
        .form(&[("grant", mine_grant.as_str())])
        .send()
        .await
        .unwrap();
    let fresh = opened.headers()["location"].to_str().unwrap().to_owned();
    assert!(fresh.starts_with("/d/"), "{fresh}");
    assert_eq!(page_status(&app.url(&fresh)).await, StatusCode::OK);
    assert_eq!(page_status(&old_link).await, StatusCode::NOT_FOUND);

    // Signing out ends the session on the server too.
    let out = browser
        .post(app.url("/library/sign-out"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = browser
        .get(app.url("/library"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.headers()["location"], "/resend?library=ended");
}

#[tokio::test]
async fn a_templates_language_variant_reaches_only_buyers_of_that_language() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let admin = app.create_first_admin("owner@example.com").await;
    let german = json!({"subject": "Danke, {{buyer_name}}!", "text": "Hallo {{buyer_name}},\n{{links}}\n", "html": "<p>{{links}}</p>"});
    let r = admin
        .post(app.url("/rpc/mail-template-save"))
        .json(&json!({"kind": "purchase", "language": "de", "source": german}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let saved: Value = r.json().await.unwrap();
    assert_eq!(
        (saved["language"].as_str(), saved["customised"].as_bool()),
        (Some("de"), Some(true))
    );
    // Every kind in every language is listed; only the German purchase text is the seller's.
    let templates: Value = rpc(&admin, &app, "mail-templates", &[]).await;
    let list = templates.as_array().unwrap();
    assert_eq!(list.len(), 8 * 4);
    let customised: Vec<_> = list.iter().filter(|t| t["customised"] == true).collect();
    assert_eq!(customised.len(), 1);
    assert_eq!(
        (
            customised[0]["kind"].as_str(),
            customised[0]["language"].as_str()
        ),
        (Some("purchase"), Some("de"))
    );
    let shipped_french = list
        .iter()
        .find(|t| t["kind"] == "purchase" && t["language"] == "fr")
        .unwrap();
    assert_eq!(
        shipped_french["source"]["subject"],
        "Votre téléchargement chez {{store_name}}"
    );

    // The editor's preview speaks the variant's language.
    let r = admin
        .post(app.url("/rpc/mail-template-preview"))
        .json(&json!({"source": {"subject": "x", "text": "{{greeting}}\n{{links}}", "html": ""}, "language": "de"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let preview: Value = r.json().await.unwrap();
    let text = preview["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hallo Ada Lovelace,") && text.contains("3 Downloads, bis "),
        "{text}"
    );

    let token = api_token(&app).await;
    product(&app, &token).await;
    order(&app, &token, "de@example.com", json!({"language": "de"})).await;
    order(&app, &token, "en@example.com", json!({})).await;
    sink.wait_for(4).await;
    let to = |address: &str| {
        sink.received()
            .into_iter()
            .find(|m| m.envelope_to == [address])
            .unwrap()
    };
    assert_eq!(
        to("de@example.com").header("Subject").unwrap(),
        "Danke, Bea Buyer!"
    );
    assert!(
        to("de@example.com")
            .text()
            .starts_with("Hallo Bea Buyer,\nThe Rust Book\n")
    );
    assert!(
        to("en@example.com")
            .header("Subject")
            .unwrap()
            .starts_with("Your download from")
    );

    // Restoring the default gives German buyers the shipped German text again.
    let r = admin
        .post(app.url("/rpc/mail-template-save"))
        .json(&json!({"kind": "purchase", "language": "de", "source": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    order(
        &app,
        &token,
        "de2@example.com",
        json!({"language": "de", "transaction_id": "PAY-de2"}),
    )
    .await;
    sink.wait_for(6).await;
    assert!(
        to("de2@example.com")
            .header("Subject")
            .unwrap()
            .starts_with("Ihr Download von")
    );
}
