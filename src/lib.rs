//! ktasks: a self-hosted, single-binary server for the Krokanti Tasks REST API.
//!
//! # Layout
//!
//! - `main.rs`: parses the command line, calls `cli::run`, maps the outcome to an exit code.
//! - `cli`: the commands of SPEC section 4; offline commands call the store directly.
//! - `config`: `Config` from TOML, environment and flags, with defaults and validation.
//! - `server`: the accept loop, connection limits, timeouts, graceful shutdown.
//! - `app`: `App` (store, limiter, config) and `App::handle`, the request pipeline.
//! - `router`: `(method, path)` -> `Route` (public, API or web), 404, or 405 with `Allow`; lists
//!   every endpoint.
//! - `body`: a request body read within its size, deadline and minimum rate.
//! - `auth`: `Authorization: Bearer` -> token hash -> `Principal`, with the epoch-checked cache.
//! - `ratelimit`: the sliding-window limiter, keyed by token hash.
//! - `token`: token generation, format check, hashing (shared by CLI and auth).
//! - `json`: strict request bodies, and JSON strings written by hand.
//! - `query`: strict query strings and forms, and the cursors of paged lists.
//! - `reply`: `Reply`, what a handler answers.
//! - `validate`: field rules (slugs, colours, text lengths).
//! - `openapi`, `developers`: the OpenAPI document and the `/developers` page rendered from it.
//! - `web`, `password`: the settings pages (sessions, CSRF; Security: token forms; Webhooks: the
//!   webhook forms over `api::webhooks`), Argon2id.
//! - `api`: one file per resource (tasks also `task_patch`, `task_relations`); validates,
//!   authorizes, calls the store.
//! - `store`: the only place that speaks SQL; one file per table group.
//! - `error`: the one error enum and its mapping to a whole HTTP response.
//! - `time`, `log`: timestamps and dates in the API's formats; the stderr logger.
//! - `net`: client addresses behind trusted proxies, and the key per-client limits count under.
//!
//! # Request path
//!
//! `server` accepts -> `App::handle`: `router` -> body read within its limits (routes that take
//! one) -> on a blocking thread (of the read lane for GETs, the password lane for sign-ins, the
//! write lane otherwise), by the route's audience: public -> `api::dispatch_public`; web ->
//! `web::dispatch`; API read -> in one `store::Snapshot`: `auth` -> `ratelimit` -> plan ->
//! `api::dispatch_read` -> `api::<resource>`; API write -> `auth` in a snapshot -> `ratelimit` ->
//! plan and scope -> `api::dispatch_write` -> `api::<resource>` writing through `store::Writes`
//! -> `Reply` -> (the writes' commit awaited) -> HTTP response with rate-limit headers. Any error
//! leaves through `Error::to_response` as JSON.

pub mod api;
pub mod app;
pub mod auth;
pub mod body;
pub mod cli;
pub mod conditional;
pub mod config;
pub mod developers;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod log;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod password;
pub mod query;
pub mod ratelimit;
pub mod reply;
pub mod router;
pub mod server;
pub mod store;
pub mod time;
pub mod token;
pub mod validate;
pub mod web;
pub mod webhooks;

#[cfg(test)]
mod fuzz_tests;
