//! The admin SPA: the signed-in layout with navigation, and one module per area.

mod activity;
mod announce;
mod audit;
mod auth_pages;
mod customers;
mod dashboard;
mod desk;
mod orders;
mod outbox;
mod payments;
mod picker;
mod products;
mod records;
mod settings;
mod upload;
mod widgets;

pub use activity::ActivityPage;
pub use audit::AuditPage;
pub use auth_pages::{LoginPage, SetupPage};
pub use customers::CustomerPage;
pub use dashboard::DashboardPage;
pub use desk::DeskPage;
pub use orders::{OrderPage, OrdersPage};
pub use outbox::{MailPage, OutboxPage, TemplatesPage};
pub use payments::{PaymentsPage, WebhooksPage};
pub use products::{ProductPage, ProductsPage};
pub use records::RecordsPage;
pub use settings::SettingsPage;

use crate::api::{Logout, current_user};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Outlet, Redirect};
use leptos_router::hooks::use_navigate;

/// The frame of every signed-in page: brand, navigation, the admin's name, sign-out.
#[component]
pub fn AdminLayout() -> impl IntoView {
    let user = Resource::new(|| (), |()| current_user());
    let logout = ServerAction::<Logout>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            navigate("/admin/login", leptos_router::NavigateOptions::default());
        }
    });
    view! {
        <div class="admin">
            <header class="topbar">
                <a class="brand" href="/admin">"Dropgate"</a>
                <nav class="mainnav" aria-label="Main">
                    <A href="/admin" exact=true>"Dashboard"</A>
                    <A href="/admin/desk">"Password desk"</A>
                    <A href="/admin/orders">"Orders"</A>
                    <A href="/admin/products">"Products"</A>
                    <A href="/admin/payments">"Payments"</A>
                    <A href="/admin/activity">"Activity"</A>
                    <A href="/admin/outbox">"Outbox"</A>
                    <A href="/admin/records">"Records"</A>
                    <A href="/admin/audit">"Audit log"</A>
                    <A href="/admin/settings">"Settings"</A>
                </nav>
                <div class="whoami">
                    <Transition fallback=|| ()>
                        {move || user.get().map(|result| match result {
                            Ok(user) => {
                                let label = if user.name.is_empty() { user.email.to_string() } else { user.name.clone() };
                                view! { <span class="user" title=user.email.to_string()>{label}</span> }.into_any()
                            }
                            Err(error) => view! { <ErrorNote error/> }.into_any(),
                        })}
                    </Transition>
                    <ActionForm action=logout>
                        <button type="submit" class="link-button" disabled=move || logout.pending().get()>
                            "Sign out"
                        </button>
                    </ActionForm>
                </div>
            </header>
            <main class="content" id="content">
                <Outlet/>
            </main>
        </div>
    }
}

/// Shows an error from a server function; a lost session goes back to the login page.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    match error {
        AppError::SignedOut => view! { <Redirect path="/admin/login"/> }.into_any(),
        other => view! { <p class="notice error" role="alert">{other.to_string()}</p> }.into_any(),
    }
}

/// For addresses that match no page.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main class="auth-page">
            <section class="card">
                <h1>"This page does not exist"</h1>
                <p>"The address may be mistyped, or the page has moved."</p>
                <p><a href="/admin">"Go to the Dropgate admin"</a></p>
            </section>
        </main>
    }
}
