//! Dropgate's admin interface in Leptos: the document shell, the router, the admin SPA and
//! the server functions it calls. (The buyer's pages are plain server-rendered HTML in
//! `server::http::buyer`: they load no WASM.) Compiled twice: with `ssr` into the server (rendering and
//! server functions), with `hydrate` into the WASM bundle that takes over in the browser.
//!
//! # The rule for every screen: nothing rendered on the server is bound to a thread
//!
//! The server renders pages on a multi-threaded runtime and drops a page's reactive owner
//! when its last byte is sent, possibly on another thread than the one that built it.
//! A thread-bound value created during a server render — `StoredValue::new_local`,
//! `LocalResource`, `ArcLocalSignal`, a `SendWrapper`, anything holding a `web_sys` or
//! `wasm_bindgen` value — panics when it is dropped on another thread ("Dropped
//! SendWrapper<T> variable from a thread different to the one it has been created
//! with"): the page is cut off mid-stream and the panic unwinds through Leptos' reactive
//! graph. That was issue 15 (`StoredValue::new_local` in the upload box).
//!
//! So:
//! - Values that exist only in the browser (XHRs, DOM handles, timers, `File`s) are
//!   created only in the browser: in an event handler, in an `Effect` (effects do not run
//!   on the server), or behind `#[cfg(feature = "hydrate")]`. Keep them in ordinary
//!   (thread-safe) storage as `Option<BrowserOnly<T>>` that starts as `None`, so a
//!   server render creates and drops only the empty slot.
//! - Use `StoredValue::new`, `RwSignal::new`, `Resource::new`; never the `*_local`
//!   variants, `LocalResource` or `spawn_local` in a component.
//! - Read a resource in one `Suspense`/`Transition` only: the mail-texts page read its
//!   preview in two, Leptos' Suspense re-resolved it without end, and on two threads
//!   that deadlocked the whole server (leptos#4578, #4673). Where a second place needs
//!   the outcome (a Save button), copy it into a signal from an `Effect`.
//! - Create every resource at the page's top level, never inside another resource's
//!   `Suspense`/`Transition`: a nested resource hydrated in a timing-dependent order and
//!   the browser panicked ("unreachable" in tachys' hydration) under load. Pass it down.
//! - Hold no reactive guard across an `.await`.
//!
//! `server/tests/reload.rs` reloads every page under concurrency and fails on any panic;
//! `end2end/tests/reload.test.mjs` does the same in Chromium with full navigations and
//! fails on any console error or failed hydration. The server also renders each page
//! wholly on one thread (`server::http::render`), so that a Leptos lock-order bug costs at
//! most the page it happens on, not the runtime that serves downloads.
// Deeply nested view types (the desk, the order screens) need more than 128 levels.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod error;
pub mod format;
#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

/// A browser-only value (an XHR, a DOM handle, a timer, a file) kept in reactive storage.
/// It may be touched and dropped only on the thread that made it, which in the browser is
/// the only thread; create it only in the browser, never during a server render (see the
/// crate docs), and keep it as `Option<BrowserOnly<T>>` starting at `None`.
pub type BrowserOnly<T> = send_wrapper::SendWrapper<T>;

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
                    <Route path=path!("payments") view=admin::PaymentsPage/>
                    <Route path=path!("webhooks") view=admin::WebhooksPage/>
                    <Route path=path!("records") view=admin::RecordsPage/>
                    <Route path=path!("customers/:email") view=admin::CustomerPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
