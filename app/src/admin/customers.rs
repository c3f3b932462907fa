//! The customer page, `/admin/customers/:email`: every order, link (with every use), mail
//! and payment notification of one address; the same as one JSON document to hand to a
//! buyer who asks for their data; and erasure, confirmed first.

use super::ErrorNote;
use super::desk::{Timeline, downloads_text};
use super::widgets::{ConfirmButton, StateBadge, path_segment};
use crate::api::{EraseCustomer, load_customer};
use domain::records::CustomerData;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// `/admin/customers/:email`.
#[component]
pub fn CustomerPage() -> impl IntoView {
    let params = use_params_map();
    let email = move || params.read().get("email").unwrap_or_default();
    let data = Resource::new(email, load_customer);
    let erase = ServerAction::<EraseCustomer>::new();
    // After an erasure the page shows the address's (now empty) record again.
    Effect::new(move |_| {
        if let Some(Ok(_)) = erase.value().get() {
            data.refetch();
        }
    });
    view! {
        <Title text="Customer"/>
        <p><a href="/admin/orders">"← Orders"</a></p>
        <h1>{move || format!("Customer {}", email())}</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading everything held about this address…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(customer) => view! { <CustomerRecord customer/> }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <section class="panel danger-zone" aria-labelledby="erase-title">
            <h2 id="erase-title">"Erase this buyer"</h2>
            <p class="hint">
                "For a buyer who asks to be forgotten: their address and name leave every order, mail, payment notification and audit entry, their IP addresses and browsers leave the download log, and their links stop working. The sales stay in your books without the person (numbers, dates, products, download counts). This cannot be undone."
            </p>
            <ConfirmButton label="Erase…" danger=true confirm="Yes, erase this buyer"
                explanation=format!("Erase everything personal about {}? Their links stop working at once.", email())
                pending=erase.pending()
                on_confirm=Callback::new(move |()| {
                    erase.dispatch(EraseCustomer { email: email() });
                })/>
            {move || erase.value().get().map(|result| match result {
                Ok(report) => view! {
                    <p class="notice ok" role="status">{format!(
                        "Erased: {} orders, {} links, {} download log entries, {} mails, {} payment notifications, {} webhook deliveries and {} audit entries no longer name this buyer.",
                        report.orders, report.grants, report.events, report.mails, report.notifications, report.webhook_deliveries, report.audit_entries
                    )}</p>
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn CustomerRecord(customer: CustomerData) -> impl IntoView {
    let json = format!("/api/v1/customers/{}", path_segment(&customer.email));
    if customer.orders.is_empty() && customer.mails.is_empty() && customer.notifications.is_empty()
    {
        return view! {
            <p class="notice" role="status">"Dropgate holds nothing about this address: no order, link, mail or payment notification."</p>
        }
        .into_any();
    }
    let orders = customer.orders.clone();
    let mails = customer.mails.clone();
    let notifications = customer.notifications.clone();
    view! {
        <p><a class="button" href=json download="">"Download everything as JSON"</a>
            <span class="muted">" (for a buyer who asks for their data)"</span></p>
        <section class="panel">
            <h2>{format!("Orders ({})", orders.len())}</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Order"</th><th scope="col">"Placed"</th><th scope="col">"Name"</th><th scope="col">"Status"</th><th scope="col">"Products"</th></tr></thead>
                <tbody>{orders.into_iter().map(|o| view! {
                    <tr>
                        <td><a href=format!("/admin/orders/{}", o.order_id)>{o.order_id.to_string()}</a></td>
                        <td>{o.created_at.human()}</td>
                        <td>{o.name.clone()}</td>
                        <td><StateBadge state=o.status.as_str().to_owned()/></td>
                        <td>{o.grants.iter().map(|g| g.product_id.to_string()).collect::<Vec<_>>().join(", ")}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        </section>
        <section class="panel">
            <h2>{format!("Links ({})", customer.grants.len())}</h2>
            {customer.grants.into_iter().map(|g| {
                let summary = format!("{} · order {} · {}", g.product_id, g.order_id, downloads_text(&g));
                let state = g.status.as_str().to_owned();
                let grant = RwSignal::new(g);
                let label = summary.clone();
                view! {
                    <article class="grant" aria-label=label>
                        <h3>{summary} " " <StateBadge state/></h3>
                        <Timeline grant/>
                    </article>
                }
            }).collect_view()}
        </section>
        <section class="panel">
            <h2>{format!("Mails ({})", mails.len())}</h2>
            <div class="table-wrap"><table>
                <thead><tr><th scope="col">"Queued"</th><th scope="col">"To"</th><th scope="col">"Subject"</th><th scope="col">"State"</th></tr></thead>
                <tbody>{mails.into_iter().map(|m| view! {
                    <tr>
                        <td>{m.queued_at.human()}</td>
                        <td>{m.to.clone()}</td>
                        <td><a href=format!("/admin/outbox/{}", m.mail_id)>{m.subject.clone()}</a></td>
                        <td><StateBadge state=m.state.clone()/></td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        </section>
        {(!notifications.is_empty()).then(|| view! {
            <section class="panel">
                <h2>{format!("Payment notifications ({})", notifications.len())}</h2>
                <ul>{notifications.into_iter().map(|n| view! {
                    <li>{format!("{} · {} · {}", n.received_at.human(), n.provider, n.event_type.unwrap_or_default())}</li>
                }).collect_view()}</ul>
            </section>
        })}
    }
    .into_any()
}
