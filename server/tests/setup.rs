//! Issue 17, item 3: `/rpc/setup` checks its link before it hashes a password, and stays
//! shut once an admin exists. Whether a password was hashed is read from
//! `dropgate_password_hashes_total` in `/metrics`; this file is its own test binary (its own
//! process), so no other test's sign-ins move that counter.

mod common;

use common::{PASSWORD, spawn_app};

/// The password hashes and checks counted so far.
async fn hashes(app: &common::TestApp) -> u64 {
    app.text("/metrics")
        .await
        .lines()
        .find_map(|line| line.strip_prefix("dropgate_password_hashes_total "))
        .expect("the counter is in /metrics")
        .parse()
        .unwrap()
}

/// Posts the setup form with `token`; returns the status.
async fn setup(app: &common::TestApp, token: &str, email: &str) -> u16 {
    app.client()
        .post(app.url("/rpc/setup"))
        .form(&[
            ("token", token),
            ("email", email),
            ("name", "Someone"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_checks_the_link_before_hashing_and_closes_once_an_admin_exists() {
    let app = spawn_app().await;
    let before = hashes(&app).await;

    // Thirty strangers guessing the link, at once: refused, and not one password hashed.
    let guesses: Vec<_> = (0..30)
        .map(|n| {
            let app = &app;
            async move { setup(app, &format!("guess-{n}"), "eve@example.com").await }
        })
        .collect();
    for status in futures::future::join_all(guesses).await {
        assert_eq!(status, 403);
    }
    assert_eq!(hashes(&app).await, before, "a wrong link hashed a password");

    // The real link creates the admin: one hash.
    assert_eq!(
        setup(&app, &app.setup_token(), "owner@example.com").await,
        200
    );
    assert_eq!(hashes(&app).await, before + 1);

    // Used once, the link is dead, and nothing is hashed for it again.
    for _ in 0..5 {
        assert_eq!(
            setup(&app, &app.setup_token(), "eve@example.com").await,
            403
        );
    }
    assert_eq!(hashes(&app).await, before + 1);
    app.stop().await;
}
