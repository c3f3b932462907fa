//! Black-box HTTP tests of the foundation: the real application on 127.0.0.1:0 with a real
//! redb file in a temp dir, spoken to over real sockets.

use crate::common;

use common::{PASSWORD, spawn_app, spawn_app_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn healthz_answers_ok_with_security_headers() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        reqwest::get(app.url("/healthz")).await.unwrap();
    }
    reqwest::get(app.url("/no/such/page")).await.unwrap();
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            "dropgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"404\""), "{text}");
    assert!(
        text.contains("dropgate_http_request_duration_seconds_count{route=\"/healthz\"} 3"),
        "{text}"
    );
    // The raw unknown path never becomes a label.
    assert!(!text.contains("/no/such/page"));
    app.stop().await;
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    client.get(app.url("/healthz")).send().await.unwrap();
    let before = app.text("/metrics").await;
    for n in 0..300 {
        let method = reqwest::Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap();
        client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let after = app.text("/metrics").await;
    assert!(!after.contains("BREW"), "{after}");
    assert!(after.contains("method=\"other\""), "{after}");
    // One new series (and the /metrics request itself), not three hundred.
    assert!(
        after.len() < before.len() + 1500,
        "{} -> {} bytes",
        before.len(),
        after.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_that_matches_their_scripts() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/admin/login")).await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce in CSP")
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"));
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("<script type=\"module\" nonce=\"{nonce}\">")),
        "{html}"
    );
    assert!(html.contains("Sign in to Dropgate"));
    // A second page load gets a different nonce.
    let again = reqwest::get(app.url("/admin/login")).await.unwrap();
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_pages_are_404_and_root_goes_to_the_admin() {
    let app = spawn_app().await;
    let client = app.client();
    let response = client.get(app.url("/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("This page does not exist")
    );
    let root = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/admin");
    app.stop().await;
}

#[tokio::test]
async fn admin_pages_need_a_session_and_the_setup_link_works_once() {
    let app = spawn_app().await;
    let anonymous = app.client();
    for path in ["/admin", "/admin/access"] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/admin/login");
    }
    // The setup page checks its token.
    let page = anonymous
        .get(app.setup_link.clone().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Create the first admin account"), "{page}");

    let owner = app.create_first_admin("owner@example.com").await;
    let dashboard = owner.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("Dashboard"));

    // A signed-in admin skips the login page.
    let login = owner.get(app.url("/admin/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);

    // The link is spent.
    let reuse = app
        .client()
        .post(app.url("/rpc/setup"))
        .form(&[
            ("token", app.setup_token().as_str()),
            ("email", "second@example.com"),
            ("name", ""),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(reuse.status(), 200);
    assert!(reuse.text().await.unwrap().contains("already been used"));
    let page = anonymous
        .get(app.setup_link.clone().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("already been used"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn setup_rejects_bad_input_and_changes_nothing() {
    let app = spawn_app().await;
    let client = app.client();
    let cases = [
        ("not-an-email", PASSWORD, PASSWORD, "email"),
        ("owner@example.com", "short", "short", "password"),
        (
            "owner@example.com",
            PASSWORD,
            "something else entirely",
            "confirm",
        ),
    ];
    for (email, password, confirm, field) in cases {
        let response = client
            .post(app.url("/rpc/setup"))
            .form(&[
                ("token", app.setup_token().as_str()),
                ("email", email),
                ("name", ""),
                ("password", password),
                ("confirm", confirm),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{field}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["Invalid"]["field"], field, "{body}");
    }
    // Nothing was created: the link still works.
    app.create_first_admin("owner@example.com").await;
    app.stop().await;
}

#[tokio::test]
async fn session_cookie_is_http_only_strict_and_ends_at_logout() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let client = app.client();
    let response = app.login(&client, "owner@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("dg_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    let value = cookie.split(';').next().unwrap().to_owned();

    assert_eq!(
        client.get(app.url("/admin")).send().await.unwrap().status(),
        200
    );
    let out = client.post(app.url("/rpc/logout")).send().await.unwrap();
    assert_eq!(out.status(), 200);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie value is dead on the server, not only deleted in the browser.
    let replay = app
        .client()
        .get(app.url("/admin"))
        .header("cookie", value)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_public_url() {
    let app = spawn_app_with(|c| c.public_url = Some("https://downloads.example.com".into())).await;
    assert!(
        app.setup_link
            .as_deref()
            .unwrap()
            .starts_with("https://downloads.example.com/admin/setup?token=")
    );
    let response = app
        .client()
        .post(app.url("/rpc/setup"))
        .form(&[
            ("token", app.setup_token().as_str()),
            ("email", "o@example.com"),
            ("name", ""),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // On https the name carries the `__Host-` prefix: Secure, Path=/, no Domain.
    assert!(cookie.starts_with("__Host-dg_session="), "{cookie}");
    assert!(
        cookie.contains("; Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    assert!(response.headers().contains_key("strict-transport-security"));
    // The session works under that name.
    let session = cookie.split(';').next().unwrap().to_owned();
    let me = app
        .client()
        .post(app.url("/rpc/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "{}", me.text().await.unwrap());
    app.stop().await;
}

#[tokio::test]
async fn server_functions_refuse_without_a_session() {
    let app = spawn_app().await;
    for path in ["/rpc/dashboard", "/rpc/access", "/rpc/session"] {
        let response = app.client().post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(response.text().await.unwrap(), "\"SignedOut\"", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_email_and_wrong_password_get_the_same_answer_and_are_throttled() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let client = app.client();
    let wrong_password = app
        .login(&client, "owner@example.com", "not the password")
        .await;
    let wrong_email = app.login(&client, "nobody@example.com", PASSWORD).await;
    assert_eq!(wrong_password.status(), wrong_email.status());
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(
        wrong_password.text().await.unwrap(),
        wrong_email.text().await.unwrap()
    );

    // Four more failures make five for this account: now even the right password waits.
    for _ in 0..4 {
        app.login(&client, "owner@example.com", "not the password")
            .await;
    }
    let throttled = app.login(&client, "owner@example.com", PASSWORD).await;
    assert_eq!(throttled.status(), 429);
    let text = throttled.text().await.unwrap();
    assert!(text.contains("Too many attempts"), "{text}");
    app.stop().await;
}

/// 30 wrong passwords sent at once for one account: the limit is 5, and an attempt is
/// counted before its password is checked, so 5 are judged and 25 throttled (before, all
/// 30 were judged). The setup link and "change my password" count the same way.
#[tokio::test]
async fn concurrent_guesses_are_counted_before_they_are_judged() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let guesses = (0..30).map(|_| {
        let client = app.client();
        let app = &app;
        async move {
            app.login(&client, "owner@example.com", "not the password")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let judged = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((judged, throttled), (5, 25), "{statuses:?}");

    // Wrong setup links from one client: 20 answered, then throttled.
    let client = app.client();
    let mut setup = Vec::new();
    for _ in 0..21 {
        let r = client
            .post(app.url("/rpc/setup"))
            .form(&[
                ("token", "not-the-link"),
                ("email", "eve@example.com"),
                ("name", "Eve"),
                ("password", "a long enough password"),
                ("confirm", "a long enough password"),
            ])
            .send()
            .await
            .unwrap();
        setup.push(r.status().as_u16());
    }
    // 5 sign-in failures of this client are in its window too: 15 more, then 429.
    assert!(setup[..15].iter().all(|s| *s != 429), "{setup:?}");
    assert!(setup[15..].iter().all(|s| *s == 429), "{setup:?}");
    app.stop().await;
}

#[tokio::test]
async fn failures_are_also_throttled_per_ip_across_accounts() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let client = app.client();
    for i in 0..20 {
        let r = app
            .login(
                &client,
                &format!("guess{i}@example.com"),
                "whatever password",
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let blocked = app.login(&client, "owner@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    // The peer (127.0.0.1) is trusted here, so each X-Forwarded-For IP is its own client.
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![domain::net::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    app.create_first_admin("owner@example.com").await;
    let client = app.client();
    for i in 0..20 {
        let r = client
            .post(app.url("/rpc/login"))
            .header("x-forwarded-for", "203.0.113.7")
            .form(&[
                ("email", format!("guess{i}@example.com")),
                ("password", "whatever password".into()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let same_ip = client
        .post(app.url("/rpc/login"))
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(same_ip.status(), 429);
    let other_ip = client
        .post(app.url("/rpc/login"))
        .header("x-forwarded-for", "198.51.100.1")
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(other_ip.status(), 200);
    app.stop().await;

    // Without trust, the header is ignored: the peer itself is throttled.
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let client = app.client();
    for i in 0..20 {
        client
            .post(app.url("/rpc/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[
                ("email", format!("guess{i}@example.com")),
                ("password", "whatever password".into()),
            ])
            .send()
            .await
            .unwrap();
    }
    let r = app.login(&client, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let response = app
        .client()
        .post(app.url("/rpc/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let same_origin = app
        .client()
        .post(app.url("/rpc/login"))
        .header("origin", app.base.clone())
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let big = "x".repeat(2 * 1024 * 1024);
    let response = app
        .client()
        .post(app.url("/rpc/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=a%40example.com&password={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn idle_and_slow_clients_are_cut_off() {
    let app = spawn_app_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;

    // Sends nothing at all.
    let started = Instant::now();
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        &buf[..n]
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // Sends its headers one byte at a time, too slowly.
    let started = Instant::now();
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n";
    let mut closed = false;
    for byte in request {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    if !closed {
        let n = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut buf))
            .await
            .expect("answered")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            n == 0 || text.starts_with("HTTP/1.1 408"),
            "slow client was served: {text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8));

    // A normal client is unaffected.
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut app = spawn_app().await;
    let body = "email=owner%40example.com&password=whatever+password";
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /rpc/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let server = app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer accepted...
    assert!(
        reqwest::Client::new()
            .get(app.url("/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err()
    );
    // ...but the request in flight completes.
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stopped")
        .unwrap();
}

#[tokio::test]
async fn static_assets_are_served_with_etag_and_gzip() {
    let app = spawn_app().await;
    let client = app.client();
    let css = client
        .get(app.url("/pkg/dropgate.css"))
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let etag = css.headers()["etag"].to_str().unwrap().to_owned();
    let plain = css.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&plain).contains(":root"));
    let gz = client
        .get(app.url("/pkg/dropgate.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert!(gz.bytes().await.unwrap().len() < plain.len());
    let cached = client
        .get(app.url("/pkg/dropgate.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    app.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart_on_the_same_directory() {
    let app = spawn_app().await;
    app.create_first_admin("owner@example.com").await;
    let kept = app.stop().await;
    let data_dir = kept.path().to_path_buf();
    let app = spawn_app_with(|c| {
        c.data_dir = data_dir.clone();
        c.storage = server::config::StorageLocation::Local(data_dir.join("files"));
    })
    .await;
    assert!(
        app.setup_link.is_none(),
        "an admin exists, so no setup link"
    );
    let client = app.client();
    assert_eq!(
        app.login(&client, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    app.stop().await;
}

/// The `redb` commits counted in `/metrics`.
async fn redb_commits(app: &common::TestApp) -> u64 {
    let text = app.text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("dropgate_store_redb_commits_total "))
        .expect("the commit counter")
        .parse()
        .unwrap()
}

/// Anonymous requests that change nothing commit nothing: wrong sign-ins (known and unknown
/// addresses), setup-link checks and self-service requests for addresses with nothing to
/// renew read in read transactions. Each used to be a durable commit.
#[tokio::test]
async fn anonymous_requests_that_change_nothing_commit_nothing() {
    let app = spawn_app_with(|c| {
        c.self_service.min_fill = std::time::Duration::from_millis(300);
    })
    .await;
    app.create_first_admin("owner@example.com").await;
    // The retention job's first run at start commits; on a loaded machine it can land after
    // the sign-up above. Count from when the background work has settled.
    let mut before = redb_commits(&app).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = redb_commits(&app).await;
        if now == before {
            break;
        }
        before = now;
    }
    let client = app.client();
    for i in 0..4 {
        let who = if i % 2 == 0 {
            "owner@example.com"
        } else {
            "nobody@example.com"
        };
        assert_eq!(
            app.login(&client, who, "not the password").await.status(),
            401
        );
        let status = client
            .post(app.url("/rpc/setup-status"))
            .form(&[("token", "not-a-link")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let mut stamps = Vec::new();
    for _ in 0..3 {
        // One stamp per post: each page's stamp is good for one.
        let page = app.text("/resend").await;
        let from = page.find("name=\"shown\" value=\"").expect("a form stamp") + 20;
        stamps.push(page[from..from + page[from..].find('"').unwrap()].to_owned());
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    for (i, stamp) in stamps.iter().enumerate() {
        let r = client
            .post(app.url("/resend"))
            .form(&[
                ("email", format!("stranger{i}@example.com").as_str()),
                ("order_id", ""),
                ("website", ""),
                ("shown", stamp.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        assert!(
            !r.headers()["location"].to_str().unwrap().contains("error"),
            "{:?}",
            r.headers()["location"]
        );
    }
    assert_eq!(redb_commits(&app).await, before);
    app.stop().await;
}

/// Ten clients that send their headers, then a form one byte every half second: each gets
/// a 408 once the body deadline (2 s here, 30 s by default) has passed, and its connection
/// is closed. Before, they held their connections as long as they liked.
#[tokio::test]
async fn bodies_that_dribble_in_are_cut_off() {
    let app = spawn_app_with(|c| c.body_read_timeout = Duration::from_secs(2)).await;
    let started = Instant::now();
    let clients = (0..10).map(|_| {
        let addr = app.addr;
        async move {
            let mut slow = TcpStream::connect(addr).await.unwrap();
            slow.write_all(
                b"POST /resend HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n",
            )
            .await
            .unwrap();
            let mut answer = Vec::new();
            for _ in 0..40 {
                if slow.write_all(b"e").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            String::from_utf8_lossy(&answer).into_owned()
        }
    });
    for answer in futures::future::join_all(clients).await {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A form sent at a normal pace is unaffected.
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    app.stop().await;
}

/// At the connection cap the server stops accepting: a new client waits (in the kernel's
/// listen queue) until an open connection closes, then is served.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let app = spawn_app_with(|c| {
        c.max_connections = 2;
        c.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut open = TcpStream::connect(app.addr).await.unwrap();
        open.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(open);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let url = app.url("/healthz");
        async move { reqwest::get(url).await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "served beyond the cap");
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    app.stop().await;
}

/// `/metrics` shows sales volume: clients on the host or its private network read it,
/// public ones (here named by a trusted proxy) only with the metrics token.
#[tokio::test]
async fn metrics_are_for_the_shops_own_network_or_a_token() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![domain::net::IpNet::parse("127.0.0.1").unwrap()];
        c.metrics_token = Some("a-long-metrics-token".into());
    })
    .await;
    let status = |client: &'static str, token: Option<&'static str>| {
        let url = app.url("/metrics");
        async move {
            let mut request = reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", client);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(status("203.0.113.5", None).await, 404);
    assert_eq!(status("203.0.113.5", Some("not-the-token")).await, 404);
    assert_eq!(
        status("203.0.113.5", Some("a-long-metrics-token")).await,
        200
    );
    assert_eq!(
        status("10.0.0.7", None).await,
        200,
        "a Prometheus beside the shop"
    );
    assert_eq!(status("127.0.0.1", None).await, 200);
    app.stop().await;
}
