//! The `curl` examples of README.md run against a live server and get the status each claims.

use std::process::Command;

use crate::util::{Env, require_tools};

/// The shell block that follows the `readme-test` marker, and the status each `curl` line claims.
fn tested_block() -> (String, Vec<u16>) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split("<!-- readme-test:")
        .nth(1)
        .expect("README.md has a readme-test block");
    let block = after
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let statuses = block
        .lines()
        .filter(|line| line.contains("curl "))
        .map(|line| {
            let status = line.rsplit("# ").next().unwrap().trim();
            status
                .parse()
                .unwrap_or_else(|_| panic!("README curl line without `# STATUS`: {line}"))
        })
        .collect();
    (block.to_string(), statuses)
}

#[test]
#[ignore = "needs curl and jq; `.ci/run` runs it (cargo test -- --ignored)"]
fn readme_curl_examples_get_the_status_they_claim() {
    require_tools(
        &[("curl", "curl"), ("jq", "jq")],
        "the README examples test",
    );
    let (block, expected) = tested_block();
    assert!(expected.len() >= 20, "the block covers every route");
    let env = Env::new();
    env.user("you@example.com", "pro");
    let token = env.token("you@example.com", &[]);
    // The block creates a webhook to hooks.example.com: no name lookup of it (private targets are
    // allowed, so nothing is resolved) and no delivery, so that the test talks to 127.0.0.1 only.
    let server =
        env.serve_with_config("[webhooks]\nallow_private_targets = true\ndeliver = false\n");
    let statuses = env.dir.path().join("statuses");
    // Every curl also appends its status code to a file, in order; the block's own text runs as is
    // but for the server's address.
    let script = format!(
        "set -euo pipefail\nTOKEN={token}\n\
         curl() {{ command curl -w '%{{stderr}}%{{http_code}}\\n' \"$@\" 2>>{statuses}; }}\n{}",
        block.replace("http://127.0.0.1:8080", &format!("http://{}", server.addr)),
        statuses = statuses.display(),
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the README block failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let got: Vec<u16> = std::fs::read_to_string(&statuses)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(
        got, expected,
        "statuses of the README's curl lines, in order"
    );
    assert!(
        env.dir
            .path()
            .join("developers.html")
            .metadata()
            .unwrap()
            .len()
            > 1000
    );
}
