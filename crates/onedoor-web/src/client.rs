//! Who a request comes from, for the per-address limits (sign-in delays, connections).
//!
//! Addresses a client can change cheaply count as one: the whole loopback range (127.0.0.0/8
//! and ::1: anyone on the machine can bind any of them) and an IPv6 /64 (the smallest block an
//! ISP hands out). `X-Forwarded-For` is read only when the connection comes from a configured
//! trusted proxy, and then from the right, skipping further trusted hops: everything left of
//! the first untrusted address could have been written by the client itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// A block of addresses, `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not an address block such as 10.0.0.0/8 or fd00::/8")]
pub struct BadCidr {
    text: String,
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(text: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr {
            text: text.to_owned(),
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The first `prefix` bits of `bits` (of width `width`), the rest zero.
fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - prefix);
    bits & keep
}

fn bits(address: IpAddr) -> (u128, u8) {
    match address {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        let (net, width) = bits(self.network);
        let (addr, addr_width) = bits(address);
        width == addr_width && masked(net, self.prefix, width) == masked(addr, self.prefix, width)
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket's peer) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The client an address stands for: loopback as one, IPv6 by its /64.
pub fn client_key(address: IpAddr) -> IpAddr {
    match canonical(address) {
        address if address.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) => {
            let network = masked(u128::from(v6), 64, 128);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty: the header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(address))
    }

    /// The client of a request from `peer`: the peer itself unless it is a trusted proxy; then
    /// the right-most `X-Forwarded-For` address that is not a trusted proxy (a malformed entry
    /// stops the walk there: the proxy that wrote it is the client we can name).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return client_key(peer);
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !self.trusts(address) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client_key(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn loopback_is_one_client_and_ipv6_counts_by_its_64() {
        assert_eq!(client_key(ip("127.0.0.2")), client_key(ip("127.9.8.7")));
        assert_eq!(client_key(ip("::1")), client_key(ip("127.0.0.1")));
        assert_eq!(
            client_key(ip("::ffff:127.0.0.5")),
            client_key(ip("127.0.0.1"))
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_ne!(client_key(ip("10.0.0.1")), client_key(ip("10.0.0.2")));
    }

    #[test]
    fn blocks_parse_and_contain() {
        let block: Cidr = "10.1.0.0/16".parse().expect("valid");
        assert!(block.contains(ip("10.1.200.3")));
        assert!(block.contains(ip("::ffff:10.1.0.1")));
        assert!(!block.contains(ip("10.2.0.1")));
        let one: Cidr = "192.0.2.7".parse().expect("valid");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all: Cidr = "::/0".parse().expect("valid");
        assert!(all.contains(ip("2001:db8::1")) && !all.contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_and_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies(vec![
            "10.0.0.0/8".parse().expect("valid"),
            "127.0.0.1".parse().expect("valid"),
        ]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.5".parse().expect("header"),
        );
        // The client wrote 6.6.6.6 itself; the first untrusted hop from the right is it.
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("203.0.113.9"));
        // Not from a trusted proxy: the header is the client's own words.
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.7"), &HeaderMap::new()),
            ip("10.0.0.7")
        );
        headers.insert("x-forwarded-for", "junk, 10.0.0.5".parse().expect("header"));
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("10.0.0.5"));
        // Without trusted proxies the header is never read.
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.3"), &headers),
            client_key(ip("127.0.0.1"))
        );
    }
}
