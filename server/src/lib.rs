//! The `dropgate` binary as a library, so tests can start the real application in-process:
//! command line and configuration, start-up, the HTTP layer and the embedded site.
// The UI's nested view types (the password desk) need more than 128 levels.
#![recursion_limit = "256"]

pub mod cli;
pub mod commands;
pub mod config;
pub mod geoip;
pub mod http;
pub mod records;
pub mod startup;
pub mod telemetry;
pub mod watchdog;

pub use config::Config;
pub use startup::Application;
