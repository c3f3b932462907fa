//! The audit log: who changed what and when, with the record before and after.

use super::ErrorNote;
use super::widgets::value_of;
use crate::api::load_audit;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

/// `/admin/audit?target=…`: filter by an order ID (`1234567`), a grant (`grant:12`) or a
/// product ID.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let target = move || query.read().get("target").unwrap_or_default();
    let entries = Resource::new(target, load_audit);
    let typed = RwSignal::new(target());
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = typed.get_untracked();
        let t = t.trim();
        let href = if t.is_empty() {
            "/admin/audit".to_owned()
        } else {
            format!("/admin/audit?target={}", super::widgets::path_segment(t))
        };
        navigate(&href, NavigateOptions::default());
    };
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <form class="searchbar" role="search" on:submit=submit>
            <label class="grow">
                "Only changes to"
                <input type="search" name="target" placeholder="Order ID (1234567), grant:12 or a product ID"
                    prop:value=move || typed.get() on:input=move |ev| typed.set(value_of(&ev))/>
            </label>
            <button type="submit" class="primary">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading the log…"</p> }>
            {move || entries.get().map(|result| match result {
                Ok(list) if list.is_empty() => view! { <p class="panel">"No entries."</p> }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap panel">
                        <table class="audit">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Record"</th><th>"Before → after"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|e| {
                                    let filter = format!("/admin/audit?target={}", super::widgets::path_segment(&e.target));
                                    view! {
                                        <tr>
                                            <td>{e.at.human()}</td>
                                            <td>{e.actor}</td>
                                            <td>{e.action}</td>
                                            <td><a href=filter>{e.target}</a></td>
                                            <td>
                                                <details>
                                                    <summary>"Show"</summary>
                                                    <div class="diff">
                                                        <div><h4>"Before"</h4><pre>{if e.before.is_empty() { "(nothing)".to_owned() } else { e.before }}</pre></div>
                                                        <div><h4>"After"</h4><pre>{if e.after.is_empty() { "(nothing)".to_owned() } else { e.after }}</pre></div>
                                                    </div>
                                                </details>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}
