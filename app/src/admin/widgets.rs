//! Small pieces every admin screen uses: field and form errors, the two-step confirm
//! button, state badges, and the text of outcome codes.

use crate::error::AppError;
use domain::AttemptOutcome;
use leptos::prelude::*;
use std::fmt::Write as _;

/// The message for one field from the last error of a form, if any.
pub fn field_error(
    last_error: impl Fn() -> Option<AppError> + Copy,
    field: &'static str,
) -> impl Fn() -> Option<String> + Copy {
    move || last_error().and_then(|e| e.for_field(field))
}

/// The message of the last error when it is not about one field.
pub fn form_error(
    last_error: impl Fn() -> Option<AppError> + Copy,
) -> impl Fn() -> Option<String> + Copy {
    move || {
        last_error()
            .filter(|e| !matches!(e, AppError::Invalid { .. }))
            .map(|e| e.to_string())
    }
}

/// A field's error under it, when there is one.
#[component]
pub fn FieldError(message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message
            .get()
            .map(|m| view! { <span class="field-error" role="alert">{m}</span> })
    }
}

/// A button that first says what it will do and asks again before doing it.
///
/// The question replaces the button, so focus is moved by hand: to the confirming button
/// when asked, and back to the button when the question goes (confirmed, cancelled or
/// taken back with Escape). Otherwise focus falls to the page itself when the focused button
/// goes, and a keyboard or screen-reader user loses their place.
#[component]
pub fn ConfirmButton(
    /// The button's label, e.g. "Refund…".
    label: &'static str,
    /// What will happen, in words, shown before the admin confirms.
    explanation: String,
    /// The confirming button's label, e.g. "Yes, refund".
    confirm: &'static str,
    /// Whether the action is running.
    #[prop(into)]
    pending: Signal<bool>,
    /// Red styling for destructive actions.
    #[prop(optional)]
    danger: bool,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let class = if danger { "danger" } else { "" };
    let ask_button = NodeRef::<leptos::html::Button>::new();
    let yes_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |was_asking: Option<bool>| {
        let now = asking.get();
        // Not on the first run: a page that just loaded keeps its focus.
        if was_asking.is_some_and(|was| was != now) {
            let target = if now { yes_button } else { ask_button };
            // After the swap has reached the page; by then the whole button may be gone
            // (confirming Unblock… removes it), so a disposed reference is no error.
            request_animation_frame(move || {
                if let Some(button) = target.try_get_untracked().flatten() {
                    let _ = button.focus();
                }
            });
        }
        now
    });
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            asking.set(false);
        }
    };
    view! {
        <span class="confirm">
            {move || if asking.get() {
                view! {
                    <span class="confirm-box" role="group" aria-label=label on:keydown=on_keydown>
                        <span class="confirm-text">{explanation.clone()}</span>
                        <button type="button" class=format!("primary {class}") node_ref=yes_button
                            disabled=move || pending.get()
                            on:click=move |_| { asking.set(false); on_confirm.run(()); }>
                            {confirm}
                        </button>
                        <button type="button" on:click=move |_| asking.set(false)>"Cancel"</button>
                    </span>
                }.into_any()
            } else {
                view! {
                    // aria-disabled rather than disabled while the action runs: a disabled
                    // button cannot hold the focus given back to it after confirming.
                    <button type="button" class=class node_ref=ask_button
                        aria-disabled=move || pending.get().then_some("true")
                        on:click=move |_| { if !pending.get_untracked() { asking.set(true) } }>
                        {move || if pending.get() { "Working…" } else { label }}
                    </button>
                }.into_any()
            }}
        </span>
    }
}

/// A grant's or order's state as a coloured word.
#[component]
pub fn StateBadge(#[prop(into)] state: Signal<String>) -> impl IntoView {
    view! {
        <span class=move || format!("badge badge-{}", state.get()) data-state=move || state.get()>
            {move || state_words(&state.get())}
        </span>
    }
}

/// The words for a grant or order state code.
pub fn state_words(state: &str) -> &'static str {
    match state {
        "active" => "active",
        "blocked" => "blocked",
        "expired" => "expired",
        "exhausted" => "all downloads used",
        "revoked" => "revoked",
        "replaced" => "replaced",
        "on_hold" => "on hold",
        "pending" => "pending",
        "confirmed" => "confirmed",
        "refunded" => "refunded",
        "cancelled" => "cancelled",
        "sending" => "sending",
        "stopped" => "stopped",
        "done" => "done",
        _ => "unknown",
    }
}

/// The words for a log entry's outcome, with how many attempts it stands for when repeated
/// refusals were folded into it ("refused: expired ×37").
pub fn outcome_with_count(outcome: AttemptOutcome, count: u32) -> String {
    if count > 1 {
        format!("{} ×{count}", outcome_words(outcome))
    } else {
        outcome_words(outcome).to_owned()
    }
}

/// When a log entry happened: its time, or the span of the attempts folded into it.
pub fn attempt_time(at: domain::Timestamp, count: u32, last_at: domain::Timestamp) -> String {
    if count > 1 && last_at != at {
        format!("{} – {}", at.human(), last_at.human())
    } else {
        at.human()
    }
}

/// The words for an attempt's outcome.
pub fn outcome_words(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Allowed => "downloaded",
        AttemptOutcome::SecondCountry => "blocked: second country",
        AttemptOutcome::LimitReached => "refused: no downloads left",
        AttemptOutcome::Expired => "refused: expired",
        AttemptOutcome::Blocked => "refused: blocked",
        AttemptOutcome::Revoked => "refused: revoked",
        AttemptOutcome::Refunded => "refused: refunded",
        AttemptOutcome::OrderNotConfirmed => "refused: order not confirmed",
        AttemptOutcome::Refused => "refused",
    }
}

/// A two-letter country code's flag (its regional indicator letters) and the code in
/// capitals; `None` for anything else.
fn flag_of(code: &str) -> Option<(String, String)> {
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let upper = code.to_ascii_uppercase();
    let flag = upper
        .chars()
        .filter_map(|ch| char::from_u32(0x1F1E6 + (ch as u32 - 'A' as u32)))
        .collect();
    Some((flag, upper))
}

/// A country as its flag and code ("🇩🇪 DE"), or "unknown". The flag is decoration, hidden
/// from screen readers, and hidden altogether where the system has no flag glyphs (the
/// frontend marks `<html class="no-flag-glyphs">` at start): the code always remains.
#[component]
pub fn Country(code: Option<String>) -> impl IntoView {
    match code.as_deref().map(|c| (c, flag_of(c))) {
        Some((_, Some((flag, upper)))) => view! {
            <span class="country"><span class="flag" aria-hidden="true">{flag}</span>" "{upper}</span>
        }
        .into_any(),
        Some((other, None)) => other.to_owned().into_any(),
        None => "unknown".into_any(),
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Reads an `<input>` or `<select>` value from an event.
pub fn value_of(ev: &leptos::ev::Event) -> String {
    event_target_value(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("my book (v2).pdf"), "my%20book%20%28v2%29.pdf");
        assert_eq!(path_segment("../x"), "..%2Fx");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn flags_come_from_codes() {
        assert_eq!(flag_of("de"), Some(("🇩🇪".to_owned(), "DE".to_owned())));
        assert_eq!(flag_of("XYZ"), None);
        assert_eq!(flag_of("1a"), None);
    }
}

/// The links between the pages of a newest-first list: back to the newest page when this
/// is an older one, and on to the older page when there is one.
#[component]
pub fn Pager(
    /// The list's first page, when this page is not it.
    newest: Option<String>,
    /// The next older page, if any.
    older: Option<String>,
) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a href=href>"Older →"</a> })}
        </nav>
    }
}
