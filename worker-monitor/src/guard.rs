//! Server-side request forgery guard: addresses a probe must never reach.
//!
//! The check is made on the addresses a host name resolves to, by the probe's own resolution,
//! so the address connected to is always one that passed (no window for DNS rebinding); on IP
//! literals, which skip the resolver; and on every redirect hop (see `probe.rs`). Cloud metadata,
//! link-local and unspecified addresses (`0.0.0.0`, `::`, which reach the local host) are always
//! denied; more ranges come from configuration. An IPv4 address carried inside an IPv6 one —
//! mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16` —
//! is checked too, so no range can be reached through another spelling.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network, `address/prefix` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// Whether `ip` itself is in this network (see [`DenyList::denies`] for embedded IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR (like 10.0.0.0/8)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Denied whatever the configuration: cloud metadata services and link-local networks.
pub const ALWAYS_DENIED: [Cidr; 3] = [
    Cidr::v4(169, 254, 0, 0, 16),
    Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    Cidr::v6([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254], 128),
];

/// The loopback ranges `--deny-loopback` adds.
pub const LOOPBACK: [Cidr; 2] = [
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
];

/// The private ranges `--deny-private` adds.
pub const PRIVATE: [Cidr; 5] = [
    Cidr::v4(10, 0, 0, 0, 8),
    Cidr::v4(172, 16, 0, 0, 12),
    Cidr::v4(192, 168, 0, 0, 16),
    Cidr::v4(100, 64, 0, 0, 10),
    Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
];

/// The addresses no probe may connect to.
#[derive(Debug, Clone)]
pub struct DenyList {
    cidrs: Vec<Cidr>,
}

impl DenyList {
    pub fn new(extra: &[Cidr], deny_private: bool, deny_loopback: bool) -> DenyList {
        let mut cidrs = ALWAYS_DENIED.to_vec();
        if deny_private {
            cidrs.extend(PRIVATE);
        }
        if deny_loopback {
            cidrs.extend(LOOPBACK);
        }
        cidrs.extend_from_slice(extra);
        DenyList { cidrs }
    }

    /// Whether a probe must not connect to `ip`: unspecified, or in a denied range — itself or
    /// the IPv4 address it carries.
    pub fn denies(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        std::iter::once(ip)
            .chain(embedded)
            .any(|ip| ip.is_unspecified() || self.cidrs.iter().any(|c| c.contains(ip)))
    }
}

/// The IPv4 address an IPv6 address carries, in any of the ways that reach it: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`, not `::` or `::1`), NAT64 (`64:ff9b::a.b.c.d`,
/// RFC 6052) and 6to4 (`2002:AABB:CCDD::/48`, RFC 3056).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if ((u32::from(hi) << 16) | u32::from(lo)) > 1 => {
            Some(low(hi, lo))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Why a host has no address a probe may connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("name did not resolve: {0}")]
    Dns(String),
    #[error("address denied by the probe deny-list: {0}")]
    Denied(String),
}

impl DenyList {
    /// The addresses of `host` (a name; IP literals do not come here) a probe may connect to,
    /// resolved by the system's resolver (getaddrinfo) with denied addresses removed. The
    /// probe connects only to these, so no DNS answer given later can change where it goes.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Unreachable> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Unreachable::Dns(format!("{host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Unreachable::Dns(format!("{host}: no addresses")));
        }
        let allowed: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| !self.denies(a.ip()))
            .collect();
        if allowed.is_empty() {
            let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            return Err(Unreachable::Denied(format!(
                "{host} resolves to {}",
                ips.join(", ")
            )));
        }
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_always_denied() {
        let deny = DenyList::new(&[], false, false);
        // Only checked against the list: nothing here sends a packet.
        for denied in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(deny.denies(ip(denied)), "{denied}");
        }
        for allowed in ["127.0.0.1", "::1", "10.1.2.3", "fd00:ec2::253", "8.8.8.8"] {
            assert!(!deny.denies(ip(allowed)), "{allowed}");
        }
    }

    /// The spellings that reach a denied address without being it: the unspecified addresses
    /// (the local host) and IPv4 inside IPv6. Only checked against the list: no packet is sent.
    #[test]
    fn unspecified_and_ipv4_inside_ipv6_are_denied() {
        let deny = DenyList::new(&[], false, false);
        for denied in [
            "0.0.0.0",
            "::",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "::169.254.169.254",
        ] {
            assert!(deny.denies(ip(denied)), "{denied}");
        }
        // Private ranges and loopback reached the same ways, when denied.
        let strict = DenyList::new(&[], true, true);
        for denied in [
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::10.0.0.1",
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(strict.denies(ip(denied)), "{denied}");
        }
        // Neither switch on: loopback stays reachable (the tests' fixtures live there), as do
        // public addresses in any spelling.
        for allowed in [
            "127.0.0.1",
            "::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:db8::1",
        ] {
            assert!(!deny.denies(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn configured_and_private_ranges_are_denied() {
        let deny = DenyList::new(
            &[
                "127.0.0.2".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            true,
            false,
        );
        for denied in [
            "127.0.0.2",
            "2001:db8::5",
            "10.0.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "fd12::1",
        ] {
            assert!(deny.denies(ip(denied)), "{denied}");
        }
        for allowed in ["127.0.0.1", "127.0.0.3", "172.32.0.1", "2001:db9::1"] {
            assert!(!deny.denies(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn cidr_parse_errors_are_clear() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0..=32")
        );
        assert!(
            "example.com"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an IP")
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
    }
}
