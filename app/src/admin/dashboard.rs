//! The dashboard: the store's figures at a glance.

use super::ErrorNote;
use crate::api::load_dashboard;
use crate::format;
use leptos::prelude::*;
use leptos_meta::Title;

/// `/admin`.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let figures = Resource::new(|| (), |()| load_dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading figures…"</p> }>
            {move || figures.get().map(|result| match result {
                Ok(f) => view! {
                    <dl class="figures">
                        <Figure label="Staff accounts" value=f.admins.to_string()/>
                        <Figure label="Signed-in sessions" value=f.active_sessions.to_string()/>
                        <Figure label="Active API tokens" value=f.api_tokens_active.to_string()/>
                        <Figure label="Database size" value=format::bytes(f.database_bytes)/>
                        <Figure label="Running since" value=f.server_started_at.human()/>
                        <Figure label="Version" value=f.version.clone()/>
                        <Figure label="IP → country database" value=f.geoip_database.clone()/>
                    </dl>
                    {f.geoip_credit.clone().map(|credit| view! {
                        <p class="credit"><a href=credit.url rel="noopener" target="_blank">{credit.text}</a></p>
                    })}
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Figure(label: &'static str, value: String) -> impl IntoView {
    view! {
        <div class="figure">
            <dt>{label}</dt>
            <dd>{value}</dd>
        </div>
    }
}
