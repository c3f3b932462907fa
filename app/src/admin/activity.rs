//! The download manager: recent download attempts and refusals with filters, refreshed
//! every few seconds, and the grants blocked by a second country that wait for a decision.

use super::ErrorNote;
use super::widgets::{Country, attempt_time, outcome_with_count, value_of};
use crate::api::{list_products, load_activity, load_geo_credit};
use crate::format;
use domain::wire::{ActivityFilter, ActivityRow, BlockedGrant};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// How often the list refreshes itself while "live" is on.
const REFRESH: Duration = Duration::from_secs(10);

/// The outcome filter's choices.
const OUTCOMES: [(&str, &str); 8] = [
    ("", "All attempts"),
    ("allowed", "Downloads"),
    ("refused", "All refusals"),
    ("second_country", "Blocked: second country"),
    ("limit_reached", "No downloads left"),
    ("expired", "Expired"),
    ("blocked", "Refused while blocked"),
    ("refunded", "Refunded order"),
];

/// `/admin/activity`.
#[component]
pub fn ActivityPage() -> impl IntoView {
    let product = RwSignal::new(String::new());
    let outcome = RwSignal::new(String::new());
    let country_code = RwSignal::new(String::new());
    let before = RwSignal::new(None::<u64>);
    let live = RwSignal::new(true);
    let tick = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if live.get_untracked() && before.get_untracked().is_none() {
                    tick.update(|n| *n += 1);
                }
            },
            REFRESH,
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let page = Resource::new(
        move || {
            (
                ActivityFilter {
                    product_id: Some(product.get()),
                    outcome: Some(outcome.get()),
                    country: Some(country_code.get()),
                    before: before.get(),
                },
                tick.get(),
            )
        },
        |(filter, _)| load_activity(filter),
    );
    let credit = Resource::new(|| (), |()| load_geo_credit());
    view! {
        <Title text="Activity"/>
        <h1>"Activity"</h1>
        <Filters product outcome country_code before live/>
        <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => view! {
                    <BlockedList blocked=page.blocked/>
                    <AttemptTable rows=page.rows/>
                    <nav class="pager" aria-label="Pages">
                        {move || before.get().is_some().then(|| view! {
                            <button type="button" class="link-button" on:click=move |_| before.set(None)>"← Newest"</button>
                        })}
                        {page.next_before.map(|b| view! {
                            <button type="button" class="link-button" on:click=move |_| before.set(Some(b))>"Older attempts →"</button>
                        })}
                    </nav>
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || credit.get().and_then(Result::ok).flatten().map(|c| view! {
                <p class="credit"><a href=c.url rel="noopener" target="_blank">{c.text}</a></p>
            })}
        </Transition>
    }
}

/// The filters above the list; changing one goes back to the newest attempts.
#[component]
fn Filters(
    product: RwSignal<String>,
    outcome: RwSignal<String>,
    country_code: RwSignal<String>,
    before: RwSignal<Option<u64>>,
    live: RwSignal<bool>,
) -> impl IntoView {
    let products = Resource::new(|| (), |()| list_products());
    let country_error = move || {
        let c = country_code.get();
        (!c.trim().is_empty() && domain::CountryCode::parse(c.trim()).is_none())
            .then_some("A country is two letters, like DE or US.")
    };
    view! {
        <form class="panel filters" aria-label="Filters" on:submit=|ev| ev.prevent_default()>
            <label>
                "Product"
                <select name="product" on:change=move |ev| { before.set(None); product.set(value_of(&ev)) }>
                    <option value="">"All products"</option>
                    <Transition fallback=|| ()>
                        {move || products.get().and_then(Result::ok).map(|list| list.into_iter().map(|p| {
                            let id = p.product_id.to_string();
                            view! { <option value=id.clone()>{format!("{} ({id})", p.name)}</option> }
                        }).collect_view())}
                    </Transition>
                </select>
            </label>
            <label>
                "Outcome"
                <select name="outcome" on:change=move |ev| { before.set(None); outcome.set(value_of(&ev)) }>
                    {OUTCOMES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Country"
                <input type="text" name="country" maxlength="2" placeholder="DE" size="4"
                    prop:value=move || country_code.get()
                    on:input=move |ev| {
                        let typed = value_of(&ev);
                        if typed.trim().is_empty() || domain::CountryCode::parse(typed.trim()).is_some() {
                            before.set(None);
                        }
                        country_code.set(typed);
                    }/>
                {move || country_error().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
            </label>
            <label class="check">
                <input type="checkbox" prop:checked=move || live.get() on:change=move |ev| live.set(event_target_checked(&ev))/>
                <span>"Live (refreshes every 10 seconds)"</span>
            </label>
        </form>
    }
}

#[component]
fn BlockedList(blocked: Vec<BlockedGrant>) -> impl IntoView {
    if blocked.is_empty() {
        return view! { <p class="muted">"No link is blocked right now."</p> }.into_any();
    }
    view! {
        <section class="panel attention">
            <h2>{format!("Blocked links needing attention ({})", blocked.len())}</h2>
            <div class="table-wrap">
                <table>
                    <thead><tr><th>"Order"</th><th>"Buyer"</th><th>"Product"</th><th>"First country"</th><th>"Then tried from"</th><th></th></tr></thead>
                    <tbody>
                        {blocked.into_iter().map(|b| {
                            let desk = format!("/admin/desk?by=order_id&q={}", b.order_id);
                            view! {
                                <tr>
                                    <td><a href=format!("/admin/orders/{}", b.order_id)>{b.order_id.to_string()}</a></td>
                                    <td>{b.email.to_string()}</td>
                                    <td><code>{b.product_id.to_string()}</code></td>
                                    <td>{match b.first {
                                        Some(s) => view! { <Country code=s.country/>{format!(" ({})", s.ip)} }.into_any(),
                                        None => "unknown".into_any(),
                                    }}</td>
                                    <td><Country code=b.blocked_by.country.clone()/>{format!(" ({}) at {}", b.blocked_by.ip, b.blocked_by.at.human())}</td>
                                    <td><a href=desk>"Open in the desk"</a></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn AttemptTable(rows: Vec<ActivityRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="panel">"No download attempts match."</p> }.into_any();
    }
    view! {
        <section class="panel">
            <h2>"Recent attempts"</h2>
            <div class="table-wrap">
                <table class="uses">
                    <thead><tr><th>"Time"</th><th>"Order"</th><th>"Product"</th><th>"File"</th><th>"IP"</th><th>"Country"</th><th>"Bytes"</th><th>"Outcome"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|r| {
                            let class = if r.outcome.is_allowed() { "ok" } else { "refused" };
                            view! {
                                <tr class=class>
                                    <td>{attempt_time(r.at, r.count, r.last_at)}</td>
                                    <td>{r.order_id.map(|o| view! { <a href=format!("/admin/orders/{o}")>{o.to_string()}</a> })}</td>
                                    <td>{r.product_id.map(|p| p.to_string()).unwrap_or_default()}</td>
                                    <td>{r.file.unwrap_or_default()}</td>
                                    <td><code>{r.ip}</code></td>
                                    <td><Country code=r.country.clone()/></td>
                                    <td>{format::bytes(r.bytes)}</td>
                                    <td>{outcome_with_count(r.outcome, r.count)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
