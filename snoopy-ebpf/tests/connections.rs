//! Connections between two namespaces: each event kind with the right process and bytes.

use std::time::Duration;

use anyhow::Result;
use snoopy_ebpf::{Event, EventKind};
use snoopy_testkit::NetnsPair;

use crate::support::{client, collect, finish, monitor, server};

fn of(events: &[Event], kind: EventKind, pid: u32) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.kind == kind && e.process.as_ref().is_some_and(|p| p.pid == pid))
        .collect()
}

fn one(events: &[Event], kind: EventKind, pid: u32) -> &Event {
    let found = of(events, kind, pid);
    assert_eq!(found.len(), 1, "one {kind:?} of pid {pid} in {events:#?}");
    found[0]
}

#[test]
fn an_accepted_connection_is_connect_established_accept_and_close_with_bytes() -> Result<()> {
    let pair = NetnsPair::new()?;
    let (mut monitor, inodes) = monitor(&[&pair.a, &pair.b])?;
    let (a_ns, b_ns) = (inodes[0], inodes[1]);
    let serving = server(&pair.b, "0.0.0.0", 8080, "world!!")?;
    let server_pid = serving.pid();
    let connecting = client(&pair.a, "198.18.0.2", 8080, "hello", false)?;
    let client_pid = connecting.pid();
    finish(connecting, "the client")?;
    finish(serving, "the server")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        of(events, EventKind::Close, client_pid).len() == 1
            && of(events, EventKind::Close, server_pid).len() == 1
    })?;

    let listen = one(&events, EventKind::Listen, server_pid);
    assert_eq!((listen.netns, listen.local.port()), (b_ns, 8080));

    let connect = one(&events, EventKind::Connect, client_pid);
    assert_eq!(connect.netns, a_ns);
    assert_eq!(connect.remote, "198.18.0.2:8080".parse()?);
    assert_eq!(connect.local.ip().to_string(), "198.18.0.1");
    assert_ne!(
        connect.local.port(),
        0,
        "connect carries the assigned source port"
    );
    let process = connect.process.as_ref().expect("connect names its process");
    assert_eq!(process.comm, "python3");
    assert_eq!(process.uid, 0);
    assert_ne!(process.cgroup_id, 0);

    let established = one(&events, EventKind::Established, client_pid);
    assert_eq!(
        (established.local, established.remote),
        (connect.local, connect.remote)
    );

    let accept = one(&events, EventKind::Accept, server_pid);
    assert_eq!(accept.netns, b_ns);
    assert_eq!(accept.local, "198.18.0.2:8080".parse()?);
    assert_eq!(
        accept.remote, connect.local,
        "the server sees the client's address"
    );
    assert_eq!(accept.process.as_ref().unwrap().comm, "python3");

    let client_close = one(&events, EventKind::Close, client_pid);
    assert_eq!(client_close.netns, a_ns);
    assert_eq!(client_close.local, connect.local);
    assert_eq!(
        (client_close.bytes_sent, client_close.bytes_received),
        (Some(5), Some(7))
    );
    let server_close = one(&events, EventKind::Close, server_pid);
    assert_eq!(server_close.netns, b_ns);
    assert_eq!(
        (server_close.bytes_sent, server_close.bytes_received),
        (Some(7), Some(5))
    );

    assert!(
        !events.iter().any(|e| matches!(
            e.kind,
            EventKind::Refused | EventKind::Unanswered | EventKind::Reset
        )),
        "a clean connection has no failures: {events:#?}"
    );
    assert_eq!(monitor.lost()?, 0);
    Ok(())
}

#[test]
fn a_closed_port_is_refused_with_the_connecting_process() -> Result<()> {
    let pair = NetnsPair::new()?;
    let (mut monitor, inodes) = monitor(&[&pair.a])?;
    let connecting = client(&pair.a, "198.18.0.2", 9, "", true)?;
    let client_pid = connecting.pid();
    finish(connecting, "the refused client")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Refused, client_pid).is_empty()
    })?;
    let refused = one(&events, EventKind::Refused, client_pid);
    assert_eq!(refused.netns, inodes[0]);
    assert_eq!(refused.remote, "198.18.0.2:9".parse()?);
    assert_eq!(refused.process.as_ref().unwrap().comm, "python3");
    one(&events, EventKind::Connect, client_pid);
    assert!(
        of(&events, EventKind::Established, client_pid).is_empty(),
        "{events:#?}"
    );
    assert!(
        of(&events, EventKind::Unanswered, client_pid).is_empty(),
        "{events:#?}"
    );
    Ok(())
}

#[test]
fn namespaces_not_in_the_map_report_nothing() -> Result<()> {
    let pair = NetnsPair::new()?;
    // Only a is watched: b's accept and listen, and connections on b's loopback, are not.
    let (mut monitor, inodes) = monitor(&[&pair.a])?;
    let b_ns = snoopy_ebpf::netns_inode(&pair.b.netns_path())?;
    let serving = server(&pair.b, "0.0.0.0", 8080, "world!!")?;
    let connecting = client(&pair.a, "198.18.0.2", 8080, "hello", false)?;
    let client_pid = connecting.pid();
    finish(connecting, "the client")?;
    finish(serving, "the server")?;
    let local_server = server_on_loopback(&pair.b)?;
    let local_client = client(&pair.b, "127.0.0.1", 8081, "inside", false)?;
    let local_pid = local_client.pid();
    finish(local_client, "the loopback client in b")?;
    finish(local_server, "the loopback server in b")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Close, client_pid).is_empty()
    })?;
    one(&events, EventKind::Connect, client_pid);
    assert!(
        events.iter().all(|e| e.netns == inodes[0]),
        "only a's events: {events:#?}"
    );
    assert!(!events.iter().any(|e| e.netns == b_ns));
    assert!(of(&events, EventKind::Connect, local_pid).is_empty());
    Ok(())
}

fn server_on_loopback(end: &snoopy_testkit::End) -> Result<snoopy_testkit::ChildGuard> {
    server(end, "127.0.0.1", 8081, "ok")
}
