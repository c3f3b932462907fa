//! The buyer's download page, `/d/{password}`: the product, each file with its size and
//! SHA-256, downloads left and the end of the window — or, in plain words, why not.
//! Rendered completely on the server (readable without JavaScript), hydrated when it can be.

use crate::error::AppError;
use crate::format;
use domain::wire::BuyerPage;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// What the page shows: whose store it is, and the facts for the password.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuyerScreen {
    pub store_name: String,
    pub page: BuyerPage,
}

/// The page's facts for a password.
#[server(prefix = "/rpc", endpoint = "buyer-page")]
pub async fn load_buyer_page(password: String) -> Result<BuyerScreen, AppError> {
    use crate::server::{respond, state};
    respond(
        async move {
            let state = state()?;
            let page = state
                .downloads
                .page(&password, backend::clock::now())
                .await?;
            Ok(BuyerScreen {
                store_name: state.settings.current().store_name,
                page,
            })
        }
        .await,
    )
}

/// `/d/{password}`.
#[component]
pub fn DownloadPage() -> impl IntoView {
    let params = use_params_map();
    let password = move || params.read().get("password").unwrap_or_default();
    let page = Resource::new(password, load_buyer_page);
    view! {
        <main class="buyer">
            <Suspense fallback=|| view! { <p class="muted">"Loading your download…"</p> }>
                {move || page.get().map(|result| {
                    let store = result.as_ref().map(|s| s.store_name.clone()).unwrap_or_default();
                    let header = view! { <p class="store-name">{store.clone()}</p> };
                    let body = match result.map(|s| s.page) {
                    Ok(BuyerPage::Ready(ready)) => {
                        let link_base = format!("/d/{}", password());
                        let until = ready.valid_until.map_or_else(
                            || "Your downloads do not expire.".to_owned(),
                            |u| format!("You can download until {}.", u.human()),
                        );
                        view! {
                            <Title text=format!("{} — {store}", ready.product_name)/>
                            <section class="card">
                                <h1>{ready.product_name.clone()}</h1>
                                <p>{until}</p>
                                <ul class="files">
                                    {ready.files.into_iter().map(|f| {
                                        let left = f.downloads_left.map_or_else(
                                            || "unlimited downloads".to_owned(),
                                            |l| format!("{} of {} downloads left", trim(l), ready.max_downloads),
                                        );
                                        view! {
                                            <li class="file">
                                                <a class="download" href=format!("{link_base}/{}", f.file_id) download=f.name.clone()>
                                                    {format!("Download {}", f.name)}
                                                </a>
                                                <span class="muted">{format!(" {} · {left}", format::bytes(f.size))}</span>
                                                <div class="checksum"><span class="muted">"SHA-256 "</span><code>{f.sha256}</code></div>
                                                {f.updated_at.map(|at| view! {
                                                    <p class="file-updated"><strong>{format!("Updated on {}", at.human())}</strong>
                                                        {(!f.changelog.is_empty()).then(|| view! { <br/><span>{f.changelog.clone()}</span> })}
                                                    </p>
                                                })}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                                <p class="muted">"A download that breaks off can be resumed: only what arrives counts."</p>
                            </section>
                            <p class="muted small">"Lost this link? "<a href="/resend">"Get new links by email"</a></p>
                        }.into_any()
                    }
                    Ok(BuyerPage::Refused { product_name, explanation, .. }) => view! {
                        <Title text=format!("{product_name} — {store}")/>
                        <section class="card">
                            <h1>{product_name}</h1>
                            <p class="notice error" role="alert">{explanation}</p>
                        </section>
                    }.into_any(),
                    Ok(BuyerPage::Unknown) => {
                        #[cfg(feature = "ssr")]
                        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                            options.set_status(http::StatusCode::NOT_FOUND);
                        }
                        view! {
                            <Title text="Link not valid"/>
                            <section class="card">
                                <h1>"This download link is not valid"</h1>
                                <p>"Check that you copied the whole link from your email. If the seller sent you a newer link, the older one no longer works."</p>
                                <p><a href="/resend">"Get new links by email"</a></p>
                            </section>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                    };
                    view! { {header} {body} }
                })}
            </Suspense>
        </main>
    }
}

/// What the self-service page needs from the server: the store's name, and the signed
/// "shown at" stamp the form sends back (a form posted sooner than a person can type, or
/// without a stamp from this server, is not acted on).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResendScreen {
    pub store_name: String,
    pub form_stamp: String,
}

#[server(prefix = "/rpc", endpoint = "resend-page")]
#[allow(clippy::unused_async)] // server functions are async by contract
pub async fn load_resend_screen() -> Result<ResendScreen, AppError> {
    use crate::server::{respond, state};
    let state = state()?;
    respond(Ok(ResendScreen {
        store_name: state.settings.current().store_name,
        form_stamp: state.self_service.form_stamp(backend::clock::now()),
    }))
}

/// The words for the outcome `POST /resend` put into the query.
fn resend_outcome(sent: bool, error: Option<&str>) -> Option<(&'static str, &'static str)> {
    if sent {
        return Some((
            "notice ok",
            "If there are purchases for that address, we have sent new links to it. Check your inbox (and the spam folder) in a few minutes. The links you had before no longer work.",
        ));
    }
    let text = match error? {
        "email" => "That does not look like an email address. Check it and try again.",
        "order" => {
            "An order ID is the 7-digit number in your order mail. Check it, or leave the field empty to get links for all your purchases."
        }
        "quick" => {
            "That was quicker than we expected from a person. Please wait a moment and send the form again."
        }
        "stale" => "This page was open for a long time. Please send the form again.",
        "busy" => "Too many requests for now. Please try again in an hour.",
        _ => "Something went wrong on our side. Please try again in a few minutes.",
    };
    Some(("notice error", text))
}

/// `/resend`: the buyer types their address and gets fresh links to every purchase. The
/// form posts to the server's `POST /resend`, which redirects back here with the outcome,
/// so it works the same with or without JavaScript.
///
/// The page reads its one resource in one `Suspense`. It used to read it in two (the store
/// name and the form's stamp), and Leptos' server renderer can deadlock when several
/// Suspense boundaries share a resource (leptos#4578, #4673): a server wedged that way in
/// an end-to-end run of this page.
#[component]
pub fn ResendPage() -> impl IntoView {
    let query = use_query_map();
    let screen = Resource::new(|| (), |()| load_resend_screen());
    let outcome = move || {
        let q = query.read();
        resend_outcome(q.get("sent").is_some(), q.get("error").as_deref())
    };
    view! {
        <Title text="Get new download links"/>
        <main class="buyer">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || screen.get().map(|screen| {
                    // Without the screen (the server could not answer) the form still
                    // shows; sent without a stamp it gets the usual answer and does nothing.
                    let (store_name, stamp) = match screen {
                        Ok(s) => (Some(s.store_name), Some(s.form_stamp)),
                        Err(_) => (None, None),
                    };
                    view! {
                        {store_name.map(|name| view! { <p class="store-name">{name}</p> })}
                        <ResendForm outcome=outcome() stamp=stamp/>
                    }
                })}
            </Suspense>
        </main>
    }
}

/// The self-service card: the outcome of the last post, and the form with its stamp.
#[component]
fn ResendForm(
    outcome: Option<(&'static str, &'static str)>,
    stamp: Option<String>,
) -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Get new download links"</h1>
            <p>"Enter the email address you bought with. We send new links for every purchase that can still be downloaded to that address."</p>
            {outcome.map(|(class, text)| view! { <p class=class role="status">{text}</p> })}
            <form method="post" action="/resend" class="resend-form">
                <label for="resend-email">"Email address"</label>
                <input id="resend-email" name="email" type="email" required autocomplete="email" inputmode="email"/>
                <label for="resend-order">"Order ID " <span class="optional">"(optional)"</span></label>
                <input id="resend-order" name="order_id" type="text" inputmode="numeric" pattern="[0-9]{7}" maxlength="7" autocomplete="off" aria-describedby="resend-order-hint"/>
                <p id="resend-order-hint" class="hint">"Only for one purchase: the 7-digit number in your order mail."</p>
                <div class="honeypot" aria-hidden="true">
                    <label for="resend-website">"Leave this empty"</label>
                    <input id="resend-website" name="website" type="text" tabindex="-1" autocomplete="off"/>
                </div>
                {stamp.map(|stamp| view! { <input type="hidden" name="shown" value=stamp/> })}
                <button type="submit">"Send me new links"</button>
            </form>
        </section>
    }
}

/// `2.4` → "2.4", `3.0` → "3".
fn trim(value: f64) -> String {
    let rounded = (value * 10.0).floor() / 10.0;
    if (rounded - rounded.trunc()).abs() < 1e-9 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn downloads_left_reads_well() {
        assert_eq!(super::trim(3.0), "3");
        assert_eq!(super::trim(2.46), "2.4");
        assert_eq!(super::trim(0.0), "0");
    }
}
