//! The one integration test binary: every test drives the real `ktasks` binary.

mod util;

mod auth;
mod cli;
mod server;
