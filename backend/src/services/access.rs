//! Staff access: the first-run setup link, admin accounts, sign-in with throttling,
//! sessions, and API tokens.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::auth::throttle::{self, Throttle, ThrottlePolicy};
use crate::auth::{password, token};
use crate::store::access::{
    self as rows, AdminRecord, ApiTokenRecord, CreateAdminError, SessionRecord, SetupTokenRecord,
};
use crate::store::{Store, StoreError};
use domain::wire::{AccessOverview, AdminSummary, ApiTokenSummary, SessionUser};
use domain::{AdminId, ApiTokenId, Email, NewPassword, Timestamp};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The one answer for every failed sign-in, so it never tells which part was wrong.
const WRONG_CREDENTIALS: &str = "Wrong email or password.";

/// Session and throttle settings.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// A session ends after this long without use.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    pub per_account: ThrottlePolicy,
    pub per_ip: ThrottlePolicy,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(12 * 3600),
            session_absolute: Duration::from_secs(7 * 24 * 3600),
            per_account: ThrottlePolicy {
                max_failures: 5,
                window: Duration::from_secs(15 * 60),
            },
            per_ip: ThrottlePolicy {
                max_failures: 20,
                window: Duration::from_secs(15 * 60),
            },
        }
    }
}

/// A freshly signed-in session: the cookie value is only ever here.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub user: SessionUser,
    pub expires_at: Timestamp,
}

/// Staff access use cases; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessService {
    store: Store,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AccessConfig,
    account_throttle: Throttle,
    ip_throttle: Throttle,
}

impl AccessService {
    pub fn new(store: Store, config: AccessConfig) -> Self {
        let inner = Inner {
            account_throttle: Throttle::new(config.per_account),
            ip_throttle: Throttle::new(config.per_ip),
            config,
        };
        Self {
            store,
            inner: Arc::new(inner),
        }
    }

    /// The longest a session can live (the cookie's Max-Age; the server enforces the rest).
    pub fn session_lifetime(&self) -> Duration {
        self.inner.config.session_absolute
    }

    // ---- first run ----

    /// When no admin exists, replaces any earlier setup token with a new one and returns it
    /// (for the one-time setup link). With an admin, clears any token and returns `None`.
    pub async fn issue_setup_token(&self, now: Timestamp) -> Result<Option<String>, ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| {
                    if rows::admin_count(tx)? > 0 {
                        rows::clear_setup_token(tx)?;
                        return Ok(None);
                    }
                    let secret = token::random_secret();
                    rows::set_setup_token(
                        tx,
                        &SetupTokenRecord {
                            digest: token::digest(&secret),
                            created_at: now,
                        },
                    )?;
                    Ok::<_, StoreError>(Some(secret))
                })
            })
            .await
            .map_err(ServiceError::from)
    }

    /// Whether `setup_token` would still create the first admin.
    pub async fn setup_token_is_valid(&self, setup_token: String) -> Result<bool, ServiceError> {
        self.store
            .run(move |s| s.read(|tx| valid_setup_token(tx, &setup_token)))
            .await
            .map_err(ServiceError::from)
    }

    /// Creates the first admin through the setup link and signs them in. The link works once.
    pub async fn create_first_admin(
        &self,
        setup_token: String,
        email: Email,
        name: String,
        password: NewPassword,
        client: IpAddr,
        now: Timestamp,
    ) -> Result<NewSession, ServiceError> {
        let name = parse_name(&name)?;
        // Guesses of the link count with the client's sign-in failures.
        let client = throttle::client_key(client);
        self.inner
            .ip_throttle
            .acquire(&client, now)
            .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })?;
        // The link is checked before the password is hashed: a stranger guessing links (or
        // posting to an install that has its admin) costs a digest compare, not an argon2
        // computation. It is checked again, atomically, when the admin is written.
        if !self.setup_token_is_valid(setup_token.clone()).await? {
            return Err(setup_link_refused());
        }
        let password_hash = hash_off_runtime(password).await?;
        let session_secret = token::random_secret();
        let session_digest = token::digest(&session_secret);
        let expires_at = self.first_expiry(now);
        let user = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    if !valid_setup_token(tx, &setup_token)? {
                        return Err(setup_link_refused());
                    }
                    let record = AdminRecord {
                        email: email.clone(),
                        name: name.clone(),
                        password_hash,
                        created_at: now,
                        last_login_at: Some(now),
                    };
                    let admin_id = rows::insert_admin(tx, &record).map_err(admin_error)?;
                    rows::clear_setup_token(tx)?;
                    rows::insert_session(
                        tx,
                        &session_digest,
                        &SessionRecord {
                            admin_id,
                            created_at: now,
                            expires_at,
                        },
                    )?;
                    Ok(SessionUser {
                        admin_id,
                        email,
                        name,
                    })
                })
            })
            .await?;
        self.inner.ip_throttle.forgive(&client, now);
        tracing::info!(admin = %user.email, "first admin created through the setup link");
        Ok(NewSession {
            token: session_secret,
            user,
            expires_at,
        })
    }

    // ---- accounts ----

    /// Creates an admin (from the CLI or by another admin in Settings).
    pub async fn create_admin(
        &self,
        email: Email,
        name: String,
        password: NewPassword,
        actor: Actor,
        now: Timestamp,
    ) -> Result<AdminId, ServiceError> {
        let name = parse_name(&name)?;
        let password_hash = hash_off_runtime(password).await?;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let record = AdminRecord {
                        email,
                        name,
                        password_hash,
                        created_at: now,
                        last_login_at: None,
                    };
                    let id = rows::insert_admin(tx, &record).map_err(admin_error)?;
                    // Whoever holds an old setup link must not create a second first admin.
                    rows::clear_setup_token(tx)?;
                    record_audit(
                        tx,
                        &actor,
                        "admin.create",
                        &format!("admin:{id}"),
                        None::<&()>,
                        Some(&summary(id, record)),
                        now,
                    )?;
                    Ok(id)
                })
            })
            .await
    }

    /// Sets a new password and signs the admin out everywhere.
    pub async fn reset_password(
        &self,
        email: Email,
        password: NewPassword,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let password_hash = hash_off_runtime(password).await?;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let Some((id, mut record)) = rows::admin_by_email(tx, &email)? else {
                        return Err(ServiceError::NotFound(format!(
                            "no admin has the email {email}"
                        )));
                    };
                    record.password_hash = password_hash;
                    rows::update_admin(tx, id, &record)?;
                    rows::prune_sessions(tx, now, Some(id))?;
                    Ok(())
                })
            })
            .await
    }

    /// Removes another admin's account and ends their sessions. Nobody removes their own
    /// account (so the store always keeps at least one admin, and nobody locks themselves out
    /// by a slip).
    pub async fn remove_admin(
        &self,
        target: AdminId,
        by: AdminId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        if target == by {
            return Err(ServiceError::Conflict(
                "you cannot remove your own account; another admin can".into(),
            ));
        }
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let removed = rows::remove_admin(tx, target, now)?.ok_or_else(|| {
                        ServiceError::NotFound(format!("there is no admin with id {target}"))
                    })?;
                    record_audit(
                        tx,
                        &actor,
                        "admin.remove",
                        &format!("admin:{target}"),
                        Some(&summary(target, removed)),
                        None::<&()>,
                        now,
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// Changes the signed-in admin's own password after checking the current one; every
    /// session of theirs ends and the returned one replaces the caller's.
    pub async fn change_own_password(
        &self,
        admin_id: AdminId,
        current: String,
        new_password: NewPassword,
        now: Timestamp,
    ) -> Result<NewSession, ServiceError> {
        // Wrong current passwords count like wrong sign-ins of the account (a stolen
        // session must not become an unthrottled password oracle).
        let account = format!("admin:{admin_id}");
        self.inner
            .account_throttle
            .acquire(&account, now)
            .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })?;
        let found = self
            .store
            .run(move |s| s.read(|tx| rows::admin(tx, admin_id)))
            .await?
            .ok_or_else(|| ServiceError::Unauthorized("your account no longer exists".into()))?;
        let stored_hash = found.password_hash.clone();
        let matches = password::off_runtime(move || password::verify(&stored_hash, &current))
            .await
            .map_err(ServiceError::Internal)?;
        if matches {
            self.inner.account_throttle.clear(&account);
        } else {
            return Err(ServiceError::invalid(
                "current",
                "This is not your current password.",
            ));
        }
        let password_hash = hash_off_runtime(new_password).await?;
        let session_secret = token::random_secret();
        let digest = token::digest(&session_secret);
        let expires_at = self.first_expiry(now);
        let actor = Actor::Admin {
            id: admin_id,
            email: found.email.to_string(),
        };
        let user = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let mut record = rows::admin(tx, admin_id)?.ok_or_else(|| {
                        ServiceError::Unauthorized("your account no longer exists".into())
                    })?;
                    record.password_hash = password_hash;
                    rows::update_admin(tx, admin_id, &record)?;
                    rows::prune_sessions(tx, now, Some(admin_id))?;
                    rows::insert_session(
                        tx,
                        &digest,
                        &SessionRecord {
                            admin_id,
                            created_at: now,
                            expires_at,
                        },
                    )?;
                    let target = format!("admin:{admin_id}");
                    record_audit(
                        tx,
                        &actor,
                        "admin.password",
                        &target,
                        None::<&()>,
                        None::<&()>,
                        now,
                    )?;
                    Ok::<_, ServiceError>(SessionUser {
                        admin_id,
                        email: record.email,
                        name: record.name,
                    })
                })
            })
            .await?;
        Ok(NewSession {
            token: session_secret,
            user,
            expires_at,
        })
    }

    // ---- sign-in and sessions ----

    /// Signs in with email and password. Wrong email and wrong password get the same answer
    /// in the same time; failures are throttled per account and per client IP.
    pub async fn login(
        &self,
        email_text: &str,
        password_text: String,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<NewSession, ServiceError> {
        let account_key = throttle::account_key(email_text);
        let ip_key = throttle::client_key(ip);
        let inner = &self.inner;
        // Counted before the password is checked, so concurrent guesses see each other.
        throttle::acquire_all(
            &[
                (&inner.account_throttle, &account_key),
                (&inner.ip_throttle, &ip_key),
            ],
            now,
        )
        .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })?;
        let found = match Email::parse(email_text) {
            Ok(email) => {
                self.store
                    .run(move |s| s.read(|tx| rows::admin_by_email(tx, &email)))
                    .await?
            }
            Err(_) => None,
        };
        let stored_hash = found.as_ref().map(|(_, r)| r.password_hash.clone());
        let matches = password::off_runtime(move || {
            if let Some(phc) = stored_hash {
                password::verify(&phc, &password_text)
            } else {
                password::verify_against_dummy(&password_text);
                false
            }
        })
        .await
        .map_err(ServiceError::Internal)?;
        let Some((admin_id, mut record)) = found.filter(|_| matches) else {
            return Err(ServiceError::Unauthorized(WRONG_CREDENTIALS.into()));
        };
        inner.ip_throttle.forgive(&ip_key, now);
        inner.account_throttle.clear(&account_key);

        let session_secret = token::random_secret();
        let expires_at = self.first_expiry(now);
        record.last_login_at = Some(now);
        let user = SessionUser {
            admin_id,
            email: record.email.clone(),
            name: record.name.clone(),
        };
        let digest = token::digest(&session_secret);
        self.store
            .run(move |s| {
                s.write(|tx| {
                    rows::update_admin(tx, admin_id, &record)?;
                    rows::prune_sessions(tx, now, None)?;
                    rows::insert_session(
                        tx,
                        &digest,
                        &SessionRecord {
                            admin_id,
                            created_at: now,
                            expires_at,
                        },
                    )
                })
            })
            .await?;
        Ok(NewSession {
            token: session_secret,
            user,
            expires_at,
        })
    }

    /// The admin behind a session cookie, if the session is valid. Extends the idle expiry
    /// (writing only when half of it is used up, so most requests stay read-only).
    pub async fn session_user(
        &self,
        cookie: String,
        now: Timestamp,
    ) -> Result<Option<SessionUser>, ServiceError> {
        let idle = self.inner.config.session_idle;
        let absolute = self.inner.config.session_absolute;
        self.store
            .run(move |s| {
                let digest = token::digest(&cookie);
                let found = s.read(|tx| {
                    let Some(session) = rows::session(tx, &digest)? else {
                        return Ok(None);
                    };
                    if session.expires_at <= now {
                        return Ok(None);
                    }
                    Ok(rows::admin(tx, session.admin_id)?.map(|admin| (session, admin)))
                })?;
                let Some((mut session, admin)) = found else {
                    return Ok(None);
                };
                if session.expires_at.since(now) < idle / 2 {
                    session.expires_at = now.plus(idle).min(session.created_at.plus(absolute));
                    s.write(|tx| rows::insert_session(tx, &digest, &session))?;
                }
                Ok::<_, StoreError>(Some(SessionUser {
                    admin_id: session.admin_id,
                    email: admin.email,
                    name: admin.name,
                }))
            })
            .await
            .map_err(ServiceError::from)
    }

    /// Ends a session (sign-out). Unknown cookies are ignored.
    pub async fn logout(&self, cookie: String) -> Result<(), ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| rows::remove_session(tx, &token::digest(&cookie)).map(|_| ()))
            })
            .await
            .map_err(ServiceError::from)
    }

    fn first_expiry(&self, now: Timestamp) -> Timestamp {
        now.plus(
            self.inner
                .config
                .session_idle
                .min(self.inner.config.session_absolute),
        )
    }

    // ---- API tokens ----

    /// Creates an API token; the returned secret is shown once and never stored.
    pub async fn create_api_token(
        &self,
        name: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(ApiTokenId, String), ServiceError> {
        let name = parse_token_name(name)?;
        let secret = format!("{}{}", token::API_TOKEN_PREFIX, token::random_secret());
        let record = ApiTokenRecord {
            name,
            digest: token::digest(&secret),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let id = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let id = rows::insert_api_token(tx, &record)?;
                    record_audit(
                        tx,
                        &actor,
                        "api_token.create",
                        &format!("api-token:{id}"),
                        None::<&()>,
                        Some(&token_summary(id, record)),
                        now,
                    )?;
                    Ok::<_, StoreError>(id)
                })
            })
            .await?;
        Ok((id, secret))
    }

    /// Revokes a token at once; it stays listed as revoked.
    pub async fn revoke_api_token(
        &self,
        id: ApiTokenId,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let Some(mut record) = rows::api_token(tx, id)? else {
                        return Err(ServiceError::NotFound(format!(
                            "there is no API token with id {id}"
                        )));
                    };
                    if record.revoked_at.is_some() {
                        return Err(ServiceError::Conflict(format!(
                            "API token {id} is already revoked"
                        )));
                    }
                    let before = token_summary(id, record.clone());
                    record.revoked_at = Some(now);
                    rows::update_api_token(tx, id, &record)?;
                    record_audit(
                        tx,
                        &actor,
                        "api_token.revoke",
                        &format!("api-token:{id}"),
                        Some(&before),
                        Some(&token_summary(id, record)),
                        now,
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// The token id behind a bearer secret, if it is valid and not revoked. Records use at
    /// most once a minute, so API traffic does not turn every request into a write.
    pub async fn authenticate_api_token(
        &self,
        secret: String,
        now: Timestamp,
    ) -> Result<Option<ApiTokenId>, ServiceError> {
        self.store
            .run(move |s| {
                let digest = token::digest(&secret);
                let Some((id, mut record)) = s.read(|tx| rows::api_token_by_digest(tx, &digest))?
                else {
                    return Ok(None);
                };
                if record.revoked_at.is_some() || !token::digests_equal(&record.digest, &digest) {
                    return Ok(None);
                }
                if record
                    .last_used_at
                    .is_none_or(|t| now.since(t) > Duration::from_secs(60))
                {
                    record.last_used_at = Some(now);
                    s.write(|tx| rows::update_api_token(tx, id, &record))?;
                }
                Ok::<_, StoreError>(Some(id))
            })
            .await
            .map_err(ServiceError::from)
    }

    // ---- overviews ----

    /// Staff accounts and API tokens.
    pub async fn access_overview(&self) -> Result<AccessOverview, ServiceError> {
        self.store
            .run(|s| {
                s.read(|tx| {
                    let admins = rows::admins(tx)?
                        .into_iter()
                        .map(|(id, a)| summary(id, a))
                        .collect();
                    let api_tokens = rows::api_tokens(tx)?
                        .into_iter()
                        .map(|(id, t)| token_summary(id, t))
                        .collect();
                    Ok(AccessOverview { admins, api_tokens })
                })
            })
            .await
            .map_err(ServiceError::from)
    }
}

fn summary(id: AdminId, a: AdminRecord) -> AdminSummary {
    AdminSummary {
        id,
        email: a.email,
        name: a.name,
        created_at: a.created_at,
        last_login_at: a.last_login_at,
    }
}

fn token_summary(id: ApiTokenId, t: ApiTokenRecord) -> ApiTokenSummary {
    ApiTokenSummary {
        id,
        name: t.name,
        created_at: t.created_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

/// The answer to a setup link that does not (or no longer) create the first admin.
fn setup_link_refused() -> ServiceError {
    ServiceError::Forbidden(
        "This setup link has already been used or was replaced by a newer one. Sign in instead, or restart Dropgate for a new link if no admin exists.".into(),
    )
}

fn valid_setup_token(tx: &impl crate::store::Reader, candidate: &str) -> Result<bool, StoreError> {
    if rows::admin_count(tx)? > 0 {
        return Ok(false);
    }
    Ok(rows::setup_token(tx)?
        .is_some_and(|stored| token::digests_equal(&stored.digest, &token::digest(candidate))))
}

async fn hash_off_runtime(password: NewPassword) -> Result<String, ServiceError> {
    password::off_runtime(move || password::hash(&password))
        .await
        .map_err(ServiceError::Internal)
}

fn admin_error(e: CreateAdminError) -> ServiceError {
    match e {
        CreateAdminError::EmailTaken => {
            ServiceError::invalid("email", "an admin with this email already exists")
        }
        CreateAdminError::Store(e) => e.into(),
    }
}

fn parse_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "name",
            "a name has at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "a name cannot contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn parse_token_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid(
            "name",
            "give the token a name, e.g. the shop that uses it",
        ));
    }
    if name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "a token name has at most 80 printable characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> AccessService {
        AccessService::new(Store::in_memory().unwrap(), AccessConfig::default())
    }
    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000)
    }
    fn pw() -> NewPassword {
        NewPassword::parse("correct horse battery staple").unwrap()
    }
    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[tokio::test]
    async fn setup_link_creates_the_first_admin_once() {
        let svc = service();
        let token = svc.issue_setup_token(t(0)).await.unwrap().unwrap();
        assert!(svc.setup_token_is_valid(token.clone()).await.unwrap());
        assert!(!svc.setup_token_is_valid("wrong".into()).await.unwrap());
        let email = Email::parse("owner@example.com").unwrap();
        let session = svc
            .create_first_admin(
                token.clone(),
                email.clone(),
                "Owner".into(),
                pw(),
                IpAddr::from([192, 0, 2, 1]),
                t(1),
            )
            .await
            .unwrap();
        assert_eq!(session.user.email, email);
        assert_eq!(
            svc.session_user(session.token.clone(), t(2)).await.unwrap(),
            Some(session.user)
        );
        let again = svc
            .create_first_admin(
                token.clone(),
                Email::parse("x@example.com").unwrap(),
                String::new(),
                pw(),
                IpAddr::from([192, 0, 2, 1]),
                t(3),
            )
            .await;
        assert!(matches!(again, Err(ServiceError::Forbidden(_))));
        assert!(svc.issue_setup_token(t(4)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn login_answers_the_same_for_wrong_email_and_wrong_password_and_throttles() {
        let svc = service();
        let email = Email::parse("a@example.com").unwrap();
        svc.create_admin(email.clone(), "A".into(), pw(), Actor::System, t(0))
            .await
            .unwrap();
        let wrong_pw = svc
            .login("a@example.com", "nope nope nope".into(), IP, t(1))
            .await
            .unwrap_err();
        let wrong_email = svc
            .login(
                "b@example.com",
                "correct horse battery staple".into(),
                IP,
                t(1),
            )
            .await
            .unwrap_err();
        assert_eq!(wrong_pw.to_string(), wrong_email.to_string());
        let ok = svc
            .login(
                "A@Example.com",
                "correct horse battery staple".into(),
                IP,
                t(2),
            )
            .await
            .unwrap();
        assert_eq!(ok.user.email, email);
        for i in 0..5 {
            let _ = svc
                .login("a@example.com", "bad password!".into(), IP, t(10 + i))
                .await;
        }
        let throttled = svc
            .login(
                "a@example.com",
                "correct horse battery staple".into(),
                IP,
                t(20),
            )
            .await;
        assert!(matches!(
            throttled,
            Err(ServiceError::TooManyAttempts { .. })
        ));
        // After the window the right password works again.
        assert!(
            svc.login(
                "a@example.com",
                "correct horse battery staple".into(),
                IP,
                t(20 + 15 * 60)
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn sessions_expire_and_logout_ends_them() {
        let svc = service();
        svc.create_admin(
            Email::parse("a@example.com").unwrap(),
            String::new(),
            pw(),
            Actor::System,
            t(0),
        )
        .await
        .unwrap();
        let s = svc
            .login(
                "a@example.com",
                "correct horse battery staple".into(),
                IP,
                t(0),
            )
            .await
            .unwrap();
        assert!(
            svc.session_user(s.token.clone(), t(60))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            svc.session_user(s.token.clone(), t(13 * 3600))
                .await
                .unwrap()
                .is_none()
        );
        let s = svc
            .login(
                "a@example.com",
                "correct horse battery staple".into(),
                IP,
                t(0),
            )
            .await
            .unwrap();
        svc.logout(s.token.clone()).await.unwrap();
        assert!(svc.session_user(s.token, t(1)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn api_tokens_authenticate_until_revoked() {
        let svc = service();
        let (id, secret) = svc
            .create_api_token("shop", Actor::System, t(0))
            .await
            .unwrap();
        assert!(secret.starts_with("dg_"));
        assert_eq!(
            svc.authenticate_api_token(secret.clone(), t(1))
                .await
                .unwrap(),
            Some(id)
        );
        assert_eq!(
            svc.authenticate_api_token("dg_forged".into(), t(1))
                .await
                .unwrap(),
            None
        );
        svc.revoke_api_token(id, Actor::System, t(2)).await.unwrap();
        assert_eq!(
            svc.authenticate_api_token(secret, t(3)).await.unwrap(),
            None
        );
        assert!(matches!(
            svc.revoke_api_token(id, Actor::System, t(4)).await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(matches!(
            svc.create_api_token("  ", Actor::System, t(0)).await,
            Err(ServiceError::Invalid { .. })
        ));
    }

    async fn admin(svc: &AccessService, email: &str) -> AdminId {
        svc.create_admin(
            Email::parse(email).unwrap(),
            email.into(),
            pw(),
            Actor::System,
            t(0),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn admins_remove_others_but_never_themselves() {
        let svc = service();
        let first = admin(&svc, "first@example.com").await;
        let second = admin(&svc, "second@example.com").await;
        let session = svc
            .login(
                "second@example.com",
                "correct horse battery staple".into(),
                "127.0.0.1".parse().unwrap(),
                t(1),
            )
            .await
            .unwrap();
        let by_first = Actor::Admin {
            id: first,
            email: "first@example.com".into(),
        };
        assert!(matches!(
            svc.remove_admin(first, first, by_first.clone(), t(2)).await,
            Err(ServiceError::Conflict(_))
        ));
        svc.remove_admin(second, first, by_first.clone(), t(2))
            .await
            .unwrap();
        // Their session ends at once, and the address is free again.
        assert_eq!(svc.session_user(session.token, t(3)).await.unwrap(), None);
        assert_eq!(svc.access_overview().await.unwrap().admins.len(), 1);
        assert!(matches!(
            svc.remove_admin(second, first, by_first, t(4)).await,
            Err(ServiceError::NotFound(_))
        ));
        admin(&svc, "second@example.com").await;
        let audit = crate::services::audit::read_audit(&svc.store, 10, None)
            .await
            .unwrap();
        assert!(audit.iter().any(|e| e.action == "admin.remove"
            && e.actor == "admin:first@example.com"
            && e.before["email"] == "second@example.com"));
    }

    #[tokio::test]
    async fn changing_the_own_password_needs_the_current_one_and_ends_other_sessions() {
        let svc = service();
        let id = admin(&svc, "a@example.com").await;
        let ip = "127.0.0.1".parse().unwrap();
        let old_session = svc
            .login(
                "a@example.com",
                "correct horse battery staple".into(),
                ip,
                t(1),
            )
            .await
            .unwrap();
        let new_password = NewPassword::parse("a brand new passphrase").unwrap();
        let wrong = svc
            .change_own_password(id, "not it".into(), new_password.clone(), t(2))
            .await;
        assert!(matches!(
            wrong,
            Err(ServiceError::Invalid {
                field: "current",
                ..
            })
        ));
        // Nothing changed: the old session still works.
        assert!(
            svc.session_user(old_session.token.clone(), t(2))
                .await
                .unwrap()
                .is_some()
        );

        let fresh = svc
            .change_own_password(
                id,
                "correct horse battery staple".into(),
                new_password,
                t(3),
            )
            .await
            .unwrap();
        assert_eq!(
            svc.session_user(old_session.token, t(4)).await.unwrap(),
            None
        );
        assert!(svc.session_user(fresh.token, t(4)).await.unwrap().is_some());
        assert!(
            svc.login(
                "a@example.com",
                "correct horse battery staple".into(),
                ip,
                t(5)
            )
            .await
            .is_err()
        );
        svc.login("a@example.com", "a brand new passphrase".into(), ip, t(6))
            .await
            .unwrap();
    }

    /// A stolen session must not become a password oracle: wrong current passwords are
    /// throttled like wrong sign-ins (5 per 15 minutes), counted before the check.
    #[tokio::test]
    async fn wrong_current_passwords_are_throttled() {
        let svc = service();
        let id = admin(&svc, "a@example.com").await;
        let new_password = NewPassword::parse("a brand new passphrase").unwrap();
        for _ in 0..5 {
            let wrong = svc
                .change_own_password(id, "not it".into(), new_password.clone(), t(2))
                .await;
            assert!(
                matches!(wrong, Err(ServiceError::Invalid { .. })),
                "{wrong:?}"
            );
        }
        let sixth = svc
            .change_own_password(
                id,
                "correct horse battery staple".into(),
                new_password,
                t(3),
            )
            .await;
        assert!(
            matches!(sixth, Err(ServiceError::TooManyAttempts { .. })),
            "{sixth:?}"
        );
    }
}
