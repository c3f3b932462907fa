//! Signatures of payment notifications, one scheme per provider, and the Standard Webhooks
//! scheme Dropgate signs its own outgoing webhooks with (and checks the generic incoming
//! one against).
//!
//! Every check works on the raw request bytes (never re-serialised JSON), compares in
//! constant time, accepts any of several secrets (rotation) and any of several signatures
//! in one header, and takes `now` as an argument. The `standardwebhooks` crate exists, but
//! it reads the clock itself and brings its own base64 and time crates; the scheme is a
//! dozen lines over the `hmac` the store already uses, and the tests check it against the
//! third-party Python verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from our clock (Stripe's and Standard Webhooks' 5 min).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a notification's signature was not accepted; shown beside the notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no secret is set for this provider")]
    NoSecret,
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match any secret (wrong secret, or the body was changed)")]
    Mismatch,
    #[error(
        "the signed timestamp is {0} s away from now (more than 300 s): a replay or a wrong clock"
    )]
    Stale(i64),
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn check_time(signed_secs: i64, now: Timestamp) -> Result<(), SignatureError> {
    let skew = now.unix_millis() / 1000 - signed_secs;
    if skew.abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale(skew));
    }
    Ok(())
}

fn need(secrets: &[String]) -> Result<(), SignatureError> {
    if secrets.iter().all(String::is_empty) {
        return Err(SignatureError::NoSecret);
    }
    Ok(())
}

/// Stripe: `Stripe-Signature: t=<unix secs>,v1=<hex>[,v1=<hex>…]` over `t.payload`.
pub fn stripe(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: Timestamp,
) -> Result<(), SignatureError> {
    const NAME: &str = "Stripe-Signature";
    need(secrets)?;
    let header = header.ok_or(SignatureError::Missing(NAME))?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => {
                signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed(NAME))?);
            }
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed(NAME))?;
    let secs: i64 = t.parse().map_err(|_| SignatureError::Malformed(NAME))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed(NAME));
    }
    let matches = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        let expected = mac(secret.as_bytes(), &[t.as_bytes(), b".", body]);
        signatures.iter().any(|s| same(s, &expected))
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    check_time(secs, now)
}

/// Paddle Billing: `Paddle-Signature: ts=<unix secs>;h1=<hex>[;h1=<hex>…]` over `ts:body`.
pub fn paddle(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: Timestamp,
) -> Result<(), SignatureError> {
    const NAME: &str = "Paddle-Signature";
    need(secrets)?;
    let header = header.ok_or(SignatureError::Missing(NAME))?;
    let mut ts = None;
    let mut signatures = Vec::new();
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("ts", v)) => ts = Some(v),
            Some(("h1", v)) => {
                signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed(NAME))?);
            }
            _ => {}
        }
    }
    let ts = ts.ok_or(SignatureError::Malformed(NAME))?;
    let secs: i64 = ts.parse().map_err(|_| SignatureError::Malformed(NAME))?;
    let matches = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        let expected = mac(secret.as_bytes(), &[ts.as_bytes(), b":", body]);
        signatures.iter().any(|s| same(s, &expected))
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    check_time(secs, now)
}

/// Lemon Squeezy: `X-Signature: <hex HMAC of the body>`.
pub fn lemonsqueezy(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
) -> Result<(), SignatureError> {
    const NAME: &str = "X-Signature";
    need(secrets)?;
    let given = hex::decode(header.ok_or(SignatureError::Missing(NAME))?.trim())
        .map_err(|_| SignatureError::Malformed(NAME))?;
    body_mac_matches(&given, body, secrets)
}

/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC of the body>`.
pub fn shopify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
) -> Result<(), SignatureError> {
    const NAME: &str = "X-Shopify-Hmac-Sha256";
    need(secrets)?;
    let given = BASE64
        .decode(header.ok_or(SignatureError::Missing(NAME))?.trim())
        .map_err(|_| SignatureError::Malformed(NAME))?;
    body_mac_matches(&given, body, secrets)
}

fn body_mac_matches(given: &[u8], body: &[u8], secrets: &[String]) -> Result<(), SignatureError> {
    let matches = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .any(|secret| same(given, &mac(secret.as_bytes(), &[body])));
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A Standard Webhooks secret: `whsec_` + base64 of the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (24 to 64 key bytes, as the convention asks).
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text.trim().strip_prefix("whsec_").ok_or_else(|| {
            "a webhook secret starts with whsec_ followed by base64 (Standard Webhooks)".to_owned()
        })?;
        let key = BASE64
            .decode(b64)
            .map_err(|_| "the part after whsec_ is not valid base64".to_owned())?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "a webhook secret holds 24 to 64 bytes; this one holds {}",
                key.len()
            ));
        }
        Ok(Self(key))
    }

    /// A fresh random secret.
    pub fn generate() -> Self {
        use rand::TryRngCore;
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .expect("the operating system's random number generator failed");
        Self(key)
    }

    /// The `whsec_…` form.
    pub fn expose(&self) -> String {
        format!("whsec_{}", BASE64.encode(&self.0))
    }

    /// `v1,<base64>` over `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let signed = mac(
            &self.0,
            &[
                id.as_bytes(),
                b".",
                timestamp_secs.to_string().as_bytes(),
                b".",
                body,
            ],
        );
        format!("v1,{}", BASE64.encode(signed))
    }
}

/// Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` (one or
/// more space-separated `v1,<base64>`) over `id.timestamp.body`, with any of `secrets`.
pub fn standard(
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    secrets: &[WebhookSecret],
    now: Timestamp,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let id = id.ok_or(SignatureError::Missing("webhook-id"))?;
    let ts_text = timestamp.ok_or(SignatureError::Missing("webhook-timestamp"))?;
    let signature = signature.ok_or(SignatureError::Missing("webhook-signature"))?;
    let secs: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    let given: Vec<Vec<u8>> = signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| BASE64.decode(s).ok())
        .collect();
    if given.is_empty() {
        return Err(SignatureError::Malformed("webhook-signature"));
    }
    let matches = secrets.iter().any(|secret| {
        let expected = mac(
            &secret.0,
            &[id.as_bytes(), b".", ts_text.trim().as_bytes(), b".", body],
        );
        given.iter().any(|g| same(g, &expected))
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    check_time(secs, now)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn stripe_header(secret: &str, t: i64, body: &[u8]) -> String {
        let sig = mac(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
        format!("t={t},v1={}", hex::encode(sig))
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000)
    }

    #[test]
    fn stripe_accepts_any_secret_and_any_v1_and_refuses_the_rest() {
        let body = br#"{"id":"evt_1"}"#;
        let secrets = vec!["whsec_old".to_owned(), "whsec_new".to_owned()];
        let t = 1_800_000_000;
        let good = stripe_header("whsec_new", t, body);
        assert_eq!(stripe(Some(&good), body, &secrets, now()), Ok(()));
        let two = format!("{good},v1={}", hex::encode([0u8; 32]));
        assert_eq!(stripe(Some(&two), body, &secrets, now()), Ok(()));
        assert_eq!(
            stripe(
                Some(&stripe_header("other", t, body)),
                body,
                &secrets,
                now()
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            stripe(Some(&good), br#"{"id":"evt_2"}"#, &secrets, now()),
            Err(SignatureError::Mismatch)
        );
        let old = stripe_header("whsec_new", t - 301, body);
        assert_eq!(
            stripe(Some(&old), body, &secrets, now()),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            stripe(None, body, &secrets, now()),
            Err(SignatureError::Missing("Stripe-Signature"))
        );
        assert_eq!(
            stripe(Some(&good), body, &[], now()),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn paddle_lemonsqueezy_shopify() {
        let body = b"{}";
        let secrets = vec!["s3cret".to_owned()];
        let h1 = hex::encode(mac(b"s3cret", &[b"1800000000", b":", body]));
        assert_eq!(
            paddle(
                Some(&format!("ts=1800000000;h1={h1}")),
                body,
                &secrets,
                now()
            ),
            Ok(())
        );
        assert_eq!(
            paddle(
                Some(&format!("ts=1800000000;h1={h1}")),
                b"{ }",
                &secrets,
                now()
            ),
            Err(SignatureError::Mismatch)
        );
        let hexsig = hex::encode(mac(b"s3cret", &[body]));
        assert_eq!(lemonsqueezy(Some(&hexsig), body, &secrets), Ok(()));
        assert_eq!(
            lemonsqueezy(Some("zz"), body, &secrets),
            Err(SignatureError::Malformed("X-Signature"))
        );
        let b64 = BASE64.encode(mac(b"s3cret", &[body]));
        assert_eq!(shopify(Some(&b64), body, &secrets), Ok(()));
        assert_eq!(
            shopify(Some(&b64), body, &["other".to_owned()]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_round_trip() {
        let secret = WebhookSecret::generate();
        let again = WebhookSecret::parse(&secret.expose()).unwrap();
        assert_eq!(secret, again);
        let sig = secret.sign("msg_1", 1_800_000_000, b"{}");
        assert_eq!(
            standard(
                Some("msg_1"),
                Some("1800000000"),
                Some(&sig),
                b"{}",
                std::slice::from_ref(&again),
                now()
            ),
            Ok(())
        );
        assert_eq!(
            standard(
                Some("msg_2"),
                Some("1800000000"),
                Some(&sig),
                b"{}",
                std::slice::from_ref(&again),
                now()
            ),
            Err(SignatureError::Mismatch)
        );
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        assert!(WebhookSecret::parse("nope").is_err());
    }
}
