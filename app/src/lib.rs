//! Dropgate's user interface in Leptos: the document shell, the router, the admin SPA and
//! the server functions it calls. Compiled twice: with `ssr` into the server (rendering and
//! server functions), with `hydrate` into the WASM bundle that takes over in the browser.
// Deeply nested view types (the desk, the order screens) need more than 128 levels.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod buyer;
pub mod error;
pub mod format;
#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// Name of the WASM/JS bundle under `/pkg/` (wasm-bindgen's `--out-name`).
pub const BUNDLE_NAME: &str = "dropgate";

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    server::set_page_security_headers();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href="/pkg/dropgate.css"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The router: every page of the site.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Dropgate".to_owned() } else { format!("{page} · Dropgate") }/>
        <Router>
            <Routes fallback=admin::NotFound>
                <Route path=path!("/d/:password") view=buyer::DownloadPage ssr=SsrMode::Async/>
                <Route path=path!("/resend") view=buyer::ResendPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/login") view=admin::LoginPage/>
                <Route path=path!("/admin/setup") view=admin::SetupPage/>
                <ParentRoute path=path!("/admin") view=admin::AdminLayout>
                    <Route path=path!("") view=admin::DashboardPage/>
                    <Route path=path!("settings") view=admin::SettingsPage/>
                    <Route path=path!("access") view=admin::SettingsPage/>
                    <Route path=path!("desk") view=admin::DeskPage/>
                    <Route path=path!("orders") view=admin::OrdersPage/>
                    <Route path=path!("orders/:id") view=admin::OrderPage/>
                    <Route path=path!("products") view=admin::ProductsPage/>
                    <Route path=path!("products/:id") view=admin::ProductPage/>
                    <Route path=path!("activity") view=admin::ActivityPage/>
                    <Route path=path!("audit") view=admin::AuditPage/>
                    <Route path=path!("outbox") view=admin::OutboxPage/>
                    <Route path=path!("outbox/:id") view=admin::MailPage/>
                    <Route path=path!("mail-templates") view=admin::TemplatesPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
