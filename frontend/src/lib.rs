//! The browser entry point: the hydration script in every page calls `hydrate`, which takes
//! over the server-rendered HTML so that the admin runs as a single-page app.
// Deeply nested view types (the desk, the order screens) need more than 128 levels.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker for people and browser tests: from here on, the page is interactive.
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
