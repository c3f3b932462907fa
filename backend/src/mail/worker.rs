//! The outbox worker: sends due mail over SMTP with lettre, one attempt at a time.
//!
//! Each attempt is first marked "sending" in its own committed transaction, then sent under
//! a timeout (lettre's own timeout covers only the connection, PITFALLS.md), then its
//! outcome is committed. A crash between the two commits leaves the mail "sending"; at the
//! next start it is sent again with the same Message-ID, so the receiving side can
//! recognise the repeat. A mail whose acceptance was committed is never sent again.

use crate::store::outbox::{self, MailRecord};
use crate::store::{Store, StoreError};
use domain::Timestamp;
use domain::mail::{MailState, RetryPolicy};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    StartTls,
    /// TLS from the first byte, usually port 465.
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// Where and how to send mail.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The envelope and default `From` address.
    pub from: String,
}

/// Tuning of the worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerPolicy {
    pub retry: RetryPolicy,
    /// The whole SMTP conversation of one mail must finish within this.
    pub send_timeout: Duration,
    /// How long a "sending" mark holds a mail before it is due again (a send never lasts
    /// longer than `send_timeout`, so this only matters if the process froze).
    pub lease: Duration,
    /// The worker looks for due mail at least this often even without a wake-up.
    pub poll: Duration,
}

impl Default for WorkerPolicy {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            send_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(600),
            poll: Duration::from_secs(30),
        }
    }
}

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("the SMTP from address {0:?} is not a valid address")]
    From(String),
    #[error("SMTP host {host}: {detail}")]
    Host { host: String, detail: String },
}

/// A configured SMTP sender.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    description: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl SmtpSender {
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Self, SmtpSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| SmtpSetupError::From(settings.from.clone()))?;
        let host_error = |e: lettre::transport::smtp::Error| SmtpSetupError::Host {
            host: settings.host.clone(),
            detail: e.to_string(),
        };
        let builder = match settings.security {
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(host_error)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(host_error)?
            }
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
        };
        let mut builder = builder.port(settings.port).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            description: format!(
                "SMTP {}:{} ({:?})",
                settings.host, settings.port, settings.security
            ),
        })
    }

    /// The message exactly as it goes out for this record (same bytes on every attempt
    /// apart from what the transport adds).
    fn message(&self, mail: &MailRecord) -> Result<Message, String> {
        let from_address = if mail.from_email.is_empty() {
            self.from.email.clone()
        } else {
            mail.from_email
                .parse()
                .map_err(|e| format!("the sender address {:?}: {e}", mail.from_email))?
        };
        let from_name = Some(mail.from_name.clone()).filter(|n| !n.is_empty());
        let to_address = mail
            .to_email
            .parse()
            .map_err(|e| format!("the recipient address {:?}: {e}", mail.to_email))?;
        let to_name = Some(mail.to_name.clone()).filter(|n| !n.is_empty());
        let date = UNIX_EPOCH
            + Duration::from_millis(u64::try_from(mail.queued_at.unix_millis()).unwrap_or(0));
        let builder = Message::builder()
            .message_id(Some(mail.message_id.clone()))
            .date(
                date.max(UNIX_EPOCH)
                    .min(SystemTime::now() + Duration::from_secs(86_400)),
            )
            .from(Mailbox::new(from_name, from_address))
            .sender(self.from.clone())
            .to(Mailbox::new(to_name, to_address))
            .subject(mail.subject.clone());
        let body = if mail.html.is_empty() {
            MultiPart::mixed().singlepart(
                lettre::message::SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.text.clone()),
            )
        } else {
            MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone())
        };
        builder.multipart(body).map_err(|e| e.to_string())
    }
}

/// What one attempt came to.
enum Attempt {
    Accepted(String),
    Refused(String),
    Failed(String),
}

/// Sends the outbox until the process ends.
pub struct OutboxWorker {
    store: Store,
    sender: SmtpSender,
    policy: WorkerPolicy,
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        sender: SmtpSender,
        policy: WorkerPolicy,
        mailer: &super::Mailer,
    ) -> Self {
        Self {
            store,
            sender,
            policy,
            wake: mailer.wake_signal(),
        }
    }

    /// Makes every mail a crash left "sending" due now, then sends until aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match recover_interrupted(&self.store, crate::clock::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    mails = n,
                    "mails were being sent when Dropgate stopped; sending them again with the same Message-ID"
                ),
                Err(e) => tracing::error!(error = %e, "could not recover interrupted mails"),
            }
            loop {
                let sent = match self.send_due().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "outbox worker: store error; retrying");
                        0
                    }
                };
                if sent == 0 {
                    self.wait().await;
                }
            }
        })
    }

    /// Sleeps until the next mail is due, a wake-up, or the poll interval.
    async fn wait(&self) {
        let now = crate::clock::now();
        let next = self.store.run(|s| s.read(outbox::next_due)).await;
        let sleep = match next {
            Ok(Some(at)) if at > now => at.since(now).min(self.policy.poll),
            Ok(Some(_)) => Duration::from_millis(50),
            _ => self.policy.poll,
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = self.wake.notified() => {}
        }
    }

    /// Sends every mail due now; returns how many attempts were made.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = crate::clock::now();
        let due = self
            .store
            .run(move |s| s.read(|tx| outbox::due(tx, now, 32)))
            .await?;
        let mut attempts = 0;
        for id in due {
            if let Some(mail) = self.claim(id).await? {
                let outcome = self.attempt(&mail).await;
                self.settle(id, outcome).await?;
                attempts += 1;
            }
        }
        Ok(attempts)
    }

    /// Marks a mail "sending" (committed before any byte goes to the server).
    async fn claim(&self, id: u64) -> Result<Option<MailRecord>, StoreError> {
        let lease = self.policy.lease;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let now = crate::clock::now();
                    let Some(before) = outbox::mail_in(tx, id)? else {
                        return Ok(None);
                    };
                    if !before.state.is_pending() || before.next_attempt_at.is_none_or(|t| t > now)
                    {
                        return Ok(None);
                    }
                    let mut after = before.clone();
                    after.state = MailState::Sending;
                    after.attempts += 1;
                    after.last_attempt_at = Some(now);
                    after.next_attempt_at = Some(now.plus(lease));
                    outbox::put(tx, id, &after, Some(&before))?;
                    Ok(Some(after))
                })
            })
            .await
    }

    async fn attempt(&self, mail: &MailRecord) -> Attempt {
        let message = match self.sender.message(mail) {
            Ok(m) => m,
            Err(e) => return Attempt::Refused(format!("the mail cannot be built: {e}")),
        };
        match tokio::time::timeout(
            self.policy.send_timeout,
            self.sender.transport.send(message),
        )
        .await
        {
            Ok(Ok(response)) => Attempt::Accepted(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) if e.is_permanent() => Attempt::Refused(error_text(&e)),
            Ok(Err(e)) => Attempt::Failed(error_text(&e)),
            Err(_) => Attempt::Failed(format!(
                "no answer from {} within {} s",
                self.sender.description,
                self.policy.send_timeout.as_secs()
            )),
        }
    }

    /// Commits the outcome of an attempt.
    async fn settle(&self, id: u64, outcome: Attempt) -> Result<(), StoreError> {
        let retry = self.policy.retry;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let now = crate::clock::now();
                    let Some(before) = outbox::mail_in(tx, id)? else {
                        return Ok(());
                    };
                    let after = settled(&before, outcome, &retry, now);
                    match after.state {
                        MailState::Sent => tracing::info!(mail = id, to = %after.to_email, "mail sent"),
                        MailState::Failed => tracing::warn!(mail = id, to = %after.to_email, error = ?after.last_error, "mail failed for good"),
                        _ => tracing::info!(mail = id, error = ?after.last_error, next = ?after.next_attempt_at, "mail not sent; will retry"),
                    }
                    outbox::put(tx, id, &after, Some(&before))
                })
            })
            .await
    }
}

/// The record after an attempt: a pure decision, tested below.
fn settled(
    before: &MailRecord,
    outcome: Attempt,
    retry: &RetryPolicy,
    now: Timestamp,
) -> MailRecord {
    let mut after = before.clone();
    match outcome {
        Attempt::Accepted(reply) => {
            after.state = MailState::Sent;
            after.server_reply = Some(reply);
            after.sent_at = Some(now);
            after.next_attempt_at = None;
        }
        Attempt::Refused(error) => {
            after.state = MailState::Failed;
            after.last_error = Some(error);
            after.next_attempt_at = None;
        }
        Attempt::Failed(error) => {
            if let Some(at) = retry.next_attempt(before.retry_from, before.attempts, now) {
                after.state = MailState::Retrying;
                after.next_attempt_at = Some(at);
                after.last_error = Some(error);
            } else {
                after.state = MailState::Failed;
                after.next_attempt_at = None;
                after.last_error = Some(format!(
                    "gave up after {} attempts: {error}",
                    before.attempts
                ));
            }
        }
    }
    after
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Makes mails left "sending" by a crash due now; returns how many.
pub async fn recover_interrupted(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    store
        .run(move |s| {
            s.write(|tx| {
                let mut recovered = 0;
                for (id, before) in outbox::pending_in(tx)? {
                    if before.state != MailState::Sending {
                        continue;
                    }
                    let mut after = before.clone();
                    after.state = MailState::Retrying;
                    after.next_attempt_at = Some(now);
                    after.last_error = Some(
                        "Dropgate stopped during this attempt; sent again with the same Message-ID"
                            .to_owned(),
                    );
                    outbox::put(tx, id, &after, Some(&before))?;
                    recovered += 1;
                }
                Ok(recovered)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::mail::MailKind;

    fn record(attempts: u32) -> MailRecord {
        MailRecord {
            kind: MailKind::Purchase,
            to_email: "b@example.com".into(),
            to_name: String::new(),
            from_name: "Shop".into(),
            from_email: String::new(),
            subject: "s".into(),
            text: "t".into(),
            html: String::new(),
            message_id: "<x@y>".into(),
            order: None,
            queued_at: Timestamp::from_unix_millis(0),
            retry_from: Timestamp::from_unix_millis(0),
            state: MailState::Sending,
            attempts,
            next_attempt_at: Some(Timestamp::from_unix_millis(600_000)),
            last_attempt_at: Some(Timestamp::from_unix_millis(0)),
            last_error: None,
            server_reply: None,
            sent_at: None,
        }
    }

    #[test]
    fn an_accepted_mail_is_sent_and_never_due_again() {
        let now = Timestamp::from_unix_millis(5);
        let after = settled(
            &record(1),
            Attempt::Accepted("250 OK".into()),
            &RetryPolicy::default(),
            now,
        );
        assert_eq!(after.state, MailState::Sent);
        assert_eq!(after.sent_at, Some(now));
        assert_eq!(after.next_attempt_at, None);
        assert_eq!(after.server_reply.as_deref(), Some("250 OK"));
    }

    #[test]
    fn a_permanent_refusal_fails_at_once() {
        let after = settled(
            &record(1),
            Attempt::Refused("550 no such user".into()),
            &RetryPolicy::default(),
            Timestamp::from_unix_millis(5),
        );
        assert_eq!(after.state, MailState::Failed);
        assert_eq!(after.last_error.as_deref(), Some("550 no such user"));
    }

    #[test]
    fn a_transient_failure_retries_until_the_give_up_time() {
        let policy = RetryPolicy::default();
        let early = settled(
            &record(1),
            Attempt::Failed("421 busy".into()),
            &policy,
            Timestamp::from_unix_millis(1_000),
        );
        assert_eq!(early.state, MailState::Retrying);
        assert_eq!(
            early.next_attempt_at,
            Some(Timestamp::from_unix_millis(61_000))
        );
        let late = settled(
            &record(40),
            Attempt::Failed("421 busy".into()),
            &policy,
            Timestamp::from_unix_millis(0).plus(policy.give_up_after),
        );
        assert_eq!(late.state, MailState::Failed);
        assert!(
            late.last_error
                .unwrap()
                .starts_with("gave up after 40 attempts")
        );
    }
}
