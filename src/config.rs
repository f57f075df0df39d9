//! Configuration (SPEC section 5): built-in defaults, overlaid by the TOML file, overlaid by the
//! environment and flags (clap reads `KTASKS_*` for us, so flag > env is clap's rule).
//!
//! `main` builds one `Config` and moves it into `App`; nothing reads configuration globally.
//! Every key is documented in `config.example.toml`; an unknown key is an error naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub rate_limit: RateLimitConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub tokens: TokensConfig,
    pub webhooks: WebhooksConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// Where `GET /metrics` (Prometheus) is served, on a listener of its own; unset: nowhere.
    pub metrics_bind: Option<String>,
    /// On a read replica, where writes go: each is answered `307` to this base URL with the same
    /// path and query. Unset: a replica answers writes `503 read_only_replica`.
    pub primary_url: Option<String>,
    /// The externally visible base URL (e.g. `https://tasks.example.com`), used for `Link` and
    /// `Location` headers. When unset, they are built from the request's `Host` header.
    pub public_url: Option<String>,
    /// Bounds both the wait for a request's headers and the idle wait between requests on a
    /// keep-alive connection (hyper times both with one timer).
    pub header_read_timeout_secs: u64,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub request_timeout_secs: u64,
    pub max_connections: usize,
    /// Open connections one client address (an IPv6 /64) may hold; beyond it a new connection
    /// gets 429 and is closed. Trusted proxies are exempt: they carry everyone's connections.
    pub max_connections_per_ip: usize,
    /// The whole request body must arrive within this time (408 and the connection closed).
    pub body_read_timeout_secs: u64,
    /// And at least this fast on average, after a grace of `BODY_RATE_GRACE` (0 = no minimum).
    pub body_min_bytes_per_sec: u64,
    pub shutdown_grace_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed (see `net`). Empty: the peer is the client.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// The key this server had before `trusted_proxies`; only kept to say what replaced it.
    #[serde(default)]
    trust_proxy_headers: Option<bool>,
}

/// The longest any server timeout may be: a day (and far from where adding it to a clock overflows).
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// How long a body may arrive slower than `server.body_min_bytes_per_sec` before it is cut: a
/// client's first bytes can lag behind its headers (TCP slow start, a phone waking its radio).
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    pub busy_timeout_ms: u64,
    /// Whether ktasks checkpoints the WAL itself; false leaves it to Litestream.
    pub autocheckpoint: bool,
    /// A read replica (SPEC 13): open the file without writing anything, answer reads, and send
    /// writes to `server.primary_url` (307) or refuse them (503). A file that cannot be opened
    /// for writing is a replica too.
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_minute: u32,
    /// Failed authentications (a token presented and refused) per client IP per minute; beyond
    /// it, every authenticated request from that IP gets 429 until the window slides. 0 = off.
    pub failed_auth_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Tokens a user may hold that are neither revoked nor expired: each has its own rate-limit
    /// window, so without a cap one user could multiply the limit by minting more.
    pub max_active_per_user: u32,
    /// The longest lifetime a new or rotated token may have, in days; unset: no limit (tokens may
    /// never expire).
    pub max_lifetime_days: Option<u32>,
}

impl Default for TokensConfig {
    fn default() -> TokensConfig {
        TokensConfig {
            max_active_per_user: 50,
            max_lifetime_days: None,
        }
    }
}

/// Webhook delivery (docs/webhooks.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_http: bool,
    pub allow_private_targets: bool,
    pub timeout_secs: u64,
    /// Seconds from a failed attempt to the next; one attempt more than entries in all.
    pub retry_schedule_secs: Vec<u64>,
    pub max_concurrent_deliveries: usize,
    pub max_concurrent_per_endpoint: usize,
    /// False: events are recorded but not sent.
    pub deliver: bool,
}

impl Default for WebhooksConfig {
    fn default() -> WebhooksConfig {
        WebhooksConfig {
            allow_http: false,
            allow_private_targets: false,
            timeout_secs: 10,
            // Svix's schedule: eight attempts over about 27.6 hours.
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            max_concurrent_deliveries: 64,
            max_concurrent_per_endpoint: 32,
            deliver: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: crate::log::Level,
}

impl Default for RateLimitConfig {
    fn default() -> RateLimitConfig {
        RateLimitConfig {
            requests_per_minute: 100,
            failed_auth_per_minute: 20,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: crate::log::Level::Info,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            primary_url: None,
            public_url: None,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            request_timeout_secs: 30,
            max_connections: 1024,
            max_connections_per_ip: 64,
            body_read_timeout_secs: 30,
            body_min_bytes_per_sec: 1024,
            shutdown_grace_secs: 10,
            trusted_proxies: Vec::new(),
            trust_proxy_headers: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            path: PathBuf::from("ktasks.db"),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5000,
            autocheckpoint: true,
            read_only: false,
        }
    }
}

impl Config {
    /// Reads the config file when one is named, else the defaults.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                Config::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))?
            }
        };
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.rate_limit.requests_per_minute == 0 {
            return Err("rate_limit.requests_per_minute must be at least 1".into());
        }
        if self.limits.max_body_bytes == 0 {
            return Err("limits.max_body_bytes must be at least 1".into());
        }
        if self.server.max_connections == 0 {
            return Err("server.max_connections must be at least 1".into());
        }
        if self.server.max_header_bytes < 1024 || self.server.max_headers == 0 {
            return Err(
                "server.max_header_bytes must be at least 1024 and server.max_headers at least 1"
                    .into(),
            );
        }
        if self.server.trust_proxy_headers.is_some() {
            return Err("server.trust_proxy_headers is replaced by server.trusted_proxies, the \
                        list of your proxies' address ranges (e.g. [\"127.0.0.1/32\", \"::1/128\"]); \
                        see config.example.toml"
                .into());
        }
        if self.server.max_connections_per_ip == 0 {
            return Err("server.max_connections_per_ip must be at least 1".into());
        }
        if self.tokens.max_active_per_user == 0 {
            return Err("tokens.max_active_per_user must be at least 1".into());
        }
        if self
            .tokens
            .max_lifetime_days
            .is_some_and(|days| !(1..=3650).contains(&days))
        {
            return Err("tokens.max_lifetime_days must be 1 to 3650 (or left out)".into());
        }
        let timeouts = [
            self.server.header_read_timeout_secs,
            self.server.request_timeout_secs,
            self.server.body_read_timeout_secs,
        ];
        if timeouts.iter().any(|&secs| secs > MAX_TIMEOUT_SECS) {
            return Err(format!(
                "server timeouts must be at most {MAX_TIMEOUT_SECS} seconds (a day)"
            ));
        }
        if timeouts.contains(&0) {
            return Err("server timeouts must be at least 1 second".into());
        }
        let webhooks = &self.webhooks;
        if webhooks.timeout_secs == 0 || webhooks.timeout_secs > 300 {
            return Err("webhooks.timeout_secs must be 1 to 300".into());
        }
        if webhooks.retry_schedule_secs.len() > 50
            || webhooks
                .retry_schedule_secs
                .iter()
                .any(|&secs| secs > 7 * 86_400)
        {
            return Err(
                "webhooks.retry_schedule_secs holds at most 50 delays of at most a week each"
                    .into(),
            );
        }
        if !(1..=1024).contains(&webhooks.max_concurrent_deliveries)
            || !(1..=256).contains(&webhooks.max_concurrent_per_endpoint)
        {
            return Err("webhooks.max_concurrent_deliveries must be 1 to 1024 and \
                 max_concurrent_per_endpoint 1 to 256"
                .into());
        }
        for (key, url) in [
            ("server.public_url", &self.server.public_url),
            ("server.primary_url", &self.server.primary_url),
        ] {
            if let Some(url) = url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || !url.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!(
                    "{key} must be an http:// or https:// URL without spaces, not {url:?}"
                ));
            }
        }
        Ok(())
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.server.body_read_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:8080");
        assert_eq!(config.database.path, PathBuf::from("ktasks.db"));
        assert_eq!(config.rate_limit.requests_per_minute, 100);
        assert_eq!(config.limits.max_body_bytes, 1 << 20);
        assert_eq!(config.database.synchronous, Synchronous::Full);
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::parse("[server]\nbnd = \"x\"\n").unwrap_err();
        assert!(error.contains("bnd"), "{error}");
        let error = Config::parse("[databse]\npath = \"x\"\n").unwrap_err();
        assert!(error.contains("databse"), "{error}");
    }

    #[test]
    fn the_example_file_parses_and_lists_the_defaults() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        let example = Config::parse(&text).unwrap();
        let defaults = Config::default();
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::parse("[rate_limit]\nrequests_per_minute = 0").is_err());
        assert!(Config::parse("[database]\nsynchronous = \"off\"").is_err());
        assert!(Config::parse("[server]\npublic_url = \"tasks.example.com\"").is_err());
        assert!(Config::parse("[server]\nprimary_url = \"primary:8080\"").is_err());
        assert!(Config::parse("[server]\nprimary_url = \"http://a\\nb\"").is_err());
        assert!(Config::parse("[server]\nprimary_url = \"https://primary.example.com\"").is_ok());
        assert!(Config::parse("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]").is_err());
        assert!(Config::parse("[tokens]\nmax_active_per_user = 0").is_err());
        assert!(Config::parse("[tokens]\nmax_lifetime_days = 0").is_err());
        assert_eq!(
            Config::parse("[tokens]\nmax_lifetime_days = 90")
                .unwrap()
                .tokens
                .max_lifetime_days,
            Some(90)
        );
        assert!(Config::parse("[server]\nbody_read_timeout_secs = 18446744073709551615").is_err());
        assert!(Config::parse("[webhooks]\ntimeout_secs = 0").is_err());
        assert!(Config::parse("[webhooks]\nmax_concurrent_per_endpoint = 0").is_err());
        assert!(Config::parse("[webhooks]\nmax_concurrent_deliveries = 1000000000").is_err());
        assert!(Config::parse("[webhooks]\nretry_schedule_secs = [1, 999999999]").is_err());
    }

    #[test]
    fn the_old_proxy_switch_points_to_its_replacement() {
        let error = Config::parse("[server]\ntrust_proxy_headers = true").unwrap_err();
        assert!(error.contains("server.trusted_proxies"), "{error}");
        let config =
            Config::parse("[server]\ntrusted_proxies = [\"127.0.0.1\", \"fd00::/8\"]").unwrap();
        assert_eq!(config.server.trusted_proxies.len(), 2);
    }
}
