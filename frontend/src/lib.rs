//! The browser entry point: the hydration script in every page calls `hydrate`, which takes
//! over the server-rendered HTML so that the admin runs as a single-page app.
// Deeply nested view types (the desk, the order screens) need more than 128 levels.
#![recursion_limit = "256"]

use wasm_bindgen::JsCast;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    mark_missing_flag_glyphs();
    leptos::mount::hydrate_body(app::App);
    // A marker for people and browser tests: from here on, the page is interactive.
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// Marks `<html class="no-flag-glyphs">` when the system's fonts draw a flag as its two
/// regional indicator letters instead of one flag (Windows, many Linux desktops): the
/// stylesheet then hides the flags and the country codes beside them stand alone.
/// Measured on a canvas: a flag is one glyph, about as wide as one indicator letter; two
/// letters are about twice as wide.
fn mark_missing_flag_glyphs() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(context) = document
        .create_element("canvas")
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        .and_then(|c| c.get_context("2d").ok().flatten())
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    context.set_font("32px sans-serif");
    let width = |text: &str| context.measure_text(text).map_or(0.0, |m| m.width());
    let (flag, letter) = (width("\u{1F1E9}\u{1F1EA}"), width("\u{1F1E9}"));
    if letter > 0.0
        && flag > letter * 1.5
        && let Some(root) = document.document_element()
    {
        let _ = root.class_list().add_1("no-flag-glyphs");
    }
}
