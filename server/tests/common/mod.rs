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
