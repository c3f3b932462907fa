//! Payments in and events out: each provider's webhook URL, secrets and options; every
//! notification received with what came of it and Reprocess; a product's provider ids;
//! the seller's webhook endpoints and every delivery with its attempts and Resend.

use super::ErrorNote;
use super::widgets::{ConfirmButton, FieldError, Pager, field_error, form_error, value_of};
use crate::api::{
    AddWebhook, RemoveWebhook, ReprocessNotification, ResendDelivery, SaveIntegration,
    SaveMappings, TestIntegration, load_deliveries, load_integrations, load_mappings,
    load_notifications, load_webhooks,
};
use domain::payment::{
    DeliveryView, IntegrationUpdate, IntegrationView, NewWebhookEndpoint, NotificationView, Price,
    ProductMappings, Provider, WebhookEndpointView,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use std::collections::BTreeMap;

/// The events an endpoint can listen for, with what each means.
const EVENTS: [(&str, &str); 6] = [
    (
        "order.confirmed",
        "an order is confirmed (paid, or confirmed by hand)",
    ),
    (
        "order.refunded",
        "an order is refunded: its links stop working",
    ),
    (
        "order.on_hold",
        "an order is put on hold (a dispute, a pending payment)",
    ),
    (
        "grant.blocked",
        "a link is blocked after use from a second country",
    ),
    (
        "download.completed",
        "a file was downloaded to its last byte",
    ),
    (
        "mail.failed",
        "a mail could not be delivered and was given up",
    ),
];

/// How each provider is set up, in one sentence.
fn setup_words(provider: Provider) -> &'static str {
    match provider {
        Provider::Stripe => {
            "In Stripe's Dashboard, Developers → Webhooks → Add endpoint: paste the URL, pick checkout.session.completed, checkout.session.async_payment_succeeded, charge.refunded, charge.dispute.created and charge.dispute.closed, then paste the signing secret (whsec_…) here. Add a restricted API key that can read Checkout Sessions, or name the products in the session's metadata as dropgate_products. Stripe's \"Send test webhook\" shows up below."
        }
        Provider::Paypal => {
            "In PayPal, Account Settings → Notifications → Instant payment notifications: paste the URL. PayPal signs nothing: every IPN is checked by posting it back to PayPal, so no secret is needed. Set your PayPal email as receiver_email. PayPal's IPN simulator (sandbox) tests it."
        }
        Provider::Lemonsqueezy => {
            "In Lemon Squeezy, Settings → Webhooks: paste the URL, choose a signing secret and paste it here too, tick order_created and order_refunded. Its \"Send test\" shows up below."
        }
        Provider::Paddle => {
            "In Paddle, Developer tools → Notifications → New destination: paste the URL, tick transaction.completed and adjustment.created, then paste the secret key here. Paddle's notification simulator shows up below."
        }
        Provider::Shopify => {
            "In Shopify, Settings → Notifications → Webhooks: add orders/paid and refunds/create with this URL (JSON), then paste the signing key shown there. \"Send test notification\" shows up below."
        }
        Provider::Generic => {
            "For Zapier, n8n or your own checkout: POST {event_id, type: order.paid | order.refunded | order.disputed, email, name, product_ids, transaction_id} signed the Standard Webhooks way with a whsec_ secret (make one with: echo whsec_$(openssl rand -base64 32)). The README has a curl example."
        }
    }
}

fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "order_created" => "order created",
        "order_changed" => "order changed",
        "recorded" => "remembered",
        "duplicate" => "duplicate",
        "needs_mapping" => "needs mapping",
        "ignored" => "nothing to do",
        "rejected" => "refused",
        "unverified" => "not verified",
        "failed" => "failed",
        _ => "unknown",
    }
}

/// `/admin/payments?before=…`.
#[component]
pub fn PaymentsPage() -> impl IntoView {
    let integrations = Resource::new(|| (), |()| load_integrations());
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<u64>().ok())
    };
    let reprocess = ServerAction::<ReprocessNotification>::new();
    let notifications = Resource::new(
        move || (before(), reprocess.version().get()),
        |(before, _)| load_notifications(before),
    );
    view! {
        <Title text="Payments"/>
        <h1>"Payments"</h1>
        <p class="muted">"Paste a provider's webhook URL and signing secret into its dashboard, map its products to yours on each product's page, and every paid sale becomes one confirmed order with links and mail; refunds revoke access and chargebacks hold it. "
            <a href="/admin/webhooks">"Tell your other systems what happens: webhooks out →"</a></p>
        <h2>"Providers"</h2>
        <Transition fallback=|| view! { <p class="muted">"Loading the providers…"</p> }>
            {move || integrations.get().map(|result| match result {
                Ok(list) => list.into_iter().map(|view| view! { <ProviderPanel integration=view/> }).collect_view().into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <h2 id="notifications">"Notifications received"</h2>
        <p class="muted">"Every notification, verified or not, with what came of it. One that could not be applied (a product not mapped yet) is kept: fix the cause, then Reprocess."</p>
        {move || reprocess.value().get().map(|result| match result {
            Ok(receipt) => view! { <p class="notice ok reprocessed" role="status">{format!("Reprocessed: {} — {}", outcome_words(&receipt.outcome), receipt.detail)}</p> }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading the notifications…"</p> }>
            {move || notifications.get().map(|result| match result {
                Ok(page) => {
                    let next = page.next_before.map(|b| format!("/admin/payments?before={b}#notifications"));
                    view! {
                        {if page.notifications.is_empty() {
                            view! { <p class="panel">"No notification has arrived yet."</p> }.into_any()
                        } else {
                            view! { <NotificationTable rows=page.notifications reprocess/> }.into_any()
                        }}
                        <Pager newest=before().map(|_| "/admin/payments#notifications".to_owned()) older=next/>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

/// One provider's settings, saved as one.
#[component]
fn ProviderPanel(integration: IntegrationView) -> impl IntoView {
    let provider = integration.provider;
    let enabled = RwSignal::new(integration.enabled);
    let secrets = RwSignal::new(integration.secrets.clone());
    let new_secret = RwSignal::new(String::new());
    let api_key_hint = RwSignal::new(integration.api_key.clone());
    let api_key = RwSignal::new(String::new());
    let options = RwSignal::new(integration.options.clone());
    let save = ServerAction::<SaveIntegration>::new();
    let test = ServerAction::<TestIntegration>::new();
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            enabled.set(saved.enabled);
            secrets.set(saved.secrets.clone());
            new_secret.set(String::new());
            api_key_hint.set(saved.api_key.clone());
            api_key.set(String::new());
            options.set(saved.options.clone());
        }
    });
    let last_error = move || save.value().get().and_then(Result::err);
    let signed = provider != Provider::Paypal;
    let help = integration.option_help.clone();
    let id = provider.as_str();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut all = secrets.get_untracked();
        let added = new_secret.get_untracked().trim().to_owned();
        if !added.is_empty() {
            all.push(added);
        }
        let key = api_key.get_untracked().trim().to_owned();
        save.dispatch(SaveIntegration {
            provider,
            update: IntegrationUpdate {
                enabled: Some(enabled.get_untracked()),
                secrets: signed.then_some(all),
                api_key: (!key.is_empty()).then_some(key),
                options: Some(options.get_untracked()),
            },
        });
    };
    let open = integration.enabled;
    view! {
        <details class="panel provider" id=format!("provider-{id}") data-provider=id open=open>
            <summary>
                <h3>{integration.label.clone()}</h3>
                <span class=move || if enabled.get() { "badge badge-active" } else { "badge" }>{move || if enabled.get() { "on" } else { "off" }}</span>
            </summary>
            <p class="muted">{setup_words(provider)}</p>
            <p>"Webhook URL: " <code class="hook-url">{integration.hook_url.clone()}</code></p>
            <form class="stack" on:submit=submit>
                <label class="check">
                    <input type="checkbox" name="enabled" prop:checked=move || enabled.get()
                        on:change=move |ev| enabled.set(event_target_checked(&ev))/>
                    <span>{format!("Take {} notifications", integration.label)}</span>
                </label>
                {signed.then(|| view! {
                    <fieldset>
                        <legend>"Signing secrets"</legend>
                        <ul class="secrets">
                            {move || secrets.get().into_iter().enumerate().map(|(n, hint)| view! {
                                <li><code>{hint.clone()}</code>" "
                                    <button type="button" class="link-button" aria-label=format!("Remove the secret {hint}")
                                        on:click=move |_| secrets.update(|s| { s.remove(n); })>"Remove"</button>
                                </li>
                            }).collect_view()}
                        </ul>
                        <label>{move || if secrets.with(Vec::is_empty) { "Signing secret" } else { "Add a secret (keep the old one until the provider has switched)" }}
                            <input type="password" name="new-secret" autocomplete="off" prop:value=move || new_secret.get()
                                on:input=move |ev| new_secret.set(value_of(&ev))/>
                        </label>
                        <FieldError message=Signal::derive(field_error(last_error, "secrets"))/>
                    </fieldset>
                })}
                {(provider == Provider::Stripe).then(|| view! {
                    <label>{move || match api_key_hint.get() {
                            Some(hint) => format!("Restricted API key (set, ends {hint}; type a new one to replace it)"),
                            None => "Restricted API key (reads Checkout Sessions' line items)".to_owned(),
                        }}
                        <input type="password" name="api-key" autocomplete="off" prop:value=move || api_key.get()
                            on:input=move |ev| api_key.set(value_of(&ev))/>
                    </label>
                })}
                {help.into_iter().map(|(name, words)| {
                    let key = name.clone();
                    let input_key = name.clone();
                    view! {
                        <label>{format!("{name} — {words}")}
                            <input type="text" name=format!("option-{name}")
                                prop:value=move || options.with(|o| o.get(&key).cloned().unwrap_or_default())
                                on:input=move |ev| {
                                    let value = value_of(&ev);
                                    options.update(|o| { o.insert(input_key.clone(), value); });
                                }/>
                        </label>
                    }
                }).collect_view()}
                <FieldError message=Signal::derive(field_error(last_error, "options"))/>
                <div class="row actions">
                    <button type="submit" class="primary" disabled=move || save.pending().get()>
                        {move || if save.pending().get() { "Saving…" } else { "Save" }}
                    </button>
                    <button type="button" disabled=move || test.pending().get() || !enabled.get()
                        title="Checks the saved set-up from end to end"
                        on:click=move |_| { test.dispatch(TestIntegration { provider }); }>
                        {move || if test.pending().get() { "Testing…" } else { "Test" }}
                    </button>
                </div>
                {move || form_error(last_error)().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || save.value().get().and_then(Result::ok).map(|_| view! { <p class="notice ok" role="status">"Saved."</p> })}
                {move || test.value().get().map(|result| match result {
                    Ok(found) => view! { <p class="notice ok test-result" role="status">{format!("It works: {found}.")}</p> }.into_any(),
                    Err(e) => view! { <p class="notice error test-result" role="alert">{format!("Test failed: {e}")}</p> }.into_any(),
                })}
            </form>
        </details>
    }
}

#[component]
fn NotificationTable(
    rows: Vec<NotificationView>,
    reprocess: ServerAction<ReprocessNotification>,
) -> impl IntoView {
    view! {
        <div class="table-wrap panel">
            <table class="notifications">
                <thead><tr><th>"Received"</th><th>"Provider"</th><th>"Event"</th><th>"Outcome"</th><th>"Details"</th><th>"Order"</th><th></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|n| {
                        let id = n.id;
                        view! {
                            <tr data-notification=id data-outcome=n.outcome.clone()>
                                <td>{n.received_at.human()}</td>
                                <td>{n.provider.label()}</td>
                                <td>{n.event_type.clone().unwrap_or_default()}
                                    {n.payment_id.clone().map(|p| view! { <br/><code class="muted">{p}</code> })}</td>
                                <td><span class=format!("badge outcome-{}", n.outcome)>{outcome_words(&n.outcome)}</span>
                                    {(!n.verified).then(|| view! { <br/><span class="muted">"unverified"</span> })}</td>
                                <td class="detail">{n.detail.clone()}
                                    <details><summary>"Payload"</summary><pre class="payload">{n.payload.clone()}</pre></details></td>
                                <td>{n.order_id.map(|o| view! { <a href=format!("/admin/orders/{o}")>{o.to_string()}</a> })}</td>
                                <td>{n.can_reprocess.then(|| view! {
                                    <button type="button" disabled=move || reprocess.pending().get()
                                        on:click=move |_| { reprocess.dispatch(ReprocessNotification { id }); }>"Reprocess"</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A product's provider ids and price, on the product page.
#[component]
pub fn MappingPanel(product_id: String) -> impl IntoView {
    let product = product_id.clone();
    let mappings = Resource::new(move || product.clone(), load_mappings);
    view! {
        <section class="panel mappings">
            <h2>"Sold through"</h2>
            <p class="muted">"The ids your payment providers use for this product, comma-separated: a paid notification naming one of them creates an order for this product. "
                <a href="/admin/payments">"Set up the providers"</a></p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || mappings.get().map(|result| match result {
                    Ok(m) => view! { <MappingForm product_id=product_id.clone() mappings=m/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn MappingForm(product_id: String, mappings: ProductMappings) -> impl IntoView {
    let fields: Vec<(Provider, &'static str, RwSignal<String>)> = [
        (Provider::Stripe, "Stripe price or product ids"),
        (Provider::Paypal, "PayPal item numbers"),
        (
            Provider::Lemonsqueezy,
            "Lemon Squeezy variant or product ids",
        ),
        (Provider::Paddle, "Paddle price or product ids"),
        (Provider::Shopify, "Shopify variant or product ids"),
    ]
    .into_iter()
    .map(|(p, label)| (p, label, RwSignal::new(mappings.ids(p).join(", "))))
    .collect();
    let amount = RwSignal::new(
        mappings
            .price
            .as_ref()
            .map(|p| p.amount.clone())
            .unwrap_or_default(),
    );
    let currency = RwSignal::new(
        mappings
            .price
            .as_ref()
            .map(|p| p.currency.clone())
            .unwrap_or_default(),
    );
    let save = ServerAction::<SaveMappings>::new();
    let last_error = move || save.value().get().and_then(Result::err);
    let signals = fields.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut out = ProductMappings::default();
        for (provider, _, text) in &signals {
            if let Some(list) = out.ids_mut(*provider) {
                *list = text
                    .get_untracked()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
        }
        let amount = amount.get_untracked().trim().to_owned();
        out.price = (!amount.is_empty()).then(|| Price {
            amount,
            currency: currency.get_untracked().trim().to_owned(),
        });
        save.dispatch(SaveMappings {
            product: product_id.clone(),
            mappings: out,
        });
    };
    view! {
        <form class="stack" on:submit=submit>
            {fields.into_iter().map(|(provider, label, text)| view! {
                <label>{label}
                    <input type="text" name=format!("map-{}", provider.as_str()) prop:value=move || text.get()
                        on:input=move |ev| text.set(value_of(&ev))/>
                </label>
            }).collect_view()}
            <div class="row">
                <label>"Price PayPal payments must match (optional)"
                    <input type="text" name="price-amount" inputmode="decimal" placeholder="19.99" prop:value=move || amount.get()
                        on:input=move |ev| amount.set(value_of(&ev))/>
                </label>
                <label>"Currency"
                    <input type="text" name="price-currency" placeholder="EUR" maxlength="3" prop:value=move || currency.get()
                        on:input=move |ev| currency.set(value_of(&ev))/>
                </label>
            </div>
            <FieldError message=Signal::derive(field_error(last_error, "price"))/>
            <FieldError message=Signal::derive(field_error(last_error, "mappings"))/>
            <div class="row actions">
                <button type="submit" class="primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Saving…" } else { "Save the ids" }}
                </button>
            </div>
            {move || form_error(last_error)().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || save.value().get().and_then(Result::ok).map(|_| view! { <p class="notice ok" role="status">"Saved."</p> })}
        </form>
    }
}

/// `/admin/webhooks?before=…`: endpoints and deliveries.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let add = ServerAction::<AddWebhook>::new();
    let remove = ServerAction::<RemoveWebhook>::new();
    let resend = ServerAction::<ResendDelivery>::new();
    let endpoints = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| load_webhooks(),
    );
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<u64>().ok())
    };
    let deliveries = Resource::new(
        move || (before(), resend.version().get(), add.version().get()),
        |(before, _, _)| load_deliveries(before),
    );
    view! {
        <Title text="Webhooks"/>
        <p><a href="/admin/payments">"← Payments"</a></p>
        <h1>"Webhooks out"</h1>
        <p class="muted">"Dropgate posts each event you pick to your endpoints, signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature), and tries again with growing waits for five days until your endpoint answers 2xx."</p>
        <Transition fallback=|| view! { <p class="muted">"Loading the endpoints…"</p> }>
            {move || endpoints.get().map(|result| match result {
                Ok(list) if list.is_empty() => view! { <p class="panel">"No endpoint yet."</p> }.into_any(),
                Ok(list) => view! { <EndpointTable rows=list remove/> }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <AddEndpointForm add/>
        <h2>"Deliveries"</h2>
        {move || resend.value().get().map(|result| match result {
            Ok(()) => view! { <p class="notice ok" role="status">"It will be sent again now."</p> }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading the deliveries…"</p> }>
            {move || deliveries.get().map(|result| match result {
                Ok(page) => {
                    let next = page.next_before.map(|b| format!("/admin/webhooks?before={b}"));
                    view! {
                        {if page.deliveries.is_empty() {
                            view! { <p class="panel">"Nothing sent yet."</p> }.into_any()
                        } else {
                            view! { <DeliveryTable rows=page.deliveries resend/> }.into_any()
                        }}
                        <Pager newest=before().map(|_| "/admin/webhooks".to_owned()) older=next/>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn EndpointTable(
    rows: Vec<WebhookEndpointView>,
    remove: ServerAction<RemoveWebhook>,
) -> impl IntoView {
    view! {
        <div class="table-wrap panel">
            <table class="endpoints">
                <thead><tr><th>"URL"</th><th>"Events"</th><th>"Secret"</th><th>"Added"</th><th></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|e| {
                        let id = e.id;
                        view! {
                            <tr>
                                <td><code>{e.url.clone()}</code></td>
                                <td>{e.events.join(", ")}</td>
                                <td><code>{e.secret.clone()}</code></td>
                                <td>{e.created_at.human()}</td>
                                <td><ConfirmButton label="Remove…" explanation=format!("Stop sending to {}? Its waiting deliveries are given up.", e.url)
                                    confirm="Yes, remove" danger=true pending=remove.pending()
                                    on_confirm=Callback::new(move |()| { remove.dispatch(RemoveWebhook { id }); })/></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn AddEndpointForm(add: ServerAction<AddWebhook>) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let picked = RwSignal::new(BTreeMap::<&'static str, bool>::new());
    let last_error = move || add.value().get().and_then(Result::err);
    Effect::new(move |_| {
        if let Some(Ok(_)) = add.value().get() {
            url.set(String::new());
            secret.set(String::new());
            picked.set(BTreeMap::new());
        }
    });
    view! {
        <section class="panel">
            <h2>"Add an endpoint"</h2>
            <form class="stack" on:submit=move |ev| {
                ev.prevent_default();
                let events = picked.get_untracked().into_iter().filter(|(_, on)| *on).map(|(e, _)| e.to_owned()).collect();
                let s = secret.get_untracked().trim().to_owned();
                add.dispatch(AddWebhook { endpoint: NewWebhookEndpoint { url: url.get_untracked(), events, secret: (!s.is_empty()).then_some(s) } });
            }>
                <label>"URL"
                    <input type="url" name="endpoint-url" required placeholder="https://example.com/dropgate-events" prop:value=move || url.get()
                        on:input=move |ev| url.set(value_of(&ev))/>
                </label>
                <FieldError message=Signal::derive(field_error(last_error, "url"))/>
                <fieldset>
                    <legend>"Events"</legend>
                    {EVENTS.into_iter().map(|(event, words)| view! {
                        <label class="check">
                            <input type="checkbox" name=format!("event-{event}") prop:checked=move || picked.with(|p| p.get(event).copied().unwrap_or(false))
                                on:change=move |ev| { let on = event_target_checked(&ev); picked.update(|p| { p.insert(event, on); }); }/>
                            <span><code>{event}</code>" — "{words}</span>
                        </label>
                    }).collect_view()}
                </fieldset>
                <FieldError message=Signal::derive(field_error(last_error, "events"))/>
                <label>"Secret (whsec_…; leave empty and Dropgate makes one)"
                    <input type="password" name="endpoint-secret" autocomplete="off" prop:value=move || secret.get()
                        on:input=move |ev| secret.set(value_of(&ev))/>
                </label>
                <FieldError message=Signal::derive(field_error(last_error, "secret"))/>
                <div class="row actions">
                    <button type="submit" class="primary" disabled=move || add.pending().get()>
                        {move || if add.pending().get() { "Adding…" } else { "Add the endpoint" }}
                    </button>
                </div>
                {move || form_error(last_error)().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || add.value().get().and_then(Result::ok).map(|e| view! {
                    <p class="notice ok" role="status">"Added. Its secret, shown this once — keep it where your endpoint can read it: "
                        <code class="new-secret">{e.secret}</code></p>
                })}
            </form>
        </section>
    }
}

#[component]
fn DeliveryTable(rows: Vec<DeliveryView>, resend: ServerAction<ResendDelivery>) -> impl IntoView {
    view! {
        <div class="table-wrap panel">
            <table class="deliveries">
                <thead><tr><th>"Queued"</th><th>"Event"</th><th>"To"</th><th>"State"</th><th>"Attempts"</th><th></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|d| {
                        let id = d.id;
                        let can_resend = d.state != "pending" && d.url.is_some();
                        view! {
                            <tr data-delivery=id data-state=d.state.clone()>
                                <td>{d.created_at.human()}</td>
                                <td><code>{d.event_type.clone()}</code><br/><span class="muted">{d.message_id.clone()}</span></td>
                                <td>{d.url.clone().unwrap_or_else(|| "(removed)".to_owned())}</td>
                                <td><span class=format!("badge delivery-{}", d.state)>{d.state.clone()}</span>
                                    {d.next_attempt_at.map(|t| view! { <br/><span class="muted">{format!("next try {}", t.human())}</span> })}</td>
                                <td>
                                    <ol class="attempts">
                                        {d.attempts.iter().map(|a| view! {
                                            <li>{a.at.human()}" — "
                                                {a.status.map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"))}
                                                {a.error.clone().map(|e| view! { " · " <span class="mail-error">{e}</span> })}
                                                {(!a.answer.is_empty()).then(|| view! { " · " <code>{a.answer.clone()}</code> })}
                                            </li>
                                        }).collect_view()}
                                    </ol>
                                    <details><summary>"Payload"</summary><pre class="payload">{d.payload.clone()}</pre></details>
                                </td>
                                <td>{can_resend.then(|| view! {
                                    <button type="button" disabled=move || resend.pending().get()
                                        on:click=move |_| { resend.dispatch(ResendDelivery { id }); }>"Resend"</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
