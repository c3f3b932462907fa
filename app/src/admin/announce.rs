//! "Tell past buyers": a product's update announced to everyone who bought it, with fresh
//! links, at a rate the seller sets; each announcement's progress, and a stop button.

use super::widgets::{ConfirmButton, FieldError, field_error, form_error, value_of};
use crate::api::{CreateAnnouncement, StopAnnouncement, list_announcements};
use domain::wire::{AnnouncementView, NewAnnouncement};
use leptos::prelude::*;

/// The panel on a product's page.
#[component]
pub fn AnnouncePanel(product_id: String) -> impl IntoView {
    let changed = RwSignal::new(0u32);
    let list = {
        let product_id = product_id.clone();
        Resource::new(
            move || changed.get(),
            move |_| list_announcements(product_id.clone()),
        )
    };
    let create = ServerAction::<CreateAnnouncement>::new();
    let message = RwSignal::new(String::new());
    let per_minute = RwSignal::new("60".to_owned());
    let last_error = move || create.value().get().and_then(Result::err);
    let message_error = Signal::derive(field_error(last_error, "message"));
    let rate_error = Signal::derive(field_error(last_error, "per_minute"));
    let general_error = form_error(last_error);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            message.set(String::new());
            changed.update(|n| *n += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateAnnouncement {
            product_id: product_id.clone(),
            input: NewAnnouncement {
                message: message.get_untracked(),
                per_minute: per_minute.get_untracked().trim().parse().unwrap_or(0),
            },
        });
    };
    let refresh = Callback::new(move |()| changed.update(|n| *n += 1));
    view! {
        <section class="panel announce">
            <h2>"Tell past buyers"</h2>
            <p class="hint">"One mail to each buyer of this product (confirmed, not refunded) with your message and fresh links; the links they had before stop working. Mails go out at the rate you set, so your mail provider's limits hold."</p>
            <form class="stack narrow" on:submit=submit aria-label="Tell past buyers">
                <label>
                    "Message"
                    <textarea name="message" rows="4" maxlength="2000" required
                        prop:value=move || message.get()
                        on:input=move |ev| message.set(event_target_value(&ev))></textarea>
                    <FieldError message=message_error/>
                </label>
                <label>
                    "Mails per minute"
                    <input type="number" name="per_minute" min="1" max="10000" required class="short"
                        prop:value=move || per_minute.get()
                        on:input=move |ev| per_minute.set(value_of(&ev))/>
                    <FieldError message=rate_error/>
                </label>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || matches!(create.value().get(), Some(Ok(_))).then(|| view! {
                    <p class="notice ok" role="status">"Sending: the progress is below."</p>
                })}
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Starting…" } else { "Send to past buyers" }}
                </button>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || list.get().map(|result| match result {
                    Ok(items) if items.is_empty() => view! { <p class="muted">"No announcements yet."</p> }.into_any(),
                    Ok(items) => view! {
                        <div class="row"><button type="button" on:click=move |_| refresh.run(())>"Refresh progress"</button></div>
                        <ul class="announcements">
                            {items.into_iter().map(|a| view! { <AnnouncementItem item=a refresh/> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One announcement: how far it got, and Stop while it sends.
#[component]
fn AnnouncementItem(item: AnnouncementView, refresh: Callback<()>) -> impl IntoView {
    let stop = ServerAction::<StopAnnouncement>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = stop.value().get() {
            refresh.run(());
        }
    });
    let id = item.announcement_id;
    let sending = item.state == "sending";
    let progress = format!(
        "{} of {} buyers mailed{} · {} per minute · started {}",
        item.sent,
        item.buyers,
        if item.skipped > 0 {
            format!(", {} left out", item.skipped)
        } else {
            String::new()
        },
        item.per_minute,
        item.created_at.human()
    );
    view! {
        <li class="announcement" aria-label=format!("Announcement {id}")>
            <super::widgets::StateBadge state=item.state.clone()/>
            " " <span class="announcement-progress">{progress}</span>
            <blockquote class="muted">{item.message.clone()}</blockquote>
            {sending.then(|| view! {
                <ConfirmButton label="Stop…" danger=true pending=Signal::derive(move || stop.pending().get())
                    explanation="Buyers not mailed yet get nothing; mails already queued still go.".to_owned()
                    confirm="Yes, stop" on_confirm=Callback::new(move |()| { stop.dispatch(StopAnnouncement { announcement_id: id }); })/>
            })}
            {move || stop.value().get().and_then(Result::err).map(|e| view! { <p class="notice error" role="alert">{e.to_string()}</p> })}
        </li>
    }
}
