//! Latency between two namespaces, measured by podtracer itself: an echo listener opened in
//! the server's namespace (the socket stays there), timed `connect()`s and one-byte
//! request–response round trips (netperf's TCP_RR) from a socket opened in the client's.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snoopy_job::throughput::{FailureReason, Latency, Spread};

use crate::target::Target;

/// Connects timed per pair (each opened and closed at once).
const CONNECTS: u32 = 5;

/// The unspecified address of `address`'s family, to listen on.
fn any_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// A listening socket in `server`'s namespace on a port the kernel picks.
fn listen_in(server: &Target, address: IpAddr) -> Result<TcpListener> {
    snoopy_netns::in_namespace(&server.namespace, || {
        TcpListener::bind(SocketAddr::new(any_of(address), 0))
    })
    .with_context(|| format!("entering {}", server.label))?
    .with_context(|| format!("bind(port 0) in {}", server.label))
}

/// A port free in `server`'s namespace now, for iperf3's server (the kernel's pick, released
/// at once: a race with another program binding it is possible and shows as a failed test).
pub fn free_port(server: &Target, address: IpAddr) -> Result<u16> {
    Ok(listen_in(server, address)?.local_addr()?.port())
}

/// Measures connect and round-trip latency from `client` to `address` (in `server`'s
/// namespace). A connection that fails is the test's failure, with its reason.
pub fn measure(
    client: &Target,
    server: &Target,
    address: IpAddr,
    round_trips: u32,
    timeout: Duration,
) -> Result<Latency, (FailureReason, String)> {
    let listener =
        listen_in(server, address).map_err(|e| (FailureReason::Error, format!("{e:#}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| (FailureReason::Error, format!("getsockname: {e}")))?
        .port();
    let to = SocketAddr::new(address, port);
    // The echo side: accepts the timed connects (closed at once by the client) and the one
    // round-trip connection, which it echoes until the client closes it. It polls, so that
    // it can stop when the client gives up.
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut accepted = 0;
        while accepted <= CONNECTS {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if stopped.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            accepted += 1;
            stream.set_nonblocking(false)?;
            stream.set_nodelay(true)?;
            let mut byte = [0u8; 1];
            while stream.read(&mut byte)? == 1 {
                stream.write_all(&byte)?;
            }
        }
        Ok(())
    });
    let measured =
        snoopy_netns::in_namespace(&client.namespace, || client_side(to, round_trips, timeout))
            .map_err(|e| {
                (
                    FailureReason::Error,
                    format!("entering {}: {e}", client.label),
                )
            })
            .and_then(|r| r);
    if measured.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let echoed = echo.join();
    let latency = measured?;
    match echoed {
        Ok(Ok(())) => Ok(latency),
        Ok(Err(e)) => Err((
            FailureReason::Error,
            format!("echo server in {}: {e}", server.label),
        )),
        Err(_) => Err((FailureReason::Error, "echo server thread panicked".into())),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The client's part, run inside its namespace.
fn client_side(
    to: SocketAddr,
    round_trips: u32,
    timeout: Duration,
) -> Result<Latency, (FailureReason, String)> {
    let connect = || -> Result<(TcpStream, Duration), (FailureReason, String)> {
        let start = Instant::now();
        match TcpStream::connect_timeout(&to, timeout) {
            Ok(stream) => Ok((stream, start.elapsed())),
            Err(e) => Err((reason_of(&e), format!("connect({to}): {e}"))),
        }
    };
    let mut connects = Vec::new();
    for _ in 0..CONNECTS {
        let (stream, took) = connect()?;
        connects.push(micros(took));
        drop(stream);
    }
    let (mut stream, _) = connect()?;
    let io = |e: std::io::Error| (reason_of(&e), format!("round trip with {to}: {e}"));
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut trips = Vec::with_capacity(round_trips as usize);
    let mut byte = [0u8; 1];
    // One untimed trip first: the echo side may not have accepted the connection yet.
    stream.write_all(&[0]).map_err(io)?;
    stream.read_exact(&mut byte).map_err(io)?;
    for i in 0..round_trips {
        let start = Instant::now();
        stream.write_all(&[i as u8]).map_err(io)?;
        stream.read_exact(&mut byte).map_err(io)?;
        trips.push(micros(start.elapsed()));
    }
    Ok(Latency {
        connect_us: Spread::of(&connects).expect("CONNECTS > 0"),
        round_trip_us: Spread::of(&trips).unwrap_or(Spread {
            min: 0.0,
            mid: 0.0,
            max: 0.0,
        }),
        round_trips,
    })
}

/// A connection error as a failure reason.
pub fn reason_of(e: &std::io::Error) -> FailureReason {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => FailureReason::Refused,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FailureReason::Timeout,
        _ => FailureReason::Error,
    }
}
