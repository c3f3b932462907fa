//! The buyer library: every purchase of one address on one page. A buyer asks for it on
//! the self-service page (with the same enumeration-proof answer and limits), gets a
//! sign-in link by mail that works once within [`SIGN_IN_LIFETIME`], and exchanges it for a
//! session that lasts [`SESSION_LIFETIME`] at most (and ends with the browser). From the
//! library a buyer opens any live purchase, which makes a fresh link for it.

use super::ServiceError;
use super::orders::{OrderService, fresh_password};
use crate::store;
use crate::store::library::{LibraryTokenRecord, TokenPurpose};
use domain::{Denied, DownloadPassword, Email, GrantId, Language, OrderId, Timestamp};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a mailed sign-in link works.
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The longest a library session lasts (the cookie also ends with the browser).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// One purchase in the library.
#[derive(Clone, Debug, PartialEq)]
pub struct LibraryPurchase {
    pub order_id: OrderId,
    pub ordered_at: Timestamp,
    pub grant_id: GrantId,
    pub product_name: String,
    pub files: Vec<LibraryFile>,
    /// 0 = unlimited.
    pub max_downloads: u32,
    pub valid_until: Option<Timestamp>,
    /// Why it cannot be downloaded, or `None` when it can.
    pub refusal: Option<Denied>,
}

/// One file of a purchase.
#[derive(Clone, Debug, PartialEq)]
pub struct LibraryFile {
    pub name: String,
    pub size: u64,
    /// `None` when unlimited.
    pub downloads_left: Option<f64>,
}

/// The library's use cases.
#[derive(Clone, Debug)]
pub struct LibraryService {
    orders: OrderService,
}

/// A random token and the digest that is stored for it.
fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    let token = hex::encode(bytes);
    let digest = digest(&token);
    (token, digest)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl LibraryService {
    pub fn new(orders: OrderService) -> Self {
        Self { orders }
    }

    /// Mails a sign-in link to `email` if it has bought anything; nothing otherwise (the
    /// caller answers the same either way). Returns whether a mail was queued.
    pub async fn mail_sign_in(
        &self,
        email: Email,
        language: Option<Language>,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let mailer = self.orders.mailer().clone();
        let queued = self
            .orders
            .store()
            .run(move |s| {
                if s.read(|tx| store::orders::orders_by_email(tx, &email))?
                    .is_empty()
                {
                    return Ok(false);
                }
                s.write(|tx| {
                    store::library::remove_expired(tx, now)?;
                    let orders = store::orders::orders_by_email(tx, &email)?;
                    // The buyer's newest order's language, else the browser's.
                    let mut order_language = None;
                    for id in orders.iter().rev() {
                        if let Some(o) = store::orders::order(tx, *id)? {
                            order_language = o.language;
                            break;
                        }
                    }
                    let (token, digest) = new_token();
                    store::library::put_token(
                        tx,
                        &digest,
                        &LibraryTokenRecord {
                            email: email.clone(),
                            purpose: TokenPurpose::SignIn,
                            created_at: now,
                            expires_at: now.plus(SIGN_IN_LIFETIME),
                        },
                    )?;
                    let url = mailer.library_sign_in_url(&token);
                    mailer.queue_library_sign_in(
                        tx,
                        &email,
                        &url,
                        order_language.or(language),
                        now,
                    )?;
                    Ok::<_, ServiceError>(true)
                })
            })
            .await?;
        if queued {
            self.orders.mailer().wake();
        }
        Ok(queued)
    }

    /// Whether a sign-in link is still good (without using it): the page a mail links to
    /// shows a button only then, so a mail scanner that follows the link spends nothing.
    pub async fn sign_in_is_valid(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        Ok(self
            .live_token(token, TokenPurpose::SignIn, now)
            .await?
            .is_some())
    }

    /// The token's record while it is of `purpose` and has not expired.
    async fn live_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> Result<Option<LibraryTokenRecord>, ServiceError> {
        let digest = digest(token);
        let record = self
            .orders
            .store()
            .run(move |s| s.read(|tx| store::library::token(tx, &digest)))
            .await?;
        Ok(record.filter(|r| r.purpose == purpose && r.expires_at > now))
    }

    /// Uses a sign-in link up and opens a session; returns the session's token, or `None`
    /// when the link was used already, has expired or never existed.
    pub async fn sign_in(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<String>, ServiceError> {
        let link = digest(token);
        self.orders
            .store()
            .run(move |s| {
                s.write(|tx| {
                    let Some(record) = store::library::token(tx, &link)? else {
                        return Ok(None);
                    };
                    if record.purpose != TokenPurpose::SignIn {
                        return Ok(None);
                    }
                    // Used once, valid or not.
                    store::library::remove_token(tx, &link)?;
                    if record.expires_at <= now {
                        return Ok(None);
                    }
                    let (session, digest) = new_token();
                    store::library::put_token(
                        tx,
                        &digest,
                        &LibraryTokenRecord {
                            email: record.email,
                            purpose: TokenPurpose::Session,
                            created_at: now,
                            expires_at: now.plus(SESSION_LIFETIME),
                        },
                    )?;
                    Ok::<_, ServiceError>(Some(session))
                })
            })
            .await
    }

    /// The address a session belongs to, while it lasts.
    pub async fn session(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Email>, ServiceError> {
        Ok(self
            .live_token(token, TokenPurpose::Session, now)
            .await?
            .map(|r| r.email))
    }

    /// Ends a session.
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let digest = digest(token);
        self.orders
            .store()
            .run(move |s| {
                s.write(|tx| {
                    if store::library::token(tx, &digest)?
                        .is_some_and(|r| r.purpose == TokenPurpose::Session)
                    {
                        store::library::remove_token(tx, &digest)?;
                    }
                    Ok::<_, ServiceError>(())
                })
            })
            .await
    }

    /// Every purchase of `email`, newest order first.
    pub async fn purchases(
        &self,
        email: &Email,
        now: Timestamp,
    ) -> Result<Vec<LibraryPurchase>, ServiceError> {
        let email = email.clone();
        self.orders
            .store()
            .run(move |s| {
                s.read(|tx| {
                    let mut out = Vec::new();
                    for order_id in store::orders::orders_by_email(tx, &email)?
                        .into_iter()
                        .rev()
                    {
                        let Some(order) = store::orders::order(tx, order_id)? else {
                            continue;
                        };
                        for gid in &order.grants {
                            let Some(grant) = store::grants::grant(tx, *gid)? else {
                                continue;
                            };
                            let product = store::catalog::product(tx, &grant.product_id)?;
                            let records = store::catalog::files_of(tx, product.as_ref())?;
                            let sizes = store::catalog::sizes(&records);
                            let files = records
                                .into_iter()
                                .map(|(fid, f)| LibraryFile {
                                    downloads_left: grant.left(fid, f.size),
                                    size: f.size,
                                    name: f.name,
                                })
                                .collect();
                            out.push(LibraryPurchase {
                                order_id,
                                ordered_at: order.created_at,
                                grant_id: *gid,
                                product_name: product
                                    .map_or_else(|| grant.product_id.to_string(), |p| p.name),
                                max_downloads: grant.max_downloads,
                                valid_until: grant.valid_until,
                                refusal: grant.refusal(order.status, &sizes, now),
                                files,
                            });
                        }
                    }
                    Ok::<_, crate::store::StoreError>(out)
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// A fresh link to one of `email`'s live purchases (the grant's earlier link stops
    /// working, as with every renewal). `None` when the grant is not the address's or
    /// cannot be downloaded; the library shows why beside it.
    pub async fn open(
        &self,
        email: &Email,
        grant_id: GrantId,
        now: Timestamp,
    ) -> Result<Option<DownloadPassword>, ServiceError> {
        let email = email.clone();
        let key = self.orders.key().clone();
        self.orders
            .store()
            .run(move |s| {
                s.write(|tx| {
                    let Some(mut grant) = store::grants::grant(tx, grant_id)? else {
                        return Ok(None);
                    };
                    let Some(order) = store::orders::order(tx, grant.order_id)? else {
                        return Ok(None);
                    };
                    if order.email != email || !grant.is_live(order.status, now) {
                        return Ok(None);
                    }
                    let password = fresh_password();
                    grant.rotate(key.digest(&password));
                    store::grants::put_grant(tx, grant_id, &grant)?;
                    Ok::<_, ServiceError>(Some(password))
                })
            })
            .await
    }
}
