//! The buyer's self-service page: "send me my links again". The answer never says whether
//! the address is known; rate limits per address and per client keep it from being used to
//! flood a mailbox or to rotate a buyer's links all day.

use super::{OrderService, ServiceError};
use crate::auth::throttle::{Throttle, ThrottlePolicy};
use domain::{Email, Timestamp};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Requests one address may make per hour.
const PER_EMAIL: ThrottlePolicy = ThrottlePolicy {
    max_failures: 3,
    window: Duration::from_secs(3600),
};
/// Requests one client may make per hour (a household or office shares an IP).
const PER_CLIENT: ThrottlePolicy = ThrottlePolicy {
    max_failures: 20,
    window: Duration::from_secs(3600),
};

/// What the buyer typed into the form.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub email: String,
    /// A field people never see or fill; bots that fill every field give themselves away.
    pub honeypot: String,
    pub client: IpAddr,
}

/// The self-service use case.
#[derive(Clone, Debug)]
pub struct SelfService {
    orders: OrderService,
    per_email: Arc<Throttle>,
    per_client: Arc<Throttle>,
}

impl SelfService {
    pub fn new(orders: OrderService) -> Self {
        Self {
            orders,
            per_email: Arc::new(Throttle::new(PER_EMAIL)),
            per_client: Arc::new(Throttle::new(PER_CLIENT)),
        }
    }

    /// Mails fresh links for every live purchase of the address, if it has any. `Ok` means
    /// "done, if there was anything to do" in every case the buyer may not learn about;
    /// a malformed address and too many requests are errors a person can act on.
    pub async fn request(&self, input: LinkRequest, now: Timestamp) -> Result<(), ServiceError> {
        let email = Email::parse(&input.email).map_err(|e| ServiceError::invalid("email", e))?;
        let client = input.client.to_string();
        for (throttle, key) in [
            (&self.per_client, client.as_str()),
            (&self.per_email, email.as_str()),
        ] {
            throttle
                .check(key, now)
                .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })?;
        }
        self.per_client.record_failure(&client, now);
        self.per_email.record_failure(email.as_str(), now);
        if !input.honeypot.trim().is_empty() {
            tracing::info!(client = %input.client, "self-service request with the honeypot filled; ignored");
            return Ok(());
        }
        let links = self.orders.self_service(&email, now).await?;
        tracing::info!(links, "self-service request handled");
        Ok(())
    }
}
