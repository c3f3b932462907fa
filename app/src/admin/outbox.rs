//! The outbox: every mail with its fate, one mail as it was sent, "retry now", the test
//! mail form, and the template editor with a live preview.

use super::ErrorNote;
use super::widgets::{FieldError, Pager, field_error, form_error, value_of};
use crate::api::{
    RetryMail, SaveTemplate, SendTestMail, load_mail, load_outbox, load_templates, preview_template,
};
use crate::error::AppError;
use domain::mail::{ComposedMail, MailKind, PLACEHOLDERS, TemplateSource};
use domain::wire::{MailSummary, MailTemplateView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The states the filter offers, with their words.
const STATES: [(&str, &str); 6] = [
    ("", "All mail"),
    ("failed", "Failed"),
    ("retrying", "Retrying"),
    ("queued", "Waiting"),
    ("not_configured", "Waiting for SMTP"),
    ("sent", "Sent"),
];

/// The words for a mail state.
fn state_words(state: &str) -> &'static str {
    match state {
        "queued" => "waiting",
        "sending" => "sending now",
        "retrying" => "retrying",
        "sent" => "sent",
        "failed" => "failed",
        "not_configured" => "waiting: no SMTP",
        _ => "unknown",
    }
}

#[component]
fn MailState(state: String) -> impl IntoView {
    view! { <span class=format!("badge mail-{state}") data-state=state.clone()>{state_words(&state)}</span> }
}

/// `/admin/outbox?state=…&before=…`.
#[component]
pub fn OutboxPage() -> impl IntoView {
    let query = use_query_map();
    let state = move || query.read().get("state").unwrap_or_default();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<u64>().ok())
    };
    let page = Resource::new(move || (state(), before()), |(s, b)| load_outbox(s, b));
    view! {
        <Title text="Outbox"/>
        <h1>"Outbox"</h1>
        <p class="muted">"Every mail Dropgate sends, with what became of it. A mail that cannot be delivered is tried again with growing waits for days before it counts as failed. "
            <a href="/admin/mail-templates">"Edit the mail texts"</a></p>
        <nav class="filters" aria-label="Filter by state">
            {STATES.into_iter().map(|(code, words)| {
                let href = if code.is_empty() { "/admin/outbox".to_owned() } else { format!("/admin/outbox?state={code}") };
                view! {
                    <a href=href class="chip" aria-current=move || (state() == code).then_some("page")>{words}</a>
                }
            }).collect_view()}
        </nav>
        <Transition fallback=|| view! { <p class="muted">"Loading the outbox…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => {
                    let counts = page.counts.iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(s, n)| format!("{n} {}", state_words(s)))
                        .collect::<Vec<_>>()
                        .join(" · ");
                    let next = page.next_before.map(|b| {
                        let s = state();
                        if s.is_empty() { format!("/admin/outbox?before={b}") } else { format!("/admin/outbox?state={s}&before={b}") }
                    });
                    view! {
                        {match page.smtp.clone() {
                            Some(smtp) => view! { <p class="muted">{format!("Sending through {smtp}.")}</p> }.into_any(),
                            None => view! {
                                <p class="notice" role="status">"No mail server (SMTP) is configured: mail waits here and goes out once Dropgate is started with --smtp-host and --smtp-from. You can read every waiting mail below."</p>
                            }.into_any(),
                        }}
                        <p class="muted outbox-counts">{if counts.is_empty() { "No mail yet.".to_owned() } else { counts }}</p>
                        {if page.mails.is_empty() {
                            view! { <p class="panel">"No mail here."</p> }.into_any()
                        } else {
                            view! { <MailTable mails=page.mails/> }.into_any()
                        }}
                        <Pager newest=before().map(|_| "/admin/outbox".to_owned()) older=next/>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn MailTable(mails: Vec<MailSummary>) -> impl IntoView {
    view! {
        <div class="table-wrap panel">
            <table class="outbox">
                <thead><tr><th>"Queued"</th><th>"To"</th><th>"Subject"</th><th>"State"</th><th>"Attempts"</th><th>"Last error"</th></tr></thead>
                <tbody>
                    {mails.into_iter().map(|m| view! {
                        <tr>
                            <td>{m.queued_at.human()}</td>
                            <td>{m.to.clone()}</td>
                            <td><a href=format!("/admin/outbox/{}", m.id)>{m.subject.clone()}</a></td>
                            <td><MailState state=m.state.clone()/></td>
                            <td>{m.attempts}</td>
                            <td class="muted">{m.last_error.clone().unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// `/admin/outbox/{id}`: one mail as sent, its history, and "retry now".
#[component]
pub fn MailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|i| i.parse::<u64>().ok());
    let retry = ServerAction::<RetryMail>::new();
    let mail = Resource::new(
        move || (id(), retry.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => load_mail(id).await,
                None => Err(crate::error::AppError::Refused {
                    status: 404,
                    message: "there is no such mail".into(),
                }),
            }
        },
    );
    let retry_error = move || {
        retry
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    view! {
        <Title text="Mail"/>
        <p><a href="/admin/outbox">"← Outbox"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading the mail…"</p> }>
            {move || mail.get().map(|result| match result {
                Ok(m) => {
                    let s = m.summary.clone();
                    let can_retry = !matches!(s.state.as_str(), "sent" | "sending");
                    let mail_id = s.id;
                    view! {
                        <h1>{s.subject.clone()}</h1>
                        <dl class="facts panel">
                            <div><dt>"State"</dt><dd class="mail-state"><MailState state=s.state.clone()/></dd></div>
                            <div><dt>"Kind"</dt><dd>{s.kind.label()}</dd></div>
                            <div><dt>"To"</dt><dd>{s.to.clone()}</dd></div>
                            <div><dt>"From"</dt><dd>{m.from.clone()}</dd></div>
                            <div><dt>"Queued"</dt><dd>{s.queued_at.human()}</dd></div>
                            <div><dt>"Attempts"</dt><dd>{s.attempts}</dd></div>
                            {s.last_attempt_at.map(|t| view! { <div><dt>"Last attempt"</dt><dd>{t.human()}</dd></div> })}
                            {s.next_attempt_at.map(|t| view! { <div><dt>"Next attempt"</dt><dd>{t.human()}</dd></div> })}
                            {s.sent_at.map(|t| view! { <div><dt>"Sent"</dt><dd>{t.human()}</dd></div> })}
                            {m.server_reply.clone().map(|r| view! { <div><dt>"Server's answer"</dt><dd><code>{r}</code></dd></div> })}
                            {s.last_error.clone().map(|e| view! { <div><dt>"Last error"</dt><dd class="mail-error">{e}</dd></div> })}
                            {s.order_id.map(|o| view! { <div><dt>"Order"</dt><dd><a href=format!("/admin/orders/{o}")>{o.to_string()}</a></dd></div> })}
                            <div><dt>"Message-ID"</dt><dd><code>{m.message_id.clone()}</code></dd></div>
                        </dl>
                        {can_retry.then(|| view! {
                            <div class="row actions">
                                <button type="button" class="primary" disabled=move || retry.pending().get()
                                    on:click=move |_| { retry.dispatch(RetryMail { id: mail_id }); }>
                                    {move || if retry.pending().get() { "Working…" } else { "Retry now" }}
                                </button>
                            </div>
                        })}
                        <h2>"Plain text"</h2>
                        <pre class="panel mail-text">{m.text.clone()}</pre>
                        <h2>"HTML"</h2>
                        // Sandboxed without scripts: the mail is shown, never run.
                        <iframe class="panel mail-html" title="The mail's HTML part" sandbox="" srcdoc=m.html.clone()></iframe>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        {move || retry_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        {move || retry.value().get().and_then(Result::ok).map(|_| view! { <p class="notice ok" role="status">"The mail will be sent now."</p> })}
    }
}

/// The settings screen's "send test mail" form.
#[component]
pub fn TestMailForm(#[prop(into)] default_email: String) -> impl IntoView {
    let send = ServerAction::<SendTestMail>::new();
    let email = RwSignal::new(default_email);
    let last_error = move || send.value().get().and_then(Result::err);
    view! {
        <form class="stack" on:submit=move |ev| {
            ev.prevent_default();
            send.dispatch(SendTestMail { email: email.get_untracked() });
        }>
            <label>"Send a test mail to"
                <input type="email" name="test-email" required prop:value=move || email.get()
                    on:input=move |ev| email.set(value_of(&ev))/>
            </label>
            <FieldError message=Signal::derive(field_error(last_error, "email"))/>
            <button type="submit" disabled=move || send.pending().get()>
                {move || if send.pending().get() { "Queuing…" } else { "Send test mail" }}
            </button>
            {move || form_error(last_error)().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || send.value().get().and_then(Result::ok).map(|m| view! {
                <p class="notice ok test-mail-queued" role="status">
                    {if m.state == "not_configured" {
                        "The test mail is in the outbox, but no mail server (SMTP) is configured, so it waits there. ".to_owned()
                    } else {
                        "The test mail is on its way. ".to_owned()
                    }}
                    <a href=format!("/admin/outbox/{}", m.id)>"Follow it in the outbox"</a>
                </p>
            })}
        </form>
    }
}

/// `/admin/mail-templates?kind=…`: edit a kind of mail with a live preview.
#[component]
pub fn TemplatesPage() -> impl IntoView {
    let templates = Resource::new(|| (), |()| load_templates());
    // The preview of the text being edited. It lives here, at the page's top level, not in
    // the editor inside the templates' `Transition`: a resource created while a Suspense
    // resolves is hydrated in an order that depends on the server's timing, and under load
    // the browser then failed to hydrate the page (issue 15). The editor fills `draft` from
    // an effect, so only in the browser: the server renders no preview (an empty draft
    // costs nothing), and the preview appears once the page is interactive.
    let draft = RwSignal::new(None::<TemplateSource>);
    let query = use_query_map();
    let kind = move || {
        query
            .read()
            .get("kind")
            .and_then(|k| MailKind::parse(&k))
            .unwrap_or(MailKind::Purchase)
    };
    let language = move || {
        query
            .read()
            .get("language")
            .and_then(|l| domain::Language::from_tag(&l))
            .unwrap_or_default()
    };
    let preview = Resource::new(
        move || (draft.get(), language()),
        |(draft, language)| async move {
            match draft {
                Some(source) => preview_template(source, language).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Title text="Mail texts"/>
        <p><a href="/admin/outbox">"← Outbox"</a></p>
        <h1>"Mail texts"</h1>
        <nav class="filters" aria-label="Kind of mail">
            {MailKind::ALL.into_iter().map(|k| view! {
                <a class="chip" href=move || format!("/admin/mail-templates?kind={}&language={}", k.as_str(), language().as_str())
                    aria-current=move || (kind() == k).then_some("page")>{k.label()}</a>
            }).collect_view()}
        </nav>
        <nav class="filters" aria-label="Language">
            {domain::Language::ALL.into_iter().map(|l| view! {
                <a class="chip" lang=l.as_str() href=move || format!("/admin/mail-templates?kind={}&language={}", kind().as_str(), l.as_str())
                    aria-current=move || (language() == l).then_some("page")>{l.native_name()}</a>
            }).collect_view()}
        </nav>
        <p class="muted small">"Buyers get the text in their language: the order's, else their browser's, else the store's default (Settings)."</p>
        <Transition fallback=|| view! { <p class="muted">"Loading the templates…"</p> }>
            {move || templates.get().map(|result| match result {
                Ok(list) => {
                    let k = kind();
                    let l = language();
                    match list.into_iter().find(|t| t.kind == k && t.language == l) {
                        Some(view) => view! { <TemplateEditor template=view draft preview/> }.into_any(),
                        None => view! { <p class="panel">"No such kind of mail."</p> }.into_any(),
                    }
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn TemplateEditor(
    template: MailTemplateView,
    draft: RwSignal<Option<TemplateSource>>,
    preview: Resource<Result<Option<ComposedMail>, AppError>>,
) -> impl IntoView {
    let kind = template.kind;
    let language = template.language;
    let subject = RwSignal::new(template.source.subject.clone());
    let text = RwSignal::new(template.source.text.clone());
    let html = RwSignal::new(template.source.html.clone());
    let customised = RwSignal::new(template.customised);
    let source = move || TemplateSource {
        subject: subject.get(),
        text: text.get(),
        html: html.get(),
    };
    // Checked and previewed on the server as the seller types: the same check as saving.
    Effect::new(move |_| draft.set(Some(source())));
    // The preview's verdict for the fields and the Save button. The resource itself is
    // read in one `Transition` only (below): reading it here as well, inside the outer
    // `Transition` of the page, made a server render spin forever about one time in five
    // (the two-readers pattern of leptos#4578). This copy is made by an effect, so only in
    // the browser; the server renders the stored template, which was checked when saved.
    let preview_verdict = RwSignal::new(None::<Result<(), AppError>>);
    Effect::new(move |_| {
        if let Some(result) = preview.get() {
            preview_verdict.set(Some(result.map(|_| ())));
        }
    });
    let save = ServerAction::<SaveTemplate>::new();
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            subject.set(saved.source.subject.clone());
            text.set(saved.source.text.clone());
            html.set(saved.source.html.clone());
            customised.set(saved.customised);
        }
    });
    let preview_error = move || preview_verdict.get().and_then(Result::err);
    let save_error = move || save.value().get().and_then(Result::err);
    let any_error = move || save_error().or_else(preview_error);
    view! {
        <section class="panel template-editor">
            <h2>{kind.label()}</h2>
            <p class="muted">{move || if customised.get() { "Your own text." } else { "The text Dropgate ships with." }}</p>
            <details>
                <summary>"Placeholders you can use"</summary>
                <ul class="placeholders">
                    {PLACEHOLDERS.into_iter().map(|(name, words)| view! {
                        <li><code>{format!("{{{{{name}}}}}")}</code> " — " {words}</li>
                    }).collect_view()}
                </ul>
            </details>
            <label>"Subject"
                <input type="text" name="subject" prop:value=move || subject.get() on:input=move |ev| subject.set(value_of(&ev))/>
            </label>
            <FieldError message=Signal::derive(field_error(any_error, "subject"))/>
            <label>"Plain text"
                <textarea name="text" rows="12" prop:value=move || text.get() on:input=move |ev| text.set(value_of(&ev))></textarea>
            </label>
            <FieldError message=Signal::derive(field_error(any_error, "text"))/>
            <label>"HTML"
                <textarea name="html" rows="12" prop:value=move || html.get() on:input=move |ev| html.set(value_of(&ev))></textarea>
            </label>
            <FieldError message=Signal::derive(field_error(any_error, "html"))/>
            <div class="row actions">
                <button type="button" class="primary" disabled=move || save.pending().get() || preview_error().is_some()
                    on:click=move |_| { save.dispatch(SaveTemplate { kind, language, source: Some(source()) }); }>
                    {move || if save.pending().get() { "Saving…" } else { "Save" }}
                </button>
                <button type="button" disabled=move || save.pending().get() || !customised.get()
                    on:click=move |_| { save.dispatch(SaveTemplate { kind, language, source: None }); }>
                    "Restore the default"
                </button>
            </div>
            {move || form_error(save_error)().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || save.value().get().and_then(Result::ok).map(|_| view! { <p class="notice ok" role="status">"Saved. New mails use this text."</p> })}
        </section>
        <section class="panel template-preview">
            <h2>"Preview with sample data"</h2>
            <Transition fallback=|| view! { <p class="muted">"Preparing the preview…"</p> }>
                {move || preview.get().map(|result| match result {
                    Ok(None) => view! { <p class="muted">"Preparing the preview…"</p> }.into_any(),
                    Ok(Some(mail)) => view! {
                        <p><strong>"Subject: "</strong><span class="preview-subject">{mail.subject}</span></p>
                        <pre class="mail-text preview-text">{mail.text}</pre>
                        <iframe class="mail-html" title="Preview of the HTML part" sandbox="" srcdoc=mail.html></iframe>
                    }.into_any(),
                    Err(_) => view! { <p class="muted">"Fix the template to see the preview."</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
