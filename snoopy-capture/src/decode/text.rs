//! Text protocols over TCP as tcpdump 4.99 prints them (`txtproto_print` in util-print.c):
//! HTTP on ports 80 and 8080. Which port tcpdump hands a segment to is decided in
//! [`tcp_application`], in the order of tcpdump's `tcp_print`.

use std::fmt::Write;

/// What tcpdump prints after a TCP segment's `length N`, by its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TcpApplication {
    /// No application printer: the line ends with the length.
    None,
    /// HTTP (80, 8080): `: HTTP: GET / HTTP/1.1`.
    Http,
    /// DNS over TCP (53): ` 4660+ A? example.com. (29)`.
    Dns,
    /// A printer podtracer does not reproduce (SSH, SMTP, FTP, BGP, Redis, SMB, telnet…).
    Unsupported,
}

/// The ports tcpdump's `tcp_print` tests before HTTP's, each for a printer of its own:
/// telnet, SMTP, whois, BGP, PPTP, Redis, SSH, NetBIOS session, SMB, BEEP, OpenFlow (old
/// and IANA), FTP. A segment to or from one of them is never printed as HTTP or DNS.
const CLAIMED_BEFORE_HTTP: [u16; 13] = [
    23, 25, 43, 179, 1723, 6379, 22, 139, 445, 10288, 6633, 6653, 21,
];

/// RTSP's ports, tested after HTTP's and before DNS's.
const RTSP: [u16; 2] = [554, 8554];

/// Which printer tcpdump gives a TCP segment between these ports.
pub(super) fn tcp_application(src: u16, dst: u16) -> TcpApplication {
    let either = |ports: &[u16]| ports.contains(&src) || ports.contains(&dst);
    if either(&CLAIMED_BEFORE_HTTP) {
        TcpApplication::Unsupported
    } else if either(&[80, 8080]) {
        TcpApplication::Http
    } else if either(&RTSP) {
        TcpApplication::Unsupported
    } else if either(&[53]) {
        TcpApplication::Dns
    } else {
        TcpApplication::None
    }
}

/// tcpdump's HTTP request methods (`httpcmds` in print-http.c), compared ignoring case.
const HTTP_METHODS: &[&str] = &[
    "GET",
    "PUT",
    "COPY",
    "HEAD",
    "LOCK",
    "MOVE",
    "POLL",
    "POST",
    "BCOPY",
    "BMOVE",
    "MKCOL",
    "TRACE",
    "LABEL",
    "MERGE",
    "DELETE",
    "SEARCH",
    "UNLOCK",
    "REPORT",
    "UPDATE",
    "NOTIFY",
    "BDELETE",
    "CONNECT",
    "OPTIONS",
    "CHECKIN",
    "PROPFIND",
    "CHECKOUT",
    "SUBSCRIBE",
    "PROPPATCH",
    "UNCHECKOUT",
    "UNSUBSCRIBE",
    "MKWORKSPACE",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

/// tcpdump's token buffer holds 128 bytes with the final NUL: longer tokens are no token.
const MAX_TOKEN: usize = 127;

/// The payload of a segment: the captured bytes and the length on the wire (reading past
/// the captured bytes is tcpdump's truncation, ` [|http]`).
struct Payload<'a> {
    captured: &'a [u8],
    len: usize,
}

/// A read past the captured bytes.
struct Truncated;

impl Payload<'_> {
    fn at(&self, i: usize) -> Result<u8, Truncated> {
        self.captured.get(i).copied().ok_or(Truncated)
    }

    /// tcpdump's `fetch_token`: the token at `idx` (printable ASCII up to a space, tab, CR
    /// or LF) and where the next one starts (blanks skipped), or None.
    fn token(&self, mut idx: usize) -> Option<(&[u8], usize)> {
        let start = idx;
        while idx < self.len {
            let c = *self.captured.get(idx)?;
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            if !(0x20..0x7f).contains(&c) || idx - start + 1 > MAX_TOKEN {
                return None;
            }
            idx += 1;
        }
        if idx == start {
            return None;
        }
        let token = &self.captured[start..idx];
        while idx < self.len {
            match self.captured.get(idx) {
                Some(b' ' | b'\t') => idx += 1,
                _ => break,
            }
        }
        Some((token, idx))
    }

    /// tcpdump's `print_txt_line`: the line at `idx` after `prefix` and where the next one
    /// starts; Ok(None) when the bytes are not a text line (nothing printed) or the line
    /// runs to the end without a line ending (printed, then ` [|http]`).
    fn line(&self, out: &mut String, prefix: &str, idx: usize) -> Result<Option<usize>, Truncated> {
        let mut i = idx;
        while i < self.len {
            let c = self.at(i)?;
            let end = match c {
                b'\n' => Some((i, i + 1)),
                b'\r' if i + 1 >= self.len => return Ok(None),
                b'\r' if self.at(i + 1)? == b'\n' => Some((i, i + 2)),
                b'\r' => return Ok(None),
                b'\t' | 0x20..=0x7e => None,
                _ => return Ok(None),
            };
            if let Some((stop, next)) = end {
                out.push_str(prefix);
                out.push_str(&String::from_utf8_lossy(&self.captured[idx..stop]));
                return Ok(Some(next));
            }
            i += 1;
        }
        out.push_str(prefix);
        out.push_str(&String::from_utf8_lossy(&self.captured[idx..i]));
        out.push_str(" [|http]");
        Ok(None)
    }
}

/// Writes what tcpdump's `http_print` writes for a segment's payload (after the `: ` that
/// follows `length N`): `HTTP` and, for a request or response line, `: ` and that line;
/// with `verbose`, `, length: N` and every text line on its own tab-indented line.
/// `captured` is the payload as captured, `len` its length on the wire.
pub(super) fn http(out: &mut String, captured: &[u8], len: u32, verbose: bool) {
    let payload = Payload {
        captured,
        len: len as usize,
    };
    let looks_like_http = match payload.token(0) {
        None => false,
        Some((first, next)) => {
            HTTP_METHODS
                .iter()
                .any(|m| m.as_bytes().eq_ignore_ascii_case(first))
                // A response: the second token is a three-digit status code.
                || payload.token(next).is_some_and(|(code, _)| {
                    code.len() == 3 && code.iter().all(u8::is_ascii_digit)
                })
        }
    };
    out.push_str("HTTP");
    if !looks_like_http {
        return;
    }
    let printed = if verbose {
        let _ = write!(out, ", length: {len}");
        let mut idx = 0;
        loop {
            if idx >= payload.len {
                break Ok(());
            }
            match payload.line(out, "\n\t", idx) {
                Ok(Some(next)) => idx = next,
                Ok(None) => break Ok(()),
                Err(t) => break Err(t),
            }
        }
    } else {
        payload.line(out, ": ", 0).map(|_| ())
    };
    if printed.is_err() {
        out.push_str(" [|http]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(payload: &[u8], verbose: bool) -> String {
        let mut out = String::new();
        http(&mut out, payload, payload.len() as u32, verbose);
        out
    }

    #[test]
    fn requests_and_responses_print_their_first_line() {
        assert_eq!(
            line(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false),
            "HTTP: GET / HTTP/1.1"
        );
        assert_eq!(
            line(b"HTTP/1.1 404 Not Found\r\n", false),
            "HTTP: HTTP/1.1 404 Not Found"
        );
        assert_eq!(line(b"get /x\n", false), "HTTP: get /x");
        assert_eq!(line(b"hello world\r\n", false), "HTTP");
        assert_eq!(
            line(b"GET /no-newline", false),
            "HTTP: GET /no-newline [|http]"
        );
        assert_eq!(line(b"GET /a\rb\r\n", false), "HTTP");
    }

    #[test]
    fn verbose_prints_every_text_line() {
        assert_eq!(
            line(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", true),
            "HTTP, length: 31\n\tGET / HTTP/1.1\n\tHost: x\n\t\n\tbody [|http]"
        );
    }

    #[test]
    fn ports_claimed_by_other_printers_come_first() {
        assert_eq!(tcp_application(40000, 80), TcpApplication::Http);
        assert_eq!(tcp_application(8080, 40000), TcpApplication::Http);
        assert_eq!(tcp_application(22, 80), TcpApplication::Unsupported);
        assert_eq!(tcp_application(80, 53), TcpApplication::Http);
        assert_eq!(tcp_application(40000, 53), TcpApplication::Dns);
        assert_eq!(tcp_application(40000, 5201), TcpApplication::None);
    }
}
