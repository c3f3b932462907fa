//! The pages outside the signed-in area: sign-in and the first-run setup.

use super::widgets::{field_error, form_error};
use crate::api::{CreateFirstAdmin, Login, setup_status};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

/// `/admin/login`: email and password.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            navigate("/admin", NavigateOptions::default());
        }
    });
    let error = form_error(move || login.value().get().and_then(Result::err));
    view! {
        <Title text="Sign in"/>
        <main class="auth-page">
            <section class="card auth-card">
                <h1>"Sign in to Dropgate"</h1>
                <ActionForm action=login attr:class="stack" attr:aria-label="Sign in">
                    <label>
                        "Email"
                        <input type="email" name="email" autocomplete="username" required autofocus/>
                    </label>
                    <label>
                        "Password"
                        <input type="password" name="password" autocomplete="current-password" required/>
                    </label>
                    {move || error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                    <button type="submit" class="primary" disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </section>
        </main>
    }
}

/// `/admin/setup?token=…`: creates the first admin with the one-time link from the log.
#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let status = Resource::new(token, setup_status);
    view! {
        <Title text="Set up"/>
        <main class="auth-page">
            <section class="card auth-card">
                <h1>"Welcome to Dropgate"</h1>
                <Suspense fallback=|| view! { <p class="muted">"Checking the setup link…"</p> }>
                    {move || status.get().map(|result| match result {
                        Ok(true) => view! { <SetupForm token=token()/> }.into_any(),
                        Ok(false) => view! {
                            <p class="notice error" role="alert">
                                "This setup link has already been used or was replaced by a newer one."
                            </p>
                            <p>"If you already created an admin, " <a href="/admin/login">"sign in"</a>
                               ". Otherwise restart Dropgate and open the new link it prints."</p>
                        }.into_any(),
                        Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </main>
    }
}

#[component]
fn SetupForm(token: String) -> impl IntoView {
    let create = ServerAction::<CreateFirstAdmin>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            navigate("/admin", NavigateOptions::default());
        }
    });
    let last_error = move || create.value().get().and_then(Result::err);
    let error = form_error(last_error);
    let email_error = field_error(last_error, "email");
    let name_error = field_error(last_error, "name");
    let password_error = field_error(last_error, "password");
    let confirm_error = field_error(last_error, "confirm");
    view! {
        <p>"Create the first admin account. You will use it to sign in to the admin."</p>
        <ActionForm action=create attr:class="stack" attr:aria-label="Create the first admin">
            <input type="hidden" name="token" value=token/>
            <label>
                "Email"
                <input type="email" name="email" autocomplete="username" required autofocus/>
                {move || email_error().map(|e| view! { <span class="field-error">{e}</span> })}
            </label>
            <label>
                "Your name " <span class="muted">"(optional)"</span>
                <input type="text" name="name" autocomplete="name" maxlength="100"/>
                {move || name_error().map(|e| view! { <span class="field-error">{e}</span> })}
            </label>
            <label>
                "Password " <span class="muted">"(at least 12 characters)"</span>
                <input type="password" name="password" autocomplete="new-password" required minlength="12"/>
                {move || password_error().map(|e| view! { <span class="field-error">{e}</span> })}
            </label>
            <label>
                "Password again"
                <input type="password" name="confirm" autocomplete="new-password" required minlength="12"/>
                {move || confirm_error().map(|e| view! { <span class="field-error">{e}</span> })}
            </label>
            {move || error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            <button type="submit" class="primary" disabled=move || create.pending().get()>
                {move || if create.pending().get() { "Creating…" } else { "Create admin and sign in" }}
            </button>
        </ActionForm>
    }
}
