//! The password desk, the seller's main support tool: find a buyer's grants by password,
//! order ID, order number, transaction ID or email; see every use and every country that
//! tried; reset, unblock, expire or rotate the link; send a product to any address.

use super::ErrorNote;
use super::orders::IssuedLinks;
use super::widgets::{
    ConfirmButton, Country, FieldError, StateBadge, attempt_time, field_error, form_error,
    outcome_with_count, path_segment, value_of,
};
use crate::api::{
    GrantAction, SEARCH_BY, SendNewPassword, desk_lookup, list_products, load_geo_credit,
};
use crate::format;
use domain::AttemptOutcome;
use domain::wire::{GrantDetail, IssuedGrant, ProductView, SightingView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

/// `/admin/desk?by=…&q=…&product=…`: the search lives in the address (deep links from the
/// order page, back and forward).
#[component]
pub fn DeskPage() -> impl IntoView {
    let query = use_query_map();
    let by = move || {
        query
            .read()
            .get("by")
            .unwrap_or_else(|| "password".to_owned())
    };
    let q = move || query.read().get("q").unwrap_or_default();
    let product = move || query.read().get("product").unwrap_or_default();
    let products = Resource::new(|| (), |()| list_products());
    let found = Resource::new(
        move || (by(), q(), product()),
        |(by, q, product)| async move {
            if q.trim().is_empty() {
                None
            } else {
                Some(desk_lookup(by, q, product).await)
            }
        },
    );
    let credit = Resource::new(|| (), |()| load_geo_credit());
    view! {
        <Title text="Password desk"/>
        <h1>"Password desk"</h1>
        <SearchForm by=by() q=q() product=product() products/>
        <Transition fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || found.get().map(|result| match result {
                None => view! {
                    <p class="hint">"Type the buyer's password, order ID or order number: every matching link appears with its uses, its countries and buttons to fix it."</p>
                }.into_any(),
                Some(Ok(grants)) if grants.is_empty() => view! {
                    <p class="panel" role="status">"Nothing matches. Check for typos, or search by another key."</p>
                }.into_any(),
                Some(Ok(grants)) => view! {
                    <p class="muted" role="status">{format!("{} link(s) found", grants.len())}</p>
                    {grants.into_iter().map(|g| view! { <GrantCard grant=g/> }).collect_view()}
                }.into_any(),
                Some(Err(error)) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <SendPasswordPanel products/>
        <Transition fallback=|| ()>
            {move || credit.get().and_then(Result::ok).flatten().map(|c| view! {
                <p class="credit"><a href=c.url rel="noopener" target="_blank">{c.text}</a></p>
            })}
        </Transition>
    }
}

#[component]
fn ProductOptions(
    products: Resource<Result<Vec<ProductView>, crate::error::AppError>>,
    selected: String,
) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {
                let selected = selected.clone();
                move || products.get().and_then(Result::ok).map(|list| list.into_iter().map(|p| {
                    let id = p.product_id.to_string();
                    let is = id == selected;
                    view! { <option value=id.clone() selected=is>{format!("{} ({id})", p.name)}</option> }
                }).collect_view())
            }
        </Transition>
    }
}

#[component]
fn SearchForm(
    by: String,
    q: String,
    product: String,
    products: Resource<Result<Vec<ProductView>, crate::error::AppError>>,
) -> impl IntoView {
    let by_value = RwSignal::new(by.clone());
    let q_value = RwSignal::new(q);
    let product_value = RwSignal::new(product.clone());
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let target = format!(
            "/admin/desk?by={}&q={}&product={}",
            path_segment(&by_value.get_untracked()),
            path_segment(q_value.get_untracked().trim()),
            path_segment(&product_value.get_untracked())
        );
        navigate(&target, NavigateOptions::default());
    };
    view! {
        <form class="panel desk-search" role="search" on:submit=submit aria-label="Find a link">
            <label>
                "Product"
                <select name="product" on:change=move |ev| product_value.set(value_of(&ev))>
                    <option value="" selected=product.is_empty()>"All products"</option>
                    <ProductOptions products selected=product.clone()/>
                </select>
            </label>
            <label>
                "Search by"
                <select name="by" on:change=move |ev| by_value.set(value_of(&ev))>
                    {SEARCH_BY.iter().map(|(value, label)| {
                        let is = *value == by;
                        view! { <option value=*value selected=is>{*label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="grow">
                "Value"
                <input type="search" name="q" required autofocus
                    prop:value=move || q_value.get() on:input=move |ev| q_value.set(value_of(&ev))/>
            </label>
            <button type="submit" class="primary">"Find"</button>
        </form>
    }
}

/// Where and when a link was used: country, IP and time.
#[component]
fn Sighting(sighting: SightingView) -> impl IntoView {
    view! { <Country code=sighting.country/>{format!(" · {} · {}", sighting.ip, sighting.at.human())} }
}

/// One grant with its facts, its timeline and the desk's buttons; actions update it in place.
#[component]
fn GrantCard(grant: GrantDetail) -> AnyView {
    let grant = RwSignal::new(grant);
    let action = ServerAction::<GrantAction>::new();
    let issued = RwSignal::new(None::<IssuedGrant>);
    let done = RwSignal::new(None::<&'static str>);
    Effect::new(move |_| {
        if let Some(Ok(result)) = action.value().get() {
            grant.set(result.grant);
            issued.set(result.issued);
        }
    });
    let error = move || {
        action
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let pending = Signal::derive(move || action.pending().get());
    let run = move |name: &'static str, words: &'static str| {
        Callback::new(move |()| {
            done.set(Some(words));
            action.dispatch(GrantAction {
                grant_id: grant.get_untracked().grant_id.get(),
                action: name.to_owned(),
                downloads: None,
            });
        })
    };
    let extra = RwSignal::new("1".to_owned());
    let add_downloads = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(Some("More downloads added."));
        action.dispatch(GrantAction {
            grant_id: grant.get_untracked().grant_id.get(),
            action: "add-downloads".to_owned(),
            downloads: Some(extra.get_untracked().trim().parse().unwrap_or(0)),
        });
    };
    let g = move || grant.get();
    view! {
        <article class="panel grant" aria-label=move || format!("Link {}", g().grant_id)>
            <header class="grant-head">
                <h2>
                    <code>{move || g().product_id.to_string()}</code> " "
                    <StateBadge state=Signal::derive(move || g().status.as_str().to_owned())/>
                    {move || g().replaced.then(|| view! { <StateBadge state="replaced".to_owned()/> })}
                </h2>
                <p class="muted">
                    {move || format!("Order {} · {} · {}", g().order_id, g().order_number, g().email)}
                    " · " <a href=move || format!("/admin/orders/{}", g().order_id)>"open order"</a>
                    " · " <a href=move || format!("/admin/customers/{}", g().email)>"the buyer"</a>
                </p>
                {move || g().replaced.then(|| view! {
                    <p class="notice">"This password was replaced by a newer one: it no longer downloads. The facts below are the link's as it is now."</p>
                })}
            </header>
            <dl class="facts">
                <div><dt>"State"</dt><dd class="grant-state">{move || super::widgets::state_words(g().status.as_str())}</dd></div>
                <div><dt>"Valid until"</dt><dd>{move || g().valid_until.map_or_else(|| "no time limit".to_owned(), domain::Timestamp::human)}</dd></div>
                <div><dt>"Downloads used"</dt><dd>{move || downloads_text(&g())}</dd></div>
                <div><dt>"Locked country"</dt><dd class="locked">{move || match g().locked {
                    Some(s) => view! { <Sighting sighting=s/> }.into_any(),
                    None => "not locked yet".into_any(),
                }}</dd></div>
            </dl>
            <BlockedBox grant/>
            <div class="row actions">
                <ConfirmButton label="Reset…" pending confirm="Yes, reset"
                    explanation="Start a fresh download period from now: downloads used, the country lock and any block are cleared.".to_owned()
                    on_confirm=run("reset", "Reset: a fresh period starts now.")/>
                <ConfirmButton label="Reset counts…" pending confirm="Yes, reset the counts"
                    explanation="Downloads used start again from zero. The end date, the country lock and any block stay.".to_owned()
                    on_confirm=run("reset-counts", "Counts reset: downloads start again from zero.")/>
                {move || g().blocked_by.is_some().then(|| view! {
                    <ConfirmButton label="Unblock…" pending confirm="Yes, unblock"
                        explanation="Lift the block and the country lock. The original end date and the downloads used stay.".to_owned()
                        on_confirm=run("unblock", "Unblocked.")/>
                })}
                <ConfirmButton label="Expire…" pending danger=true confirm="Yes, expire"
                    explanation="The link stops working now. Reset brings it back.".to_owned()
                    on_confirm=run("expire", "Expired.")/>
                <ConfirmButton label="New password…" pending confirm="Yes, make a new one"
                    explanation="Make a new password and mail the new link to the buyer. The old link stops working; downloads used, the end date and the country lock stay.".to_owned()
                    on_confirm=run("resend", "A new password is made and mailed to the buyer.")/>
            </div>
            {move || (g().max_downloads > 0).then(|| view! {
                <form class="row add-downloads" on:submit=add_downloads aria-label="Add downloads">
                    <label>"Add" " "
                        <input type="number" name="downloads" min="1" max="1000" required class="short"
                            prop:value=move || extra.get() on:input=move |ev| extra.set(super::widgets::value_of(&ev))/>
                        " downloads of each file"</label>
                    <button type="submit" disabled=move || pending.get()>"Add downloads"</button>
                </form>
            })}
            {move || error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || (action.value().get().is_some_and(|r| r.is_ok())).then(|| done.get()).flatten()
                .map(|d| view! { <p class="notice ok" role="status">{d}</p> })}
            {move || issued.get().map(|i| view! {
                <p class="notice ok issued" role="status">
                    "New link for the buyer: " <a class="issued-url" href=i.url.clone() rel="noopener" target="_blank">{i.url.clone()}</a>
                    " " <span class="muted">"password "</span><code class="issued-password">{i.password}</code>
                </p>
            })}
            <Timeline grant/>
        </article>
    }
    .into_any()
}

/// For a blocked grant: the first country and IP beside every other one that tried.
#[component]
fn BlockedBox(grant: RwSignal<GrantDetail>) -> impl IntoView {
    let g = move || grant.get();
    view! {
        {move || g().blocked_by.clone().map(|blocked| {
                let detail = g();
                let others: Vec<_> = detail.uses.iter()
                    .filter(|u| u.outcome == AttemptOutcome::SecondCountry)
                    .map(|u| SightingView { country: u.country.clone(), ip: u.ip.clone(), at: u.at })
                    .collect();
                view! {
                    <div class="blocked-box" role="note">
                        <h3>"Blocked: used from a second country"</h3>
                        <div class="compare">
                            <div><h4>"First country"</h4><p class="first-country">{match detail.locked.clone() {
                                Some(s) => view! { <Sighting sighting=s/> }.into_any(),
                                None => "unknown".into_any(),
                            }}</p></div>
                            <div><h4>"Then tried from"</h4>
                                <p class="second-country"><Sighting sighting=blocked/></p>
                                {(others.len() > 1).then(|| view! {
                                    <ul class="other-tries">{others.into_iter().map(|o| view! { <li><Sighting sighting=o/></li> }).collect_view()}</ul>
                                })}
                            </div>
                        </div>
                    </div>
                }
            })}
    }
}

/// Every use of a grant, newest first.
#[component]
pub(super) fn Timeline(grant: RwSignal<GrantDetail>) -> impl IntoView {
    let g = move || grant.get();
    view! {
            <details class="timeline" open=true>
                <summary>{move || format!("Every use ({})", g().uses.len())}</summary>
                {move || {
                    let uses = g().uses;
                    if uses.is_empty() {
                        view! { <p class="muted">"Not used yet."</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap">
                                <table class="uses">
                                    <thead><tr><th>"Time"</th><th>"IP"</th><th>"Country"</th><th>"File"</th><th>"Bytes"</th><th>"Outcome"</th></tr></thead>
                                    <tbody>
                                        {uses.into_iter().rev().map(|u| {
                                            let class = if u.outcome.is_allowed() { "ok" } else { "refused" };
                                            view! {
                                                <tr class=class>
                                                    <td>{attempt_time(u.at, u.count, u.last_at)}</td>
                                                    <td><code>{u.ip.clone()}</code></td>
                                                    <td><Country code=u.country.clone()/></td>
                                                    <td>{u.file.clone().unwrap_or_default()}</td>
                                                    <td>{format::bytes(u.bytes)}</td>
                                                    <td>{outcome_with_count(u.outcome, u.count)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any()
                    }
                }}
            </details>
    }
}

/// "1.0 of 3 (book.pdf)", per file; "unlimited" when there is no limit.
pub(super) fn downloads_text(g: &GrantDetail) -> String {
    let allowed = if g.max_downloads == 0 {
        "unlimited".to_owned()
    } else {
        g.max_downloads.to_string()
    };
    if g.files.is_empty() {
        return format!("none of {allowed}");
    }
    g.files
        .iter()
        .map(|f| format!("{:.1} of {allowed} ({})", f.downloads_used, f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
fn SendPasswordPanel(
    products: Resource<Result<Vec<ProductView>, crate::error::AppError>>,
) -> impl IntoView {
    let send = ServerAction::<SendNewPassword>::new();
    let product = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let last_error = move || send.value().get().and_then(Result::err);
    let product_error = Signal::derive(field_error(last_error, "product_id"));
    let email_error = Signal::derive(move || {
        let typed = email.get();
        if !typed.trim().is_empty()
            && let Err(e) = domain::Email::parse(typed.trim())
        {
            return Some(e.to_string());
        }
        field_error(last_error, "email")()
    });
    let name_error = Signal::derive(field_error(last_error, "name"));
    let general_error = form_error(last_error);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send.dispatch(SendNewPassword {
            product_id: product.get_untracked(),
            email: email.get_untracked().trim().to_owned(),
            name: name.get_untracked().trim().to_owned(),
        });
    };
    view! {
        <section class="panel">
            <h2>"Send a new password"</h2>
            <p class="hint">"For a free upgrade or a mistyped address: makes a free, confirmed order of one product for any email."</p>
            <form class="stack narrow" on:submit=submit aria-label="Send a new password">
                <label>
                    "Product"
                    <select name="product_id" on:change=move |ev| product.set(value_of(&ev))>
                        <option value="">"Choose a product"</option>
                        <ProductOptions products selected=String::new()/>
                    </select>
                    <FieldError message=product_error/>
                </label>
                <label>
                    "Email"
                    <input type="email" name="email" required
                        prop:value=move || email.get() on:input=move |ev| email.set(value_of(&ev))/>
                    <FieldError message=email_error/>
                </label>
                <label>
                    "Name " <span class="muted">"(optional)"</span>
                    <input type="text" name="name" maxlength="200"
                        prop:value=move || name.get() on:input=move |ev| name.set(value_of(&ev))/>
                    <FieldError message=name_error/>
                </label>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || send.pending().get()>
                    {move || if send.pending().get() { "Sending…" } else { "Send new password" }}
                </button>
            </form>
            {move || send.value().get().and_then(Result::ok).map(|created| view! { <IssuedLinks created/> })}
        </section>
    }
}
