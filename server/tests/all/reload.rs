//! Issue 15: reloading pages must never take the server down. These tests run the real
//! `dropgate` binary (its own multi-threaded runtime, as in production) and reload every
//! page from four clients at once, as F5, a bookmark or an opened link does: a full
//! server render each time. Every answer must be a complete 200, the server's log must hold
//! no panic and no watchdog report, and a buyer's download must still work afterwards.
//!
//! Before the fix this failed within seconds: the product page panicked in one reload of
//! four ("Dropped SendWrapper<T> variable from a thread different …", a cut-off page), and
//! the mail-texts page deadlocked both runtime workers inside Leptos until the watchdog
//! exited the process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const ADMIN: &str = "owner@example.com";
const CLIENTS: usize = 4;
const RELOADS: usize = 20;

/// The real binary, serving a temporary data dir; its log goes to a file.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Creates an admin and an API token with the CLI, then starts `dropgate serve`.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let data_arg = data.to_str().unwrap();
        let mut create = Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args(["admin", "create", "--email", ADMIN, "--data-dir", data_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        assert!(create.wait().unwrap().success(), "admin create");
        let token = Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args([
                "token",
                "create",
                "--name",
                "reload",
                "--data-dir",
                data_arg,
            ])
            .output()
            .unwrap();
        assert!(token.status.success(), "token create");
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args(["serve", "--data-dir", data_arg, "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("DROPGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let base = wait_for_address(&log);
        Self {
            child,
            base,
            log,
            token,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Fails if the server exited, panicked or was reported stuck by its watchdog.
    fn assert_healthy(&mut self) {
        let log = self.log_text();
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server exited; its log:\n{log}"
        );
        assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
        assert!(
            !log.contains("has not run a task"),
            "the watchdog fired:\n{log}"
        );
    }

    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the log until the server says where it listens.
fn wait_for_address(log: &Path) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in BufReader::new(text.as_bytes()).lines() {
            let line = line.unwrap();
            if line.contains("Dropgate is listening")
                && let Some(rest) = line.split("address=").nth(1)
            {
                let address = rest.split_whitespace().next().unwrap();
                return format!("http://{address}");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client with its own cookie jar that does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A shop with one product, one file, one order with its mail, and a signed-in client.
struct Shop {
    admin: reqwest::Client,
    order_id: u64,
    password: String,
    file_id: u64,
    mail_id: u64,
}

/// Sends an API call that must succeed with `status`; returns its JSON answer.
async fn expect_json(request: reqwest::RequestBuilder, status: u16) -> serde_json::Value {
    let response = request.send().await.unwrap();
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn open_shop(server: &Server) -> Shop {
    let product = serde_json::json!({"product_id": "ebook", "name": "The Ebook", "max_downloads": 3, "download_days": 30});
    expect_json(
        server
            .api(reqwest::Method::POST, "/api/v1/products")
            .json(&product),
        201,
    )
    .await;
    let file = expect_json(
        server
            .api(
                reqwest::Method::PUT,
                "/api/v1/products/ebook/files/book.txt",
            )
            .body("the whole book"),
        201,
    )
    .await;
    let buyer = serde_json::json!({"email": "buyer@example.com", "name": "Buyer", "product_ids": ["ebook"]});
    let order = expect_json(
        server
            .api(reqwest::Method::POST, "/api/v1/orders")
            .json(&buyer),
        201,
    )
    .await;
    let admin = client();
    let login = admin
        .post(server.url("/rpc/login"))
        .form(&[("email", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // The purchase mail waits in the outbox (no SMTP here); its page is one of the routes.
    let outbox = admin
        .get(server.url("/admin/outbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mail_id = outbox
        .split("/admin/outbox/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .expect("a mail in the outbox");
    Shop {
        admin,
        order_id: order["order_id"].as_u64().unwrap(),
        password: order["issued"][0]["password"].as_str().unwrap().to_owned(),
        file_id: file["file_id"].as_u64().unwrap(),
        mail_id,
    }
}

/// Every page a seller reloads: the list and detail pages and every other admin screen.
fn admin_routes(shop: &Shop) -> Vec<String> {
    let grant_lookup = format!("/admin/desk?q={}", shop.password);
    vec![
        "/admin".to_owned(),
        "/admin/products".to_owned(),
        "/admin/products/ebook".to_owned(),
        "/admin/orders".to_owned(),
        format!("/admin/orders/{}", shop.order_id),
        "/admin/outbox".to_owned(),
        format!("/admin/outbox/{}", shop.mail_id),
        "/admin/desk".to_owned(),
        grant_lookup,
        "/admin/activity".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/settings".to_owned(),
        "/admin/access".to_owned(),
        "/admin/mail-templates".to_owned(),
        "/admin/mail-templates?kind=resend".to_owned(),
    ]
}

/// The pages a buyer or a signed-out visitor reloads.
fn public_routes(shop: &Shop) -> Vec<String> {
    vec![
        format!("/d/{}", shop.password),
        "/resend".to_owned(),
        "/admin/login".to_owned(),
        // Answered 404, with a page.
        "/d/AAAA-BBBB-CCCC-DDDD-EEEE".to_owned(),
        "/no-such-page".to_owned(),
    ]
}

/// Loads `path` fully; a cut-off body is an error from reqwest.
async fn load(client: &reqwest::Client, base: &str, path: &str) -> Result<(u16, String), String> {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{path}: body cut off: {e}"))?;
    Ok((status, body))
}

/// `clients` clients each load every route `reloads` times (in turn, as someone clicking
/// through would); returns the failures, as "route: what went wrong".
async fn reload_all(
    base: &str,
    clients: Vec<reqwest::Client>,
    routes: &[String],
    reloads: usize,
    expected_status: u16,
) -> (usize, Vec<String>) {
    let mut tasks = Vec::new();
    for client in clients {
        let base = base.to_owned();
        let routes = routes.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..reloads {
                for route in &routes {
                    match load(&client, &base, route).await {
                        Ok((status, body)) if status == expected_status => {
                            if status == 200 && !body.contains("</html>") {
                                failures.push(format!("{route}: an incomplete page"));
                            }
                        }
                        Ok((status, _)) => failures.push(format!("{route}: status {status}")),
                        Err(e) => failures.push(e),
                    }
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    (routes.len() * reloads * CLIENTS, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_survives_concurrent_reloads_and_downloads_still_work() {
    let mut server = Server::start();
    let shop = open_shop(&server).await;

    // Signed in: every admin page, four clients sharing the seller's session.
    let admins = vec![shop.admin.clone(); CLIENTS];
    let (requests, failures) =
        reload_all(&server.base, admins, &admin_routes(&shop), RELOADS, 200).await;
    assert!(
        failures.is_empty(),
        "{} of {requests} admin reloads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    server.assert_healthy();

    // Signed out: the buyer pages, the sign-in page, a page that does not exist.
    let visitors = (0..CLIENTS).map(|_| client()).collect();
    let public = public_routes(&shop);
    let (requests, failures) = reload_all(&server.base, visitors, &public[..3], RELOADS, 200).await;
    assert!(
        failures.is_empty(),
        "{} of {requests} public reloads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let visitors = (0..CLIENTS).map(|_| client()).collect();
    let (_, failures) = reload_all(&server.base, visitors, &public[3..], RELOADS, 404).await;
    assert!(failures.is_empty(), "{failures:?}");
    // Signed-out visits to admin pages are sent to the sign-in page, every time.
    let visitors = (0..CLIENTS).map(|_| client()).collect();
    let (_, failures) = reload_all(&server.base, visitors, &admin_routes(&shop), 2, 303).await;
    assert!(failures.is_empty(), "{failures:?}");
    server.assert_healthy();

    // The buyer's download still works.
    let download = client()
        .get(server.url(&format!("/d/{}/{}", shop.password, shop.file_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.unwrap(), "the whole book");
    server.assert_healthy();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_costs_only_its_own_request() {
    let mut server = Server::start();
    let shop = open_shop(&server).await;
    let base = server.base.clone();
    let visitor = client();

    // Panics on the main runtime and on a render thread, among ordinary reloads.
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let (base, admin, visitor) = (base.clone(), shop.admin.clone(), visitor.clone());
        let pages = admin_routes(&shop);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..5 {
                for (path, expected) in [("/__test/panic", 500), ("/__test/panic-page", 500)] {
                    let (status, body) = load(&visitor, &base, path).await.unwrap();
                    assert_eq!(status, expected, "{path}: {body}");
                    assert!(body.contains("internal error"), "{path}: {body}");
                }
                // A page whose render panics after its head: the body is cut off, not
                // passed off as complete.
                assert!(
                    load(&visitor, &base, "/__test/panic-mid-page")
                        .await
                        .is_err()
                );
                let page = &pages[(n + round) % pages.len()];
                let (status, body) = load(&admin, &base, page).await.unwrap();
                assert_eq!(status, 200, "{page}");
                assert!(body.contains("</html>"), "{page}");
                seen.push(page.clone());
            }
            seen
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().len(), 5);
    }

    // Everything else still answers, and the panics are logged with their routes.
    let (requests, failures) = reload_all(
        &base,
        vec![shop.admin.clone(); CLIENTS],
        &admin_routes(&shop),
        2,
        200,
    )
    .await;
    assert!(
        failures.is_empty(),
        "{} of {requests}: {failures:?}",
        failures.len()
    );
    let download = client()
        .get(server.url(&format!("/d/{}/{}", shop.password, shop.file_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(download.text().await.unwrap(), "the whole book");
    let log = server.log_text();
    assert!(server.child.try_wait().unwrap().is_none(), "{log}");
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("a request panicked and was answered 500 method=GET route=/__test/panic "),
        CLIENTS * 5,
        "{log}"
    );
    assert_eq!(count("a page render panicked"), CLIENTS * 5 * 2, "{log}");
    assert_eq!(count("route=GET /__test/panic-page "), CLIENTS * 5, "{log}");
    assert_eq!(
        count("route=GET /__test/panic-mid-page "),
        CLIENTS * 5,
        "{log}"
    );
    assert!(!log.contains("has not run a task"), "{log}");
}

/// A reverse proxy on the same host forwards clients but was not made trusted: the log
/// says so once (the country lock is off then), however many requests come.
#[tokio::test]
async fn an_untrusted_local_proxy_is_pointed_out_once() {
    let mut server = Server::start();
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let answer = client
            .get(server.url("/healthz"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let started = Instant::now();
    let mut warnings = 0;
    while started.elapsed() < Duration::from_secs(5) {
        warnings = server
            .log_text()
            .matches("no --trusted-proxy is set")
            .count();
        if warnings > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(warnings, 1, "{}", server.log_text());
    server.assert_healthy();
}
