//! Where a webhook may point: the URL rules and the SSRF guard (docs/webhooks.md, "Targets").
//!
//! The guard runs twice: on the URL when a webhook is created or its `url` changed (`check_url`),
//! and on the addresses the host resolves to at every delivery (`resolve`), whose checked address
//! is the one the sender connects to, so a DNS answer that changes in between cannot move it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// The longest URL a webhook may have.
pub const MAX_URL_CHARS: usize = 2000;

/// The shape every webhook URL must have before it is parsed, published in the OpenAPI document:
/// http(s), a host name (ASCII; punycode for international names), an IPv4 or a bracketed IPv6
/// address, an optional port, a path and a query; no user info, no fragment, nothing that needs
/// escaping. `matches_pattern` is its matcher, kept equal to it by a test.
pub const URL_PATTERN: &str = "^https?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\\.?)(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$";

/// True when `text` matches `URL_PATTERN`.
pub fn matches_pattern(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let host_end = rest.find([':', '/', '?']).unwrap_or(rest.len());
    // A bracketed IPv6 address holds colons: its end is the bracket.
    let host_end = if rest.starts_with('[') {
        match rest.find(']') {
            Some(close) => close + 1,
            None => return false,
        }
    } else {
        host_end
    };
    let (host, mut rest) = rest.split_at(host_end);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        let inner = &inner[..inner.len() - 1];
        !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        let labels = host.strip_suffix('.').unwrap_or(host);
        !labels.is_empty()
            && labels.split('.').all(|label| {
                let bytes = label.as_bytes();
                !bytes.is_empty()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                    && bytes[0] != b'-'
                    && bytes[bytes.len() - 1] != b'-'
            })
    };
    if !host_ok {
        return false;
    }
    if let Some(after) = rest.strip_prefix(':') {
        let digits = after.find(['/', '?']).unwrap_or(after.len());
        if !(1..=5).contains(&digits) || !after[..digits].bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        rest = &after[digits..];
    }
    let url_char = |b: u8| b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=:@%/-".contains(&b);
    let (path, query) = match rest.find('?') {
        Some(mark) => (&rest[..mark], Some(&rest[mark + 1..])),
        None => (rest, None),
    };
    (path.is_empty() || (path.starts_with('/') && path.bytes().all(url_char)))
        && query.is_none_or(|query| query.bytes().all(|b| url_char(b) || b == b'?'))
}

/// What the server allows (`webhooks.allow_http`, `webhooks.allow_private_targets`).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// Parses and checks a webhook URL; `Err` says why it is refused (400 with field `url`). The URL
/// comes back as the WHATWG parser writes it (`http://2130706433/` is `http://127.0.0.1/`), which
/// is what is stored. `resolve_names` also looks the host up when it is a name (at creation; the
/// tests of the rules alone pass `false`).
pub fn check_url(text: &str, rules: Rules, resolve_names: bool) -> Result<Url, String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("`url` must be at most {MAX_URL_CHARS} characters"));
    }
    if !matches_pattern(text) {
        let reason = match Url::parse(text) {
            Err(e) => format!("`url` must be an absolute URL ({e})"),
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                "`url` must not hold a user name or password: they would be shown to everyone \
                 who can read the webhook; authenticate deliveries by their signature"
                    .into()
            }
            Ok(url) if url.fragment().is_some() => "`url` must not have a #fragment".into(),
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                "`url` must be an https:// URL".into()
            }
            Ok(_) => "`url` must be an http(s) URL of a host name (ASCII; punycode for \
                      international names), an IPv4 or a bracketed IPv6 address, with an optional \
                      port, path and query, its special characters percent-encoded"
                .into(),
        };
        return Err(reason);
    }
    let url = Url::parse(text).map_err(|e| format!("`url` must be an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if rules.allow_http => {}
        "http" => {
            return Err(
                "`url` must use https:// (this server does not allow plain http:// targets)".into(),
            );
        }
        _ => return Err("`url` must be an https:// URL".into()),
    }
    let host = url.host().ok_or("`url` must have a host")?;
    if rules.allow_private {
        return Ok(url);
    }
    let refused = |address: IpAddr| {
        format!(
            "`url` points to {address}, a loopback, private, link-local or otherwise internal \
             address, which this server does not send webhooks to"
        )
    };
    match host {
        Host::Ipv4(address) if is_internal(address.into()) => Err(refused(address.into())),
        Host::Ipv6(address) if is_internal(address.into()) => Err(refused(address.into())),
        Host::Domain(name) if is_local_name(name) => Err(format!(
            "`url` names {name}, which is this machine, where this server does not send webhooks"
        )),
        Host::Domain(name) if resolve_names => {
            let port = url.port_or_known_default().unwrap_or(443);
            // Which address a name resolves to is not said: the answer would map internal names.
            if lookup_bounded(name, port)
                .iter()
                .any(|address| is_internal(address.ip()))
            {
                return Err(format!(
                    "`url`'s host {name} resolves to a loopback, private, link-local or otherwise \
                     internal address, which this server does not send webhooks to"
                ));
            }
            Ok(url)
        }
        _ => Ok(url),
    }
}

/// Name lookups at creation at once, at most; more are skipped (delivery checks every time).
const MAX_LOOKUPS: usize = 4;
/// How long creation waits for a name lookup; a slower one is left to delivery's check.
const LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The addresses `name` resolves to, or none when it does not resolve within `LOOKUP_WAIT` or
/// `MAX_LOOKUPS` are under way: a nameserver that never answers must not hold the request
/// threads. The system resolver blocks, so it runs on a thread of its own, which is left to
/// finish alone when it is too slow.
fn lookup_bounded(name: &str, port: u16) -> Vec<SocketAddr> {
    static UNDER_WAY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    use std::sync::atomic::Ordering;
    if UNDER_WAY.fetch_add(1, Ordering::SeqCst) >= MAX_LOOKUPS {
        UNDER_WAY.fetch_sub(1, Ordering::SeqCst);
        return Vec::new();
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let name = name.to_string();
    let spawned = std::thread::Builder::new()
        .name("ktasks-lookup".into())
        .spawn(move || {
            let addresses = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                .map(Iterator::collect::<Vec<_>>)
                .unwrap_or_default();
            UNDER_WAY.fetch_sub(1, Ordering::SeqCst);
            let _ = sender.send(addresses);
        });
    if spawned.is_err() {
        UNDER_WAY.fetch_sub(1, Ordering::SeqCst);
        return Vec::new();
    }
    receiver.recv_timeout(LOOKUP_WAIT).unwrap_or_default()
}

/// The addresses to connect to for `url`, each checked: `Err` when the host is or resolves to an
/// internal address (and the rules do not allow it), or does not resolve.
pub async fn resolve(url: &Url, rules: Rules) -> Result<Vec<SocketAddr>, String> {
    if url.scheme() == "http" && !rules.allow_http {
        return Err("refused: plain http:// targets are not allowed (webhooks.allow_http)".into());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(address)) => vec![SocketAddr::new(address.into(), port)],
        Some(Host::Ipv6(address)) => vec![SocketAddr::new(address.into(), port)],
        Some(Host::Domain(name)) => {
            if !rules.allow_private && is_local_name(name) {
                return Err(format!("refused: {name} is this machine"));
            }
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| format!("cannot resolve {name}"))?
                .collect()
        }
        None => return Err("the URL has no host".into()),
    };
    if addresses.is_empty() {
        return Err("the host resolves to no address".into());
    }
    if !rules.allow_private && addresses.iter().any(|a| is_internal(a.ip())) {
        return Err("refused: the host is or resolves to an internal address".into());
    }
    Ok(addresses)
}

/// `localhost` and names under it are loopback by definition (RFC 6761), whatever DNS says; the
/// trailing dot of a fully qualified name changes nothing.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// True for every address a webhook must not reach: loopback, private, link-local, shared
/// (CGNAT), multicast, broadcast, documentation, benchmarking, reserved and unspecified ranges,
/// IPv6 forms that carry such an IPv4 address (mapped, compatible, NAT64, 6to4), local-use NAT64
/// and Teredo.
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    a == 0 // "this network", 0.0.0.0 included
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224 // multicast, reserved, broadcast
}

fn is_internal_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = address.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    address.is_unspecified()
        || address.is_loopback()
        // IPv4-compatible (deprecated): ::a.b.c.d
        || (segments[..6] == [0; 6] && is_internal_v4(embedded_v4(segments[6], segments[7])))
        // NAT64: 64:ff9b::a.b.c.d
        || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            && is_internal_v4(embedded_v4(segments[6], segments[7])))
        // NAT64 for local use (RFC 8215): 64:ff9b:1::/48, whatever it carries
        || segments[..3] == [0x64, 0xff9b, 1]
        // Teredo: 2001::/32 tunnels to an address no check sees
        || (segments[0] == 0x2001 && segments[1] == 0)
        // 6to4: 2002:aabb:ccdd::
        || (segments[0] == 0x2002 && is_internal_v4(embedded_v4(segments[1], segments[2])))
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] & 0xff00) == 0xff00 // multicast
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0; 3]) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Rules = Rules {
        allow_http: true,
        allow_private: false,
    };

    #[test]
    fn internal_targets_are_refused_in_every_spelling() {
        for host in [
            "127.0.0.1",
            "localhost",
            "localhost.",
            "LOCALHOST",
            "api.localhost",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::127.0.0.1]",
            "[64:ff9b::a00:1]",
            "[64:ff9b:1::808:808]",
            "[2001::1]",
            "[2002:a00:1::]",
            "169.254.169.254",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "2130706433",
            "0177.0.0.1",
            "0x7f.1",
            "127.1",
            "0.0.0.0",
            "0",
            "[::]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[fe80::1]",
            "224.0.0.1",
            "[ff02::1]",
            "255.255.255.255",
        ] {
            let url = format!("http://{host}:8080/hook");
            let refused = check_url(&url, STRICT, false);
            assert!(refused.is_err(), "{url} was accepted");
            assert!(
                check_url(
                    &url,
                    Rules {
                        allow_private: true,
                        ..STRICT
                    },
                    false
                )
                .is_ok(),
                "{url} refused even with private targets allowed"
            );
        }
    }

    #[test]
    fn public_targets_pass_and_are_stored_as_parsed() {
        for url in [
            "https://hooks.example.com/ktasks?token=abc",
            "http://93.184.215.14/hook",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, STRICT, false).is_ok(), "{url}");
        }
        let url = check_url("https://EXAMPLE.com:443/a/../b", STRICT, false).unwrap();
        assert_eq!(url.as_str(), "https://example.com/b");
    }

    #[test]
    fn malformed_or_unsafe_urls_are_refused_with_a_reason() {
        let https_only = Rules {
            allow_http: false,
            allow_private: false,
        };
        for (url, reason) in [
            ("/relative", "absolute"),
            ("hooks.example.com/x", "absolute"),
            ("ftp://example.com/", "https://"),
            ("http://example.com/", "https://"),
            ("https://user:pw@example.com/", "password"),
            ("https://example.com/#x", "fragment"),
        ] {
            let error = check_url(url, https_only, false).unwrap_err();
            assert!(error.contains(reason), "{url}: {error}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(
            check_url(&long, https_only, false)
                .unwrap_err()
                .contains("2000")
        );
    }

    #[test]
    fn the_matcher_agrees_with_the_published_pattern() {
        let schema = serde_json::json!({ "type": "string", "pattern": URL_PATTERN });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut cases: Vec<String> = [
            "https://example.com",
            "https://example.com/",
            "https://example.com.:8443/a/b?x=1&y=%20",
            "http://127.0.0.1:9/hook",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]:80/",
            "https://[2606:4700::1111]/",
            "https://a-b.c-d.e/x?y?z",
            "https://-a.com/",
            "https://a-.com/",
            "https://a..b/",
            "https://./",
            "https://example.com*",
            "https://exa mple.com/",
            "https://user@example.com/",
            "https://example.com/#frag",
            "https://example.com:/",
            "https://example.com:123456/",
            "https://[::1/",
            "https://[]/",
            "ftp://example.com/",
            "https://bücher.example/",
            "https://example.com/ä",
            "https://example.com?q",
            "HTTPS://example.com/",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // And a spread of strings made of the characters that matter.
        let alphabet = b"htps:/[]0-9a.?#@%*: -";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5000 {
            let mut text = String::from(if seed.is_multiple_of(2) {
                "https://"
            } else {
                "http://"
            });
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
            }
            seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
            cases.push(text);
        }
        for case in &cases {
            assert_eq!(
                matches_pattern(case),
                validator.is_valid(&serde_json::json!(case)),
                "{case:?}"
            );
        }
    }

    #[tokio::test]
    async fn delivery_refuses_what_creation_would_and_connects_to_the_checked_address() {
        let url = Url::parse("http://localhost.:9/").unwrap();
        assert!(resolve(&url, STRICT).await.is_err());
        let url = Url::parse("http://2130706433:9/").unwrap();
        assert!(resolve(&url, STRICT).await.is_err());
        let allowed = Rules {
            allow_private: true,
            ..STRICT
        };
        let addresses = resolve(&url, allowed).await.unwrap();
        assert_eq!(addresses, vec!["127.0.0.1:9".parse().unwrap()]);
    }
}
