//! Server functions of the outbox screen, the mail templates and the test mail.

use crate::error::AppError;
use domain::mail::{ComposedMail, MailKind, TemplateSource};
use domain::wire::{MailDetail, MailSummary, MailTemplateView, OutboxPage};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Mails per outbox page.
pub const OUTBOX_PAGE: usize = 50;

/// Newest mails first, optionally in one state; `before` continues an earlier page.
#[server(prefix = "/rpc", endpoint = "outbox")]
pub async fn load_outbox(state: String, before: Option<u64>) -> Result<OutboxPage, AppError> {
    crate::server::as_user(|ui| async move {
        let filter = Some(state.as_str()).filter(|s| !s.is_empty());
        Ok(ui.outbox.page(filter, before, OUTBOX_PAGE).await?)
    })
    .await
}

/// One mail as sent.
#[server(prefix = "/rpc", endpoint = "mail")]
pub async fn load_mail(id: u64) -> Result<MailDetail, AppError> {
    crate::server::as_user(|state| async move { Ok(state.outbox.get(id).await?) }).await
}

/// Tries a waiting or failed mail now.
#[server(prefix = "/rpc", endpoint = "mail-retry")]
pub async fn retry_mail(id: u64) -> Result<MailSummary, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .outbox
            .retry_now(id, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Queues the test mail.
#[server(prefix = "/rpc", endpoint = "mail-test")]
pub async fn send_test_mail(email: String) -> Result<MailSummary, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .outbox
            .send_test(&email, actor, backend::clock::now())
            .await?)
    })
    .await
}

/// Every kind of mail with its template.
#[server(prefix = "/rpc", endpoint = "mail-templates")]
pub async fn load_templates() -> Result<Vec<MailTemplateView>, AppError> {
    crate::server::as_user(|state| async move { Ok(state.outbox.templates().await?) }).await
}

/// The mail a template makes from sample data, or where it is broken.
#[server(prefix = "/rpc", endpoint = "mail-template-preview", input = Json)]
pub async fn preview_template(
    source: TemplateSource,
    #[server(default)] language: domain::Language,
) -> Result<ComposedMail, AppError> {
    crate::server::as_user(|state| async move { Ok(state.outbox.preview(&source, language)?) })
        .await
}

/// Saves a template (`None` restores the default); a broken one is refused whole.
#[server(prefix = "/rpc", endpoint = "mail-template-save", input = Json)]
pub async fn save_template(
    kind: MailKind,
    #[server(default)] language: domain::Language,
    source: Option<TemplateSource>,
) -> Result<MailTemplateView, AppError> {
    crate::server::as_admin(|state, actor| async move {
        Ok(state
            .outbox
            .save_template(kind, language, source, actor, backend::clock::now())
            .await?)
    })
    .await
}
