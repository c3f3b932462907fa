//! Payments in, events out, below the services: each provider's signature scheme
//! (`signature`), each provider's notification read into one shape (`notice`), and the
//! HTTP client that talks to providers and to the seller's webhook endpoints (`client`).

pub mod client;
pub mod notice;
pub mod signature;
