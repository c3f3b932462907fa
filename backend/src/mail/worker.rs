//! The outbox worker: sends due mail over SMTP (`super::smtp`), one attempt at a time.
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
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use super::smtp::{SmtpSecurity, SmtpSender, SmtpSettings, SmtpSetupError};
use super::smtp::{SmtpSession, error_text};

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

    /// Sends every mail due now on one SMTP session (opened when the first mail needs it,
    /// dropped after any error); returns how many attempts were made.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = crate::clock::now();
        let due = self
            .store
            .run(move |s| s.read(|tx| outbox::due(tx, now, 32)))
            .await?;
        let mut attempts = 0;
        let mut session = None;
        for id in due {
            if let Some(mail) = self.claim(id).await? {
                let outcome = self.attempt(&mail, &mut session).await;
                self.settle(id, outcome).await?;
                attempts += 1;
            }
        }
        if let Some(session) = session {
            let _ = tokio::time::timeout(self.policy.send_timeout, session.quit()).await;
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
                    let Some(before) = outbox::mail(tx, id)? else {
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

    /// One attempt, under the send timeout from connecting to the server's last answer.
    async fn attempt(&self, mail: &MailRecord, session: &mut Option<SmtpSession>) -> Attempt {
        let message = match self.sender.message(mail) {
            Ok(m) => m,
            Err(e) => return Attempt::Refused(format!("the mail cannot be built: {e}")),
        };
        let outcome = tokio::time::timeout(self.policy.send_timeout, async {
            if session.is_none() {
                *session = Some(self.sender.open().await.map_err(Attempt::Failed)?);
            }
            let open = session.as_mut().expect("opened above");
            match open.send(&message).await {
                Ok(response) => Ok(Attempt::Accepted(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ))),
                Err(e) if e.is_permanent() => Err(Attempt::Refused(error_text(&e))),
                Err(e) => Err(Attempt::Failed(error_text(&e))),
            }
        })
        .await;
        match outcome {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(refused_or_failed)) => {
                // A session that saw an error is not trusted with the next mail.
                *session = None;
                refused_or_failed
            }
            Err(_) => {
                *session = None;
                Attempt::Failed(format!(
                    "no answer from {} within {} s",
                    self.sender.description(),
                    self.policy.send_timeout.as_secs()
                ))
            }
        }
    }

    /// Commits the outcome of an attempt.
    async fn settle(&self, id: u64, outcome: Attempt) -> Result<(), StoreError> {
        let retry = self.policy.retry;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let now = crate::clock::now();
                    let Some(before) = outbox::mail(tx, id)? else {
                        return Ok(());
                    };
                    let after = settled(&before, outcome, &retry, now);
                    match after.state {
                        MailState::Sent => tracing::info!(mail = id, to = %after.to_email, "mail sent"),
                        MailState::Failed => tracing::warn!(mail = id, to = %after.to_email, error = ?after.last_error, "mail failed for good"),
                        _ => tracing::info!(mail = id, error = ?after.last_error, next = ?after.next_attempt_at, "mail not sent; will retry"),
                    }
                    if after.state == MailState::Failed {
                        announce_failure(tx, id, &after, now)?;
                    }
                    outbox::put(tx, id, &after, Some(&before))
                })
            })
            .await
    }
}

/// Queues the `mail.failed` webhook event in the transaction that gives the mail up, so the
/// seller's other systems hear of a buyer who did not get their links.
fn announce_failure(
    tx: &redb::WriteTransaction,
    id: u64,
    mail: &MailRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    let data = serde_json::json!({
        "mail_id": id,
        "kind": mail.kind,
        "to": mail.to_email,
        "subject": mail.subject,
        "order_id": mail.order,
        "attempts": mail.attempts,
        "error": mail.last_error,
    });
    crate::store::webhooks::emit(tx, "mail.failed", &data, now).map(|_| ())
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
    if matches!(after.state, MailState::Sent | MailState::Failed) {
        // Settled: the stored copy keeps what the seller reads, not working links. A
        // failed mail sent again gets fresh ones (`OutboxService::retry_now`).
        after.text = domain::mail::redact_links(&before.text);
        after.html = domain::mail::redact_links(&before.html);
    }
    after
}

/// Makes mails left "sending" by a crash due now; returns how many.
pub async fn recover_interrupted(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    store
        .run(move |s| {
            s.write(|tx| {
                let mut recovered = 0;
                for (id, before) in outbox::pending(tx)? {
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
            links: vec![],
            message: String::new(),
            language: domain::Language::En,
        }
    }

    /// Rows written by versions 1 (no `links`) and 2 (no `message`) read as version 3 rows
    /// with those fields empty.
    #[test]
    fn mail_rows_of_every_version_read() {
        use crate::store::codec;
        let now = record(1);
        let mut v2 = codec::encode(&now);
        v2.truncate(v2.len() - 1);
        v2[0] = 2;
        assert_eq!(codec::decode::<MailRecord>(&v2).unwrap(), now);
        let mut v1 = v2.clone();
        v1.truncate(v1.len() - 1);
        v1[0] = 1;
        assert_eq!(codec::decode::<MailRecord>(&v1).unwrap(), now);
        v1[0] = 4;
        assert!(codec::decode::<MailRecord>(&v1).is_err());
    }

    #[test]
    fn an_accepted_mail_is_sent_and_never_due_again() {
        let now = Timestamp::from_unix_millis(5);
        let mut sending = record(1);
        sending.text = "Your book: https://dl.example.com/d/7K3Q-M9XD-4TZP-W2HB-R5NC".into();
        let after = settled(
            &sending,
            Attempt::Accepted("250 OK".into()),
            &RetryPolicy::default(),
            now,
        );
        assert_eq!(after.state, MailState::Sent);
        assert_eq!(after.text, "Your book: https://dl.example.com/d/7K3Q…");
        assert_eq!(after.sent_at, Some(now));
        assert_eq!(after.next_attempt_at, None);
        assert_eq!(after.server_reply.as_deref(), Some("250 OK"));
    }

    #[test]
    fn a_permanent_refusal_fails_at_once_and_keeps_no_working_link() {
        let mut sending = record(1);
        sending.text = "Your book: https://dl.example.com/d/7K3Q-M9XD-4TZP-W2HB-R5NC".into();
        let after = settled(
            &sending,
            Attempt::Refused("550 no such user".into()),
            &RetryPolicy::default(),
            Timestamp::from_unix_millis(5),
        );
        assert_eq!(after.state, MailState::Failed);
        assert_eq!(after.last_error.as_deref(), Some("550 no such user"));
        assert_eq!(after.text, "Your book: https://dl.example.com/d/7K3Q…");
    }

    #[test]
    fn a_mail_still_being_retried_keeps_its_links() {
        let mut sending = record(1);
        sending.text = "https://dl.example.com/d/7K3Q-M9XD-4TZP-W2HB-R5NC".into();
        let after = settled(
            &sending,
            Attempt::Failed("421 busy".into()),
            &RetryPolicy::default(),
            Timestamp::from_unix_millis(5),
        );
        assert_eq!(after.state, MailState::Retrying);
        assert_eq!(
            after.text, sending.text,
            "it goes out as it is on the next attempt"
        );
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
