//! The one integration test binary: every test drives the real `ktasks` binary.

mod util;

mod assignees;
mod auth;
mod authz;
mod bad_input;
mod browser;
mod cli;
mod contract;
mod durability;
mod files;
mod labels;
mod mcp;
mod metrics;
mod pagination;
mod projects;
mod readme;
mod receiver;
mod replica;
mod resilience;
mod retries;
mod server;
mod spaces;
mod task_lists;
mod tasks;
mod token_lifecycle;
mod web;
mod web_defences;
mod web_webhooks;
mod webhooks;
