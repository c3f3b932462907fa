//! "Attach from the file store": the objects already in the store (an S3 bucket, or the
//! files folder), searched by the start of their key, a page at a time, each attachable to
//! the product without uploading it again.

use super::widgets::value_of;
use crate::api::{AttachObject, list_stores, storage_objects};
use crate::format;
use domain::wire::AttachFile;
use leptos::prelude::*;

/// The picker on a product's page; `on_done` refreshes the file list after an attach.
#[component]
pub fn StorePicker(product_id: String, on_done: Callback<()>) -> impl IntoView {
    let prefix = RwSignal::new(String::new());
    let store = RwSignal::new("default".to_owned());
    let stores = Resource::new(|| (), |()| list_stores());
    // The query shown: (store, prefix, cursor); a new search starts at the first page.
    let query = RwSignal::new(None::<(String, String, Option<String>)>);
    let page = Resource::new(
        move || query.get(),
        |q| async move {
            match q {
                Some((store, prefix, cursor)) => {
                    storage_objects(store, prefix, cursor).await.map(Some)
                }
                None => Ok(None),
            }
        },
    );
    let attach = ServerAction::<AttachObject>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = attach.value().get() {
            on_done.run(());
        }
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        query.set(Some((
            store.get_untracked(),
            prefix.get_untracked().trim().to_owned(),
            None,
        )));
    };
    let product_id = StoredValue::new(product_id);
    view! {
        <section class="panel picker" aria-label="Attach from the file store">
            <h2>"Attach from the file store"</h2>
            <p class="hint">"Large files already in your bucket (or files folder) need no second upload: pick one and Dropgate reads it once for its size and checksum. Deleting the product's file later leaves the object where it is."</p>
            <form class="row" on:submit=search role="search" aria-label="Search the file store">
                <Suspense fallback=|| ()>
                    {move || stores.get().and_then(Result::ok).filter(|names| !names.is_empty()).map(|names| view! {
                        <label>"Store" " "
                            <select name="store" on:change=move |ev| store.set(value_of(&ev))>
                                <option value="default">"default"</option>
                                {names.into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                    })}
                </Suspense>
                <label>"Key starts with" " "
                    <input type="search" name="prefix" placeholder="releases/"
                        prop:value=move || prefix.get() on:input=move |ev| prefix.set(value_of(&ev))/>
                </label>
                <button type="submit">"List files"</button>
            </form>
            {move || attach.value().get().map(|result| match result {
                Ok(f) => view! { <p class="notice ok" role="status">{format!("{} is attached (version {}).", f.name, f.version)}</p> }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="muted">"Listing…"</p> }>
                {move || page.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(p)) if p.objects.is_empty() => view! { <p class="muted">"No objects start with that."</p> }.into_any(),
                    Ok(Some(p)) => {
                        let next = p.next_cursor.clone();
                        view! {
                            <div class="table-wrap">
                                <table>
                                    <thead><tr><th>"Key"</th><th>"Size"</th><th>"Modified"</th><th></th></tr></thead>
                                    <tbody>
                                        {p.objects.into_iter().map(|o| {
                                            let key = o.key.clone();
                                            view! {
                                                <tr>
                                                    <td><code>{o.key.clone()}</code></td>
                                                    <td>{format::bytes(o.size)}</td>
                                                    <td>{o.last_modified.human()}</td>
                                                    <td><button type="button" disabled=move || attach.pending().get()
                                                        aria-label=format!("Attach {}", o.key)
                                                        on:click=move |_| { attach.dispatch(AttachObject {
                                                            product_id: product_id.get_value(),
                                                            input: AttachFile { key: key.clone(), name: None, changelog: None, store: Some(store.get_untracked()) },
                                                        }); }>
                                                        {move || if attach.pending().get() { "Reading…" } else { "Attach" }}
                                                    </button></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {next.map(|cursor| view! {
                                <button type="button" on:click=move |_| {
                                    query.set(Some((store.get_untracked(), prefix.get_untracked().trim().to_owned(), Some(cursor.clone()))));
                                }>"Next page"</button>
                            })}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
