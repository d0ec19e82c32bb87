//! Names in a capture filter resolve as the pod resolves them: through the pod's own
//! `/etc/hosts`, then the nameservers of its `/etc/resolv.conf` (search list, `ndots`),
//! asked from inside its network namespace.
//!
//! The "pod" is a process in a test-created network namespace (`a` of a [`NetnsPair`]) and
//! a mount namespace of its own where the test's `hosts` and `resolv.conf` are bind-mounted
//! over `/etc` (the machine's files are not touched). Its nameserver is a small DNS server
//! in the other namespace (`b`), which answers for `web.shop.svc.cluster.local` only; `db`
//! is in the pod's hosts file. All traffic, DNS included, stays between the two namespaces.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use snoopy_testkit::{End, NetnsPair};

use crate::support::*;

/// A DNS server on 198.18.0.2:53: A and AAAA for web.shop.svc.cluster.local, NXDOMAIN for
/// every other name; logs `NAME TYPE from ADDRESS` per query to the file in argv[1].
const DNS_SERVER: &str = r#"
import socket, struct, sys
log = open(sys.argv[1], 'a', buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.18.0.2', 53))
print('ready', flush=True)
web = 'web.shop.svc.cluster.local'
records = {(web, 1): bytes([198, 18, 0, 3]),
           (web, 28): socket.inet_pton(socket.AF_INET6, 'fd53:6e6f::3')}
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    name, qtype = '.'.join(labels).lower(), struct.unpack('!H', q[i + 1:i + 3])[0]
    log.write(f'{name} {qtype} from {peer[0]}\n')
    rdata = records.get((name, qtype))
    flags = 0x8180 if name == web else 0x8183
    answer = b''
    if rdata:
        answer = b'\xc0\x0c' + struct.pack('!HHIH', qtype, 1, 60, len(rdata)) + rdata
    head = q[:2] + struct.pack('!HHHHH', flags, 1, 1 if rdata else 0, 0, 0)
    s.sendto(head + q[12:i + 5] + answer, peer)
"#;

/// A process killed and reaped (by the PID we started) when dropped.
struct Pod(Child);

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes `cmd` start in a private mount namespace where `hosts` and `resolv` are
/// bind-mounted over `/etc/hosts` and `/etc/resolv.conf`, and in the network namespace
/// `netns` (an open namespace file) or, without one, a new empty one (nothing but a down
/// loopback: no DNS query can leave it).
fn private_etc(
    cmd: &mut Command,
    netns: Option<std::os::fd::RawFd>,
    hosts: &Path,
    resolv: &Path,
) -> Result<()> {
    let root = CString::new("/")?;
    let mounts = [
        (
            CString::new(hosts.to_str().unwrap())?,
            CString::new("/etc/hosts")?,
        ),
        (
            CString::new(resolv.to_str().unwrap())?,
            CString::new("/etc/resolv.conf")?,
        ),
    ];
    // SAFETY: between fork and exec the child only makes system calls (setns, unshare,
    // mount) on a descriptor and strings prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            match netns {
                Some(fd) => {
                    check(libc::setns(fd, libc::CLONE_NEWNET))?;
                    check(libc::unshare(libc::CLONE_NEWNS))?;
                }
                None => check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET))?,
            }
            // Private first, so the bind mounts stay in this mount namespace.
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for (file, over) in &mounts {
                check(libc::mount(
                    file.as_ptr(),
                    over.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// `sleep` in `end`'s network namespace, seeing `hosts` and `resolv` as its `/etc` files:
/// a pod's process.
fn start_pod(end: &End, hosts: &Path, resolv: &Path) -> Result<Pod> {
    let netns = std::fs::File::open(end.netns_path())?;
    let mut sleep = Command::new("sleep");
    sleep.arg("300").stdin(Stdio::null());
    private_etc(&mut sleep, Some(netns.as_raw_fd()), hosts, resolv)?;
    let pod = Pod(sleep.spawn().context("starting the pod's process")?);
    drop(netns);
    // The child has set itself up once /proc/PID/root/etc/hosts is the test's file.
    let mut waited = Duration::ZERO;
    let want = std::fs::read_to_string(hosts)?;
    let theirs = format!("/proc/{}/root/etc/hosts", pod.0.id());
    while std::fs::read_to_string(&theirs).ok().as_deref() != Some(want.as_str()) {
        ensure!(
            waited < Duration::from_secs(5),
            "{theirs} never became the test's hosts file"
        );
        std::thread::sleep(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
    Ok(pod)
}

#[test]
fn capture_filter_names_resolve_through_the_pods_hosts_and_nameservers() -> Result<()> {
    snoopy_testkit::require_tool("tcpdump")?;
    snoopy_testkit::require_tool("python3")?;
    let pair = NetnsPair::new()?;
    // More addresses on b: web (from DNS, IPv4 and IPv6) and db (from the hosts file).
    pair.b.run(&[
        "ip",
        "addr",
        "add",
        "198.18.0.3/24",
        "dev",
        &pair.b.interface,
    ])?;
    pair.b.run(&[
        "ip",
        "addr",
        "add",
        "198.18.0.4/24",
        "dev",
        &pair.b.interface,
    ])?;
    pair.b.run(&[
        "ip",
        "-6",
        "addr",
        "add",
        "fd53:6e6f::3/64",
        "dev",
        &pair.b.interface,
        "nodad",
    ])?;
    let dir = tempfile::tempdir()?;
    let (hosts, resolv, log) = (
        dir.path().join("hosts"),
        dir.path().join("resolv.conf"),
        dir.path().join("dns.log"),
    );
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n198.18.0.4 db.shop.svc.cluster.local db\n",
    )?;
    std::fs::write(
        &resolv,
        "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 198.18.0.2\noptions ndots:5\n",
    )?;
    let mut dns = pair
        .b
        .spawn(&["python3", "-c", DNS_SERVER, log.to_str().unwrap()])?;
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(dns.child().stdout.as_mut().expect("piped")),
        &mut ready,
    )?;
    ensure!(
        ready.trim() == "ready",
        "the DNS server did not start: {ready:?}"
    );
    let pod = start_pod(&pair.a, &hosts, &resolv)?;
    let pid = pod.0.id().to_string();

    // A name neither the hosts file nor the nameserver knows: one error naming the name
    // and what was tried.
    let out = podtracer()
        .args(["capture", "--pid", &pid, "-d", "host", "nosuch"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "an unknown name compiled: {stderr}");
    for part in [
        "unknown host 'nosuch'",
        &format!("not in /proc/{pid}/root/etc/hosts"),
        "nosuch.shop.svc.cluster.local: NXDOMAIN from 198.18.0.2:53",
        "nosuch: NXDOMAIN from 198.18.0.2:53",
    ] {
        ensure!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }

    // The reference: tcpdump in the pod's namespace keeps every test datagram.
    let reference = dir.path().join("reference.pcap");
    let mut tcpdump = pair.a.spawn(&[
        "tcpdump",
        "-n",
        "-U",
        "--immediate-mode",
        "-i",
        &pair.a.interface,
        "-w",
        reference.to_str().unwrap(),
        "udp",
        "dst",
        "port",
        "9",
    ])?;
    let mut err = std::io::BufReader::new(tcpdump.child().stderr.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line)?;
    ensure!(line.contains("listening on"), "tcpdump: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let file = dir.path().join("named.pcap");
    let capture = start_capture(&[
        "--pid",
        &pid,
        "-i",
        &pair.a.interface,
        "-w",
        file.to_str().unwrap(),
        "host",
        "web",
        "or",
        "host",
        "db",
    ])?;
    // From the pod: three datagrams to each address, named or not.
    pair.a.run(&[
        "python3",
        "-c",
        "import socket,time\n\
         for a in ['198.18.0.2','198.18.0.3','198.18.0.4','fd53:6e6f::2','fd53:6e6f::3']:\n\
         \x20 f = socket.AF_INET6 if ':' in a else socket.AF_INET\n\
         \x20 s = socket.socket(f, socket.SOCK_DGRAM)\n\
         \x20 for _ in range(3): s.sendto(b'snoopy', (a, 9)); time.sleep(0.02)",
    ])?;
    std::thread::sleep(Duration::from_millis(300));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(10))?;
    ensure!(out.status.success(), "{out:?}");
    signal(tcpdump.child(), "INT")?;
    let _ = tcpdump.child().wait();

    let named = "host 198.18.0.3 or host fd53:6e6f::3 or host 198.18.0.4";
    let all = tcpdump_keeps(&file, "")?;
    // Everything captured is to or from web's or db's addresses ...
    assert_eq!(
        tcpdump_keeps(&file, named)?,
        all,
        "a packet of another address was kept"
    );
    // ... and every test datagram to them is there: the reference's, to those addresses.
    let sent = tcpdump_keeps(&reference, "")?;
    let expected = tcpdump_keeps(&reference, named)?;
    assert_eq!((sent, expected), (15, 9), "the reference saw the datagrams");
    assert_eq!(tcpdump_keeps(&file, "udp dst port 9")?, expected);
    // The name was asked of the pod's nameserver, from the pod's namespace, through its
    // search list; db never was (the hosts file answered).
    let asked = std::fs::read_to_string(&log)?;
    assert!(
        asked.contains("web.shop.svc.cluster.local 1 from 198.18.0.1"),
        "{asked}"
    );
    assert!(
        asked.contains("web.shop.svc.cluster.local 28 from 198.18.0.1"),
        "{asked}"
    );
    assert!(!asked.contains("db"), "{asked}");
    drop(pod);
    drop(dns);
    Ok(())
}

/// `podtracer read FILE FILTER` resolves names through the machine's `/etc/hosts` as
/// `tcpdump -r FILE FILTER` does: both run seeing the same test hosts file (bind-mounted
/// in a private mount namespace, in an empty network namespace, so no DNS can leave) and
/// must keep the same packets, or both refuse the name.
#[test]
fn read_resolves_names_through_the_machines_hosts_file_as_tcpdump() -> Result<()> {
    snoopy_testkit::require_root()?;
    snoopy_testkit::require_tool("tcpdump")?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.pcap");
    crate::filter::write_sample(&input)?;
    let (hosts, resolv) = (dir.path().join("hosts"), dir.path().join("resolv.conf"));
    // The sample goes from 10.0.0.1 to 10.0.0.2.
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n10.0.0.2 server\n10.0.0.1 client\n",
    )?;
    std::fs::write(&resolv, "nameserver 127.0.0.1\n")?;
    let mut kept_some = false;
    for expr in [
        "host server",
        "src host client and tcp port 80",
        "dst host server or arp",
        "ip host client and not icmp",
        "host nosuch",
    ] {
        let output = dir.path().join("out.pcap");
        let mut ours = podtracer();
        ours.arg("read")
            .arg(&input)
            .arg("-w")
            .arg(&output)
            .args(expr.split_whitespace());
        private_etc(&mut ours, None, &hosts, &resolv)?;
        let ours = ours.output()?;
        let mut theirs = Command::new("tcpdump");
        theirs.args(["-n", "-q", "-r"]).arg(&input).arg(expr);
        private_etc(&mut theirs, None, &hosts, &resolv)?;
        let theirs = theirs.output()?;
        let stderr = String::from_utf8_lossy(&ours.stderr);
        if !theirs.status.success() {
            assert!(
                !ours.status.success(),
                "{expr:?}: tcpdump refuses it, we do not"
            );
            let said = String::from_utf8_lossy(&theirs.stderr);
            assert!(said.contains("unknown host 'nosuch'"), "{said}");
            assert!(stderr.contains("unknown host 'nosuch'"), "{stderr}");
            assert!(stderr.contains("not in /etc/hosts"), "{stderr}");
            continue;
        }
        assert!(ours.status.success(), "{expr:?}: {stderr}");
        let expected = String::from_utf8(theirs.stdout)?.lines().count();
        assert_eq!(tcpdump_keeps(&output, "")?, expected, "{expr:?}");
        kept_some |= expected > 0;
    }
    assert!(kept_some, "the names selected some packets");
    Ok(())
}
