//! podtracer's default lines against `tcpdump -n` on the traffic a pod makes: HTTP/1.1 on
//! ports 80 and 8080 (GET and POST, responses, a body spanning segments), DNS on UDP and TCP
//! port 53 (with EDNS, CNAME, NXDOMAIN), mDNS on 5353 (multicast, with the MLD and IGMP
//! reports its group joins send), iperf3 for a second, ICMP and ICMPv6 echo with neighbour
//! discovery. tcpdump records the file; `podtracer read FILE` and `tcpdump -n -r FILE` must
//! print the same lines (the issue's measurement: the share of identical lines, printed).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use snoopy_testkit::{ChildGuard, End, NetnsPair};

use crate::support::*;

/// HTTP/1.1 on ports 80 and 8080 (IPv4 and IPv6): GET / answers a short text, GET /big
/// 64 KiB (many segments), POST echoes its body with 201.
const HTTP_SERVER: &str = r#"import http.server,socket,threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version='HTTP/1.1'
    def reply(self,code,body):
        self.send_response(code);self.send_header('Content-Type','text/plain');self.send_header('Content-Length',str(len(body)));self.end_headers();self.wfile.write(body)
    def do_GET(self):
        self.reply(200,b'x'*65536 if self.path=='/big' else b'hello from the pod\n')
    def do_POST(self):
        self.reply(201,self.rfile.read(int(self.headers.get('Content-Length',0))))
    def log_message(self,*a): pass
class S(http.server.ThreadingHTTPServer):
    address_family=socket.AF_INET6
for p in (80,8080):
    threading.Thread(target=S(('::',p),H).serve_forever,daemon=True).start()
threading.Event().wait()
"#;

/// A DNS responder: UDP and TCP port 53 (IPv4 and IPv6) and mDNS on 5353 (joined to
/// 224.0.0.251 and ff02::fb on the interface given as argv[1], answering to the group).
/// `web.pod.test` is a CNAME of `api.pod.test`; A/AAAA of `*.pod.test` resolve; other
/// names are NXDOMAIN; an OPT record in a query is answered with one.
const DNS_SERVER: &str = r#"import socket,struct,select,sys
ME4=bytes([198,18,0,2]); ME6=socket.inet_pton(socket.AF_INET6,'fd53:6e6f::2')
def labels(n): return b''.join(bytes([len(l)])+l.encode() for l in n.split('.'))+b'\0'
def rr(name,t,data,cls=1,ttl=300): return name+struct.pack('>HHIH',t,cls,ttl,len(data))+data
def answer(q):
    qid,fl,qd,an,ns,ar=struct.unpack('>6H',q[:12]); i=12
    while q[i]: i+=q[i]+1
    qn=q[12:i+1]; qt,qc=struct.unpack('>HH',q[i+1:i+5]); name=[]; j=12
    while q[j]: name.append(q[j+1:j+1+q[j]].decode()); j+=q[j]+1
    name='.'.join(name); recs=[]; owner=b'\xc0\x0c'
    if name=='web.pod.test': recs.append(rr(owner,5,labels('api.pod.test'))); owner=labels('api.pod.test')
    if name.endswith('pod.test') and qt==1: recs.append(rr(owner,1,ME4))
    if name.endswith('pod.test') and qt==28: recs.append(rr(b'\xc0\x0c',28,ME6))
    rcode=0 if name.endswith('pod.test') else 3
    opt=rr(b'\0',41,b'',cls=1232,ttl=0) if ar else b''
    return struct.pack('>6H',qid,0x8180|rcode,1,len(recs),0,1 if ar else 0)+q[12:i+5]+b''.join(recs)+opt
def mdns(q):
    i=12
    while q[i]: i+=q[i]+1
    qn=q[12:i+1]
    return struct.pack('>6H',0,0x8400,0,2,0,0)+rr(qn,1,ME4,cls=0x8001,ttl=120)+rr(b'\xc0\x0c',16,b'\x09path=/api\x05v=1.0',cls=0x8001,ttl=4500)
ifname=sys.argv[1]; idx=socket.if_nametoindex(ifname)
u=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); u.bind(('::',53))
t=socket.socket(socket.AF_INET6,socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); t.bind(('::',53)); t.listen(4)
m4=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); m4.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); m4.bind(('',5353))
m4.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,socket.inet_aton('224.0.0.251')+ME4)
m4.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,ME4); m4.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_LOOP,0)
m6=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); m6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1); m6.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); m6.bind(('::',5353))
m6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_JOIN_GROUP,socket.inet_pton(socket.AF_INET6,'ff02::fb')+struct.pack('@I',idx))
m6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_IF,idx); m6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_LOOP,0)
print('ready',flush=True)
while True:
    for s in select.select([u,t,m4,m6],[],[])[0]:
        if s is t:
            c,_=s.accept(); n=struct.unpack('>H',c.recv(2))[0]; q=b''
            while len(q)<n: q+=c.recv(n-len(q))
            a=answer(q); c.sendall(struct.pack('>H',len(a))+a); c.recv(10); c.close()
        elif s is u:
            q,peer=s.recvfrom(2000); s.sendto(answer(q),peer)
        elif s is m4:
            q,_=s.recvfrom(2000)
            if not q[2]&0x80: s.sendto(mdns(q),('224.0.0.251',5353))
        else:
            q,_=s.recvfrom(2000)
            if not q[2]&0x80: s.sendto(mdns(q),('ff02::fb',5353,0,idx))
"#;

/// The DNS client (in a): queries with and without EDNS over UDP (IPv4 and IPv6), one over
/// TCP, and mDNS questions (QM and QU) to the groups. argv: server v4, server v6, interface.
const DNS_CLIENT: &str = r#"import socket,struct,sys,time
v4,v6,ifname=sys.argv[1:4]; idx=socket.if_nametoindex(ifname)
def labels(n): return b''.join(bytes([len(l)])+l.encode() for l in n.split('.'))+b'\0'
def query(qid,name,qt,edns,rd=0x0100,qc=1):
    opt=b'\0'+struct.pack('>HHIH',41,1232,0,0) if edns else b''
    return struct.pack('>6H',qid,rd,1,0,0,1 if edns else 0)+labels(name)+struct.pack('>HH',qt,qc)+opt
def ask(fam,addr,q):
    s=socket.socket(fam,socket.SOCK_DGRAM); s.settimeout(2); s.sendto(q,(addr,53)); s.recv(2000); s.close()
ask(socket.AF_INET,v4,query(4660,'api.pod.test',1,True))
ask(socket.AF_INET,v4,query(4661,'web.pod.test',1,False))
ask(socket.AF_INET,v4,query(4662,'nothing.example',1,True))
ask(socket.AF_INET6,v6,query(4663,'api.pod.test',28,True))
ask(socket.AF_INET6,v6,query(4664,'api.pod.test',1,False,rd=0))
c=socket.create_connection((v4,53),timeout=2); q=query(4665,'web.pod.test',1,True)
c.sendall(struct.pack('>H',len(q))+q); n=struct.unpack('>H',c.recv(2))[0]; r=b''
while len(r)<n: r+=c.recv(n-len(r))
c.close()
m4=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); m4.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton(sys.argv[4]))
m4.sendto(query(0,'api.local',1,False,rd=0),('224.0.0.251',5353))
m6=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); m6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_IF,idx)
m6.sendto(query(0,'api.local',28,False,rd=0,qc=0x8001),('ff02::fb',5353,0,idx))
time.sleep(0.5)
"#;

/// Packets whose line podtracer does not print as tcpdump does, with why: (why, a part of
/// tcpdump's line). Empty: every line of this traffic must be identical.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// Starts the DNS responder on `end` and returns once its sockets are bound.
pub(crate) fn dns_responder(end: &End) -> Result<ChildGuard> {
    let mut dns = end.spawn(&["python3", "-c", DNS_SERVER, &end.interface])?;
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(dns.child().stdout.as_mut().context("dns stdout")?),
        &mut ready,
    )?;
    if ready.trim() != "ready" {
        bail!("the DNS responder did not start: {ready:?}");
    }
    Ok(dns)
}

/// Asks the responder on `server` from `client` (see [`DNS_CLIENT`]).
pub(crate) fn dns_client(client: &End, server: &End) -> Result<()> {
    client.run(&[
        "python3",
        "-c",
        DNS_CLIENT,
        &server.ip.to_string(),
        &server.ip6.to_string(),
        &client.interface,
        &client.ip.to_string(),
    ])?;
    Ok(())
}

/// Starts `tcpdump -w FILE` on `end`'s interface and returns once it listens.
fn start_tcpdump(end: &End, file: &Path) -> Result<Child> {
    snoopy_testkit::require_tool("tcpdump")?;
    let file = file.to_str().context("file path")?;
    let mut child = end
        .command(&["tcpdump", "-n", "-U", "-i", &end.interface, "-w", file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning tcpdump")?;
    let mut reader = until_listening(&mut child, "tcpdump")?;
    // Keep draining stderr so tcpdump never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok(child)
}

/// Runs the pod traffic between the pair while tcpdump records it into `file`.
fn record_pod_traffic(pair: &NetnsPair, file: &Path) -> Result<()> {
    for tool in ["curl", "iperf3", "ping", "python3"] {
        snoopy_testkit::require_tool(tool)?;
    }
    let (a, b) = (&pair.a, &pair.b);
    let (b4, b6) = (b.ip.to_string(), b.ip6.to_string());
    let http = b.spawn(&["python3", "-c", HTTP_SERVER])?;
    let iperf = b.spawn(&["iperf3", "-s", "-p", "5201"])?;
    a.wait_for_port(&b4, 80)?;
    a.wait_for_port(&b4, 8080)?;
    a.wait_for_port(&b4, 5201)?;
    let tcpdump = start_tcpdump(b, file)?;
    // Started under capture, so the group joins (IGMP, MLD with a hop-by-hop header) are in.
    let dns = dns_responder(b)?;
    a.run(&["ping", "-c", "2", "-i", "0.2", &b4])?;
    a.run(&["ping", "-6", "-c", "2", "-i", "0.2", &b6])?;
    let base4 = format!("http://{b4}");
    let base6 = format!("http://[{b6}]:8080");
    a.run(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        &format!("{base4}/"),
        &format!("{base4}/big"),
    ])?;
    a.run(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-d",
        "name=snoopy&kind=pod",
        &format!("{base6}/submit"),
    ])?;
    a.run(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        &format!("http://{b4}:8080/"),
    ])?;
    dns_client(a, b)?;
    a.run(&[
        "iperf3", "-c", &b4, "-p", "5201", "-t", "1", "-b", "20M", "-l", "8K",
    ])?;
    drop(dns);
    drop(http);
    drop(iperf);
    std::thread::sleep(Duration::from_millis(300));
    signal(&tcpdump, "INT")?;
    let out = wait_with_timeout(tcpdump, Duration::from_secs(10))?;
    if !out.status.success() {
        bail!("tcpdump -w failed: {out:?}");
    }
    Ok(())
}

#[test]
fn read_prints_tcpdumps_lines_on_pod_traffic() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pod.pcap");
    record_pod_traffic(&pair, &file)?;
    let mut tcpdump = Command::new("tcpdump");
    tcpdump.env("TZ", "UTC").arg("-n").arg("-r").arg(&file);
    let theirs = stdout_of(tcpdump)?;
    let mut read = podtracer();
    read.arg("read").arg(&file);
    let ours = stdout_of(read)?;
    let (ours, theirs): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(ours.len(), theirs.len(), "lines of podtracer and tcpdump");
    // The traffic is what the comparison is about: each kind is in tcpdump's lines.
    for needle in [
        ": HTTP: GET / HTTP/1.1",
        ": HTTP: POST /submit HTTP/1.1",
        ": HTTP: HTTP/1.1 200 OK",
        ": HTTP: HTTP/1.1 201 Created",
        ".53: 4660+ [1au] A? api.pod.test. (41)",
        " CNAME api.pod.test.",
        " NXDomain",
        ".53 > ",
        ".5353: 0 A (QM)? api.local.",
        " (Cache flush) A ",
        ": HBH ICMP6, multicast listener report v2",
        "igmp v3 report",
        "ICMP6, neighbor solicitation",
        "ICMP6, echo request",
        "ICMP echo reply",
        ".5201: Flags [P.]",
    ] {
        assert!(
            theirs.iter().any(|l| l.contains(needle)),
            "no {needle:?} in tcpdump's lines"
        );
    }
    let mut differing = Vec::new();
    let mut unexplained = Vec::new();
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        if o == t {
            continue;
        }
        let text = format!("line {}:\n  ours:    {o}\n  tcpdump: {t}", i + 1);
        if !KNOWN_DIFFERENCES.iter().any(|(_, part)| t.contains(part)) {
            unexplained.push(text.clone());
        }
        differing.push(text);
    }
    let same = 100.0 * (theirs.len() - differing.len()) as f64 / theirs.len() as f64;
    // The measurement, printed for the record (`cargo nextest run ... --no-capture`).
    println!(
        "pod traffic: {} of {} lines identical to tcpdump -n ({same:.1} %)",
        theirs.len() - differing.len(),
        theirs.len()
    );
    for d in &differing {
        println!("{d}");
    }
    assert!(
        unexplained.is_empty(),
        "{} lines differ from tcpdump -n and are not known differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    assert!(same >= 99.0, "only {same:.1} % of the lines are identical");
    // -v on the same traffic: HTTP prints its text lines, DNS over TCP its owner names.
    let compared = crate::lines::assert_verbose_lines(&file, false)?;
    for needle in [
        ": HTTP, length: 79\n\tGET / HTTP/1.1\n\tHost: 198.18.0.2:8080\n\tUser-Agent: curl/",
        "\n\tHTTP/1.1 201 Created",
        " 4665 2/0/1 web.pod.test. CNAME api.pod.test., api.pod.test. A 198.18.0.2 (95)",
    ] {
        assert!(
            compared.iter().any(|r| r.contains(needle)),
            "-v: no compared packet with {needle:?}"
        );
    }
    Ok(())
}
