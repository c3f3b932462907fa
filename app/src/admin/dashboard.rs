//! The dashboard: the store's figures at a glance.

use super::ErrorNote;
use crate::api::{load_dashboard, load_downloads_per_day};
use crate::format;
use domain::wire::DailyDownloads;
use leptos::prelude::*;
use leptos_meta::Title;

/// `/admin`.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let figures = Resource::new(|| (), |()| load_dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <DownloadsChart/>
        <Transition fallback=|| view! { <p class="muted">"Loading figures…"</p> }>
            {move || figures.get().map(|result| match result {
                Ok(f) => view! {
                    <MailNotice failed=f.mails_failed waiting=f.mails_waiting smtp=f.smtp_configured/>
                    <dl class="figures">
                        <Figure label="Staff accounts" value=f.admins.to_string()/>
                        <Figure label="Signed-in sessions" value=f.active_sessions.to_string()/>
                        <Figure label="Active API tokens" value=f.api_tokens_active.to_string()/>
                        <Figure label="Database size" value=format::bytes(f.database_bytes)/>
                        <Figure label="Running since" value=f.server_started_at.human()/>
                        <Figure label="Version" value=f.version.clone()/>
                        <Figure label="IP → country database" value=f.geoip_database.clone()/>
                    </dl>
                    {f.geoip_credit.clone().map(|credit| view! {
                        <p class="credit"><a href=credit.url rel="noopener" target="_blank">{credit.text}</a></p>
                    })}
                }.into_any(),
                Err(error) => view! { <ErrorNote error/> }.into_any(),
            })}
        </Transition>
    }
}

/// Failed mail, or mail that waits because no SMTP server is set, needs the seller.
#[component]
fn MailNotice(failed: u64, waiting: u64, smtp: bool) -> impl IntoView {
    let failed_note = (failed > 0).then(|| view! {
        <p class="notice error" role="alert">
            {format!("{failed} mail{} could not be delivered. ", if failed == 1 { "" } else { "s" })}
            <a href="/admin/outbox?state=failed">"See the failed mails"</a>
        </p>
    });
    let waiting_note = (!smtp && waiting > 0).then(|| view! {
        <p class="notice">
            {format!("{waiting} mail{} wait{} in the outbox because no mail server (SMTP) is configured. ", if waiting == 1 { "" } else { "s" }, if waiting == 1 { "s" } else { "" })}
            <a href="/admin/outbox">"Open the outbox"</a>
        </p>
    });
    view! { {failed_note} {waiting_note} }
}

#[component]
fn Figure(label: &'static str, value: String) -> impl IntoView {
    view! {
        <div class="figure">
            <dt>{label}</dt>
            <dd>{value}</dd>
        </div>
    }
}

/// Downloads per day for the last 30 days, drawn as SVG bars by the app (no scripts from
/// elsewhere): downloads stacked under refusals, with the figures in a table for screen
/// readers and for exact numbers.
#[component]
fn DownloadsChart() -> impl IntoView {
    let days = Resource::new(|| (), |()| load_downloads_per_day());
    view! {
        <section class="panel chart">
            <h2>"Downloads, last 30 days"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading the chart…"</p> }>
                {move || days.get().map(|result| match result {
                    Ok(days) => view! { <Bars days/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;

#[component]
fn Bars(days: Vec<DailyDownloads>) -> impl IntoView {
    let peak = days
        .iter()
        .map(|d| d.allowed + d.refused)
        .max()
        .unwrap_or(0)
        .max(1);
    let total: u64 = days.iter().map(|d| d.allowed).sum();
    let refused: u64 = days.iter().map(|d| d.refused).sum();
    let slot = CHART_WIDTH / days.len().max(1) as f64;
    let scale = |n: u64| n as f64 / peak as f64 * (CHART_HEIGHT - 20.0);
    let first = days.first().map(|d| d.day.clone()).unwrap_or_default();
    let last = days.last().map(|d| d.day.clone()).unwrap_or_default();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * slot + 1.0;
            let ok_height = scale(d.allowed);
            let refused_height = scale(d.refused);
            let label = format!("{}: {} downloads, {} refused", d.day, d.allowed, d.refused);
            view! {
                <g class="bar">
                    <title>{label}</title>
                    <rect class="bar-ok" x=x.to_string() y=(CHART_HEIGHT - ok_height).to_string()
                        width=(slot - 2.0).max(1.0).to_string() height=ok_height.to_string()/>
                    <rect class="bar-refused" x=x.to_string() y=(CHART_HEIGHT - ok_height - refused_height).to_string()
                        width=(slot - 2.0).max(1.0).to_string() height=refused_height.to_string()/>
                </g>
            }
        })
        .collect_view();
    view! {
        <p class="muted">{format!("{total} downloads and {refused} refusals; busiest day {peak}.")}</p>
        <svg class="bars" viewBox=format!("0 0 {CHART_WIDTH} {CHART_HEIGHT}") role="img"
            aria-label=format!("Downloads per day from {first} to {last}")>
            <line class="axis" x1="0" y1=CHART_HEIGHT.to_string() x2=CHART_WIDTH.to_string() y2=CHART_HEIGHT.to_string()/>
            {bars}
        </svg>
        <div class="chart-legend">
            <span>{first}</span>
            <span><span class="key key-ok"></span>" downloads "<span class="key key-refused"></span>" refused"</span>
            <span>{last}</span>
        </div>
        <details>
            <summary>"The figures"</summary>
            <div class="table-wrap">
                <table>
                    <thead><tr><th>"Day"</th><th>"Downloads"</th><th>"Refused"</th></tr></thead>
                    <tbody>
                        {days.into_iter().rev().map(|d| view! {
                            <tr><td>{d.day}</td><td>{d.allowed}</td><td>{d.refused}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </details>
    }
}
