//! The outbox for the seller: every mail with its fate, reading a mail as sent, retrying
//! now, the test mail, and the editable templates with preview.

use super::ServiceError;
use super::audit::{Actor, record_audit};
use crate::auth::download_key::DownloadKey;
use crate::mail::{Mailer, default_template};
use crate::store::outbox::{self, MailRecord};
use crate::store::{Store, meta};
use domain::mail::{ComposedMail, MailKind, MailState, TemplateError, TemplateSource};
use domain::wire::{MailDetail, MailSummary, MailTemplateView, OutboxPage};
use domain::{Email, Language, Timestamp};

/// Mails read per page request at most, so a filter that matches little stays quick.
const PAGE_SCAN: usize = 5_000;

/// The outbox screen's use cases.
#[derive(Clone, Debug)]
pub struct OutboxService {
    store: Store,
    mailer: Mailer,
    /// Gives fresh links to a failed mail sent again.
    key: DownloadKey,
    /// The SMTP server in words; `None`: mail waits until SMTP is configured.
    smtp: Option<String>,
}

impl OutboxService {
    pub fn new(store: Store, mailer: Mailer, key: DownloadKey, smtp: Option<String>) -> Self {
        Self {
            store,
            mailer,
            key,
            smtp,
        }
    }

    /// Newest mails first, optionally only one state (`not_configured` counts as queued).
    pub async fn page(
        &self,
        state: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<OutboxPage, ServiceError> {
        let states: Vec<MailState> = match state.map(str::trim).filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some("not_configured") => vec![MailState::Queued, MailState::Retrying],
            Some(s) => vec![MailState::parse(s).ok_or_else(|| {
                ServiceError::invalid(
                    "state",
                    "state is one of queued, sending, retrying, sent, failed, not_configured",
                )
            })?],
        };
        let limit = limit.clamp(1, 200);
        let configured = self.smtp.is_some();
        let (rows, next, counts) = self
            .store
            .run(move |s| {
                s.read(|tx| {
                    let (rows, next) = outbox::page(tx, &states, before, limit, PAGE_SCAN)?;
                    Ok((rows, next, outbox::counts(tx)?))
                })
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(OutboxPage {
            mails: rows
                .iter()
                .map(|(id, m)| summary(*id, m, configured))
                .collect(),
            next_before: next,
            counts: counts
                .into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
            smtp: self.smtp.clone(),
        })
    }

    /// How many mails failed for good (for the dashboard).
    pub async fn failed_count(&self) -> Result<u64, ServiceError> {
        let counts = self.store.run(|s| s.read(outbox::counts)).await?;
        Ok(counts
            .into_iter()
            .find(|(s, _)| *s == MailState::Failed)
            .map_or(0, |(_, n)| n))
    }

    /// One mail with its bodies, as sent.
    pub async fn get(&self, id: u64) -> Result<MailDetail, ServiceError> {
        let mail = self
            .store
            .run(move |s| s.read(|tx| outbox::mail(tx, id)))
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(MailDetail {
            summary: summary(id, &mail, self.smtp.is_some()),
            from: if mail.from_email.is_empty() {
                format!("{} (SMTP sender address)", mail.from_name)
            } else {
                format!("{} <{}>", mail.from_name, mail.from_email)
            },
            message_id: mail.message_id,
            server_reply: mail.server_reply,
            text: mail.text,
            html: mail.html,
        })
    }

    /// Makes a waiting, retrying or failed mail due now (a failed one gets a fresh
    /// give-up period). A sent mail is not sent twice. A failed mail's stored links were cut
    /// short when it failed, so it is written anew with fresh links for the purchases that
    /// can still be downloaded (the old links, never delivered, stop working).
    pub async fn retry_now(
        &self,
        id: u64,
        actor: Actor,
        now: Timestamp,
    ) -> Result<MailSummary, ServiceError> {
        let configured = self.smtp.is_some();
        let (key, mailer) = (self.key.clone(), self.mailer.clone());
        let (id, mail) = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let before = outbox::mail(tx, id)?.ok_or_else(|| not_found(id))?;
                    match before.state {
                        MailState::Sent => {
                            return Err(ServiceError::Conflict(format!(
                                "mail {id} was already accepted by the mail server; to send the buyer a new link use \"Resend\" in the password desk"
                            )));
                        }
                        MailState::Sending => {
                            return Err(ServiceError::Conflict(format!(
                                "mail {id} is being sent right now"
                            )));
                        }
                        _ => {}
                    }
                    let mut after = before.clone();
                    if after.state == MailState::Failed {
                        after.state = MailState::Retrying;
                        if !before.links.is_empty() {
                            relink(tx, &key, &mailer, &mut after, now)?;
                        }
                    }
                    after.retry_from = now;
                    after.next_attempt_at = Some(now);
                    outbox::put(tx, id, &after, Some(&before))?;
                    record_audit(
                        tx,
                        &actor,
                        "mail.retry",
                        &format!("mail:{id}"),
                        Some(&before.state.as_str()),
                        Some(&after.state.as_str()),
                        now,
                    )?;
                    Ok((id, after))
                })
            })
            .await?;
        self.mailer.wake();
        Ok(summary(id, &mail, configured))
    }

    /// Queues the test mail to an address.
    pub async fn send_test(
        &self,
        to: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<MailSummary, ServiceError> {
        let to = Email::parse(to).map_err(|e| ServiceError::invalid("email", e))?;
        let mailer = self.mailer.clone();
        let configured = self.smtp.is_some();
        let (id, mail) = self
            .store
            .run(move |s| {
                s.write(|tx| {
                    let id = mailer.queue_test(tx, &to, now)?;
                    record_audit(
                        tx,
                        &actor,
                        "mail.test",
                        &format!("mail:{id}"),
                        None::<&()>,
                        Some(&to.as_str()),
                        now,
                    )?;
                    let mail = outbox::mail(tx, id)?
                        .ok_or_else(|| ServiceError::Internal("queued mail missing".into()))?;
                    Ok::<_, ServiceError>((id, mail))
                })
            })
            .await?;
        self.mailer.wake();
        Ok(summary(id, &mail, configured))
    }

    /// Every kind of mail in every language with its template (the seller's or the
    /// shipped one).
    pub async fn templates(&self) -> Result<Vec<MailTemplateView>, ServiceError> {
        let saved = self.store.run(|s| s.read(meta::mail_templates)).await?;
        Ok(MailKind::ALL
            .into_iter()
            .flat_map(|kind| Language::ALL.map(|language| (kind, language)))
            .map(|(kind, language)| MailTemplateView {
                kind,
                language,
                label: kind.label().to_owned(),
                customised: saved.contains_key(&(kind, language)),
                source: saved
                    .get(&(kind, language))
                    .cloned()
                    .unwrap_or_else(|| default_template(kind, language)),
            })
            .collect())
    }

    /// The mail a template makes from sample facts; a broken template is an error with the
    /// part, line and reason.
    pub fn preview(
        &self,
        source: &TemplateSource,
        language: Language,
    ) -> Result<ComposedMail, ServiceError> {
        let template = source.checked().map_err(template_error)?;
        Ok(self.mailer.preview(&template, language))
    }

    /// Saves a template after checking it (nothing is saved when it is broken); `None`
    /// restores the default.
    pub async fn save_template(
        &self,
        kind: MailKind,
        language: Language,
        source: Option<TemplateSource>,
        actor: Actor,
        now: Timestamp,
    ) -> Result<MailTemplateView, ServiceError> {
        if let Some(s) = &source {
            s.checked().map_err(template_error)?;
        }
        let saved = source.clone();
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let mut all = meta::mail_templates(tx)?;
                    let key = (kind, language);
                    let before = all.get(&key).cloned();
                    match saved {
                        Some(t) => all.insert(key, t),
                        None => all.remove(&key),
                    };
                    meta::put_mail_templates(tx, &all)?;
                    record_audit(
                        tx,
                        &actor,
                        "mail.template",
                        &format!("{}@{}", kind.as_str(), language.as_str()),
                        Some(&before),
                        Some(&all.get(&key)),
                        now,
                    )?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await?;
        Ok(MailTemplateView {
            kind,
            language,
            label: kind.label().to_owned(),
            customised: source.is_some(),
            source: source.unwrap_or_else(|| default_template(kind, language)),
        })
    }
}

fn template_error(e: TemplateError) -> ServiceError {
    let field = match e.part.as_str() {
        "subject" => "subject",
        "html" => "html",
        _ => "text",
    };
    ServiceError::invalid(field, e)
}

fn not_found(id: u64) -> ServiceError {
    ServiceError::NotFound(format!("there is no mail {id}"))
}

fn summary(id: u64, m: &MailRecord, smtp_configured: bool) -> MailSummary {
    let state = if !smtp_configured && matches!(m.state, MailState::Queued | MailState::Retrying) {
        "not_configured".to_owned()
    } else {
        m.state.as_str().to_owned()
    };
    MailSummary {
        id,
        kind: m.kind,
        to: if m.to_name.is_empty() {
            m.to_email.clone()
        } else {
            format!("{} <{}>", m.to_name, m.to_email)
        },
        subject: m.subject.clone(),
        state,
        attempts: m.attempts,
        queued_at: m.queued_at,
        last_attempt_at: m.last_attempt_at,
        next_attempt_at: m.next_attempt_at.filter(|_| m.state.is_pending()),
        sent_at: m.sent_at,
        last_error: m.last_error.clone(),
        order_id: m.order,
    }
}

/// Gives a failed mail fresh links for those of its grants that can still download, and
/// writes it anew around them.
fn relink(
    tx: &redb::WriteTransaction,
    key: &DownloadKey,
    mailer: &Mailer,
    mail: &mut MailRecord,
    now: Timestamp,
) -> Result<(), ServiceError> {
    // A grant whose order cannot be read is left out, like one that can no longer download.
    let live = |grant: &crate::store::grants::Grant| {
        crate::store::orders::order(tx, grant.order_id)
            .ok()
            .flatten()
            .is_some_and(|order| grant.is_live(order.status, now))
    };
    let grants = mail.links.clone();
    let lines = super::orders::renew_links(tx, key, mailer, &grants, live)?;
    if lines.is_empty() {
        return Err(ServiceError::Conflict(
            "the purchases in this mail can no longer be downloaded (refunded, revoked or expired), so there is nothing to send again".into(),
        ));
    }
    mailer.recompose(tx, mail, lines)?;
    Ok(())
}
