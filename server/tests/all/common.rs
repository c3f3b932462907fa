//! Starts the real application in-process on 127.0.0.1:0 with a temporary data dir.

#![allow(dead_code)]

use server::{Application, Config};
use std::net::SocketAddr;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: SocketAddr,
    access: backend::AccessService,
    pub base: String,
    pub setup_link: Option<String>,
    pub data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(data_dir.path());
    config.shutdown_grace = Duration::from_secs(5);
    adjust(&mut config);
    let app = Application::build(config)
        .await
        .expect("application starts");
    let addr = app.local_addr();
    let base = format!("http://{addr}");
    let setup_link = app.setup_link().map(str::to_owned);
    let access = app.access();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        access,
        addr,
        base,
        setup_link,
        data_dir,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// The staff-access service of the running app (to create API tokens).
    pub fn access(&self) -> backend::AccessService {
        self.access.clone()
    }

    /// A client with its own cookie jar that never follows redirects.
    #[allow(clippy::unused_self)] // a method so tests read `app.client()`
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The body of `GET path`, whatever its status.
    pub async fn text(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn setup_token(&self) -> String {
        let link = self
            .setup_link
            .as_deref()
            .expect("a setup link while no admin exists");
        link.split("token=")
            .nth(1)
            .expect("token in link")
            .to_owned()
    }

    /// Creates the first admin through the setup server function; returns the signed-in client.
    pub async fn create_first_admin(&self, email: &str) -> reqwest::Client {
        let client = self.client();
        let response = client
            .post(self.url("/rpc/setup"))
            .form(&[
                ("token", self.setup_token().as_str()),
                ("email", email),
                ("name", "Owner"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        client
    }

    /// Signs in through the login server function.
    pub async fn login(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/rpc/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Asks the server to stop, waits until it has, and hands back its data dir.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("stops in time")
                .unwrap();
        }
        self.data_dir
    }

    /// Signals shutdown without waiting; returns the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.take().expect("running")
    }
}

/// A new API token for tests on a running app.
pub async fn api_token(app: &TestApp) -> String {
    app.access()
        .create_api_token(
            "tests",
            backend::services::Actor::System,
            backend::clock::now(),
        )
        .await
        .expect("an API token")
        .1
}

/// An API call with the token and an optional JSON body: its status and JSON answer
/// (null if none).
pub async fn call_api(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the app answers");
    let status = response.status();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Creates a product from its JSON (`product_id`, `name`, rules) and uploads one file
/// named `file_name` (URL-encoded) with `content`; returns the file's JSON.
pub async fn product_with_file(
    app: &TestApp,
    token: &str,
    product: serde_json::Value,
    file_name: &str,
    content: &[u8],
) -> serde_json::Value {
    let id = product["product_id"]
        .as_str()
        .expect("product_id")
        .to_owned();
    let (status, answer) = call_api(
        app,
        token,
        reqwest::Method::POST,
        "/api/v1/products",
        Some(product),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    let response = reqwest::Client::new()
        .put(app.url(&format!("/api/v1/products/{id}/files/{file_name}")))
        .bearer_auth(token)
        .body(content.to_vec())
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    response.json().await.expect("a file as JSON")
}

/// A running shop with an API token, and the calls most HTTP tests start with.
pub struct Shop {
    pub app: TestApp,
    pub token: String,
    pub http: reqwest::Client,
}

impl Shop {
    /// A shop on the default configuration.
    pub async fn open() -> Self {
        Self::with(spawn_app().await).await
    }

    /// A shop on an adjusted configuration.
    pub async fn open_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::with(spawn_app_with(adjust).await).await
    }

    /// A shop on a running app: creates an API token.
    pub async fn with(app: TestApp) -> Self {
        let token = api_token(&app).await;
        Self {
            app,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// A request to the app with the token.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
    }

    /// See [`call_api`].
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        call_api(&self.app, &self.token, method, path, body).await
    }

    /// See [`product_with_file`].
    pub async fn product_with_file(
        &self,
        product: serde_json::Value,
        file_name: &str,
        content: &[u8],
    ) -> serde_json::Value {
        product_with_file(&self.app, &self.token, product, file_name, content).await
    }
}
