//! Who can reach the store: staff accounts and API tokens.

use super::ErrorNote;
use crate::api::load_access;
use domain::Timestamp;
use leptos::prelude::*;
use leptos_meta::Title;

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".to_owned(), Timestamp::human)
}

/// `/admin/access`.
#[component]
pub fn AccessPage() -> impl IntoView {
    let overview = Resource::new(|| (), |()| load_access());
    view! {
        <Title text="Access"/>
        <h1>"Access"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || overview.get().map(|result| match result {
                Ok(o) => view! {
                    <section class="panel">
                        <h2>"Staff accounts"</h2>
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Email"</th><th>"Name"</th><th>"Created"</th><th>"Last sign-in"</th></tr></thead>
                                <tbody>
                                    {o.admins.into_iter().map(|a| view! {
                                        <tr>
                                            <td>{a.email.to_string()}</td>
                                            <td>{a.name}</td>
                                            <td>{a.created_at.human()}</td>
                                            <td>{when(a.last_login_at)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <p class="muted">"Add an account from the server: " <code>"dropgate admin create --email ADDRESS"</code></p>
                    </section>
                    <section class="panel">
                        <h2>"API tokens"</h2>
                        {if o.api_tokens.is_empty() {
                            view! { <p>"No API tokens yet."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap">
                                    <table>
                                        <thead><tr><th>"Id"</th><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th></tr></thead>
                                        <tbody>
                                            {o.api_tokens.into_iter().map(|t| view! {
                                                <tr>
                                                    <td>{t.id.to_string()}</td>
                                                    <td>{t.name}</td>
                                                    <td>{t.created_at.human()}</td>
                                                    <td>{when(t.last_used_at)}</td>
                                                    <td>{t.revoked_at.map_or_else(|| "active".to_owned(), |r| format!("revoked {}", r.human()))}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }}
                        <p class="muted">"Create one for a shop integration: " <code>"dropgate token create --name NAME"</code></p>
                    </section>
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}
