//! The server's black-box tests, one binary: each module starts the real application (or
//! the real binary) on 127.0.0.1 with a temporary data dir and talks to it over sockets.
//! One binary instead of one per file: each test binary links the whole server, and the
//! links were a large part of CI's time.

mod common;

mod admin;
mod buyer;
mod cli;
mod crash;
mod delivery;
mod desk;
mod http;
mod mail;
mod openapi;
mod payments;
mod records;
mod reload;
mod s3;
mod setup;
mod updates;
