//! A minimal HTTP/1.1 client: one GET, the status line and the time to its first byte.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 by default).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://HOST[:PORT][/PATH]`; `https` is refused (no TLS here).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{text}: https is not supported (podtracer has no TLS); check the port with --tcp HOST:443"
                ));
            }
            Some((scheme, _)) => return Err(format!("{text}: unsupported scheme {scheme:?}")),
            None => text,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority, 80)?;
        Ok(Url {
            host,
            port,
            path: path.to_string(),
        })
    }

    /// The `Host` header value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Splits `HOST:PORT` / `[V6]:PORT` / `HOST` (with `default` port).
pub fn split_host_port(text: &str, default: u16) -> Result<(String, u16), String> {
    let bad = || format!("{text:?}: expected HOST:PORT");
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default,
            None => return Err(bad()),
        };
        return Ok((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Ok((host.to_string(), port.parse().map_err(|_| bad())?))
        }
        _ if !text.is_empty() && !text.contains(':') => Ok((text.to_string(), default)),
        _ => Err(bad()),
    }
}

/// The response's first line, and when its first byte came.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// From the start of the request (after connecting) to the first response byte.
    pub first_byte: Duration,
}

/// Why a GET failed after connecting.
#[derive(Debug)]
pub enum HttpError {
    /// No (complete) status line before the deadline.
    Timeout,
    /// The server closed or reset the connection before a status line.
    Closed,
    /// Not an HTTP/1.x status line.
    BadResponse,
    /// Another socket error.
    Io(io::Error),
}

/// Sends a GET for `url` on a connected stream and reads the status line.
pub fn get(stream: &mut TcpStream, url: &Url, deadline: Instant) -> Result<Response, HttpError> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: podtracer-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header()
    );
    let sent = Instant::now();
    stream.write_all(request.as_bytes()).map_err(map_io)?;
    let mut head = Vec::with_capacity(256);
    let mut first_byte = None;
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(HttpError::Io)?;
        let n = stream.read(&mut buf).map_err(map_io)?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        first_byte.get_or_insert_with(|| sent.elapsed());
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            return Err(HttpError::BadResponse);
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let line = std::str::from_utf8(line).map_err(|_| HttpError::BadResponse)?;
    let mut words = line.split_whitespace();
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(HttpError::BadResponse);
    }
    let status = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::BadResponse)?;
    Ok(Response {
        status,
        first_byte: first_byte.expect("a byte was read"),
    })
}

fn map_io(e: io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => HttpError::Closed,
        _ => HttpError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            Url::parse("http://web.shop:8080/healthz?x=1").unwrap(),
            Url {
                host: "web.shop".into(),
                port: 8080,
                path: "/healthz?x=1".into()
            }
        );
        let v6 = Url::parse("http://[fd00::1]/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("fd00::1", 80));
        assert_eq!(v6.host_header(), "[fd00::1]");
        assert!(Url::parse("https://x/").unwrap_err().contains("TLS"));
        assert!(Url::parse("ftp://x/").is_err());
        assert_eq!(Url::parse("10.0.0.1").unwrap().path, "/");
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("a:1", 0), Ok(("a".into(), 1)));
        assert_eq!(split_host_port("[::1]:53", 0), Ok(("::1".into(), 53)));
        assert_eq!(split_host_port("a", 80), Ok(("a".into(), 80)));
        assert!(split_host_port("::1", 80).is_err());
        assert!(split_host_port("a:x", 80).is_err());
        assert!(split_host_port("", 80).is_err());
    }
}
