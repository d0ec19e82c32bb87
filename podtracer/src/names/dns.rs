//! A minimal DNS client: one A or AAAA question over UDP, the answer's addresses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
}

impl QueryType {
    fn code(self) -> u16 {
        match self {
            QueryType::A => 1,
            QueryType::Aaaa => 28,
        }
    }
}

/// What a nameserver said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NOERROR with addresses of the type asked.
    Addresses(Vec<IpAddr>),
    /// NOERROR without such addresses.
    Empty,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// Any other response code.
    Other(u8),
}

/// Why a query got no response.
#[derive(Debug)]
pub enum QueryError {
    /// No response before the deadline.
    Timeout,
    /// The nameserver's port is closed (ICMP port unreachable).
    PortClosed,
    /// The nameserver cannot be reached.
    Unreachable,
    /// Another socket error.
    Io(io::Error),
    /// A response that is not a valid answer to the question.
    Malformed(&'static str),
}

/// Builds a query for `name` with id `id` and recursion desired.
pub fn build_query(id: u16, name: &str, qtype: QueryType) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.code().to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

/// Skips a (possibly compressed) name at `pos`; returns the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => return Some(pos + 2),
            l if l & 0xc0 == 0 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

fn be16(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// Parses a response to query `id`.
pub fn parse_response(msg: &[u8], id: u16, qtype: QueryType) -> Result<Answer, &'static str> {
    if msg.len() < 12 {
        return Err("response shorter than a DNS header");
    }
    if be16(msg, 0) != Some(id) {
        return Err("response to another query");
    }
    if msg[2] & 0x80 == 0 {
        return Err("not a response");
    }
    if msg[2] & 0x02 != 0 {
        // Over UDP the rest would need TCP; a cut answer is not an answer.
        return Err("truncated response (TC bit set): the answer did not fit in a datagram");
    }
    match msg[3] & 0x0f {
        0 => {}
        2 => return Ok(Answer::ServFail),
        3 => return Ok(Answer::NxDomain),
        5 => return Ok(Answer::Refused),
        code => return Ok(Answer::Other(code)),
    }
    let questions = be16(msg, 4).unwrap_or(0);
    let answers = be16(msg, 6).unwrap_or(0);
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(msg, pos).ok_or("bad question name")? + 4;
    }
    let mut found = Vec::new();
    for _ in 0..answers {
        pos = skip_name(msg, pos).ok_or("bad answer name")?;
        let rtype = be16(msg, pos).ok_or("answer cut short")?;
        let rdlen = usize::from(be16(msg, pos + 8).ok_or("answer cut short")?);
        let data = msg
            .get(pos + 10..pos + 10 + rdlen)
            .ok_or("answer data cut short")?;
        // CNAMEs are followed by the server in the same answer section; only addresses matter.
        match (rtype, qtype) {
            (1, QueryType::A) => {
                let octets: [u8; 4] = data.try_into().map_err(|_| "A record not 4 bytes long")?;
                found.push(IpAddr::V4(Ipv4Addr::from(octets)));
            }
            (28, QueryType::Aaaa) => {
                let octets: [u8; 16] = data
                    .try_into()
                    .map_err(|_| "AAAA record not 16 bytes long")?;
                found.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {}
        }
        pos += 10 + rdlen;
    }
    Ok(if found.is_empty() {
        Answer::Empty
    } else {
        Answer::Addresses(found)
    })
}

/// Sends one query to `server` and waits for its answer until `deadline`. Must run inside
/// the target namespace (the socket is created here).
pub fn query(
    server: SocketAddr,
    name: &str,
    qtype: QueryType,
    deadline: Instant,
) -> Result<Answer, QueryError> {
    let id = query_id();
    let message = build_query(id, name, qtype).ok_or(QueryError::Malformed("invalid name"))?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).map_err(QueryError::Io)?;
    // Connected, so an ICMP port unreachable comes back as ECONNREFUSED.
    socket.connect(server).map_err(classify)?;
    socket.send(&message).map_err(classify)?;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout);
        }
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(QueryError::Io)?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => return Err(classify(e)),
        };
        match parse_response(&buf[..n], id, qtype) {
            Ok(answer) => return Ok(answer),
            // A stray or late datagram: keep waiting for ours.
            Err("response to another query") => continue,
            Err(why) => return Err(QueryError::Malformed(why)),
        }
    }
}

fn classify(e: io::Error) -> QueryError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => QueryError::Timeout,
        io::ErrorKind::ConnectionRefused => QueryError::PortClosed,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            QueryError::Unreachable
        }
        _ => QueryError::Io(e),
    }
}

/// A query id that differs between queries (not a security measure: probes are not a
/// resolver that caches).
fn query_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(0);
    seed ^ NEXT.fetch_add(0x9e37, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: u16, rcode: u8, answers: &[[u8; 4]]) -> Vec<u8> {
        let mut m = build_query(id, "web.shop", QueryType::A).unwrap();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[7] = answers.len() as u8;
        for a in answers {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn builds_the_wire_format() {
        let q = build_query(0x1234, "example.com.", QueryType::Aaaa).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x07example\x03com\x00\x00\x1c\x00\x01");
        assert!(build_query(1, "a..b", QueryType::A).is_none());
    }

    #[test]
    fn parses_answers_and_errors() {
        let ok = response(7, 0, &[[10, 0, 0, 1], [10, 0, 0, 2]]);
        assert_eq!(
            parse_response(&ok, 7, QueryType::A),
            Ok(Answer::Addresses(vec![
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]))
        );
        assert_eq!(
            parse_response(&response(7, 3, &[]), 7, QueryType::A),
            Ok(Answer::NxDomain)
        );
        assert_eq!(
            parse_response(&response(7, 0, &[]), 7, QueryType::A),
            Ok(Answer::Empty)
        );
        assert!(parse_response(&ok, 8, QueryType::A).is_err());
        assert!(parse_response(&ok[..20], 7, QueryType::A).is_err());
        // Cut inside the answer data.
        assert!(parse_response(&ok[..ok.len() - 2], 7, QueryType::A).is_err());
    }

    #[test]
    fn malformed_answers_are_rejected_with_a_reason() {
        let ok = response(9, 0, &[[10, 0, 0, 1]]);
        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut m = ok.clone();
            edit(&mut m);
            parse_response(&m, 9, QueryType::A).unwrap_err()
        };
        assert_eq!(
            bad(&|m| m.truncate(11)),
            "response shorter than a DNS header"
        );
        assert_eq!(bad(&|m| m[2] &= 0x7f), "not a response");
        assert!(bad(&|m| m[2] |= 0x02).starts_with("truncated response"));
        // An A record whose length says 5 bytes (and has them).
        let long_a = |m: &mut Vec<u8>| {
            let len = m.len();
            m[len - 5] = 5;
            m.push(0);
        };
        assert_eq!(bad(&long_a), "A record not 4 bytes long");
        // More answers announced than present.
        assert_eq!(bad(&|m| m[7] = 2), "bad answer name");
        // A label running past the end of the question.
        assert_eq!(bad(&|m| m[12] = 60), "bad question name");
        // A reserved label type (0b01) in the answer name.
        let len = response(9, 0, &[]).len();
        assert_eq!(bad(&|m| m[len] = 0x40), "bad answer name");
        // An AAAA record of the wrong length when AAAA was asked.
        let mut six = build_query(3, "web.shop", QueryType::Aaaa).unwrap();
        six[2] = 0x81;
        six[3] = 0x80;
        six[7] = 1;
        six.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        assert_eq!(
            parse_response(&six, 3, QueryType::Aaaa),
            Err("AAAA record not 16 bytes long")
        );
    }
}
