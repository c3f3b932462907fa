//! The Settings screen: the store's name, mail sender, reset window and IP retention; the
//! admin's own password; staff accounts; API tokens.

use super::ErrorNote;
use super::widgets::{ConfirmButton, FieldError, field_error, form_error, value_of};
use crate::api::{
    ChangeOwnPassword, CreateAdminAccount, CreateToken, RemoveAdminAccount, RevokeToken,
    SaveSettings, current_user, load_access, load_settings,
};
use domain::Timestamp;
use domain::settings::StoreSettings;
use domain::wire::{AdminSummary, ApiTokenSummary};
use leptos::prelude::*;
use leptos_meta::Title;

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".to_owned(), Timestamp::human)
}

/// A number of days typed into a field.
fn parse_days(text: &str, what: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| format!("{what} is a whole number of days."))
}

/// `/admin/settings` (and the older `/admin/access`).
#[component]
pub fn SettingsPage() -> impl IntoView {
    let settings = Resource::new(|| (), |()| load_settings());
    // Staff and tokens each load the access overview in a resource of their own: one
    // resource read by two `Transition`s is the pattern that made Leptos' server render
    // spin or deadlock (leptos#4578, #4673; see the crate docs). A change in either section
    // reloads both.
    let access_changed = RwSignal::new(0u32);
    let refresh_access = Callback::new(move |()| access_changed.update(|n| *n += 1));
    view! {
        <Title text="Settings"/>
        <h1>"Settings"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading settings…"</p> }>
            {move || settings.get().map(|result| match result {
                Ok(s) => view! { <StoreForm settings=s/> }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <section class="panel">
            <h2>"Mail"</h2>
            <p class="muted">"Buyers' links, sale notifications and self-service links go out by mail. "
                <a href="/admin/outbox">"See every mail in the outbox"</a> " · " <a href="/admin/mail-templates">"Edit the mail texts"</a></p>
            <super::outbox::TestMailForm default_email=String::new()/>
        </section>
        <OwnPasswordForm/>
        <StaffSection changed=access_changed refresh=refresh_access/>
        <TokenSection changed=access_changed refresh=refresh_access/>
    }
}

/// The form's fields as typed, checked with the rule the server applies on save.
fn form_settings(
    fields: [RwSignal<String>; 8],
) -> Result<StoreSettings, domain::settings::SettingsError> {
    let [
        store_name,
        sender_name,
        sender_email,
        reset_days,
        retention,
        log_retention,
        language,
        time_zone,
    ] = fields;
    let days = |signal: RwSignal<String>, field: &'static str, what: &str| {
        parse_days(&signal.get(), what)
            .map_err(|message| domain::settings::SettingsError { field, message })
    };
    StoreSettings {
        store_name: store_name.get(),
        sender_name: sender_name.get(),
        sender_email: sender_email.get(),
        reset_days: days(reset_days, "reset_days", "The reset window")?,
        ip_retention_days: days(retention, "ip_retention_days", "IP retention")?,
        event_retention_days: days(log_retention, "event_retention_days", "Log retention")?,
        default_language: domain::Language::from_tag(&language.get()).unwrap_or_default(),
        time_zone: time_zone.get(),
    }
    .checked()
}

#[component]
fn StoreForm(settings: StoreSettings) -> impl IntoView {
    let save = ServerAction::<SaveSettings>::new();
    let fields = [
        RwSignal::new(settings.store_name),
        RwSignal::new(settings.sender_name),
        RwSignal::new(settings.sender_email),
        RwSignal::new(settings.reset_days.to_string()),
        RwSignal::new(settings.ip_retention_days.to_string()),
        RwSignal::new(settings.event_retention_days.to_string()),
        RwSignal::new(settings.default_language.as_str().to_owned()),
        RwSignal::new(settings.time_zone),
    ];
    let [
        store_name,
        sender_name,
        sender_email,
        reset_days,
        retention,
        log_retention,
        language,
        time_zone,
    ] = fields;
    let last_error = move || save.value().get().and_then(Result::err);
    // A field's message: the check while typing first, then what the server said.
    let error_of = move |field: &'static str| {
        Signal::derive(move || {
            form_settings(fields)
                .err()
                .filter(|e| e.field == field)
                .map(|e| e.message)
                .or_else(field_error(last_error, field))
        })
    };
    let general_error = form_error(last_error);
    let saved = move || matches!(save.value().get(), Some(Ok(_))) && !save.pending().get();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(input) = form_settings(fields) {
            save.dispatch(SaveSettings { input });
        }
    };
    let text_field = move |name: &'static str,
                           label: &'static str,
                           hint: &'static str,
                           value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input type="text" name=name prop:value=move || value.get()
                    on:input=move |ev| value.set(value_of(&ev))/>
                <span class="hint">{hint}</span>
                <FieldError message=error_of(name)/>
            </label>
        }
    };
    view! {
        <section class="panel">
            <h2>"Store"</h2>
            <form class="stack narrow" on:submit=submit aria-label="Store settings">
                {text_field("store_name", "Store name", "Buyers see it on their download page and in mails.", store_name)}
                {text_field("sender_name", "Sender name", "The name mails come from. Empty: the store name.", sender_name)}
                {text_field("sender_email", "Sender address", "The address mails come from. Empty: the address in the server's mail configuration.", sender_email)}
                {text_field("reset_days", "Reset window (days)", "How long a link works again after \"Reset\" on the password desk.", reset_days)}
                {text_field("ip_retention_days", "Keep buyers' full IP addresses (days, 0 = always)", "Older addresses are shortened to their network every hour (81.2.69.142 becomes 81.2.69.0). Countries stay, so the country lock keeps working.", retention)}
                {text_field("event_retention_days", "Keep the download log (days, 0 = always)", "Older entries of the download log are removed every hour. Download counts and country locks live on the links, so no limit changes.", log_retention)}
                <label>
                    "Buyers' language when unknown"
                    <select name="default_language" prop:value=move || language.get()
                        on:change=move |ev| language.set(value_of(&ev))>
                        {domain::Language::ALL.map(|l| view! { <option value=l.as_str()>{l.native_name()}</option> })}
                    </select>
                    <span class="hint">"Buyer pages and mails use the order's language, else the browser's, else this one."</span>
                </label>
                {text_field("time_zone", "Time zone", "An IANA name such as Europe/Berlin. Mails and buyer pages show dates in it (buyer pages switch to the buyer's own zone when the browser tells it).", time_zone)}
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || saved().then(|| view! { <p class="notice ok" role="status">"Settings saved."</p> })}
                <button type="submit" class="primary" disabled=move || save.pending().get() || form_settings(fields).is_err()>
                    {move || if save.pending().get() { "Saving…" } else { "Save settings" }}
                </button>
            </form>
        </section>
    }
}

#[component]
fn OwnPasswordForm() -> impl IntoView {
    let change = ServerAction::<ChangeOwnPassword>::new();
    let current = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let last_error = move || change.value().get().and_then(Result::err);
    let current_error = Signal::derive(field_error(last_error, "current"));
    let password_error = Signal::derive(move || {
        let typed = password.get();
        (!typed.is_empty())
            .then(|| {
                domain::NewPassword::parse(&typed)
                    .err()
                    .map(|e| e.to_string())
            })
            .flatten()
            .or_else(field_error(last_error, "password"))
    });
    let confirm_error = Signal::derive(move || {
        let typed = confirm.get();
        (!typed.is_empty() && typed != password.get())
            .then(|| "The two passwords are not the same.".to_owned())
            .or_else(field_error(last_error, "confirm"))
    });
    let general_error = form_error(last_error);
    let done = move || matches!(change.value().get(), Some(Ok(()))) && !change.pending().get();
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            for field in [current, password, confirm] {
                field.set(String::new());
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        change.dispatch(ChangeOwnPassword {
            current: current.get_untracked(),
            password: password.get_untracked(),
            confirm: confirm.get_untracked(),
        });
    };
    let secret_field = move |name: &'static str,
                             label: &'static str,
                             autocomplete: &'static str,
                             value: RwSignal<String>,
                             error: Signal<Option<String>>| {
        view! {
            <label>
                {label}
                <input type="password" name=name autocomplete=autocomplete required
                    prop:value=move || value.get() on:input=move |ev| value.set(value_of(&ev))/>
                <FieldError message=error/>
            </label>
        }
    };
    view! {
        <section class="panel">
            <h2>"Your password"</h2>
            <form class="stack narrow" on:submit=submit aria-label="Change your password">
                {secret_field("current", "Current password", "current-password", current, current_error)}
                {secret_field("password", "New password (12 characters or more)", "new-password", password, password_error)}
                {secret_field("confirm", "New password again", "new-password", confirm, confirm_error)}
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || done().then(|| view! { <p class="notice ok" role="status">"Password changed. You stay signed in here; every other session of yours was signed out."</p> })}
                <button type="submit" class="primary" disabled=move || change.pending().get()>
                    {move || if change.pending().get() { "Changing…" } else { "Change password" }}
                </button>
            </form>
        </section>
    }
}

#[component]
fn StaffSection(changed: RwSignal<u32>, refresh: Callback<()>) -> impl IntoView {
    let access = Resource::new(move || changed.get(), |_| load_access());
    let me = Resource::new(|| (), |()| current_user());
    let remove = ServerAction::<RemoveAdminAccount>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = remove.value().get() {
            refresh.run(());
        }
    });
    let remove_error = move || remove.value().get().and_then(Result::err);
    let rows = move |admins: Vec<AdminSummary>| {
        admins
        .into_iter()
        .map(|a| {
            let id = a.id;
            let is_me = move || me.get().and_then(Result::ok).is_some_and(|u| u.admin_id == id);
            let explanation = format!(
                "{} will be signed out at once and can no longer sign in.",
                a.email
            );
            view! {
                <tr>
                    <td>{a.email.to_string()}</td>
                    <td>{a.name}</td>
                    <td>{a.created_at.human()}</td>
                    <td>{when(a.last_login_at)}</td>
                    <td>
                        {move || if is_me() {
                            view! { <span class="muted">"you"</span> }.into_any()
                        } else {
                            view! {
                                <ConfirmButton label="Remove…" explanation=explanation.clone()
                                    confirm="Yes, remove" danger=true pending=remove.pending()
                                    on_confirm=Callback::new(move |()| { remove.dispatch(RemoveAdminAccount { admin_id: id.get() }); })/>
                            }.into_any()
                        }}
                    </td>
                </tr>
            }
        })
        .collect_view()
    };
    view! {
        <section class="panel">
            <h2>"Staff accounts"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading accounts…"</p> }>
                {move || access.get().map(|result| match result {
                    Ok(o) => view! {
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Email"</th><th>"Name"</th><th>"Created"</th><th>"Last sign-in"</th><th></th></tr></thead>
                                <tbody>{rows(o.admins)}</tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
            </Transition>
            {move || remove_error().map(|error| view! { <ErrorNote error/> })}
            <NewAdminForm refresh/>
        </section>
    }
}

#[component]
fn NewAdminForm(refresh: Callback<()>) -> impl IntoView {
    let create = ServerAction::<CreateAdminAccount>::new();
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let last_error = move || create.value().get().and_then(Result::err);
    let email_error = Signal::derive(move || {
        let typed = email.get();
        (!typed.is_empty())
            .then(|| domain::Email::parse(&typed).err().map(|e| e.to_string()))
            .flatten()
            .or_else(field_error(last_error, "email"))
    });
    let password_error = Signal::derive(move || {
        let typed = password.get();
        (!typed.is_empty())
            .then(|| {
                domain::NewPassword::parse(&typed)
                    .err()
                    .map(|e| e.to_string())
            })
            .flatten()
            .or_else(field_error(last_error, "password"))
    });
    let general_error = form_error(last_error);
    let added = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            added.set(Some(email.get_untracked()));
            for field in [email, name, password] {
                field.set(String::new());
            }
            refresh.run(());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        added.set(None);
        create.dispatch(CreateAdminAccount {
            email: email.get_untracked(),
            name: name.get_untracked(),
            password: password.get_untracked(),
        });
    };
    view! {
        <h3>"Add an admin"</h3>
        <form class="stack narrow" on:submit=submit aria-label="Add an admin">
            <label>"Email"
                <input type="email" name="email" required prop:value=move || email.get() on:input=move |ev| email.set(value_of(&ev))/>
                <FieldError message=email_error/>
            </label>
            <label>"Name " <span class="muted">"(optional)"</span>
                <input type="text" name="name" prop:value=move || name.get() on:input=move |ev| name.set(value_of(&ev))/>
            </label>
            <label>"First password"
                <input type="password" name="password" autocomplete="new-password" required prop:value=move || password.get() on:input=move |ev| password.set(value_of(&ev))/>
                <span class="hint">"Tell it to them in person or by phone; they change it under Settings after signing in."</span>
                <FieldError message=password_error/>
            </label>
            {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || added.get().map(|who| view! { <p class="notice ok" role="status">{format!("{who} can now sign in at /admin/login.")}</p> })}
            <button type="submit" class="primary" disabled=move || create.pending().get()>
                {move || if create.pending().get() { "Adding…" } else { "Add admin" }}
            </button>
        </form>
    }
}

#[component]
fn TokenSection(changed: RwSignal<u32>, refresh: Callback<()>) -> impl IntoView {
    let access = Resource::new(move || changed.get(), |_| load_access());
    let revoke = ServerAction::<RevokeToken>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            refresh.run(());
        }
    });
    let revoke_error = move || revoke.value().get().and_then(Result::err);
    let rows = move |tokens: Vec<ApiTokenSummary>| {
        tokens
        .into_iter()
        .map(|t| {
            let id = t.id;
            let state = t
                .revoked_at
                .map_or_else(|| "active".to_owned(), |r| format!("revoked {}", r.human()));
            let action = t.revoked_at.is_none().then(|| {
                view! {
                    <ConfirmButton label="Revoke…" danger=true pending=revoke.pending()
                        explanation=format!("Programs using \"{}\" stop working at once.", t.name)
                        confirm="Yes, revoke"
                        on_confirm=Callback::new(move |()| { revoke.dispatch(RevokeToken { token_id: id.get() }); })/>
                }
            });
            view! {
                <tr>
                    <td>{t.id.to_string()}</td>
                    <td>{t.name}</td>
                    <td>{t.created_at.human()}</td>
                    <td>{when(t.last_used_at)}</td>
                    <td>{state}</td>
                    <td>{action}</td>
                </tr>
            }
        })
        .collect_view()
    };
    view! {
        <section class="panel">
            <h2>"API tokens"</h2>
            <p class="muted">"For shop integrations and scripts using the REST API (" <a href="/api/v1/openapi.json">"OpenAPI document"</a> ")."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || access.get().map(|result| match result {
                    Ok(o) if o.api_tokens.is_empty() => view! { <p>"No API tokens yet."</p> }.into_any(),
                    Ok(o) => view! {
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Id"</th><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>{rows(o.api_tokens)}</tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
            </Transition>
            {move || revoke_error().map(|error| view! { <ErrorNote error/> })}
            <NewTokenForm refresh/>
        </section>
    }
}

#[component]
fn NewTokenForm(refresh: Callback<()>) -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let name = RwSignal::new(String::new());
    let last_error = move || create.value().get().and_then(Result::err);
    let name_error = Signal::derive(field_error(last_error, "name"));
    let general_error = form_error(last_error);
    // This form sits outside the refreshed list, so the secret stays readable until the
    // admin leaves the page.
    let shown = RwSignal::new(None::<crate::api::CreatedToken>);
    Effect::new(move |_| {
        if let Some(Ok(token)) = create.value().get() {
            shown.set(Some(token));
            name.set(String::new());
            refresh.run(());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateToken {
            name: name.get_untracked(),
        });
    };
    view! {
        <h3>"Create a token"</h3>
        <form class="stack narrow" on:submit=submit aria-label="Create an API token">
            <label>"Name " <span class="muted">"(what uses it, e.g. \"Stripe webhook\")"</span>
                <input type="text" name="token_name" required maxlength="80"
                    prop:value=move || name.get() on:input=move |ev| name.set(value_of(&ev))/>
                <FieldError message=name_error/>
            </label>
            {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            <button type="submit" class="primary" disabled=move || create.pending().get()>
                {move || if create.pending().get() { "Creating…" } else { "Create token" }}
            </button>
        </form>
        {move || shown.get().map(|t| view! {
            <div class="notice ok secret-once" role="status">
                <p>{format!("Token {} ({}) created. Copy it now: it is shown only once.", t.id, t.name)}</p>
                <code class="token-secret">{t.secret}</code>
            </div>
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_must_be_whole_numbers() {
        assert_eq!(parse_days(" 31 ", "x"), Ok(31));
        assert!(
            parse_days("3.5", "The reset window")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_days("", "x").is_err());
    }
}
