//! Which IP a request comes from (DESIGN.md rule 4): the TCP peer, or — only when the peer is
//! a trusted proxy — the right-most `X-Forwarded-For` entry that is not itself trusted.
//! Never the left-most entry, which any client can write.

use std::fmt;
use std::net::IpAddr;

/// The network a client is counted by: its IPv4 address, or the /64 of an IPv6 one (a
/// single IPv6 client commonly has a whole /64 to pick addresses from). An IPv4-mapped
/// IPv6 address counts as its IPv4 address.
pub fn client_net(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
}

/// An IP network in CIDR form (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IP address or network (expected e.g. 10.0.0.0/8 or ::1)")]
pub struct IpNetError(pub String);

impl IpNet {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(text: &str) -> Result<Self, IpNetError> {
        let err = || IpNetError(text.to_owned());
        let (addr_text, prefix_text) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies inside this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
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

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Whether `ip` is a loopback, private (RFC 1918, unique local) or link-local address: a
/// peer a reverse proxy on the same host or network would have.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// The client's IP for a request that arrived from `peer` with these `X-Forwarded-For`
/// header values (in order of appearance).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            // A trusted proxy appended this entry for the next hop in: keep walking left.
            Some(ip) if trusted(ip) => {}
            Some(ip) => return ip,
            // Garbage means the chain cannot be trusted beyond this point.
            None => return peer,
        }
    }
    peer
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port or IPv6 brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    hop.strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_told_apart() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.9",
            "172.16.5.5",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "81.2.69.142", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn networks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(IpNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
    }

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let trusted = [
            IpNet::parse("127.0.0.1").unwrap(),
            IpNet::parse("10.0.0.0/8").unwrap(),
        ];
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["8.8.8.8"], &trusted),
            ip("203.0.113.9")
        );
        // Trusted peer: right-most untrusted entry, not the forgeable left-most one.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["1.1.1.1, 8.8.8.8, 10.0.0.5"], &trusted),
            ip("8.8.8.8")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["1.1.1.1", "8.8.4.4"], &trusted),
            ip("8.8.4.4")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["<script>"], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), [], &trusted), ip("127.0.0.1"));
    }
}
