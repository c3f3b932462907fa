//! The order screens: the searchable, paged list with a form for orders made by hand, and
//! one order with its customer record, status changes, refund and product exchange.

use super::ErrorNote;
use super::widgets::{ConfirmButton, FieldError, StateBadge, field_error, form_error, value_of};
use crate::api::{
    CreateOrder, ExchangeProduct, SearchKind, UpdateOrder, get_order, list_orders, list_products,
};
use crate::error::AppError;
use domain::OrderStatus;
use domain::wire::{CreatedOrder, NewOrder, OrderPatch, OrderView, ProductView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// `/admin/orders?q=…&before=…`: the search and the page live in the address, so back,
/// forward and shared links show the same list.
#[component]
pub fn OrdersPage() -> impl IntoView {
    let query = use_query_map();
    let search = move || query.read().get("q").unwrap_or_default();
    let before = move || query.read().get("before").filter(|b| !b.is_empty());
    let created = RwSignal::new(0u32);
    let page = Resource::new(
        move || (search(), before(), created.get()),
        |(q, b, _)| list_orders(q, b),
    );
    let typed = RwSignal::new(search());
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = typed.get_untracked();
        let q = q.trim();
        let target = if q.is_empty() {
            "/admin/orders".to_owned()
        } else {
            format!("/admin/orders?q={}", super::widgets::path_segment(q))
        };
        navigate(&target, NavigateOptions::default());
    };
    let hint = move || {
        let q = typed.get();
        (!q.trim().is_empty()).then(|| format!("Searching by {}", SearchKind::of(&q).label()))
    };
    view! {
        <Title text="Orders"/>
        <h1>"Orders"</h1>
        <form class="searchbar" role="search" on:submit=submit>
            <label class="grow">
                <span class="sr-only">"Search orders"</span>
                <input type="search" name="q" placeholder="Order ID, order number, email or transaction ID"
                    prop:value=move || typed.get() on:input=move |ev| typed.set(value_of(&ev))/>
            </label>
            <button type="submit" class="primary">"Search"</button>
            {move || (!search().is_empty()).then(|| view! { <a href="/admin/orders" class="button-link">"Show all"</a> })}
        </form>
        <p class="hint">{hint}</p>
        <Transition fallback=|| view! { <p class="muted">"Loading orders…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => {
                    let next = page.next_before.clone().map(|b| {
                        let q = search();
                        if q.is_empty() { format!("/admin/orders?before={b}") } else { format!("/admin/orders?q={}&before={b}", super::widgets::path_segment(&q)) }
                    });
                    let searching = !search().is_empty();
                    let paged = before().is_some();
                    view! {
                        <p class="muted">{if searching {
                            format!("{} matching order(s)", page.total)
                        } else {
                            format!("{} order(s) in the store, newest first", page.total)
                        }}</p>
                        {(SearchKind::of(&search()) == SearchKind::Email).then(|| {
                            let email = search().trim().to_lowercase();
                            view! { <p><a href=format!("/admin/customers/{email}")>{format!("Everything about {email} →")}</a></p> }
                        })}
                        {if page.orders.is_empty() {
                            view! { <p class="panel">{if searching { "No order matches this search." } else { "No orders yet." }}</p> }.into_any()
                        } else {
                            view! { <OrderTable orders=page.orders/> }.into_any()
                        }}
                        <nav class="pager" aria-label="Pages">
                            {paged.then(|| view! { <a href="/admin/orders">"← Newest"</a> })}
                            {next.map(|href| view! { <a href=href>"Older orders →"</a> })}
                        </nav>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <NewOrderForm on_created=Callback::new(move |()| created.update(|n| *n += 1))/>
    }
}

/// What an order paid, with what was refunded of it: "19.99 EUR", "19.99 EUR (5.00 refunded)".
fn paid_text(o: &OrderView) -> String {
    let Some(amount) = &o.amount else {
        return "—".to_owned();
    };
    match &o.refunded {
        Some(r) if r.value.trim_start_matches(['0', '.']).is_empty() => {
            format!("{} {}", amount.value, amount.currency)
        }
        Some(r) => format!(
            "{} {} ({} refunded)",
            amount.value, amount.currency, r.value
        ),
        None => format!("{} {}", amount.value, amount.currency),
    }
}

#[component]
fn OrderTable(orders: Vec<OrderView>) -> impl IntoView {
    view! {
        <div class="table-wrap panel">
            <table>
                <thead><tr>
                    <th>"Order ID"</th><th>"Order number"</th><th>"Date"</th><th>"Email"</th>
                    <th>"Name"</th><th>"Status"</th><th>"Amount"</th><th>"Transaction ID"</th><th>"Products"</th>
                </tr></thead>
                <tbody>
                    {orders.into_iter().map(|o| {
                        let href = format!("/admin/orders/{}", o.order_id);
                        let products = o.grants.iter().map(|g| g.product_id.to_string()).collect::<Vec<_>>().join(", ");
                        view! {
                            <tr>
                                <td><a href=href>{o.order_id.to_string()}</a></td>
                                <td><code>{o.order_number.clone()}</code></td>
                                <td>{o.created_at.human()}</td>
                                <td><a href=format!("/admin/customers/{}", o.email)>{o.email.to_string()}</a></td>
                                <td>{o.name.clone()}</td>
                                <td><StateBadge state=o.status.as_str().to_owned()/></td>
                                <td class="num">{paid_text(&o)}</td>
                                <td>{o.transaction_id.clone().unwrap_or_default()}</td>
                                <td>{products}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The links of a fresh order or password, shown once.
#[component]
pub fn IssuedLinks(created: CreatedOrder) -> impl IntoView {
    view! {
        <div class="notice ok issued" role="status">
            <p>{format!("Order {} is created. Its download links (shown only now; the buyer's copy is in their mail):", created.order.order_id)}</p>
            <ul>
                {created.issued.into_iter().map(|i| view! {
                    <li>
                        <code>{i.product_id.to_string()}</code>": "
                        <a href=i.url.clone() class="issued-url" rel="noopener" target="_blank">{i.url.clone()}</a>
                        " " <span class="muted">"password "</span><code class="issued-password">{i.password}</code>
                    </li>
                }).collect_view()}
            </ul>
            <p><a href=format!("/admin/orders/{}", created.order.order_id)>"Open the order"</a></p>
        </div>
    }
}

#[component]
fn NewOrderForm(on_created: Callback<()>) -> impl IntoView {
    let products = Resource::new(|| (), |()| list_products());
    let create = ServerAction::<CreateOrder>::new();
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let transaction = RwSignal::new(String::new());
    let status = RwSignal::new("confirmed".to_owned());
    let amount = RwSignal::new(String::new());
    let currency = RwSignal::new("EUR".to_owned());
    let chosen = RwSignal::new(Vec::<String>::new());
    let last_error = move || create.value().get().and_then(Result::err);
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
    let products_error = Signal::derive(field_error(last_error, "product_ids"));
    let transaction_error = Signal::derive(field_error(last_error, "transaction_id"));
    let amount_error = Signal::derive(field_error(last_error, "amount"));
    let general_error = form_error(last_error);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            on_created.run(());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let transaction = transaction.get_untracked().trim().to_owned();
        create.dispatch(CreateOrder {
            input: NewOrder {
                email: email.get_untracked().trim().to_owned(),
                name: name.get_untracked().trim().to_owned(),
                product_ids: chosen.get_untracked(),
                transaction_id: (!transaction.is_empty()).then_some(transaction),
                status: Some(status.get_untracked()),
                language: None,
                amount: Some(amount.get_untracked().trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .map(|value| domain::Amount {
                        value,
                        currency: currency.get_untracked().trim().to_owned(),
                    }),
            },
        });
    };
    view! {
        <section class="panel">
            <h2>"New order by hand"</h2>
            {move || create.value().get().and_then(Result::ok).map(|created| view! { <IssuedLinks created/> })}
            <form class="stack narrow" on:submit=submit aria-label="New order">
                <label>
                    "Buyer's email"
                    <input type="email" name="email" required
                        prop:value=move || email.get() on:input=move |ev| email.set(value_of(&ev))/>
                    <FieldError message=email_error/>
                </label>
                <label>
                    "Buyer's name " <span class="muted">"(optional)"</span>
                    <input type="text" name="name" maxlength="200"
                        prop:value=move || name.get() on:input=move |ev| name.set(value_of(&ev))/>
                    <FieldError message=name_error/>
                </label>
                <fieldset>
                    <legend>"Products"</legend>
                    <Transition fallback=|| view! { <p class="muted">"Loading products…"</p> }>
                        {move || products.get().map(|r| match r {
                            Ok(list) if list.is_empty() => view! { <p>"Create a product first."</p> }.into_any(),
                            Ok(list) => view! { <ProductChecks products=list chosen/> }.into_any(),
                            Err(error) => view! { <ErrorNote error/> }.into_any(),
                        })}
                    </Transition>
                    <FieldError message=products_error/>
                </fieldset>
                <label>
                    "Transaction ID " <span class="muted">"(optional, from your payment provider)"</span>
                    <input type="text" name="transaction_id" maxlength="200"
                        prop:value=move || transaction.get() on:input=move |ev| transaction.set(value_of(&ev))/>
                    <FieldError message=transaction_error/>
                </label>
                <div class="row">
                    <label>
                        "Amount paid " <span class="muted">"(optional, e.g. 19.99)"</span>
                        <input type="text" name="amount" inputmode="decimal" maxlength="20"
                            prop:value=move || amount.get() on:input=move |ev| amount.set(value_of(&ev))/>
                    </label>
                    <label>
                        "Currency"
                        <input type="text" name="currency" maxlength="3" size="4" autocapitalize="characters"
                            prop:value=move || currency.get() on:input=move |ev| currency.set(value_of(&ev))/>
                    </label>
                </div>
                <FieldError message=amount_error/>
                <label>
                    "Status"
                    <select name="status" on:change=move |ev| status.set(value_of(&ev))>
                        <option value="confirmed" selected=true>"Confirmed: the buyer can download now"</option>
                        <option value="pending">"Pending: downloads start when you confirm"</option>
                        <option value="on_hold">"On hold"</option>
                    </select>
                </label>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create order" }}
                </button>
            </form>
        </section>
    }
}

#[component]
fn ProductChecks(products: Vec<ProductView>, chosen: RwSignal<Vec<String>>) -> impl IntoView {
    products
        .into_iter()
        .map(|p| {
            let id = p.product_id.to_string();
            let toggle = {
                let id = id.clone();
                move |ev: leptos::ev::Event| {
                    let on = event_target_checked(&ev);
                    chosen.update(|c| {
                        c.retain(|x| x != &id);
                        if on {
                            c.push(id.clone());
                        }
                    });
                }
            };
            view! {
                <label class="check">
                    <input type="checkbox" name="product_ids" value=id.clone() on:change=toggle/>
                    <span>{p.name.clone()} " " <code class="muted">{id.clone()}</code></span>
                </label>
            }
        })
        .collect_view()
}

/// `/admin/orders/:id`.
#[component]
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    // Actions update this in place, so the page shows the order as the server has it.
    let current = RwSignal::new(None::<OrderView>);
    let order = Resource::new(id, get_order);
    // The exchange form's product list. Made here, at the page's top level, not inside the
    // order's `Transition`: a resource created while a Suspense resolves is serialised and
    // hydrated in an order that depends on the server's timing, and under load the browser
    // then failed to hydrate the page (a panic in tachys' hydration, issue 15).
    let products = Resource::new(|| (), |()| list_products());
    view! {
        <Title text="Order"/>
        <p><a href="/admin/orders">"← All orders"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading the order…"</p> }>
            {move || order.get().map(|result| match result {
                Ok(o) => {
                    current.set(Some(o));
                    view! { <OrderDetail current products/> }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn OrderDetail(
    current: RwSignal<Option<OrderView>>,
    products: Resource<Result<Vec<ProductView>, AppError>>,
) -> impl IntoView {
    let order = move || current.get();
    view! {
        {move || order().map(|o| {
            let desk = format!("/admin/desk?by=order_id&q={}", o.order_id);
            view! {
                <h1>{format!("Order {}", o.order_id)} " " <StateBadge state=o.status.as_str().to_owned()/></h1>
                <dl class="facts">
                    <div><dt>"Order number"</dt><dd><code>{o.order_number.clone()}</code></dd></div>
                    <div><dt>"Placed"</dt><dd>{o.created_at.human()}</dd></div>
                    <div><dt>"Source"</dt><dd>{o.source.clone()}</dd></div>
                    <div><dt>"Transaction ID"</dt><dd>{o.transaction_id.clone().unwrap_or_else(|| "none".into())}</dd></div>
                    <div><dt>"Paid"</dt><dd>{o.amount.as_ref().map_or_else(|| "amount unknown".to_owned(), |a| format!("{} {}", a.value, a.currency))}</dd></div>
                    <div><dt>"Refunded"</dt><dd>{o.refunded.as_ref().map_or_else(|| "nothing".to_owned(), |a| format!("{} {}", a.value, a.currency))}</dd></div>
                    {o.confirmed_at.map(|at| view! { <div><dt>"Confirmed"</dt><dd>{at.human()}</dd></div> })}
                    <div><dt>"Last change"</dt><dd>{o.updated_at.human()}</dd></div>
                </dl>
                <section class="panel">
                    <h2>"Products and links"</h2>
                    <div class="table-wrap">
                        <table>
                            <thead><tr><th>"Product"</th><th>"Valid until"</th><th>"Link"</th></tr></thead>
                            <tbody>
                                {o.grants.iter().map(|g| view! {
                                    <tr>
                                        <td><code>{g.product_id.to_string()}</code></td>
                                        <td>{g.valid_until.map_or_else(|| "no time limit".to_owned(), domain::Timestamp::human)}</td>
                                        <td>{if g.revoked { "revoked" } else { "active" }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <p><a href=desk>"See every use in the password desk →"</a>
                        " · " <a href=format!("/admin/customers/{}", o.email)>"Everything about this buyer →"</a></p>
                </section>
            }
        })}
        <CustomerForm current/>
        <StatusActions current/>
        <ExchangeForm current products/>
    }
}

#[component]
fn CustomerForm(current: RwSignal<Option<OrderView>>) -> impl IntoView {
    let update = ServerAction::<UpdateOrder>::new();
    let initial = current.get_untracked();
    let email = RwSignal::new(
        initial
            .as_ref()
            .map(|o| o.email.to_string())
            .unwrap_or_default(),
    );
    let name = RwSignal::new(initial.as_ref().map(|o| o.name.clone()).unwrap_or_default());
    let transaction = RwSignal::new(
        initial
            .as_ref()
            .and_then(|o| o.transaction_id.clone())
            .unwrap_or_default(),
    );
    let last_error = move || update.value().get().and_then(Result::err);
    let email_error = Signal::derive(move || {
        domain::Email::parse(email.get().trim())
            .err()
            .map(|e| e.to_string())
            .or_else(field_error(last_error, "email"))
    });
    let name_error = Signal::derive(field_error(last_error, "name"));
    let transaction_error = Signal::derive(field_error(last_error, "transaction_id"));
    let general_error = form_error(last_error);
    let saved = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(o)) = update.value().get() {
            current.set(Some(o));
            saved.set(true);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(o) = current.get_untracked() else {
            return;
        };
        saved.set(false);
        update.dispatch(UpdateOrder {
            order_id: o.order_id.to_string(),
            patch: OrderPatch {
                email: Some(email.get_untracked().trim().to_owned()),
                name: Some(name.get_untracked().trim().to_owned()),
                status: None,
                transaction_id: Some(transaction.get_untracked().trim().to_owned()),
            },
        });
    };
    view! {
        <section class="panel">
            <h2>"Customer"</h2>
            <form class="stack narrow" on:submit=submit aria-label="Customer">
                <label>
                    "Email"
                    <input type="email" name="email" required
                        prop:value=move || email.get() on:input=move |ev| { saved.set(false); email.set(value_of(&ev)) }/>
                    <FieldError message=email_error/>
                </label>
                <label>
                    "Name"
                    <input type="text" name="name" maxlength="200"
                        prop:value=move || name.get() on:input=move |ev| { saved.set(false); name.set(value_of(&ev)) }/>
                    <FieldError message=name_error/>
                </label>
                <label>
                    "Transaction ID"
                    <input type="text" name="transaction_id" maxlength="128" autocomplete="off"
                        prop:value=move || transaction.get() on:input=move |ev| { saved.set(false); transaction.set(value_of(&ev)) }/>
                    <span class="hint">"The payment's ID at your provider; the desk finds the order by it. Leave empty to remove it."</span>
                    <FieldError message=transaction_error/>
                </label>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || saved.get().then(|| view! { <p class="notice ok" role="status">"Saved."</p> })}
                <button type="submit" class="primary" disabled=move || update.pending().get()>
                    {move || if update.pending().get() { "Saving…" } else { "Save customer" }}
                </button>
            </form>
        </section>
    }
}

#[component]
fn StatusActions(current: RwSignal<Option<OrderView>>) -> impl IntoView {
    let update = ServerAction::<UpdateOrder>::new();
    Effect::new(move |_| {
        if let Some(Ok(o)) = update.value().get() {
            current.set(Some(o));
        }
    });
    let error = move || {
        update
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let pending = Signal::derive(move || update.pending().get());
    let change = move |to: OrderStatus| {
        Callback::new(move |()| {
            if let Some(o) = current.get_untracked() {
                update.dispatch(UpdateOrder {
                    order_id: o.order_id.to_string(),
                    patch: OrderPatch {
                        status: Some(to.as_str().to_owned()),
                        ..OrderPatch::default()
                    },
                });
            }
        })
    };
    let can = move |to: OrderStatus| {
        current
            .get()
            .is_some_and(|o| o.status.transition(to).is_ok())
    };
    view! {
        <section class="panel">
            <h2>"Status"</h2>
            <p class="hint">"Only confirmed orders can download. A refund revokes every link of the order for good."</p>
            <div class="row">
                {move || can(OrderStatus::Confirmed).then(|| view! {
                    <ConfirmButton label="Confirm" pending confirm="Yes, confirm"
                        explanation="The buyer's links start working now.".to_owned()
                        on_confirm=change(OrderStatus::Confirmed)/>
                })}
                {move || can(OrderStatus::OnHold).then(|| view! {
                    <ConfirmButton label="Put on hold…" pending confirm="Yes, hold"
                        explanation="The links stop working until you confirm the order again.".to_owned()
                        on_confirm=change(OrderStatus::OnHold)/>
                })}
                {move || can(OrderStatus::Refunded).then(|| view! {
                    <ConfirmButton label="Refund…" pending danger=true confirm="Yes, refund"
                        explanation="Mark the order refunded and revoke every link. This cannot be undone.".to_owned()
                        on_confirm=change(OrderStatus::Refunded)/>
                })}
                {move || can(OrderStatus::Cancelled).then(|| view! {
                    <ConfirmButton label="Cancel order…" pending danger=true confirm="Yes, cancel it"
                        explanation="The order is closed for good; its links never work.".to_owned()
                        on_confirm=change(OrderStatus::Cancelled)/>
                })}
            </div>
            {move || error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        </section>
    }
}

#[component]
fn ExchangeForm(
    current: RwSignal<Option<OrderView>>,
    products: Resource<Result<Vec<ProductView>, AppError>>,
) -> impl IntoView {
    let exchange = ServerAction::<ExchangeProduct>::new();
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(o)) = exchange.value().get() {
            current.set(Some(o));
        }
    });
    let last_error = move || exchange.value().get().and_then(Result::err);
    let from_error = Signal::derive(field_error(last_error, "from_product_id"));
    let to_error = Signal::derive(field_error(last_error, "to_product_id"));
    let general_error = form_error(last_error);
    let done = move || matches!(exchange.value().get(), Some(Ok(_)));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(o) = current.get_untracked() else {
            return;
        };
        exchange.dispatch(ExchangeProduct {
            order_id: o.order_id.to_string(),
            from: from.get_untracked(),
            to: to.get_untracked(),
        });
    };
    let active = move || {
        current
            .get()
            .map(|o| {
                o.grants
                    .into_iter()
                    .filter(|g| !g.revoked)
                    .map(|g| g.product_id.to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    view! {
        <section class="panel">
            <h2>"Exchange a product"</h2>
            <p class="hint">"The buyer keeps the same link; it now delivers the other product, with a fresh download count."</p>
            <form class="stack narrow" on:submit=submit aria-label="Exchange a product">
                <label>
                    "Replace"
                    <select name="from" on:change=move |ev| from.set(value_of(&ev))>
                        <option value="">"Choose a product of this order"</option>
                        {move || active().into_iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                    </select>
                    <FieldError message=from_error/>
                </label>
                <label>
                    "With"
                    <select name="to" on:change=move |ev| to.set(value_of(&ev))>
                        <option value="">"Choose the new product"</option>
                        <Transition fallback=|| ()>
                            {move || products.get().and_then(Result::ok).map(|list| list.into_iter().map(|p| {
                                let id = p.product_id.to_string();
                                view! { <option value=id.clone()>{format!("{} ({id})", p.name)}</option> }
                            }).collect_view())}
                        </Transition>
                    </select>
                    <FieldError message=to_error/>
                </label>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || done().then(|| view! { <p class="notice ok" role="status">"Exchanged."</p> })}
                <button type="submit" disabled=move || exchange.pending().get() || from.get().is_empty() || to.get().is_empty()>
                    {move || if exchange.pending().get() { "Exchanging…" } else { "Exchange" }}
                </button>
            </form>
        </section>
    }
}
