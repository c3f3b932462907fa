//! Records in and out: import sale records (the legacy script's file or a CSV) with a
//! preview of what would be created and every rejected row before anything changes, CSV
//! exports, and a backup to download. The import file goes to the REST endpoint straight
//! from disk (see `upload.rs`); exports and backups are plain links the browser downloads.

use super::upload::{XhrEvent, send_blob, server_message};
use super::widgets::value_of;
use domain::records::{ImportReport, ImportedOrderView};
use leptos::prelude::*;
use leptos_meta::Title;

/// Where the import stands.
#[derive(Clone, Debug, PartialEq)]
enum Import {
    Idle,
    Sending { dry_run: bool },
    Report(Box<ImportReport>),
    Failed(String),
}

/// The import's settings as the seller chose them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Settings {
    format: String,
    window: String,
    notify: bool,
    skip_rejected: bool,
    /// One `FILE_ID=PRODUCT_ID` per line.
    map: String,
    /// One `field=Header` per line.
    columns: String,
}

impl Settings {
    /// The query string of the import endpoint.
    fn query(&self, dry_run: bool) -> String {
        let mut pairs = vec![
            ("dry_run", dry_run.to_string()),
            ("notify", self.notify.to_string()),
            ("skip_rejected", self.skip_rejected.to_string()),
        ];
        if !self.format.is_empty() {
            pairs.push(("format", self.format.clone()));
        }
        if !self.window.is_empty() {
            pairs.push(("window", self.window.clone()));
        }
        let lines = |text: &str| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        pairs.extend(lines(&self.map).into_iter().map(|l| ("map", l)));
        pairs.extend(lines(&self.columns).into_iter().map(|l| ("column", l)));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", super::widgets::path_segment(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The records page.
#[component]
pub fn RecordsPage() -> impl IntoView {
    view! {
        <Title text="Records"/>
        <h1>"Records"</h1>
        <ImportPanel/>
        <ExportPanel/>
        <BackupPanel/>
    }
}

#[component]
fn ImportPanel() -> impl IntoView {
    let state = RwSignal::new(Import::Idle);
    let settings = RwSignal::new(Settings::default());
    // The settings and file name the last preview was made with: Import is offered only
    // for exactly what was previewed.
    let previewed = RwSignal::new(None::<(Settings, String)>);
    let file_name = RwSignal::new(String::new());
    let input = NodeRef::<leptos::html::Input>::new();
    let run = move |dry_run: bool| {
        let Some(file) = input.get().and_then(|i| i.files()).and_then(|f| f.get(0)) else {
            state.set(Import::Failed(
                "Choose the file of sale records first.".into(),
            ));
            return;
        };
        let chosen = settings.get_untracked();
        // The input's value as the change handler saw it: Import compares against that.
        let name = file_name.get_untracked();
        let url = format!("/api/v1/imports?{}", chosen.query(dry_run));
        state.set(Import::Sending { dry_run });
        let sent = send_blob("POST", &url, &file, "text/csv", move |event| match event {
            XhrEvent::Progress { .. } => {}
            XhrEvent::Answered { status, body } if (200..300).contains(&status) => {
                match serde_json::from_str::<ImportReport>(&body) {
                    Ok(report) => {
                        previewed.set(report.dry_run.then(|| (chosen.clone(), name.clone())));
                        state.set(Import::Report(Box::new(report)));
                    }
                    Err(_) => state.set(Import::Failed(
                        "The server's answer was not a report.".into(),
                    )),
                }
            }
            XhrEvent::Answered { status, body } => {
                previewed.set(None);
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .or_else(|| server_message(&body).map(str::to_owned))
                    .unwrap_or_else(|| format!("The import failed (HTTP {status})."));
                state.set(Import::Failed(message));
            }
            XhrEvent::Broken | XhrEvent::Aborted => state.set(Import::Failed(
                "The connection to the server broke off; nothing was imported.".into(),
            )),
        });
        if let Err(message) = sent {
            state.set(Import::Failed(message));
        }
    };
    let can_import = move || {
        previewed
            .get()
            .is_some_and(|(s, name)| s == settings.get() && name == file_name.get())
            && !matches!(state.get(), Import::Sending { .. })
    };
    let edit = move |change: fn(&mut Settings, String)| {
        move |ev: leptos::ev::Event| settings.update(|s| change(s, value_of(&ev)))
    };
    view! {
        <section class="card" aria-labelledby="import-title">
            <h2 id="import-title">"Import sale records"</h2>
            <p class="hint">
                "The records file of your old download script (the .php or .txt file, or a CSV or TSV copy of it): each sale becomes a confirmed order whose link is the old download ID, so links your buyers hold keep working. Or a CSV from another store with a header row (email, name, product, transaction ID, date, status). Preview first: nothing changes until you press Import, and importing the same file again adds nothing."
            </p>
            <div class="form-grid">
                <label>"Sale records file"
                    <input type="file" node_ref=input accept=".php,.txt,.csv,.tsv,text/csv,text/plain"
                        on:change=move |ev| file_name.set(value_of(&ev))/>
                </label>
                <label>"Kind of file"
                    <select on:change=edit(|s, v| s.format = v)>
                        <option value="">"Detect"</option>
                        <option value="legacy">"Legacy download script"</option>
                        <option value="csv">"CSV with a header row"</option>
                    </select>
                </label>
                <label>"Download window starts"
                    <select on:change=edit(|s, v| s.window = v)>
                        <option value="import">"At the import (past buyers keep the full window)"</option>
                        <option value="sale">"At the sale date (old sales may have expired)"</option>
                    </select>
                </label>
                <label>"Product IDs that differ (one FILE_ID=PRODUCT_ID per line)"
                    <textarea rows="2" on:input=edit(|s, v| s.map = v)></textarea>
                </label>
                <label>"CSV columns (one field=Header per line, where the header differs)"
                    <textarea rows="2" placeholder="email=Buyer Email" on:input=edit(|s, v| s.columns = v)></textarea>
                </label>
                <label class="check">
                    <input type="checkbox" on:change=move |ev| settings.update(|s| s.notify = event_target_checked(&ev))/>
                    "Mail the imported buyers their links"
                </label>
                <label class="check">
                    <input type="checkbox" on:change=move |ev| settings.update(|s| s.skip_rejected = event_target_checked(&ev))/>
                    "Leave rejected rows out (otherwise any rejected row stops the import)"
                </label>
            </div>
            <div class="row">
                <button type="button" on:click=move |_| run(true)
                    disabled=move || matches!(state.get(), Import::Sending { .. })>"Preview"</button>
                <button type="button" class="primary" on:click=move |_| run(false)
                    disabled=move || !can_import()
                    title="Preview the file first">"Import"</button>
            </div>
            {move || match state.get() {
                Import::Idle => ().into_any(),
                Import::Sending { dry_run } => view! {
                    <p class="notice" role="status">{if dry_run { "Reading the file…" } else { "Importing…" }}</p>
                }.into_any(),
                Import::Failed(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Import::Report(report) => view! { <ReportView report=*report/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn ReportView(report: ImportReport) -> impl IntoView {
    let headline = if report.dry_run {
        format!(
            "Preview: {} rows read; the import would create {} orders with {} links. {} rows were imported before, {} are rejected. Nothing has changed yet.",
            report.rows,
            report.orders,
            report.grants,
            report.already_imported,
            report.rejected.len()
        )
    } else {
        format!(
            "Imported: {} orders with {} links from {} rows. {} rows were imported before, {} were left out.",
            report.orders,
            report.grants,
            report.rows,
            report.already_imported,
            report.rejected.len()
        )
    };
    let unknown = (!report.unknown_products.is_empty()).then(|| {
        view! {
            <p class="notice">
                {format!(
                    "These product IDs match no product: {}. Map each to one of your products (FILE_ID=PRODUCT_ID) and preview again.",
                    report.unknown_products.join(", ")
                )}
            </p>
        }
    });
    let rejected = (!report.rejected.is_empty()).then(|| {
        view! {
            <h3>"Rejected rows"</h3>
            <table class="list">
                <thead><tr><th scope="col">"Line"</th><th scope="col">"Why"</th></tr></thead>
                <tbody>
                    {report.rejected.iter().map(|r| view! {
                        <tr><td>{r.line}</td><td>{r.reason.clone()}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
    });
    let preview = (!report.preview.is_empty()).then(|| {
        let heading = if report.dry_run { "Orders it would create" } else { "Orders created" };
        view! {
            <h3>{heading}</h3>
            <table class="list">
                <thead><tr>
                    <th scope="col">"Lines"</th><th scope="col">"Buyer"</th><th scope="col">"Products"</th>
                    <th scope="col">"Transaction"</th><th scope="col">"Sale date"</th><th scope="col">"Links work until"</th>
                </tr></thead>
                <tbody>{report.preview.iter().map(preview_row).collect_view()}</tbody>
            </table>
        }
    });
    view! {
        <div class="import-report" role="status">
            <p class=if report.dry_run { "notice" } else { "notice ok" }>{headline}</p>
            {unknown}
            {rejected}
            {preview}
        </div>
    }
}

fn preview_row(order: &ImportedOrderView) -> impl IntoView + use<> {
    let lines = order
        .lines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let buyer = if order.name.is_empty() {
        order.email.clone()
    } else {
        format!("{} <{}>", order.name, order.email)
    };
    let buyer = match order.order_id {
        Some(id) => view! { <a href=format!("/admin/orders/{id:07}")>{buyer}</a> }.into_any(),
        None => buyer.into_any(),
    };
    view! {
        <tr>
            <td>{lines}</td>
            <td>{buyer}</td>
            <td>{order.product_ids.join(", ")}</td>
            <td>{order.transaction_id.clone().unwrap_or_default()}</td>
            <td>{order.sold_at.human()}</td>
            <td>{order.valid_until.map_or_else(|| "no time limit".to_owned(), domain::Timestamp::human)}</td>
        </tr>
    }
}

#[component]
fn ExportPanel() -> impl IntoView {
    let kind = RwSignal::new("orders".to_owned());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let product = RwSignal::new(String::new());
    let href = move || {
        let mut query = Vec::new();
        for (key, value) in [
            ("from", from.get()),
            ("to", to.get()),
            ("product", product.get()),
        ] {
            if !value.trim().is_empty() {
                query.push(format!(
                    "{key}={}",
                    super::widgets::path_segment(value.trim())
                ));
            }
        }
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        format!("/api/v1/exports/{}.csv{query}", kind.get())
    };
    view! {
        <section class="card" aria-labelledby="export-title">
            <h2 id="export-title">"Export as CSV"</h2>
            <p class="hint">"For accounting or a move: every order, every link with its state and downloads used, or every download attempt. Leave the dates empty for everything."</p>
            <div class="form-grid">
                <label>"What"
                    <select on:change=move |ev| kind.set(value_of(&ev))>
                        <option value="orders">"Orders"</option>
                        <option value="grants">"Links (grants)"</option>
                        <option value="events">"Download attempts"</option>
                    </select>
                </label>
                <label>"From (inclusive)" <input type="date" on:input=move |ev| from.set(value_of(&ev))/></label>
                <label>"Until (exclusive)" <input type="date" on:input=move |ev| to.set(value_of(&ev))/></label>
                <label>"Product ID (optional)" <input type="text" on:input=move |ev| product.set(value_of(&ev))/></label>
            </div>
            <p><a class="button" href=href download="">"Download CSV"</a></p>
        </section>
    }
}

#[component]
fn BackupPanel() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="backup-title">
            <h2 id="backup-title">"Backup"</h2>
            <p class="hint">
                "A consistent copy of all Dropgate data (products, orders, links, logs, settings) as one file, made while the shop keeps serving. Product files are not in it: back up the files directory or bucket on its own. To restore, stop Dropgate and run "
                <code>"dropgate restore FILE"</code>"."
            </p>
            <p><a class="button" href="/api/v1/backup" download="">"Download a backup"</a></p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_carries_every_setting_encoded() {
        let settings = Settings {
            format: "legacy".into(),
            window: "sale".into(),
            notify: true,
            skip_rejected: false,
            map: "corse=course\n\n old = new \n".into(),
            columns: "email=Buyer Email".into(),
        };
        assert_eq!(
            settings.query(true),
            "dry_run=true&notify=true&skip_rejected=false&format=legacy&window=sale&map=corse%3Dcourse&map=old%20%3D%20new&column=email%3DBuyer%20Email"
        );
    }
}
