//! Dropgate's server side: the redb store, authentication primitives and the services (use
//! cases) that load state, decide with `domain` rules and persist the outcome. Nothing here
//! knows about HTTP; the server and the Leptos server functions call the services.

pub mod auth;
pub mod blobs;
pub mod clock;
pub mod geo;
pub mod i18n;
pub mod mail;
pub mod payments;
pub mod sales_file;
pub mod services;
pub mod store;
pub mod tls;

pub use services::{AccessService, ServiceError};
pub use store::{Store, StoreError};
