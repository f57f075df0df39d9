//! Test harness: the real `ktasks` binary in its own temp dir, on port 0, driven over HTTP with a
//! tiny blocking HTTP/1.1 client (one connection per request, `Connection: close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ktasks");

/// A data directory with a database, usable by the CLI with or without a running server.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ktasks.db")
    }

    /// Runs `ktasks --db <db> args...` to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--db")
            .arg(self.db())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("KTASKS_CONFIG")
            .env_remove("KTASKS_BIND")
            .env_remove("KTASKS_DB")
            .output()
            .unwrap()
    }

    /// Runs the CLI with `input` on its standard input.
    pub fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(self.db())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("KTASKS_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI and insists on success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "ktasks {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Creates a user (plan pro unless given) and returns their id.
    pub fn user(&self, email: &str, plan: &str) -> String {
        self.cli_ok(&["user", "create", "--email", email, "--plan", plan])
            .trim()
            .to_string()
    }

    /// Mints a token for `email` and returns it.
    pub fn token(&self, email: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--user", email, "--name", "test"];
        args.extend_from_slice(extra);
        let token = self.cli_ok(&args).lines().next().unwrap().to_string();
        MINTED.lock().unwrap().push(token.clone());
        token
    }

    /// Starts `ktasks serve` on this directory's database.
    pub fn serve(&self) -> Server {
        self.serve_with_config("")
    }

    /// Starts the server with this TOML as its config file.
    pub fn serve_with_config(&self, config: &str) -> Server {
        let config_path = self.dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&config_path)
            .arg("--db")
            .arg(self.db())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("server exited before listening: {}", log.lock().unwrap());
            }
            log.lock().unwrap().push_str(&line);
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
            }
        };
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server {
            child,
            addr,
            log,
            reader: Some(reader),
        }
    }
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Reads the server's stderr into `log` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Every token minted by any test of this run: no server log may contain one.
static MINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Server {
    /// Stops the server as an operator would (SIGTERM: it finishes in-flight requests and flushes
    /// its log), or kills it after 20 s; then waits for the log reader to reach the end of the
    /// server's stderr. Returns the whole log: what log assertions should read.
    pub fn stop(&mut self) -> String {
        if self.child.try_wait().ok().flatten().is_none() {
            let pid = i32::try_from(self.child.id()).expect("a pid fits an i32");
            // SAFETY: kill(2) with a valid signal; the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            if !wait_until(Duration::from_secs(20), || {
                self.child.try_wait().ok().flatten().is_some()
            }) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        let log = self.stop();
        for token in MINTED.lock().unwrap().iter() {
            assert!(
                !log.contains(&token[3..35]),
                "a token's secret part appears in the server log"
            );
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts an error response with this status and code, and returns its body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {}: {}",
            self.status, self.body
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{}", self.body);
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        body
    }
}

impl Server {
    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request("PATCH", path, Some(token), Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str, token: &str) -> Response {
        self.request("DELETE", path, Some(token), None)
    }

    /// GET that must answer 200; returns the JSON body.
    #[track_caller]
    pub fn get_ok(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, token);
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// The id of the token's user's first space: their personal space.
    pub fn personal_space(&self, token: &str) -> String {
        self.get_ok("/api/spaces", token)[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The id of the first project of a space ("General" in a personal space).
    pub fn first_project(&self, token: &str, space: &str) -> String {
        self.get_ok(&format!("/api/projects?spaceId={space}"), token)[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POST that must answer 201; returns the JSON body.
    #[track_caller]
    pub fn create(&self, path: &str, token: &str, body: &Value) -> Value {
        let response = self.post(path, token, body);
        assert_eq!(
            response.status, 201,
            "POST {path} {body}: {}",
            response.body
        );
        assert!(response.header("location").is_some());
        response.json()
    }

    pub fn get(&self, path: &str, token: &str) -> Response {
        self.request("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request("POST", path, Some(token), Some(&body.to_string()))
    }

    /// A JSON request (Content-Type set when there is a body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
        }
        if body.is_some() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.raw(method, path, &headers, body.unwrap_or("").as_bytes())
    }

    /// A request with exactly these headers (plus Host, Content-Length and Connection: close).
    /// The response is checked against the OpenAPI document.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let response = self
            .try_raw(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        crate::contract::check_response(method, path, &response);
        response
    }

    /// Like `raw`, but a connection failure is an `Err` (for tests that kill the server), and
    /// the response is not checked.
    pub fn try_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        self.client().try_raw(method, path, headers, body)
    }

    /// A handle other threads can send requests with.
    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }
}

/// Sends requests to a server from any thread.
#[derive(Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    pub fn try_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        // The server may answer (413) before reading all of a large body.
        let _ = stream.write_all(body);
        read_response(stream)
    }

    /// POST a JSON body with a token; `Err` when the connection fails.
    pub fn try_post(&self, path: &str, token: &str, body: &Value) -> std::io::Result<Response> {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        self.try_raw("POST", path, &headers, body.to_string().as_bytes())
    }
}

fn read_response(mut stream: TcpStream) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("responses are UTF-8");
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!("no response head: {text:?}")));
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Panics, saying how to install it, unless each `(command, Debian package)` answers `--version`.
pub fn require_tools(tools: &[(&str, &str)], needed_by: &str) {
    for (command, package) in tools {
        let found = Command::new(command)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{needed_by} needs `{command}`; install it (Debian: apt-get install {package})"
        );
    }
}

/// `count` connections to `to` from the loopback address `source` (all of 127.0.0.0/8 is this
/// machine), so a test can be a second client address beside 127.0.0.1.
pub fn connect_from(source: &str, to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    (0..count)
        .map(|_| {
            runtime.block_on(async {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(source).unwrap();
                let stream = socket.connect(to).await.unwrap().into_std().unwrap();
                stream.set_nonblocking(false).unwrap();
                stream
            })
        })
        .collect()
}

/// Polls `condition` until it holds or `timeout` passes.
/// The names of a task's labels, in the order it lists them.
pub fn label_names(task: &Value) -> Vec<&str> {
    task["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| label["name"].as_str().unwrap())
        .collect()
}

pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Every byte of the database files (main, WAL, shared memory).
pub fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(content) = std::fs::read(path) {
            bytes.extend(content);
        }
    }
    bytes
}

/// A team space with an owner, a member, a viewer, and an outsider who has a space of their own.
pub struct Team {
    pub env: Env,
    pub server: Server,
    pub owner: String,
    pub member: String,
    pub viewer: String,
    pub outsider: String,
    pub owner_id: String,
    pub member_id: String,
    pub viewer_id: String,
    pub outsider_id: String,
    pub space: String,
    pub project: String,
    pub other_space: String,
    pub other_project: String,
}

impl Team {
    pub fn new() -> Team {
        Team::with_webhooks("")
    }

    /// A team whose server sends webhooks to 127.0.0.1 over plain http (the tests' receivers),
    /// with further `[webhooks]` settings (`key = value` lines).
    pub fn with_webhooks(settings: &str) -> Team {
        let env = Env::new();
        let owner_id = env.user("owner@example.com", "team");
        let member_id = env.user("member@example.com", "pro");
        let viewer_id = env.user("viewer@example.com", "pro");
        let outsider_id = env.user("outsider@example.com", "pro");
        let owner = env.token("owner@example.com", &[]);
        let member = env.token("member@example.com", &[]);
        let viewer = env.token("viewer@example.com", &[]);
        let outsider = env.token("outsider@example.com", &[]);
        let server = env.serve_with_config(&format!(
            "[rate_limit]\nrequests_per_minute = 100000\n\
             [webhooks]\nallow_http = true\nallow_private_targets = true\n{settings}"
        ));
        let space = server.create(
            "/api/spaces",
            &owner,
            &serde_json::json!({"name": "Team", "slug": "team"}),
        );
        let space = space["id"].as_str().unwrap().to_string();
        env.cli_ok(&[
            "space",
            "add-member",
            "--space",
            "team",
            "--email",
            "member@example.com",
        ]);
        env.cli_ok(&[
            "space",
            "add-member",
            "--space",
            "team",
            "--email",
            "viewer@example.com",
            "--role",
            "viewer",
        ]);
        let other = server.create(
            "/api/spaces",
            &outsider,
            &serde_json::json!({"name": "Other", "slug": "other"}),
        );
        let other_space = other["id"].as_str().unwrap().to_string();
        let project = server.first_project(&owner, &space);
        let other_project = server.first_project(&outsider, &other_space);
        Team {
            env,
            server,
            owner,
            member,
            viewer,
            outsider,
            owner_id,
            member_id,
            viewer_id,
            outsider_id,
            space,
            project,
            other_space,
            other_project,
        }
    }

    /// Creates a task in the team's General project as the owner.
    pub fn task(&self, title: &str) -> Value {
        self.server.create(
            "/api/tasks",
            &self.owner,
            &serde_json::json!({"projectId": self.project, "title": title}),
        )
    }
}
