//! Filter validation before any Job exists.
//!
//! The expression is compiled with the very compiler podtracer runs in the Jobs
//! ([`snoopy_filter`], libpcap's semantics), so the operator's verdict cannot differ from
//! the Job's. That crate is pure (no capture code, no unsafe) and stands alone, so the
//! operator links it and not the capture code for this.
//!
//! Names (`host db`, `ether host gw`, `net corp`) mean what they mean *to the pod*, so
//! they are resolved on the node, by podtracer, through the pod's `/etc/hosts` and
//! nameservers; the operator cannot resolve them and does not try. It checks everything
//! else: the expression is compiled with stand-in answers for every name, and accepted
//! when it compiles for one of them (IPv4 only, IPv6 only, both), since which families a
//! name has is only known on the node (`ip6 host db` is valid if `db` has an IPv6
//! address). A name that does not resolve fails the Job, with podtracer's error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use snoopy_filter::{ErrorKind, LinkType, LookupError, Mode, Resolve, compile_with};

/// Answers every name with documentation addresses (RFC 5737, RFC 3849): a stand-in for
/// the node's lookup, with the families a name might have there.
struct StandIn {
    v4: bool,
    v6: bool,
}

impl Resolve for StandIn {
    fn host(&self, _name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let v4 = self.v4.then_some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let v6 = self
            .v6
            .then_some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
        Ok(v4.into_iter().chain(v6).collect())
    }

    fn ether(&self, _name: &str) -> Result<Option<[u8; 6]>, LookupError> {
        Ok(Some([0x02, 0, 0, 0, 0, 1]))
    }

    fn network(&self, _name: &str) -> Result<Option<u32>, LookupError> {
        Ok(Some(0xc000_0200)) // 192.0.2.0
    }
}

/// Why a filter expression is refused: the compiler's message, with a caret line under
/// the place when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFilter(pub String);

/// Checks a tcpdump filter expression as podtracer will compile it for a live pod
/// interface (with its default snapshot length); the error says what is wrong and where.
pub fn check(expr: &str) -> Result<(), InvalidFilter> {
    if expr.trim().is_empty() {
        return Ok(()); // An empty filter accepts everything, as in tcpdump.
    }
    let compile = |names: &StandIn| {
        compile_with(
            expr,
            LinkType::Ethernet,
            Mode::Live,
            snoopy_job::DEFAULT_SNAPLEN,
            names,
        )
    };
    // Both families first: its error is the one to show when none compiles.
    let e = match compile(&StandIn { v4: true, v6: true }) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // Only a family mismatch (`arp host NAME` is valid for a name without IPv6 addresses)
    // depends on the answer; syntax errors and limits do not, and are not tried again.
    let one_family = [
        StandIn {
            v4: true,
            v6: false,
        },
        StandIn {
            v4: false,
            v6: true,
        },
    ];
    if e.kind == ErrorKind::Invalid && one_family.iter().any(|names| compile(names).is_ok()) {
        return Ok(());
    }
    Err(InvalidFilter(match e.pointer(expr) {
        Some(caret) => format!("{}\n{caret}", e.message),
        None => e.message.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_what_tcpdump_accepts() {
        for expr in [
            "",
            "icmp",
            "tcp port 80 or 443",
            "host 10.0.0.2 and not port 22",
            "vlan 5 and udp",
            // Names: resolved on the node, in the pod's view.
            "host db and tcp port 5432",
            "ip6 host web or ip host cache",
            "arp host gateway-v4-only",
            "ether host gw1 or net corp",
        ] {
            assert_eq!(check(expr), Ok(()), "{expr}");
        }
    }

    #[test]
    fn rejects_what_tcpdump_rejects_with_a_reason() {
        for expr in [
            "tcp port",
            "host and",
            "(tcp",
            "port 99999",
            "ip proto nonsense",
            // A name cannot fix what is wrong around it.
            "tcp host db",
            "host db and",
            "gateway router",
        ] {
            let err = check(expr).unwrap_err();
            assert!(!err.0.is_empty(), "{expr}");
        }
    }
}
