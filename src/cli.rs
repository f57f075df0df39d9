//! The command line of SPEC section 4. `serve` runs the HTTP server; every other command opens the
//! store directly (through the same `Store::open` as the server) and works while a server runs on
//! the same file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::error::Error;
use crate::store::Store;
use crate::store::spaces::{self, Role};
use crate::store::tokens::{self, Scope, TokenInfo};
use crate::store::users::{self, Plan, User};
use crate::{password, server, validate};

#[derive(Debug, Parser)]
#[command(
    name = "ktasks",
    version,
    about = "Self-hosted server for the Krokanti Tasks REST API"
)]
pub struct Cli {
    /// Configuration file (TOML); see config.example.toml
    #[arg(long, global = true, env = "KTASKS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// SQLite database file [default: ./ktasks.db]
    #[arg(long, global = true, env = "KTASKS_DB", value_name = "FILE")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long, env = "KTASKS_BIND", value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage space membership
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Mint, list and revoke API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write a consistent copy of the database to FILE (safe while the server runs)
    Backup { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, with a personal space
    Create {
        #[arg(long)]
        email: String,
        /// Display name [default: the part of the email before @]
        #[arg(long)]
        name: Option<String>,
        /// API access needs pro or team; self-hosted users default to pro
        #[arg(long, default_value = "pro")]
        plan: Plan,
    },
    /// List users
    List(ListArgs),
    /// Change a user's plan (free refuses their tokens from the next request on)
    SetPlan {
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: Plan,
    },
    /// Set the password for the web settings page: read from stdin when it is not a terminal,
    /// otherwise prompted twice (never taken from the command line). Ends the user's sessions.
    SetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum SpaceCommand {
    /// Add a user to a team space, or change their role
    AddMember {
        /// The space's slug
        #[arg(long)]
        space: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member", value_parser = ["admin", "member", "viewer"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a token; it is printed once, alone on the first line of stdout
    Create {
        /// The email of the user the token acts as
        #[arg(long)]
        user: String,
        /// What the token is for ("Zapier", "VS Code plugin")
        #[arg(long)]
        name: String,
        /// Only GET requests
        #[arg(long)]
        read_only: bool,
        /// Expire after N days (1-3650) [default: never]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
        /// Reach only this space (repeat for several) [default: every space of the user]
        #[arg(long = "space", value_name = "SLUG")]
        spaces: Vec<String>,
    },
    /// Replace a token with a new one (same name, scope, spaces and lifetime); the new token is
    /// printed once, alone on the first line of stdout
    Rotate {
        id: String,
        /// Keep the old token working this many minutes (0-10080) [default: 0, it stops at once]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10080))]
        grace_minutes: Option<u32>,
        /// The grace in seconds, for tests
        #[arg(long, value_name = "N", hide = true, conflicts_with = "grace_minutes")]
        grace_seconds: Option<u32>,
    },
    /// List tokens (never the tokens themselves: only their prefixes)
    List {
        /// Only this user's tokens
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Revoke a token by id, for good, effective on the next request
    Revoke { id: String },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print a JSON array with the API's field names
    #[arg(long)]
    json: bool,
}

/// Why a command failed, and so which exit code `main` returns.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage: exit code 2.
    Usage(String),
    /// A failure explained on stderr: exit code 1.
    Failed(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        match error {
            Error::Validation { .. } => Failure::Usage(error.to_string()),
            Error::Internal(detail) => Failure::Failed(detail),
            other => Failure::Failed(other.to_string()),
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let mut config = Config::load(cli.config.as_deref()).map_err(Failure::Usage)?;
    if let Some(db) = cli.db {
        config.database.path = db;
    }
    crate::log::set_level(config.log.level);
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                config.server.bind = bind;
            }
            serve(config)
        }
        Command::User(command) => user(&Store::open(&config.database)?, command),
        Command::Space(SpaceCommand::AddMember { space, email, role }) => {
            let store = Store::open(&config.database)?;
            let role = Role::parse(&role).expect("clap allows only known roles");
            let user = find_user(&store, &email)?;
            store.write(|tx| spaces::add_member(tx, &space, &user.id, role))?;
            eprintln!("{email} is now {role} in space {space}");
            Ok(())
        }
        Command::Token(command) => token_command(&Store::open(&config.database)?, &config, command),
        Command::Backup { file } => {
            if file.exists() {
                return Err(Failure::Failed(format!(
                    "{} exists; back up to a new file",
                    file.display()
                )));
            }
            Store::open(&config.database)?.backup(&file)?;
            eprintln!(
                "backed up {} to {}",
                config.database.path.display(),
                file.display()
            );
            Ok(())
        }
    }
}

fn serve(config: Config) -> Result<(), Failure> {
    let store = Store::open_with_readers(&config.database, crate::app::READER_CONNECTIONS)?;
    if store.read(users::count_users)? == 0 {
        let db = shell_word(&config.database.path.display().to_string());
        // The program as it was started (`target/release/ktasks` under `cargo run`, `ktasks` when
        // installed), so the commands work as printed, pasted into the same directory.
        let program = shell_word(&std::env::args().next().unwrap_or_else(|| "ktasks".into()));
        eprintln!(
            "No users yet. Create one and mint a token for it:\n\n  \
             {program} --db {db} user create --email you@example.com --name \"Your Name\"\n  \
             {program} --db {db} token create --user you@example.com --name \"my script\"\n"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(crate::app::WRITE_LANE_THREADS)
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    // Only its blocking pool is used (see `app::Lanes`); it outlives `runtime.block_on`, so it is
    // never dropped inside async code.
    let read_lane = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(crate::app::read_lane_threads())
        .thread_name("ktasks-read")
        .on_thread_start(crate::store::keep_readers_on_this_thread)
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the read threads: {e}")))?;
    let password_lane = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(crate::app::PASSWORD_LANE_THREADS)
        .thread_name("ktasks-password")
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the sign-in threads: {e}")))?;
    runtime.block_on(async {
        let bind = config.server.bind.clone();
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| Failure::Failed(format!("cannot listen on {bind}: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        let shutdown = server::shutdown_signal()
            .map_err(|e| Failure::Failed(format!("cannot install signal handlers: {e}")))?;
        let database = config.database.path.display().to_string();
        let lanes = crate::app::Lanes {
            reads: read_lane.handle().clone(),
            writes: tokio::runtime::Handle::current(),
            passwords: password_lane.handle().clone(),
        };
        let metrics =
            match &config.server.metrics_bind {
                Some(bind) => Some(tokio::net::TcpListener::bind(bind).await.map_err(|e| {
                    Failure::Failed(format!("cannot serve metrics on {bind}: {e}"))
                })?),
                None => None,
            };
        let app = Arc::new(App::new(store, config, lanes));
        // Announced only when ready: tests and scripts wait for this line.
        crate::log_info!(
            "ktasks {} listening on http://{address} (database {database})",
            env!("CARGO_PKG_VERSION"),
        );
        if let Some(metrics) = metrics {
            let at = metrics
                .local_addr()
                .map_err(|e| Failure::Failed(e.to_string()))?;
            crate::log_info!("metrics at http://{at}/metrics");
            tokio::spawn(crate::metrics::serve(metrics, Arc::clone(&app)));
        }
        crate::log::flush();
        server::run(listener, app, shutdown).await;
        Ok(())
    })
}

fn user(store: &Store, command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Create { email, name, plan } => {
            let email = email.trim().to_string();
            if !users::is_valid_email(&email) {
                return Err(Failure::Usage(format!("{email:?} is not an email address")));
            }
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
            let name = validate::name("name", name, validate::MAX_NAME_CHARS)?;
            let user = store.write(|tx| users::create_user(tx, &email, &name, plan))?;
            println!("{}", user.id);
            eprintln!(
                "created user {} ({}, plan {}) with a personal space",
                user.email, user.name, user.plan
            );
            Ok(())
        }
        UserCommand::List(list) => {
            let users = store.read(users::list_users)?;
            print_list(
                &users,
                list.json,
                &["ID", "EMAIL", "NAME", "PLAN", "CREATED"],
                |u| {
                    vec![
                        u.id.clone(),
                        u.email.clone(),
                        u.name.clone(),
                        u.plan.to_string(),
                        u.created_at.clone(),
                    ]
                },
            )
        }
        UserCommand::SetPassword { email } => {
            find_user(store, &email)?;
            let password = read_password()?;
            password::check_rules(&password)?;
            let hash = password::hash(&password)?;
            let ended = store.write(|tx| users::set_password_hash(tx, &email, &hash))?;
            let ended = ended.ok_or_else(|| no_such_user(&email))?;
            eprintln!("password set for {email}; {ended} session(s) signed out");
            Ok(())
        }
        UserCommand::SetPlan { email, plan } => {
            let user = store.write(|tx| users::set_plan(tx, &email, plan))?;
            let user = user.ok_or_else(|| no_such_user(&email))?;
            eprintln!("{} is now on the {} plan", user.email, user.plan);
            Ok(())
        }
    }
}

fn token_command(store: &Store, config: &Config, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create {
            user,
            name,
            read_only,
            expires_in_days,
            spaces,
        } => {
            let owner = find_user(store, &user)?;
            if owner.plan == Plan::Free {
                return Err(Failure::Failed(format!(
                    "{} is on the free plan, and API access needs a pro or team plan.\n\
                     Upgrade first: ktasks user set-plan --email {} --plan pro",
                    owner.email, owner.email
                )));
            }
            let name = validate::name("name", name, validate::MAX_NAME_CHARS)?;
            let scope = if read_only { Scope::Read } else { Scope::Write };
            let space_ids = space_ids(store, &owner, &spaces)?;
            let (secret, created) = store.write(|tx| {
                let mint = tokens::Mint {
                    user_id: &owner.id,
                    name: &name,
                    scope,
                    expires_in_days,
                    spaces: space_ids.as_deref(),
                };
                tokens::mint_token(tx, &mint, &config.tokens)
            })?;
            print_once(&secret)?;
            eprintln!(
                "Created token \"{}\" (id {}, {} scope, {}, expires {}) for {}.\n\
                 Copy it now: it is stored only as a hash and will not be shown again.",
                created.name,
                created.id,
                created.scope,
                reach(&spaces),
                created.expires_at.as_deref().unwrap_or("never"),
                owner.email
            );
            Ok(())
        }
        TokenCommand::Rotate {
            id,
            grace_minutes,
            grace_seconds,
        } => {
            let grace = grace_seconds
                .map(i64::from)
                .or(grace_minutes.map(|minutes| i64::from(minutes) * 60))
                .unwrap_or(0);
            let rotated = store.write(|tx| tokens::rotate_token(tx, &id, grace, &config.tokens))?;
            let Some((secret, created)) = rotated else {
                return Err(Failure::Failed(format!(
                    "no token has the id {id}; see `ktasks token list`"
                )));
            };
            print_once(&secret)?;
            let old_ends = if grace == 0 {
                "now".to_string()
            } else {
                format!("at {}", crate::time::secs_from_now(grace))
            };
            eprintln!(
                "Rotated token {id}: its replacement \"{}\" has the id {} (expires {}). \
                 The old token stops working {old_ends}.\n\
                 Copy the new one now: it is stored only as a hash and will not be shown again.",
                created.name,
                created.id,
                created.expires_at.as_deref().unwrap_or("never"),
            );
            Ok(())
        }
        TokenCommand::List { user, list } => {
            let user_id = user
                .map(|email| find_user(store, &email))
                .transpose()?
                .map(|u| u.id);
            let tokens = store.read(|conn| tokens::list_tokens(conn, user_id.as_deref()))?;
            print_list(
                &tokens,
                list.json,
                &[
                    "ID",
                    "USER",
                    "NAME",
                    "PREFIX",
                    "SCOPE",
                    "CREATED",
                    "LAST USED",
                    "LAST IP",
                    "SPACES",
                    "EXPIRES",
                    "REVOKED",
                    "REPLACED BY",
                ],
                |t: &TokenInfo| {
                    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    vec![
                        t.id.clone(),
                        t.email.clone(),
                        t.name.clone(),
                        t.prefix.clone(),
                        t.scope.to_string(),
                        t.created_at.clone(),
                        or_dash(&t.last_used_at),
                        or_dash(&t.last_used_ip),
                        t.spaces.as_ref().map_or("all".into(), |ids| ids.join(",")),
                        or_dash(&t.expires_at),
                        or_dash(&t.revoked_at),
                        or_dash(&t.replaced_by),
                    ]
                },
            )
        }
        TokenCommand::Revoke { id } => {
            let before = store.read(|conn| tokens::find_token(conn, &id))?;
            let Some(before) = before else {
                return Err(Failure::Failed(format!(
                    "no token has the id {id}; see `ktasks token list`"
                )));
            };
            if let Some(at) = before.revoked_at.filter(|at| *at <= crate::time::now()) {
                eprintln!(
                    "token {id} (\"{}\") was already revoked at {at}",
                    before.name
                );
                return Ok(());
            }
            store.write(|tx| tokens::revoke_token(tx, &id))?;
            eprintln!(
                "revoked token {id} (\"{}\", {}); it is refused from the next request on",
                before.name, before.prefix
            );
            Ok(())
        }
    }
}

/// The token, alone on stdout's first line (scripts take it with `head -n1`).
fn print_once(secret: &str) -> Result<(), Failure> {
    writeln!(std::io::stdout().lock(), "{secret}").map_err(|e| Failure::Failed(e.to_string()))
}

/// The ids of the spaces `--space` named, each one the owner's; `None` when none was named.
fn space_ids(
    store: &Store,
    owner: &User,
    slugs: &[String],
) -> Result<Option<Vec<String>>, Failure> {
    if slugs.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(slugs.len());
    for slug in slugs {
        let found = store.read(|conn| {
            let Some((id, _)) = spaces::find_space_by_slug(conn, slug)? else {
                return Ok(None);
            };
            let member = spaces::role_in_space(conn, &id, spaces::Viewer::user(&owner.id))?;
            Ok(Some((id, member.is_some())))
        })?;
        match found {
            Some((id, true)) => ids.push(id),
            Some((_, false)) => {
                return Err(Failure::Failed(format!(
                    "{} is not a member of the space {slug:?}; add them first: \
                     ktasks space add-member --space {slug} --email {}",
                    owner.email, owner.email
                )));
            }
            None => {
                return Err(Failure::Failed(format!("no space has the slug {slug:?}")));
            }
        }
    }
    Ok(Some(ids))
}

/// How far a new token reaches, for the message that announces it.
fn reach(slugs: &[String]) -> String {
    if slugs.is_empty() {
        "every space".into()
    } else {
        format!("only the spaces {}", slugs.join(", "))
    }
}

/// The new password: one line of stdin when it is not a terminal (scripts), else typed twice
/// without echo.
fn read_password() -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal};
    let failed = |e: std::io::Error| Failure::Failed(format!("cannot read the password: {e}"));
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(failed)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("New password: ").map_err(failed)?;
    let second = rpassword::prompt_password("Again: ").map_err(failed)?;
    if first != second {
        return Err(Failure::Usage("the two passwords differ".into()));
    }
    Ok(first)
}

fn find_user(store: &Store, email: &str) -> Result<User, Failure> {
    store
        .read(|conn| users::find_user_by_email(conn, email))?
        .ok_or_else(|| no_such_user(email))
}

fn no_such_user(email: &str) -> Failure {
    Failure::Failed(format!(
        "no user has the email {email}; see `ktasks user list`"
    ))
}

/// `text` as one word for a POSIX shell: as it is when it holds nothing the shell would read,
/// else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `text` with control characters (and the bidirectional overrides) written as escapes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if validate::is_unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `--json`: a JSON array with the API's field names; otherwise an aligned table.
fn print_list<T: Serialize>(
    items: &[T],
    json: bool,
    headings: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let result = if json {
        serde_json::to_writer_pretty(&mut out, items)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        // Names are checked for control characters when made, but a database from before that
        // (or edited by hand) may hold some: shown escaped, never obeyed by the terminal.
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| row(item).into_iter().map(|cell| printable(&cell)).collect())
            .collect();
        let widths: Vec<usize> = (0..headings.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([headings[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let headings: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
        std::iter::once(&headings)
            .chain(rows.iter())
            .try_for_each(|cells| {
                let line: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                writeln!(out, "{}", line.join("  ").trim_end())
            })
    };
    result.map_err(|e| Failure::Failed(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_survive_a_shell() {
        assert_eq!(shell_word("target/release/ktasks"), "target/release/ktasks");
        assert_eq!(
            shell_word("/var/lib/ktasks/ktasks.db"),
            "/var/lib/ktasks/ktasks.db"
        );
        for text in ["my data/k.db", "it's.db", "$HOME/x", "a;b", ""] {
            let quoted = shell_word(text);
            let echoed = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(echoed.stdout).unwrap(), text, "{quoted}");
        }
    }
}
