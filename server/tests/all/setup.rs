//! Issue 17, item 3: `/rpc/setup` checks its link before it hashes a password, and stays
//! shut once an admin exists. Whether a password was hashed is read from
//! `dropgate_password_hashes_total` in `/metrics`; this file is its own test binary (its own
//! process), so no other test's sign-ins move that counter.

use crate::common;

use common::{PASSWORD, spawn_app_with};

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

/// Posts the setup form with `token` from the client `ip`; returns the status.
async fn setup(app: &common::TestApp, token: &str, email: &str, ip: &str) -> u16 {
    app.client()
        .post(app.url("/rpc/setup"))
        .header("x-forwarded-for", ip)
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
    // 127.0.0.1 is a trusted proxy here, so each X-Forwarded-For address is a client.
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![domain::net::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    let before = hashes(&app).await;

    // Thirty guesses of the link from one stranger, at once: refused, the last ten as too
    // many (20 per 15 minutes, like wrong sign-ins), and not one password hashed.
    let guesses: Vec<_> = (0..30)
        .map(|n| {
            let app = &app;
            async move { setup(app, &format!("guess-{n}"), "eve@example.com", "203.0.113.9").await }
        })
        .collect();
    let mut statuses = futures::future::join_all(guesses).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [[403; 20].as_slice(), &[429; 10]].concat());
    assert_eq!(hashes(&app).await, before, "a wrong link hashed a password");

    // The real link creates the admin: one hash.
    assert_eq!(
        setup(
            &app,
            &app.setup_token(),
            "owner@example.com",
            "198.51.100.1"
        )
        .await,
        200
    );
    assert_eq!(hashes(&app).await, before + 1);

    // Used once, the link is dead, and nothing is hashed for it again.
    for _ in 0..5 {
        assert_eq!(
            setup(&app, &app.setup_token(), "eve@example.com", "198.51.100.2").await,
            403
        );
    }
    assert_eq!(hashes(&app).await, before + 1);
    app.stop().await;
}
