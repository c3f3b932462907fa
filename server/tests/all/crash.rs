//! Crash safety with the real binary: SIGKILL while orders are being created and files
//! downloaded, restart on the same data dir, and every acknowledged order is there; and
//! SIGKILL during a stream of downloads, after which every answered download still counts
//! (the download journal brings back what redb had not flushed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(data: &str) -> (Child, String) {
    let (child, base, _) = start_with_log(data);
    (child, base)
}

/// Starts the server and also returns what it logged before it listened.
fn start_with_log(data: &str) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dropgate"))
        // No /d/ rate limits: the tests hammer one link to load the journal.
        .args([
            "serve",
            "--data-dir",
            data,
            "--bind",
            "127.0.0.1:0",
            "--download-rate-per-link",
            "0",
            "--download-rate-per-client",
            "0",
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let mut log = Vec::new();
    let address = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        log.push(line.clone());
        if line.contains("Dropgate is listening") {
            let addr = line
                .split("address=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            break addr;
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}"), log)
}

fn create_token(data: &str) -> String {
    String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_dropgate"))
            .args(["token", "create", "--data-dir", data, "--name", "crash"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_download_still_counts_after_sigkill() {
    const CLIENTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let token = create_token(&data);
    let (mut server, base) = start(&data);
    let http = reqwest::Client::new();
    let (url, file_id) =
        product_ordered(&http, &base, &token, "tiny", 1_000_000, vec![9u8; 1024]).await;
    let password = url.rsplit('/').next().unwrap().to_owned();
    let local = format!("{base}/d/{password}/{file_id}");

    // Only downloads run until the kill: nothing else commits to redb meanwhile.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, local) = (http.clone(), local.clone());
            tokio::spawn(async move {
                let mut answered = 0u64;
                while let Ok(r) = http.get(&local).send().await {
                    match r.bytes().await {
                        Ok(body) if body.len() == 1024 => answered += 1,
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep_until(deadline.into()).await;
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.wait().unwrap();
    let mut answered = 0;
    for c in clients {
        answered += c.await.unwrap();
    }
    assert!(
        answered > 50,
        "the test downloaded before the kill ({answered})"
    );

    let (mut server, base, log) = start_with_log(&data);
    assert!(
        log.iter()
            .any(|l| l.contains("download journal replayed after an unclean stop")),
        "the restart replayed the journal: {log:#?}"
    );
    let found: serde_json::Value = http
        .post(format!("{base}/api/v1/grants/lookup"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let used = found[0]["files"][0]["downloads_used"].as_f64().unwrap();
    let allowed = found[0]["uses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["outcome"] == "allowed")
        .count() as u64;
    // Every answered download counts; at most one per client was charged and cut by the
    // kill before its answer arrived.
    assert!(
        used >= answered as f64 && used <= (answered + CLIENTS as u64) as f64,
        "{answered} answered, {used} counted"
    );
    assert!(
        allowed >= answered && allowed <= answered + CLIENTS as u64,
        "{answered} answered, {allowed} logged"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_orders_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let token = create_token(&data);
    let (mut server, base) = start(&data);
    let http = reqwest::Client::new();
    http.post(format!("{base}/api/v1/products"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"product_id": "ebook", "name": "Book", "max_downloads": 0}))
        .send()
        .await
        .unwrap();
    let file: serde_json::Value = http
        .put(format!("{base}/api/v1/products/ebook/files/book.bin"))
        .bearer_auth(&token)
        .body(vec![3u8; 256 * 1024])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = file["file_id"].as_u64().unwrap();
    // One download on a single-download grant, answered in full before the crash: it must
    // still count after the restart (a crash is never a free download).
    let counted_url = single_download_taken(&http, &base, &token).await;

    // Writers and downloaders run until the kill.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline + Duration::from_secs(1) {
                n += 1;
                let body = serde_json::json!({"email": format!("w{w}n{n}@example.com"), "product_ids": ["ebook"]});
                let Ok(r) = http.post(format!("{base}/api/v1/orders")).bearer_auth(&token).json(&body).send().await else { break };
                if r.status() == 201 {
                    let Ok(v) = r.json::<serde_json::Value>().await else { break };
                    let url = v["issued"][0]["url"].as_str().unwrap().to_owned();
                    acknowledged.push((v["order_id"].as_u64().unwrap(), url.clone()));
                    // Start a download and drop it half way.
                    if let Ok(mut d) = http.get(format!("{url}/{file_id}")).send().await {
                        let _ = d.chunk().await;
                    }
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.wait().unwrap();
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() > 5,
        "the test created orders before the kill ({})",
        acknowledged.len()
    );

    let (mut server, base) = start(&data);
    check_after_restart(&http, &base, &token, &acknowledged, file_id, &counted_url).await;
    server.kill().unwrap();
    server.wait().unwrap();
}

/// After the restart: the store opens, every acknowledged order is there, links issued
/// before the crash download in full, and the completed single download still counts.
async fn check_after_restart(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    acknowledged: &[(u64, String)],
    file_id: u64,
    counted_url: &str,
) {
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for (order_id, _) in acknowledged {
        let r = http
            .get(format!("{base}/api/v1/orders/{order_id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "acknowledged order {order_id} is missing after the crash"
        );
    }
    // Links issued before the crash still download in full.
    let (_, url) = acknowledged.last().unwrap();
    let bytes = http
        .get(format!("{url}/{file_id}").replace(url.split("/d/").next().unwrap(), base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 256 * 1024);
    let again = http
        .get(counted_url.replace(counted_url.split("/d/").next().unwrap(), base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        403,
        "a download answered before the crash still counts"
    );
}

/// Makes a product allowing one download, orders it, downloads it in full, and returns the
/// file's URL.
async fn single_download_taken(http: &reqwest::Client, base: &str, token: &str) -> String {
    let (link, file_id) = product_ordered(http, base, token, "once", 1, vec![5u8; 64 * 1024]).await;
    let url = format!("{link}/{file_id}");
    let local = url.replace(url.split("/d/").next().unwrap(), base);
    let body = http
        .get(&local)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 64 * 1024);
    url
}

/// Makes a product with one file and `max_downloads`, orders it, and returns the buyer's
/// link (from the configured public URL) and the file's id.
async fn product_ordered(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    product: &str,
    max_downloads: u32,
    body: Vec<u8>,
) -> (String, u64) {
    http.post(format!("{base}/api/v1/products"))
        .bearer_auth(token)
        .json(&serde_json::json!({"product_id": product, "name": product, "max_downloads": max_downloads}))
        .send()
        .await
        .unwrap();
    let file: serde_json::Value = http
        .put(format!(
            "{base}/api/v1/products/{product}/files/{product}.bin"
        ))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order: serde_json::Value = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .json(&serde_json::json!({"email": format!("{product}@example.com"), "product_ids": [product]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        order["issued"][0]["url"].as_str().unwrap().to_owned(),
        file["file_id"].as_u64().unwrap(),
    )
}
