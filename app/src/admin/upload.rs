//! Uploading a product file from the browser: the file streams straight from disk to the
//! upload endpoint (an `XMLHttpRequest` PUT, which reports upload progress, unlike
//! `fetch`), so multi-GiB files never sit in memory on either side. The endpoint checks
//! the session cookie and that the request comes from this site.

use super::widgets::path_segment;
use crate::BrowserOnly;
use crate::format;
use leptos::prelude::*;

/// Where an upload stands.
#[derive(Clone, Debug, PartialEq)]
enum Upload {
    Idle,
    Sending { name: String, sent: f64, total: f64 },
    Done(String),
    Failed(String),
    Cancelled,
}

/// The upload box of a product: choose a file, watch the progress, cancel.
#[component]
pub fn FileUpload(product_id: String, on_done: Callback<()>) -> impl IntoView {
    let state = RwSignal::new(Upload::Idle);
    let input = NodeRef::<leptos::html::Input>::new();
    // The running request, made only in the browser when an upload starts. The slot itself
    // is plain (thread-safe) storage: created empty during a server render, it holds no
    // browser value that could be dropped on another thread (see the crate docs).
    let request = StoredValue::new(None::<BrowserOnly<web_sys::XmlHttpRequest>>);
    let changelog = RwSignal::new(String::new());
    let store = RwSignal::new("default".to_owned());
    let stores = Resource::new(|| (), |()| crate::api::list_stores());
    let start = move |_| {
        let Some(file) = input.get().and_then(|i| i.files()).and_then(|f| f.get(0)) else {
            state.set(Upload::Failed("Choose a file first.".into()));
            return;
        };
        let notes = Notes {
            changelog: changelog.get_untracked(),
            store: store.get_untracked(),
        };
        match send(&product_id, file, &notes, state, on_done) {
            Ok(xhr) => request.set_value(Some(BrowserOnly::new(xhr))),
            Err(message) => state.set(Upload::Failed(message)),
        }
    };
    let cancel = move |_| {
        request.with_value(|xhr| {
            if let Some(xhr) = xhr {
                let _ = xhr.abort();
            }
        });
    };
    let sending = move || matches!(state.get(), Upload::Sending { .. });
    view! {
        <div class="upload" aria-label="Upload a file">
            <h3>"Upload a file"</h3>
            <div class="row">
                <input type="file" node_ref=input aria-label="File to upload" disabled=sending/>
                <button type="button" class="primary" on:click=start disabled=sending>"Upload"</button>
                {move || sending().then(|| view! {
                    <button type="button" on:click=cancel>"Cancel upload"</button>
                })}
            </div>
            <Suspense fallback=|| ()>
                {move || stores.get().and_then(Result::ok).filter(|names| !names.is_empty()).map(|names| view! {
                    <label>"Keep it in the store" " "
                        <select name="store" disabled=sending on:change=move |ev| store.set(super::widgets::value_of(&ev))>
                            <option value="default">"default"</option>
                            {names.into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                })}
            </Suspense>
            <label class="stack">
                "What changed (optional; buyers see it on their download page)"
                <textarea name="changelog" rows="2" maxlength="2000" disabled=sending
                    prop:value=move || changelog.get()
                    on:input=move |ev| changelog.set(event_target_value(&ev))></textarea>
            </label>
            <p class="hint">"A file with the name of one the product has becomes its new version: every buyer's link serves it from then on, and the earlier versions stay listed."</p>
            {move || match state.get() {
                Upload::Idle => ().into_any(),
                Upload::Sending { name, sent, total } => {
                    let percent = if total > 0.0 { (sent / total * 100.0).floor() } else { 0.0 };
                    view! {
                        <div class="progress" role="status">
                            <progress max="100" value=percent.to_string() aria-label=format!("Uploading {name}")></progress>
                            <span class="progress-text">
                                {format!("{name}: {} of {} ({percent:.0} %)", format::bytes(whole_bytes(sent)), format::bytes(whole_bytes(total)))}
                            </span>
                        </div>
                    }.into_any()
                }
                Upload::Done(words) => view! { <p class="notice ok" role="status">{words}</p> }.into_any(),
                Upload::Failed(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Upload::Cancelled => view! { <p class="notice" role="status">"Upload cancelled; nothing was saved."</p> }.into_any(),
            }}
        </div>
    }
}

/// What goes with an upload besides its bytes.
struct Notes {
    changelog: String,
    /// The store to keep it in ("default" unless the seller chose another).
    store: String,
}

/// Starts the PUT of `file`; progress and the outcome land in `state`.
fn send(
    product_id: &str,
    file: web_sys::File,
    notes: &Notes,
    state: RwSignal<Upload>,
    on_done: Callback<()>,
) -> Result<web_sys::XmlHttpRequest, String> {
    let name = file.name();
    let total = file.size();
    let mut url = format!(
        "/api/v1/products/{}/files/{}",
        path_segment(product_id),
        path_segment(&name)
    );
    url.push_str("?store=");
    url.push_str(&path_segment(&notes.store));
    if !notes.changelog.trim().is_empty() {
        url.push_str("&changelog=");
        url.push_str(&path_segment(notes.changelog.trim()));
    }
    state.set(Upload::Sending {
        name: name.clone(),
        sent: 0.0,
        total,
    });
    send_blob(
        "PUT",
        &url,
        &file,
        &file.type_(),
        move |event| match event {
            XhrEvent::Progress {
                sent,
                total: reported,
            } => state.set(Upload::Sending {
                name: name.clone(),
                sent,
                total: reported.unwrap_or(total),
            }),
            XhrEvent::Answered { status, body } => {
                if (200..300).contains(&status) {
                    // 200: the product had a file of this name, now at a new version.
                    state.set(Upload::Done(if status == 200 {
                        format!("{name} is uploaded as a new version: every link serves it now.")
                    } else {
                        format!("{name} is uploaded.")
                    }));
                    on_done.run(());
                } else {
                    state.set(Upload::Failed(error_message(status, &body)));
                }
            }
            XhrEvent::Broken => state.set(Upload::Failed(
                "The connection to the server broke off; nothing was saved. Try again.".into(),
            )),
            XhrEvent::Aborted => state.set(Upload::Cancelled),
        },
    )
}

/// What happens to a request sent with [`send_blob`].
pub(super) enum XhrEvent {
    /// Bytes of the body sent so far, and the total when the browser knows it.
    Progress { sent: f64, total: Option<f64> },
    /// The server answered.
    Answered { status: u16, body: String },
    /// The connection broke off.
    Broken,
    /// Cancelled with `abort()`.
    Aborted,
}

/// Sends `blob` as the body of a request (an `XMLHttpRequest`, which reports upload
/// progress, unlike `fetch`; the body streams from disk). Browser only: call it from an
/// event handler.
pub(super) fn send_blob(
    method: &str,
    url: &str,
    blob: &web_sys::Blob,
    content_type: &str,
    on_event: impl Fn(XhrEvent) + 'static,
) -> Result<web_sys::XmlHttpRequest, String> {
    use std::rc::Rc;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let failed = |_| "The browser could not start the request.".to_owned();
    let xhr = web_sys::XmlHttpRequest::new().map_err(failed)?;
    xhr.open_with_async(method, url, true).map_err(failed)?;
    if !content_type.is_empty() {
        xhr.set_request_header("Content-Type", content_type)
            .map_err(failed)?;
    }
    let on_event = Rc::new(on_event);
    let progress = Rc::clone(&on_event);
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            progress(XhrEvent::Progress {
                sent: e.loaded(),
                total: e.length_computable().then(|| e.total()),
            });
        });
    xhr.upload()
        .map_err(failed)?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    // Each closure lives as long as the request may call it: one set per request.
    on_progress.forget();
    let answered = xhr.clone();
    let load = Rc::clone(&on_event);
    let on_load = Closure::<dyn FnMut()>::new(move || {
        load(XhrEvent::Answered {
            status: answered.status().unwrap_or(0),
            body: answered.response_text().ok().flatten().unwrap_or_default(),
        });
    });
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    on_load.forget();
    let broken = Rc::clone(&on_event);
    let on_error = Closure::<dyn FnMut()>::new(move || broken(XhrEvent::Broken));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    let on_abort = Closure::<dyn FnMut()>::new(move || on_event(XhrEvent::Aborted));
    xhr.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    on_abort.forget();
    xhr.send_with_opt_blob(Some(blob)).map_err(failed)?;
    Ok(xhr)
}

/// A byte count the browser reports as a float. `as` saturates, and counts are whole and
/// far below 2^53, so nothing is lost.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole_bytes(value: f64) -> u64 {
    value.max(0.0) as u64
}

/// The `message` of the server's `{"error":{"code","message"}}`, if the body is one.
pub(super) fn server_message(body: &str) -> Option<&str> {
    body.split("\"message\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|m| !m.is_empty())
}

/// The server's `{"error":{"message"}}`, or the status in words.
fn error_message(status: u16, body: &str) -> String {
    match (server_message(body), status) {
        (Some(m), _) => format!("The upload was refused: {m}"),
        (None, 401) => "Your session has ended. Sign in again, then upload.".to_owned(),
        (None, 413) => "The file is larger than the server accepts.".to_owned(),
        (None, s) => format!("The upload failed (HTTP {s})."),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_messages_are_shown() {
        assert_eq!(
            super::error_message(
                409,
                r#"{"error":{"code":"conflict","message":"a file named a.pdf exists"}}"#
            ),
            "The upload was refused: a file named a.pdf exists"
        );
        assert_eq!(
            super::error_message(413, ""),
            "The file is larger than the server accepts."
        );
    }
}
