//! Client addresses: which proxies are believed (`server.trusted_proxies`), who the client is
//! behind them, and the key that per-client limits count under.
//!
//! The rule is the one nginx's `real_ip_recursive` and Caddy's `trusted_proxies` apply: only a
//! peer inside a trusted range is believed about `X-Forwarded-For`, and the client is the
//! right-most entry that is not itself a trusted proxy. Entries to its left were written by the
//! client and prove nothing. IPv6 clients are counted per /64, the smallest block a home or VPS
//! gets: counting per address would let one host rotate through 2^64 of them.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use dashmap::DashMap;
use hyper::HeaderMap;
use serde::Deserialize;

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Cidr, String> {
        text.parse()
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an address range like 10.0.0.0/8 or ::1/128");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
        };
        Ok(Cidr {
            network: mask(canonical(address), prefix),
            prefix,
        })
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports) as the IPv4
/// address it is, so that ranges and limits see one client, not two.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

/// The key per-client limits count under: the IPv4 address, or the IPv6 address's /64.
pub fn client_key(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Whether `peer` is one of the proxies in front of us.
pub fn is_trusted(trusted: &[Cidr], peer: IpAddr) -> bool {
    trusted.iter().any(|range| range.contains(peer))
}

/// The client's address: the peer itself, unless the peer is a trusted proxy; then the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy. An entry that is not an address (or no
/// header at all) leaves the last trusted hop as the client, so a garbled header can never name
/// an address of the sender's choosing.
pub fn client_address(trusted: &[Cidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let mut client = peer;
    // Several `X-Forwarded-For` fields are one list, in order (RFC 9110, section 5.3).
    let fields: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    for entry in fields.iter().rev().flat_map(|field| field.rsplit(',')) {
        let Some(address) = parse_forwarded_entry(entry) else {
            return client;
        };
        client = address;
        if !is_trusted(trusted, address) {
            return client;
        }
    }
    client
}

/// What each client key (`client_key`) holds open now: connections (`server`), or requests in
/// flight through a trusted proxy (`app`). Entries exist only while something is open.
#[derive(Default)]
pub struct ClientCounts {
    open: DashMap<IpAddr, usize>,
}

/// One open connection or request of a client; dropping it gives the place back.
pub struct ClientSlot {
    counts: Arc<ClientCounts>,
    key: IpAddr,
}

impl ClientCounts {
    /// A place for `client`, unless its key already holds `max`.
    pub fn open(self: &Arc<Self>, client: IpAddr, max: usize) -> Option<ClientSlot> {
        let key = client_key(client);
        let mut open = self.open.entry(key).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            key,
        })
    }

    /// Keys holding anything (for tests).
    pub fn tracked(&self) -> usize {
        self.open.len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.counts.open.remove_if_mut(&self.key, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`).
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse() {
        return Some(canonical(address));
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let (host, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ranges(texts: &[&str]) -> Vec<Cidr> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn ranges_parse_and_contain() {
        let private = "10.0.0.0/8".parse::<Cidr>().unwrap();
        assert!(private.contains(ip("10.255.1.2")));
        assert!(!private.contains(ip("11.0.0.1")));
        assert!(private.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!private.contains(ip("::1")));
        let one = "192.0.2.7".parse::<Cidr>().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all = "0.0.0.0/0".parse::<Cidr>().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let v6 = "fd00::/8".parse::<Cidr>().unwrap();
        assert!(v6.contains(ip("fd12:3456::1")) && !v6.contains(ip("fe80::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("2001:db8::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0/8",
            "localhost",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let headers = forwarded(&["198.51.100.7"]);
        assert_eq!(
            client_address(&[], ip("203.0.113.9"), &headers),
            ip("203.0.113.9")
        );
        let trusted = ranges(&["127.0.0.1/32"]);
        assert_eq!(
            client_address(&trusted, ip("203.0.113.9"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        // The client prepended a lie; the proxies appended what they saw.
        let headers = forwarded(&["1.2.3.4, 198.51.100.7, 10.0.0.5"]);
        assert_eq!(client_address(&trusted, peer, &headers), ip("198.51.100.7"));
        // Split over two fields, with ports and brackets.
        let headers = forwarded(&["1.2.3.4", "[2001:db8::9]:443, 10.0.0.5:80"]);
        assert_eq!(client_address(&trusted, peer, &headers), ip("2001:db8::9"));
        // No header: the proxy itself. Garbage: the last trusted hop, never the garbage's choice.
        assert_eq!(client_address(&trusted, peer, &HeaderMap::new()), peer);
        let headers = forwarded(&["1.2.3.4, unknown, 10.0.0.5"]);
        assert_eq!(client_address(&trusted, peer, &headers), ip("10.0.0.5"));
        // Every entry trusted: the left-most one.
        let headers = forwarded(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(client_address(&trusted, peer, &headers), ip("10.0.0.9"));
    }

    #[test]
    fn client_counts_cap_each_key_and_forget_closed_ones() {
        let counts = Arc::new(ClientCounts::default());
        let first: Vec<ClientSlot> = (0..3)
            .map(|_| counts.open(ip("2001:db8::1"), 3).unwrap())
            .collect();
        assert!(counts.open(ip("2001:db8::2"), 3).is_none(), "same /64");
        let other = counts.open(ip("192.0.2.1"), 3).unwrap();
        assert_eq!(counts.tracked(), 2);
        drop(first);
        assert_eq!(counts.tracked(), 1, "a key with nothing open is forgotten");
        assert!(counts.open(ip("2001:db8::2"), 3).is_some());
        drop(other);
    }

    #[test]
    fn ipv6_clients_are_counted_per_slash_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
