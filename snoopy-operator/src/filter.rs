//! Filter validation before any Job exists.
//!
//! The expression is compiled with the very compiler podtracer runs in the Jobs
//! ([`snoopy_filter`], libpcap's semantics), so the operator's verdict cannot differ from
//! the Job's. That crate is pure (no capture code, no unsafe) and stands alone, so the
//! operator links it and not the capture code for this.

use snoopy_filter::{LinkType, Mode, compile};

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
    compile(
        expr,
        LinkType::Ethernet,
        Mode::Live,
        snoopy_job::DEFAULT_SNAPLEN,
    )
    .map(drop)
    .map_err(|e| {
        InvalidFilter(match e.pointer(expr) {
            Some(caret) => format!("{}\n{caret}", e.message),
            None => e.message.clone(),
        })
    })
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
        ] {
            let err = check(expr).unwrap_err();
            assert!(!err.0.is_empty(), "{expr}");
        }
    }
}
