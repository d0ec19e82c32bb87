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
        (server_close.local, server_close.remote),
        (accept.local, accept.remote)
    );
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
    assert_ne!(
        refused.local.port(),
        0,
        "the source port, though released by then"
    );
    let connect = one(&events, EventKind::Connect, client_pid);
    assert_eq!(connect.local, refused.local);
    assert_eq!(refused.process.as_ref().unwrap().comm, "python3");
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

#[test]
fn a_dropped_syn_is_retransmitted_then_unanswered() -> Result<()> {
    let pair = NetnsPair::new()?;
    pair.b.nft("table inet snoopy_drop {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 7777 drop\n  }\n}\n")?;
    let (mut monitor, inodes) = monitor(&[&pair.a])?;
    // Gives up after 1.5 s: the first SYN retransmission comes at 1 s.
    let giving_up = pair.a.spawn(&[
        "python3",
        "-c",
        "import socket\ntry:\n  socket.create_connection(('198.18.0.2',7777),timeout=1.5)\n  raise SystemExit('connected')\nexcept TimeoutError:\n  pass",
    ])?;
    let pid = giving_up.pid();
    finish(giving_up, "the client of a dropped port")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Unanswered, pid).is_empty()
    })?;
    let connect = one(&events, EventKind::Connect, pid);
    assert_eq!(connect.remote, "198.18.0.2:7777".parse()?);
    assert_ne!(connect.local.port(), 0);
    let retransmits = of(&events, EventKind::Retransmit, pid);
    assert!(
        !retransmits.is_empty(),
        "the SYN was retransmitted: {events:#?}"
    );
    assert!(retransmits.iter().all(|r| r.local == connect.local));
    let unanswered = one(&events, EventKind::Unanswered, pid);
    assert_eq!(
        (unanswered.netns, unanswered.local),
        (inodes[0], connect.local)
    );
    assert!(of(&events, EventKind::Refused, pid).is_empty());
    assert!(
        unanswered.time_ns >= connect.time_ns + 1_000_000_000,
        "connect is stamped at connect()"
    );
    Ok(())
}

#[test]
fn a_reset_from_the_server_is_a_reset_then_a_close() -> Result<()> {
    let pair = NetnsPair::new()?;
    let (mut monitor, _) = monitor(&[&pair.a])?;
    // SO_LINGER {on, 0}: close() sends a RST instead of a FIN.
    let mut resetting = pair.b.spawn(&[
        "python3",
        "-c",
        "import socket,struct\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\nc.recv(100)\nc.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\nc.close()",
    ])?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(resetting.child().stdout.take().expect("piped")),
        &mut line,
    )?;
    assert_eq!(line.trim(), "ready");
    let reset_client = pair.a.spawn(&[
        "python3",
        "-c",
        "import socket,time\nc=socket.create_connection(('198.18.0.2',8080),timeout=3)\nc.sendall(b'hi')\ntry:\n  c.recv(100)\nexcept ConnectionResetError:\n  pass\ntime.sleep(0.2)\nc.close()",
    ])?;
    let pid = reset_client.pid();
    finish(reset_client, "the client that is reset")?;
    finish(resetting, "the resetting server")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Close, pid).is_empty()
    })?;
    let reset = one(&events, EventKind::Reset, pid);
    assert_eq!(reset.remote, "198.18.0.2:8080".parse()?);
    let close = one(&events, EventKind::Close, pid);
    assert_eq!(close.local, reset.local);
    assert_eq!(close.bytes_sent, Some(2));
    Ok(())
}

#[test]
fn an_unwatched_namespace_stops_reporting() -> Result<()> {
    let pair = NetnsPair::new()?;
    let (mut monitor, inodes) = monitor(&[&pair.a])?;
    monitor.unwatch(inodes[0])?;
    assert!(monitor.watched().is_empty());
    let refused = client(&pair.a, "198.18.0.2", 9, "", true)?;
    finish(refused, "the refused client")?;
    let events = collect(&mut monitor, Duration::from_millis(500), |_| false)?;
    assert!(events.is_empty(), "nothing once unwatched: {events:#?}");
    // Watched again: reported again.
    monitor.watch(inodes[0])?;
    let refused = client(&pair.a, "198.18.0.2", 9, "", true)?;
    let pid = refused.pid();
    finish(refused, "the refused client")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Refused, pid).is_empty()
    })?;
    one(&events, EventKind::Refused, pid);
    Ok(())
}

#[test]
fn a_full_ring_buffer_counts_every_event_it_drops() -> Result<()> {
    const CONNECTIONS: u64 = 3000;
    let pair = NetnsPair::new()?;
    let netns = snoopy_ebpf::netns_inode(&pair.b.netns_path())?;
    // The oracle: a second monitor with its own programs and ring, read all along in a thread,
    // sees every event the kernel emits for the namespace.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<(u64, u64, u64)> {
            let mut oracle = snoopy_ebpf::Monitor::load()?;
            oracle.watch(netns)?;
            ready_tx.send(())?;
            let mut seen = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen += oracle.poll(Duration::from_millis(5), |_| {})? as u64;
            }
            seen += oracle.poll(Duration::ZERO, |_| {})? as u64;
            Ok((seen, oracle.lost()?, oracle.missed_runs()?))
        })
    };
    ready_rx.recv_timeout(Duration::from_secs(10))?;
    // Nobody reads this one while the connections run: 5 events each (connect, established,
    // accept, two closes) are ~15,000 events for a ring of ~9,000.
    let (mut monitor, _) = monitor(&[&pair.b])?;
    let mut serving = pair.b.spawn(&[
        "python3",
        "-c",
        &format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',8090))\ns.listen(128)\nprint('ready',flush=True)\nfor _ in range({CONNECTIONS}):\n  c,_=s.accept()\n  c.recv(1)\n  c.close()"
        ),
    ])?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serving.child().stdout.take().expect("piped")),
        &mut line,
    )?;
    assert_eq!(line.trim(), "ready");
    let connecting = pair.b.spawn(&[
        "python3",
        "-c",
        &format!(
            "import socket\nfor _ in range({CONNECTIONS}):\n  c=socket.create_connection(('127.0.0.1',8090))\n  c.close()"
        ),
    ])?;
    finish(connecting, "the connecting loop")?;
    finish(serving, "the accepting loop")?;
    std::thread::sleep(Duration::from_millis(500));
    let events = collect(&mut monitor, Duration::from_millis(500), |_| false)?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (all, oracle_lost, oracle_missed) = reader.join().expect("the oracle's thread")?;
    let (read, lost, missed) = (events.len() as u64, monitor.lost()?, monitor.missed_runs()?);
    assert_eq!(oracle_lost, 0, "the oracle kept up");
    // About 5 per connection; a few fewer when the accept queue overflowed and TCP recovered
    // later (backlog 128 on a busy machine).
    assert!(
        all > 5 * CONNECTIONS * 9 / 10,
        "the oracle saw the connections: {all}"
    );
    assert!(lost > 0, "the ring overflowed: {read} events read");
    // Every event is read or counted lost; runs the kernel skipped (nested on a CPU) are
    // counted apart, for either monitor.
    assert!(
        (read + lost).abs_diff(all) <= missed + oracle_missed,
        "read {read} + lost {lost} against the oracle's {all} (missed runs {missed} / {oracle_missed})"
    );
    Ok(())
}

#[test]
fn ipv6_connections_carry_their_addresses() -> Result<()> {
    let pair = NetnsPair::new()?;
    let (mut monitor, _) = monitor(&[&pair.a])?;
    let mut serving = pair.b.spawn(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('::',8080))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\nc.recv(100)\nc.sendall(b'six')\nc.recv(100)\nc.close()",
    ])?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serving.child().stdout.take().expect("piped")),
        &mut line,
    )?;
    assert_eq!(line.trim(), "ready");
    let connecting = pair.a.spawn(&[
        "python3",
        "-c",
        "import socket\nc=socket.create_connection(('fd53:6e6f::2',8080),timeout=3)\nc.sendall(b'v6!')\nc.recv(100)\nc.close()",
    ])?;
    let pid = connecting.pid();
    finish(connecting, "the IPv6 client")?;
    finish(serving, "the IPv6 server")?;
    let events = collect(&mut monitor, Duration::from_secs(10), |events| {
        !of(events, EventKind::Close, pid).is_empty()
    })?;
    let connect = one(&events, EventKind::Connect, pid);
    assert_eq!(connect.remote, "[fd53:6e6f::2]:8080".parse()?);
    assert_eq!(connect.local.ip().to_string(), "fd53:6e6f::1");
    let close = one(&events, EventKind::Close, pid);
    assert_eq!((close.local, close.remote), (connect.local, connect.remote));
    assert_eq!((close.bytes_sent, close.bytes_received), (Some(3), Some(3)));
    Ok(())
}
