//! The catalog screens: the product list with a form for a new product, and one product
//! with its rules, its files, uploads and deletion.

use super::ErrorNote;
use super::upload::FileUpload;
use super::widgets::{ConfirmButton, FieldError, field_error, form_error, value_of};
use crate::api::{
    CreateProduct, DeleteProduct, DeleteProductFile, UpdateProduct, get_product, list_products,
};
use crate::error::AppError;
use crate::format;
use domain::wire::{NewProduct, ProductPatch, ProductView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map};

/// "3 downloads" or "unlimited".
fn downloads_rule(max: u32) -> String {
    match max {
        0 => "unlimited".to_owned(),
        1 => "1 download".to_owned(),
        n => format!("{n} downloads"),
    }
}

/// "31 days" or "no time limit".
fn days_rule(days: u32) -> String {
    match days {
        0 => "no time limit".to_owned(),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}

/// A whole number typed into a field, with a message a person understands.
fn parse_count(text: &str, what: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u32>()
        .map_err(|_| format!("{what} is a whole number, 0 or more"))
}

/// `/admin/products`.
#[component]
pub fn ProductsPage() -> impl IntoView {
    let products = Resource::new(|| (), |()| list_products());
    view! {
        <Title text="Products"/>
        <h1>"Products"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading products…"</p> }>
            {move || products.get().map(|result| match result {
                Ok(list) if list.is_empty() => view! {
                    <p class="panel">"No products yet. Create the first one below, then upload its files."</p>
                }.into_any(),
                Ok(list) => view! { <ProductTable products=list/> }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        <NewProductForm/>
    }
}

#[component]
fn ProductTable(products: Vec<ProductView>) -> impl IntoView {
    view! {
        <section class="panel">
            <div class="table-wrap">
                <table>
                    <thead><tr>
                        <th>"Product"</th><th>"ID"</th><th>"Files"</th><th>"Size"</th>
                        <th>"Downloads"</th><th>"Time limit"</th><th>"Country lock"</th>
                    </tr></thead>
                    <tbody>
                        {products.into_iter().map(|p| {
                            let href = format!("/admin/products/{}", p.product_id.as_str());
                            let size: u64 = p.files.iter().map(|f| f.size).sum();
                            view! {
                                <tr>
                                    <td><a href=href>{p.name.clone()}</a></td>
                                    <td><code>{p.product_id.to_string()}</code></td>
                                    <td>{p.files.len()}</td>
                                    <td>{format::bytes(size)}</td>
                                    <td>{downloads_rule(p.max_downloads)}</td>
                                    <td>{days_rule(p.download_days)}</td>
                                    <td>{if p.country_lock { "on" } else { "off" }}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// The rules fields shared by the new-product and edit forms.
#[component]
fn RuleFields(
    max_downloads: RwSignal<String>,
    download_days: RwSignal<String>,
    country_lock: RwSignal<bool>,
    server_error: Signal<Option<AppError>>,
) -> impl IntoView {
    let max_error = Signal::derive(move || {
        parse_count(&max_downloads.get(), "Max downloads")
            .err()
            .or_else(|| {
                server_error
                    .get()
                    .and_then(|e| e.for_field("max_downloads"))
            })
    });
    let days_error = Signal::derive(move || {
        parse_count(&download_days.get(), "Download days")
            .err()
            .or_else(|| {
                server_error
                    .get()
                    .and_then(|e| e.for_field("download_days"))
            })
    });
    view! {
        <label>
            "Max downloads per file " <span class="muted">"(0 = unlimited)"</span>
            <input type="text" inputmode="numeric" name="max_downloads"
                prop:value=move || max_downloads.get()
                on:input=move |ev| max_downloads.set(value_of(&ev))/>
            <span class="hint">"Resumed and interrupted downloads only count the bytes that arrived."</span>
            <FieldError message=max_error/>
        </label>
        <label>
            "Download days " <span class="muted">"(0 = unlimited)"</span>
            <input type="text" inputmode="numeric" name="download_days"
                prop:value=move || download_days.get()
                on:input=move |ev| download_days.set(value_of(&ev))/>
            <span class="hint">"How long after the order a buyer can download. 0 means the link never expires."</span>
            <FieldError message=days_error/>
        </label>
        <label class="check">
            <input type="checkbox" name="country_lock"
                prop:checked=move || country_lock.get()
                on:change=move |ev| country_lock.set(event_target_checked(&ev))/>
            <span>"Country lock: the first country a link is used from is locked; a second country blocks the link until you unblock it."</span>
        </label>
    }
}

#[component]
fn NewProductForm() -> impl IntoView {
    let create = ServerAction::<CreateProduct>::new();
    let product_id = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let max_downloads = RwSignal::new("3".to_owned());
    let download_days = RwSignal::new("0".to_owned());
    let country_lock = RwSignal::new(true);
    let last_error = move || create.value().get().and_then(Result::err);
    let server_error = Signal::derive(last_error);
    let id_error = Signal::derive(move || {
        let id = product_id.get();
        if id.is_empty() {
            return field_error(last_error, "product_id")();
        }
        domain::ProductId::parse(&id)
            .err()
            .or_else(field_error(last_error, "product_id"))
    });
    let name_error = Signal::derive(field_error(last_error, "name"));
    let general_error = form_error(last_error);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(view)) = create.value().get() {
            navigate(
                &format!("/admin/products/{}", view.product_id.as_str()),
                NavigateOptions::default(),
            );
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Ok(max), Ok(days)) = (
            parse_count(&max_downloads.get_untracked(), "Max downloads"),
            parse_count(&download_days.get_untracked(), "Download days"),
        ) else {
            return;
        };
        create.dispatch(CreateProduct {
            input: NewProduct {
                product_id: product_id.get_untracked().trim().to_owned(),
                name: name.get_untracked().trim().to_owned(),
                max_downloads: max,
                download_days: days,
                country_lock: country_lock.get_untracked(),
            },
        });
    };
    view! {
        <section class="panel">
            <h2>"New product"</h2>
            <form class="stack narrow" on:submit=submit aria-label="New product">
                <label>
                    "Name"
                    <input type="text" name="name" required maxlength="200"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(value_of(&ev))/>
                    <FieldError message=name_error/>
                </label>
                <label>
                    "Product ID " <span class="muted">"(used in links and the API; cannot change later)"</span>
                    <input type="text" name="product_id" required maxlength="64" placeholder="ebook-rust-2e"
                        prop:value=move || product_id.get()
                        on:input=move |ev| product_id.set(value_of(&ev))/>
                    <FieldError message=id_error/>
                </label>
                <RuleFields max_downloads download_days country_lock server_error/>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create product" }}
                </button>
            </form>
        </section>
    }
}

/// `/admin/products/:id`.
#[component]
pub fn ProductPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let changed = RwSignal::new(0u32);
    let product = Resource::new(move || (id(), changed.get()), |(id, _)| get_product(id));
    let refresh = Callback::new(move |()| changed.update(|n| *n += 1));
    view! {
        <Title text="Product"/>
        <p><a href="/admin/products">"← All products"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading the product…"</p> }>
            {move || product.get().map(|result| match result {
                Ok(p) => view! { <ProductDetail product=p refresh/> }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
        // Outside the refreshed part, so the upload's outcome stays on screen after the
        // file list reloads.
        <section class="panel">
            <FileUpload product_id=id() on_done=refresh/>
        </section>
        <super::picker::StorePicker product_id=id() on_done=refresh/>
        <super::announce::AnnouncePanel product_id=id()/>
        <super::payments::MappingPanel product_id=id()/>
    }
}

#[component]
fn ProductDetail(product: ProductView, refresh: Callback<()>) -> impl IntoView {
    let id = product.product_id.to_string();
    let files = product.files.clone();
    view! {
        <h1>{product.name.clone()}</h1>
        <p class="muted">"Product ID " <code>{id.clone()}</code></p>
        <EditProduct product=product.clone() refresh/>
        <section class="panel">
            <h2>"Files"</h2>
            {if files.is_empty() {
                view! { <p>"No files yet: buyers see an empty list until you upload one."</p> }.into_any()
            } else {
                let id = id.clone();
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead><tr><th>"File"</th><th>"Version"</th><th>"Size"</th><th>"SHA-256"</th><th>"Uploaded"</th><th></th></tr></thead>
                            <tbody>
                                {files.into_iter().map(|f| view! {
                                    <tr>
                                        <td>{f.name.clone()}</td>
                                        <td class="file-version">
                                            {format!("v{}", f.version)}
                                            {(!f.changelog.is_empty()).then(|| view! { <div class="muted small">{f.changelog.clone()}</div> })}
                                            <FileVersions file=f.clone()/>
                                        </td>
                                        <td>{format::bytes(f.size)}</td>
                                        <td><code class="hash" title=f.sha256.clone()>{f.sha256.clone()}</code></td>
                                        <td>{f.uploaded_at.human()}</td>
                                        <td><DeleteFile product_id=id.clone() file_id=f.file_id.get() name=f.name.clone() refresh/></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
        <DeleteProductPanel product_id=id name=product.name.clone()/>
    }
}

/// A file's earlier versions, with their dates and checksums, folded away.
#[component]
fn FileVersions(file: domain::wire::FileView) -> impl IntoView {
    (!file.earlier.is_empty()).then(|| {
        let count = file.earlier.len();
        view! {
            <details class="versions">
                <summary>{format!("{count} earlier version{}", if count == 1 { "" } else { "s" })}</summary>
                <ul>
                    {file.earlier.into_iter().map(|v| view! {
                        <li>
                            {format!("v{} · {} · {}", v.version, format::bytes(v.size), v.uploaded_at.human())}
                            <br/><code class="hash" title=v.sha256.clone()>{v.sha256.clone()}</code>
                            {(!v.changelog.is_empty()).then(|| view! { <div class="muted small">{v.changelog.clone()}</div> })}
                        </li>
                    }).collect_view()}
                </ul>
            </details>
        }
    })
}

#[component]
fn EditProduct(product: ProductView, refresh: Callback<()>) -> impl IntoView {
    let update = ServerAction::<UpdateProduct>::new();
    let name = RwSignal::new(product.name.clone());
    let max_downloads = RwSignal::new(product.max_downloads.to_string());
    let download_days = RwSignal::new(product.download_days.to_string());
    let country_lock = RwSignal::new(product.country_lock);
    let refresh_on_update = RwSignal::new(product.refresh_on_update);
    let last_error = move || update.value().get().and_then(Result::err);
    let server_error = Signal::derive(last_error);
    let name_error = Signal::derive(field_error(last_error, "name"));
    let general_error = form_error(last_error);
    let saved = move || matches!(update.value().get(), Some(Ok(_)));
    Effect::new(move |_| {
        if let Some(Ok(_)) = update.value().get() {
            refresh.run(());
        }
    });
    let product_id = product.product_id.to_string();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Ok(max), Ok(days)) = (
            parse_count(&max_downloads.get_untracked(), "Max downloads"),
            parse_count(&download_days.get_untracked(), "Download days"),
        ) else {
            return;
        };
        update.dispatch(UpdateProduct {
            product_id: product_id.clone(),
            patch: ProductPatch {
                name: Some(name.get_untracked().trim().to_owned()),
                max_downloads: Some(max),
                download_days: Some(days),
                country_lock: Some(country_lock.get_untracked()),
                refresh_on_update: Some(refresh_on_update.get_untracked()),
            },
        });
    };
    view! {
        <section class="panel">
            <h2>"Name and rules"</h2>
            <form class="stack narrow" on:submit=submit aria-label="Name and rules">
                <label>
                    "Name"
                    <input type="text" name="name" required maxlength="200"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(value_of(&ev))/>
                    <FieldError message=name_error/>
                </label>
                <RuleFields max_downloads download_days country_lock server_error/>
                <label class="check">
                    <input type="checkbox" name="refresh_on_update"
                        prop:checked=move || refresh_on_update.get()
                        on:change=move |ev| refresh_on_update.set(event_target_checked(&ev))/>
                    <span>"A new version of a file gives every buyer their downloads of it again."</span>
                </label>
                <p class="hint">"New rules apply to orders placed from now on; links already sent keep the rules they were sent with."</p>
                {move || general_error().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
                {move || saved().then(|| view! { <p class="notice ok" role="status">"Saved."</p> })}
                <button type="submit" class="primary" disabled=move || update.pending().get()>
                    {move || if update.pending().get() { "Saving…" } else { "Save changes" }}
                </button>
            </form>
        </section>
    }
}

#[component]
fn DeleteFile(
    product_id: String,
    file_id: u64,
    name: String,
    refresh: Callback<()>,
) -> impl IntoView {
    let delete = ServerAction::<DeleteProductFile>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            refresh.run(());
        }
    });
    let conflict = move || {
        matches!(
            delete.value().get(),
            Some(Err(AppError::Refused { status: 409, .. }))
        )
    };
    let other_error = move || match delete.value().get() {
        Some(Err(AppError::Refused { status: 409, .. }) | Ok(())) | None => None,
        Some(Err(e)) => Some(e.to_string()),
    };
    let pending = Signal::derive(move || delete.pending().get());
    let first = {
        let product_id = product_id.clone();
        Callback::new(move |()| {
            delete.dispatch(DeleteProductFile {
                product_id: product_id.clone(),
                file_id,
                force: false,
            });
        })
    };
    let forced = Callback::new(move |()| {
        delete.dispatch(DeleteProductFile {
            product_id: product_id.clone(),
            file_id,
            force: true,
        });
    });
    view! {
        {move || if conflict() {
            view! {
                <span class="notice error">"Buyers can still download this file."</span>
                <ConfirmButton label="Delete anyway…" danger=true pending
                    explanation=format!("Buyers with a valid link lose {name} for good.")
                    confirm="Yes, delete it" on_confirm=forced/>
            }.into_any()
        } else {
            view! {
                <ConfirmButton label="Delete…" danger=true pending
                    explanation=format!("Delete {name}? Buyers will no longer see or download it.")
                    confirm="Yes, delete" on_confirm=first/>
            }.into_any()
        }}
        {move || other_error().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
    }
}

#[component]
fn DeleteProductPanel(product_id: String, name: String) -> impl IntoView {
    let delete = ServerAction::<DeleteProduct>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/admin/products", NavigateOptions::default());
        }
    });
    let conflict = move || {
        matches!(
            delete.value().get(),
            Some(Err(AppError::Refused { status: 409, .. }))
        )
    };
    let message = move || match delete.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let pending = Signal::derive(move || delete.pending().get());
    let first = {
        let product_id = product_id.clone();
        Callback::new(move |()| {
            delete.dispatch(DeleteProduct {
                product_id: product_id.clone(),
                force: false,
            });
        })
    };
    let forced = Callback::new(move |()| {
        delete.dispatch(DeleteProduct {
            product_id: product_id.clone(),
            force: true,
        });
    });
    let explanation = format!(
        "Delete {name} and all its files? Orders keep their records, but no link can download it any more."
    );
    view! {
        <section class="panel danger-zone">
            <h2>"Delete this product"</h2>
            {move || message().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
            {move || if conflict() {
                view! {
                    <ConfirmButton label="Delete anyway…" danger=true pending
                        explanation="Buyers with valid links lose this product for good.".to_owned()
                        confirm="Yes, delete it anyway" on_confirm=forced/>
                }.into_any()
            } else {
                view! {
                    <ConfirmButton label="Delete product…" danger=true pending
                        explanation=explanation.clone() confirm="Yes, delete" on_confirm=first/>
                }.into_any()
            }}
        </section>
    }
}
