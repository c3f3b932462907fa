//! The buyer's self-service page: "send me my links again". The answer never says whether
//! the address is known; rate limits per address and per client keep it from being used to
//! flood a mailbox or to rotate a buyer's links all day, and a signed, single-use "form shown
//! at" stamp with a honeypot field turns away scripts that post without a person behind them.

use super::LibraryService;
use super::{OrderService, ServiceError};
use crate::auth::form_stamp::{FormStamps, SpentStamps, StampError};
use crate::auth::throttle::{self, Throttle, ThrottlePolicy};
use domain::{Email, Language, OrderId, Timestamp};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The limits of the self-service form; the defaults suit a shop, tests tighten or loosen
/// them.
#[derive(Debug, Clone, Copy)]
pub struct SelfServicePolicy {
    /// Requests one address may make per window.
    pub per_email: ThrottlePolicy,
    /// Requests one client may make per window (a household or office shares an IP).
    pub per_client: ThrottlePolicy,
    /// A form sent sooner than this after the page was shown was not filled in by a person.
    pub min_fill: Duration,
    /// A form shown longer ago than this must be sent again from a fresh page.
    pub max_form_age: Duration,
}

impl Default for SelfServicePolicy {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self {
            per_email: ThrottlePolicy {
                max_failures: 3,
                window: hour,
            },
            per_client: ThrottlePolicy {
                max_failures: 20,
                window: hour,
            },
            // Typing an address takes longer; autofill and a click take about this long.
            min_fill: Duration::from_millis(1500),
            max_form_age: Duration::from_secs(86_400),
        }
    }
}

/// What the buyer sent with the form.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub email: String,
    /// Optional: only this order's links are renewed.
    pub order_id: String,
    /// A field people never see or fill; bots that fill every field give themselves away.
    pub honeypot: String,
    /// The stamp the page put into the form when it was shown.
    pub form_stamp: String,
    pub client: IpAddr,
    /// The browser's language (`Accept-Language`), for mails whose order names none.
    pub language: Option<Language>,
}

/// Why a request was refused, each with its own words on the page. Everything else (an
/// unknown address, a bot) is answered as if it had worked.
#[derive(Debug, thiserror::Error)]
pub enum LinkRefusal {
    #[error("that is not an email address: {0}")]
    Email(String),
    #[error("an order ID is the 7-digit number in the order mail")]
    OrderId,
    #[error("sent quicker than a person can fill in the form")]
    TooQuick,
    #[error("the form was shown too long ago")]
    Stale,
    #[error("too many requests; retry after {retry_after:?}")]
    TooMany { retry_after: Duration },
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// The self-service use case.
#[derive(Clone, Debug)]
pub struct SelfService {
    orders: OrderService,
    library: LibraryService,
    stamps: FormStamps,
    spent: Arc<SpentStamps>,
    policy: SelfServicePolicy,
    per_email: Arc<Throttle>,
    per_client: Arc<Throttle>,
}

impl SelfService {
    pub fn new(orders: OrderService, stamps: FormStamps, policy: SelfServicePolicy) -> Self {
        Self {
            library: LibraryService::new(orders.clone()),
            orders,
            stamps,
            spent: Arc::new(SpentStamps::default()),
            policy,
            per_email: Arc::new(Throttle::new(policy.per_email)),
            per_client: Arc::new(Throttle::new(policy.per_client)),
        }
    }

    /// The stamp a freshly shown form carries.
    pub fn form_stamp(&self, now: Timestamp) -> String {
        self.stamps.issue(now)
    }

    /// Mails fresh links for every live purchase of the address (or of the one order named),
    /// if it has any. `Ok` means "done, if there was anything to do" in every case the buyer
    /// may not learn about; the refusals are the ones a person can act on.
    pub async fn request(&self, input: LinkRequest, now: Timestamp) -> Result<(), LinkRefusal> {
        let order = match input.order_id.trim() {
            "" => None,
            text => Some(OrderId::parse(text).ok_or(LinkRefusal::OrderId)?),
        };
        let Some(email) = self.admit(&input, now)? else {
            return Ok(());
        };
        let links = self
            .orders
            .self_service(&email, order, input.language, now)
            .await?;
        tracing::info!(links, "self-service request handled");
        Ok(())
    }

    /// Mails a sign-in link to the buyer library, if the address has bought anything, with
    /// the same checks, limits and answer as [`Self::request`].
    pub async fn request_library(
        &self,
        input: LinkRequest,
        now: Timestamp,
    ) -> Result<(), LinkRefusal> {
        let Some(email) = self.admit(&input, now)? else {
            return Ok(());
        };
        let queued = self
            .library
            .mail_sign_in(email, input.language, now)
            .await?;
        tracing::info!(queued, "library sign-in request handled");
        Ok(())
    }

    /// The library's use cases.
    pub fn library(&self) -> &LibraryService {
        &self.library
    }

    /// The checks every self-service request passes: a real address, a form shown by this
    /// server and filled in by a person, the limits, the honeypot. `Ok(None)` means "answer
    /// as if done, do nothing" (a script).
    fn admit(&self, input: &LinkRequest, now: Timestamp) -> Result<Option<Email>, LinkRefusal> {
        let email = Email::parse(&input.email).map_err(|e| LinkRefusal::Email(e.to_string()))?;
        match self.stamps.check(
            &input.form_stamp,
            now,
            self.policy.min_fill,
            self.policy.max_form_age,
        ) {
            Ok(stamp) => {
                if !self.spent.spend(stamp, now.minus(self.policy.max_form_age)) {
                    // Each page's stamp is good for one post: a replay is a script.
                    tracing::info!(client = %input.client, "self-service request with a form stamp already used; ignored");
                    return Ok(None);
                }
            }
            Err(StampError::Forged) => {
                // Not from our page: a script. It gets the usual answer and nothing happens.
                tracing::info!(client = %input.client, "self-service request without a valid form stamp; ignored");
                return Ok(None);
            }
            Err(StampError::TooQuick) => return Err(LinkRefusal::TooQuick),
            Err(StampError::Stale) => return Err(LinkRefusal::Stale),
        }
        // Counted before anything is looked up, so parallel requests see each other.
        let client = throttle::client_key(input.client);
        throttle::acquire_all(
            &[
                (&self.per_client, client.as_str()),
                (&self.per_email, email.as_str()),
            ],
            now,
        )
        .map_err(|retry_after| LinkRefusal::TooMany { retry_after })?;
        if !input.honeypot.trim().is_empty() {
            tracing::info!(client = %input.client, "self-service request with the honeypot filled; ignored");
            return Ok(None);
        }
        Ok(Some(email))
    }
}
