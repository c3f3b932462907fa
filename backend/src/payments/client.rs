//! The one outgoing HTTP client: PayPal's IPN verification, Stripe's API, the seller's
//! webhook endpoints. Every call has its own deadline (the whole exchange, body included),
//! follows no redirects, and reads at most 64 KiB of the answer.

use std::time::Duration;

/// What a remote server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body (at most 64 KiB).
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text, for a person (at most `chars` characters).
    pub fn excerpt(&self, chars: usize) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(chars)
            .collect()
    }
}

const MAX_ANSWER: usize = 64 * 1024;

/// A cheap-to-clone HTTP client.
#[derive(Clone, Debug)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    pub fn new() -> Result<Self, String> {
        crate::tls::install_crypto_provider();
        reqwest::Client::builder()
            .user_agent(concat!("Dropgate/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map(Self)
            .map_err(|e| format!("the HTTP client could not be set up: {e}"))
    }

    /// POSTs `body` with `headers`; the whole exchange must end within `timeout`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let mut request = self.0.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Self::finish(request, timeout).await
    }

    /// GETs `url` with a Bearer token.
    pub async fn get(&self, url: &str, bearer: &str, timeout: Duration) -> Result<Answer, String> {
        let request = self.0.get(url).timeout(timeout).bearer_auth(bearer);
        Self::finish(request, timeout).await
    }

    async fn finish(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, String> {
        let exchange = async {
            let mut response = request.send().await.map_err(describe)?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                let room = MAX_ANSWER - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() == MAX_ANSWER {
                    break;
                }
            }
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no complete answer within {} s", timeout.as_secs_f32()))?
    }
}

/// reqwest's errors name the URL; a person wants to know what happened.
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    format!("{what} ({detail})")
}
